"""gfm.report.claims: the claims as data, their arms in the sample and paper grids, and judge()."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gfm.report import claims as cl
from gfm.report import stats as st

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("sad", "mse", "mad", "grad", "conn", "sad_trans", "sad_fg", "sad_bg")
KEYS = ("kind", "verdict", "text", "metric", "arms", "diff", "relative", "ci95", "n_images", "n_seeds")
N_BOOT = 500


@pytest.fixture(scope="module")
def numbers():
    return cl.paper_numbers()


@pytest.fixture(scope="module")
def claims(numbers):
    return {c.id: c for c in cl.default_claims(numbers)}


@pytest.fixture(scope="module")
def sample_grid():
    return yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["experiments"]


@pytest.fixture(scope="module")
def paper_grid():
    return yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())["train"]["experiments"]


def per_image_tables(effects, *, seeds=3, images=40, seed=0, seed_sd=0.2, noise_sd=0.5):
    """``{<experiment>-s<k>: DataFrame}``: SAD = image difficulty + the experiment's effect + noise.

    ``effects[e]`` is a number (the SAD shift, every main metric shifted alike) or a dict of shifts
    per metric; SAD-BG carries 80 % of the SAD shift, SAD-TRAN is the largest region error.
    """
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(4.0, 3.0, images)
    names = [f"img{i:03d}" for i in range(images)]
    tables = {}
    for experiment, effect in effects.items():
        shift = effect if isinstance(effect, dict) else {m: effect for m in ("sad", "mse", "mad", "grad", "conn")}
        for k in range(seeds):
            run_shift = rng.normal(0, seed_sd)
            noise = lambda: rng.normal(0, noise_sd, images)  # noqa: E731
            row = {"name": names}
            for metric in ("sad", "mse", "mad", "grad", "conn"):
                scale = {"sad": 1.0, "mse": 1e-3, "mad": 1e-3, "grad": 2.0, "conn": 1.0}[metric]
                row[metric] = scale * (difficulty + shift.get(metric, 0.0) + run_shift + noise())
            row["sad_trans"] = 0.6 * difficulty + 0.2 * shift.get("sad", 0.0) + noise()
            row["sad_fg"] = 0.1 * difficulty + noise() * 0.2
            row["sad_bg"] = 0.3 * difficulty + 0.8 * shift.get("sad", 0.0) + noise() * 0.2
            tables[f"{experiment}-s{k}"] = pd.DataFrame(row)
    tables[cl.BLANK_RUN] = pd.DataFrame({"name": names, "sad": 6 * difficulty})
    return tables


# --------------------------------------------------------------------------------------------
# the claims as data
# --------------------------------------------------------------------------------------------

def test_claims_are_well_formed(claims, numbers):
    wanted = {"comp_order", "ori_beats_comp", "rssn_closes_gap", "bg20k_background", "two_decoders", "ppm", "one_ppm",
              "bridge_block", "r2b", "tt_best", "rim", "rssn_techniques", "transition_error", "hybrid_best",
              "single_best", "domain_gap", "bg20k_filters", "blank_baseline"}
    assert wanted <= set(claims)
    assert len(cl.default_claims(numbers)) == len(claims)              # unique ids
    for claim in claims.values():
        assert claim.check in cl.CHECKS and claim.kind in cl.KINDS
        assert claim.direction in ("lower", "higher")
        text = cl.render_evidence(claim, numbers)                      # every {id} is in paper_numbers.yaml
        assert "{" not in text
        if claim.arms:
            assert len({a.config for a in claim.arms}) == len(claim.arms)
    project = {c.id for c in claims.values() if c.kind == "project"}
    assert project == {"domain_gap", "bg20k_filters", "blank_baseline"}


def test_directions_match_the_paper(claims):
    c = claims["two_decoders"]                   # GFM lower SAD than SINGLE
    assert c.arms[0].as_dict()["decoder"] == "single" and c.arms[1].as_dict()["decoder"] == "two"
    assert (c.direction, c.check, c.metrics) == ("lower", "lower", ("sad",))
    for id, key, value in (("ppm", "ppm", "none"), ("bridge_block", "bridge", False)):
        assert claims[id].arms[0].as_dict()[key] == value and claims[id].direction == "lower"
    assert [a.as_dict()["ppm"] for a in claims["one_ppm"].arms] == ["none", "one", "five"]
    assert [a.as_dict()["track"] for a in claims["comp_order"].arms] == ["coco", "bg20k", "rssn"]
    assert claims["comp_order"].check == "order"
    c = claims["ori_beats_comp"]                 # ORI lower than every COMP route
    assert c.arms[0].as_dict()["track"] == "ori" and c.direction == "higher"
    c = claims["tt_best"]
    assert c.arms[0].as_dict()["rosta"] == "TT" and c.direction == "higher"
    c = claims["rim"]
    assert c.arms[0].as_dict()["rosta"] == "RIM" and (c.check, c.k, c.direction) == ("at_least_k_metrics", 4, "higher")
    assert c.metrics == cl.MAIN_METRICS
    c = claims["r2b"]
    assert [a.as_dict()["backbone"] for a in c.arms] == ["r34", "r34_2b"] and c.check == "all_metrics"
    c = claims["rssn_techniques"]
    assert c.arms[0].as_dict()["track"] == "bg20k" and (c.check, c.direction) == ("all_metrics", "lower")
    c = claims["bg20k_background"]
    assert (c.check, c.metrics, c.threshold, c.direction) == ("share", ("sad_bg", "sad"), 0.5, "higher")
    c = claims["transition_error"]
    assert (c.check, c.metrics[0], c.direction) == ("within_run", "sad_trans", "higher")
    c = claims["rssn_closes_gap"]
    assert [a.as_dict()["track"] for a in c.arms] == ["coco", "rssn", "ori"]
    assert c.threshold == pytest.approx(cl.paper_gap_fraction()["min"])


def test_paper_gap_fraction(numbers):
    gap = cl.paper_gap_fraction(numbers)
    d = (numbers["t1_coco_am2k_gfm_d_sad"] - numbers["t1_rssn_am2k_gfm_d_sad"]) / \
        (numbers["t1_coco_am2k_gfm_d_sad"] - numbers["t1_ori_am2k_gfm_tt_d_sad"])
    assert gap["GFM(d)"] == pytest.approx(d)
    assert gap["min"] == pytest.approx(min(gap["GFM(d)"], gap["GFM(r)"]))
    assert 0.7 < gap["min"] < 0.8


# --------------------------------------------------------------------------------------------
# arms in the grids
# --------------------------------------------------------------------------------------------

def test_arms_resolve_on_the_sample_grid(claims, sample_grid):
    resolved = {id: cl.resolve_arms(c, sample_grid) for id, c in claims.items()}
    assert resolved["two_decoders"] == [["ori-single", "ori-tt"]]
    assert resolved["comp_order"] == [["coco-tt", "bg20k-tt", "rssn-tt"]]
    assert resolved["ori_beats_comp"] == [["ori-tt", "coco-tt", "bg20k-tt", "rssn-tt"]]
    assert resolved["rssn_closes_gap"] == [["coco-tt", "rssn-tt", "ori-tt"]]
    assert resolved["bg20k_background"] == [["coco-tt", "bg20k-tt"]]
    assert resolved["transition_error"] == [["ori-tt"]]
    assert resolved["blank_baseline"] == [[name] for name in sample_grid]
    for id in ("ppm", "one_ppm", "bridge_block", "r2b", "tt_best", "rim", "rssn_techniques", "rssn_complementary"):
        assert resolved[id] is None, id          # not in the sample profile
    for id in ("hybrid_best", "single_best", "domain_gap", "bg20k_filters"):
        assert resolved[id] == []                # judged from extra


def test_arms_resolve_on_the_paper_grid(claims, paper_grid):
    resolved = {id: cl.resolve_arms(c, paper_grid) for id, c in claims.items()}
    assert all(groups is not None for groups in resolved.values())
    assert resolved["two_decoders"] == [["ori-single-d", "ori-tt-d"], ["ori-single-r", "ori-tt-r"]]
    assert resolved["ppm"] == [["ori-noppm-d", "ori-tt-d"], ["ori-noppm-r", "ori-tt-r"]]
    assert resolved["one_ppm"] == [["ori-noppm-r", "ori-oneppm-r", "ori-tt-r"]]
    assert resolved["bridge_block"] == [["ori-nobb-d", "ori-tt-d"], ["ori-nobb-r", "ori-tt-r"]]
    assert resolved["r2b"] == [["ori-tt-r", "ori-tt-r2b"]]
    assert resolved["tt_best"] == [["ori-tt-d", "ori-ft-d", "ori-bt-d"]]
    assert resolved["rim"] == [["ori-rim-d", "ori-tt-d", "ori-ft-d", "ori-bt-d"]]
    assert resolved["comp_order"] == [["coco-tt-r", "bg20k-tt-r", "rssn-tt-r"]]
    assert resolved["rssn_closes_gap"] == [["coco-tt-r", "rssn-tt-r", "ori-tt-r"]]
    assert resolved["rssn_techniques"] == [["bg20k-tt-r", "rssn-blur-r", "rssn-denoise-r", "rssn-noise-r"]]
    for groups in resolved.values():             # comparisons within one backbone (r2b names its own)
        for group in groups:
            backbones = {paper_grid[name]["backbone"] for name in group}
            assert len(backbones) == 1 or group == ["ori-tt-r", "ori-tt-r2b"]


def test_runs_of():
    tables = {"ori-tt-s0": 1, "ori-tt-s2": 1, "ori-tt-s10": 1, "ori-tt-single-s0": 1, "coco-tt": 1}
    assert cl.runs_of("ori-tt", tables) == ["ori-tt-s0", "ori-tt-s2", "ori-tt-s10"]
    assert cl.runs_of("ori-tt", tables, {"ori-tt": [0, 1, 2]}) == ["ori-tt-s0", "ori-tt-s2"]
    assert cl.runs_of("coco-tt", tables) == ["coco-tt"]           # a bare run is one seed
    assert cl.runs_of("rssn-tt", tables) == []


# --------------------------------------------------------------------------------------------
# judge
# --------------------------------------------------------------------------------------------

SAMPLE_EFFECTS = {"ori-tt": 0.0, "coco-tt": 12.0, "bg20k-tt": 5.0, "rssn-tt": 1.5, "ori-single": 3.0}


@pytest.fixture(scope="module")
def sample_result(sample_grid):
    extra = {"bg20k": {"filters": {"overall": {"predicted": 120, "actual": 118, "true_positives": 115}}}}
    return cl.judge(None, sample_grid, per_image_tables(SAMPLE_EFFECTS), None, extra, n_boot=N_BOOT)


def test_judge_shape(sample_result, claims):
    text = json.dumps(sample_result, allow_nan=False)             # JSON-able, NaN-free
    assert set(sample_result) >= {"claims", "summary"}
    assert set(sample_result["claims"]) == set(claims)
    for id, entry in sample_result["claims"].items():
        assert set(KEYS) <= set(entry), id
        assert entry["verdict"] in st.VERDICTS and entry["kind"] in cl.KINDS
        assert len(entry["ci95"]) == 2 and isinstance(entry["n_images"], int) and isinstance(entry["n_seeds"], int)
        if entry["verdict"] == st.NOT_RUN:
            assert entry["diff"] is None and entry["ci95"] == [None, None]
    summary = sample_result["summary"]
    assert set(summary) == set(st.VERDICTS)
    assert sum(summary.values()) == len(claims)
    assert "NaN" not in text


def test_judge_verdicts_on_constructed_effects(sample_result):
    result = sample_result["claims"]
    for id in ("comp_order", "ori_beats_comp", "rssn_closes_gap", "bg20k_background", "two_decoders",
               "transition_error", "blank_baseline", "bg20k_filters"):
        assert result[id]["verdict"] == st.REPRODUCED, (id, result[id])
    assert result["two_decoders"]["arms"] == ["ori-single", "ori-tt"]
    assert result["two_decoders"]["diff"] < 0 and result["two_decoders"]["n_seeds"] == 3
    tables = per_image_tables(SAMPLE_EFFECTS)
    single = np.mean([tables[f"ori-single-s{k}"]["sad"].mean() for k in range(3)])   # the reference arm
    assert result["two_decoders"]["relative"] == pytest.approx(result["two_decoders"]["diff"] / single)
    assert result["rssn_closes_gap"]["diff"] == pytest.approx((12 - 1.5) / 12, abs=0.05)
    assert result["bg20k_background"]["diff"] == pytest.approx(0.8, abs=0.05)
    for id in ("ppm", "rim", "hybrid_best", "domain_gap"):
        assert result[id]["verdict"] == st.NOT_RUN and result[id]["reason"]


def test_judge_contradicted_and_inconclusive(sample_grid):
    effects = dict(SAMPLE_EFFECTS, **{"ori-single": -3.0, "rssn-tt": 5.0})   # SINGLE better; RSSN = BG-20k
    result = cl.judge(None, sample_grid, per_image_tables(effects, seed=1), None, None, n_boot=N_BOOT)["claims"]
    assert result["two_decoders"]["verdict"] == st.CONTRADICTED
    assert result["comp_order"]["verdict"] == st.INCONCLUSIVE
    # one image: never a verdict from it
    tables = {k: v.iloc[:1] for k, v in per_image_tables(SAMPLE_EFFECTS, seed=2).items()}
    result = cl.judge(None, sample_grid, tables, None, None, n_boot=N_BOOT)["claims"]
    assert result["two_decoders"]["verdict"] == st.INCONCLUSIVE and result["two_decoders"]["n_images"] == 1


def test_judge_seeds_mapping_and_single_seed(sample_grid, claims):
    tables = per_image_tables(SAMPLE_EFFECTS, seed=3)
    seeds = {name: [0] for name in sample_grid}
    result = cl.judge([claims["two_decoders"]], sample_grid, tables, seeds, None, n_boot=N_BOOT)
    entry = result["claims"]["two_decoders"]
    assert entry["n_seeds"] == 1 and entry["verdict"] == st.REPRODUCED
    assert result["summary"] == {"reproduced": 1, "contradicted": 0, "inconclusive": 0, "not_run": 0}
    # arms in the grid but never evaluated -> not run
    result = cl.judge([claims["two_decoders"]], sample_grid, {}, None, None, n_boot=N_BOOT)
    assert result["claims"]["two_decoders"]["verdict"] == st.NOT_RUN


def test_judge_is_deterministic(sample_grid, claims):
    tables = per_image_tables(SAMPLE_EFFECTS, seed=4)
    chosen = [claims[i] for i in ("comp_order", "bg20k_background")]
    first = cl.judge(chosen, sample_grid, tables, None, None, n_boot=N_BOOT)
    again = cl.judge(chosen[::-1], sample_grid, tables, None, None, n_boot=N_BOOT)
    assert first["claims"] == again["claims"]


def test_judge_on_the_paper_grid(paper_grid, claims):
    effects = {name: 0.0 for name in paper_grid}
    effects.update({"ori-single-d": 3.0, "ori-single-r": 3.0, "ori-noppm-r": 4.0, "ori-oneppm-r": 2.0,
                    "ori-ft-d": 2.0, "ori-bt-d": 2.5, "ori-tt-r2b": -2.0, "bg20k-tt-r": 6.0, "rssn-tt-r": 0.0,
                    "rssn-blur-r": 2.0, "rssn-denoise-r": 3.0, "rssn-noise-r": 2.0, "coco-tt-r": 10.0,
                    # RIM: lower than every RoSTa on 4 metrics, not on MSE
                    "ori-rim-d": {"sad": -2.0, "mad": -2.0, "grad": -2.0, "conn": -2.0, "mse": 4.0}})
    chosen = [claims[i] for i in ("two_decoders", "one_ppm", "tt_best", "rim", "r2b", "rssn_techniques",
                                  "rssn_complementary", "transition_error")]
    result = cl.judge(chosen, paper_grid, per_image_tables(effects, seed=5), None, None, n_boot=N_BOOT)["claims"]
    for id, entry in result.items():
        assert entry["verdict"] == st.REPRODUCED, (id, entry)
    assert result["two_decoders"]["groups"] == [["ori-single-d", "ori-tt-d"], ["ori-single-r", "ori-tt-r"]]
    assert len(result["rim"]["comparisons"]) == 15
    assert result["transition_error"]["groups"] == [["ori-tt-d"], ["ori-tt-r"], ["ori-tt-r101"], ["ori-tt-r2b"]]
    # RIM better on only 3 metrics: contradicted on the other two -> "at least 4 of 5" fails
    effects["ori-rim-d"] = {"sad": -2.0, "mad": -2.0, "grad": -2.0, "conn": 4.0, "mse": 4.0}
    result = cl.judge([claims["rim"]], paper_grid, per_image_tables(effects, seed=5), None, None, n_boot=N_BOOT)
    assert result["claims"]["rim"]["verdict"] == st.CONTRADICTED


def test_judge_extra_checks(sample_grid, claims):
    rng = np.random.default_rng(6)
    gap_rows = []
    for label, centre in (("real", 0.0), ("coco", 1.0), ("bg20k", 0.6), ("rssn", 0.1)):
        for i in range(40):
            gap_rows.append({"label": label, "name": f"{label}{i}", "noise_gap": centre + rng.normal(0, 0.2),
                             "sharpness_gap": 2 + centre + rng.normal(0, 0.2),
                             "resolution_gap": centre + rng.normal(0, 0.2)})
    names = [f"img{i:02d}" for i in range(30)]
    grid_rows = []
    for (test, d1, d2), shift in ((("hybrid", 3.0, 2.0), 0.0), (("hybrid", 2.0, 2.0), 2.0), (("hybrid", 4.0, 2.0), 1.0),
                                  (("single", 2.0, 2.0), 0.5), (("single", 3.0, 3.0), 1.0)):
        for run in ("ori-tt-s0", "ori-tt-s1"):
            for i, name in enumerate(names):
                grid_rows.append({"test": test, "d1": d1, "d2": d2, "run": run, "name": name,
                                  "sad": 10 + i % 7 + shift + rng.normal(0, 0.3)})
    extra = {"domain_gap": pd.DataFrame(gap_rows), "table6": pd.DataFrame(grid_rows),
             "bg20k": {"filters": {"overall": {"predicted": 33, "actual": 34, "true_positives": 28}}}}
    chosen = [claims[i] for i in ("domain_gap", "hybrid_best", "single_best", "bg20k_filters")]
    result = cl.judge(chosen, sample_grid, {}, None, extra, n_boot=N_BOOT)
    json.dumps(result, allow_nan=False)
    result = result["claims"]
    assert result["domain_gap"]["verdict"] == st.REPRODUCED
    assert result["hybrid_best"]["verdict"] == st.REPRODUCED and len(result["hybrid_best"]["comparisons"]) == 2
    assert result["single_best"]["verdict"] == st.NOT_RUN and "not in" in result["single_best"]["reason"]
    assert result["bg20k_filters"]["verdict"] == st.INCONCLUSIVE      # 28 / 33: too few to show > 0.8
    # the compose.json summary alone gives no interval
    summary = {"domain_gap": {label: {"n": 48, "distance_to_real": d}
                              for label, d in (("real", 0.0), ("coco", 1.07), ("bg20k", 0.61), ("rssn", 0.35))}}
    entry = cl.judge([claims["domain_gap"]], sample_grid, {}, None, summary, n_boot=N_BOOT)["claims"]["domain_gap"]
    assert entry["verdict"] == st.INCONCLUSIVE and entry["ci95"] == [None, None] and entry["diff"] < 0
    # a means-only Table 6 grid is handled elsewhere
    means = pd.DataFrame([{"test": "hybrid", "d1": 3.0, "d2": 2.0, "sad": 10.0}])
    entry = cl.judge([claims["hybrid_best"]], sample_grid, {}, None, {"table6": means})["claims"]["hybrid_best"]
    assert entry["verdict"] == st.NOT_RUN and "per-image" in entry["reason"]


def test_findings_table(sample_result, claims):
    table = cl.findings_table(sample_result)
    assert list(table["id"]) == list(sample_result["claims"])
    assert {"id", "kind", "claim", "diff", "ci95", "n_images", "n_seeds", "verdict"} <= set(table.columns)
    row = table.set_index("id").loc["two_decoders"]
    assert row["ci95"].startswith("[") and row["verdict"] == st.REPRODUCED
    assert math.isnan(table.set_index("id").loc["ppm", "diff"])
