"""HTML reports: executed stage notebooks -> self-contained pages, plus an index page.

The pages work offline: figures are embedded (base64), tables are HTML, and the template
(``gfm/report/templates/gfm_offline``) loads nothing from a CDN -- no require.js, MathJax, mermaid or
widget manager. The LaTeX of markdown cells (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``,
environments) is turned into MathML when the page is built (:class:`MathMLRenderer`, with
``latex2mathml``), which browsers render without a script; code spans, code blocks and escaped
``\\$`` keep their dollars. The pages show results, not machinery (:class:`HidePlumbing` and
nbconvert's TagRemovePreprocessor): no parameter cells, widget reprs, progress bars or stray path
reprs. Widgets appear through the static figures every notebook shows beside them. Every page
carries a navigation bar (the index and each stage page). DVC's plots are rendered to inline SVG
with ``vl-convert`` (Vega-Lite without a browser) rather than ``dvc plots show``'s HTML, which loads
Vega from a CDN.

The index (:func:`build_reports`) shows the headline findings (``metrics/findings.json``'s
summary and the findings table of ``reports/paper/findings.csv``), links to every table and figure
of ``reports/paper``, the run details (commit, CPU, device, precision, torch, wall time) read from
the stages' metrics and run files, and every metric and training curve.

Given the run's experiments (``--params``: ``train.experiments``), the site leaves out what other
experiments left behind -- DVC never deletes the outputs of a stage that is no longer in the
pipeline, so after a profile switch the other grid's training pages, metrics and run folders stay --
and the index names them in one line.
"""

from __future__ import annotations

import html
import math
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence
from xml.etree.ElementTree import tostring

import nbformat
from jinja2 import pass_context
from latex2mathml.converter import convert_to_element
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets.config import Config

from gfm.core.config import load_params
from gfm.core.io import write_text
from gfm.report.inputs import read_json

__all__ = ["TEMPLATES", "HIDDEN_CELL_TAGS", "RUN_FIELDS", "TRAIN_PAGE", "TRAIN_METRICS", "notebook_to_html",
           "build_reports", "build_site", "main", "collect_metrics", "collect_run_files", "run_details",
           "loss_plots_svg", "OfflineHTMLExporter", "MathMLRenderer", "HidePlumbing"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Cells left off the pages: papermill's parameter cells (the notebook's defaults and the injected values).
HIDDEN_CELL_TAGS = ("parameters", "injected-parameters")
#: Run details shown on the index: heading -> the keys a stage may record it under (first found wins).
RUN_FIELDS = {"commit": ("commit", "git_commit", "git"), "CPU": ("cpu",), "device": ("device",),
              "precision": ("precision",), "torch": ("torch", "torch_version"),
              "wall time (s)": ("wall_s", "wall_time_s", "seconds", "time_s", "elapsed_s")}
#: What experiment e's training stage (dvc.yaml's ``train@<e>``) leaves: the page and run file
#: ``04_train_<e>`` (``reports/notebooks``, ``metrics/run``), ``<metrics>/train/<e>.json``
#: (``train.metrics_dir``) and the run folders ``<train.out>/<e>/``.
TRAIN_PAGE, TRAIN_METRICS = "04_train_", "train"
_FINDINGS_COLUMNS = ("id", "kind", "claim", "arms", "diff", "ci95", "relative", "n_images", "n_seeds", "verdict")
_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f4f4f4}figure{display:inline-block;margin:1em}
td.claim{min-width:20em;max-width:40em;white-space:normal;overflow-wrap:break-word}
nav.gfm-nav{font-family:sans-serif;font-size:14px;padding:6px 10px;background:#f4f4f4;border-bottom:1px solid #ccc}
nav.gfm-nav a{margin-right:1em}nav.gfm-nav b{margin-right:1em}
.reproduced{color:#17702a}.contradicted{color:#b0161b}.inconclusive{color:#555}.not_run{color:#999}"""


def notebook_to_html(notebook: str | Path, out: str | Path, *, nav: str = "") -> Path:
    """Convert an executed notebook to a self-contained offline HTML page at ``out`` (atomic);
    ``nav`` is HTML placed at the top of the page (see :func:`build_reports`).

    A formula that cannot be converted to MathML stays as its LaTeX text; a warning names the
    notebook and the formula.
    """
    notebook = Path(notebook)
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError) as error:
        raise ValueError(f"{notebook}: not a readable notebook ({error})") from error
    nb.metadata.pop("widgets", None)  # the widget manager would come from a CDN
    exporter = OfflineHTMLExporter(template_name="gfm_offline", extra_template_basedirs=[str(TEMPLATES)],
                                   exclude_input_prompt=True, exclude_output_prompt=True)
    resources = {"metadata": {"name": _title(nb, notebook)}, "gfm_nav": nav, "gfm_notebook": str(notebook)}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return write_text(out, body)


def build_reports(notebooks: Sequence[str | Path], html_dir: str | Path, *, title: str = "gfm-companion reports",
                  metrics: Mapping | None = None, plots: Sequence[tuple[str, str]] | None = None,
                  paper_dir: str | Path | None = None, run_files: Mapping | None = None,
                  left_over: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Convert each executed notebook into ``html_dir`` and write ``html_dir/index.html``.

    Parameters
    ----------
    notebooks : sequence of paths
        Executed stage notebooks (one page each, named after the notebook).
    html_dir : str or Path
        Output folder.
    metrics : mapping, optional
        ``{path: content}`` of the metrics files (:func:`collect_metrics`); the one named
        ``findings.json`` gives the headline summary.
    plots : sequence, optional
        (title, SVG) pairs (:func:`loss_plots_svg`).
    paper_dir : str or Path, optional
        ``reports/paper``: its ``findings.csv`` is the findings table, and every table and figure in
        it is linked (relative links).
    run_files : mapping, optional
        ``{path: content}`` of other run-detail JSON files (:func:`collect_run_files`).
    left_over : mapping, optional
        ``{experiment: folders}`` of the experiments left out because they are not in this run's
        grid (:func:`build_site`); the index names them in one line.

    Returns the index path.
    """
    html_dir = Path(html_dir)
    pages = [(Path(n).stem, f"{Path(n).stem}.html") for n in sorted(Path(n) for n in notebooks)]
    for notebook, (name, href) in zip(sorted(Path(n) for n in notebooks), pages):
        notebook_to_html(notebook, html_dir / href, nav=_nav(pages, current=name))
    metrics = dict(metrics or {})
    sections = [_nav(pages, current="index"), f"<h1>{html.escape(title)}</h1>",
                *([_left_over_note(left_over)] if left_over else []),
                _headline(metrics, paper_dir), _paper_links(paper_dir, html_dir),
                _run_table(run_details({**metrics, **dict(run_files or {})})),
                _stage_list(pages), _metrics_table(metrics), _plots(plots or [])]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            f"<style>{_STYLE}</style>\n</head><body>\n" + "\n".join(sections) + "\n</body></html>\n")
    return write_text(html_dir / "index.html", page)


def build_site(notebooks_dir: str | Path, out: str | Path, *, metrics_dir: str | Path = "metrics",
               models_dir: str | Path = "artifacts/models", paper_dir: str | Path | None = None,
               experiments: Iterable[str] | None = None) -> Path:
    """HTML of every executed notebook in ``notebooks_dir`` plus the index, into ``out`` -> index path.

    ``paper_dir`` default: ``<out>/../paper`` (``reports/paper`` beside ``reports/html``).
    ``experiments``: this run's grid (``train.experiments``; None: show everything). The training
    pages, metrics and run folders of any other experiment (:data:`TRAIN_PAGE`) are left out, and the
    index names them.
    """
    notebooks = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{notebooks_dir}: no executed notebooks")
    grid = None if experiments is None else frozenset(experiments)
    paper_dir = Path(out).parent / "paper" if paper_dir is None else Path(paper_dir)
    return build_reports(_in_grid(notebooks, _page_experiment, grid), out,
                         metrics=collect_metrics(metrics_dir, experiments=grid),
                         plots=loss_plots_svg(models_dir, experiments=grid), paper_dir=paper_dir,
                         run_files=collect_run_files(models_dir, experiments=grid),
                         left_over=None if grid is None else _left_over(notebooks_dir, metrics_dir, models_dir, grid))


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm.report.html NOTEBOOK_DIR OUT_DIR [--params params.yaml]``: the ``html`` stage."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gfm.report.html", description=build_site.__doc__)
    parser.add_argument("notebooks", help="folder of executed notebooks (reports/notebooks)")
    parser.add_argument("out", help="output folder (reports/html)")
    parser.add_argument("--metrics", default="metrics", help="folder of metrics JSON files (default: metrics)")
    parser.add_argument("--models", default="artifacts/models",
                        help="folder of training runs with losses.csv (default: artifacts/models)")
    parser.add_argument("--paper", default=None, help="the paper report's folder (default: OUT_DIR/../paper)")
    parser.add_argument("--params", default=None,
                        help="params.yaml of this run: only the experiments of its train.experiments are shown "
                             "(default: every experiment found)")
    args = parser.parse_args(argv)
    experiments = None if args.params is None else list(load_params(args.params).train.experiments)
    index = build_site(args.notebooks, args.out, metrics_dir=args.metrics, models_dir=args.models,
                       paper_dir=args.paper, experiments=experiments)
    pages = _in_grid(Path(args.notebooks).glob("*.ipynb"), _page_experiment, experiments)
    print(f"{index}: {len(pages)} report(s)")
    return 0


def collect_metrics(metrics_dir: str | Path = "metrics", *, experiments: Iterable[str] | None = None) -> dict:
    """Every JSON metrics file under ``metrics_dir`` as {path: content} (what ``dvc metrics show`` reads);
    with ``experiments``, none of another experiment's training stage (:data:`TRAIN_PAGE`).

    Read from the files rather than through ``dvc metrics show``, which cannot run while ``dvc
    repro`` holds the repository lock (the report stage builds this page inside a repro).
    """
    root = Path(metrics_dir)
    paths = _in_grid(sorted(root.rglob("*.json")), lambda path: _metrics_experiment(path, root), experiments)
    return {path.as_posix(): read_json(path) for path in paths}


def collect_run_files(models_dir: str | Path = "artifacts/models", *, experiments: Iterable[str] | None = None) -> dict:
    """The training runs' ``train_summary.json`` under ``models_dir`` ({path: content}): run details;
    with ``experiments``, only those of their run folders."""
    root = Path(models_dir)
    paths = _in_grid(sorted(root.rglob("train_summary.json")), lambda path: _run_experiment(path, root), experiments)
    return {path.as_posix(): read_json(path) for path in paths}


def run_details(sources: Mapping[str, Mapping]) -> list[dict]:
    """One row per file that records a run detail: ``source`` and each :data:`RUN_FIELDS` heading.

    A file's details are its ``run`` mapping if it has one, else its top-level keys. A detail no
    file records is "unknown"; with no file recording any, one row of "unknown".
    """
    rows = []
    for path, content in sorted(sources.items()):
        if not isinstance(content, Mapping):
            continue
        details = content.get("run") if isinstance(content.get("run"), Mapping) else content
        row = {heading: next((details[k] for k in keys if details.get(k) not in (None, "")), None)
               for heading, keys in RUN_FIELDS.items()}
        if any(v is not None and not isinstance(v, Mapping) for v in row.values()):
            rows.append({"source": path, **{k: "unknown" if v is None else v for k, v in row.items()}})
    return rows or [{"source": "unknown", **{heading: "unknown" for heading in RUN_FIELDS}}]


def loss_plots_svg(models_dir: str | Path = "artifacts/models", y: str = "total", *,
                   experiments: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The training curves that ``dvc plots show`` draws (``losses.csv``, x = step), as SVG.

    One Vega-Lite line chart per training run (``<experiment>/s<seed>/losses.csv``, or the legacy
    ``<experiment>/losses.csv``), rendered offline with vl-convert; with ``experiments``, only
    their runs.
    """
    import pandas as pd
    import vl_convert

    plots = []
    root = Path(models_dir)
    csvs = sorted([*root.glob("*/losses.csv"), *root.glob("*/s*/losses.csv")])
    for csv in _in_grid(csvs, lambda path: _run_experiment(path, root), experiments):
        table = pd.read_csv(csv)
        if table.empty or "step" not in table or y not in table:
            continue
        run = csv.parent.relative_to(root).as_posix().replace("/", " ")
        spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 320, "height": 180,
                "title": f"{run}: {y} loss", "mark": "line",
                "data": {"values": table[["step", y]].to_dict(orient="records")},
                "encoding": {"x": {"field": "step", "type": "quantitative"},
                             "y": {"field": y, "type": "quantitative", "scale": {"zero": False}}}}
        plots.append((csv.as_posix(), vl_convert.vegalite_to_svg(spec)))
    return plots


class OfflineHTMLExporter(HTMLExporter):
    """nbconvert's HTML exporter for the offline pages: markdown maths as MathML
    (:class:`MathMLRenderer`), the cells tagged :data:`HIDDEN_CELL_TAGS` removed (nbconvert's
    TagRemovePreprocessor) and the outputs that are machinery dropped (:class:`HidePlumbing`).

    The resources passed to ``from_notebook_node`` may name the notebook (``gfm_notebook``) for
    the warnings about formulas that do not convert.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_preprocessor(HidePlumbing, enabled=True)

    @property
    def default_config(self) -> Config:
        """HTMLExporter's defaults, with TagRemovePreprocessor removing :data:`HIDDEN_CELL_TAGS`."""
        config = super().default_config
        config.merge(Config({"TagRemovePreprocessor": {"enabled": True, "remove_cell_tags": set(HIDDEN_CELL_TAGS)}}))
        return config

    @pass_context
    def markdown2html(self, context, source):
        """Markdown to HTML as nbconvert's own filter does, with LaTeX as MathML."""
        cell = context.get("cell", {})
        resources = context.get("resources", {})
        renderer = MathMLRenderer(
            notebook=resources.get("gfm_notebook", resources.get("metadata", {}).get("name", "")),
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=resources.get("metadata", {}).get("path", ""), anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer with each formula converted to MathML by ``latex2mathml``.

    nbconvert's math parser finds the formulas (code spans and code blocks are parsed as code, an
    escaped ``\\$`` is text); here inline maths becomes ``<math display="inline">`` and display maths
    and LaTeX environments ``<math display="block">``. A formula ``latex2mathml`` cannot convert is
    kept as text, as nbconvert writes it, with a warning naming ``notebook`` and the formula.
    """

    def __init__(self, *args, notebook: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.notebook = notebook

    def inline_math(self, body: str) -> str:
        """``$...$`` or ``\\(...\\)`` -> inline MathML."""
        return self._mathml(body, "inline") or super().inline_math(body)

    def block_math(self, body: str) -> str:
        """``$$...$$`` or ``\\[...\\]`` -> display MathML."""
        return self._mathml(body, "block") or super().block_math(body)

    def latex_environment(self, name: str, body: str) -> str:
        """``\\begin{name}...\\end{name}`` -> display MathML."""
        return (self._mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")
                or super().latex_environment(name, body))

    def _mathml(self, latex: str, display: str) -> str | None:
        """The MathML of ``latex``, or None (with a warning) when it does not convert."""
        try:
            element = convert_to_element(latex, display=display)
        except Exception as error:  # latex2mathml raises many kinds (its own, IndexError, ...): the page must build
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            warnings.warn(f"{self.notebook}: formula '{latex.strip()}' cannot be converted to MathML ({reason}); "
                          "shown as LaTeX text", stacklevel=2)
            return None
        # HTML places <math> in the MathML namespace by itself; without an xmlns attribute the tags
        # also survive nbconvert's heading anchors (ElementTree would write them as <ns0:math>)
        element.attrib.pop("xmlns", None)
        # latex2mathml writes symbols as numeric character references (&#x003B1;) in the text;
        # serialised with ElementTree they come out as &amp;#x003B1;: restore them, escape all else
        return _ESCAPED_REFERENCE.sub(r"&\1", tostring(element, encoding="unicode"))


class HidePlumbing(Preprocessor):
    """Drop the outputs that are machinery, not results, from the code cells.

    * widget outputs whose only other representation is their ``text/plain`` repr
      (``Inspector(children=(HBox(...``, tqdm's widget progress bars), and a text-only widget repr;
    * tqdm progress bars (``NN%|`` lines) in ``stderr`` streams, the stream itself when nothing
      else is left (warnings and other messages stay);
    * an ``execute_result`` that is only the repr of a path or of paths (``PosixPath('...')``),
      the leftover of a cell ending in a call that returns where it wrote.

    Figures, tables and every other output stay.
    """

    def preprocess_cell(self, cell, resources, index):
        """``cell`` with its plumbing outputs removed."""
        if cell.cell_type == "code":
            cell.outputs = [kept for kept in map(_kept_output, cell.outputs) if kept is not None]
        return cell, resources


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ESCAPED_REFERENCE = re.compile(r"&amp;(#x?[0-9A-Fa-f]+;)")
_PROGRESS_BAR = re.compile(r"\d%\|")
_WIDGET_REPR = re.compile(r"\s*[A-Za-z_]\w*\(children=\(")
_PATH_REPR = re.compile(r"(?:Pure)?(?:Posix|Windows)?Path\((?:'[^']*'|\"[^\"]*\")\)")


def _kept_output(output):
    """``output`` as the page shows it (progress bars cut from stderr), or None to drop it
    (see :class:`HidePlumbing`)."""
    if output.output_type == "stream":
        if output.name != "stderr":
            return output
        lines = []
        for line in output.text.split("\n"):
            parts = line.split("\r")  # tqdm redraws its bar after a carriage return
            kept = [part for part in parts if not _PROGRESS_BAR.search(part)]
            if len(kept) == len(parts):
                lines.append(line)
            elif "".join(kept).strip():
                lines.append("".join(kept))
        output.text = "\n".join(lines)
        return output if output.text.strip() else None
    data = output.get("data", {})
    if _WIDGET_VIEW in data:
        return None if set(data) <= {_WIDGET_VIEW, "text/plain"} else output
    if set(data) != {"text/plain"}:
        return output
    text = data["text/plain"]
    if _WIDGET_REPR.match(text):
        return None
    if output.output_type == "execute_result" and _PATH_REPR.search(text) \
            and not _PATH_REPR.sub("", text).strip("[](){},\n "):
        return None
    return output


def _in_grid(paths: Iterable[Path], experiment_of: Callable[[Path], str | None],
             experiments: Iterable[str] | None) -> list[Path]:
    """``paths`` without the files of experiments outside ``experiments`` (None: every file kept);
    ``experiment_of`` names a file's experiment, None for a file of no training stage."""
    if experiments is None:
        return list(paths)
    kept = {*experiments, None}
    return [path for path in paths if experiment_of(path) in kept]


def _page_experiment(path: Path) -> str | None:
    """``04_train_<e>.ipynb`` (or its run file ``04_train_<e>.json``) -> e."""
    stem = Path(path).stem
    return stem[len(TRAIN_PAGE):] if stem.startswith(TRAIN_PAGE) else None


def _metrics_experiment(path: Path, root: Path) -> str | None:
    """``<root>/train/<e>.json`` or ``<root>/run/04_train_<e>.json`` -> e."""
    relative = Path(path).relative_to(root)
    return relative.stem if relative.parent == Path(TRAIN_METRICS) else _page_experiment(relative)


def _run_experiment(path: Path, root: Path) -> str | None:
    """A file of the run folders ``<root>/<e>/...`` -> e."""
    parts = Path(path).relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _left_over(notebooks_dir, metrics_dir, models_dir, grid: frozenset) -> dict[str, list[str]]:
    """{experiment outside ``grid``: the folders that hold its training pages, metrics or run folders}."""
    notebooks_dir, metrics_dir, models_dir = Path(notebooks_dir), Path(metrics_dir), Path(models_dir)
    found = [*((_page_experiment(path), notebooks_dir) for path in notebooks_dir.glob("*.ipynb")),
             *((_metrics_experiment(path, metrics_dir), path.parent) for path in metrics_dir.rglob("*.json")),
             *((_run_experiment(path, models_dir), models_dir) for path in models_dir.glob("*/*"))]
    left: dict[str, set[str]] = {}
    for experiment, folder in found:
        if experiment is not None and experiment not in grid:
            left.setdefault(experiment, set()).add(folder.as_posix())
    return {experiment: sorted(folders) for experiment, folders in sorted(left.items())}


def _title(nb, path: Path) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _nav(pages, current: str) -> str:
    """The navigation bar: the index, then every stage page (the current one in bold)."""
    links = [("index", "index.html"), *pages]
    items = [f"<b>{html.escape(name)}</b>" if name == current
             else f'<a href="{html.escape(href)}">{html.escape(name)}</a>' for name, href in links]
    return f'<nav class="gfm-nav">{" ".join(items)}</nav>'


def _left_over_note(left_over: Mapping[str, Sequence[str]]) -> str:
    """The one line naming the experiments left out (see :func:`build_site`) and where they lie."""
    folders = sorted({folder for found in left_over.values() for folder in found})
    return (f"<p>Not shown, left over from another profile's run: {html.escape(', '.join(left_over))} "
            f"({html.escape(', '.join(folders))})</p>")


def _headline(metrics: Mapping, paper_dir) -> str:
    """The findings summary (metrics/findings.json) and table (reports/paper/findings.csv)."""
    found = next((content for path, content in metrics.items() if Path(path).name == "findings.json"), None)
    summary = (found or {}).get("summary") if isinstance(found, Mapping) else None
    parts = ["<h2>Headline findings</h2>"]
    if not isinstance(summary, Mapping):
        return parts[0] + "\n<p>No findings: the paper stage has not run (no metrics/findings.json).</p>"
    parts.append("<p>" + ", ".join(f'<span class="{html.escape(k)}">{html.escape(k.replace("_", " "))}: '
                                   f"<b>{int(v)}</b></span>" for k, v in summary.items()) + " claims.</p>")
    table = Path(paper_dir) / "findings.csv" if paper_dir is not None else None
    if table is not None and table.is_file():
        import pandas as pd

        rows = pd.read_csv(table).to_dict(orient="records")
    else:
        rows = [{"id": id, **entry} for id, entry in (found.get("claims") or {}).items()]
    columns = [c for c in _FINDINGS_COLUMNS if any(c in r for r in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(_cell(c, r.get(c)) for c in columns) + "</tr>" for r in rows)
    return "\n".join(parts) + f"\n<table><tr>{head}</tr>\n{body}</table>"


def _cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<td></td>"
    if column == "verdict":
        return f'<td class="{html.escape(str(value))}"><b>{html.escape(str(value))}</b></td>'
    if column == "claim":  # the claim's full text, wrapped by the page's CSS (td.claim), never cut
        return f'<td class="claim">{html.escape(str(value))}</td>'
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    if isinstance(value, (list, tuple)):
        value = "[" + ", ".join("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
                                for v in value) + "]"
    return f"<td>{html.escape(str(value))}</td>"


def _paper_links(paper_dir, html_dir: Path) -> str:
    """Links to every table (HTML, CSV) and figure (PNG) of the paper report."""
    heading = "<h2>The paper report: tables and figures</h2>"
    folder = Path(paper_dir) if paper_dir is not None else None
    if folder is None or not folder.is_dir():
        return heading + "\n<p>Not run: no paper report folder.</p>"
    rel = lambda p: html.escape(Path(os.path.relpath(p, html_dir)).as_posix())  # noqa: E731
    tables = []
    for page in sorted(folder.glob("*.html")):
        csv = page.with_suffix(".csv")
        extra = f' (<a href="{rel(csv)}">CSV</a>)' if csv.is_file() else ""
        tables.append(f'<li><a href="{rel(page)}">{html.escape(page.stem)}</a>{extra}</li>')
    figures = [f'<li><a href="{rel(png)}">{html.escape(png.stem)}</a></li>' for png in sorted(folder.glob("*.png"))]
    return (heading + "\n<h3>Tables</h3><ul>" + "\n".join(tables) + "</ul>\n<h3>Figures</h3><ul>"
            + "\n".join(figures) + "</ul>")


def _run_table(rows: list[dict]) -> str:
    headings = ["source", *RUN_FIELDS]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(_plain(r[h]))}</td>" for h in headings) + "</tr>"
                     for r in rows)
    return f"<h2>Run details</h2>\n<table><tr>{head}</tr>\n{body}</table>"


def _plain(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _stage_list(pages) -> str:
    rows = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>' for name, href in pages)
    return f"<h2>Stage reports</h2><ul>\n{rows}\n</ul>"


def _metrics_table(metrics: Mapping) -> str:
    esc = html.escape
    rows = []
    for path, values in sorted(metrics.items()):
        for key, value in sorted(_flatten(values).items()):
            shown = f"{value:.6g}" if isinstance(value, float) else esc(str(value))
            rows.append(f"<tr><td>{esc(path)}</td><td>{esc(key)}</td><td>{shown}</td></tr>")
    table = ("<table><tr><th>file</th><th>metric</th><th>value</th></tr>" + "\n".join(rows) + "</table>") \
        if rows else "<p>No metrics.</p>"
    return f"<h2>Metrics (dvc metrics show)</h2>\n{table}"


def _plots(plots) -> str:
    shown = "\n".join(f"<figure><figcaption>{html.escape(name)}</figcaption>{svg}</figure>" for name, svg in plots)
    return f"<h2>Plots (dvc plots show)</h2>\n{shown or '<p>No plots.</p>'}"


def _flatten(tree, prefix: str = "") -> dict:
    flat = {}
    for key, value in (tree or {}).items() if isinstance(tree, Mapping) else ():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


if __name__ == "__main__":
    raise SystemExit(main())
