"""Offline HTML reports: no CDN, figures embedded, widget output degraded to nothing external."""

from __future__ import annotations

import json
import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gfm.report import html as reports

PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _executed_notebook(path):
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Stage 9: a test\n\nSome *narrative* with $\\alpha$."),
        new_code_cell("fig", outputs=[new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"})]),
        new_code_cell("df", outputs=[new_output("execute_result", data={"text/html": "<table><tr><td>7.5</td></tr></table>",
                                                                         "text/plain": "7.5"}, execution_count=2)]),
        new_code_cell("widget", outputs=[new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "text/plain": "interactive(children=(...))"})]),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                              "version_minor": 0}}
    nbformat.write(nb, path)
    return path


def test_notebook_html_is_self_contained(tmp_path):
    page = reports.notebook_to_html(_executed_notebook(tmp_path / "09_test.ipynb"), tmp_path / "html" / "09.html")
    text = page.read_text()
    assert "<title>Stage 9: a test</title>" in text
    assert "data:image/png;base64," + PNG_1PX[:20] in text
    assert "<td>7.5</td>" in text
    external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', text)
    assert external == [], f"loads from the network: {external}"
    assert "cdn.jsdelivr" not in text and "cdnjs" not in text and "unpkg" not in text


def test_index_links_pages_and_lists_metrics(tmp_path):
    nb = _executed_notebook(tmp_path / "09_test.ipynb")
    index = reports.build_reports([nb], tmp_path / "html", metrics={"metrics/x.json": {"sad": 12.5, "a": {"b": 1}}},
                                  plots=[("losses", "<svg id='p'></svg>")])
    text = index.read_text()
    assert 'href="09_test.html"' in text and (tmp_path / "html" / "09_test.html").exists()
    assert "<td>sad</td><td>12.5</td>" in text and "<td>a.b</td>" in text
    assert "<svg id='p'></svg>" in text
    assert not list((tmp_path / "html").glob(".*.tmp*")), "temporary files left behind"


def test_unreadable_notebook_names_the_file(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    try:
        reports.notebook_to_html(bad, tmp_path / "bad.html")
    except ValueError as error:
        assert "bad.ipynb" in str(error)
    else:
        raise AssertionError("expected a ValueError")
    assert not (tmp_path / "bad.html").exists()


def test_metrics_and_loss_plots_are_collected_from_files(tmp_path):
    (tmp_path / "metrics" / "train").mkdir(parents=True)
    (tmp_path / "metrics" / "evaluate.json").write_text('{"ori-tt": {"sad": 3.5}}')
    (tmp_path / "metrics" / "train" / "ori-tt.json").write_text('{"seconds": 12}')
    found = reports.collect_metrics(tmp_path / "metrics")
    assert found[(tmp_path / "metrics" / "evaluate.json").as_posix()] == {"ori-tt": {"sad": 3.5}}
    assert len(found) == 2
    run = tmp_path / "models" / "ori-tt"
    run.mkdir(parents=True)
    (run / "losses.csv").write_text("step,epoch,total\n1,0,2.5\n2,0,2.0\n3,1,1.5\n")
    ((name, svg),) = reports.loss_plots_svg(tmp_path / "models")
    assert name.endswith("ori-tt/losses.csv") and svg.startswith("<svg") and "ori-tt" in svg


def test_seeded_loss_plots(tmp_path):
    for seed in (0, 1):
        run = tmp_path / "models" / "ori-tt" / f"s{seed}"
        run.mkdir(parents=True)
        (run / "losses.csv").write_text("step,epoch,total\n1,0,2.5\n2,0,2.0\n")
    plots = reports.loss_plots_svg(tmp_path / "models")
    assert [name.split("models/")[1] for name, _ in plots] == ["ori-tt/s0/losses.csv", "ori-tt/s1/losses.csv"]
    assert "ori-tt s1" in plots[1][1]


def _findings_json():
    return {"claims": {"two_decoders": {"kind": "paper", "verdict": "reproduced", "code": 1, "metric": "sad",
                                        "arms": ["ori-single", "ori-tt"], "diff": -2.5, "relative": -0.2,
                                        "ci95": [-3.0, -2.0], "n_images": 16, "n_seeds": 3},
                       "ppm": {"kind": "paper", "verdict": "not_run", "code": None, "metric": "sad", "arms": [],
                               "diff": None, "relative": None, "ci95": [None, None], "n_images": 0, "n_seeds": 0}},
            "summary": {"reproduced": 1, "contradicted": 0, "inconclusive": 0, "not_run": 1}}


def test_index_headline_findings_links_and_navigation(tmp_path):
    nbs = [_executed_notebook(tmp_path / f"0{k}_stage.ipynb") for k in (5, 6)]
    paper = tmp_path / "reports" / "paper"
    paper.mkdir(parents=True)
    claim = "Two decoders (glance + focus) beat a single decoder (SINGLE), a claim long enough to be cut elsewhere"
    (paper / "findings.csv").write_text("id,kind,claim,arms,diff,ci95,relative,n_images,n_seeds,verdict\n"
                                        f'two_decoders,paper,"{claim}",ori-single vs ori-tt,-2.5,"[-3, -2]",-0.2,16,3,'
                                        "reproduced\n")
    for name in ("table1.html", "table1.csv", "findings.html", "forest.png"):
        (paper / name).write_text("x")
    metrics = {"metrics/findings.json": _findings_json()}
    index = reports.build_reports(nbs, tmp_path / "reports" / "html", metrics=metrics, paper_dir=paper)
    text = index.read_text()
    assert "reproduced: <b>1</b>" in text and "not run: <b>1</b>" in text
    assert claim in text and '<td class="reproduced"><b>reproduced</b></td>' in text
    assert 'href="../paper/table1.html"' in text and 'href="../paper/table1.csv"' in text
    assert 'href="../paper/forest.png"' in text and 'href="../paper/findings.html"' in text
    assert '<nav class="gfm-nav"><b>index</b> <a href="05_stage.html">05_stage</a>' in text
    page = (tmp_path / "reports" / "html" / "06_stage.html").read_text()
    assert '<a href="index.html">index</a> <a href="05_stage.html">05_stage</a> <b>06_stage</b>' in page
    external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?:[^"]+)"', text)
    assert external == []
    # without the paper folder: the narrow findings.json still gives the table
    index = reports.build_reports([], tmp_path / "alone", metrics=metrics)
    text = index.read_text()
    assert "<td>two_decoders</td>" in text and "[-3, -2]" in text and "Not run: no paper report folder" in text
    assert "No findings" in reports.build_reports([], tmp_path / "none").read_text()


def test_run_details_from_run_keys_top_level_keys_or_unknown():
    rows = reports.run_details({
        "metrics/train/ori-tt.json": {"device": "cpu", "precision": "fp32", "time_s": 78.5, "loss_total": 1.9},
        "metrics/evaluate.json": {"ori-tt": {"sad": 3.0}},                     # records no run detail
        "metrics/bg20k.json": {"run": {"commit": "abc123", "cpu": "Xeon", "torch": "2.5.1", "wall_s": 2.2},
                               "seconds": 9.0}})
    assert [r["source"] for r in rows] == ["metrics/bg20k.json", "metrics/train/ori-tt.json"]
    assert rows[0] == {"source": "metrics/bg20k.json", "commit": "abc123", "CPU": "Xeon", "device": "unknown",
                       "precision": "unknown", "torch": "2.5.1", "wall time (s)": 2.2}
    assert rows[1]["device"] == "cpu" and rows[1]["wall time (s)"] == 78.5 and rows[1]["commit"] == "unknown"
    assert reports.run_details({"metrics/x.json": {"sad": 1.0}}) == [
        {"source": "unknown", **{heading: "unknown" for heading in reports.RUN_FIELDS}}]


def test_build_site_reads_every_input(tmp_path):
    notebooks = tmp_path / "reports" / "notebooks"
    notebooks.mkdir(parents=True)
    _executed_notebook(notebooks / "06_paper.ipynb")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "findings.json").write_text(json.dumps(_findings_json()))
    run = tmp_path / "models" / "ori-tt" / "s0"
    run.mkdir(parents=True)
    (run / "losses.csv").write_text("step,total\n1,2.0\n2,1.0\n")
    (run / "train_summary.json").write_text(json.dumps({"device": "cpu", "precision": "bf16", "seconds": 12.0}))
    (tmp_path / "reports" / "paper").mkdir()
    (tmp_path / "reports" / "paper" / "table4.html").write_text("x")
    index = reports.build_site(notebooks, tmp_path / "reports" / "html", metrics_dir=tmp_path / "metrics",
                               models_dir=tmp_path / "models")
    text = index.read_text()
    assert 'href="../paper/table4.html"' in text and "<td>bf16</td>" in text and "reproduced: <b>1</b>" in text
    assert "<svg" in text and 'href="06_paper.html"' in text
