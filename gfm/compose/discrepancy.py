"""Domain-gap meter: the composition discrepancies of the paper, measured (Sect. "RSSN").

The paper argues qualitatively that a composite image differs from a real photo because its
foreground and background come from different sources: *resolution discrepancy* (low-resolution
COCO backgrounds behind high-resolution foregrounds), *sharpness discrepancy* (real photos often
have an out-of-focus background behind a sharp subject; composites do not) and *noise
discrepancy* (the two layers carry different noise). This module turns each into a number
measured separately on a confident-foreground and a confident-background region of one image,
and reports the *discrepancy* between them as the log ratio ``ln(fg / bg)``:

* :func:`noise_level` — σ of additive white noise, Immerkær's operator with a robust (MAD) scale;
* :func:`sharpness` — variance of the Laplacian;
* :func:`effective_resolution` — share of the region's detail energy above half-Nyquist.

A real photo has its own fg/bg gaps (a blurred background gives a positive sharpness gap); a
composition route narrows the domain gap when its composites' gaps look like the real ones.

All functions take an RGB (H×W×3) or grey (H×W) image; uint8 images are in grey levels 0–255,
float images are taken as 0–1 and scaled to 0–255, so every measure is in 8-bit units.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pandas as pd

from gfm.core.io import list_images, read_alpha, read_image

#: The measures, in table order: name -> (column prefix, short description).
MEASURES = {
    "noise": "noise level σ (grey levels)",
    "sharpness": "variance of the Laplacian",
    "resolution": "detail energy above half-Nyquist (fraction)",
}
REGIONS = ("fg", "bg")

# Immerkær (1996): the separable product of two second differences; it annihilates image
# structure of the form f(x) + g(y) + x·h(y) + y·k(x), and its response to white noise of
# standard deviation σ has standard deviation 6σ (the norm of the kernel is 6).
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
_IMMERKAER_NORM = 6.0
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # 1 / Φ⁻¹(3/4): MAD of N(0, 1) -> σ
_LUMA = np.array([0.299, 0.587, 0.114])   # ITU-R BT.601


def noise_level(image: np.ndarray, mask: np.ndarray | None = None, *, estimator: str = "mad",
                min_pixels: int = 64) -> float:
    """Standard deviation of additive white noise in ``image`` (within ``mask``).

    Immerkær's fast noise variance estimation (J. Immerkær, "Fast noise variance estimation",
    CVIU 64(2):300–302, 1996): convolve each channel with the 3×3 kernel
    ``[[1,-2,1],[-2,4,-2],[1,-2,1]]``, which cancels smooth image structure and maps white noise
    of std σ to std 6σ. ``estimator="mad"`` takes the robust scale ``median(|r|) / 0.6745 / 6``
    (Donoho & Johnstone, Biometrika 1994), which ignores the few edge/texture responses;
    ``estimator="mean"`` is Immerkær's original ``sqrt(π/2) · mean(|r|) / 6``. For uint8 images
    the responses are integers, so the median is interpolated within its unit-wide class
    (grouped-data median), which keeps low noise levels (σ ≈ 1) from snapping to multiples of 0.25.

    Parameters
    ----------
    image : ndarray
        RGB H×W×3 or grey H×W; uint8 (0–255) or float (0–1).
    mask : ndarray of bool, optional
        Region to measure; only pixels whose whole 3×3 neighbourhood lies in the mask are used.
        Default: the whole image except a 1-pixel border.
    estimator : {"mad", "mean"}
        Robust median-based scale (default) or Immerkær's mean absolute response.
    min_pixels : int
        Fewer usable pixels than this gives NaN.

    Returns
    -------
    float
        σ in grey levels (0–255 scale), the mean over colour channels; NaN for a too small region.
    """
    if estimator not in ("mad", "mean"):
        raise ValueError(f"estimator must be 'mad' or 'mean', got {estimator!r}")
    integer = np.asarray(image).dtype == np.uint8
    channels = _channels(image, "image")
    region = _interior(mask, channels.shape[:2], radius=1, min_pixels=min_pixels)
    if region is None:
        return math.nan
    sigmas = []
    for channel in np.moveaxis(channels, -1, 0):
        response = np.abs(cv2.filter2D(channel, cv2.CV_64F, _IMMERKAER, borderType=cv2.BORDER_REFLECT))[region]
        if estimator == "mad":
            sigmas.append(_median(response, integer=integer) * _MAD_TO_SIGMA / _IMMERKAER_NORM)
        else:
            sigmas.append(math.sqrt(math.pi / 2.0) * response.mean() / _IMMERKAER_NORM)
    return float(np.mean(sigmas))


def sharpness(image: np.ndarray, mask: np.ndarray | None = None, *, min_pixels: int = 64) -> float:
    """Variance of the Laplacian of the luma within ``mask`` (a focus measure).

    The "variance of Laplacian" focus operator (J. L. Pech-Pacheco et al., "Diatom autofocusing
    in brightfield microscopy: a comparative study", ICPR 2000): the 4-neighbour Laplacian of the
    BT.601 luma, its variance over the region. Blur lowers it; note that noise raises it
    (white noise of std σ adds ``20·σ²·0.445`` for independent RGB noise), so compare it next to
    :func:`noise_level`.

    Parameters
    ----------
    image : ndarray
        RGB H×W×3 or grey H×W; uint8 (0–255) or float (0–1).
    mask : ndarray of bool, optional
        Region to measure (pixels whose 3×3 neighbourhood lies inside). Default: whole image.
    min_pixels : int
        Fewer usable pixels than this gives NaN.

    Returns
    -------
    float
        Variance of the Laplacian in (grey levels)²; NaN for a too small region.
    """
    luma = _luma(image, "image")
    region = _interior(mask, luma.shape, radius=1, min_pixels=min_pixels)
    if region is None:
        return math.nan
    laplacian = cv2.Laplacian(luma, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(laplacian[region].var())


def effective_resolution(image: np.ndarray, mask: np.ndarray | None = None, *, taps: int = 8,
                         min_pixels: int = 64) -> float:
    """Share of the region's detail energy above half-Nyquist (an effective-resolution proxy).

    The luma is split by a separable half-band low-pass filter (windowed sinc, cut-off 0.25
    cycles/pixel, Hamming window, ``2·taps + 1`` coefficients; A. V. Oppenheim & R. W. Schafer,
    *Discrete-Time Signal Processing*, Sect. 7.5) into the content an image of half the
    resolution could hold and the rest; the measure is ``Σ high² / Σ (luma − mean)²`` over the
    region. An image upsampled from a lower resolution (a small COCO background resized to the
    foreground's size) has little energy above half-Nyquist, so the value drops: ~0 after ideal
    2× upsampling, ≈0.7 for white noise (0.75 with an ideal filter). Noise raises it, so compare
    it next to :func:`noise_level`.

    Parameters
    ----------
    image : ndarray
        RGB H×W×3 or grey H×W; uint8 (0–255) or float (0–1).
    mask : ndarray of bool, optional
        Region to measure (pixels whose filter support lies inside). Default: whole image.
    taps : int
        Half-length of the low-pass filter (the support radius eroded from the region).
    min_pixels : int
        Fewer usable pixels than this gives NaN.

    Returns
    -------
    float
        Fraction in [0, 1]; NaN for a too small or perfectly flat region.
    """
    if taps < 1:
        raise ValueError(f"taps must be >= 1, got {taps}")
    luma = _luma(image, "image")
    region = _interior(mask, luma.shape, radius=taps, min_pixels=min_pixels)
    if region is None:
        return math.nan
    kernel = _half_band(taps)
    low = cv2.sepFilter2D(luma, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    values = luma[region]
    total = float(((values - values.mean()) ** 2).sum())
    if total <= 0.0:
        return math.nan
    return float(min(((values - low[region]) ** 2).sum() / total, 1.0))


def region_masks(alpha: np.ndarray, margin: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Confident foreground and background regions of a matte, ``margin`` pixels from the boundary.

    Parameters
    ----------
    alpha : ndarray
        H×W matte, uint8 (0–255) or float (0–1).
    margin : int
        Erosion radius (elliptical kernel of size ``2·margin + 1``) applied to ``alpha == 1`` and
        ``alpha == 0``, so measures do not straddle the transition region (paper: the unknown
        region of the trimap).

    Returns
    -------
    fg_mask, bg_mask : ndarray of bool
        H×W masks; either may be empty for a matte without such a region.
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be an H×W matte, got shape {alpha.shape}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    full = 255 if alpha.dtype == np.uint8 else 1.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    fg = cv2.erode((alpha == full).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.erode((alpha == 0).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return fg.astype(bool), bg.astype(bool)


def measure(image: np.ndarray, alpha: np.ndarray, *, margin: int = 10, noise_floor: float = 0.5,
            sharpness_floor: float = 1.0, resolution_floor: float = 1e-3) -> dict[str, float]:
    """Every measure on the fg and bg regions of ``image`` and their discrepancy.

    Parameters
    ----------
    image : ndarray
        RGB H×W×3 (uint8 or float 0–1), a composite or a real photo.
    alpha : ndarray
        Its H×W matte; regions come from :func:`region_masks` with ``margin``.
    margin : int
        Distance of the regions from the transition region, in pixels.
    noise_floor, sharpness_floor, resolution_floor : float
        Added to both values before the log ratio, so a perfectly clean (σ = 0) or flat region
        gives a finite discrepancy (in the measure's units).

    Returns
    -------
    dict
        ``{noise,sharpness,resolution}_{fg,bg}`` and ``{noise,sharpness,resolution}_gap`` where
        ``gap = ln((fg + floor) / (bg + floor))``: > 0 means the foreground is noisier / sharper /
        more detailed than the background, 0 means no discrepancy. NaN where a region is empty.
    """
    image = np.asarray(image)
    alpha = np.asarray(alpha)
    if image.shape[:2] != alpha.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and alpha {alpha.shape[:2]} must have the same size")
    fg_mask, bg_mask = region_masks(alpha, margin)
    functions = {"noise": noise_level, "sharpness": sharpness, "resolution": effective_resolution}
    floors = {"noise": noise_floor, "sharpness": sharpness_floor, "resolution": resolution_floor}
    out: dict[str, float] = {}
    for name, function in functions.items():
        values = {region: function(image, mask) for region, mask in zip(REGIONS, (fg_mask, bg_mask))}
        out[f"{name}_fg"], out[f"{name}_bg"] = values["fg"], values["bg"]
    for name, floor in floors.items():
        out[f"{name}_gap"] = _log_ratio(out[f"{name}_fg"], out[f"{name}_bg"], floor)
    return out


def domain_gap_table(images_alphas: Iterable, label: str, *, names: Sequence[str] | None = None,
                     margin: int = 10) -> pd.DataFrame:
    """:func:`measure` on many images: one row per image, tagged with ``label``.

    Parameters
    ----------
    images_alphas : iterable of (image, alpha)
        Arrays as :func:`measure` takes them (a generator keeps memory small).
    label : str
        The source of the images ("real", "coco", "rssn", ...), stored in column ``label``.
    names : sequence of str, optional
        One name per image (column ``name``); default ``"0", "1", ...``.
    margin : int
        Passed to :func:`region_masks`.

    Returns
    -------
    DataFrame
        Columns ``label, name`` then the keys of :func:`measure`.
    """
    rows = []
    for index, (image, alpha) in enumerate(images_alphas):
        name = str(index) if names is None else str(names[index])
        rows.append({"label": label, "name": name, **measure(image, alpha, margin=margin)})
    columns = ["label", "name"] + [f"{m}_{s}" for m in MEASURES for s in (*REGIONS, "gap")]
    return pd.DataFrame(rows, columns=columns)


def folder_gap_table(image_dir: str | Path, alpha_dir: str | Path, label: str, *, limit: int | None = None,
                     margin: int = 10) -> pd.DataFrame:
    """:func:`domain_gap_table` of the images of ``image_dir`` with the same-named mattes of ``alpha_dir``.

    Parameters
    ----------
    image_dir, alpha_dir : path
        Folders of RGB images and of their alpha mattes (matched by file stem, any image suffix),
        e.g. ``<split>/original`` + ``<split>/mask`` or ``<composites>/<route>/image`` + ``.../alpha``.
    label : str
        Stored in column ``label``.
    limit : int, optional
        Measure only the first ``limit`` images (sorted by name).
    margin : int
        Passed to :func:`region_masks`.
    """
    images = list_images(image_dir)[:limit]
    mattes = {p.stem: p for p in list_images(alpha_dir)}
    missing = [p.name for p in images if p.stem not in mattes]
    if missing:
        raise FileNotFoundError(f"{alpha_dir}: no matte for {len(missing)} image(s) of {image_dir}, e.g. {missing[0]}")
    pairs = ((read_image(p), read_alpha(mattes[p.stem])) for p in images)
    return domain_gap_table(pairs, label, names=[p.stem for p in images], margin=margin)


def gap_summary(table: pd.DataFrame, reference: str = "real") -> pd.DataFrame:
    """Median discrepancy per label and its distance to the ``reference`` label's median.

    Returns a DataFrame indexed by label with ``n`` (images), ``<measure>_gap`` (median over
    images), ``<measure>_gap_vs_<reference>`` (that median minus the reference's: 0 means the
    composites show the same fg/bg discrepancy as real photos) and ``distance_to_<reference>``
    (the mean absolute value of the three: one number per route, 0 = no measured domain gap).
    """
    if "label" not in table:
        raise ValueError("table must have a 'label' column (use domain_gap_table)")
    gaps = [f"{m}_gap" for m in MEASURES]
    summary = table.groupby("label", sort=False)[gaps].median()
    summary.insert(0, "n", table.groupby("label", sort=False).size().astype(int))
    if reference in summary.index:
        for gap in gaps:
            summary[f"{gap}_vs_{reference}"] = summary[gap] - summary.loc[reference, gap]
        summary[f"distance_to_{reference}"] = summary[[f"{g}_vs_{reference}" for g in gaps]].abs().mean(axis=1)
    return summary


def domain_gap_figure(table: pd.DataFrame, *, order: Sequence[str] | None = None, height: float = 3.0):
    """Box plots of the fg/bg discrepancy of each measure per label (seaborn); returns the Figure.

    Images where a measure is NaN (a region too small to measure) are left out of its panel.
    """
    import warnings

    import matplotlib
    import matplotlib.pyplot as plt
    import seaborn as sns

    gaps = [f"{m}_gap" for m in MEASURES]
    long = table.melt(id_vars=["label", "name"], value_vars=gaps, var_name="measure", value_name="gap").dropna()
    order = list(order) if order is not None else list(dict.fromkeys(table["label"]))
    fig, axes = plt.subplots(1, len(gaps), figsize=(3.6 * len(gaps), height), squeeze=False)
    for ax, gap, (measure_name, description) in zip(axes[0], gaps, MEASURES.items()):
        data = long[long["measure"] == gap]
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`
            warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(data=data, x="label", y="gap", order=order, ax=ax, color="0.85", fliersize=0)
        sns.stripplot(data=data, x="label", y="gap", order=order, ax=ax, size=3, color="C0")
        ax.axhline(0.0, color="k", lw=0.8, ls="--")
        ax.set_title(f"{measure_name}: ln(fg / bg)", fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel(description if ax is axes[0][0] else "", fontsize=8)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    return fig


def _median(values: np.ndarray, integer: bool) -> float:
    if not integer or values.size == 0:
        return float(np.median(values))
    # grouped-data median: the median's unit class [m - 0.5, m + 0.5], interpolated by counts
    m = float(np.partition(values, (values.size - 1) // 2)[(values.size - 1) // 2])
    below = np.count_nonzero(values < m - 0.5)
    within = np.count_nonzero(np.abs(values - m) <= 0.5)
    return float(np.clip(m - 0.5 + (values.size / 2.0 - below) / within, m - 0.5, m + 0.5))


def _log_ratio(fg: float, bg: float, floor: float) -> float:
    if math.isnan(fg) or math.isnan(bg):
        return math.nan
    return float(math.log((fg + floor) / (bg + floor)))


def _as_float255(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64) * 255.0
    raise ValueError(f"{name} must be uint8 (0–255) or float (0–1), got {image.dtype}")


def _channels(image: np.ndarray, name: str) -> np.ndarray:
    image = _as_float255(image, name)
    if image.ndim == 2:
        return image[..., None]
    if image.ndim == 3 and image.shape[2] in (1, 3):
        return image
    raise ValueError(f"{name} must be H×W or H×W×3, got shape {image.shape}")


def _luma(image: np.ndarray, name: str) -> np.ndarray:
    channels = _channels(image, name)
    return channels[..., 0] if channels.shape[2] == 1 else channels @ _LUMA


def _interior(mask: np.ndarray | None, shape: tuple[int, int], radius: int, min_pixels: int):
    if mask is None:
        region = np.zeros(shape, bool)
        region[radius:shape[0] - radius, radius:shape[1] - radius] = True
    else:
        mask = np.asarray(mask)
        if mask.shape != tuple(shape):
            raise ValueError(f"mask must have the image's size {tuple(shape)}, got {mask.shape}")
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        region = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return region if region.sum() >= min_pixels else None


def _half_band(taps: int) -> np.ndarray:
    n = np.arange(-taps, taps + 1)
    kernel = 0.5 * np.sinc(0.5 * n) * np.hamming(2 * taps + 1)
    return kernel / kernel.sum()
