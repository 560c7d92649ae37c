"""Findings: the paper's claims judged on this run's stage outputs, as a table and a forest plot.

:func:`gather` reads the evidence the claims need from the stage outputs (gfm.report.inputs): the
runs' per-image tables and the blank matte, the per-image Table 6 grid (or the means grid), the
per-image domain-gap table (or the ``metrics/compose.json`` summary) and ``metrics/bg20k.json``.
:func:`judge_outputs` passes it to gfm.report.judge.judge (paired two-level bootstrap over seeds
and images); :func:`findings_metrics` is the narrow ``metrics/findings.json`` for ``dvc metrics
show`` (:func:`write_findings_metrics` writes it); :func:`findings_table` and :func:`forest_plot`
show the result.

``metrics/findings.json``::

    {"claims": {"<id>": {"kind": "paper|project", "verdict": "reproduced|contradicted|inconclusive|not_run",
                         "code": 1 | 0 | -1 | null, "metric": ..., "arms": [...], "diff": float,
                         "relative": float, "ci95": [lo, hi], "n_images": int, "n_seeds": int}},
     "summary": {"reproduced": n, "contradicted": n, "inconclusive": n, "not_run": n}}
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from gfm.core.io import write_text
from gfm.report import inputs
from gfm.report import stats as st
from gfm.report.judge import judge

__all__ = ["METRICS_KEYS", "Evidence", "gather", "judge_outputs", "findings_metrics", "write_findings_metrics",
           "findings_table", "forest_plot"]

#: The keys of each claim in ``metrics/findings.json`` (the full entries: reports/paper/findings.json).
METRICS_KEYS = ("kind", "verdict", "code", "metric", "arms", "diff", "relative", "ci95", "n_images", "n_seeds")
_COLOURS = {st.REPRODUCED: "tab:green", st.CONTRADICTED: "tab:red", st.INCONCLUSIVE: "0.45", st.NOT_RUN: "0.75"}


@dataclass(frozen=True)
class Evidence:
    """What the claims are judged on: ``per_image`` ``{run: table}`` (and ``"blank"``), ``seeds``
    ``{experiment: [seed, ...]}`` and ``extra`` (``table6``, ``domain_gap``, ``bg20k``)."""

    per_image: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def gather(evaluation_dir: str | Path, *, experiments: Iterable[str] | None = None, metrics: Mapping | None = None,
           compose_out: str | Path | None = None) -> Evidence:
    """The evidence of the claims from the stage outputs (each part absent when its stage has not run).

    Parameters
    ----------
    evaluation_dir : str or Path
        ``evaluate.out``: the runs' ``per_image.csv``, ``baselines/blank``, ``table6_per_image.csv``
        (else ``table6.csv``, means only: the best-setting claims are then not run).
    experiments : iterable of str, optional
        The experiments to read (default: every folder).
    metrics : mapping, optional
        gfm.report.inputs.load_metrics: ``compose`` (the domain-gap summary) and ``bg20k``.
    compose_out : str or Path, optional
        ``compose.out``: its per-image ``tables/domain_gap.csv``, preferred to the summary (it gives an
        interval).
    """
    metrics = metrics or {}
    per_image = inputs.per_image_tables(evaluation_dir, experiments)
    extra: dict = {}
    grid = inputs.read_csv(Path(evaluation_dir) / inputs.TABLE6_PER_IMAGE)
    grid = grid if grid is not None else inputs.read_csv(Path(evaluation_dir) / "table6.csv")
    if grid is not None:
        extra["table6"] = grid
    gaps = inputs.read_csv(Path(compose_out) / inputs.DOMAIN_GAP_PER_IMAGE) if compose_out is not None else None
    if gaps is not None:
        extra["domain_gap"] = gaps
    elif isinstance(metrics.get("compose"), Mapping) and "domain_gap" in metrics["compose"]:
        extra["domain_gap"] = metrics["compose"]
    if isinstance(metrics.get("bg20k"), Mapping):
        extra["bg20k"] = metrics["bg20k"]
    return Evidence(per_image, inputs.seeds_of(per_image), extra)


def judge_outputs(evidence: Evidence, experiments: Mapping[str, Mapping], *, n_boot: int = st.N_BOOT, seed: int = 0,
                  numbers: Mapping[str, float] | None = None) -> dict:
    """Every claim of gfm.report.claims judged on ``evidence`` for the grid ``experiments``
    (``{name: configuration}``) -> gfm.report.judge.judge's result (the full entries)."""
    return judge(None, experiments, evidence.per_image, evidence.seeds, evidence.extra, n_boot=n_boot, seed=seed,
                 numbers=numbers)


def findings_metrics(result: Mapping) -> dict:
    """The narrow ``metrics/findings.json``: per claim :data:`METRICS_KEYS` (numbers to 6 significant
    digits), and the summary counts."""
    claims = {id: {key: _round(entry.get(key)) for key in METRICS_KEYS} for id, entry in result["claims"].items()}
    return {"claims": claims, "summary": {v: int(result["summary"].get(v, 0)) for v in st.VERDICTS}}


def headline_metrics(result: Mapping, evaluate: Mapping | None) -> dict:
    """The few numbers ``dvc metrics show`` and ``dvc exp show`` print (``metrics/headline.json``, the
    pipeline's only declared metrics file): the verdict counts, and the AM-2k SAD of every evaluated
    model (mean over seeds) and of the blank matte. Everything else stays in the stages' own files
    (``dvc metrics show metrics/evaluate.json``)."""
    evaluate = evaluate or {}
    sad = {name: _round(entry["sad"]) for name, entry in evaluate.items()
           if isinstance(entry, Mapping) and "sad" in entry and "seeds" in entry}
    blank = (evaluate.get("baselines") or {}).get("blank") or {}
    if "sad" in blank:
        sad["blank"] = _round(blank["sad"])
    return {"verdicts": {v: int(result["summary"].get(v, 0)) for v in st.VERDICTS}, "sad": sad}


def write_findings_metrics(path: str | Path, result: Mapping) -> Path:
    """Write :func:`findings_metrics` to ``path`` (atomically) as indented JSON whose lists of numbers
    and names stay on one line, so each claim reads in a few short lines in a terminal."""
    text = json.dumps(findings_metrics(result), indent=2, allow_nan=False)
    return write_text(path, re.sub(r"\[[^\[\]{}]*\]", _inline, text) + "\n")


def findings_table(result: Mapping) -> pd.DataFrame:
    """The judged claims for reading: one row per claim with its full text, the arms compared, the
    statistic (``diff``) with its 95 % interval, the relative effect (of the reference arm), the
    numbers of images and seeds, the verdict, the paper's evidence and why a claim was not judged."""
    rows = []
    for id, entry in result["claims"].items():
        lo, hi = (entry.get("ci95") or [None, None])[:2]
        rows.append({"id": id, "kind": entry["kind"], "claim": entry["text"],
                     "arms": " vs ".join(entry.get("arms") or []), "metric": entry.get("metric"),
                     "statistic": entry.get("statistic") or "",
                     "diff": _float(entry.get("diff")),
                     "ci95": "" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]",
                     "relative": _float(entry.get("relative")), "threshold": entry.get("threshold"),
                     "n_images": entry.get("n_images", 0), "n_seeds": entry.get("n_seeds", 0),
                     "verdict": entry["verdict"], "evidence": entry.get("evidence", ""),
                     "note": entry.get("reason", "")})
    return pd.DataFrame(rows, columns=["id", "kind", "claim", "arms", "metric", "statistic", "diff", "ci95", "relative",
                                       "threshold", "n_images", "n_seeds", "verdict", "evidence", "note"])


def summary_lines(result: Mapping) -> list[str]:
    """The findings as short terminal lines: one per claim (verdict, difference, interval, n), then the counts."""
    lines = []
    for claim_id, entry in result["claims"].items():
        lo, hi = (entry.get("ci95") or [None, None])[:2]
        numbers = ("" if entry.get("diff") is None else
                   f"diff {entry['diff']:+.4g}  95% CI [{lo:+.4g}, {hi:+.4g}]  "
                   f"n = {entry.get('n_images')} images x {entry.get('n_seeds')} seeds")
        lines.append(f"{claim_id:<20} {entry['kind']:<8} {entry['verdict']:<13} {numbers}".rstrip())
    lines.append(", ".join(f"{v} {k}" for k, v in result["summary"].items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm.report.findings [metrics/findings.json]``: the verdicts in the terminal."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m gfm.report.findings", description=main.__doc__)
    parser.add_argument("findings", nargs="?", default="metrics/findings.json", help="(default: %(default)s)")
    path = Path(parser.parse_args(argv).findings)
    if not path.is_file():
        print(f"{path}: no findings yet (run the pipeline: make repro)")
        return 1
    print("\n".join(summary_lines(json.loads(path.read_text()))))
    return 0


def forest_plot(result: Mapping, *, limit: float = 1.5):
    """Each claim's statistic with its 95 % interval on a per-claim normalised scale -> Figure.

    A difference is shown relative to its reference arm's mean (``relative``, unitless: -0.2 = 20 %
    lower error); a share, a fraction of a gap or a proportion as its distance from the claim's
    threshold. The paper's side of 0 is shaded green on each row; the point's colour is the
    verdict. Values beyond ``limit`` are drawn at the edge (a triangle) with their value written.
    """
    import matplotlib.pyplot as plt

    claims = list(result["claims"].items())
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(claims) + 1.4))
    for y, (id, entry) in enumerate(claims):
        ax.fill_betweenx([y - 0.42, y + 0.42], 0, limit * st.expected_sign(entry.get("expect", "lower")),
                         color="tab:green", alpha=0.08, lw=0)
        point, (lo, hi) = _normalised(entry)
        colour = _COLOURS.get(entry["verdict"], "0.5")
        if point is None:
            ax.text(0, y, " not run", va="center", ha="left", fontsize=8, color=colour)
            continue
        if lo is not None and hi is not None:
            ax.plot([max(lo, -limit), min(hi, limit)], [y, y], color=colour, lw=2)
        shown = max(min(point, limit), -limit)
        ax.plot([shown], [y], marker="o" if shown == point else (">" if point > 0 else "<"), color=colour, ms=6)
        if shown != point:
            ax.text(shown, y + 0.3, f"{point:.3g}", ha="center", fontsize=7, color=colour)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlim(-limit * 1.05, limit * 1.05)
    ax.set_ylim(len(claims) - 0.5, -0.5)
    ax.set_yticks(range(len(claims)), [f"{id} ({entry['verdict']})" for id, entry in claims], fontsize=8)
    ax.set_xlabel("difference / reference arm's mean  (ratios: value - threshold);  green: the paper's side",
                  fontsize=8)
    ax.set_title("Findings: each claim's effect with its 95 % interval (seeds and images, paired bootstrap)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _normalised(entry: Mapping) -> tuple[float | None, tuple[float | None, float | None]]:
    """(point, (lo, hi)) of a claim on the forest plot's scale (None: nothing to draw)."""
    if entry.get("diff") is None:
        return None, (None, None)
    if entry.get("relative") is not None:
        lo, hi = (entry.get("relative_ci95") or [None, None])[:2]
        return float(entry["relative"]), (lo, hi)
    threshold = float(entry.get("threshold") or 0.0)
    lo, hi = (entry.get("ci95") or [None, None])[:2]
    return float(entry["diff"]) - threshold, tuple(None if v is None else float(v) - threshold for v in (lo, hi))


def _inline(match: re.Match) -> str:
    """A JSON list of scalars on one line (left as it was if it is not one)."""
    try:
        return json.dumps(json.loads(match.group(0)))
    except ValueError:
        return match.group(0)


def _round(value):
    if isinstance(value, list):
        return [_round(v) for v in value]
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _float(value) -> float:
    return math.nan if value is None else float(value)


if __name__ == "__main__":
    raise SystemExit(main())
