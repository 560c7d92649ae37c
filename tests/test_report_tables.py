"""gfm.report.tables, table6, summaries and render: the paper's tables in its layout, this run's numbers (mean ± CI
over seeds) beside them, written as CSV + HTML; gfm.evaluate.fusions: the fusions table the report shows."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from gfm.core.figures import save_figure  # noqa: E402
from gfm.evaluate.fusions import fusion_table  # noqa: E402
from gfm.report import experiments as ex  # noqa: E402
from gfm.report import inputs, render, summaries, tables  # noqa: E402
from gfm.report.numbers import paper_numbers  # noqa: E402
from gfm.report.render import CI, PAPER, PAPER_AM2K, PAPER_PM10K, RUN  # noqa: E402
from gfm.report.table6 import table6, table6_best  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("sad", "mse", "mad", "grad", "conn", "sad_trans", "sad_fg", "sad_bg")


@pytest.fixture(scope="module")
def numbers():
    return paper_numbers()


def metrics_row(sad, **extra):
    """An evaluate.json entry with every metric derived from ``sad`` unless given."""
    row = {"sad": sad, "mse": sad / 100, "mad": sad / 50, "grad": sad * 2, "conn": sad * 3,
           "sad_trans": sad * 0.6, "sad_fg": sad * 0.1, "sad_bg": sad * 0.3, "images": 16}
    row.update(extra)
    return row


def sample_metrics(coco=3.0, bg20k=2.0, rssn=1.5, ori=1.0, single=1.2):
    return {"ori-tt": metrics_row(ori), "coco-tt": metrics_row(coco), "bg20k-tt": metrics_row(bg20k),
            "rssn-tt": metrics_row(rssn), "ori-single": metrics_row(single)}


SAMPLE_EXPERIMENTS = {name: {"track": track, "backbone": "r18_lite", "rosta": "TT", "decoder": decoder,
                             "ppm": "five", "bridge": True, "epochs": 6}
                      for name, track, decoder in (("ori-tt", "ori", "two"), ("coco-tt", "coco", "two"),
                                                   ("bg20k-tt", "bg20k", "two"), ("rssn-tt", "rssn", "two"),
                                                   ("ori-single", "ori", "single"))}


def summary_of(metrics, experiments=SAMPLE_EXPERIMENTS):
    """This run's summary from evaluate.json-style means (one seed, no interval)."""
    return summaries.experiment_summary({}, experiments, evaluated=metrics)


def cell(table, row, metric, source=RUN):
    return table.frame.loc[row, (metric, source)]


def note(table, row, source=RUN):
    return table.frame.loc[row, ("note", source)]


# ---------------------------------------------------------------------------------------------- this run
def test_experiment_summary_mean_and_interval_over_seeds():
    names = [f"i{k}" for k in range(5)]
    run_means = {0: 1.0, 1: 1.6, 2: 1.3}
    per_image = {f"ori-tt-s{k}": pd.DataFrame({"name": names, "sad": [m - 0.2, m - 0.1, m, m + 0.1, m + 0.2]})
                 for k, m in run_means.items()}
    per_image["coco-tt-s0"] = pd.DataFrame({"name": names, "sad": [2.0, 2.0, 2.0, np.nan, 4.0]})
    per_image[inputs.BLANK] = pd.DataFrame({"name": names, "sad": [9.0] * 5})       # not an experiment
    summary = summaries.experiment_summary(per_image, {k: SAMPLE_EXPERIMENTS[k] for k in ("ori-tt", "coco-tt",
                                                                                           "ori-single")},
                                           evaluated={"baselines": {"blank": {"sad": 9.0}}})
    ori = summary.set_index("experiment").loc["ori-tt"]
    values = np.array(list(run_means.values()))
    assert ori["seeds"] == 3 and ori["sad"] == pytest.approx(values.mean())
    assert ori["sad_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3))
    assert ori["paper_track"] == "ORI" and ori["paper_row"] == "GFM-TT(r18-lite)" and ori["group"] == "GFM-TT"
    coco = summary.set_index("experiment").loc["coco-tt"]
    assert coco["seeds"] == 1 and coco["sad"] == pytest.approx(2.5) and math.isnan(coco["sad_ci95"])
    assert math.isnan(coco["mse"])                                   # a metric absent from the table
    single = summary.set_index("experiment").loc["ori-single"]
    assert not single["evaluated"] and single["seeds"] == 0 and math.isnan(single["sad"])
    assert "baselines" not in set(summary["experiment"])


def test_experiment_summary_without_a_grid_parses_names():
    summary = summaries.experiment_summary({"ori-tt-d-s0": pd.DataFrame({"name": ["a"], "sad": [1.0]})},
                                           evaluated={"coco-tt-r": metrics_row(4.0, seeds=3)})
    assert list(summary["experiment"]) == ["ori-tt-d", "coco-tt-r"]
    assert list(summary["paper_row"]) == ["GFM-TT(d)", "GFM-TT(r)"]
    assert summary.set_index("experiment").loc["coco-tt-r", "seeds"] == 3


def test_reference_summary():
    refs = summaries.reference_summary({"blank": pd.DataFrame({"name": ["a", "b"], "sad": [4.0, 6.0]}),
                                        "closed_form": pd.DataFrame({"name": ["a", "b"], "sad": [0.5, 1.5]})})
    assert list(refs["label"]) == [summaries.REFERENCES["blank"], summaries.REFERENCES["closed_form"]]
    assert list(refs["sad"]) == [5.0, 1.0] and refs["mse"].isna().all()


def test_overview_lists_seeds_and_data():
    shown = tables.overview(summary_of(sample_metrics()), data=inputs.DATA_REAL)
    row = shown.set_index("experiment").loc["coco-tt"]
    assert row["paper track"] == "COMP-COCO" and row["paper row"] == "GFM-TT(r18-lite)"
    assert row["data"] == inputs.DATA_REAL and row["SAD"] == "3" and row["seeds"] == 1


# ---------------------------------------------------------------------------------------------- tables
def test_table1_puts_this_run_beside_the_paper(numbers):
    table = tables.table1(summary_of(sample_metrics()), numbers=numbers, data=inputs.DATA_SAMPLE)
    ours = ("COMP-COCO", "GFM-TT(r18-lite)")
    assert table.frame.loc[ours, ("", "experiment")] == "coco-tt"
    assert cell(table, ours, "sad") == 3.0 and cell(table, ours, "sad_bg") == pytest.approx(0.9)
    assert inputs.DATA_SAMPLE in table.caption
    shm = ("COMP-COCO", "SHM")
    assert cell(table, shm, "sad", PAPER_AM2K) == pytest.approx(182.70)
    assert cell(table, shm, "sad_bg", PAPER_AM2K) == pytest.approx(134.43)
    assert cell(table, ("COMP-RSSN", "GFM-TT(r)"), "sad", PAPER_PM10K) == pytest.approx(13.84)
    # this run's row stands within its track, after the paper's rows of the same group
    rows = list(table.frame.index)
    assert rows.index(("COMP-COCO", "GFM-TT(r)")) < rows.index(ours) < rows.index(("COMP-BG20K", "SHM"))
    # SHM has no number of this run; GFM-FT was not run
    assert math.isnan(cell(table, shm, "sad")) and note(table, shm) == tables.SHM_NOTE
    assert note(table, ("ORI", "GFM-FT")).startswith(tables.NOT_RUN)
    # the prose's duplicate quotation (23.94 / 23.93) shows the first one
    assert cell(table, ("COMP-RSSN", "SHM"), "sad", PAPER_AM2K) == pytest.approx(23.94)


def test_table1_with_paper_profile_names_and_planned_experiments(numbers):
    metrics = {"ori-tt-d": metrics_row(9.0), "ori-tt-r": metrics_row(11.0)}
    planned = ex.load_experiments(ROOT / "profiles" / "paper.yaml")
    table = tables.table1(summaries.experiment_summary({}, evaluated=metrics), data=inputs.DATA_REAL,
                          numbers=numbers, planned=planned)
    row = ("ORI", "GFM-TT(d)")                                       # the paper's row and this run's, side by side
    assert cell(table, row, "sad") == 9.0 and cell(table, row, "sad", PAPER_AM2K) == pytest.approx(10.26)
    assert inputs.DATA_REAL in table.caption
    not_run = ("COMP-COCO", "GFM-TT(r)")
    assert note(table, not_run) == f"{tables.NOT_RUN} (paper profile: coco-tt-r)"
    assert math.isnan(cell(table, not_run, "sad"))


def test_table1_reference_rows_give_the_scale(numbers):
    refs = summaries.reference_summary({"blank": pd.DataFrame({"name": ["a"], "sad": [40.0], "mse": [0.2]}),
                                        "closed_form": pd.DataFrame({"name": ["a"], "sad": [2.0], "mse": [0.01]})})
    table = tables.table1(summary_of(sample_metrics()), references=refs, numbers=numbers)
    blank = ("reference", summaries.REFERENCES["blank"])
    assert cell(table, blank, "sad") == 40.0 and table.frame.loc[blank, ("", "experiment")] == "baselines/blank"
    assert cell(table, ("reference", summaries.REFERENCES["closed_form"]), "mse") == 0.01
    assert list(table.frame.index)[-2:] == [blank, ("reference", summaries.REFERENCES["closed_form"])]


def test_configured_experiment_without_metrics_says_so(numbers):
    table = tables.table4(summary_of({"ori-tt": metrics_row(1.0)}), numbers=numbers)
    single = ("ORI", "GFM-TT(r18-lite) SINGLE")
    assert "no metrics" in note(table, single) and math.isnan(cell(table, single, "sad"))
    assert cell(table, ("ORI", "GFM-TT(d) SINGLE"), "sad", PAPER_AM2K) == pytest.approx(13.79)
    assert cell(table, ("ORI", "GFM-TT(r) w/o BB"), "sad", PAPER_AM2K) == pytest.approx(11.29)


def test_tables_2_and_3_keep_trimap_methods_paper_only(numbers):
    table2 = tables.table2(numbers=numbers)
    assert (table2.frame[("note", RUN)] == tables.NOT_PART).all()
    assert table2.frame[("sad_trans", RUN)].isna().all() and table2.frame[("sad_trans", PAPER_AM2K)].notna().all()
    assert cell(table2, ("COMP-COCO", "GCA"), "sad_trans", PAPER_AM2K) == pytest.approx(8.97)
    table3 = tables.table3(summary_of(sample_metrics()), numbers=numbers)
    assert cell(table3, ("ORI", "GFM(d)+DIM"), "sad_trans", PAPER_AM2K) == pytest.approx(9.54)
    assert math.isnan(cell(table3, ("ORI", "DIM"), "sad_trans")) and note(table3, ("ORI", "DIM")) == tables.NOT_PART
    assert cell(table3, ("ORI", "GFM-TT(r18-lite)"), "sad_trans") == pytest.approx(0.6)


def test_table5_maps_rosta_rows(numbers):
    metrics = {"ori-tt-d": metrics_row(11.0), "ori-ft-d": metrics_row(12.0), "ori-rim-d": metrics_row(10.5)}
    table = tables.table5(summaries.experiment_summary({}, evaluated=metrics), numbers=numbers)
    assert cell(table, ("ORI", "GFM-FT(d)"), "sad") == 12.0
    assert cell(table, ("ORI", "GFM-FT"), "sad", PAPER_AM2K) == pytest.approx(11.76)
    assert cell(table, ("ORI", "GFM-RIM"), "mse", PAPER_AM2K) == pytest.approx(0.0025)
    assert note(table, ("ORI", "GFM-BT")) == tables.NOT_RUN
    assert math.isnan(cell(table, ("ORI", "EN-median"), "sad"))
    assert table.frame.loc[("ORI", "EN-median"), ("", "experiment")] == ""


def test_table_with_seeds_shows_mean_and_half_width(numbers):
    per_image = {f"ori-tt-s{k}": pd.DataFrame({"name": ["a", "b"], "sad": [m, m]}) for k, m in enumerate((1.0, 2.0))}
    table = tables.table4(summaries.experiment_summary(per_image, {"ori-tt": SAMPLE_EXPERIMENTS["ori-tt"]}),
                          numbers=numbers)
    row = ("ORI", "GFM-TT(r18-lite)")
    assert cell(table, row, "sad") == 1.5 and table.frame.loc[row, ("", "seeds")] == 2
    half = stats.t.ppf(0.975, 1) * np.std([1.0, 2.0], ddof=1) / math.sqrt(2)
    assert cell(table, row, "sad", CI) == pytest.approx(half)
    page = table.to_html()
    assert f"1.5 ± {cell(table, row, 'sad', CI):.4g}" in page
    # Table 4's prose quotes AM-2k only: no PM-10k column; columns without any number are left out
    assert "paper AM-2k" in page and "paper PM-10k" not in page
    flat = table.flat()
    assert {"track", "method", "experiment", "seeds", "sad_paper_am2k", "sad_paper_pm10k", "sad", "sad_ci95",
            "paper_note", "run_note"} <= set(flat.columns)


def grid(best_hybrid=(3.0, 2.0), singles=(2.0, 2.6, 3.0), best_single=2.6):
    rows = []
    for d1 in (2.0, 3.0, 4.0):
        for d2 in (2.0, 3.0, 4.0):
            if d1 >= d2:
                rows.append({"test": "hybrid", "d1": d1, "d2": d2, "sad": 1.0 if (d1, d2) == best_hybrid else 2.0 + d1})
    for d in singles:
        rows.append({"test": "single", "d1": d, "d2": d, "sad": 1.5 if d == best_single else 3.0})
    return pd.DataFrame(rows)


def test_table6_best_compares_best_settings(numbers):
    agree = table6_best(grid(), numbers=numbers).set_index("test")
    assert agree.loc["hybrid", "agrees"] == "yes" and agree.loc["single", "agrees"] == "yes"
    assert agree.loc["hybrid", "paper_best"] == "d1 = 3, d2 = 2" and agree.loc["single", "paper_best"] == "d = 2.6"
    differ = table6_best(grid(best_hybrid=(4.0, 2.0), singles=(2.0, 2.4), best_single=2.0),
                         numbers=numbers).set_index("test")
    assert differ.loc["hybrid", "agrees"] == "no"
    assert differ.loc["hybrid", "this_run_best"] == "d1 = 4, d2 = 2"
    assert differ.loc["hybrid", "sad_at_paper_best"] == pytest.approx(5.0)
    assert differ.loc["single", "agrees"] == "not in grid"
    assert (table6_best(None, numbers=numbers)["agrees"] == "not run").all()


def test_table6_in_the_papers_layout(numbers):
    table = table6(grid(), numbers=numbers)
    frame = table.frame
    assert len(frame) == 6 + 3 and frame[("", "runs")].eq(1).all()
    assert frame.loc[("hybrid", "d1 = 3, d2 = 2"), ("", "paper's best")] == "✓"
    assert frame.loc[("hybrid", "d1 = 3, d2 = 2"), ("", "best here")] == "✓"
    assert frame.loc[("single", "d = 2.6"), ("", "best here")] == "✓"
    assert frame.loc[("hybrid", "d1 = 4, d2 = 2"), ("sad", RUN)] == 6.0
    assert (frame[("", "best here")] == "✓").sum() == 2
    # per-image rows of two runs: mean over the runs' image means, with the interval over runs
    rows = [{"test": "hybrid", "d1": 3.0, "d2": 2.0, "run": f"ori-tt-s{k}", "name": n, "sad": v + k}
            for k in (0, 1) for n, v in (("a", 1.0), ("b", 3.0))]
    table = table6(None, per_image=pd.DataFrame(rows), numbers=numbers)
    row = table.frame.loc[("hybrid", "d1 = 3, d2 = 2")]
    assert row[("", "runs")] == 2 and row[("sad", RUN)] == 2.5
    assert row[("sad", CI)] == pytest.approx(stats.t.ppf(0.975, 1) * np.std([2.0, 3.0], ddof=1) / math.sqrt(2))
    empty = table6(None, numbers=numbers)
    assert empty.frame.empty and empty.caption.startswith("not run")


def test_table7_puts_complexity_beside_the_paper(numbers):
    complexity = pd.DataFrame([{"backbone": "d121", "parameters_m": 46.96, "gmac": 250.0, "latency_s": 1.5,
                                "device": "cpu"}])
    table = tables.table7(complexity, numbers=numbers)
    frame = table.frame
    assert frame.loc["GFM-TT(d)", ("parameters_m", PAPER)] == pytest.approx(46.96)
    assert frame.loc["GFM-TT(d)", ("latency_s", PAPER)] == pytest.approx(0.2085)
    assert frame.loc["GFM-TT(d)", ("gmac", RUN)] == 250.0 and frame.loc["GFM-TT(d)", ("", "device")] == "cpu"
    assert frame.loc["GFM-TT(r)", ("gmac", PAPER)] == pytest.approx(132.28)
    assert frame.loc["GFM-TT(r)", ("note", RUN)] == tables.NOT_RUN
    assert "Params (M)" in table.to_html()


# ---------------------------------------------------------------------------------------------- files
def test_save_table_and_figure(tmp_path, numbers):
    csv, page = tables.table2(numbers=numbers).save(tmp_path)
    assert pd.read_csv(csv)["sad_trans_paper_am2k"].notna().all()
    assert "SAD-TRAN" in page.read_text() and "nan" not in page.read_text().lower()
    fig, ax = plt.subplots()
    png = save_figure(fig, tmp_path, "fig")
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "table2.csv", "table2.html"]


def test_save_frame(tmp_path, numbers):
    csv, page = render.save_frame(numbers, tmp_path, "paper_numbers", title="The paper's numbers")
    assert len(pd.read_csv(csv)) == len(numbers)
    text = page.read_text()
    assert "<h3>The paper&#x27;s numbers</h3>" in text or "<h3>The paper's numbers</h3>" in text
    assert "182.7" in text and "<script" not in text


def test_summary_skips_the_sections_of_evaluate_json():
    metrics = {"ori-tt": metrics_row(1.0), "baselines": {"blank": metrics_row(9.0)},
               "fusions": {"ori-tt": {"official": {"sad": 1.0}}}, "table5": {"ori-tt": metrics_row(2.0)},
               "benchmarks": {"p3m500p": {"ori-tt": metrics_row(3.0)}}}
    summary = summaries.experiment_summary({}, evaluated=metrics)
    assert list(summary["experiment"]) == ["ori-tt"] and summary.loc[0, "sad"] == 1.0


def test_fusion_table_means_over_runs():
    frame = pd.DataFrame({"benchmark": ["am2k"] * 4, "run": ["a-s0", "a-s0", "a-s1", "a-s1"], "experiment": ["a"] * 4,
                          "seed": [0, 0, 1, 1], "fusion": ["official", "difference"] * 2, "sad": [1.0, 0.2, 3.0, 0.4]})
    table = fusion_table(frame)
    assert table.loc[0, "runs"] == 2 and table.loc[0, "sad_official"] == 2.0
    assert table.loc[0, "sad_difference"] == pytest.approx(0.3) and math.isnan(table.loc[0, "sad_upsampled"])
    assert fusion_table(None).empty
