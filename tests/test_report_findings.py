"""gfm.report.findings: the claims judged from stage output folders, metrics/findings.json, table and plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from gfm.core.io import write_text  # noqa: E402
from gfm.report import findings, inputs  # noqa: E402
from gfm.report import stats as st  # noqa: E402
from test_report_inputs import write_evaluation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_BOOT = 400
SAMPLE_EFFECTS = {"ori-tt": 0.0, "coco-tt": 12.0, "bg20k-tt": 5.0, "rssn-tt": 1.5, "ori-single": 3.0}
BG20K = {"filters": {"overall": {"predicted": 120, "actual": 118, "true_positives": 115,
                                 "precision": 0.958, "recall": 0.975}}}
COMPOSE = {"domain_gap": {label: {"n": 48, "distance_to_real": d}
                          for label, d in (("real", 0.0), ("coco", 1.07), ("bg20k", 0.61), ("rssn", 0.35))}}


@pytest.fixture(scope="module")
def sample_grid():
    return yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["experiments"]


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    write_evaluation(root, SAMPLE_EFFECTS, seeds=3, images=30)
    return root


@pytest.fixture(scope="module")
def result(evaluation, sample_grid):
    evidence = findings.gather(evaluation, metrics={"bg20k": BG20K, "compose": COMPOSE})
    return findings.judge_outputs(evidence, sample_grid, n_boot=N_BOOT)


def test_gather_reads_the_stage_outputs(evaluation, tmp_path):
    evidence = findings.gather(evaluation, metrics={"bg20k": BG20K, "compose": COMPOSE})
    assert len(evidence.per_image) == 5 * 3 + 1 and inputs.BLANK in evidence.per_image
    assert evidence.seeds == {name: [0, 1, 2] for name in SAMPLE_EFFECTS}
    assert evidence.extra == {"domain_gap": COMPOSE, "bg20k": BG20K}
    # a per-image domain-gap table (compose.out) and a Table 6 grid are preferred to the summaries
    write_text(tmp_path / "compose" / inputs.DOMAIN_GAP_PER_IMAGE, "label,name,noise_gap\nreal,a,0.1\n")
    write_text(tmp_path / "eval" / "table6.csv", "test,d1,d2,sad\nhybrid,3,2,1.0\n")
    evidence = findings.gather(tmp_path / "eval", metrics={"compose": COMPOSE}, compose_out=tmp_path / "compose")
    assert list(evidence.extra["domain_gap"]["label"]) == ["real"]
    assert list(evidence.extra["table6"]["sad"]) == [1.0]
    write_text(tmp_path / "eval" / inputs.TABLE6_PER_IMAGE, "test,d1,d2,run,name,sad\nhybrid,3,2,r,a,2.0\n")
    assert list(findings.gather(tmp_path / "eval").extra["table6"]["name"]) == ["a"]
    assert findings.gather(tmp_path / "nothing").per_image == {}


def test_judged_from_folders(result):
    claims = result["claims"]
    for id in ("comp_order", "ori_beats_comp", "rssn_closes_gap", "two_decoders", "blank_baseline", "bg20k_filters"):
        assert claims[id]["verdict"] == st.REPRODUCED, (id, claims[id])
    assert claims["two_decoders"]["n_seeds"] == 3 and claims["two_decoders"]["n_images"] == 30
    assert claims["domain_gap"]["verdict"] == st.INCONCLUSIVE         # the summary alone gives no interval
    assert claims["hybrid_best"]["verdict"] == st.NOT_RUN             # no Table 6 grid


def test_findings_metrics_shape(result):
    narrow = findings.findings_metrics(result)
    json.dumps(narrow, allow_nan=False)
    assert set(narrow) == {"claims", "summary"}
    assert narrow["summary"] == result["summary"] and set(narrow["summary"]) == set(st.VERDICTS)
    assert sum(narrow["summary"].values()) == len(narrow["claims"])
    codes = {st.REPRODUCED: 1, st.INCONCLUSIVE: 0, st.CONTRADICTED: -1, st.NOT_RUN: None}
    for id, entry in narrow["claims"].items():
        assert tuple(entry) == findings.METRICS_KEYS, id
        assert entry["kind"] in ("paper", "project") and entry["verdict"] in st.VERDICTS
        assert entry["code"] == codes[entry["verdict"]]
        assert isinstance(entry["n_images"], int) and isinstance(entry["n_seeds"], int) and len(entry["ci95"]) == 2
    entry = narrow["claims"]["two_decoders"]
    assert entry["arms"] == ["ori-single", "ori-tt"] and entry["metric"] == "sad" and entry["diff"] < 0
    lo, hi = entry["ci95"]
    assert lo < entry["diff"] < hi < 0



def test_headline_metrics_are_the_verdict_counts_and_each_models_sad(result):
    evaluate = {"ori-tt": {"sad": 17.96734, "mse": 0.08, "seeds": 3}, "coco-tt": {"sad": 27.4, "seeds": 3},
                "baselines": {"blank": {"sad": 38.06, "mse": 0.2}, "closed_form": {"sad": 4.2}},
                "fusions": {"ori-tt": {"official": {"sad": 18.0}}}, "table5": {}}
    headline = findings.headline_metrics(result, evaluate)
    assert headline == {"verdicts": {v: result["summary"][v] for v in st.VERDICTS},
                        "sad": {"ori-tt": 17.9673, "coco-tt": 27.4, "blank": 38.06}}
    assert sum(headline["verdicts"].values()) == len(result["claims"])
    assert findings.headline_metrics(result, None)["sad"] == {}        # before any evaluation


def test_write_findings_metrics_reads_in_a_terminal(result, tmp_path):
    path = findings.write_findings_metrics(tmp_path / "metrics" / "findings.json", result)
    text = path.read_text()
    assert json.loads(text) == findings.findings_metrics(result)
    lines = text.splitlines()
    assert max(len(line) for line in lines) < 100                       # no claim text, no comparison lists
    assert len(lines) <= 14 * len(result["claims"]) + 10                  # lists on one line each
    assert '"arms": ["ori-single", "ori-tt"],' in text and '"ci95": [null, null],' in text


def test_findings_table(result):
    table = findings.findings_table(result)
    assert list(table["id"]) == list(result["claims"])
    assert {"id", "kind", "claim", "diff", "ci95", "relative", "n_images", "n_seeds", "verdict"} <= set(table.columns)
    row = table.set_index("id").loc["two_decoders"]
    assert row["ci95"].startswith("[") and row["verdict"] == st.REPRODUCED
    assert row["relative"] == pytest.approx(result["claims"]["two_decoders"]["relative"])
    assert math.isnan(table.set_index("id").loc["ppm", "diff"])
    # the claim's full text, never shortened
    assert list(table["claim"]) == [entry["text"] for entry in result["claims"].values()]
    assert not table["claim"].str.contains("…").any()


def test_forest_plot(result):
    fig = findings.forest_plot(result)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("comp_order") and len(labels) == len(result["claims"])
    assert any("not run" in t.get_text() for t in ax.texts)
    # the two-decoder claim: relative effect with its interval, on the paper's (negative) side
    y = list(result["claims"]).index("two_decoders")
    points = [line for line in ax.get_lines() if list(line.get_ydata()) == [y] and line.get_marker() == "o"]
    assert points and points[0].get_xdata()[0] == pytest.approx(result["claims"]["two_decoders"]["relative"])
    plt.close(fig)


def test_forest_plot_clips_large_values():
    entry = {"verdict": st.REPRODUCED, "expect": "higher", "diff": 3.0, "relative": 4.0, "relative_ci95": [3.0, 5.0],
             "ci95": [2.0, 4.0], "threshold": 0.0}
    fig = findings.forest_plot({"claims": {"big": entry}})
    ax = fig.axes[0]
    assert any(t.get_text() == "4" for t in ax.texts)
    assert [line.get_marker() for line in ax.get_lines() if line.get_marker() not in ("None", "")] == [">"]
    plt.close(fig)


def test_summary_lines_fit_a_terminal():
    from gfm.report.findings import summary_lines

    result = {"claims": {"two_decoders": {"kind": "paper", "verdict": "reproduced", "diff": -2.7,
                                          "ci95": [-3.5, -1.9], "n_images": 120, "n_seeds": 3},
                         "ppm": {"kind": "paper", "verdict": "not_run", "diff": None, "ci95": [None, None]}},
              "summary": {"reproduced": 1, "contradicted": 0, "inconclusive": 0, "not_run": 1}}
    lines = summary_lines(result)
    assert lines[0].startswith("two_decoders") and "reproduced" in lines[0] and "[-3.5, -1.9]" in lines[0]
    assert lines[1].split() == ["ppm", "paper", "not_run"]
    assert lines[-1] == "1 reproduced, 0 contradicted, 0 inconclusive, 1 not_run"
    assert max(map(len, lines)) <= 110
