"""Offline HTML reports: no CDN, figures embedded, widget output degraded to nothing external."""

from __future__ import annotations

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
