"""The report's tables as files: a paper table's flat CSV and its HTML in the paper's layout.

A paper table's frame has one column per (metric, source): the paper's number per dataset
(:data:`PAPER_AM2K`, :data:`PAPER_PM10K`, or :data:`PAPER` where the table has no dataset), this
run's mean (:data:`RUN`) and the half-width of its 95 % interval over seeds (:data:`CI`), plus
descriptors ("", name) and notes (:data:`NOTES`, paper / this run). The CSV keeps every column as a
number; the HTML shows this run as "mean ± half-width" under the paper's metric names (Sect. 5.1).

* :class:`PaperTable` -- one of the paper's tables with its CSV and HTML forms.
* :func:`save_frame` -- a plain DataFrame as CSV + HTML.
* :func:`mean_ci` -- a mean and its half-width as the HTML shows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gfm.core.io import write_text

__all__ = ["PAPER_AM2K", "PAPER_PM10K", "PAPER", "RUN", "CI", "NOTES", "LABELS", "PaperTable", "save_frame",
           "mean_ci"]

#: Sub-columns under a metric: the paper's number per dataset, this run's mean and CI half-width.
PAPER_AM2K, PAPER_PM10K, PAPER, RUN, CI = "paper AM-2k", "paper PM-10k", "paper", "this run", "±"
#: The heading of the notes columns (one on the paper's numbers, one on this run's).
NOTES = "note"
#: Column headings: the paper's metric names (Sect. 5.1) and Table 7's columns.
LABELS = {"sad": "SAD", "mse": "MSE", "mad": "MAD", "grad": "Grad", "conn": "Conn", "sad_trans": "SAD-TRAN",
          "sad_fg": "SAD-FG", "sad_bg": "SAD-BG", "parameters_m": "Params (M)", "gmac": "GMac",
          "latency_s": "Time (s)", "inference_s": "Time (s)"}

_SUFFIX = {PAPER_AM2K: "_paper_am2k", PAPER_PM10K: "_paper_pm10k", PAPER: "_paper", RUN: "", CI: "_ci95"}


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables with this run's numbers beside the paper's.

    ``frame``: index = the row labels (e.g. track, method); columns = (metric, source) pairs,
    source one of :data:`PAPER_AM2K`, :data:`PAPER_PM10K`, :data:`PAPER`, :data:`RUN`, :data:`CI`,
    plus descriptors ("", name) and notes ("note", "paper" / "this run").
    """

    name: str
    title: str
    frame: pd.DataFrame
    caption: str = ""

    def flat(self) -> pd.DataFrame:
        """The CSV form: one column per (metric, source), ``sad_paper_am2k``, ``sad`` (this run),
        ``sad_ci95`` (its half-width), ``paper_note``, ``run_note``; the row labels as columns."""
        flat = self.frame.copy()
        flat.columns = [_flat_name(column) for column in flat.columns]
        return flat.reset_index()

    def to_html(self) -> str:
        """The paper layout: a heading row of metrics over paper / this run sub-columns; this run
        as "mean ± half-width"; paper columns with no number in the table left out; empty cells blank."""
        esc = _escape
        shown = _display(self.frame)
        body = shown.to_html(border=0, na_rep="", escape=True, classes="paper-table")
        caption = f"<p class='caption'>{esc(self.caption)}</p>" if self.caption else ""
        return f"<h3>{esc(self.title)}</h3>\n{body}\n{caption}"

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``<out_dir>/<name>.csv`` (:meth:`flat`) and ``<out_dir>/<name>.html`` (atomically)."""
        out_dir = Path(out_dir)
        csv = write_text(out_dir / f"{self.name}.csv", self.flat().to_csv(index=False, float_format="%.6g"))
        page = write_text(out_dir / f"{self.name}.html", _page(self.title, self.to_html()))
        return csv, page


def save_frame(frame: pd.DataFrame, out_dir: str | Path, name: str, *, title: str = "") -> tuple[Path, Path]:
    """Write a plain DataFrame as ``<out_dir>/<name>.csv`` and ``<out_dir>/<name>.html`` (atomically;
    metric names as headings, numbers to 4 significant digits, NaN blank)."""
    out_dir = Path(out_dir)
    csv = write_text(out_dir / f"{name}.csv", frame.to_csv(index=False, float_format="%.6g"))
    shown = frame.rename(columns=LABELS)
    for column in shown.select_dtypes("number").columns:
        shown[column] = [_format(x) for x in shown[column]]
    body = shown.to_html(index=False, border=0, na_rep="", classes="paper-table")
    page = write_text(out_dir / f"{name}.html", _page(title or name, (f"<h3>{_escape(title)}</h3>\n" if title else "")
                                                      + body))
    return csv, page


def mean_ci(mean, half) -> str:
    """"mean ± half-width" to 4 significant digits; the mean alone without a half-width; "" without a mean."""
    if mean is None or pd.isna(mean):
        return ""
    return _format(mean) + ("" if half is None or pd.isna(half) else f" ± {_format(half)}")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _flat_name(column) -> str:
    head, source = column
    if head == "":
        return source
    if head == NOTES:
        return "paper_note" if source == PAPER else "run_note"
    return f"{head}{_SUFFIX[source]}"


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """The HTML form of a table frame: this run as "mean ± half-width", empty paper columns left out,
    headings in the paper's names, numbers to 4 significant digits."""
    columns = {}
    for head, source in frame.columns:
        if source == CI:
            continue
        values = frame[(head, source)]
        if source in (PAPER_AM2K, PAPER_PM10K, PAPER) and head != NOTES and values.isna().all():
            continue
        if head in ("", NOTES):
            shown = ["" if pd.isna(v) else str(v) for v in values]
            columns[("" if head == "" else "note", source)] = shown
        elif source == RUN and (head, CI) in frame.columns:
            columns[(LABELS.get(head, head), source)] = [mean_ci(m, c) for m, c in zip(values, frame[(head, CI)])]
        else:
            columns[(LABELS.get(head, head), source)] = [_format(v) for v in values]
    shown = pd.DataFrame(columns, index=frame.index)
    shown.columns = pd.MultiIndex.from_tuples(list(columns))
    return shown


def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return f"{float(value):.4g}"


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
          "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f4f4f4}"
          "td:last-child,td:nth-last-child(2){text-align:left}.caption{max-width:70em;color:#444}")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
