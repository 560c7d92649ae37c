"""gfm.report.judge: every claim judged on constructed per-image results (known effects, known verdicts)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gfm.report import claims as cl
from gfm.report import judge as jd
from gfm.report import stats as st
from gfm.report.numbers import paper_values

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("kind", "verdict", "code", "text", "metric", "arms", "diff", "relative", "relative_ci95", "ci95", "n_images",
        "n_seeds")
N_BOOT = 500


@pytest.fixture(scope="module")
def claims():
    return {c.id: c for c in cl.default_claims(paper_values())}


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
# runs and judge
# --------------------------------------------------------------------------------------------

def test_runs_of():
    tables = {"ori-tt-s0": 1, "ori-tt-s2": 1, "ori-tt-s10": 1, "ori-tt-single-s0": 1, "coco-tt": 1}
    assert jd.runs_of("ori-tt", tables) == ["ori-tt-s0", "ori-tt-s2", "ori-tt-s10"]
    assert jd.runs_of("ori-tt", tables, {"ori-tt": [0, 1, 2]}) == ["ori-tt-s0", "ori-tt-s2"]
    assert jd.runs_of("coco-tt", tables) == ["coco-tt"]           # a bare run is one seed
    assert jd.runs_of("rssn-tt", tables) == []


SAMPLE_EFFECTS = {"ori-tt": 0.0, "coco-tt": 12.0, "bg20k-tt": 5.0, "rssn-tt": 1.5, "ori-single": 3.0}


@pytest.fixture(scope="module")
def sample_result(sample_grid):
    extra = {"bg20k": {"filters": {"overall": {"predicted": 120, "actual": 118, "true_positives": 115}}}}
    return jd.judge(None, sample_grid, per_image_tables(SAMPLE_EFFECTS), None, extra, n_boot=N_BOOT)


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
    lo, hi = result["two_decoders"]["relative_ci95"]                 # the relative effect's own interval
    assert lo < result["two_decoders"]["relative"] < hi < 0
    assert result["rssn_closes_gap"]["relative_ci95"] == [None, None]   # a ratio has no relative effect
    codes = {"reproduced": 1, "inconclusive": 0, "contradicted": -1, "not_run": None}
    for entry in result.values():                                    # the verdict as a number too
        assert entry["code"] == codes[entry["verdict"]]
    assert result["rssn_closes_gap"]["diff"] == pytest.approx((12 - 1.5) / 12, abs=0.05)
    assert result["bg20k_background"]["diff"] == pytest.approx(0.8, abs=0.05)
    for id in ("ppm", "rim", "hybrid_best", "domain_gap"):
        assert result[id]["verdict"] == st.NOT_RUN and result[id]["reason"]


def test_judge_contradicted_and_inconclusive(sample_grid):
    effects = dict(SAMPLE_EFFECTS, **{"ori-single": -3.0, "rssn-tt": 5.0})   # SINGLE better; RSSN = BG-20k
    result = jd.judge(None, sample_grid, per_image_tables(effects, seed=1), None, None, n_boot=N_BOOT)["claims"]
    assert result["two_decoders"]["verdict"] == st.CONTRADICTED
    assert result["comp_order"]["verdict"] == st.INCONCLUSIVE
    # one image: never a verdict from it
    tables = {k: v.iloc[:1] for k, v in per_image_tables(SAMPLE_EFFECTS, seed=2).items()}
    result = jd.judge(None, sample_grid, tables, None, None, n_boot=N_BOOT)["claims"]
    assert result["two_decoders"]["verdict"] == st.INCONCLUSIVE and result["two_decoders"]["n_images"] == 1


def test_judge_seeds_mapping_and_single_seed(sample_grid, claims):
    tables = per_image_tables(SAMPLE_EFFECTS, seed=3)
    seeds = {name: [0] for name in sample_grid}
    result = jd.judge([claims["two_decoders"]], sample_grid, tables, seeds, None, n_boot=N_BOOT)
    entry = result["claims"]["two_decoders"]
    assert entry["n_seeds"] == 1 and entry["verdict"] == st.REPRODUCED
    assert result["summary"] == {"reproduced": 1, "contradicted": 0, "inconclusive": 0, "not_run": 0}
    # arms in the grid but never evaluated -> not run
    result = jd.judge([claims["two_decoders"]], sample_grid, {}, None, None, n_boot=N_BOOT)
    assert result["claims"]["two_decoders"]["verdict"] == st.NOT_RUN


def test_judge_is_deterministic(sample_grid, claims):
    tables = per_image_tables(SAMPLE_EFFECTS, seed=4)
    chosen = [claims[i] for i in ("comp_order", "bg20k_background")]
    first = jd.judge(chosen, sample_grid, tables, None, None, n_boot=N_BOOT)
    again = jd.judge(chosen[::-1], sample_grid, tables, None, None, n_boot=N_BOOT)
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
    result = jd.judge(chosen, paper_grid, per_image_tables(effects, seed=5), None, None, n_boot=N_BOOT)["claims"]
    for id, entry in result.items():
        assert entry["verdict"] == st.REPRODUCED, (id, entry)
    assert result["two_decoders"]["groups"] == [["ori-single-d", "ori-tt-d"], ["ori-single-r", "ori-tt-r"]]
    assert len(result["rim"]["comparisons"]) == 15
    assert result["transition_error"]["groups"] == [["ori-tt-d"], ["ori-tt-r"], ["ori-tt-r101"], ["ori-tt-r2b"]]
    # RIM better on only 3 metrics: contradicted on the other two -> "at least 4 of 5" fails
    effects["ori-rim-d"] = {"sad": -2.0, "mad": -2.0, "grad": -2.0, "conn": 4.0, "mse": 4.0}
    result = jd.judge([claims["rim"]], paper_grid, per_image_tables(effects, seed=5), None, None, n_boot=N_BOOT)
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
    result = jd.judge(chosen, sample_grid, {}, None, extra, n_boot=N_BOOT)
    json.dumps(result, allow_nan=False)
    result = result["claims"]
    assert result["domain_gap"]["verdict"] == st.REPRODUCED
    assert result["hybrid_best"]["verdict"] == st.REPRODUCED and len(result["hybrid_best"]["comparisons"]) == 2
    assert result["single_best"]["verdict"] == st.NOT_RUN and "not in" in result["single_best"]["reason"]
    assert result["bg20k_filters"]["verdict"] == st.INCONCLUSIVE      # 28 / 33: too few to show > 0.8
    # the compose.json summary alone gives no interval
    summary = {"domain_gap": {label: {"n": 48, "distance_to_real": d}
                              for label, d in (("real", 0.0), ("coco", 1.07), ("bg20k", 0.61), ("rssn", 0.35))}}
    entry = jd.judge([claims["domain_gap"]], sample_grid, {}, None, summary, n_boot=N_BOOT)["claims"]["domain_gap"]
    assert entry["verdict"] == st.INCONCLUSIVE and entry["ci95"] == [None, None] and entry["diff"] < 0
    # a means-only Table 6 grid is handled elsewhere
    means = pd.DataFrame([{"test": "hybrid", "d1": 3.0, "d2": 2.0, "sad": 10.0}])
    entry = jd.judge([claims["hybrid_best"]], sample_grid, {}, None, {"table6": means})["claims"]["hybrid_best"]
    assert entry["verdict"] == st.NOT_RUN and "per-image" in entry["reason"]


def test_judge_failures_of_the_former_means_findings(paper_grid, sample_grid, claims):
    """The scenarios of the former means-only findings (gfm.report.paper.findings: yes / no / partly),
    now judged with intervals: a claim that holds for one backbone and fails for another is
    contradicted (every group must hold); a worse paper setting, a farther RSSN and weak filters too."""
    effects = {name: 0.0 for name in paper_grid}
    effects.update({"ori-noppm-d": 3.0, "ori-noppm-r": -3.0})          # PPM helps GFM(d), hurts GFM(r)
    result = jd.judge([claims["ppm"]], paper_grid, per_image_tables(effects, seed=7), None, None, n_boot=N_BOOT)
    entry = result["claims"]["ppm"]
    assert [c["verdict"] for c in entry["comparisons"]] == [st.REPRODUCED, st.CONTRADICTED]
    assert entry["verdict"] == st.CONTRADICTED and entry["arms"] == ["ori-noppm-r", "ori-tt-r"]
    assert result["summary"] == {"reproduced": 0, "contradicted": 1, "inconclusive": 0, "not_run": 0}
    rng = np.random.default_rng(8)
    gap_rows = [{"label": label, "name": f"{label}{i}", "noise_gap": centre + rng.normal(0, 0.2)}
                for label, centre in (("real", 0.0), ("coco", 1.0), ("bg20k", 0.6), ("rssn", 1.4)) for i in range(40)]
    grid_rows = [{"test": "hybrid", "d1": d1, "d2": 2.0, "run": "ori-tt-s0", "name": f"img{i:02d}",
                  "sad": 10 + i % 7 + shift + rng.normal(0, 0.3)}
                 for d1, shift in ((3.0, 2.0), (2.0, 0.0)) for i in range(30)]  # the paper's (3, 2) is worse here
    extra = {"domain_gap": pd.DataFrame(gap_rows), "table6": pd.DataFrame(grid_rows),
             "bg20k": {"filters": {"overall": {"predicted": 200, "actual": 400, "true_positives": 190}}}}
    chosen = [claims[i] for i in ("domain_gap", "hybrid_best", "bg20k_filters")]
    result = jd.judge(chosen, sample_grid, {}, None, extra, n_boot=N_BOOT)["claims"]
    assert result["hybrid_best"]["verdict"] == st.CONTRADICTED and result["hybrid_best"]["diff"] > 0
    assert result["domain_gap"]["verdict"] == st.CONTRADICTED
    assert result["bg20k_filters"]["verdict"] == st.CONTRADICTED     # recall 190 / 400 clearly below 0.8
