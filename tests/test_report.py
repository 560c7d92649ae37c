"""The paper report (stage 6): the transcribed numbers against the paper's text, the tables that put
this run beside the paper, the claim checks on constructed metrics, and the figures."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gfm.report import paper as report  # noqa: E402
from gfm.core.io import write_image, write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = ROOT.parent / "shared" / "paper"
PAPER_TEXT = PAPER_DIR / "gfm_paper_text.txt"
PAPER_CARD = PAPER_DIR / "gfm_paper_card.txt"


@pytest.fixture(scope="module")
def numbers():
    return report.paper_numbers()


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


def lines(table, source, **where):
    mask = table["source"] == source
    for key, value in where.items():
        mask &= table[key] == value
    return table[mask]


# ---------------------------------------------------------------------------------------------- numbers
def test_paper_numbers_load_with_table_source_and_value(numbers):
    assert len(numbers) >= 80
    assert numbers["id"].is_unique
    for column in ("table", "source", "method", "metric", "dataset", "track"):
        assert (numbers[column].astype(str).str.len() > 0).all(), column
    assert np.isfinite(numbers["value"]).all()
    assert set(numbers["table"]) >= {"1", "2", "3", "4", "5", "6", "7"}
    assert report.paper_value(numbers, "t1_coco_am2k_shm_sad") == pytest.approx(182.70)
    assert report.paper_value(numbers, "t4_single_r_sad") == pytest.approx(15.50)
    assert report.paper_value(numbers, "t7_gfm_r_gmac") == pytest.approx(132.28)
    with pytest.raises(KeyError):
        report.paper_value(numbers, "no-such-id")


def test_paper_numbers_rejects_an_entry_without_source(tmp_path):
    path = write_text(tmp_path / "n.yaml", "- {id: a, table: '1', dataset: AM-2k, track: ORI, method: SHM, "
                                            "metric: sad, value: 1.0}\n")
    with pytest.raises(ValueError, match="source"):
        report.paper_numbers(path)


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason=f"{PAPER_DIR} not present")
def test_every_prose_number_is_in_the_paper_text(numbers):
    text = PAPER_TEXT.read_text(encoding="utf-8")
    card = PAPER_CARD.read_text(encoding="utf-8") if PAPER_CARD.is_file() else ""
    for _, entry in numbers.iterrows():
        haystack = card if entry["source"].startswith("paper card") else text
        forms = {f"{entry['value']:.2f}", f"{entry['value']:.4f}", f"{entry['value']:g}"}
        found = [f for f in forms if re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", haystack)]
        assert found, f"{entry['id']}: {entry['value']} not found in {entry['source'][:40]}"


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason=f"{PAPER_DIR} not present")
@pytest.mark.parametrize("quote", [
    "46.16, 30.05, and 33.79 v.s. 182.70 for AM-2k, 61.69, 34.58, and 33.90 v.s. 168.75 for PM-10k",
    "from 134.43 to 33.52 for AM-2k and 123.62 to 11.55 for PM-10k",
    "from 25.19 to 19.19 and 21.54 to 18.15 for GFM(d), from 16.44 to 15.88 and 20.29 to 13.84 for GFM(r)",
    "8.24 v.s. 10.26 for AM-2k, 7.70 v.s. 8.53 for PM-10k in the transition area",
    "17.81 for AM-2k and 16.64 for PM-10k",
    "SAD increases from 10.26 to 13.79 for GFM-TT(d) and 10.89 to 15.50 for GFM-TT(r)",
    "from 10.26 to 10.86 for GFM-TT(d) and 10.89 to 11.90",
    "from 10.26 to 11.27 for GFM-TT(d) and 10.89 to 11.29",
    "SAD 10.62 to 11.28, 11.76 and 12.26",
    "0.0025 to 0.0026",
    "7.59 to 6.82, 6.78 to 6.00 for DIM",
    "132.28 GMacs",
    "0.2085s and 0.1734s",
])
def test_spot_checks_against_the_paper_text(quote, numbers):
    text = " ".join(PAPER_TEXT.read_text(encoding="utf-8").split())
    assert quote in text
    for value in re.findall(r"\d+\.\d+", quote):
        assert np.isclose(numbers["value"], float(value)).any(), f"{value} of the quote is not transcribed"


# ---------------------------------------------------------------------------------------------- mapping
def test_experiment_names_map_to_the_papers_rows():
    assert report.experiment_label(report.parse_experiment("ori-noppm-d")) == ("ORI", "GFM-TT(d) w/o PPM")
    assert report.experiment_label(report.parse_experiment("rssn-blur-r")) == ("COMP-BG20K w/ blur", "GFM-TT(r)")
    assert report.experiment_label(report.parse_experiment("ori-tt-r101")) == ("ORI", "GFM-TT(r†)")
    assert report.experiment_label(report.parse_experiment("ori-single")) == ("ORI", "GFM-TT SINGLE")
    assert report.experiment_label(SAMPLE_EXPERIMENTS["coco-tt"]) == ("COMP-COCO", "GFM-TT(r18-lite)")
    with pytest.raises(ValueError, match="ori-xyz"):
        report.parse_experiment("ori-xyz")
    with pytest.raises(ValueError, match="starting with"):
        report.parse_experiment("foo-tt")


def test_paper_profile_names_agree_with_their_configurations():
    planned = report.load_experiments(ROOT / "profiles" / "paper.yaml")
    assert len(planned) >= 15
    for name, config in planned.items():
        assert report.experiment_label(report.parse_experiment(name)) == report.experiment_label(config), name


# ---------------------------------------------------------------------------------------------- tables
def test_table1_puts_this_run_beside_the_paper(numbers):
    table = report.table1(sample_metrics(), SAMPLE_EXPERIMENTS, data=report.DATA_SAMPLE, numbers=numbers)
    ours = lines(table, "this run", track="COMP-COCO", experiment="coco-tt")
    assert len(ours) == 1
    assert ours["sad"].iloc[0] == 3.0 and ours["sad_bg"].iloc[0] == pytest.approx(0.9)
    assert ours["data"].iloc[0] == report.DATA_SAMPLE
    assert ours["row"].iloc[0] == "GFM-TT(r18-lite)"
    shm = lines(table, "paper", track="COMP-COCO", row="SHM", data="AM-2k")
    assert shm["sad"].iloc[0] == pytest.approx(182.70) and shm["sad_bg"].iloc[0] == pytest.approx(134.43)
    gfm_r = lines(table, "paper", track="COMP-RSSN", row="GFM-TT(r)", data="PM-10k")
    assert gfm_r["sad"].iloc[0] == pytest.approx(13.84)
    # the paper line comes right before this run's line of the same row group
    index = ours.index[0]
    assert table.loc[index - 1, "source"] == "paper" and table.loc[index - 1, "track"] == "COMP-COCO"
    # SHM has no line of this run; GFM-FT was not run
    assert lines(table, "this run", row="SHM").empty
    assert lines(table, "this run", track="ORI", row="GFM-FT")["note"].iloc[0].startswith(report.NOT_RUN)
    # the prose's duplicate quotation (23.94 / 23.93) shows the first one
    rssn_shm = lines(table, "paper", track="COMP-RSSN", row="SHM", data="AM-2k")
    assert len(rssn_shm) == 1 and rssn_shm["sad"].iloc[0] == pytest.approx(23.94)


def test_table1_with_paper_profile_names_and_planned_experiments(numbers):
    metrics = {"ori-tt-d": metrics_row(9.0), "ori-tt-r": metrics_row(11.0)}
    planned = report.load_experiments(ROOT / "profiles" / "paper.yaml")
    table = report.table1(metrics, data=report.DATA_REAL, numbers=numbers, planned=planned)
    ours = lines(table, "this run", track="ORI", row="GFM-TT(d)")
    assert ours["sad"].iloc[0] == 9.0 and ours["data"].iloc[0] == report.DATA_REAL
    not_run = lines(table, "this run", track="COMP-COCO")
    assert not_run["note"].iloc[0] == f"{report.NOT_RUN} (paper profile: coco-tt-r)"
    assert math.isnan(not_run["sad"].iloc[0])


def test_configured_experiment_without_metrics_says_so(numbers):
    table = report.table4({"ori-tt": metrics_row(1.0)}, SAMPLE_EXPERIMENTS, numbers=numbers)
    single = lines(table, "this run", experiment="ori-single")
    assert "no metrics" in single["note"].iloc[0] and math.isnan(single["sad"].iloc[0])
    assert lines(table, "paper", row="GFM-TT(d) SINGLE")["sad"].iloc[0] == pytest.approx(13.79)
    assert lines(table, "paper", row="GFM-TT(r) w/o BB")["sad"].iloc[0] == pytest.approx(11.29)


def test_tables_2_and_3_keep_trimap_methods_paper_only(numbers):
    table2 = report.table2(numbers)
    assert (table2["source"] == "paper").all() and (table2["note"] == report.NOT_PART).all()
    assert lines(table2, "paper", row="GCA", track="COMP-COCO", data="AM-2k")["sad_trans"].iloc[0] == pytest.approx(8.97)
    table3 = report.table3(sample_metrics(), SAMPLE_EXPERIMENTS, numbers=numbers)
    assert lines(table3, "paper", row="GFM(d)+DIM")["sad_trans"].iloc[0] == pytest.approx(9.54)
    assert lines(table3, "this run", row="DIM").empty
    assert lines(table3, "this run", experiment="ori-tt")["sad_trans"].iloc[0] == pytest.approx(0.6)


def test_table5_maps_rosta_rows(numbers):
    metrics = {"ori-tt-d": metrics_row(11.0), "ori-ft-d": metrics_row(12.0), "ori-rim-d": metrics_row(10.5)}
    table = report.table5(metrics, numbers=numbers)
    assert lines(table, "this run", experiment="ori-ft-d")["sad"].iloc[0] == 12.0
    assert lines(table, "paper", row="GFM-FT")["sad"].iloc[0] == pytest.approx(11.76)
    assert lines(table, "paper", row="GFM-RIM")["mse"].iloc[0] == pytest.approx(0.0025)
    assert lines(table, "this run", row="GFM-BT")["note"].iloc[0] == report.NOT_RUN
    assert lines(table, "this run", row="EN-median").empty


def grid(best_hybrid=(3.0, 2.0), singles=(2.0, 2.6, 3.0), best_single=2.6):
    rows = []
    for d1 in (2.0, 3.0, 4.0):
        for d2 in (2.0, 3.0, 4.0):
            if d1 >= d2:
                rows.append({"test": "hybrid", "d1": d1, "d2": d2, "sad": 1.0 if (d1, d2) == best_hybrid else 2.0 + d1})
    for d in singles:
        rows.append({"test": "single", "d1": d, "d2": d, "sad": 1.5 if d == best_single else 3.0})
    return pd.DataFrame(rows)


def test_table6_compares_best_settings(numbers):
    agree = report.table6(grid(), numbers=numbers).set_index("test")
    assert agree.loc["hybrid", "agrees"] == "yes" and agree.loc["single", "agrees"] == "yes"
    assert agree.loc["hybrid", "paper_best"] == "d1 = 3, d2 = 2" and agree.loc["single", "paper_best"] == "d = 2.6"
    differ = report.table6(grid(best_hybrid=(4.0, 2.0), singles=(2.0, 2.4), best_single=2.0),
                           numbers=numbers).set_index("test")
    assert differ.loc["hybrid", "agrees"] == "no"
    assert differ.loc["hybrid", "this_run_best"] == "d1 = 4, d2 = 2"
    assert differ.loc["hybrid", "sad_at_paper_best"] == pytest.approx(5.0)
    assert differ.loc["single", "agrees"] == "not in grid"
    assert (report.table6(None, numbers=numbers)["agrees"] == "not run").all()


def test_table7_puts_complexity_beside_the_paper(numbers):
    complexity = pd.DataFrame([{"backbone": "d121", "parameters_m": 46.96, "gmac": 250.0, "latency_s": 1.5,
                                "device": "cpu"}])
    table = report.table7(complexity, numbers=numbers)
    paper_d = lines(table, "paper", backbone="d121")
    assert paper_d["parameters_m"].iloc[0] == pytest.approx(46.96)
    assert paper_d["latency_s"].iloc[0] == pytest.approx(0.2085)
    assert lines(table, "this run", backbone="d121")["gmac"].iloc[0] == 250.0
    assert lines(table, "paper", backbone="r34")["gmac"].iloc[0] == pytest.approx(132.28)
    assert lines(table, "this run", backbone="r34")["note"].iloc[0] == report.NOT_RUN


# ---------------------------------------------------------------------------------------------- findings
def verdicts(table):
    return dict(zip(table["id"], table["reproduced"]))


def test_findings_reproduce_and_fail_the_composition_order(numbers):
    good = verdicts(report.findings(sample_metrics(), numbers=numbers))
    assert good["comp_order"] == "yes" and good["ori_beats_comp"] == "yes" and good["two_decoders"] == "yes"
    bad_table = report.findings(sample_metrics(coco=1.5, bg20k=2.0, rssn=3.0, ori=2.5, single=2.0), numbers=numbers)
    bad = verdicts(bad_table)
    assert bad["comp_order"] == "no" and bad["ori_beats_comp"] == "no" and bad["two_decoders"] == "no"
    row = bad_table.set_index("id").loc["comp_order"]
    assert "not reproduced" in row["comment"] and "COMP-COCO 1.5" in row["this_run"]
    assert "182.7" in row["paper_evidence"]


def test_findings_not_run_and_partly(numbers):
    metrics = {"ori-tt-d": metrics_row(10.0), "ori-noppm-d": metrics_row(11.0),
               "ori-tt-r": metrics_row(10.0), "ori-noppm-r": metrics_row(9.0)}
    table = report.findings(metrics, numbers=numbers)
    found = verdicts(table)
    assert found["ppm"] == "partly"
    for claim in ("comp_order", "bridge_block", "rim", "tt_best", "hybrid_best", "domain_gap", "bg20k_filters"):
        assert found[claim] == "not run", claim
    summary = report.findings_summary(table)
    assert summary["claims"] == len(table) and summary["partly"] == 1
    assert summary["yes"] + summary["no"] + summary["partly"] + summary["not_run"] == len(table)


def test_findings_rosta_rim_rssn_and_transition(numbers):
    metrics = {"ori-tt-d": metrics_row(10.0), "ori-ft-d": metrics_row(11.0), "ori-bt-d": metrics_row(12.0),
               "ori-rim-d": metrics_row(9.0), "bg20k-tt-r": metrics_row(16.0), "rssn-blur-r": metrics_row(15.0),
               "rssn-denoise-r": metrics_row(15.5), "rssn-noise-r": metrics_row(15.2), "rssn-tt-r": metrics_row(14.0)}
    found = verdicts(report.findings(metrics, numbers=numbers))
    assert found["tt_best"] == "yes" and found["rim"] == "yes" and found["rssn_techniques"] == "yes"
    assert found["transition_error"] == "yes"
    metrics["ori-ft-d"] = metrics_row(9.5)
    metrics["rssn-denoise-r"] = metrics_row(17.0)
    metrics["ori-tt-d"] = metrics_row(10.0, sad_trans=1.0, sad_fg=2.0)
    found = verdicts(report.findings(metrics, numbers=numbers))
    assert found["tt_best"] == "no" and found["rssn_techniques"] == "no" and found["transition_error"] == "no"


def test_findings_table6_domain_gap_and_filters(numbers):
    gap = {"domain_gap": {"real": {"distance_to_real": 0.0}, "coco": {"distance_to_real": 1.2},
                          "bg20k": {"distance_to_real": 0.9}, "rssn": {"distance_to_real": 0.4}}}
    filters = {"filters": {"salient": {"precision": 0.9, "recall": 0.8},
                           "overall": {"precision": 0.85, "recall": 0.82}}}
    found = verdicts(report.findings({}, grid(), compose=gap, bg20k=filters, numbers=numbers))
    assert found["hybrid_best"] == "yes" and found["single_best"] == "yes"
    assert found["domain_gap"] == "yes" and found["bg20k_filters"] == "yes"
    gap["domain_gap"]["rssn"]["distance_to_real"] = 1.0
    filters["filters"]["overall"]["recall"] = 0.5
    found = verdicts(report.findings({}, grid(best_hybrid=(2.0, 2.0)), compose=gap, bg20k=filters, numbers=numbers))
    assert found["hybrid_best"] == "no" and found["domain_gap"] == "no" and found["bg20k_filters"] == "no"


# ---------------------------------------------------------------------------------------------- files
def test_save_table_and_figure(tmp_path, numbers):
    table = report.table2(numbers)
    csv, page = report.save_table(table, tmp_path, "table2")
    assert pd.read_csv(csv)["sad_trans"].notna().all()
    assert "SAD-TRAN" in page.read_text() and "nan" not in page.read_text().lower()
    fig, ax = plt.subplots()
    png = report.save_figure(fig, tmp_path, "fig")
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "table2.csv", "table2.html"]


# ---------------------------------------------------------------------------------------------- figures
def disk_alpha(size=64, radius=18):
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((radius + 3 - distance) / 6, 0, 1)


def test_fig_training_curves(tmp_path):
    steps = np.arange(1, 31)
    for name, scale in (("ori-tt", 1.0), ("coco-tt", 2.0)):
        write_text(tmp_path / name / "losses.csv",
                   pd.DataFrame({"step": steps, "epoch": steps // 10, "total": scale / steps}).to_csv(index=False))
    fig = report.fig_training_curves(tmp_path)
    assert len(fig.axes[0].get_lines()) >= 2
    plt.close(fig)
    with pytest.raises(ValueError, match="total"):
        report.fig_training_curves({"x": pd.DataFrame({"step": [1], "other": [1.0]})})


def test_fig_domain_gap_and_comp_track(numbers):
    compose = {"domain_gap": {label: {"n": 4, "noise_gap": g, "sharpness_gap": -g, "resolution_gap": g / 2,
                                      "distance_to_real": abs(g - 0.1)}
                              for label, g in (("real", 0.1), ("coco", 1.0), ("bg20k", 0.7), ("rssn", 0.2))}}
    fig = report.fig_domain_gap(compose)
    assert len(fig.axes) == 4
    plt.close(fig)
    with pytest.raises(ValueError, match="domain_gap"):
        report.fig_domain_gap({})
    fig = report.fig_comp_track(sample_metrics(), SAMPLE_EXPERIMENTS, numbers=numbers)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("this run GFM-TT(r18-lite)") for label in labels)
    assert any(label.startswith("paper SHM") for label in labels)
    plt.close(fig)


def test_fig_composition_routes_from_stored_composites(tmp_path):
    alpha = (disk_alpha() * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    write_image(tmp_path / "datasets/am2k/train/original/m_0001.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    write_image(tmp_path / "datasets/am2k/train/mask/m_0001.png", alpha)
    for route in ("coco", "rssn"):
        write_image(tmp_path / f"composites/{route}/image/m_0001_0.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_image(tmp_path / f"composites/{route}/alpha/m_0001_0.png", alpha)
    fig = report.fig_composition_routes(tmp_path / "composites", tmp_path / "datasets", zoom_size=24)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["real photo", "COMP-COCO", "COMP-RSSN"]
    plt.close(fig)
    with pytest.raises(FileNotFoundError):
        report.fig_composition_routes(tmp_path / "nothing", tmp_path / "datasets")


def test_fig_bg20k_examples(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("bg_1", "bg_2"):
        write_image(tmp_path / f"{name}.jpg", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    manifest = pd.DataFrame({"name": ["bg_1", "bg_2"], "status": ["kept", "rejected"], "reason": ["ok", "salient"],
                             "short_side": [40, 40], "width": [60, 60], "height": [40, 40], "split": ["train", None],
                             "saliency_score": [0.0, 0.5], "duplicate_of": [None, None], "hash_distance": [None, None],
                             "detail": ["", ""], "file": ["bg_1.jpg", "bg_2.jpg"], "out_width": [60, 0],
                             "out_height": [40, 0]})
    fig = report.fig_bg20k_examples(manifest, tmp_path, per_reason=1)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_fig_qualitative_picks_the_most_disputed_image(tmp_path):
    gt = disk_alpha()
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        write_image(tmp_path / f"val/original/{name}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        write_image(tmp_path / f"val/mask/{name}.png", (gt * 255).astype(np.uint8))
    for experiment, sads in (("ori-tt", {"a": 1.0, "b": 1.0}), ("coco-tt", {"a": 1.1, "b": 5.0})):
        run = tmp_path / "evaluation" / experiment
        write_text(run / "per_image.csv", pd.DataFrame({"name": list(sads), "sad": list(sads.values())}).to_csv(index=False))
        for name in sads:
            for folder in ("alpha", "focus", "glance"):
                write_image(run / "predictions" / folder / f"{name}.png", (gt * 255).astype(np.uint8))
    fig = report.fig_qualitative(tmp_path / "evaluation", tmp_path / "val")
    assert fig._suptitle.get_text() == "b"
    plt.close(fig)
