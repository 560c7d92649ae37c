"""Stage 2 (``notebooks/02_bg20k.ipynb``): BG-20k's construction on the background candidates (Sect. 4.1).

:func:`run` does the stage's work from params.yaml (``bg20k``, ``seed``, ``data.datasets``) and
writes every output::

    <bg20k.out>/train/, testval/, manifest.csv   the background set (gfm.bg20k.build.build_bg20k)
    <bg20k.out>/figures/fig4_gallery.png         kept and rejected examples per reason (cf. Fig. 4)
    <bg20k.out>/figures/resolution.png           shorter sides before filtering and of the kept images
    <bg20k.out>/figures/figures.json             the figures' captions
    <bg20k.metrics_out>                          counts, seconds, each filter's precision and recall

Later stages read these files; none of them calls this code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from gfm.bg20k.build import build_bg20k
from gfm.bg20k.plots import plot_gallery, plot_resolution_hist
from gfm.bg20k.summary import metrics_summary, score_filters
from gfm.core import layout
from gfm.core.config import Params
from gfm.core.figures import save_figures
from gfm.core.io import write_json

#: The caption index written beside the figures (``[{"file": ..., "caption": ...}]``, read by the report).


@dataclass(frozen=True, eq=False)
class BG20kResult:
    """What :func:`run` computed and wrote; ``scores`` is None without truth labels."""

    manifest: pd.DataFrame
    scores: pd.DataFrame | None
    seconds: float
    metrics: dict
    figures: Mapping[str, Path]


def run(params: Params, *, progress: bool = False) -> BG20kResult:
    """Stage 2: build the background set from ``<data.datasets>/bg_candidates``, score its filters
    against ``bg_candidates.csv`` (when the candidates carry truth labels), write the metrics and
    the figures. Returns a :class:`BG20kResult`; the module docstring lists the files written."""
    cfg = params.bg20k
    datasets = Path(params.data.datasets)
    candidates, truth = datasets / layout.BG_CANDIDATES, datasets / layout.BG_CANDIDATES_TRUTH
    start = time.perf_counter()
    manifest = build_bg20k(candidates, cfg.out, min_short_side=cfg.min_short_side, short_side=cfg.short_side,
                           dedup=cfg.dedup, dedup_threshold=cfg.dedup_threshold, detector=cfg.detector,
                           saliency_threshold=cfg.saliency_threshold, val_fraction=cfg.val_fraction,
                           seed=params.seed, workers=cfg.workers, convert=cfg.convert, progress=progress)
    seconds = time.perf_counter() - start
    scores = score_filters(manifest, truth) if truth.is_file() else None
    metrics = metrics_summary(manifest, scores, seconds=seconds)
    write_json(cfg.metrics_out, metrics)
    return BG20kResult(manifest=manifest, scores=scores, seconds=seconds, metrics=metrics,
                       figures=_save_figures(Path(cfg.out) / "figures", params, manifest, candidates))


def _save_figures(folder: Path, params: Params, manifest: pd.DataFrame, candidates: Path) -> dict[str, Path]:
    """Draw the stage's figures and their caption index and replace ``folder``
    with them (:func:`gfm.core.figures.save_figures`)."""
    cfg = params.bg20k
    drawings = {
        "fig4_gallery": (
            f"BG-20k construction (cf. paper Fig. 4): kept candidates (first row) and, per row, up to "
            f"{cfg.gallery_per_reason} candidates rejected for one reason.",
            lambda: plot_gallery(manifest, candidates, per_reason=cfg.gallery_per_reason)),
        "resolution": (
            f"Resolution filter (Sect. 4.1): shorter side of every candidate and of the kept ones before "
            f"resizing (min_short_side = {cfg.min_short_side}); the kept images are resized to a "
            f"{cfg.short_side} px shorter side.",
            lambda: plot_resolution_hist(manifest, min_short_side=cfg.min_short_side)),
    }
    return save_figures(folder, drawings)
