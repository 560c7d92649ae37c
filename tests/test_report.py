"""The paper report stage (gfm.report.stage.run, notebooks/06_paper.ipynb) on a synthetic run built in a
temporary folder: every output written, findings.json in the agreed shape, "not run" where a stage is missing."""

from __future__ import annotations

import ast
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from gfm.core.config import parse_params  # noqa: E402
from gfm.core.io import write_bytes, write_json, write_text  # noqa: E402
from gfm.report import results, stage  # noqa: E402
from gfm.report import stats as st  # noqa: E402
from test_report_inputs import PNG_1PX, write_evaluation  # noqa: E402
from test_report_results import finished_project  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_paper.ipynb"
EFFECTS = {"ori-tt": 0.0, "coco-tt": 12.0, "bg20k-tt": 5.0, "rssn-tt": 1.5, "ori-single": 3.0}


def synthetic_run(root: Path, *, compose_figures: bool = False) -> tuple:
    """A run of the sample grid under ``root``: stage metrics, evaluation (3 seeds), losses, stage
    figures of stages 2 and 5 (and 3 if asked). Returns (params, raw params mapping)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    paths = {"datasets": root / "datasets", "bg20k": root / "bg20k", "compose": root / "composites",
             "train": root / "models", "evaluate": root / "evaluation", "report": root / "reports",
             "metrics": root / "metrics"}
    raw["data"]["datasets"] = str(paths["datasets"])
    raw["bg20k"]["out"], raw["compose"]["out"] = str(paths["bg20k"]), str(paths["compose"])
    raw["train"]["out"], raw["evaluate"]["out"] = str(paths["train"]), str(paths["evaluate"])
    raw["report"] = {"out": str(paths["report"]), "metrics_dir": str(paths["metrics"]),
                     "findings_out": str(paths["metrics"] / "findings.json"),
                     "headline_out": str(paths["metrics"] / "headline.json"),
                     "paper_profile": str(ROOT / "profiles" / "paper.yaml"), "results": str(root / "results")}
    for item in raw["train"]["experiments"].values():
        item["data"] = str(paths["datasets"] / "am2k" / "train") if item["track"] == "ori" \
            else str(paths["compose"] / item["track"])
    params = parse_params(raw, source=root / "params.yaml")
    write_evaluation(paths["evaluate"], EFFECTS, seeds=3, images=20)
    write_text(paths["evaluate"] / "table6.csv", "test,d1,d2,sad,mse,mad,grad,conn\nhybrid,2,1.5,3.0,0.1,0.1,1,1\n"
                                                 "hybrid,3,2,2.0,0.1,0.1,1,1\nsingle,2.6,2.6,2.5,0.1,0.1,1,1\n")
    write_text(paths["evaluate"] / "complexity.csv",
               "backbone,parameters_m,gmac,latency_s,device\nr34,40.0,130.0,2.0,cpu\n")
    for experiment in EFFECTS:
        for seed in range(3):
            write_text(paths["train"] / experiment / f"s{seed}" / "losses.csv",
                       "step,total\n" + "".join(f"{s},{2.0 / s + 0.01 * seed}\n" for s in range(1, 21)))
    metrics = paths["metrics"]
    write_json(metrics / "download.json", {"source": "embedded"})
    write_json(metrics / "bg20k.json", {"seconds": 2.0, "filters": {"overall": {"predicted": 33, "actual": 34,
                                                                                  "true_positives": 28}}})
    write_json(metrics / "compose.json", {"domain_gap": {label: {"n": 48, "noise_gap": g, "distance_to_real": abs(g)}
                                                         for label, g in (("real", 0.0), ("coco", 1.0),
                                                                          ("bg20k", 0.6), ("rssn", 0.3))}})
    write_json(metrics / "evaluate.json", {e: {"sad": 1.0, "seeds": 3} for e in EFFECTS})
    write_bytes(paths["bg20k"] / "figures" / "gallery.png", PNG_1PX)
    write_bytes(paths["evaluate"] / "figures" / "qualitative_img001.png", PNG_1PX)
    write_bytes(paths["evaluate"] / "figures" / "decoders_ori-tt.png", PNG_1PX)
    if compose_figures:
        write_bytes(paths["compose"] / "figures" / "routes.png", PNG_1PX)
    results.save(finished_project(root / "study-checkout"), root / "results" / "study")
    return params, raw


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    params, raw = synthetic_run(root)
    return root, params, stage.run(params, n_boot=300), raw


def test_run_writes_every_table_figure_and_findings(built):
    root, params, report, _ = built
    out = root / "reports" / "paper"
    assert report.out == out
    names = sorted(p.name for p in out.iterdir())
    for name in ("paper_numbers", "overview", *(f"table{k}" for k in range(1, 8)), "table6_best", "findings"):
        assert f"{name}.csv" in names and f"{name}.html" in names, name
    assert {"findings.json", "forest.png", "training_curves.png", "domain_gap.png", "comp_track.png"} <= set(names)
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    assert set(report.figures) == {"forest", "training_curves", "domain_gap", "comp_track"} and not report.not_drawn
    detail = json.loads((out / "findings.json").read_text())
    assert detail["claims"]["two_decoders"]["comparisons"]                # every comparison, in the report folder
    assert "committed_study.csv" in names and "committed_study.html" in names


def test_committed_runs_beside_this_run(built, monkeypatch):
    root, params, report, _ = built
    (run, verdicts), = report.committed
    assert run.name == "study" and run.folder == root / "results" / "study"
    assert list(verdicts.columns) == ["claim", "kind", "this run (sample)", "study (committed)", "change"]
    assert list(verdicts["claim"]) == list(report.findings["claims"])     # this run's claims first, in order
    two = verdicts.set_index("claim").loc["two_decoders"]
    assert two["this run (sample)"].startswith("reproduced") and two["study (committed)"].startswith("reproduced")
    assert two["change"] == "same"
    written = pd.read_csv(report.out / "committed_study.csv")
    assert list(written["change"]) == list(verdicts["change"])
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    report.show_committed()
    texts = [getattr(o, "data", "") for o in shown if type(o).__name__ == "Markdown"]
    assert str(run.folder) in texts[0] and "profile sample" in texts[0] and "table4" in texts[1]
    frames = [o for o in shown if isinstance(o, pd.DataFrame)]
    assert frames[0] is verdicts and list(frames[1]["experiment"]) == ["ori-tt"]    # the committed run's own rows
    assert sum(type(o).__name__ == "Image" for o in shown) == 1                      # its forest plot


def test_metrics_findings_json(built):
    root, params, report, _ = built
    narrow = json.loads((root / "metrics" / "findings.json").read_text())
    assert set(narrow) == {"claims", "summary"}
    assert set(narrow["claims"]) == set(report.findings["claims"])
    assert narrow["summary"] == report.findings["summary"]
    assert sum(narrow["summary"].values()) == len(narrow["claims"])
    two = narrow["claims"]["two_decoders"]
    assert (two["kind"], two["verdict"], two["code"], two["metric"]) == ("paper", st.REPRODUCED, 1, "sad")
    assert two["arms"] == ["ori-single", "ori-tt"] and two["n_seeds"] == 3 and two["n_images"] == 20
    assert narrow["claims"]["ppm"] == {"kind": "paper", "verdict": st.NOT_RUN, "code": None, "metric": "sad",
                                      "arms": [], "diff": None, "relative": None, "ci95": [None, None],
                                      "n_images": 0, "n_seeds": 0}


def test_tables_and_findings_of_the_run(built):
    root, params, report, _ = built
    table1 = pd.read_csv(report.out / "table1.csv")
    ours = table1[table1["experiment"] == "coco-tt"].iloc[0]
    assert ours["seeds"] == 3 and ours["sad_ci95"] > 0 and ours["method"] == "GFM-TT(r18-slim)"
    refs = table1[table1["track"] == "reference"]
    assert list(refs["experiment"]) == ["baselines/blank", "baselines/closed_form"]
    assert report.tables["table7"].frame.loc["GFM-TT(r)", ("gmac", "this run")] == 130.0
    assert report.table6_best.set_index("test").loc["hybrid", "agrees"] == "yes"
    assert list(report.findings_table["id"]) == list(report.findings["claims"])
    page = (report.out / "findings.html").read_text()
    assert report.findings["claims"]["rssn_closes_gap"]["text"] in html.unescape(page)   # the full text
    assert set(report.overview["experiment"]) == set(EFFECTS)


def test_stage_figures_and_not_run(built, monkeypatch):
    root, params, report, _ = built
    assert [c for c, _ in report.stage_figures["evaluate"]] == ["Decoders ori tt", "Qualitative img001"]
    assert report.stage_figures["bg20k"][0][1] == root / "bg20k" / "figures" / "gallery.png"
    assert report.stage_figures["compose"] == []
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.extend(objects))
    report.show_stage_figures("compose")
    assert "not run" in shown[-1].data
    report.show_stage_figures("evaluate")
    assert "Decoders ori tt" in shown[-4].data and shown[-1].data == PNG_1PX       # caption, then the PNG itself
    report.show_figure("nothing")
    assert "no figure 'nothing'" in shown[-1].data
    report.show_figure("forest")
    assert shown[-1].data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_replaces_the_folder_and_says_not_run(tmp_path):
    params, _ = synthetic_run(tmp_path, compose_figures=True)
    stage.run(params, n_boot=200)
    write_text(tmp_path / "reports" / "paper" / "stale.csv", "x\n")
    for losses in (tmp_path / "models").rglob("losses.csv"):
        losses.unlink()
    (tmp_path / "metrics" / "compose.json").unlink()
    report = stage.run(params, n_boot=200)
    names = {p.name for p in report.out.iterdir()}
    assert "stale.csv" not in names and "training_curves.png" not in names and "domain_gap.png" not in names
    assert report.not_drawn["training_curves"].startswith("not run") and "domain_gap" in report.not_drawn
    assert report.findings["claims"]["domain_gap"]["verdict"] == st.NOT_RUN
    assert [c for c, _ in report.stage_figures["compose"]] == ["Routes"]


def test_notebook_is_thin_and_runs(built, monkeypatch, capsys):
    """06_paper: one parameter (params_file), no function definitions, imports gfm.core and gfm.report.stage only;
    its code cells run against the synthetic run."""
    root, params, _, raw = built
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "".join(tagged[0]["source"]).split("=")[0].strip() == "params_file"
    imported = set()
    for source in code:
        tree = ast.parse(source)
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module.startswith("gfm")}
    assert imported == {"gfm.core", "gfm.core.config", "gfm.report"}
    params_file = write_text(root / "params.yaml", yaml.safe_dump(raw))
    monkeypatch.chdir(ROOT)
    namespace = {}
    for source in [f"params_file = {str(params_file)!r}", *code[1:]]:
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    assert namespace["report"].out == root / "reports" / "paper"
    assert "evaluated on: " in capsys.readouterr().out


def test_benchmarks_table5_protocol_and_fusions(tmp_path):
    """A run evaluated on AM-2k and P3M-500-P, with a Table 5 set (ori-tt, ori-ft, ori-bt) and both fusions."""
    from test_report_inputs import write_evaluation as write

    params, _ = synthetic_run(tmp_path)
    evaluation = tmp_path / "evaluation"
    write(evaluation / "benchmarks" / "p3m500p", {"ori-tt": 0.0, "coco-tt": 4.0}, seeds=2, images=10)
    write_json(evaluation / "protocol.json", {
        "strategy": "hybrid", "fusion": "official", "table5_d": 3.0,
        "benchmarks": [{"name": "am2k", "title": "AM-2k validation", "out": "."},
                       {"name": "p3m500p", "title": "P3M-500-P (500 portraits)", "out": "benchmarks/p3m500p"}]})
    write_text(evaluation / "fusions.csv", "benchmark,run,experiment,seed,fusion,sad,mse,mad,grad,conn,sad_trans\n"
               + "".join(f"am2k,ori-tt-s{k},ori-tt,{k},{kind},{v + k * (kind != 'difference')},0.1,0.1,1,1,{v}\n"
                         for k in range(2) for kind, v in (("official", 2.0), ("upsampled", 2.5), ("difference", 0.5))))
    rows = []
    for seed in range(2):
        for row, experiment, sad in (("TT", "ori-tt", 3.0), ("FT", "ori-ft", 4.0), ("BT", "ori-bt", 5.0),
                                     ("EN-median", "ori-tt+ori-ft+ori-bt", 2.0 + seed)):
            folder = (f"en-median/{experiment}" if row == "EN-median" else experiment) + f"/s{seed}"
            write_text(evaluation / "table5" / folder / "per_image.csv",
                       "name,sad,mse,mad,grad,conn\n" + "".join(f"img{i},{sad + i},0.1,0.1,1,1\n" for i in range(2)))
            rows.append(f"{experiment}-s{seed},{row},{experiment},{seed},r18_slim,{folder}\n")
    write_text(evaluation / "table5" / "runs.csv", "run,row,experiment,seed,backbone,folder\n" + "".join(rows))
    report = stage.run(params, n_boot=50)

    assert {"table1_p3m500p", "table2_p3m500p"} <= set(report.tables)
    table1 = pd.read_csv(report.out / "table1_p3m500p.csv")
    coco = table1[table1["experiment"] == "coco-tt"].iloc[0]
    per_image = [pd.read_csv(evaluation / "benchmarks" / "p3m500p" / "coco-tt" / f"s{k}" / "per_image.csv")
                 for k in range(2)]
    assert coco["seeds"] == 2 and coco["sad"] == pytest.approx(sum(t["sad"].mean() for t in per_image) / 2, rel=1e-5)
    assert table1["sad_paper_am2k"].isna().all() and table1["sad_paper_pm10k"].notna().any()   # PM-10k's numbers only
    shown = report.tables["table1_p3m500p"]
    assert "trained on PM-10k" in shown.caption and "not comparable" in shown.caption
    assert "P3M-500-P" in shown.title and (report.out / "table2_p3m500p.html").is_file()

    table5 = report.tables["table5"].frame
    en = table5.loc[("ORI", "EN-median(r18-slim)")]
    assert en[("", "experiment")] == "ori-tt+ori-ft+ori-bt" and en[("", "seeds")] == 2
    assert en[("sad", "this run")] == pytest.approx(3.0)                   # seeds 2.5 and 3.5
    assert table5.loc[("ORI", "GFM-FT(r18-slim)"), ("sad", "this run")] == pytest.approx(4.5)
    assert "1/3 (evaluate.table5_d)" in report.tables["table5"].caption

    fusions = pd.read_csv(report.out / "fusions.csv").set_index("experiment")
    assert fusions.loc["ori-tt", "runs"] == 2 and fusions.loc["ori-tt", "sad_official"] == pytest.approx(2.5)
    assert fusions.loc["ori-tt", "sad_difference"] == pytest.approx(0.5)
    assert report.protocol["fusion"] == "official" and len(report.fusions) == 1
