"""The composition-artifact inspector's computation: one composite, its boundary and its measures.

The paper (Sect. 4, "RSSN: A Novel Composition Route", Fig. 3) shows how each choice of the
composition route changes the look of a composite: the background source (MS COCO vs BG-20k),
the foreground estimate (alpha × original vs Levin et al.'s closed form), denoising, the
large-aperture blur and the shared Gaussian noise. Here every choice is a :class:`Settings`, and
the composite is made by :func:`gfm.compose.rssn.compose_layers`, the function that writes the
training sets: the settings fix the outcome of each step (the route's probabilities become 0 or 1)
and the seed the noise, so the inspector shows what a route stores when its draw comes out so.

* :func:`inspect` — ``(fg_item, bg_item, settings) -> (composite, zoom, measures)``; the
  measures are :func:`gfm.compose.discrepancy.measure`'s fg/bg gaps (regions away from the
  transition) and two measures of the transition band, where the foreground estimate matters
  (:data:`BAND_MEASURES`);
* :func:`measures_table`, :func:`band_table`, :func:`real_measures`, :func:`foreground_error_table`;
* :func:`route_settings` (the Fig. 3 panels), :func:`default_rows` (each technique alone, then all);
* :func:`gfm.core.arrays.boundary_window` — the crop holding most of a matte's transition.

The figures are in :mod:`gfm.compose.figures`, the live widget in :mod:`gfm.ui.inspector`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gfm.compose import discrepancy
from gfm.compose.denoise import METHODS as DENOISERS, denoise
from gfm.compose.foreground import METHODS as FG_METHODS, colour_bleeding, estimate_foreground, foreground_error
from gfm.compose.rssn import RESIZE_MODES, Composite, RSSNConfig, compose_layers
from gfm.core.arrays import boundary_window, to_uint8
from gfm.core.io import read_alpha, read_image

#: Default choices of the widget (sample scale: the world's images are ~360 px, so the paper's
#: blur kernels 20–60 at 1080 px become 7–20; see params.yaml ``compose.blur_kernels``).
BLUR_KERNELS = (0, 7, 10, 13, 17, 20)
NOISE_SIGMAS = (0.0, 5.0, 10.0, 20.0)
#: Measures of the transition band ``0 < alpha < 1``, where the foreground estimates differ.
BAND_MEASURES = {
    "band_bleeding": "share of the old background's colour in the F used (colour_bleeding)",
    "band_error": "RMS difference from the same composite made with the true F (grey levels)",
}
#: The foreground "method" that composes with the true F (:attr:`ForegroundItem.true_fg`).
TRUE_F = "true"

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
    """One outcome of every step of the composition route (Pipeline 1 of the paper).

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
    resize_mode : str
        How the background is fitted to the foreground (``gfm.compose.rssn.resize_to``).
    """

    fg_method: str = "cf"
    denoise: bool = False
    denoiser: str = "nlm"
    blur_kernel: int = 0
    noise_sigma: float = 0.0
    seed: int = 0
    resize_mode: str = "stretch"

    def __post_init__(self):
        if self.fg_method not in FG_METHODS:
            raise ValueError(f"settings: fg_method must be one of {FG_METHODS}, got {self.fg_method!r}")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"settings: denoiser must be one of {DENOISERS}, got {self.denoiser!r}")
        if self.blur_kernel < 0 or self.noise_sigma < 0:
            raise ValueError(f"settings: blur_kernel and noise_sigma must be >= 0, got {self}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"settings: resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")

    def label(self) -> str:
        parts = [f"F={self.fg_method}"]
        if self.denoise:
            parts.append(f"denoise({self.denoiser})")
        if self.blur_kernel:
            parts.append(f"blur {self.blur_kernel}")
        if self.noise_sigma:
            parts.append(f"noise σ={self.noise_sigma:g}")
        return ", ".join(parts)

    def config(self) -> RSSNConfig:
        """The route configuration whose draw fires exactly the steps switched on here."""
        return RSSNConfig(k=1, p_denoise=1.0, p_blur=1.0, p_noise=1.0,
                          blur_kernels=(max(1, int(self.blur_kernel)),), noise_sigma=float(self.noise_sigma),
                          use_denoise=self.denoise, use_blur=self.blur_kernel > 0, use_noise=self.noise_sigma > 0,
                          resize_mode=self.resize_mode)


@dataclass(eq=False)
class ForegroundItem:
    """A real photo and its alpha matte: the source of the foreground layer (and a "real" example).

    ``true_fg`` is the true F where it is known (the embedded world's ``fg`` folder). Foreground
    layers are memoised per (method, denoiser).
    """

    name: str
    image: np.ndarray
    alpha: np.ndarray
    true_fg: np.ndarray | None = None
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
        if self.true_fg is not None:
            self.true_fg = to_uint8(self.true_fg, f"foreground {self.name!r}: true_fg")
            if self.true_fg.shape != self.image.shape:
                raise ValueError(f"foreground {self.name!r}: true_fg must have the image's shape "
                                 f"{self.image.shape}, got {self.true_fg.shape}")

    @classmethod
    def from_files(cls, image_path: str | Path, alpha_path: str | Path,
                   true_fg_path: str | Path | None = None) -> "ForegroundItem":
        true_fg = None if true_fg_path is None else read_image(true_fg_path)
        return cls(Path(image_path).stem, read_image(image_path), read_alpha(alpha_path), true_fg)

    def foreground(self, method: str, denoiser: str | None = None) -> np.ndarray:
        """The foreground layer F (uint8, as the routes store it) by ``method`` (or :data:`TRUE_F`),
        denoised by ``denoiser`` if given."""
        key = (method, denoiser)
        if key not in self._cache:
            if denoiser is not None:
                self._cache[key] = denoise(self.foreground(method), denoiser)
            elif method == TRUE_F:
                if self.true_fg is None:
                    raise ValueError(f"foreground {self.name!r}: no true F is known")
                self._cache[key] = self.true_fg
            else:
                self._cache[key] = to_uint8(estimate_foreground(self.image, self.alpha, method=method), "fg")
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
        return cls(Path(path).stem, read_image(path))

    def denoised(self, denoiser: str) -> np.ndarray:
        """The background denoised by ``denoiser`` (full size, uint8), as the routes cache it."""
        if denoiser not in self._cache:
            self._cache[denoiser] = denoise(self.image, denoiser)
        return self._cache[denoiser]


def inspect(fg_item: ForegroundItem, bg_item: BackgroundItem, settings: Settings, *,
            zoom_size: int = 96, margin: int = 10) -> tuple[np.ndarray, np.ndarray, dict]:
    """Compose ``fg_item`` over ``bg_item`` with ``settings`` and measure the discrepancies.

    The composite is :func:`compose`'s (the RSSN pipeline: foreground estimate → denoise fg and bg
    → fit and blur the background → alpha blending, Eq. 1 → Gaussian noise).

    Parameters
    ----------
    fg_item, bg_item : ForegroundItem, BackgroundItem
        Inputs; their memoised foreground / denoised layers are reused across calls.
    settings : Settings
        The outcome of each step.
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
        ``discrepancy.measure`` of the composite, the :data:`BAND_MEASURES` (``band_error`` is NaN
        without a true F) and ``window`` = (y0, x0, size) of the zoom.
    """
    composite = compose(fg_item, bg_item, settings).image
    y0, x0, size = boundary_window(fg_item.alpha, zoom_size)
    zoom = composite[y0:y0 + size, x0:x0 + size].copy()
    measures = discrepancy.measure(composite, fg_item.alpha, margin=margin)
    measures.update(band_measures(fg_item, bg_item, settings, composite))
    measures["window"] = (y0, x0, size)
    return composite, zoom, measures


def compose(fg_item: ForegroundItem, bg_item: BackgroundItem, settings: Settings, *,
            fg_method: str | None = None) -> Composite:
    """``gfm.compose.rssn.compose_layers`` of the item's F (by ``fg_method``, default the settings')
    over the background, its draw fixed by ``settings.config()`` and ``settings.seed``.

    ``fg_method=TRUE_F`` composes the item's true F with the same decisions and noise field.
    """
    method = settings.fg_method if fg_method is None else fg_method
    fg = fg_item.foreground(method)
    fg_denoised = fg_item.foreground(method, settings.denoiser) if settings.denoise else None
    bg_denoised = bg_item.denoised(settings.denoiser) if settings.denoise else None
    return compose_layers(fg, fg_item.alpha, bg_item.image, settings.config(), np.random.default_rng(settings.seed),
                          fg_denoised=fg_denoised, bg_denoised=bg_denoised, denoiser=settings.denoiser)


def band_measures(fg_item: ForegroundItem, bg_item: BackgroundItem, settings: Settings,
                  composite: np.ndarray) -> dict[str, float]:
    """The :data:`BAND_MEASURES` of ``composite`` (made by :func:`compose` with ``settings``).

    ``band_bleeding``: :func:`gfm.compose.foreground.colour_bleeding` of the F used (denoised when
    the settings denoise) against the photo. ``band_error``: root mean square, over the band
    ``0 < alpha < 1`` and the channels, of ``composite`` minus the composite made with the true F
    and the same decisions (NaN without a true F or a band): what the estimate changes in the image.
    """
    alpha = fg_item.alpha
    used = fg_item.foreground(settings.fg_method, settings.denoiser if settings.denoise else None)
    out = {"band_bleeding": colour_bleeding(used, fg_item.image, alpha), "band_error": math.nan}
    band = (alpha > 0) & (alpha < 255)
    if fg_item.true_fg is not None and band.any():
        reference = compose(fg_item, bg_item, settings, fg_method=TRUE_F).image
        difference = composite[band].astype(np.float64) - reference[band]
        out["band_error"] = float(np.sqrt(np.mean(difference ** 2)))
    return out


def real_measures(real_examples: Sequence, *, margin: int = 10) -> pd.DataFrame:
    """``discrepancy.domain_gap_table`` of real photos (ForegroundItem or (name, image, alpha))."""
    items = [as_foreground(item) for item in real_examples]
    return discrepancy.domain_gap_table(((it.image, it.alpha) for it in items), "real",
                                        names=[it.name for it in items], margin=margin)


def median_reference(real_examples: Sequence, *, margin: int = 10) -> dict | None:
    """Median of :func:`real_measures` over the real photos (None when there are none)."""
    if not real_examples:
        return None
    table = real_measures(real_examples, margin=margin)
    return table.drop(columns=["label", "name"]).median().to_dict()


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


def band_table(measures: Mapping) -> pd.DataFrame:
    """The :data:`BAND_MEASURES` of :func:`inspect`'s ``measures`` as a table (measure, unit, value)."""
    return pd.DataFrame([{"measure": name, "unit": unit, "composite": float(measures[name])}
                         for name, unit in BAND_MEASURES.items()]).set_index("measure")


def foreground_error_table(items: Sequence, true_foregrounds: Mapping[str, np.ndarray] | None = None, *,
                           methods: Sequence[str] = FG_METHODS) -> pd.DataFrame:
    """Each foreground estimate scored in the transition band (the choice behind Fig. 3c vs 3d).

    Parameters
    ----------
    items : sequence of ForegroundItem or (name, image, alpha)
        Real photos with their mattes; their memoised estimates are reused by later calls.
    true_foregrounds : mapping, optional
        ``name -> F`` (RGB uint8 or float [0, 1]); default each item's ``true_fg``. An item
        without one gets NaN errors (its bleeding is still measured).
    methods : sequence of str
        Keys of ``gfm.compose.foreground.METHODS``.

    Returns
    -------
    DataFrame
        One row per (image, method): ``gfm.compose.foreground.foreground_error`` of the stored
        (8-bit) estimate (NaN errors without a true F), its ``bleeding`` (``colour_bleeding``) and
        ``seconds`` (the time of the estimate; 0 when it was already memoised).
    """
    rows = []
    for item in (as_foreground(it) for it in items):
        if true_foregrounds is not None and item.name not in true_foregrounds:
            raise ValueError(f"true_foregrounds: no F for {item.name!r}")
        truth = item.true_fg if true_foregrounds is None else true_foregrounds[item.name]
        for method in methods:
            start = time.perf_counter()
            estimate = item.foreground(method)
            seconds = time.perf_counter() - start
            errors = (foreground_error(estimate, truth, item.alpha) if truth is not None
                      else {**dict.fromkeys(("mse", "mse_transition", "sad"), math.nan),
                            "pixels": int((item.alpha > 0).sum())})
            rows.append({"name": item.name, "method": method, **errors,
                         "bleeding": colour_bleeding(estimate, item.image, item.alpha), "seconds": seconds})
    return pd.DataFrame(rows)


def default_rows(*, fg_method: str = "cf", denoiser: str = "nlm", blur_kernel: int = 13,
                 noise_sigma: float = 10.0, seed: int = 0) -> dict[str, Settings]:
    """The rows of the static inspector grid: each RSSN technique alone, then all together."""
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


def as_foreground(item) -> ForegroundItem:
    """``item`` as a ForegroundItem (given one, or a ``(name, image, alpha)`` tuple)."""
    if isinstance(item, ForegroundItem):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 3:
        return ForegroundItem(str(item[0]), item[1], item[2])
    raise ValueError(f"expected a ForegroundItem or (name, image, alpha), got {type(item).__name__}")


def as_background(item, name: str = "background") -> BackgroundItem:
    """``item`` as a BackgroundItem (given one, a ``(name, image)`` tuple or an image array named ``name``)."""
    if isinstance(item, BackgroundItem):
        return item
    if isinstance(item, np.ndarray):
        return BackgroundItem(name, item)
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return BackgroundItem(str(item[0]), item[1])
    raise ValueError(f"expected a BackgroundItem, (name, image) or an image array, got {type(item).__name__}")
