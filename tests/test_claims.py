"""gfm.report.claims: the claims as data, and their arms in the sample and paper grids."""

from pathlib import Path

import pytest
import yaml

from gfm.evaluate.metrics import MAIN_METRICS
from gfm.report import claims as cl
from gfm.report.judge import resolve_arms
from gfm.report.numbers import paper_values

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def numbers():
    return paper_values()


@pytest.fixture(scope="module")
def claims(numbers):
    return {c.id: c for c in cl.default_claims(numbers)}


@pytest.fixture(scope="module")
def sample_grid():
    return yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["experiments"]


@pytest.fixture(scope="module")
def paper_grid():
    return yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())["train"]["experiments"]


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
    assert c.metrics == MAIN_METRICS
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
    resolved = {id: resolve_arms(c, sample_grid) for id, c in claims.items()}
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
    resolved = {id: resolve_arms(c, paper_grid) for id, c in claims.items()}
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
