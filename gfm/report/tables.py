"""The paper's Tables 1-7 in the paper's layout, with this run's numbers beside the paper's.

Methods are rows, metrics are columns; under each metric the paper's number (AM-2k, PM-10k: only
where its prose quotes one, since the tables are images, ``paper_numbers.yaml``) stands beside
this run's, which is the mean over seeds ± the half-width of its 95 % t-interval over seeds (a
single seed: no interval). Reference rows give the scale of this run's data: the blank (all-zero)
matte and closed-form matting with the validation trimap (``baselines/`` of the evaluate stage).
Absolute values are not comparable across data (image size and content differ); orderings and
ratios are, and gfm.report.findings judges those.

An experiment of this run sits in the paper's row of its configuration
(gfm.report.experiments.experiment_label); a paper row with no experiment says "not run in this
profile" (naming the paper profile's experiment that would fill it).

* :class:`PaperTable` -- a table with its CSV (flat, numeric) and HTML (paper layout) forms.
* :func:`experiment_summary`, :func:`reference_summary` -- this run's numbers per experiment /
  reference matte, read from the per-image tables.
* :func:`overview` -- this run's experiments and the paper rows they stand for.
* :func:`table1` ... :func:`table7`, :func:`table6_best` -- the tables; :func:`table5_summary` --
  the rows of the evaluate stage's Table 5 protocol (one pass at 1/3, EN-median).
* :func:`benchmark_tables` -- Tables 1 and 2 on a benchmark other than AM-2k (PM-10k's columns).
* :func:`fusion_table` -- both hybrid fusions of every experiment and their difference.
* :func:`save_frame` -- a plain DataFrame as CSV + HTML.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from gfm.core.io import write_text
from gfm.evaluate.metrics import MAIN_METRICS, TABLE1_METRICS
from gfm.report.experiments import BACKBONE_CODES, experiment_label, normalise, parse_experiment, row_group
from gfm.report.inputs import BLANK, CLOSED_FORM, DATA_SAMPLE, RESERVED, split_run
from gfm.report.numbers import paper_numbers, paper_value

__all__ = ["PAPER_AM2K", "PAPER_PM10K", "PAPER", "RUN", "CI", "NOT_RUN", "NOT_PART", "REFERENCES", "LABELS",
           "EN_MEDIAN", "PaperTable", "experiment_summary", "reference_summary", "overview", "table1", "table2",
           "table3", "table4", "table5", "table5_summary", "table6", "table6_best", "table7", "benchmark_tables",
           "fusion_table", "save_frame"]

#: Sub-columns under a metric: the paper's number per dataset, this run's mean and CI half-width.
PAPER_AM2K, PAPER_PM10K, PAPER, RUN, CI = "paper AM-2k", "paper PM-10k", "paper", "this run", "±"
NOT_RUN = "not run in this profile"
NOT_PART = "not reproduced in this run: trimap-based methods are not part of this companion"
SHM_NOTE = "SHM (Chen et al. 2018) is not part of this companion: the paper's numbers only"
#: Reference mattes (``baselines/<name>``) -> their row in the tables.
REFERENCES = {BLANK: "blank matte (all zero)", CLOSED_FORM: "closed-form matting (trimap)"}
REFERENCE_TRACK = "reference"
#: Table 5's ensemble row (gfm.evaluate.table5.EN_MEDIAN).
EN_MEDIAN = "EN-median"
#: The metrics of :func:`fusion_table` (gfm.evaluate.run.FUSION_METRICS) and its fusions.
FUSION_METRICS, FUSION_KINDS = (*MAIN_METRICS, "sad_trans"), ("official", "upsampled", "difference")
#: Column headings: the paper's metric names (Sect. 5.1) and Table 7's columns.
LABELS = {"sad": "SAD", "mse": "MSE", "mad": "MAD", "grad": "Grad", "conn": "Conn", "sad_trans": "SAD-TRAN",
          "sad_fg": "SAD-FG", "sad_bg": "SAD-BG", "parameters_m": "Params (M)", "gmac": "GMac",
          "latency_s": "Time (s)", "inference_s": "Time (s)"}
TABLE7_METRICS = ("parameters_m", "gmac", "latency_s")

_DATASET_SOURCE = {"AM-2k": PAPER_AM2K, "PM-10k": PAPER_PM10K, "-": PAPER}
_SUFFIX = {PAPER_AM2K: "_paper_am2k", PAPER_PM10K: "_paper_pm10k", PAPER: "_paper", RUN: "", CI: "_ci95"}
_NOTES = "note"


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
                row[metric], row[f"{metric}_ci95"] = _seed_interval([m[metric] for m in seed_means])
        elif name in evaluated:
            values = evaluated[name]
            row.update(evaluated=True, seeds=int(values.get("seeds", 1) or 1))
            for metric in metrics:
                row[metric], row[f"{metric}_ci95"] = _number(values.get(metric)), math.nan
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


def overview(summary: pd.DataFrame, *, data: str = DATA_SAMPLE) -> pd.DataFrame:
    """This run's experiments: configuration, the paper row each stands for, seeds, the data they
    were evaluated on and whole-image SAD (mean ± half-width over seeds; "" if not evaluated)."""
    shown = summary[["experiment", "paper_track", "paper_row", "backbone", "rosta", "decoder", "ppm", "bridge",
                     "seeds"]].copy()
    shown["data"] = np.where(summary["evaluated"], data, "-")
    shown["SAD"] = [_mean_ci(m, c) for m, c in zip(summary["sad"], summary["sad_ci95"])]
    return shown.rename(columns={"paper_track": "paper track", "paper_row": "paper row"})


def table1(summary: pd.DataFrame, *, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           planned: Mapping | None = None, data: str = DATA_SAMPLE) -> PaperTable:
    """Table 1: ORI-Track and COMP-Track (COCO, BG-20k, RSSN) on real validation photos.

    Parameters
    ----------
    summary : DataFrame
        :func:`experiment_summary` of this run.
    references : DataFrame, optional
        :func:`reference_summary` (the reference rows).
    numbers : DataFrame, optional
        gfm.report.numbers.paper_numbers (default: the shipped file).
    planned : mapping, optional
        The paper profile's experiments (``{name: configuration}``), named in "not run" notes.
    data : str
        What this run evaluated on (gfm.report.inputs.run_data), stated in the caption.
    """
    groups = [("ORI", "SHM", None, SHM_NOTE),
              ("ORI", "GFM (best)", "the lowest value among the paper's GFM rows; the prose names no variant",
               "the paper's summary of its GFM rows: see this run's GFM rows"),
              ("ORI", "GFM-TT", None, None), ("ORI", "GFM-FT", None, None), ("ORI", "GFM-BT", None, None)]
    for track in ("COMP-COCO", "COMP-BG20K", "COMP-RSSN"):
        groups += [(track, "SHM", None, SHM_NOTE), (track, "GFM-TT", None, None)]
    return _metric_table("1", "Table 1: results on the ORI-Track and COMP-Track", groups, TABLE1_METRICS, summary,
                         references, numbers, planned, data)


def table2(*, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           data: str = DATA_SAMPLE) -> PaperTable:
    """Table 2: trimap-based methods (DIM, GCA, IndexNet) trained on COMP-COCO and ORI: the paper's
    numbers only (:data:`NOT_PART`); closed-form matting with the same trimap is this run's reference."""
    groups = [(track, method, None, NOT_PART)
              for method in ("DIM", "GCA", "IndexNet") for track in ("COMP-COCO", "ORI")]
    return _metric_table("2", "Table 2: trimap-based methods (the paper's numbers)", groups, ("sad_trans",),
                         None, references, numbers, None, data)


def table3(summary: pd.DataFrame, *, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           planned: Mapping | None = None, data: str = DATA_SAMPLE) -> PaperTable:
    """Table 3: GFM(d) against DIM and GFM(d)+DIM on the ORI-Track (the trimap-based rows are the
    paper's only; GFM's rows get this run's ORI-Track models). See :func:`table1`."""
    groups = [("ORI", "DIM", None, NOT_PART), ("ORI", "GFM(d)+DIM", None, NOT_PART), ("ORI", "GFM-TT", None, None)]
    return _metric_table("3", "Table 3: GFM with a trimap-based matting method", groups, TABLE1_METRICS, summary,
                         references, numbers, planned, data)


def table4(summary: pd.DataFrame, *, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           planned: Mapping | None = None, data: str = DATA_SAMPLE) -> PaperTable:
    """Table 4: ablations of GFM (ORI-Track: r2b, SINGLE, PPM, BB; Sect. 5.4) and of RSSN
    (COMP-Track on BG-20k: alpha blending, w/ blur, w/ denoise, w/ noise, RSSN). See :func:`table1`."""
    groups = [("ORI", g, None, None)
              for g in ("GFM-TT", "GFM-TT SINGLE", "GFM-TT w/o PPM", "GFM-TT one PPM", "GFM-TT w/o BB")]
    groups += [(track, "GFM-TT", None, None) for track in ("COMP-BG20K", "COMP-BG20K w/ blur", "COMP-BG20K w/ denoise",
                                                     "COMP-BG20K w/ noise", "COMP-RSSN")]
    return _metric_table("4", "Table 4: ablation study", groups, MAIN_METRICS, summary, references, numbers, planned,
                         data)


def table5(summary: pd.DataFrame, *, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           planned: Mapping | None = None, data: str = DATA_SAMPLE, protocol: pd.DataFrame | None = None,
           table5_d: float | None = None) -> PaperTable:
    """Table 5: the RoSTa (TT, FT, BT) and their integration (EN-median, RIM) on the ORI-Track.

    The paper tests every row in one pass at ratio 1/3 (Sect. 5.5 "RoSTa Integration"). With
    ``protocol`` (:func:`table5_summary` of the evaluate stage's ``table5/``) this run's rows are
    its models under that protocol (1/``table5_d``; None: the stage's own test) and EN-median, the
    per-pixel median of the TT, FT and BT mattes; without it (no RoSTa set in the grid) they are the
    main evaluation's, with the stage's test strategy. See :func:`table1`.
    """
    measured = protocol is not None and len(protocol) > 0
    missing = None if measured else ("not measured: the grid has no TT, FT and BT models of one configuration "
                                     "(the evaluate stage's Table 5 protocol)")
    groups = [("ORI", g, None, None) for g in ("GFM-TT", "GFM-FT", "GFM-BT")]
    groups += [("ORI", EN_MEDIAN, "the median of the TT, FT and BT mattes", missing), ("ORI", "GFM-RIM", None, None)]
    table = _metric_table("5", "Table 5: RoSTa and their integration", groups, MAIN_METRICS,
                          protocol if measured else summary, references, numbers, planned, data)
    if not measured:
        how = "this run's rows: the main evaluation (the evaluate stage's test strategy); EN-median not measured."
    elif table5_d is None:
        how = ("this run's rows: the evaluate stage's Table 5 protocol with its own test (evaluate.table5_d: null), "
               "EN-median the per-pixel median of the TT, FT and BT mattes.")
    else:
        how = (f"this run's rows: the paper's protocol, every model in one pass at 1/{table5_d:g} (evaluate.table5_d), "
               "EN-median the per-pixel median of the TT, FT and BT mattes.")
    return dataclasses.replace(table, caption=f"The paper tests every row at 1/3 (Sect. 5.5); {how} {table.caption}")


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
            row[metric], row[f"{metric}_ci95"] = _seed_interval([m[metric] for m in seed_means])
        rows.append(row)
    return pd.concat([summary, pd.DataFrame(rows, columns=summary.columns)], ignore_index=True) if rows else summary


def benchmark_tables(name: str, title: str, summary: pd.DataFrame, *, references: pd.DataFrame | None = None,
                     numbers: pd.DataFrame | None = None, planned: Mapping | None = None) -> list[PaperTable]:
    """Tables 1 and 2 on benchmark ``name`` (a PM-10k test set: P3M-500-P or P3M-500-NP): this
    run's models (``summary`` of that benchmark's per-image tables) and reference mattes beside the
    paper's PM-10k numbers, written as ``table1_<name>`` / ``table2_<name>``.

    The paper's PM-10k rows are models trained on PM-10k's portraits; this pipeline trains on
    AM-2k (animals) and its composites only, so the rows are not comparable: the captions say so.
    """
    numbers = paper_numbers() if numbers is None else numbers
    portraits = numbers[numbers["dataset"] != "AM-2k"]
    note = (f" This run: tested on {title}. The paper's PM-10k rows are models trained on PM-10k's portraits; this "
            "pipeline trains on AM-2k (animals) and composites of its foregrounds only, so its rows are models tested "
            "on a domain they never saw, not comparable with the paper's: they show how the models transfer.")
    t1 = table1(summary, references=references, numbers=portraits, planned=planned, data=title)
    t2 = table2(references=references, numbers=portraits, data=title)
    return [dataclasses.replace(t1, name=f"table1_{name}", title=f"Table 1 on {title} (the paper: PM-10k)",
                                caption=t1.caption + note),
            dataclasses.replace(t2, name=f"table2_{name}", title=f"Table 2 on {title} (the paper: PM-10k)",
                                caption=t2.caption + note)]


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
                numeric = pd.to_numeric(values[metric], errors="coerce") if metric in values else pd.Series([], dtype=float)
                row[f"{metric}_{kind}"] = float(numeric.mean()) if numeric.notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


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
            row[(metric, RUN)], row[(metric, CI)] = _seed_interval(values)
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


def table7(complexity: pd.DataFrame | None, *, numbers: pd.DataFrame | None = None) -> PaperTable:
    """Table 7: parameters (M), GMac and inference time at 800 x 800 (Sect. 5.6), the paper's
    (Tesla V100) beside this run's (``<evaluate.out>/complexity.csv``: ``backbone,
    parameters_m, gmac, latency_s, device``; None: not run)."""
    numbers = paper_numbers() if numbers is None else numbers
    paper = numbers[numbers["table"] == "7"]
    ours = {} if complexity is None else {str(r["backbone"]): r for _, r in complexity.iterrows()}
    rows, labels = [], []
    for backbone in dict.fromkeys([*ours, "d121", "r34", "r34_2b", "r101"]):
        model = f"GFM-TT({BACKBONE_CODES.get(backbone, backbone)})"
        entries = paper[paper["method"] == model]
        quoted = _sources(entries) if len(entries) else "no number quoted in the prose (Table 7 is an image)"
        row = {("", "backbone"): backbone, ("", "device"): "", (_NOTES, PAPER): quoted, (_NOTES, RUN): NOT_RUN}
        for metric in TABLE7_METRICS:
            row[(metric, PAPER)], row[(metric, RUN)] = math.nan, math.nan
        for _, entry in entries.iterrows():
            row[(entry["metric"], PAPER)] = float(entry["value"])
        if backbone in ours:
            r = ours[backbone]
            for metric in TABLE7_METRICS:
                row[(metric, RUN)] = _number(r.get(metric))
            row[("", "device")] = str(r.get("device", ""))
            row[(_NOTES, RUN)] = "untrained model; GMac counted by gfm.model.complexity"
        rows.append(row)
        labels.append(model)
    columns = [("", "backbone"), *((m, s) for m in TABLE7_METRICS for s in (PAPER, RUN)), ("", "device"),
               (_NOTES, PAPER), (_NOTES, RUN)]
    frame = pd.DataFrame(rows, index=pd.Index(labels, name="method"), columns=pd.MultiIndex.from_tuples(columns))
    return PaperTable("table7", "Table 7: model complexity at 800 x 800", frame,
                      "Parameters and GMac are properties of the architecture (comparable directly); the time is "
                      "measured on this machine (the paper: a Tesla V100).")


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


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _metric_table(table, title, groups, metrics, summary, references, numbers, planned, data) -> PaperTable:
    """Rows (track, method) of the paper's groups, each with the paper's numbers and this run's.

    ``groups``: (track, row without backbone, a note on the paper's numbers, and for a row this run
    cannot have, why not; None otherwise).
    """
    numbers = paper_numbers() if numbers is None else numbers
    paper = numbers[(numbers["table"] == table) & numbers["metric"].isin(metrics)]
    summary = summary if summary is not None else experiment_summary({}, {})
    plan = experiment_summary({}, planned) if planned else experiment_summary({}, {})
    rows: dict[tuple[str, str], dict] = {}
    for track, group, paper_note, paper_only in groups:
        entries = paper[(paper["track"] == track) & (paper["method"].map(row_group) == group)]
        # the first quotation of a number quoted twice (the prose's 23.94 / 23.93) is shown
        entries = entries.drop_duplicates(["method", "dataset", "metric"])
        mine = summary[(summary["paper_track"] == track) & (summary["group"] == group)] \
            if paper_only is None else summary.iloc[0:0]
        for method, part in entries.groupby("method", sort=False):
            row = rows.setdefault((track, method), _empty_row(metrics))
            for _, entry in part.iterrows():
                row[(entry["metric"], _DATASET_SOURCE.get(entry["dataset"], PAPER))] = float(entry["value"])
            row[(_NOTES, PAPER)] = "; ".join(n for n in (_sources(part), paper_note) if n)
            row[(_NOTES, RUN)] = paper_only or _not_run(plan, track, method)
        if entries.empty and mine.empty:
            row = rows.setdefault((track, group), _empty_row(metrics))
            row[(_NOTES, PAPER)] = paper_note or f"no number quoted in the prose (Table {table} is an image)"
            row[(_NOTES, RUN)] = paper_only or _not_run(plan, track, group, by_group=True)
        for _, run in mine.iterrows():
            key = (track, run["paper_row"])
            if key in rows and rows[key][("", "experiment")]:
                key = (track, f"{run['paper_row']} [{run['experiment']}]")
            row = rows.setdefault(key, _empty_row(metrics))
            if not row[(_NOTES, PAPER)]:
                row[(_NOTES, PAPER)] = "no such row in the paper"
            row[("", "experiment")], row[("", "seeds")] = run["experiment"], int(run["seeds"])
            for metric in metrics:
                row[(metric, RUN)], row[(metric, CI)] = run[metric], run[f"{metric}_ci95"]
            row[(_NOTES, RUN)] = "" if run["evaluated"] else "configured, but no metrics (evaluate has not run for it)"
    for _, ref in (references if references is not None else pd.DataFrame()).iterrows():
        row = rows.setdefault((REFERENCE_TRACK, ref["label"]), _empty_row(metrics))
        row[("", "experiment")] = f"baselines/{ref['name']}"
        row[(_NOTES, PAPER)] = "not in the paper: a scale reference"
        for metric in metrics:
            row[(metric, RUN)] = _number(ref.get(metric))
    columns = [("", "experiment"), ("", "seeds"),
               *((m, s) for m in metrics for s in (PAPER_AM2K, PAPER_PM10K, RUN, CI)), (_NOTES, PAPER), (_NOTES, RUN)]
    frame = pd.DataFrame(list(rows.values()), index=pd.MultiIndex.from_tuples(list(rows), names=["track", "method"]),
                         columns=pd.MultiIndex.from_tuples(columns))
    frame[("", "seeds")] = frame[("", "seeds")].astype("Int64")
    caption = (f"Paper: AM-2k / PM-10k, the numbers its prose quotes (Table {table} is an image; empty = not quoted, "
               f"not zero). This run: {data}; mean over seeds ± half-width of the 95 % t-interval over seeds. "
               "Reference rows: the blank matte and closed-form matting with the trimap, for scale.")
    return PaperTable(f"table{table}", title, frame, caption)


def _empty_row(metrics) -> dict:
    row = {("", "experiment"): "", ("", "seeds"): pd.NA, (_NOTES, PAPER): "", (_NOTES, RUN): ""}
    for metric in metrics:
        for source in (PAPER_AM2K, PAPER_PM10K, RUN, CI):
            row[(metric, source)] = math.nan
    return row


def _not_run(plan: pd.DataFrame, track: str, method: str, by_group: bool = False) -> str:
    column = "group" if by_group else "paper_row"
    names = plan[(plan["paper_track"] == track) & (plan[column] == method)]["experiment"].tolist()
    return NOT_RUN + (f" (paper profile: {', '.join(names)})" if names else "")


def _sources(entries: pd.DataFrame) -> str:
    """The sections the entries come from ("Sect. 5.3 prose; Sect. 5.4 prose"), flagging assumptions."""
    sections = []
    for source in entries["source"]:
        match = re.match(r"(Sect\. [0-9.]+ prose|paper card)", source)
        sections.append(match.group(1) if match else source)
    note = "; ".join(dict.fromkeys(sections))
    if entries["note"].str.contains("assum|inferred|not name|not stated", regex=True).any():
        note += " (attribution partly assumed: see paper_numbers)"
    return note


def _means(table: pd.DataFrame, metrics: Sequence[str]) -> dict:
    """Image means of ``metrics`` over the finite values (NaN when a metric is absent or never finite)."""
    out = {}
    for metric in metrics:
        values = pd.to_numeric(table[metric], errors="coerce").to_numpy(float) if metric in table else np.array([])
        finite = values[np.isfinite(values)]
        out[metric] = float(finite.mean()) if finite.size else math.nan
    return out


def _seed_interval(values) -> tuple[float, float]:
    """(mean, half-width of the 95 % t-interval) of per-seed values; half-width NaN for one value."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1:
        return float(values[0]), math.nan
    half = _st.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean()), float(half)


def _seed(run: str) -> int:
    parsed = split_run(run)
    return parsed[1] if parsed else 0


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


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


def _flat_name(column) -> str:
    head, source = column
    if head == "":
        return source
    if head == _NOTES:
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
        if source in (PAPER_AM2K, PAPER_PM10K, PAPER) and head != _NOTES and values.isna().all():
            continue
        if head in ("", _NOTES):
            shown = ["" if pd.isna(v) else str(v) for v in values]
            columns[("" if head == "" else "note", source)] = shown
        elif source == RUN and (head, CI) in frame.columns:
            columns[(LABELS.get(head, head), source)] = [_mean_ci(m, c) for m, c in zip(values, frame[(head, CI)])]
        else:
            columns[(LABELS.get(head, head), source)] = [_format(v) for v in values]
    shown = pd.DataFrame(columns, index=frame.index)
    shown.columns = pd.MultiIndex.from_tuples(list(columns))
    return shown


def _mean_ci(mean, half) -> str:
    if mean is None or pd.isna(mean):
        return ""
    return _format(mean) + ("" if half is None or pd.isna(half) else f" ± {_format(half)}")


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
