"""Offline HTML reports: no CDN, figures embedded, maths as MathML, no widget reprs, progress bars or
parameter cells on the pages, full claim texts on the index."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gfm.core.config import ConfigError, load_params, to_dict
from gfm.report import html as reports

ROOT = Path(__file__).resolve().parents[1]

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
    assert "interactive(children=" not in text, "a widget's text repr is on the page"


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


def _grid_inputs(root):
    """What the html stage reads after a profile switch: the stage pages, metrics and run folders of
    experiments ``a`` and ``a-b`` (a name that starts with another) and of ``c``, left over."""
    notebooks, metrics, models = root / "reports" / "notebooks", root / "metrics", root / "models"
    notebooks.mkdir(parents=True)
    _executed_notebook(notebooks / "01_download.ipynb")
    (metrics / "train").mkdir(parents=True)
    (metrics / "run").mkdir()
    (metrics / "run" / "01_download.json").write_text(json.dumps({"commit": "abc123", "wall_s": 2.0}))
    for k, experiment in enumerate(("a", "a-b", "c")):
        _executed_notebook(notebooks / f"04_train_{experiment}.ipynb")
        (metrics / "train" / f"{experiment}.json").write_text(json.dumps({"loss_total": 1.5 + k}))
        (metrics / "train" / f"{experiment}_losses.csv").write_text("step,s0\n1,2.0\n")
        (metrics / "run" / f"04_train_{experiment}.json").write_text(json.dumps({"commit": f"c0ffee{k}"}))
        run = models / experiment / "s0"
        run.mkdir(parents=True)
        (run / "losses.csv").write_text("step,total\n1,2.0\n2,1.0\n")
        (run / "train_summary.json").write_text(json.dumps({"device": f"cpu{k}", "seconds": 12.0}))
    return notebooks, metrics, models


def _grid_params(root, experiments):
    """The repository's params.yaml with ``experiments`` (copies of ori-tt) as its grid, at ``root``."""
    raw = to_dict(load_params(ROOT / "params.yaml"))
    raw["train"]["experiments"] = {e: raw["train"]["experiments"]["ori-tt"] for e in experiments}
    raw["evaluate"].update(experiments=list(experiments), table6_model=experiments[0])
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root / "params.yaml"


def test_site_leaves_out_experiments_of_another_profile(tmp_path, capsys):
    notebooks, metrics, models = _grid_inputs(tmp_path)
    out = tmp_path / "reports" / "html"
    assert reports.main([str(notebooks), str(out), "--metrics", str(metrics), "--models", str(models),
                         "--params", str(_grid_params(tmp_path, ["a", "a-b"]))]) == 0
    assert capsys.readouterr().out == f"{out / 'index.html'}: 3 report(s)\n"
    assert sorted(p.name for p in out.glob("*.html")) == ["01_download.html", "04_train_a-b.html",
                                                         "04_train_a.html", "index.html"]
    text = (out / "index.html").read_text()
    for shown in ('href="04_train_a.html"', 'href="04_train_a-b.html"', "train/a.json", "train/a-b.json",
                  "run/04_train_a-b.json", "run/01_download.json", "<td>c0ffee1</td>", "<td>cpu1</td>",
                  "a s0: total loss", "a-b s0: total loss"):
        assert shown in text, f"{shown} is missing from the index"
    folders = ", ".join(p.as_posix() for p in (metrics / "run", metrics / "train", models, notebooks))
    assert f"<p>Not shown, left over from another profile's run: c ({folders})</p>" in text
    assert "04_train_c" not in text and "train/c.json" not in text and "c0ffee2" not in text
    assert "cpu2" not in text and "c s0: total loss" not in text
    # the name is matched whole: a grid of a alone leaves a-b out
    assert sorted(reports.collect_metrics(metrics, experiments=["a"])) == [
        (metrics / name).as_posix() for name in ("run/01_download.json", "run/04_train_a.json", "train/a.json")]
    assert list(reports.collect_run_files(models, experiments=["a"])) == [
        (models / "a/s0/train_summary.json").as_posix()]
    assert [name for name, _ in reports.loss_plots_svg(models, experiments=["a"])] == [
        (models / "a/s0/losses.csv").as_posix()]
    # without a grid, every experiment is shown and nothing is said to be left out
    text = reports.build_site(notebooks, tmp_path / "all", metrics_dir=metrics, models_dir=models).read_text()
    assert all(f'href="04_train_{e}.html"' in text and f"train/{e}.json" in text and f"{e} s0: total loss" in text
               for e in ("a", "a-b", "c"))
    assert "Not shown" not in text


def test_a_bad_params_file_is_named(tmp_path):
    notebooks, metrics, models = _grid_inputs(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [not, a, mapping\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        reports.main([str(notebooks), str(tmp_path / "html"), "--params", str(bad)])
    assert not (tmp_path / "html").exists()


def _maths_notebook(path, *more_cells):
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Maths\n\n## The loss $L_{CM}$\n\n"
                          "Alpha blending (Eq. 1): $I = \\alpha F + (1-\\alpha) B$, with $0<\\alpha<1$.\n\n"
                          "$$\\mathcal{L} = \\mathcal{L}_{CE} + \\mathcal{L}_{FD} + \\mathcal{L}_{CM}$$\n\n"
                          "Money in code: `cost $5 and $6`, escaped dollars: \\$7 and \\$8.\n\n"
                          "```\necho $HOME and $PATH\n```"),
        *more_cells,
    ]
    nbformat.write(nb, path)
    return path


def test_maths_becomes_mathml_and_code_keeps_its_dollars(tmp_path):
    page = reports.notebook_to_html(_maths_notebook(tmp_path / "09_maths.ipynb"), tmp_path / "09.html")
    text = page.read_text()
    inline = re.findall(r'<math display="inline">.*?</math>', text, re.S)
    block = re.findall(r'<math display="block">.*?</math>', text, re.S)
    assert len(inline) == 3 and len(block) == 1
    assert re.search(r'<h2 id="[^"]+">The loss <math display="inline"><mrow><msub>', text), "maths in a heading"
    assert "ns0:" not in text
    assert "<mi>&#x003B1;</mi>" in inline[1] or "<mi>α</mi>" in inline[1]      # \alpha is a symbol, not text
    assert "<mo>&#x0003C;</mo>" in inline[2] or "<mo>&lt;</mo>" in inline[2]   # "<" stays escaped
    assert "<msub>" in block[0] and "$$" not in text
    assert "\\alpha" not in text and "\\mathcal" not in text
    assert "<code>cost $5 and $6</code>" in text
    assert "escaped dollars: $7 and $8." in text
    assert "echo $HOME and $PATH" in text


def test_a_formula_that_does_not_convert_stays_text_with_a_warning(tmp_path):
    notebook = _maths_notebook(tmp_path / "09_maths.ipynb", new_markdown_cell("A broken one: $a_1_2$ stays."))
    with pytest.warns(UserWarning, match=r"09_maths\.ipynb: formula 'a_1_2' cannot be converted to MathML \(DoubleSubscriptsError\)"):
        page = reports.notebook_to_html(notebook, tmp_path / "09.html")
    text = page.read_text()
    assert "A broken one: $a_1_2$ stays." in text
    assert text.count("<math ") == 4, "the other formulas of the page are still converted"


PLAIN_WIDGET = "Inspector(children=(HBox(children=(Dropdown(description='foreground', options=('m_0001',), …"


def _plumbing_notebook(path):
    widget = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    bar = "ori-tt-s0: {:>3}%|{:<10}| {}/60 [00:01<00:01, 20.0step/s]"
    parameters = new_code_cell('params_file = "params.yaml"  # default')
    parameters.metadata["tags"] = ["parameters"]
    injected = new_code_cell('params_file = "injected.yaml"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Stage 9: plumbing"),
        parameters, injected,
        new_code_cell("inspector", outputs=[new_output("execute_result", execution_count=3, data={
            "application/vnd.jupyter.widget-view+json": widget, "text/plain": PLAIN_WIDGET})]),
        new_code_cell("plain_widget", outputs=[new_output("execute_result", execution_count=4, data={
            "text/plain": "VBox(children=(IntSlider(value=3), Output()))"})]),
        new_code_cell("train()", outputs=[
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": widget,
                                             "text/plain": bar.format(0, "", 0)}),
            new_output("stream", name="stderr", text="\r".join(bar.format(p, "█" * (p // 10), p * 60 // 100)
                                                               for p in (0, 50, 100)) + "\n"),
            new_output("stream", name="stderr", text=bar.format(50, "█████", 30) + "\rUserWarning: kept\n"
                                                     "another message kept\n"),
            new_output("stream", name="stdout", text="step 60: loss 0.25\n")]),
        new_code_cell("save_figure(fig, out, 'forest')", outputs=[new_output(
            "execute_result", execution_count=5, data={"text/plain": "PosixPath('reports/paper/forest.png')"})]),
        new_code_cell("save_all()", outputs=[new_output("execute_result", execution_count=6, data={
            "text/plain": "[PosixPath('reports/paper/a.png'), PosixPath('reports/paper/b.png')]"})]),
        new_code_cell("fig", outputs=[new_output("display_data", data={"image/png": PNG_1PX,
                                                                        "text/plain": "<Figure>"})]),
        new_code_cell("table", outputs=[new_output("execute_result", execution_count=7, data={
            "text/html": "<table><tr><td>7.5</td></tr></table>", "text/plain": "7.5"})]),
        new_code_cell("gap", outputs=[new_output("execute_result", execution_count=8, data={"text/plain": "0.125"})]),
    ]
    nbformat.write(nb, path)
    return path


def test_pages_hide_parameters_widget_reprs_progress_bars_and_path_reprs(tmp_path):
    page = reports.notebook_to_html(_plumbing_notebook(tmp_path / "09_plumbing.ipynb"), tmp_path / "09.html")
    text = page.read_text()
    assert "params_file" not in text and "injected.yaml" not in text, "a parameter cell is on the page"
    assert "children=(" not in text, "a widget repr is on the page"
    assert "step/s" not in text and "%|" not in text, "a progress bar is on the page"
    assert "PosixPath" not in text and "reports/paper/forest.png" not in text, "a path repr is on the page"
    # the results stay: figure, table, a plain number, stdout, and the other stderr messages
    assert "data:image/png;base64," + PNG_1PX[:20] in text and "<td>7.5</td>" in text
    assert "0.125" in text and "step 60: loss 0.25" in text
    assert "UserWarning: kept" in text and "another message kept" in text
    # the cells themselves (their code) are still shown
    assert "save_figure" in text and "plain_widget" in text and "inspector" in text


def test_findings_table_shows_the_whole_claim(tmp_path):
    claim = ("A made-up claim for this test, longer than any table cell should hold on one line: models trained "
             "on RSSN composites come closer to the ORI-Track models on real photos than models trained on plain "
             "COCO or BG-20k composites, on every one of the five metrics, for every seed of the grid")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "findings.csv").write_text("id,kind,claim,verdict\n" f'rssn_closes_gap,paper,"{claim}",inconclusive\n')
    text = reports.build_reports([], tmp_path / "html", metrics={"metrics/findings.json": _findings_json()},
                                 paper_dir=paper).read_text()
    assert f'<td class="claim">{claim}</td>' in text
    assert "…" not in text and "..." not in text
    assert "td.claim{" in text and "white-space:normal" in text
