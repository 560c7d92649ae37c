"""Foreground estimation: the colours F of Eq. (1) behind a real photo and its alpha matte.

A matting set with original images (AM-2k, PM-10k) gives the composite I and alpha, not F.
Before a foreground can be pasted onto a new background (Sect. 4, Fig. 3), F must be solved
from ``I = alpha F + (1 - alpha) B`` with B unknown. The paper compares two answers (Fig. 3c, d):

* the foreground "computed by multiplying the ground truth alpha matte with the original image",
  which keeps the old background's colours in the fine details (colour artifacts), and
* the closed-form foreground of Levin et al. (2007), which the paper adopts for RSSN.

Methods (:data:`METHODS`):

``"cf"``
    Levin et al. (2007) closed-form foreground (``pymatting.estimate_foreground_cf``), the paper's
    choice. Sparse solve; a few seconds per 0.2 Mpx image.
``"ml"``
    Germer et al. (2020) multi-level foreground (``pymatting.estimate_foreground_ml``): the same
    smoothness prior solved coarse-to-fine, much faster, close to ``"cf"``.
``"naive"``
    ``F = I``: the original image is alpha-blended onto the new background directly (Fig. 3c's
    caption, "alpha blending of original image directly"). The composite becomes
    ``alpha I + (1 - alpha) B'`` and the old background leaks into the transition region.
``"premultiplied"``
    ``F = alpha I``: what the official code uses when no closed-form foreground is given
    (``process_fgbg``) and what Fig. 3c's text describes; blending it again gives
    ``alpha^2 I + (1 - alpha) B'``, i.e. darkened, old-background-tinted hair.

The methods differ only in the transition band ``0 < alpha < 1`` (where alpha is 1, every method
returns the photo). They are scored there: against the true F where it is known
(:func:`foreground_error`, ``mse_transition``) and, for any photo, by the share of the old
background's colour the estimate carries (:func:`colour_bleeding`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from gfm.core.arrays import to01

METHODS = ("cf", "ml", "naive", "premultiplied")


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, method: str = "cf", *,
                        regularization: float = 1e-5, return_background: bool = False):
    """Estimate the foreground colours F of Eq. (1) from an image and its alpha matte (and B with them).

    Parameters
    ----------
    image : ndarray
        RGB H×W×3, uint8 or float in [0, 1].
    alpha : ndarray
        Alpha matte H×W (or H×W×1), uint8 or float in [0, 1].
    method : str
        One of :data:`METHODS`; ``"cf"`` (Levin et al., 2007) is the paper's choice.
    regularization : float
        Smoothness regularisation of ``"cf"`` and ``"ml"`` (pymatting's default 1e-5).
    return_background : bool
        Also return the background B: ``"cf"`` and ``"ml"`` solve F and B together (the same F
        either way); ``"naive"`` gives ``B = I``, ``"premultiplied"`` ``B = (1 - alpha) I`` (the
        official code's ``process_fgbg`` pair). The ORI-Track composition loss (Eq. 7) needs B.

    Returns
    -------
    F : ndarray
        float32 H×W×3 in [0, 1]. Where alpha is 0 the colour is the method's extrapolation
        (it does not enter Eq. 1).
    B : ndarray
        Only with ``return_background``: float32 H×W×3 in [0, 1]; extrapolated where alpha is 1.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    image01 = to01(image, "image")
    alpha01 = to01(alpha, "alpha")
    if alpha01.ndim == 3 and alpha01.shape[2] == 1:
        alpha01 = alpha01[..., 0]
    if image01.ndim != 3 or image01.shape[2] != 3:
        raise ValueError(f"image must be RGB H×W×3, got shape {image01.shape}")
    if alpha01.shape != image01.shape[:2]:
        raise ValueError(f"alpha must be H×W of the image's size {image01.shape[:2]}, got {alpha01.shape}")
    if method == "naive":
        fg, bg = image01, image01
    elif method == "premultiplied":
        fg, bg = image01 * alpha01[..., None], image01 * (1.0 - alpha01[..., None])
    else:
        import pymatting

        solver = pymatting.estimate_foreground_cf if method == "cf" else pymatting.estimate_foreground_ml
        fg, bg = solver(image01.astype(np.float64), alpha01.astype(np.float64), regularization=regularization,
                        return_background=True)
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    return (fg, np.clip(bg, 0.0, 1.0).astype(np.float32)) if return_background else fg


def foreground_error(F_est: np.ndarray, F_true: np.ndarray, alpha: np.ndarray) -> dict:
    """Score an estimated foreground against the true one where it matters (alpha > 0).

    Errors are weighted by alpha, since a colour error of F shows in the composite (Eq. 1) as
    ``alpha |F_est - F_true|``.

    Parameters
    ----------
    F_est, F_true : ndarray
        RGB H×W×3, uint8 or float in [0, 1].
    alpha : ndarray
        H×W, uint8 or float in [0, 1].

    Returns
    -------
    dict
        ``mse``: alpha-weighted mean squared error (per channel, [0, 1] scale) over alpha > 0;
        ``sad``: sum over pixels and channels of ``alpha |F_est - F_true|`` divided by 1000 (the
        matting convention for SAD); ``mse_transition``: the alpha-weighted MSE over 0 < alpha < 1
        (the hair, where the methods differ); ``pixels``: count of alpha > 0 pixels.
    """
    est = to01(F_est, "F_est")
    true = to01(F_true, "F_true")
    a = to01(alpha, "alpha")
    if a.ndim == 3:
        a = a[..., 0]
    if est.shape != true.shape or est.shape[:2] != a.shape:
        raise ValueError(f"F_est {est.shape}, F_true {true.shape} and alpha {a.shape} must share H×W")
    weight = a[..., None]
    err = (est - true) ** 2
    inside = a > 0
    transition = inside & (a < 1)

    def _wmse(mask):
        w = np.broadcast_to(weight, err.shape)[mask]
        return float((w * err[mask]).sum() / max(w.sum(), 1e-12)) if mask.any() else 0.0

    return {
        "mse": _wmse(inside),
        "mse_transition": _wmse(transition),
        "sad": float((weight * np.abs(est - true)).sum() / 1000.0),
        "pixels": int(inside.sum()),
    }


def colour_bleeding(F: np.ndarray, image: np.ndarray, alpha: np.ndarray, *,
                    min_contrast: float = 0.1) -> float:
    """Share of the old background's colour that a foreground estimate carries (Fig. 3c's artifact).

    Measured in the transition band ``0 < alpha < 1``, where the methods differ, without the true F:
    both layers' colours are read off the photo nearby, ``F_ref`` at the nearest pixel with
    ``alpha = 1`` and ``B_ref`` (the old background) at the nearest pixel with ``alpha = 0``. The
    displacement ``F - F_ref`` is regressed on the old background's direction ``d = B_ref - F_ref``,
    weighted by alpha (an error of F shows in Eq. (1) as ``alpha`` times that error)::

        bleeding = sum(alpha <F - F_ref, d>) / sum(alpha |d|^2)

    0 means F does not lean towards the old background (the true F of a locally uniform layer);
    ``F = I`` ("naive") gives about ``sum(alpha (1 - alpha) |d|^2) / sum(alpha |d|^2)``; 1 would be
    the old background itself. The darkening of ``F = alpha I`` is another artifact: score it with
    :func:`foreground_error` where the true F is known.

    Parameters
    ----------
    F : ndarray
        The estimate, RGB H×W×3, uint8 or float in [0, 1].
    image : ndarray
        The photo it was estimated from, same size and encoding rules.
    alpha : ndarray
        H×W (or H×W×1), uint8 or float in [0, 1].
    min_contrast : float
        Band pixels whose ``|d|`` (RGB distance in [0, 1] units) is below this are skipped: there
        the old background cannot be told from the foreground.

    Returns
    -------
    float
        The bleeding share; NaN when the matte has no band, no ``alpha = 1`` or no ``alpha = 0``
        pixel, or no band pixel with enough contrast.
    """
    f, i, a = to01(F, "F"), to01(image, "image"), to01(alpha, "alpha")
    if a.ndim == 3:
        a = a[..., 0]
    if f.shape != i.shape or f.ndim != 3 or f.shape[:2] != a.shape:
        raise ValueError(f"F {f.shape}, image {i.shape} and alpha {a.shape} must share H×W (F and image RGB)")
    band, solid, clear = (a > 0) & (a < 1), a >= 1, a <= 0
    if not (band.any() and solid.any() and clear.any()):
        return math.nan
    ys, xs = np.nonzero(band)
    f_ref = i[_nearest(solid, ys, xs)]
    d = i[_nearest(clear, ys, xs)] - f_ref
    keep = np.linalg.norm(d, axis=1) >= min_contrast
    if not keep.any():
        return math.nan
    w, d, shift = a[ys, xs][keep], d[keep], (f[ys, xs] - f_ref)[keep]
    return float((w * (shift * d).sum(axis=1)).sum() / (w * (d * d).sum(axis=1)).sum())


def _nearest(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the ``mask`` pixel nearest (Euclidean) to each of the pixels ``(ys, xs)``."""
    _, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return rows[ys, xs], cols[ys, xs]
