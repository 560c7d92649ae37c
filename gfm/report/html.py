"""HTML reports: executed stage notebooks → self-contained HTML, plus an index page.

The reports work offline: figures are embedded (base64), tables are HTML, and the template
(``gfm/report/templates/gfm_offline``) loads nothing from a CDN — no require.js, MathJax, mermaid or widget
manager. Widgets appear through the static figures every notebook shows beside them. DVC's plots are
rendered to inline SVG with ``vl-convert`` (Vega-Lite without a browser) rather than ``dvc plots
show``'s HTML, which loads Vega from a CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

from gfm.core.io import write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"


def notebook_to_html(notebook: str | Path, out: str | Path) -> Path:
    """Convert an executed notebook to a self-contained offline HTML page at ``out`` (atomic)."""
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError) as error:
        raise ValueError(f"{notebook}: not a readable notebook ({error})") from error
    nb.metadata.pop("widgets", None)  # the widget manager would come from a CDN
    exporter = HTMLExporter(template_name="gfm_offline", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb, notebook)}})
    return write_text(out, body)


def build_reports(notebooks: list[str | Path], html_dir: str | Path, *, title: str = "gfm-companion reports",
                  metrics: dict | None = None, plots: list[tuple[str, str]] | None = None) -> Path:
    """Convert each executed notebook into ``html_dir`` and write ``html_dir/index.html``.

    ``metrics`` maps metrics files to their content (see :func:`collect_metrics`), ``plots`` is a
    list of (title, SVG) pairs (see :func:`loss_plots_svg`). Returns the index path.
    """
    html_dir = Path(html_dir)
    pages = []
    for notebook in sorted(Path(n) for n in notebooks):
        page = html_dir / f"{notebook.stem}.html"
        notebook_to_html(notebook, page)
        pages.append((notebook.stem, page.name))
    return write_text(html_dir / "index.html", _index(title, pages, metrics or {}, plots or []))


def build_site(notebooks_dir: str | Path, out: str | Path, *, metrics_dir: str | Path = "metrics",
               models_dir: str | Path = "artifacts/models") -> Path:
    """HTML of every executed notebook in ``notebooks_dir`` plus the index, into ``out`` -> index path."""
    notebooks = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{notebooks_dir}: no executed notebooks")
    return build_reports(notebooks, out, metrics=collect_metrics(metrics_dir), plots=loss_plots_svg(models_dir))


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm.report.html NOTEBOOK_DIR OUT_DIR``: the ``html`` stage."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gfm.report.html", description=build_site.__doc__)
    parser.add_argument("notebooks", help="folder of executed notebooks (reports/notebooks)")
    parser.add_argument("out", help="output folder (reports/html)")
    parser.add_argument("--metrics", default="metrics", help="folder of metrics JSON files (default: metrics)")
    parser.add_argument("--models", default="artifacts/models",
                        help="folder of training runs with losses.csv (default: artifacts/models)")
    args = parser.parse_args(argv)
    index = build_site(args.notebooks, args.out, metrics_dir=args.metrics, models_dir=args.models)
    print(f"{index}: {len(list(Path(args.notebooks).glob('*.ipynb')))} report(s)")
    return 0


def collect_metrics(metrics_dir: str | Path = "metrics") -> dict:
    """Every JSON metrics file under ``metrics_dir`` as {path: content} (what ``dvc metrics show`` reads).

    Read from the files rather than through ``dvc metrics show``, which cannot run while ``dvc
    repro`` holds the repository lock (the report stage builds this page inside a repro).
    """
    found = {}
    for path in sorted(Path(metrics_dir).rglob("*.json")):
        try:
            found[path.as_posix()] = json.loads(path.read_text())
        except ValueError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
    return found


def loss_plots_svg(models_dir: str | Path = "artifacts/models", y: str = "total") -> list[tuple[str, str]]:
    """The training curves that ``dvc plots show`` draws (``losses.csv``, x = step), as SVG.

    One Vega-Lite line chart per experiment, rendered offline with vl-convert.
    """
    import pandas as pd
    import vl_convert

    plots = []
    for csv in sorted(Path(models_dir).glob("*/losses.csv")):
        table = pd.read_csv(csv)
        if table.empty or "step" not in table or y not in table:
            continue
        spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 320, "height": 180,
                "title": f"{csv.parent.name}: {y} loss", "mark": "line",
                "data": {"values": table[["step", y]].to_dict(orient="records")},
                "encoding": {"x": {"field": "step", "type": "quantitative"},
                             "y": {"field": y, "type": "quantitative", "scale": {"zero": False}}}}
        plots.append((csv.as_posix(), vl_convert.vegalite_to_svg(spec)))
    return plots


def _title(nb, path: Path) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _index(title: str, pages, metrics: dict, plots) -> str:
    esc = html.escape
    rows = "\n".join(f'<li><a href="{esc(href)}">{esc(name)}</a></li>' for name, href in pages)
    metric_rows = []
    for path, values in sorted(metrics.items()):
        for key, value in sorted(_flatten(values).items()):
            shown = f"{value:.6g}" if isinstance(value, float) else esc(str(value))
            metric_rows.append(f"<tr><td>{esc(path)}</td><td>{esc(key)}</td><td>{shown}</td></tr>")
    metric_table = ("<table><tr><th>file</th><th>metric</th><th>value</th></tr>"
                    + "\n".join(metric_rows) + "</table>") if metric_rows else "<p>No metrics.</p>"
    plot_html = "\n".join(f"<figure><figcaption>{esc(name)}</figcaption>{svg}</figure>" for name, svg in plots) \
        or "<p>No plots.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}figure{{display:inline-block;margin:1em}}</style>
</head><body>
<h1>{esc(title)}</h1>
<h2>Stage reports</h2><ul>
{rows}
</ul>
<h2>Metrics (dvc metrics show)</h2>
{metric_table}
<h2>Plots (dvc plots show)</h2>
{plot_html}
</body></html>
"""


def _flatten(tree, prefix: str = "") -> dict:
    flat = {}
    for key, value in (tree or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


if __name__ == "__main__":
    raise SystemExit(main())
