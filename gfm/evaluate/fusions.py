"""The hybrid test's two fusions compared (collaborative matting, Sect. 3.5; the test of Sect. 5.5):
the metrics compared and their means over the runs of each experiment.

The evaluate stage writes ``<evaluate.out>/fusions.csv``: one row per benchmark, run and fusion
(``official``, ``upsampled`` and their ``difference``, gfm.evaluate.run.fusion_summary).
:func:`fusion_table` averages it over runs, for the stage's notebook and the paper report alike;
this module imports only gfm.evaluate.metrics, so the report (which reads stage outputs, never
stage code) may use it.
"""

from __future__ import annotations

import math

import pandas as pd

from gfm.evaluate.metrics import MAIN_METRICS

__all__ = ["FUSION_METRICS", "FUSION_KINDS", "fusion_table"]

#: The metrics compared between the two hybrid fusions.
FUSION_METRICS = (*MAIN_METRICS, "sad_trans")
#: The rows of ``fusions.csv`` per run: both fusions (gfm.model.infer.FUSIONS) and their difference.
FUSION_KINDS = ("official", "upsampled", "difference")


def fusion_table(fusions: pd.DataFrame | None) -> pd.DataFrame:
    """Both hybrid fusions of every experiment (``<evaluate.out>/fusions.csv``): one row per benchmark
    and experiment, the number of runs and per metric the mean over runs of the ``official`` and
    ``upsampled`` fusions and their ``difference`` (upsampled - official: positive when the
    upsampled fusion errs more). Empty when no run was tested with the hybrid test."""
    columns = ["benchmark", "experiment", "runs", *(f"{m}_{k}" for m in FUSION_METRICS for k in FUSION_KINDS)]
    if fusions is None or len(fusions) == 0:
        return pd.DataFrame(columns=columns)
    rows = []
    for (benchmark, experiment), part in fusions.groupby(["benchmark", "experiment"], sort=False):
        row = {"benchmark": benchmark, "experiment": experiment, "runs": part["run"].nunique()}
        for kind in FUSION_KINDS:
            values = part[part["fusion"] == kind]
            for metric in FUSION_METRICS:
                numeric = (pd.to_numeric(values[metric], errors="coerce") if metric in values
                           else pd.Series([], dtype=float))
                row[f"{metric}_{kind}"] = float(numeric.mean()) if numeric.notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
