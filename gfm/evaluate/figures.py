"""Qualitative results (Figs. 6-7 style), drawn from the saved predictions and written as PNG files.

The stage saves every figure into ``<evaluate.out>/figures/`` with an index, ``figures.json``
(one entry per file: ``file``, ``kind``, ``image``, ``runs``, ``baselines``, ``caption``), so the
report shows files and never calls stage code.

* :func:`contested_images` -- the validation images on which the runs disagree most.
* :func:`plot_models` / :func:`result_figure` -- one image, its ground truth and every run's matte
  (plus the reference mattes of :data:`gfm.evaluate.baselines.SHOWN`), full size and close view.
* :func:`plot_qualitative` / :func:`decoders_figure` -- one run on one image: the glance decoder's
  classes, the focus decoder's alpha, their collaboration (Eq. 7) and its error.
* :func:`save_figures` -- the stage's figures and their index.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gfm.core.arrays import boundary_window, to01
from gfm.core.figures import FIGURE_INDEX, save_figure
from gfm.core.io import read_alpha, read_image, write_text
from gfm.evaluate.metrics import MAIN_METRICS
from gfm.evaluate.files import glance_display, load_prediction, read_per_image, validation_split
from gfm.evaluate.runs import FIGURES_DIR, Run, baseline_folder, evaluated_runs

__all__ = ["INDEX", "contested_images", "plot_qualitative", "plot_models", "result_figure", "decoders_figure",
           "save_figures", "save_figure"]

#: The figure index written beside the PNG files.
INDEX = FIGURE_INDEX


def contested_images(evaluation_dir: str | Path, runs: Sequence[Run] | None = None, *, n: int = 3,
                     metric: str = "sad") -> list[str]:
    """The ``n`` validation images whose ``metric`` differs most between ``runs`` (default: every
    evaluated run; max - min over their ``per_image.csv``): the most telling ones to look at."""
    runs = evaluated_runs(evaluation_dir) if runs is None else list(runs)
    tables = {run.name: _column(run.folder(evaluation_dir), metric) for run in runs}
    table = pd.DataFrame(tables).dropna()
    if table.empty:
        raise FileNotFoundError(f"{evaluation_dir}: no per_image.csv with {metric!r} for runs {list(tables)}")
    spread = (table.max(axis=1) - table.min(axis=1)).sort_values(ascending=False, kind="stable")
    return [str(name) for name in spread.index[:n]]


def plot_qualitative(image: np.ndarray, gt: np.ndarray, outputs: Mapping, *, title: str | None = None,
                     zoom: int | None = None):
    """Figs. 6-7 style panels of one prediction -> Figure.

    Top row: the image, the ground truth, the glance decoder's classes, the focus decoder's alpha,
    the collaborative matte and the absolute error |fusion - ground truth|. Bottom row: the same
    panels on a ``zoom``-pixel square (default: a third of the short side) where the ground
    truth's transition (0 < alpha < 1) is densest.

    ``outputs`` is a :func:`gfm.model.infer.predict` result or a
    :func:`gfm.evaluate.files.load_prediction` one.
    """
    gt01 = to01(gt)
    fusion = np.asarray(outputs["fusion"], dtype=np.float32)
    panels = {"image": image, "ground truth": gt01, "glance": glance_display(outputs),
              "focus": np.asarray(outputs["focus"], dtype=np.float32), "fusion": fusion,
              "|error|": np.abs(fusion - gt01)}
    window = _window(gt01, zoom)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.3 * len(panels), 4.4), squeeze=False)
    for col, (label, panel) in enumerate(panels.items()):
        cmap = "magma" if label == "|error|" else "gray"
        _show(axes[0, col], panel, cmap, label, window if col == 0 else None)
        _show(axes[1, col], _crop(panel, window), cmap, None)
    axes[1, 0].set_ylabel("close view")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_models(image: np.ndarray, gt: np.ndarray, fusions: Mapping[str, np.ndarray], *,
                title: str | None = None, zoom: int | None = None, scores: Mapping[str, float] | None = None):
    """The image, its ground truth and the matte of each model, full size and close view -> Figure.

    ``scores`` (model -> SAD, optional) are printed under the model names.
    """
    gt01 = to01(gt)
    panels = {"image": image, "ground truth": gt01}
    for model, fusion in fusions.items():
        score = None if scores is None else scores.get(model)
        label = model if score is None or not math.isfinite(score) else f"{model}\nSAD {score:.2f}"
        panels[label] = np.asarray(fusion, dtype=np.float32)
    window = _window(gt01, zoom)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.3 * len(panels), 4.6), squeeze=False)
    for col, (label, panel) in enumerate(panels.items()):
        _show(axes[0, col], panel, "gray", label, window if col == 0 else None)
        _show(axes[1, col], _crop(panel, window), "gray", None)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def result_figure(evaluation_dir: str | Path, validation_dir: str | Path, name: str,
                  runs: Sequence[Run] | None = None, *, baselines: Sequence[str] = (), zoom: int | None = None):
    """:func:`plot_models` of validation image ``name``: the saved matte of each of ``runs`` (default:
    every evaluated run) and of each reference matte of ``baselines``, SAD from ``per_image.csv``."""
    split = validation_split(validation_dir)
    runs = evaluated_runs(evaluation_dir) if runs is None else list(runs)
    folders = {run.name: run.folder(evaluation_dir) for run in runs}
    folders.update({b: baseline_folder(evaluation_dir, b) for b in baselines})
    fusions = {label: load_prediction(folder, name)["fusion"] for label, folder in folders.items()}
    scores = {label: _column(folder, "sad").get(name, math.nan) for label, folder in folders.items()}
    return plot_models(read_image(split.image_path(name)), read_alpha(split.mask_path(name)), fusions,
                       title=name, zoom=zoom, scores=scores)


def decoders_figure(evaluation_dir: str | Path, validation_dir: str | Path, run: Run, name: str, *,
                    zoom: int | None = None):
    """:func:`plot_qualitative` of ``run``'s saved prediction of image ``name``, its main metrics
    (``per_image.csv``) in the title."""
    split = validation_split(validation_dir)
    folder = run.folder(evaluation_dir)
    row = read_per_image(folder).to_dict(orient="index").get(name, {})
    summary = ", ".join(f"{k.upper()} {row[k]:.4g}" for k in MAIN_METRICS if k in row)
    return plot_qualitative(read_image(split.image_path(name)), read_alpha(split.mask_path(name)),
                            load_prediction(folder, name), title=f"{run.name} on {name}: {summary}", zoom=zoom)


def save_figures(evaluation_dir: str | Path, validation_dir: str | Path, runs: Sequence[Run], names: Sequence[str],
                 *, baselines: Sequence[str] = (), folder: str | Path | None = None) -> list[dict]:
    """Write the stage's figures as PNG files and their index (:data:`INDEX`) -> the index entries.

    For each image of ``names``: ``qualitative_<image>.png`` (:func:`result_figure` of ``runs`` and
    ``baselines``); for the first image: ``decoders_<run>_<image>.png`` (:func:`decoders_figure` of
    the first run; the static companion of the result browser). ``folder`` defaults to
    ``<evaluation_dir>/figures``. The saved predictions of these runs and images must exist.
    """
    folder = Path(evaluation_dir) / FIGURES_DIR if folder is None else Path(folder)
    runs, names = list(runs), list(names)
    if not runs or not names:
        raise ValueError(f"save_figures: nothing to draw (runs {[r.name for r in runs]}, images {names})")
    entries = []
    for name in names:
        fig = result_figure(evaluation_dir, validation_dir, name, runs, baselines=baselines)
        entries.append({"file": _save(fig, folder, f"qualitative_{name}"), "kind": "qualitative",
                        "image": name, "runs": [r.name for r in runs], "baselines": list(baselines),
                        "caption": f"Validation image {name}: the ground truth and the matte of "
                                   f"{', '.join([r.name for r in runs] + list(baselines))}, full size and close view "
                                   f"(the yellow square), SAD under each name (cf. Figs. 6-7)"})
    run, name = runs[0], names[0]
    fig = decoders_figure(evaluation_dir, validation_dir, run, name)
    entries.append({"file": _save(fig, folder, f"decoders_{run.name}_{name}"), "kind": "decoders",
                    "image": name, "runs": [run.name], "baselines": [],
                    "caption": f"{run.name} on {name}: the glance decoder's classes, the focus decoder's alpha, "
                               f"their collaborative matte (Eq. 7) and its absolute error"})
    write_text(folder / INDEX, json.dumps(entries, indent=2) + "\n")
    return entries


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _save(fig, folder: Path, name: str) -> str:
    path = save_figure(fig, folder, name)
    plt.close(fig)
    return path.name


def _column(folder: Path, metric: str) -> pd.Series:
    table = read_per_image(folder)
    return table[metric] if metric in table else pd.Series(dtype=float)


def _window(gt01: np.ndarray, zoom: int | None):
    return boundary_window(gt01, size=zoom or max(16, min(gt01.shape) // 3))


def _crop(panel: np.ndarray, window) -> np.ndarray:
    y, x, size = window
    return panel[y:y + size, x:x + size]


def _show(ax, panel, cmap, title, window=None):
    panel = np.asarray(panel)
    vmax = 255 if panel.dtype == np.uint8 else 1.0
    ax.imshow(panel, cmap=None if panel.ndim == 3 else cmap, vmin=0, vmax=vmax, interpolation="nearest")
    if window is not None:
        y, x, size = window
        ax.add_patch(patches.Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor="yellow", lw=1.2))
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
