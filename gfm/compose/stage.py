"""Stage 3 (``notebooks/03_rssn.ipynb``): the COMP-Track training sets, their domain gap, their figures.

:func:`run` does the stage's work from params.yaml (``compose`` and ``seed``) and writes every output::

    <compose.out>/<route>/...                   composites of each route (compose.mode offline), or the
                                                layers, recipe and inspection composites of an online route
                                                (compose.mode online; gfm.compose.build, gfm.compose.online)
    <compose.out>/ori/...                       train.fg_bg estimated: the real training images with F and B
                                                estimated by compose.fg_method (gfm.compose.build.build_ori_estimated)
    <compose.out>/figures/fig3_routes.png       Fig. 3: one foreground composed by each route
    <compose.out>/figures/inspector.png         the inspector grid: each RSSN technique alone, then all
    <compose.out>/figures/domain_gap.png        per-image fg/bg discrepancies, real photos vs each route
    <compose.out>/figures/foreground_error.png  the foreground estimates against the true F (Fig. 3c vs 3d)
    <compose.out>/figures/figures.json          the figures' captions
    <compose.out>/tables/domain_gap.csv         the per-image measures behind domain_gap.png
    <compose.out>/tables/foreground_error.csv   the per-image scores behind foreground_error.png
    <compose.metrics_out>                       domain-gap summary, foreground scores, composite counts

Later stages read these files; none of them calls this code.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from gfm.compose import discrepancy, figures, online
from gfm.compose.build import build_composites, build_online_route, build_ori_estimated
from gfm.compose.inspect import FG_METHODS, BackgroundItem, ForegroundItem, foreground_error_table
from gfm.compose.rssn import ROUTE_BACKGROUNDS, route_config
from gfm.core import layout
from gfm.core.config import ORI_ESTIMATED, Params
from gfm.core.figures import save_figures
from gfm.core.io import list_images, write_json, write_text

#: Backgrounds of each set (COCO, BG-20k) loaded for the figures and the inspector widget.
INSPECTOR_BACKGROUNDS = 2
#: The caption index written beside the figures (``[{"file": ..., "caption": ...}]``, read by the report).


@dataclass(frozen=True, eq=False)
class ComposeResult:
    """What :func:`run` computed and wrote (paths of the figures and tables it saved)."""

    records: Mapping[str, pd.DataFrame]
    seconds: Mapping[str, float]
    foreground_errors: pd.DataFrame
    gaps: pd.DataFrame
    gap_summary: pd.DataFrame
    metrics: dict
    figures: Mapping[str, Path]
    tables: Mapping[str, Path]
    foregrounds: tuple[ForegroundItem, ...]
    backgrounds: Mapping[str, tuple[BackgroundItem, ...]]
    ori: Path | None = None

    def composites(self) -> pd.DataFrame:
        """Composites written (of an online route: its inspection composites) and build seconds per route."""
        return pd.DataFrame({"composites": {r: len(v) for r, v in self.records.items()},
                             "seconds": dict(self.seconds)})

    def foreground_summary(self) -> pd.DataFrame:
        """Mean score of each foreground estimate over the scored images (:func:`foreground_summary`)."""
        return foreground_summary(self.foreground_errors)


@dataclass(frozen=True)
class StageInputs:
    """The folders stage 3 reads."""

    train: layout.Split
    coco: Path
    bg20k: Path


def run(params: Params, *, progress: bool = False) -> ComposeResult:
    """Stage 3: build every route of ``compose.routes`` and measure and draw what they change.

    1. Foreground estimation (Fig. 3c vs 3d): the first ``compose.fg_error_images`` training photos,
       every method of ``gfm.compose.foreground.METHODS``, scored in the transition band against
       the true F where the matting set has one (``foreground_error_table``).
    2. With ``train.fg_bg: estimated``, the ORI-Track set with estimated F and B
       (``gfm.compose.build.build_ori_estimated``; its F cache serves the routes too). The routes with
       params.yaml's knobs and ``seed``: composites made once (``compose.mode: offline``,
       ``gfm.compose.build.build_composites``) or the layers a training run composes from every
       epoch plus ``compose.gap_images`` inspection composites (``online``,
       ``gfm.compose.build.build_online_route``).
    3. Fig. 3 and the inspector grid, both made by ``gfm.compose.rssn.compose_layers`` (the blur
       kernel shown is the middle one of ``compose.blur_kernels``).
    4. The domain gap (``gfm.compose.discrepancy``) of the first ``compose.gap_images`` real photos
       and composites of each route (the inspection composites of an online route), summarised
       against the real photos.

    Returns a :class:`ComposeResult`; the module docstring lists the files written.
    """
    cfg = params.compose
    inputs = stage_inputs(params)
    out = Path(cfg.out)
    foregrounds = tuple(_foreground_items(inputs.train, cfg.fg_error_images))
    backgrounds = {source: tuple(BackgroundItem.from_file(p) for p in list_images(folder)[:INSPECTOR_BACKGROUNDS])
                   for source, folder in (("coco", inputs.coco), ("bg20k", inputs.bg20k))}
    fg_errors = foreground_error_table(foregrounds, methods=FG_METHODS)

    knobs = dict(k=cfg.k, p_denoise=cfg.p_denoise, p_blur=cfg.p_blur, blur_kernels=cfg.blur_kernels,
                 p_noise=cfg.p_noise, noise_sigma=cfg.noise_sigma, resize_mode=cfg.resize_mode)
    folders = {"coco": inputs.coco, "bg20k": inputs.bg20k}
    ori = None
    if params.train.fg_bg == ORI_ESTIMATED:
        ori = build_ori_estimated(inputs.train, out, fg_method=cfg.fg_method, workers=cfg.workers, progress=progress)
    records, seconds = {}, {}
    composites = {}  # route -> the folder of its composites (image/, alpha/)
    for route in cfg.routes:
        start = time.perf_counter()
        common = dict(config=route_config(route, **knobs), fg_method=cfg.fg_method, denoiser=cfg.denoiser,
                      seed=params.seed, workers=cfg.workers, progress=progress)
        if cfg.mode == "online":
            records[route] = build_online_route(inputs.train, folders[ROUTE_BACKGROUNDS[route]], out, route,
                                                inspection=cfg.gap_images, **common)
            composites[route] = out / route / online.INSPECTION_DIR
        else:
            records[route] = build_composites(inputs.train, folders[ROUTE_BACKGROUNDS[route]], out, route, **common)
            composites[route] = out / route
        seconds[route] = round(time.perf_counter() - start, 1)

    gaps = pd.concat([discrepancy.folder_gap_table(inputs.train.original, inputs.train.mask, "real",
                                                   limit=cfg.gap_images)]
                     + [discrepancy.folder_gap_table(folder / "image", folder / "alpha", r, limit=cfg.gap_images)
                        for r, folder in composites.items()], ignore_index=True)
    summary = discrepancy.gap_summary(gaps, reference="real")

    result_figures = _save_figures(out / "figures", params, foregrounds, backgrounds, fg_errors, gaps)
    tables = {"domain_gap": write_text(out / "tables" / "domain_gap.csv", gaps.to_csv(index=False)),
              "foreground_error": write_text(out / "tables" / "foreground_error.csv", fg_errors.to_csv(index=False))}
    metrics = {
        "domain_gap": _json_numbers(summary.round(4).to_dict(orient="index")),
        "foreground_error": _json_numbers(foreground_summary(fg_errors)[["mse", "mse_transition", "bleeding"]]
                                          .round(5).to_dict(orient="index")),
        "composites": {r: len(v) for r, v in records.items()},
    }
    write_json(cfg.metrics_out, metrics)
    return ComposeResult(records=records, seconds=seconds, foreground_errors=fg_errors, gaps=gaps,
                         gap_summary=summary, metrics=metrics, figures=result_figures, tables=tables,
                         foregrounds=foregrounds, backgrounds=backgrounds, ori=ori)


def foreground_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean score of each foreground estimate over the images of a ``foreground_error_table``."""
    return table.groupby("method", sort=False)[["mse", "mse_transition", "sad", "bleeding", "seconds"]].mean()


def stage_inputs(params: Params) -> StageInputs:
    """The training split and the two background folders of stage 3.

    The matting set is ``data.datasets`` (stage 1's output); without it (stage 1 not run, e.g. in
    JupyterLab) the embedded world in ``data.data_root`` is read. The BG-20k backgrounds are
    ``<bg20k.out>/train`` (stage 2's output); without them the BG-20k routes fall back to the COCO
    set. Both fallbacks warn.
    """
    datasets = Path(params.data.datasets)
    if not (datasets / layout.MATTING_SET).is_dir():
        warnings.warn(f"{datasets}: no matting set (stage 1 not run); reading the embedded world in "
                      f"{params.data.data_root}", stacklevel=2)
        datasets = Path(params.data.data_root)
    coco = datasets / layout.COCO
    bg20k = Path(params.bg20k.out, "train")
    if not bg20k.is_dir():
        warnings.warn(f"{bg20k}: no BG-20k backgrounds (stage 2 not run); the BG-20k routes use {coco}",
                      stacklevel=2)
        bg20k = coco
    return StageInputs(train=layout.matting_split(datasets, "train"), coco=coco, bg20k=bg20k)


def _foreground_items(train: layout.Split, n: int) -> list[ForegroundItem]:
    """The first ``n`` training photos with their mattes and, where the split has one, their true F."""
    truth = {p.stem: p for p in list_images(train.fg)} if train.fg.is_dir() else {}
    return [ForegroundItem.from_files(train.image_path(name), train.mask_path(name), truth.get(name))
            for name in train.names()[:n]]


def _save_figures(folder: Path, params: Params, foregrounds, backgrounds, fg_errors, gaps) -> dict[str, Path]:
    """Draw the stage's figures and their caption index and replace ``folder``
    with them (:func:`gfm.core.figures.save_figures`); the foreground error figure only where a true F is known."""
    cfg = params.compose
    kernel = cfg.blur_kernels[len(cfg.blur_kernels) // 2]
    choices = dict(fg_method=cfg.fg_method, denoiser=cfg.denoiser, blur_kernel=kernel,
                   noise_sigma=cfg.noise_sigma, seed=params.seed)
    first = {source: items[0] for source, items in backgrounds.items() if items}
    shown = first.get("bg20k", first.get("coco"))
    photo = foregrounds[0].name
    drawings = {
        "fig3_routes": (
            f"Composition routes (cf. paper Fig. 3): foreground {photo} (a) as photographed and composed onto a "
            f"COCO and a BG-20k background, with F = α·I, with F estimated by {cfg.fg_method}, with the "
            f"large-aperture blur (kernel {kernel}) and with every RSSN technique (denoise by {cfg.denoiser}, "
            f"noise σ = {cfg.noise_sigma:g}); bottom row: the boundary close-up.",
            lambda: figures.fig3_route_comparison(foregrounds[0], first, **choices)),
        "inspector": (
            f"Composition-artifact inspector, foreground {photo} over background {shown.name}: each RSSN technique "
            f"alone, then all, with the boundary close-up, the transition-band measures and the fg/bg "
            f"discrepancies next to the real photos' median.",
            lambda: figures.static_inspector_figure(foregrounds[0], shown, foregrounds, **choices)),
        "domain_gap": (
            "Domain gap per route: per-image fg/bg discrepancy, ln(fg / bg) of the noise level, the sharpness "
            "and the effective resolution, of real photos and of each route's composites.",
            lambda: discrepancy.domain_gap_figure(gaps, order=["real", *cfg.routes])),
        "foreground_error": (
            "Foreground estimation (Fig. 3c vs 3d): alpha-weighted error of each estimate against the true F in "
            "the transition band, one dot per image, and seconds per image.",
            lambda: figures.foreground_error_figure(fg_errors)),
    }
    if fg_errors["mse_transition"].isna().all():  # no true F: nothing to score against
        del drawings["foreground_error"]
    return save_figures(folder, drawings)


def _json_numbers(value):
    """``value`` with NaN replaced by None (JSON has no NaN; ``dvc metrics`` reads null)."""
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
