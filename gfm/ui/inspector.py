"""Composition-artifact inspector: one composite, its boundary and its fg/bg discrepancies.

The paper (Sect. "RSSN: A Novel Composition Route", Fig. 3) shows how each choice of the
composition route changes the look of a composite: the background source (MS COCO vs BG-20k),
the foreground estimate (alpha × original vs Levin et al.'s closed form), denoising, the
large-aperture blur and the shared Gaussian noise. Here every choice is a setting, and the
result is measured with :mod:`gfm.compose.discrepancy` next to the same measures on real photos.

Computation and display are separate:

* :func:`inspect` — pure (memoised) function ``(fg_item, bg_item, settings) -> (composite, zoom,
  measures)``, the order of operations of the RSSN pipeline (Pipeline 1);
* :func:`inspector_figure`, :func:`static_inspector_figure`, :func:`fig3_route_comparison` —
  matplotlib figures (the last two are what the HTML report shows without a kernel);
* :func:`build_inspector` — the ipywidgets control panel that only wires controls to
  :func:`inspect` and :func:`inspector_figure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import ipywidgets as widgets
import pandas as pd

from gfm.compose import discrepancy
from gfm.core.arrays import to01, to_uint8
from gfm.ui import widgets as gfm_widgets

#: Default choices of the widget (sample scale: the world's images are ~360 px, so the paper's
#: blur kernels 20–60 at 1080 px become 7–20; see params.yaml ``compose.blur_kernels``).
BLUR_KERNELS = (0, 7, 10, 13, 17, 20)
NOISE_SIGMAS = (0.0, 5.0, 10.0, 20.0)
FG_METHODS = ("cf", "ml", "naive", "premultiplied")

#: Titles of the Fig. 3 panels, by the route (or variant) they show.
ROUTE_TITLES = {
    "original": "(a) real photo",
    "coco": "(b) COMP-COCO",
    "bg20k_premultiplied": "(c) BG-20k, F = α·I",
    "bg20k": "(d) COMP-BG20K",
    "rssn_blur": "(e) + large-aperture blur",
    "rssn_denoise": "RSSN: denoise only",
    "rssn_noise": "RSSN: noise only",
    "rssn": "COMP-RSSN (all)",
}


@dataclass(frozen=True)
class Settings:
    """One choice of every knob of the composition route (Pipeline 1 of the paper).

    Attributes
    ----------
    fg_method : str
        Foreground estimate, a key of ``gfm.compose.foreground.METHODS`` ("cf" = Levin et al. 2007, the paper's).
    denoise : bool
        Denoise foreground and background before blending (paper: BM3D).
    denoiser : str
        ``gfm.compose.denoise.denoise`` method used when ``denoise`` is on.
    blur_kernel : int
        Averaging-filter size applied to the background (0 = no blur).
    noise_sigma : float
        Std of the Gaussian noise added to the composite, in grey levels (0 = none).
    seed : int
        Seed of the noise realisation.
    """

    fg_method: str = "cf"
    denoise: bool = False
    denoiser: str = "nlm"
    blur_kernel: int = 0
    noise_sigma: float = 0.0
    seed: int = 0

    def label(self) -> str:
        parts = [f"F={self.fg_method}"]
        if self.denoise:
            parts.append(f"denoise({self.denoiser})")
        if self.blur_kernel:
            parts.append(f"blur {self.blur_kernel}")
        if self.noise_sigma:
            parts.append(f"noise σ={self.noise_sigma:g}")
        return ", ".join(parts)


@dataclass(eq=False)
class ForegroundItem:
    """A real photo and its alpha matte: the source of the foreground layer (and a "real" example).

    Foreground estimates and their denoised versions are memoised per method.
    """

    name: str
    image: np.ndarray
    alpha: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.image = np.asarray(self.image)
        self.alpha = np.asarray(self.alpha)
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"foreground {self.name!r}: image must be RGB uint8 H×W×3, "
                             f"got {self.image.dtype} {self.image.shape}")
        if self.alpha.shape != self.image.shape[:2] or self.alpha.dtype != np.uint8:
            raise ValueError(f"foreground {self.name!r}: alpha must be uint8 H×W of the image's size "
                             f"{self.image.shape[:2]}, got {self.alpha.dtype} {self.alpha.shape}")

    @classmethod
    def from_files(cls, image_path: str | Path, alpha_path: str | Path) -> "ForegroundItem":
        from gfm.core.io import read_alpha, read_image

        return cls(Path(image_path).stem, read_image(image_path), read_alpha(alpha_path))

    def foreground(self, method: str, denoiser: str | None = None) -> np.ndarray:
        """Foreground colours F (float32 [0, 1]) by ``method``, denoised by ``denoiser`` if given."""
        key = (method, denoiser)
        if key not in self._cache:
            if denoiser is None:
                from gfm.compose.foreground import estimate_foreground

                self._cache[key] = estimate_foreground(self.image, self.alpha, method=method)
            else:
                self._cache[key] = _denoise01(self.foreground(method), denoiser)
        return self._cache[key]


@dataclass(eq=False)
class BackgroundItem:
    """A background image (COCO-like or BG-20k); its denoised versions are memoised."""

    name: str
    image: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.image = np.asarray(self.image)
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"background {self.name!r}: image must be RGB uint8 H×W×3, "
                             f"got {self.image.dtype} {self.image.shape}")

    @classmethod
    def from_file(cls, path: str | Path) -> "BackgroundItem":
        from gfm.core.io import read_image

        return cls(Path(path).stem, read_image(path))

    def resized(self, shape: tuple[int, int], denoiser: str | None = None) -> np.ndarray:
        """The background fitted to ``shape`` (``gfm.compose.rssn.resize_to``), as float32 [0, 1]."""
        key = (tuple(shape), denoiser)
        if key not in self._cache:
            if denoiser is None:
                from gfm.compose.rssn import resize_to

                self._cache[key] = to01(resize_to(self.image, tuple(shape)))
            else:
                self._cache[key] = _denoise01(self.resized(shape), denoiser)
        return self._cache[key]


def inspect(fg_item: ForegroundItem, bg_item: BackgroundItem, settings: Settings, *,
            zoom_size: int = 96, margin: int = 10) -> tuple[np.ndarray, np.ndarray, dict]:
    """Compose ``fg_item`` over ``bg_item`` with ``settings`` and measure the discrepancies.

    The order is the RSSN pipeline's: foreground estimate → denoise fg and bg → average blur of
    the background → alpha blending (Eq. 1) → Gaussian noise on the composite. Each setting is
    applied deterministically (no probabilities); the noise realisation comes from
    ``settings.seed``.

    Parameters
    ----------
    fg_item, bg_item : ForegroundItem, BackgroundItem
        Inputs; their memoised foreground / denoised layers are reused across calls.
    settings : Settings
        The knobs.
    zoom_size : int
        Side of the boundary crop (see :func:`boundary_window`).
    margin : int
        Distance of the measured fg/bg regions from the transition (``discrepancy.region_masks``).

    Returns
    -------
    composite : ndarray
        RGB uint8 H×W×3.
    zoom : ndarray
        RGB uint8 crop of the composite around the most detailed part of the boundary.
    measures : dict
        ``discrepancy.measure`` of the composite plus ``window`` = (y0, x0, size) of the zoom.
    """
    from gfm.compose.rssn import add_gaussian_noise, average_blur, blend

    if settings.blur_kernel < 0 or settings.noise_sigma < 0:
        raise ValueError(f"settings: blur_kernel and noise_sigma must be >= 0, got {settings}")
    alpha = fg_item.alpha
    denoiser = settings.denoiser if settings.denoise else None
    fg = fg_item.foreground(settings.fg_method, denoiser)
    bg = bg_item.resized(alpha.shape, denoiser)
    if settings.blur_kernel:
        bg = to01(average_blur(bg, int(settings.blur_kernel)))
    composite = to01(blend(fg, bg, alpha))
    if settings.noise_sigma:
        rng = np.random.default_rng(settings.seed)
        composite = to01(add_gaussian_noise(composite, float(settings.noise_sigma), rng))
    composite = to_uint8(composite)
    y0, x0, size = boundary_window(alpha, zoom_size)
    zoom = composite[y0:y0 + size, x0:x0 + size].copy()
    measures = discrepancy.measure(composite, alpha, margin=margin)
    measures["window"] = (y0, x0, size)
    return composite, zoom, measures


def boundary_window(alpha: np.ndarray, size: int = 96) -> tuple[int, int, int]:
    """Top-left corner and side of the ``size``-square crop holding most transition pixels.

    Transition pixels are ``0 < alpha < 1`` (the fine details where composition artifacts show,
    Fig. 3); a matte without any falls back to the ``alpha ≥ 0.5`` contour, then to the centre.
    The side is clipped to the image.
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H×W, got shape {alpha.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    h, w = alpha.shape
    size = int(min(size, h, w))
    a = alpha.astype(np.float32) / (255.0 if alpha.dtype == np.uint8 else 1.0)
    weight = ((a > 0) & (a < 1)).astype(np.float32)
    if not weight.any():
        solid = (a >= 0.5).astype(np.uint8)
        weight = (cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0).astype(np.float32)
    if not weight.any():
        return (h - size) // 2, (w - size) // 2, size
    counts = cv2.boxFilter(weight, -1, (size, size), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    counts = counts[: h - size + 1, : w - size + 1]
    y0, x0 = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(y0), int(x0), size


def real_measures(real_examples: Sequence, *, margin: int = 10) -> pd.DataFrame:
    """``discrepancy.domain_gap_table`` of real photos (ForegroundItem or (name, image, alpha))."""
    items = [_as_foreground(item) for item in real_examples]
    return discrepancy.domain_gap_table(((it.image, it.alpha) for it in items), "real",
                                        names=[it.name for it in items], margin=margin)


def measures_table(measures: Mapping, reference: Mapping | None = None, *,
                   labels: tuple[str, str] = ("composite", "real")) -> pd.DataFrame:
    """fg / bg / gap of every measure as a small table; ``reference`` adds the real photo's columns."""
    rows = []
    for name, description in discrepancy.MEASURES.items():
        row = {"measure": name, "unit": description}
        for label, source in zip(labels, (measures, reference)):
            if source is None:
                continue
            for part in (*discrepancy.REGIONS, "gap"):
                row[f"{label} {part}"] = float(source[f"{name}_{part}"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("measure")


def inspector_figure(composite: np.ndarray, zoom: np.ndarray, measures: Mapping,
                     reference: Mapping | None = None, *, title: str = "", reference_label: str = "real photo"):
    """Composite (with the zoom window), boundary zoom and a bar chart of the fg/bg gaps."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1.2]})
    _show_composite(axes[0], composite, measures.get("window"), title or "composite")
    _show_zoom(axes[1], zoom)
    _gap_bars(axes[2], measures, reference, reference_label)
    fig.tight_layout()
    return fig


def static_inspector_figure(fg_item, bg_item, real_examples: Sequence = (), *,
                            rows: Mapping[str, Settings] | None = None, fg_method: str = "cf",
                            denoiser: str = "nlm", blur_kernel: int = 13, noise_sigma: float = 10.0,
                            zoom_size: int = 96, margin: int = 10, seed: int = 0):
    """A grid of precomputed inspector settings (the HTML stand-in for :func:`build_inspector`).

    Rows are named settings (default: plain, denoise, blur ``blur_kernel``, noise
    ``noise_sigma``, RSSN all); columns are composite / boundary zoom / fg-bg gaps next to the
    median gaps of ``real_examples``.
    """
    import matplotlib.pyplot as plt

    fg_item, bg_item = _as_foreground(fg_item), _as_background(bg_item)
    if rows is None:
        rows = default_rows(fg_method=fg_method, denoiser=denoiser, blur_kernel=blur_kernel,
                            noise_sigma=noise_sigma, seed=seed)
    reference = _median_reference(real_examples, margin)
    fig, axes = plt.subplots(len(rows), 3, figsize=(10.5, 2.9 * len(rows)),
                             gridspec_kw={"width_ratios": [1.4, 1, 1.2]}, squeeze=False)
    for ax_row, (row_name, settings) in zip(axes, rows.items()):
        composite, zoom, measures = inspect(fg_item, bg_item, settings, zoom_size=zoom_size, margin=margin)
        _show_composite(ax_row[0], composite, measures["window"], f"{row_name}: {settings.label()}")
        _show_zoom(ax_row[1], zoom)
        _gap_bars(ax_row[2], measures, reference, "real photos (median)")
    fig.suptitle(f"foreground {fg_item.name} over background {bg_item.name}", fontsize=10)
    fig.tight_layout()
    return fig


def default_rows(*, fg_method: str = "cf", denoiser: str = "nlm", blur_kernel: int = 13,
                 noise_sigma: float = 10.0, seed: int = 0) -> dict[str, Settings]:
    """The rows of :func:`static_inspector_figure`: each RSSN technique alone, then all together."""
    plain = Settings(fg_method=fg_method, denoiser=denoiser, seed=seed)
    return {
        "plain": plain,
        "denoise": replace(plain, denoise=True),
        f"blur {blur_kernel}": replace(plain, blur_kernel=blur_kernel),
        f"noise {noise_sigma:g}": replace(plain, noise_sigma=noise_sigma),
        "RSSN all": replace(plain, denoise=True, blur_kernel=blur_kernel, noise_sigma=noise_sigma),
    }


def route_settings(*, fg_method: str = "cf", denoiser: str = "nlm", blur_kernel: int = 13,
                   noise_sigma: float = 10.0, seed: int = 0) -> dict[str, tuple[str, Settings]]:
    """Each Fig. 3 panel as (background source, Settings): the route's techniques all switched on."""
    base = Settings(fg_method=fg_method, denoiser=denoiser, seed=seed)
    return {
        "coco": ("coco", base),
        "bg20k_premultiplied": ("bg20k", replace(base, fg_method="premultiplied")),
        "bg20k": ("bg20k", base),
        "rssn_blur": ("bg20k", replace(base, blur_kernel=blur_kernel)),
        "rssn_denoise": ("bg20k", replace(base, denoise=True)),
        "rssn_noise": ("bg20k", replace(base, noise_sigma=noise_sigma)),
        "rssn": ("bg20k", replace(base, denoise=True, blur_kernel=blur_kernel, noise_sigma=noise_sigma)),
    }


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
        Keys of :data:`ROUTE_TITLES`, left to right (default: the paper's (a)–(e) and full RSSN).
    fg_method, denoiser, blur_kernel, noise_sigma, seed
        The settings of the RSSN panels (see :func:`route_settings`).
    zoom_size : int
        Side of the boundary crops (second row).
    """
    import matplotlib.pyplot as plt

    fg_item = _as_foreground(fg_item)
    routes = route_settings(fg_method=fg_method, denoiser=denoiser, blur_kernel=blur_kernel,
                            noise_sigma=noise_sigma, seed=seed)
    unknown = [p for p in panels if p != "original" and p not in routes]
    if unknown:
        raise ValueError(f"panels: unknown {unknown}; expected 'original' or one of {list(routes)}")
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1.25, 1]})
    window = boundary_window(fg_item.alpha, zoom_size)
    for column, panel in enumerate(panels):
        if panel == "original":
            composite = fg_item.image
        else:
            source, settings = routes[panel]
            if source not in backgrounds:
                raise ValueError(f"backgrounds: panel {panel!r} needs a {source!r} background, "
                                 f"got keys {list(backgrounds)}")
            composite, _, _ = inspect(fg_item, _as_background(backgrounds[source], source), settings,
                                      zoom_size=zoom_size)
        y0, x0, size = window
        _show_composite(axes[0, column], composite, window, ROUTE_TITLES.get(panel, panel))
        _show_zoom(axes[1, column], composite[y0:y0 + size, x0:x0 + size])
    fig.tight_layout()
    return fig


def foreground_error_table(items: Sequence, true_foregrounds: Mapping[str, np.ndarray], *,
                           methods: Sequence[str] = FG_METHODS) -> pd.DataFrame:
    """Error of each foreground estimate against the true F (the choice behind Fig. 3c vs 3d).

    Parameters
    ----------
    items : sequence of ForegroundItem or (name, image, alpha)
        Real photos with their mattes; their memoised estimates are reused by later calls.
    true_foregrounds : mapping
        ``name -> F`` (RGB uint8 or float [0, 1]); the embedded world knows it exactly.
    methods : sequence of str
        Keys of ``gfm.compose.foreground.METHODS``.

    Returns
    -------
    DataFrame
        One row per (image, method): ``gfm.compose.foreground.foreground_error`` and ``seconds`` (the time
        of the estimate; 0 when it was already memoised).
    """
    import time

    from gfm.compose.foreground import foreground_error

    rows = []
    for item in (_as_foreground(it) for it in items):
        if item.name not in true_foregrounds:
            raise ValueError(f"true_foregrounds: no F for {item.name!r}")
        for method in methods:
            start = time.perf_counter()
            estimate = item.foreground(method)
            seconds = time.perf_counter() - start
            errors = foreground_error(estimate, true_foregrounds[item.name], item.alpha)
            rows.append({"name": item.name, "method": method, **errors, "seconds": seconds})
    return pd.DataFrame(rows)


def foreground_error_figure(table: pd.DataFrame, *, error: str = "mse_transition"):
    """Per-method ``error`` (log scale, one dot per image) and estimate time: two small panels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

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


def build_inspector(foregrounds: Sequence, backgrounds: Sequence, real_examples: Sequence = (), *,
                    fg_methods: Sequence[str] = FG_METHODS, blur_kernels: Sequence[int] = BLUR_KERNELS,
                    noise_sigmas: Sequence[float] = NOISE_SIGMAS, denoiser: str = "nlm",
                    zoom_size: int = 96, margin: int = 10, seed: int = 0) -> "Inspector":
    """The live composition-artifact inspector (an ipywidgets VBox).

    Dropdowns pick the foreground, the background and the real photo to compare with; toggles set
    the foreground method, denoising, blur kernel and noise σ. Every change recomputes
    :func:`inspect` and redraws :func:`inspector_figure` and :func:`measures_table`.

    Parameters
    ----------
    foregrounds : sequence of ForegroundItem or (name, image, alpha)
    backgrounds : sequence of BackgroundItem or (name, image)
    real_examples : sequence of ForegroundItem or (name, image, alpha)
        Real photos whose measures are shown beside the composite's (default: the foregrounds).
    fg_methods, blur_kernels, noise_sigmas : sequences
        Choices offered by the controls (blur kernel 0 / σ 0 mean off); the first is the default.
    denoiser : str
        ``gfm.compose.denoise`` method of the denoise toggle.
    zoom_size, margin, seed : int
        As in :func:`inspect`; ``seed`` fixes the noise realisation.
    """
    foregrounds = [_as_foreground(item) for item in foregrounds]
    backgrounds = [_as_background(item) for item in backgrounds]
    real = [_as_foreground(item) for item in real_examples] or foregrounds
    for name, seq in (("foregrounds", foregrounds), ("backgrounds", backgrounds),
                      ("fg_methods", fg_methods), ("blur_kernels", blur_kernels), ("noise_sigmas", noise_sigmas)):
        if len(seq) == 0:
            raise ValueError(f"build_inspector: {name} must not be empty")
    return Inspector(foregrounds, backgrounds, real, fg_methods=tuple(fg_methods),
                     blur_kernels=tuple(int(k) for k in blur_kernels),
                     noise_sigmas=tuple(float(s) for s in noise_sigmas),
                     denoiser=denoiser, zoom_size=zoom_size, margin=margin, seed=seed)


class Inspector(widgets.VBox):
    """The widget returned by :func:`build_inspector`; ``result`` holds the last computation."""

    def __init__(self, foregrounds, backgrounds, real, *, fg_methods, blur_kernels, noise_sigmas,
                 denoiser, zoom_size, margin, seed):
        self._items = {
            "foreground": {it.name: it for it in foregrounds},
            "background": {it.name: it for it in backgrounds},
            "real": {it.name: it for it in real},
        }
        self._real_measures = {}
        self._fixed = dict(denoiser=denoiser, seed=seed)
        self._zoom_size, self._margin = zoom_size, margin
        self.controls = {
            "foreground": widgets.Dropdown(options=list(self._items["foreground"]), description="foreground"),
            "background": widgets.Dropdown(options=list(self._items["background"]), description="background"),
            "real": widgets.Dropdown(options=list(self._items["real"]), description="real photo"),
            "fg_method": widgets.ToggleButtons(options=list(fg_methods), description="F method"),
            "denoise": widgets.Checkbox(value=False, description=f"denoise ({denoiser})"),
            "blur_kernel": widgets.SelectionSlider(options=list(blur_kernels), description="blur kernel"),
            "noise_sigma": widgets.SelectionSlider(options=list(noise_sigmas), description="noise σ"),
        }
        self.figure_output = gfm_widgets.figure_view()
        self.table_output = gfm_widgets.readout_view()
        self.result = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        c = self.controls
        super().__init__([
            widgets.HBox([c["foreground"], c["background"], c["real"]]),
            widgets.HBox([c["fg_method"], c["denoise"]]),
            widgets.HBox([c["blur_kernel"], c["noise_sigma"]]),
            self.figure_output,
            self.table_output,
        ])
        self.update()

    def settings(self) -> Settings:
        c = self.controls
        return Settings(fg_method=c["fg_method"].value, denoise=bool(c["denoise"].value),
                        blur_kernel=int(c["blur_kernel"].value), noise_sigma=float(c["noise_sigma"].value),
                        **self._fixed)

    def update(self):
        """Recompute :func:`inspect` for the current controls and redraw."""
        c = self.controls
        fg_item = self._items["foreground"][c["foreground"].value]
        bg_item = self._items["background"][c["background"].value]
        settings = self.settings()
        composite, zoom, measures = inspect(fg_item, bg_item, settings,
                                            zoom_size=self._zoom_size, margin=self._margin)
        reference = self._reference(c["real"].value)
        self.result = {"settings": settings, "composite": composite, "zoom": zoom,
                       "measures": measures, "reference": reference,
                       "table": measures_table(measures, reference)}
        fig = inspector_figure(composite, zoom, measures, reference,
                               title=f"{fg_item.name} over {bg_item.name}: {settings.label()}",
                               reference_label=f"real: {c['real'].value}")
        gfm_widgets.show_figure(self.figure_output, fig)
        gfm_widgets.show_html(self.table_output, self.result["table"].round(3).to_html(), name="measures")

    def _reference(self, name):
        if name not in self._real_measures:
            item = self._items["real"][name]
            self._real_measures[name] = discrepancy.measure(item.image, item.alpha, margin=self._margin)
        return self._real_measures[name]

    def _on_change(self, change):
        self.update()


def _show_composite(ax, image, window, title):
    import matplotlib.patches as patches

    ax.imshow(image)
    if window is not None:
        y0, x0, size = window
        ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, ec="yellow", lw=1.2))
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _show_zoom(ax, zoom):
    ax.imshow(zoom, interpolation="nearest")
    ax.set_title("boundary zoom", fontsize=8)
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


def _median_reference(real_examples, margin):
    if not real_examples:
        return None
    table = real_measures(real_examples, margin=margin)
    return table.drop(columns=["label", "name"]).median().to_dict()


def _as_foreground(item) -> ForegroundItem:
    if isinstance(item, ForegroundItem):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 3:
        return ForegroundItem(str(item[0]), item[1], item[2])
    raise ValueError(f"expected a ForegroundItem or (name, image, alpha), got {type(item).__name__}")


def _as_background(item, name: str = "background") -> BackgroundItem:
    if isinstance(item, BackgroundItem):
        return item
    if isinstance(item, np.ndarray):
        return BackgroundItem(name, item)
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return BackgroundItem(str(item[0]), item[1])
    raise ValueError(f"expected a BackgroundItem, (name, image) or an image array, got {type(item).__name__}")


def _denoise01(image01: np.ndarray, denoiser: str) -> np.ndarray:
    from gfm.compose.denoise import denoise

    return to01(denoise(to_uint8(image01), method=denoiser))
