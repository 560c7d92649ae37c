"""Figures of the composition routes (Sect. 4, Fig. 3), drawn from :mod:`gfm.compose.inspect`.

* :func:`fig3_route_comparison` — Fig. 3: one foreground composed by each route, boundary zooms;
* :func:`inspector_figure` — one composite, its boundary zoom and its fg/bg gaps next to a real photo's;
* :func:`static_inspector_figure` — a grid of inspector settings (the HTML stand-in for the widget);
* :func:`foreground_error_figure` — the foreground estimates scored against the true F.

Every function returns a matplotlib Figure; stage 3 saves them (:mod:`gfm.compose.stage`).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from gfm.compose import discrepancy
from gfm.compose.inspect import (ROUTE_TITLES, Settings, as_background, as_foreground, default_rows, inspect,
                                 median_reference, route_settings)
from gfm.core.arrays import boundary_window


def fig3_route_comparison(fg_item, backgrounds: Mapping, *,
                          panels: Sequence[str] = ("original", "coco", "bg20k_premultiplied", "bg20k", "rssn_blur", "rssn"),
                          fg_method: str = "cf", denoiser: str = "nlm", blur_kernel: int = 13,
                          noise_sigma: float = 10.0, zoom_size: int = 96, seed: int = 0):
    """Fig. 3 of the paper: one foreground composited by each route, with boundary zooms.

    Parameters
    ----------
    fg_item : ForegroundItem or (name, image, alpha)
        The real photo whose foreground is pasted; panel "original" shows the photo itself.
    backgrounds : mapping
        ``{"coco": ..., "bg20k": ...}`` background images (arrays or BackgroundItem).
    panels : sequence of str
        Keys of ``gfm.compose.inspect.ROUTE_TITLES``, left to right (default: the paper's (a)–(e)
        and full RSSN).
    fg_method, denoiser, blur_kernel, noise_sigma, seed
        The settings of the RSSN panels (see ``gfm.compose.inspect.route_settings``).
    zoom_size : int
        Side of the boundary crops (second row).
    """
    fg_item = as_foreground(fg_item)
    routes = route_settings(fg_method=fg_method, denoiser=denoiser, blur_kernel=blur_kernel,
                            noise_sigma=noise_sigma, seed=seed)
    unknown = [p for p in panels if p != "original" and p not in routes]
    if unknown:
        raise ValueError(f"panels: unknown {unknown}; expected 'original' or one of {list(routes)}")
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1.25, 1]})
    window = boundary_window(fg_item.alpha, zoom_size)
    y0, x0, size = window
    for column, panel in enumerate(panels):
        if panel == "original":
            composite = fg_item.image
        else:
            source, settings = routes[panel]
            if source not in backgrounds:
                raise ValueError(f"backgrounds: panel {panel!r} needs a {source!r} background, "
                                 f"got keys {list(backgrounds)}")
            composite, _, _ = inspect(fg_item, as_background(backgrounds[source], source), settings,
                                      zoom_size=zoom_size)
        _show_composite(axes[0, column], composite, window, ROUTE_TITLES.get(panel, panel))
        _show_zoom(axes[1, column], composite[y0:y0 + size, x0:x0 + size])
    fig.tight_layout()
    return fig


def inspector_figure(composite: np.ndarray, zoom: np.ndarray, measures: Mapping,
                     reference: Mapping | None = None, *, title: str = "", reference_label: str = "real photo"):
    """Composite (with the zoom window), boundary zoom (titled with the band measures) and a bar
    chart of the fg/bg gaps."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1.2]})
    _show_composite(axes[0], composite, measures.get("window"), title or "composite")
    _show_zoom(axes[1], zoom, measures)
    _gap_bars(axes[2], measures, reference, reference_label)
    fig.tight_layout()
    return fig


def static_inspector_figure(fg_item, bg_item, real_examples: Sequence = (), *,
                            rows: Mapping[str, Settings] | None = None, fg_method: str = "cf",
                            denoiser: str = "nlm", blur_kernel: int = 13, noise_sigma: float = 10.0,
                            zoom_size: int = 96, margin: int = 10, seed: int = 0):
    """A grid of precomputed inspector settings (the HTML stand-in for the live widget).

    Rows are named settings (default: plain, denoise, blur ``blur_kernel``, noise
    ``noise_sigma``, RSSN all); columns are composite / boundary zoom / fg-bg gaps next to the
    median gaps of ``real_examples``.
    """
    fg_item, bg_item = as_foreground(fg_item), as_background(bg_item)
    if rows is None:
        rows = default_rows(fg_method=fg_method, denoiser=denoiser, blur_kernel=blur_kernel,
                            noise_sigma=noise_sigma, seed=seed)
    reference = median_reference(real_examples, margin=margin)
    fig, axes = plt.subplots(len(rows), 3, figsize=(10.5, 2.9 * len(rows)),
                             gridspec_kw={"width_ratios": [1.4, 1, 1.2]}, squeeze=False)
    for ax_row, (row_name, settings) in zip(axes, rows.items()):
        composite, zoom, measures = inspect(fg_item, bg_item, settings, zoom_size=zoom_size, margin=margin)
        _show_composite(ax_row[0], composite, measures["window"], f"{row_name}: {settings.label()}")
        _show_zoom(ax_row[1], zoom, measures)
        _gap_bars(ax_row[2], measures, reference, "real photos (median)")
    fig.suptitle(f"foreground {fg_item.name} over background {bg_item.name}", fontsize=10)
    fig.tight_layout()
    return fig


def foreground_error_figure(table: pd.DataFrame, *, error: str = "mse_transition"):
    """Per-method ``error`` (log scale, one dot per image) and estimate time: two small panels."""
    if error not in table:
        raise ValueError(f"error must be a column of the table {list(table.columns)}, got {error!r}")
    order = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    sns.stripplot(data=table, x="method", y=error, order=order, ax=axes[0], size=4)
    sns.pointplot(data=table, x="method", y=error, order=order, ax=axes[0], color="k", markers="_",
                  linestyles="none", errorbar=None)
    axes[0].set_yscale("log")
    axes[0].set_title(f"foreground error vs true F ({error})", fontsize=9)
    sns.barplot(data=table, x="method", y="seconds", order=order, ax=axes[1], color="C1", errorbar=None)
    axes[1].set_title("seconds per image", fontsize=9)
    for ax in axes:
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def _show_composite(ax, image, window, title):
    ax.imshow(image)
    if window is not None:
        y0, x0, size = window
        ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, ec="yellow", lw=1.2))
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _show_zoom(ax, zoom, measures: Mapping | None = None):
    ax.imshow(zoom, interpolation="nearest")
    title = "boundary zoom"
    if measures is not None:
        bleeding, error = measures.get("band_bleeding", math.nan), measures.get("band_error", math.nan)
        title += f"\nband: bleeding {bleeding:.2f}" + ("" if math.isnan(error) else f", error {error:.1f}")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _gap_bars(ax, measures, reference, reference_label):
    names = list(discrepancy.MEASURES)
    x = np.arange(len(names))
    width = 0.38 if reference is not None else 0.6
    values = [measures[f"{n}_gap"] for n in names]
    ax.bar(x - (width / 2 if reference is not None else 0), values, width, label="composite", color="C1")
    if reference is not None:
        ax.bar(x + width / 2, [reference[f"{n}_gap"] for n in names], width, label=reference_label, color="C0")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("ln(fg / bg)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("fg/bg discrepancy", fontsize=8)
