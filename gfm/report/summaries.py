"""This run's numbers behind the paper's tables, read from the evaluate stage's per-image tables.

A run's number of a metric is its image mean; an experiment's is the mean over its seeds (runs
``<experiment>-s<k>``) ± the half-width of the 95 % t-interval over seeds (a single seed: no
interval). Each experiment carries the paper row of its configuration
(gfm.report.experiments.experiment_label), where gfm.report.tables puts it.

* :func:`experiment_summary` -- one row per experiment.
* :func:`reference_summary` -- one row per reference matte (``baselines/`` of the evaluate stage:
  the blank matte and closed-form matting with the validation trimap).
* :func:`table5_summary` -- the rows of the evaluate stage's Table 5 protocol (one pass at 1/3,
  EN-median; Sect. 5.5 "RoSTa Integration").
* :func:`seed_interval` -- the mean over seeds and its half-width; :func:`number` -- a float or NaN.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from gfm.evaluate.metrics import TABLE1_METRICS
from gfm.report.experiments import BACKBONE_CODES, experiment_label, normalise, parse_experiment, row_group
from gfm.report.inputs import BLANK, CLOSED_FORM, RESERVED, split_run

__all__ = ["REFERENCES", "EN_MEDIAN", "experiment_summary", "reference_summary", "table5_summary", "seed_interval",
           "number"]

#: Reference mattes (``baselines/<name>``) -> their row in the tables.
REFERENCES = {BLANK: "blank matte (all zero)", CLOSED_FORM: "closed-form matting (trimap)"}
#: Table 5's ensemble row (gfm.evaluate.table5.EN_MEDIAN).
EN_MEDIAN = "EN-median"


def experiment_summary(per_image: Mapping[str, pd.DataFrame], experiments: Mapping[str, Mapping] | None = None, *,
                       evaluated: Mapping | None = None, metrics: Sequence[str] = TABLE1_METRICS) -> pd.DataFrame:
    """This run's numbers per experiment: the mean over seeds of each run's image mean, and the
    half-width of its 95 % t-interval over seeds (NaN with one seed).

    Parameters
    ----------
    per_image : mapping
        ``{run: per-image table}`` (gfm.report.inputs.per_image_tables), runs ``<experiment>-s<k>``.
    experiments : mapping, optional
        ``{experiment: configuration}``; default: parsed from the names of the evaluated experiments.
    evaluated : mapping, optional
        ``metrics/evaluate.json``: the means of an experiment without per-image tables (no interval).

    Returns
    -------
    DataFrame
        One row per experiment: ``experiment``, its configuration (``track`` ... ``backbone``),
        ``paper_track``, ``paper_row``, ``group`` (the row without backbone), ``evaluated``,
        ``seeds``, then per metric ``<m>`` and ``<m>_ci95``.
    """
    evaluated = {k: v for k, v in dict(evaluated or {}).items() if isinstance(v, Mapping) and k not in RESERVED}
    runs: dict[str, list[str]] = {}
    for name in per_image:
        parsed = split_run(name)
        if parsed is not None:
            runs.setdefault(parsed[0], []).append(name)
    names = dict.fromkeys([*runs, *evaluated]) if experiments is None else experiments
    rows = []
    for name in names:
        config = normalise(experiments[name]) if experiments is not None else parse_experiment(name)
        track, method = experiment_label(config)
        row = {"experiment": name, **config, "paper_track": track, "paper_row": method, "group": row_group(method)}
        seed_means = [_means(per_image[run], metrics) for run in sorted(runs.get(name, []), key=_seed)]
        if seed_means:
            row.update(evaluated=True, seeds=len(seed_means))
            for metric in metrics:
                row[metric], row[f"{metric}_ci95"] = seed_interval([m[metric] for m in seed_means])
        elif name in evaluated:
            values = evaluated[name]
            row.update(evaluated=True, seeds=int(values.get("seeds", 1) or 1))
            for metric in metrics:
                row[metric], row[f"{metric}_ci95"] = number(values.get(metric)), math.nan
        else:
            row.update(evaluated=False, seeds=0, **{m: math.nan for m in metrics},
                       **{f"{m}_ci95": math.nan for m in metrics})
        rows.append(row)
    columns = ["experiment", "track", "backbone", "rosta", "decoder", "ppm", "bridge", "paper_track", "paper_row",
               "group", "evaluated", "seeds", *(c for m in metrics for c in (m, f"{m}_ci95"))]
    return pd.DataFrame(rows, columns=columns)


def reference_summary(baselines: Mapping[str, pd.DataFrame], metrics: Sequence[str] = TABLE1_METRICS) -> pd.DataFrame:
    """The reference mattes' image means (``baselines/<name>/per_image.csv``) -> one row per matte:
    ``name``, ``label`` (:data:`REFERENCES`) and the metrics present (NaN where absent)."""
    rows = [{"name": name, "label": REFERENCES.get(name, name), **_means(table, metrics)}
            for name, table in baselines.items()]
    return pd.DataFrame(rows, columns=["name", "label", *metrics])


def table5_summary(runs: pd.DataFrame | None, per_image: Mapping[str, pd.DataFrame],
                   experiments: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """The rows of the evaluate stage's Table 5 protocol (gfm.report.inputs.table5_runs: ``runs.csv``
    and ``{run: per-image table}``) in the form of :func:`experiment_summary`: one row per member
    experiment (its configuration from ``experiments``, else from its name and the backbone of
    ``runs.csv``), and one ``EN-median(<backbone>)`` row per ensemble (``group`` "EN-median")."""
    if runs is None or len(runs) == 0:
        return experiment_summary({}, {})
    members = runs[runs["row"] != EN_MEDIAN]
    configs = {e: (experiments or {}).get(e) or {**parse_experiment(e), "backbone": str(backbone)}
               for e, backbone in zip(members["experiment"], members["backbone"])}
    summary = experiment_summary({r: per_image[r] for r in members["run"]}, configs)
    rows = []
    for name, part in runs[runs["row"] == EN_MEDIAN].groupby("experiment", sort=False):
        backbone = str(part["backbone"].iloc[0])
        row = {"experiment": name, "track": "ori", "backbone": backbone, "rosta": EN_MEDIAN, "decoder": "two",
               "ppm": "five", "bridge": True, "paper_track": "ORI",
               "paper_row": f"{EN_MEDIAN}({BACKBONE_CODES.get(backbone, backbone)})", "group": EN_MEDIAN,
               "evaluated": True, "seeds": len(part)}
        seed_means = [_means(per_image[run], TABLE1_METRICS) for run in part.sort_values("seed")["run"]]
        for metric in TABLE1_METRICS:
            row[metric], row[f"{metric}_ci95"] = seed_interval([m[metric] for m in seed_means])
        rows.append(row)
    return pd.concat([summary, pd.DataFrame(rows, columns=summary.columns)], ignore_index=True) if rows else summary


def seed_interval(values) -> tuple[float, float]:
    """(mean, half-width of the 95 % t-interval) of per-seed values; half-width NaN for one value."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1:
        return float(values[0]), math.nan
    half = _st.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(half)


def number(value) -> float:
    """``value`` as a float; NaN when it is none (None, a word)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _means(table: pd.DataFrame, metrics: Sequence[str]) -> dict:
    """Image means of ``metrics`` over the finite values (NaN when a metric is absent or never finite)."""
    out = {}
    for metric in metrics:
        values = pd.to_numeric(table[metric], errors="coerce").to_numpy(float) if metric in table else np.array([])
        finite = values[np.isfinite(values)]
        out[metric] = float(finite.mean()) if finite.size else math.nan
    return out


def _seed(run: str) -> int:
    parsed = split_run(run)
    return parsed[1] if parsed else 0
