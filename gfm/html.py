"""HTML reports: executed stage notebooks → self-contained HTML, plus an index page.

The reports work offline: figures are embedded (base64), tables are HTML, and the template
(``gfm/templates/gfm_offline``) loads nothing from a CDN — no require.js, MathJax, mermaid or widget
manager. Widgets appear through the static figures every notebook shows beside them. DVC's plots are
rendered to inline SVG with ``vl-convert`` (Vega-Lite without a browser) rather than ``dvc plots
show``'s HTML, which loads Vega from a CDN.
"""

from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path

import nbformat

from gfm.io import write_text

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

    ``metrics`` is ``dvc metrics show --json``'s content (see :func:`dvc_metrics`), ``plots`` a list
    of (title, SVG) pairs (see :func:`dvc_plots_svg`). Returns the index path.
    """
    html_dir = Path(html_dir)
    pages = []
    for notebook in sorted(Path(n) for n in notebooks):
        page = html_dir / f"{notebook.stem}.html"
        notebook_to_html(notebook, page)
        pages.append((notebook.stem, page.name))
    return write_text(html_dir / "index.html", _index(title, pages, metrics or {}, plots or []))


def dvc_metrics(cwd: str | Path = ".") -> dict:
    """``dvc metrics show --json`` as {file: {metric: value}} (empty when DVC has none)."""
    out = _dvc(["metrics", "show", "--json"], cwd)
    data = json.loads(out or "{}")
    flat: dict = {}
    for revision in data.values():
        for path, content in (revision.get("data") or {}).items():
            flat[path] = content.get("data", {})
    return flat


def dvc_plots_svg(cwd: str | Path = ".") -> list[tuple[str, str]]:
    """Render every plot ``dvc plots show --json`` defines to SVG (offline, via vl-convert)."""
    import vl_convert

    data = json.loads(_dvc(["plots", "show", "--json", "--split"], cwd) or "{}")
    rendered = []
    for name, entries in sorted(data.items()):
        for entry in entries if isinstance(entries, list) else [entries]:
            spec = entry.get("content") if isinstance(entry, dict) else None
            if entry.get("type") == "vega" and spec:
                spec = _inline_data(spec, entry.get("datapoints") or data.get("data", {}))
                rendered.append((name, vl_convert.vegalite_to_svg(spec)))
    return rendered


def _inline_data(spec: dict, datapoints) -> dict:
    values = [row for rows in (datapoints or {}).values() for row in rows] if isinstance(datapoints, dict) else []
    if values and isinstance(spec.get("data"), dict) and "values" in spec["data"] and not spec["data"]["values"]:
        spec = {**spec, "data": {"values": values}}
    return spec


def _dvc(args: list[str], cwd: str | Path) -> str:
    result = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout


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
