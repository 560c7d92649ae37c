"""Stage 2 (``notebooks/02_bg20k.ipynb``): the BG-20k background set (Sect. 4.1).

:func:`run` does the stage's work from params.yaml (``bg20k``, ``seed``, ``data.source``,
``data.datasets``) in one of two modes (:func:`background_source`):

* ``official`` (``data.source: real``, no ``bg20k.candidates``): the released BG-20k, placed by
  stage 1 at ``<data.datasets>/bg20k/{train,testval}``, is passed through with its official split
  (:mod:`gfm.bg20k.official`); nothing is filtered or split again;
* ``constructed``: the construction of Sect. 4.1 (resolution, duplicates, salient objects, a
  seeded random split; :mod:`gfm.bg20k.build`) runs on a folder of candidates, ``bg20k.candidates``
  (one's own photos) or, by default with ``data.source: embedded``, the world's
  ``<data.datasets>/bg_candidates``, whose truth labels score the filters.

Files written::

    <bg20k.out>/train/, testval/, manifest.csv   the background set
    <bg20k.out>/figures/*.png, figures.json      the figures and their captions (per mode below)
    <bg20k.metrics_out>                          mode, split, counts, seconds (+ filter scores)

Figures: ``fig4_gallery`` (kept and rejected candidates, cf. Fig. 4) and ``resolution`` of a
constructed set; ``fig4_gallery`` (examples per official split) and ``resolution`` (shorter sides
per split) of the release. Later stages read these files; none of them calls this code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from gfm.bg20k import official, summary
from gfm.bg20k.build import build_bg20k
from gfm.bg20k.plots import plot_gallery, plot_resolution_hist, plot_split_gallery, plot_split_resolution
from gfm.core import layout
from gfm.core.config import Params
from gfm.core.figures import save_figures
from gfm.core.io import write_json
from gfm.data.registry import BG20K_SET


@dataclass(frozen=True)
class BackgroundSource:
    """Where stage 2's backgrounds come from: ``mode`` ``official`` (``folder`` is the release) or
    ``constructed`` (``folder`` holds candidates; ``truth`` their labels, None without)."""

    mode: str
    folder: Path
    truth: Path | None = None


@dataclass(frozen=True, eq=False)
class BG20kResult:
    """What :func:`run` computed and wrote. ``summary`` is the table shown by the notebook (per reason
    and split for a constructed set, per official split for the release); ``scores`` is None without
    truth labels."""

    mode: str
    manifest: pd.DataFrame
    summary: pd.DataFrame
    scores: pd.DataFrame | None
    seconds: float
    metrics: dict
    figures: Mapping[str, Path]


def run(params: Params, *, progress: bool = False) -> BG20kResult:
    """Stage 2: pass the released BG-20k through, or build a set from candidates (see the module
    docstring); write the metrics and the figures. Returns a :class:`BG20kResult`."""
    cfg = params.bg20k
    source = background_source(params)
    start = time.perf_counter()
    if source.mode == official.MODE:
        manifest = official.pass_through(source.folder, cfg.out)
        seconds = time.perf_counter() - start
        scores, table = None, official.split_summary(manifest)
        metrics = official.official_metrics(manifest, seconds=seconds)
    else:
        manifest = build_bg20k(source.folder, cfg.out, min_short_side=cfg.min_short_side, short_side=cfg.short_side,
                               dedup=cfg.dedup, dedup_threshold=cfg.dedup_threshold, detector=cfg.detector,
                               saliency_threshold=cfg.saliency_threshold, val_fraction=cfg.val_fraction,
                               seed=params.seed, workers=cfg.workers, convert=cfg.convert, progress=progress)
        seconds = time.perf_counter() - start
        scores = summary.score_filters(manifest, source.truth) if source.truth is not None else None
        table = summary.summarise(manifest)
        metrics = summary.metrics_summary(manifest, scores, seconds=seconds,
                                          split=f"random split (seed {params.seed}, val_fraction {cfg.val_fraction:g})")
    write_json(cfg.metrics_out, metrics)
    return BG20kResult(mode=source.mode, manifest=manifest, summary=table, scores=scores, seconds=seconds,
                       metrics=metrics, figures=_save_figures(Path(cfg.out) / "figures", params, source, manifest))


def background_source(params: Params) -> BackgroundSource:
    """The mode and folder of stage 2: ``bg20k.candidates`` when set (constructed, no truth labels);
    else, with ``data.source: real``, the release at ``<data.datasets>/bg20k`` (official); else the
    embedded world's ``<data.datasets>/bg_candidates`` with ``bg_candidates.csv`` (constructed, scored).
    A folder that is not there is an error naming the knob to change."""
    datasets = Path(params.data.datasets)
    if params.bg20k.candidates is not None:
        folder = Path(params.bg20k.candidates)
        if not folder.is_dir():
            raise FileNotFoundError(f"bg20k.candidates: {folder} is not a folder; expected a folder of candidate "
                                    f"images to build the background set from (Sect. 4.1)")
        return BackgroundSource(summary.MODE, folder)
    if params.data.source == "real":
        release = datasets / BG20K_SET
        if not release.is_dir():
            raise FileNotFoundError(f"{release}: no released BG-20k (data.source is real); add 'bg20k' to "
                                    f"data.real_sources and run stage 1, or set bg20k.candidates to a folder of "
                                    f"your own photos to build a background set from")
        return BackgroundSource(official.MODE, release)
    folder, truth = datasets / layout.BG_CANDIDATES, datasets / layout.BG_CANDIDATES_TRUTH
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no background candidates (data.source is embedded); run stage 1, or "
                                f"set bg20k.candidates to a folder of candidate images")
    return BackgroundSource(summary.MODE, folder, truth if truth.is_file() else None)


def _save_figures(folder: Path, params: Params, source: BackgroundSource, manifest: pd.DataFrame) -> dict[str, Path]:
    """Draw the stage's figures and their caption index and replace ``folder``
    with them (:func:`gfm.core.figures.save_figures`)."""
    cfg = params.bg20k
    if source.mode == official.MODE:
        drawings = {
            "fig4_gallery": (
                f"BG-20k as released (cf. paper Fig. 4): the first {cfg.gallery_per_reason} images of each official "
                f"split ({official.official_metrics(manifest)['split']}).",
                lambda: plot_split_gallery(manifest, cfg.out, per_split=cfg.gallery_per_reason)),
            "resolution": (
                "BG-20k as released: shorter side of the images of each official split (the paper resized them "
                "to a 1080 px shorter side, Sect. 4.1).",
                lambda: plot_split_resolution(manifest)),
        }
    else:
        drawings = {
            "fig4_gallery": (
                f"BG-20k construction (cf. paper Fig. 4): kept candidates (first row) and, per row, up to "
                f"{cfg.gallery_per_reason} candidates rejected for one reason.",
                lambda: plot_gallery(manifest, source.folder, per_reason=cfg.gallery_per_reason)),
            "resolution": (
                f"Resolution filter (Sect. 4.1): shorter side of every candidate and of the kept ones before "
                f"resizing (min_short_side = {cfg.min_short_side}); the kept images are resized to a "
                f"{cfg.short_side} px shorter side.",
                lambda: plot_resolution_hist(manifest, min_short_side=cfg.min_short_side)),
        }
    return save_figures(folder, drawings)
