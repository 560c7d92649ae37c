"""The paper's Tables 1-5 and 7 in the paper's layout, with this run's numbers beside the paper's.

Methods are rows, metrics are columns; under each metric the paper's number (AM-2k, PM-10k: only
where its prose quotes one, since the tables are images, ``paper_numbers.yaml``) stands beside
this run's, which is the mean over seeds ± the half-width of its 95 % t-interval over seeds (a
single seed: no interval; gfm.report.summaries). Reference rows give the scale of this run's data:
the blank (all-zero) matte and closed-form matting with the validation trimap (``baselines/`` of
the evaluate stage). Absolute values are not comparable across data (image size and content
differ); orderings and ratios are, and gfm.report.findings judges those.

An experiment of this run sits in the paper's row of its configuration
(gfm.report.experiments.experiment_label); a paper row with no experiment says "not run in this
profile" (naming the paper profile's experiment that would fill it). The tables are
gfm.report.render.PaperTable (CSV and HTML forms); Table 6 is gfm.report.table6.

* :func:`overview` -- this run's experiments and the paper rows they stand for.
* :func:`table1` ... :func:`table5`, :func:`table7` -- the tables.
* :func:`benchmark_tables` -- Tables 1 and 2 on a benchmark other than AM-2k (PM-10k's columns).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Mapping

import numpy as np
import pandas as pd

from gfm.evaluate.metrics import MAIN_METRICS, TABLE1_METRICS
from gfm.report.experiments import BACKBONE_CODES, row_group
from gfm.report.inputs import DATA_SAMPLE
from gfm.report.numbers import paper_numbers
from gfm.report.render import CI, NOTES, PAPER, PAPER_AM2K, PAPER_PM10K, RUN, PaperTable, mean_ci
from gfm.report.summaries import EN_MEDIAN, experiment_summary, number

__all__ = ["NOT_RUN", "NOT_PART", "SHM_NOTE", "overview", "table1", "table2", "table3", "table4", "table5", "table7",
           "benchmark_tables"]

NOT_RUN = "not run in this profile"
NOT_PART = "not reproduced in this run: trimap-based methods are not part of this companion"
SHM_NOTE = "SHM (Chen et al. 2018) is not part of this companion: the paper's numbers only"
REFERENCE_TRACK = "reference"
TABLE7_METRICS = ("parameters_m", "gmac", "latency_s")

_DATASET_SOURCE = {"AM-2k": PAPER_AM2K, "PM-10k": PAPER_PM10K, "-": PAPER}


def overview(summary: pd.DataFrame, *, data: str = DATA_SAMPLE) -> pd.DataFrame:
    """This run's experiments: configuration, the paper row each stands for, seeds, the data they
    were evaluated on and whole-image SAD (mean ± half-width over seeds; "" if not evaluated)."""
    shown = summary[["experiment", "paper_track", "paper_row", "backbone", "rosta", "decoder", "ppm", "bridge",
                     "seeds"]].copy()
    shown["data"] = np.where(summary["evaluated"], data, "-")
    shown["SAD"] = [mean_ci(m, c) for m, c in zip(summary["sad"], summary["sad_ci95"])]
    return shown.rename(columns={"paper_track": "paper track", "paper_row": "paper row"})


def table1(summary: pd.DataFrame, *, references: pd.DataFrame | None = None, numbers: pd.DataFrame | None = None,
           planned: Mapping | None = None, data: str = DATA_SAMPLE) -> PaperTable:
    """Table 1: ORI-Track and COMP-Track (COCO, BG-20k, RSSN) on real validation photos.

    Parameters
    ----------
    summary : DataFrame
        gfm.report.summaries.experiment_summary of this run.
    references : DataFrame, optional
        gfm.report.summaries.reference_summary (the reference rows).
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
    ``protocol`` (gfm.report.summaries.table5_summary of the evaluate stage's ``table5/``) this run's
    rows are its models under that protocol (1/``table5_d``; None: the stage's own test) and
    EN-median, the per-pixel median of the TT, FT and BT mattes; without it (no RoSTa set in the
    grid) they are the main evaluation's, with the stage's test strategy. See :func:`table1`.
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
        row = {("", "backbone"): backbone, ("", "device"): "", (NOTES, PAPER): quoted, (NOTES, RUN): NOT_RUN}
        for metric in TABLE7_METRICS:
            row[(metric, PAPER)], row[(metric, RUN)] = math.nan, math.nan
        for _, entry in entries.iterrows():
            row[(entry["metric"], PAPER)] = float(entry["value"])
        if backbone in ours:
            r = ours[backbone]
            for metric in TABLE7_METRICS:
                row[(metric, RUN)] = number(r.get(metric))
            row[("", "device")] = str(r.get("device", ""))
            row[(NOTES, RUN)] = "untrained model; GMac counted by gfm.model.complexity"
        rows.append(row)
        labels.append(model)
    columns = [("", "backbone"), *((m, s) for m in TABLE7_METRICS for s in (PAPER, RUN)), ("", "device"),
               (NOTES, PAPER), (NOTES, RUN)]
    frame = pd.DataFrame(rows, index=pd.Index(labels, name="method"), columns=pd.MultiIndex.from_tuples(columns))
    return PaperTable("table7", "Table 7: model complexity at 800 x 800", frame,
                      "Parameters and GMac are properties of the architecture (comparable directly); the time is "
                      "measured on this machine (the paper: a Tesla V100).")


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
            row[(NOTES, PAPER)] = "; ".join(n for n in (_sources(part), paper_note) if n)
            row[(NOTES, RUN)] = paper_only or _not_run(plan, track, method)
        if entries.empty and mine.empty:
            row = rows.setdefault((track, group), _empty_row(metrics))
            row[(NOTES, PAPER)] = paper_note or f"no number quoted in the prose (Table {table} is an image)"
            row[(NOTES, RUN)] = paper_only or _not_run(plan, track, group, by_group=True)
        for _, run in mine.iterrows():
            key = (track, run["paper_row"])
            if key in rows and rows[key][("", "experiment")]:
                key = (track, f"{run['paper_row']} [{run['experiment']}]")
            row = rows.setdefault(key, _empty_row(metrics))
            if not row[(NOTES, PAPER)]:
                row[(NOTES, PAPER)] = "no such row in the paper"
            row[("", "experiment")], row[("", "seeds")] = run["experiment"], int(run["seeds"])
            for metric in metrics:
                row[(metric, RUN)], row[(metric, CI)] = run[metric], run[f"{metric}_ci95"]
            row[(NOTES, RUN)] = "" if run["evaluated"] else "configured, but no metrics (evaluate has not run for it)"
    for _, ref in (references if references is not None else pd.DataFrame()).iterrows():
        row = rows.setdefault((REFERENCE_TRACK, ref["label"]), _empty_row(metrics))
        row[("", "experiment")] = f"baselines/{ref['name']}"
        row[(NOTES, PAPER)] = "not in the paper: a scale reference"
        for metric in metrics:
            row[(metric, RUN)] = number(ref.get(metric))
    columns = [("", "experiment"), ("", "seeds"),
               *((m, s) for m in metrics for s in (PAPER_AM2K, PAPER_PM10K, RUN, CI)), (NOTES, PAPER), (NOTES, RUN)]
    frame = pd.DataFrame(list(rows.values()), index=pd.MultiIndex.from_tuples(list(rows), names=["track", "method"]),
                         columns=pd.MultiIndex.from_tuples(columns))
    frame[("", "seeds")] = frame[("", "seeds")].astype("Int64")
    caption = (f"Paper: AM-2k / PM-10k, the numbers its prose quotes (Table {table} is an image; empty = not quoted, "
               f"not zero). This run: {data}; mean over seeds ± half-width of the 95 % t-interval over seeds. "
               "Reference rows: the blank matte and closed-form matting with the trimap, for scale.")
    return PaperTable(f"table{table}", title, frame, caption)


def _empty_row(metrics) -> dict:
    row = {("", "experiment"): "", ("", "seeds"): pd.NA, (NOTES, PAPER): "", (NOTES, RUN): ""}
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
