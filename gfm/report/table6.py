"""Table 6: the test's down-sampling ratios (Sect. 5.5 "Hybrid-resolution Test"), this run's grid
beside the paper's best settings.

The paper tests the glance decoder at 1/d1 and the focus decoder at 1/d2 for d1, d2 in {2, 3, 4},
d1 >= d2, and a single ratio d from 2.0 to 3.0 (step 0.2); it quotes no number of Table 6, only its
best settings (d1 = 3, d2 = 2; d = 2.6), ``paper_numbers.yaml``. This run's grid is the evaluate
stage's ``table6.csv`` (means) and ``table6_per_image.csv`` (per image and run).

* :func:`table6` -- one row per setting of this run's grid, mean ± 95 % half-width over its runs.
* :func:`table6_best` -- the best settings, the paper's against this run's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gfm.evaluate.metrics import MAIN_METRICS
from gfm.report.inputs import DATA_SAMPLE
from gfm.report.numbers import paper_numbers, paper_value
from gfm.report.render import CI, RUN, PaperTable
from gfm.report.summaries import seed_interval

__all__ = ["table6", "table6_best"]


def table6(grid: pd.DataFrame | None, *, per_image: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           data: str = DATA_SAMPLE) -> PaperTable:
    """Table 6: the test down-sampling ratios (Sect. 5.5): one row per setting of this run's grid.

    ``grid`` is ``<evaluate.out>/table6.csv`` (``test`` hybrid | single, ``d1``, ``d2``, the
    metrics' means); ``per_image`` the per-image grid (``test, d1, d2, name[, run]`` and the
    metrics), which gives the interval over runs (a ``run``, ``model`` or ``seed`` column names the
    run of a row). The paper quotes no number of Table 6, only its best settings (marked in the
    column "paper's best"); "best here": this run's lowest SAD.
    """
    numbers = paper_numbers() if numbers is None else numbers
    best = _paper_best(numbers)
    source = per_image if per_image is not None and len(per_image) else grid
    columns = [("", "runs"), *((m, s) for m in MAIN_METRICS for s in (RUN, CI)), ("", "paper's best"),
               ("", "best here")]
    index = pd.MultiIndex.from_tuples([], names=["test", "setting"])
    if source is None or len(source) == 0:
        frame = pd.DataFrame(columns=pd.MultiIndex.from_tuples(columns), index=index)
        return PaperTable("table6", "Table 6: down-sampling ratios of the test", frame,
                          f"not run: no Table 6 grid. The paper's best: {best['hybrid']} (hybrid), {best['single']}.")
    runs = _grid_runs(source, per_image is not None and len(per_image) > 0)
    rows, labels = [], []
    for (test, d1, d2), part in runs.groupby(["test", "d1", "d2"], sort=False):
        setting = _setting(test, d1, d2)
        row = {("", "runs"): len(part)}
        for metric in MAIN_METRICS:
            values = part[metric].to_numpy(float) if metric in part else np.array([math.nan])
            row[(metric, RUN)], row[(metric, CI)] = seed_interval(values)
        row[("", "paper's best")] = "✓" if setting == best[test] else ""
        row[("", "best here")] = ""
        rows.append(row)
        labels.append((test, setting))
    frame = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(labels, names=["test", "setting"]),
                         columns=pd.MultiIndex.from_tuples(columns))
    for test in ("hybrid", "single"):
        mask = frame.index.get_level_values("test") == test
        sads = frame.loc[mask, ("sad", RUN)].astype(float)
        if sads.notna().any():
            frame.loc[sads.idxmin(), ("", "best here")] = "✓"
    return PaperTable("table6", "Table 6: down-sampling ratios of the test", frame,
                      f"this run: {data}, the model of evaluate.table6_model; mean ± 95 % half-width over its runs. "
                      "The paper's grid: d1, d2 in {2, 3, 4} with d1 >= d2, single ratio 2.0 to 3.0 step 0.2 "
                      "(images of >= 1080 px; the sample's are ~360 px, so its grid is scaled down).")


def table6_best(grid: pd.DataFrame | None, *, numbers: pd.DataFrame | None = None, data: str = DATA_SAMPLE,
                metric: str = "sad") -> pd.DataFrame:
    """Table 6's best settings, the paper's against this run's (from the means grid).

    Returns one row per test kind (hybrid, single): the paper's best setting and grid, this run's
    grid and best setting, ``metric`` there and at the paper's setting (NaN if not in the grid),
    and whether the best settings agree (yes / no / not in grid / not run).
    """
    numbers = paper_numbers() if numbers is None else numbers
    paper_best = {"hybrid": (paper_value(numbers, "t6_best_hybrid_d1"), paper_value(numbers, "t6_best_hybrid_d2")),
                  "single": (paper_value(numbers, "t6_best_single_d"),) * 2}
    paper_grid = {"hybrid": "d1, d2 in {2, 3, 4}, d1 >= d2", "single": "d in {2.0, 2.2, ..., 3.0}"}
    rows = []
    for test in ("hybrid", "single"):
        d1, d2 = paper_best[test]
        row = {"test": test, "paper_best": _setting(test, d1, d2), "paper_grid": paper_grid[test],
               "paper_data": "AM-2k", "this_run_grid": "", "this_run_best": "", f"{metric}_at_best": math.nan,
               f"{metric}_at_paper_best": math.nan, "data": data, "agrees": "not run"}
        part = _grid_part(grid, test, metric)
        if part is not None:
            best = part.loc[part[metric].idxmin()]
            at_paper = part[np.isclose(part["d1"], d1) & np.isclose(part["d2"], d2)]
            values = sorted(set(part["d1"]) | set(part["d2"]))
            row.update(this_run_grid="d in {" + ", ".join(f"{v:g}" for v in values) + "}",
                       this_run_best=_setting(test, best["d1"], best["d2"]),
                       **{f"{metric}_at_best": float(best[metric])})
            if at_paper.empty:
                row["agrees"] = "not in grid"
            else:
                row[f"{metric}_at_paper_best"] = float(at_paper[metric].iloc[0])
                row["agrees"] = "yes" if np.isclose(best["d1"], d1) and np.isclose(best["d2"], d2) else "no"
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _grid_runs(grid: pd.DataFrame, per_image: bool) -> pd.DataFrame:
    """One row per (setting, run) with the metrics' means: per-image rows are averaged per run."""
    missing = [c for c in ("test", "d1", "d2") if c not in grid]
    if missing:
        raise ValueError(f"Table 6 grid: missing columns {missing} (expected the evaluate stage's table6.csv)")
    grid = grid.assign(d1=grid["d1"].astype(float), d2=grid["d2"].astype(float))
    run = next((c for c in ("run", "model", "seed") if c in grid), None)   # the evaluate stage's run column
    if run is None:
        grid = grid.assign(run="run")
        run = "run"
    metrics = [m for m in MAIN_METRICS if m in grid]
    if not per_image:
        return grid[["test", "d1", "d2", run, *metrics]]
    numeric = grid[["test", "d1", "d2", run]].join(grid[metrics].apply(pd.to_numeric, errors="coerce"))
    return numeric.groupby(["test", "d1", "d2", run], sort=False, as_index=False)[metrics].mean()


def _paper_best(numbers: pd.DataFrame) -> dict[str, str]:
    return {"hybrid": _setting("hybrid", paper_value(numbers, "t6_best_hybrid_d1"),
                               paper_value(numbers, "t6_best_hybrid_d2")),
            "single": _setting("single", paper_value(numbers, "t6_best_single_d"),
                               paper_value(numbers, "t6_best_single_d"))}


def _grid_part(grid, test: str, metric: str) -> pd.DataFrame | None:
    if grid is None or len(grid) == 0:
        return None
    missing = [c for c in ("test", "d1", "d2", metric) if c not in grid]
    if missing:
        raise ValueError(f"Table 6 grid: missing columns {missing} (expected the evaluate stage's table6.csv)")
    part = grid[(grid["test"] == test)].assign(**{metric: pd.to_numeric(grid[metric], errors="coerce")})
    part = part[part[metric].notna()].astype({"d1": float, "d2": float})
    if part.empty:
        return None
    return part.groupby(["d1", "d2"], as_index=False, sort=False)[metric].mean()


def _setting(test: str, d1: float, d2: float) -> str:
    return f"d1 = {d1:g}, d2 = {d2:g}" if test == "hybrid" else f"d = {d1:g}"
