"""The figures the report draws itself, from stage output files only.

(The figures of stages 2, 3 and 5 -- BG-20k galleries, composition routes, qualitative results --
are PNG files those stages write, listed by gfm.report.inputs.stage_figures and shown as they are.)

* :func:`training_curves` -- the training loss of every experiment (``losses.csv`` of its runs).
* :func:`domain_gap` -- the composite-vs-real discrepancies per route (``metrics/compose.json``).
* :func:`comp_track` -- COMP-Track SAD relative to the ORI-Track SAD, the paper's and this run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from gfm.report.inputs import split_run
from gfm.report.numbers import paper_numbers

__all__ = ["training_curves", "domain_gap", "comp_track"]

_COMP_TRACKS = ("COMP-COCO", "COMP-BG20K", "COMP-RSSN")


def training_curves(losses: Mapping[str, str | Path | pd.DataFrame], *, term: str = "total", smooth: int = 10):
    """The training loss of every experiment against the step (log scale) -> Figure.

    ``losses`` maps a run (``<experiment>-s<seed>``, gfm.report.inputs.training_losses) to its
    ``losses.csv`` or a DataFrame of it (columns ``step`` and ``term``; ``total`` is Eq. 8's sum).
    Each curve is a rolling mean over ``smooth`` steps; with several seeds the line is their mean
    and the band their range.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    frames = []
    for run, history in losses.items():
        history = history if isinstance(history, pd.DataFrame) else pd.read_csv(history)
        if term not in history or "step" not in history:
            raise ValueError(f"losses of {run!r}: expected columns 'step' and {term!r}, got {list(history)}")
        experiment, seed = split_run(run) or (run, 0)
        frame = history[["step", term]].copy()
        frame[term] = frame[term].rolling(smooth, min_periods=1).mean()
        frames.append(frame.assign(experiment=experiment, seed=seed))
    if not frames:
        raise ValueError("losses: no training history to plot")
    long = pd.concat(frames, ignore_index=True)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    sns.lineplot(data=long, x="step", y=term, hue="experiment", errorbar=("pi", 100), ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel(f"{term} loss (Eq. 8)" if term == "total" else f"{term} loss")
    seeds = long.groupby("experiment")["seed"].nunique().max()
    band = f"; band: range over {seeds} seeds" if seeds > 1 else ""
    ax.set_title(f"Training loss of every experiment (rolling mean over {smooth} steps{band})", fontsize=10)
    fig.tight_layout()
    return fig


def domain_gap(compose: Mapping):
    """The measured domain gap of each composition route against real photos -> Figure.

    ``compose`` is ``metrics/compose.json`` (or its ``domain_gap`` part: ``{label: {noise_gap,
    sharpness_gap, resolution_gap, distance_to_real, ...}}``). Panels: the median fg/bg log-ratio
    gap of each measure per label (real photos first and grey; a route is closer to real the nearer
    its bar is to the real photos' dashed line), and ``distance_to_real``.
    """
    import matplotlib.pyplot as plt

    summary = _gap_summary(compose)
    if summary is None:
        raise ValueError("compose: no domain_gap measurements (expected metrics/compose.json's domain_gap)")
    labels = sorted(summary.index, key=lambda label: (label != "real", list(summary.index).index(label)))
    summary = summary.loc[labels]
    panels = [c for c in summary.columns if str(c).endswith("_gap")]
    panels += ["distance_to_real"] if "distance_to_real" in summary else []
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), squeeze=False)
    for ax, column in zip(axes[0], panels):
        values = summary[column].astype(float)
        colours = ["0.55" if label == "real" else f"C{i}" for i, label in enumerate(values.index)]
        ax.bar(list(values.index), values.to_numpy(), color=colours)
        if column != "distance_to_real" and "real" in values.index:
            ax.axhline(values["real"], color="k", ls="--", lw=0.8)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(column.removesuffix("_gap") + ": ln(fg / bg)" if column != "distance_to_real"
                     else "distance to real photos", fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.suptitle("Composite-vs-real discrepancies per route (stage 3's meter; 0 distance = like real photos)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def comp_track(summary: pd.DataFrame, *, numbers: pd.DataFrame | None = None, data: str = ""):
    """COMP-Track SAD relative to the same model's ORI-Track SAD, the paper's (AM-2k, Table 1) and
    this run's -> Figure. A ratio makes the two comparable although the data differ; 1 = as good
    as training on real photos.

    ``summary`` is gfm.report.summaries.experiment_summary: this run's GFM-TT models (two decoders,
    five PPM blocks, bridge block), one series per backbone.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    numbers = paper_numbers() if numbers is None else numbers
    rows = []
    for method in ("GFM-TT(d)", "GFM-TT(r)", "SHM"):
        sads = numbers[(numbers["table"] == "1") & (numbers["dataset"] == "AM-2k") & (numbers["method"] == method)
                       & (numbers["metric"] == "sad")].drop_duplicates("track").set_index("track")["value"]
        for track in _COMP_TRACKS:
            if "ORI" in sads and track in sads:
                rows.append({"series": f"paper {method}, AM-2k", "track": track, "ratio": sads[track] / sads["ORI"]})
    base = summary[(summary["rosta"] == "TT") & (summary["decoder"] == "two") & (summary["ppm"] == "five")
                   & summary["bridge"].astype(bool) & summary["evaluated"] & summary["sad"].notna()]
    for _, group in base.groupby(base["backbone"].fillna("?"), sort=False):
        sads = group.drop_duplicates("paper_track").set_index("paper_track")["sad"]
        for track in _COMP_TRACKS:
            if "ORI" in sads and track in sads and sads["ORI"] > 0:
                label = group["paper_row"].iloc[0]
                rows.append({"series": f"this run {label}" + (f", {data}" if data else ""), "track": track,
                             "ratio": sads[track] / sads["ORI"]})
    if not rows:
        raise ValueError("no model with both an ORI-Track and a COMP-Track SAD (paper or this run)")
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    sns.barplot(data=pd.DataFrame(rows), x="track", y="ratio", hue="series", order=list(_COMP_TRACKS), ax=ax)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("SAD / SAD of the ORI-Track model")
    ax.set_xlabel("")
    ax.set_title("Generalisation to real images: composite-trained vs real-trained (cf. Table 1)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _gap_summary(compose: Mapping | None) -> pd.DataFrame | None:
    """``{label: {measure: value}}`` of compose.json's ``domain_gap`` as a frame (labels as index)."""
    if not compose:
        return None
    gap = compose.get("domain_gap", compose)
    if not isinstance(gap, Mapping) or not gap or not all(isinstance(v, Mapping) for v in gap.values()):
        return None
    return pd.DataFrame.from_dict(gap, orient="index")
