"""A report site like the pipeline's, built from small fake executed notebooks.

:func:`build_pipeline_site` writes, under a scratch root, what the ``html`` stage of dvc.yaml reads --
one executed notebook per page of the pipeline (:func:`stage_pages`) in ``reports/notebooks``, the
metrics files (``metrics/findings.json`` with claims and summary, ``metrics/headline.json``, run
details), training runs with ``losses.csv`` and the paper report's folder -- and builds the site with
the stage's own command, ``python -m gfm.report.html``. Every notebook carries the plumbing the real
ones carry (papermill parameter cells, tqdm bars as text and as widget views, widget reprs, a
``PosixPath`` result) beside the results (maths, a link to the official code, a figure, a table).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from gfm.core.config import load_params

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_CODE = "https://github.com/JizhiziLi/GFM"
#: The dvc.yaml ``html`` stage's command (report.out = reports, train.out = artifacts/models), without its
#: ``--params params.yaml``: the scratch site has no params.yaml, and its pages are exactly one grid's.
HTML_STAGE = ("-m", "gfm.report.html", "reports/notebooks", "reports/html", "--metrics", "metrics",
              "--models", "artifacts/models")
FINDINGS = {"claims": {"two_decoders": {"kind": "paper", "verdict": "reproduced", "code": 1, "metric": "sad",
                                        "arms": ["ori-single", "ori-tt"], "diff": -2.5, "relative": -0.2,
                                        "ci95": [-3.0, -2.0], "n_images": 16, "n_seeds": 3},
                       "comp_order": {"kind": "paper", "verdict": "inconclusive", "code": 0, "metric": "sad",
                                      "arms": ["coco-tt", "bg20k-tt"], "diff": -7.8, "relative": -0.29,
                                      "ci95": [-16.1, 1.4], "n_images": 120, "n_seeds": 3},
                       "ppm": {"kind": "paper", "verdict": "not_run", "code": None, "metric": "sad", "arms": [],
                               "diff": None, "relative": None, "ci95": [None, None], "n_images": 0, "n_seeds": 0}},
            "summary": {"reproduced": 1, "contradicted": 0, "inconclusive": 1, "not_run": 1}}
TQDM_WIDGET = "HBox(children=(HTML(value=''), FloatProgress(value=0.0, max=60.0), HTML(value='')))"
INSPECTOR = "Inspector(children=(HBox(children=(Dropdown(description='foreground', options=('m_0001',), …"
PLAIN_WIDGET = "VBox(children=(IntProgress(value=3, max=10), Output()))"


def stage_pages(root: Path = ROOT) -> list[str]:
    """The pipeline's report pages: one per stage notebook of ``root/notebooks``, the training
    notebook once per experiment of ``root/params.yaml`` (``04_train_<experiment>``)."""
    experiments = list(load_params(root / "params.yaml").train.experiments)
    pages = []
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        pages += [f"{notebook.stem}_{e}" for e in experiments] if notebook.stem == "04_train" else [notebook.stem]
    return pages


def build_pipeline_site(root: Path, pages: list[str]) -> Path:
    """The site of ``pages`` under ``root/reports/html``, built by the ``html`` stage's command -> index.

    Its inputs are written first: ``root/reports/notebooks/<page>.ipynb`` (:func:`executed_notebook`),
    ``root/metrics`` (:data:`FINDINGS`, headline, evaluate and per-page run details),
    ``root/artifacts/models/<experiment>/s0`` and ``root/reports/paper``.
    """
    for page in pages:
        executed_notebook(root / "reports" / "notebooks" / f"{page}.ipynb", page)
    experiments = [page.removeprefix("04_train_") for page in pages if page.startswith("04_train_")]
    sad = {e: 10.0 + k for k, e in enumerate(experiments)}
    _json(root / "metrics" / "findings.json", FINDINGS)
    _json(root / "metrics" / "headline.json", {"verdicts": FINDINGS["summary"], "sad": {**sad, "blank": 90.0}})
    _json(root / "metrics" / "evaluate.json", {**{e: {"sad": v, "seeds": 1} for e, v in sad.items()},
                                               "baselines": {"blank": {"sad": 90.0}}})
    for page in pages:
        _json(root / "metrics" / "run" / f"{page}.json", {"notebook": f"notebooks/{page}.ipynb", "commit": "8c7ea2f",
                                                          "cpu": "AMD EPYC", "torch": "2.5.1", "wall_s": 1.5})
    for e in experiments:
        run = root / "artifacts" / "models" / e / "s0"
        run.mkdir(parents=True)
        (run / "losses.csv").write_text("step,epoch,total\n1,0,2.5\n2,0,2.0\n3,1,1.5\n")
        _json(run / "train_summary.json", {"device": "cpu", "precision": "bf16", "seconds": 12.0})
    paper = root / "reports" / "paper"
    paper.mkdir(parents=True)
    (paper / "findings.csv").write_text(
        "id,kind,claim,arms,diff,ci95,relative,n_images,n_seeds,verdict\n"
        'two_decoders,paper,"Two decoders (glance + focus) beat a single decoder",ori-single vs ori-tt,-2.5,'
        '"[-3, -2]",-0.2,16,3,reproduced\n'
        'comp_order,paper,"BG-20k composites beat COCO composites",coco-tt vs bg20k-tt,-7.8,"[-16.1, 1.4]",'
        "-0.29,120,3,inconclusive\n"
        "ppm,paper,The pyramid pooling module helps,,,,,0,0,not_run\n")
    (paper / "table1.html").write_text("<table><tr><td>1</td></tr></table>")
    (paper / "table1.csv").write_text("a\n1\n")
    (paper / "forest.png").write_bytes(base64.b64decode(_figure_png()))
    done = subprocess.run([sys.executable, *HTML_STAGE], cwd=root, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(HTML_STAGE)} failed in {root}:\n{done.stdout}\n{done.stderr}")
    return root / "reports" / "html" / "index.html"


def executed_notebook(path: Path, page: str) -> Path:
    """An executed stage notebook for ``page``: narrative with inline and display maths and a link
    to the official code, papermill's parameter cells, a tqdm bar (stderr text, a frozen ``0%|``
    bar and the widget view with its ``HBox(children=...`` repr), the inspector's and a text-only
    widget repr, a ``PosixPath`` result, a figure, a table and printed output."""
    widget = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    bar = "{:>3}%|{:<10}| {}/60 [00:0{}<00:03, 20.0it/s]"
    parameters = new_code_cell('params_file = "params.yaml"  # default')
    parameters.metadata["tags"] = ["parameters"]
    injected = new_code_cell(f'params_file = "injected.yaml"\nstage = "{page}"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(f"# Stage {page}\n\nAlpha blending (Eq. 1): $I = \\alpha F + (1-\\alpha) B$, "
                          "with $0<\\alpha<1$.\n\n"
                          "$$\\mathcal{L} = \\mathcal{L}_{CE} + \\mathcal{L}_{FD} + \\mathcal{L}_{CM}$$\n\n"
                          f"The official code: [JizhiziLi/GFM]({OFFICIAL_CODE}). "
                          "In code the dollars stay: `echo $HOME and $PATH`."),
        parameters, injected,
        new_code_cell("result = run(params_file)", execution_count=1, outputs=[
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": widget,
                                             "text/plain": TQDM_WIDGET}),
            new_output("stream", name="stderr", text="\r".join(bar.format(p, "█" * (p // 10), p * 60 // 100, p // 50)
                                                               for p in (0, 50, 100)) + "\n"),
            new_output("stream", name="stderr", text="  0%|          | 0/60 [00:00<?, ?it/s]"),
            new_output("stream", name="stdout", text="step 60: loss 0.25\n")]),
        new_code_cell("inspector", execution_count=2, outputs=[new_output("execute_result", execution_count=2, data={
            "application/vnd.jupyter.widget-view+json": widget, "text/plain": INSPECTOR})]),
        new_code_cell("controls", execution_count=3, outputs=[new_output(
            "execute_result", execution_count=3, data={"text/plain": PLAIN_WIDGET})]),
        new_code_cell("save_figure(fig, out, 'forest')", execution_count=4, outputs=[new_output(
            "execute_result", execution_count=4, data={"text/plain": "PosixPath('reports/paper/forest.png')"})]),
        new_code_cell("fig", execution_count=5, outputs=[new_output(
            "display_data", data={"image/png": _figure_png(), "text/plain": "<Figure size 320x200 with 1 Axes>"})]),
        new_code_cell("table", execution_count=6, outputs=[new_output("execute_result", execution_count=6, data={
            "text/html": "<table><tr><th>model</th><th>SAD</th></tr><tr><td>ori-tt</td><td>7.5</td></tr></table>",
            "text/plain": "7.5"})]),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _figure_png() -> str:
    """A 320x200 gradient as base64 PNG (a figure output)."""
    image = Image.linear_gradient("L").resize((320, 200)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _json(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
