"""Grad., the gradient error of an alpha matte (paper, Sect. "Evaluation Metrics"; Rhemann et al., 2009).

Σ (‖∇_σ p‖ − ‖∇_σ g‖)² / norm, σ = 1.4, in the two conventions of :mod:`gfm.evaluate.metrics`,
which validates the inputs (H×W float64 in [0, 1]) and chooses the region:

* "gfm" (official GFM ``core/evaluate.py``): ∇_σ is ``scipy.ndimage.gaussian_filter(x, 1.4,
  order=(1, 0))`` and ``order=(0, 1)`` — sampled Gaussian (radius ``int(4σ + 0.5)`` = 6, kernel sums
  to 1) and its analytic derivative, mirror ("reflect") border, each 1-D pass rounded to float32;
  magnitudes, squares and the sum in float32, on the whole image, divided by 10, not 1000 (the
  value is a float32). Like DIM it compares gradient *magnitudes*, while Rhemann et al. define the
  error on the normalised gradient vectors (question raised, unanswered, in JizhiziLi/P3M issue #7,
  which uses the same code). Being scipy's ``order=(1, 0)``, the "x" derivative is in fact along
  rows; the magnitude does not care.
* "dim" (DIM MATLAB code, as ported by mmagic / mmeval): the MATLAB ``gaussgradient`` kernel (9×9
  for σ = 1.4: half size ⌈σ·sqrt(−2·ln(sqrt(2π)·σ·0.01))⌉, product of a Gaussian and a Gaussian
  derivative normalised to unit L2 norm), replicated border, on min–max normalised images (MATLAB
  ``mat2gray``), in float64, divided by 1000. GCA-Matting / IndexNet's Python ports divide by 255
  instead of min–max normalising and use ``scipy.ndimage.convolve(mode="nearest")`` (a
  convolution, same magnitudes).

Speed (benchmarks/bench_metrics.py): the "gfm" magnitude runs scipy's two-pass filter arithmetic
in a numba kernel (compiled on first use, ≈ 3 s, then cached on disk: ≈ 1 s to import numba and
load it in a new process) and matches scipy bit for bit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["NORM", "error", "magnitude_gfm", "magnitude_dim"]

#: The divisor of Grad in each convention.
NORM = {"gfm": 10.0, "dim": 1000.0}


def error(pred, gt, mask, convention, sigma, norm):
    """Σ_mask (‖∇_σ pred‖ − ‖∇_σ gt‖)² / norm of validated mattes (``mask`` None: the whole image)."""
    if convention == "gfm":
        err = np.square(magnitude_gfm(pred, sigma) - magnitude_gfm(gt, sigma))  # float32, as official
        total = err.sum() if mask is None else err[mask].sum()
        return float(total / np.float32(norm))
    err = np.square(magnitude_dim(pred, sigma) - magnitude_dim(gt, sigma))
    total = err.sum() if mask is None else err[mask].sum()
    return float(total / norm)


def magnitude_gfm(alpha, sigma, truncate=4.0):
    """‖∇‖ as scipy.ndimage.gaussian_filter(alpha, σ, order=(1,0) / (0,1), output=float32).

    scipy filters axis 0 then axis 1, accumulating each 1-D pass in float64 with its
    (anti)symmetric-kernel formula and rounding it to the float32 output; the compiled kernel
    below does the same arithmetic in the same order (mirror border included), so the float32
    values agree bit for bit except where float64 rounding ties differ (never seen in tests).
    """
    smooth, deriv = _scipy_gaussian_kernels(sigma, truncate)
    radius = smooth.size // 2
    h, w = alpha.shape
    rows = _mirror_index(h, radius)
    cols = _mirror_index(w, radius)
    return _compiled("gfm_magnitude")(alpha, rows, cols, smooth, deriv, radius)


def magnitude_dim(alpha, sigma, epsilon=1e-2):
    """‖∇‖ as MATLAB gaussgradient(mat2gray(alpha), σ) (mmeval ``gauss_gradient``)."""
    lo, hi = float(alpha.min()), float(alpha.max())
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    normed = (alpha - lo) * scale
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -x * gauss / sigma**2
    # the 2-D kernel gauss(row) · dgauss(col) / ‖·‖₂ is separable; so is its transpose
    g, dg = gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)
    border = cv2.BORDER_REPLICATE
    along_cols = cv2.sepFilter2D(normed, cv2.CV_64F, dg, g, borderType=border)
    along_rows = cv2.sepFilter2D(normed, cv2.CV_64F, g, dg, borderType=border)
    return np.sqrt(along_cols**2 + along_rows**2)


def _scipy_gaussian_kernels(sigma, truncate):
    """(smooth, derivative) correlation weights of scipy's gaussian_filter1d (order 0 and 1)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    deriv = x * (-1.0 / (sigma * sigma)) * phi  # d/dx of the sampled Gaussian, as scipy builds it
    # scipy convolves, i.e. correlates with the reversed kernel
    return phi[::-1].copy(), deriv[::-1].copy()


def _mirror_index(n, radius):
    """Source index of positions -radius … n + radius - 1 under scipy's "reflect" (d c b a | a b c d)."""
    pos = np.arange(-radius, n + radius)
    if n == 1:
        return np.zeros(pos.size, np.int64)
    pos = np.mod(pos, 2 * n)
    return np.where(pos >= n, 2 * n - 1 - pos, pos).astype(np.int64)


def _gfm_magnitude_kernel(alpha, rows, cols, smooth, deriv, r):  # compiled by numba, see _compiled
    h, w = alpha.shape
    along0_d = np.empty((h, w), np.float32)  # axis-0 derivative pass, rounded to float32
    along0_s = np.empty((h, w), np.float32)  # axis-0 smoothing pass
    acc_d = np.empty(w)
    acc_s = np.empty(w)
    for i in range(h):
        centre = alpha[i]
        wd0 = deriv[r]
        ws0 = smooth[r]
        for j in range(w):
            acc_d[j] = centre[j] * wd0
            acc_s[j] = centre[j] * ws0
        for k in range(r):
            before = alpha[rows[i + k]]
            after = alpha[rows[i + 2 * r - k]]
            wd = deriv[k]
            ws = smooth[k]
            for j in range(w):
                acc_d[j] += (before[j] - after[j]) * wd
                acc_s[j] += (before[j] + after[j]) * ws
        row_d = along0_d[i]
        row_s = along0_s[i]
        for j in range(w):
            row_d[j] = np.float32(acc_d[j])
            row_s[j] = np.float32(acc_s[j])
    out = np.empty((h, w), np.float32)
    ext_d = np.empty(w + 2 * r)
    ext_s = np.empty(w + 2 * r)
    for i in range(h):
        row_d = along0_d[i]
        row_s = along0_s[i]
        for j in range(r):  # mirrored borders, then the row itself, widened to float64
            ext_d[j] = row_d[cols[j]]
            ext_s[j] = row_s[cols[j]]
            ext_d[w + r + j] = row_d[cols[w + r + j]]
            ext_s[w + r + j] = row_s[cols[w + r + j]]
        for j in range(w):
            ext_d[j + r] = row_d[j]
            ext_s[j + r] = row_s[j]
        ws0 = smooth[r]
        wd0 = deriv[r]
        for j in range(w):
            acc_d[j] = ext_d[j + r] * ws0  # derivative along 0, now smoothed along 1
            acc_s[j] = ext_s[j + r] * wd0  # smoothed along 0, now derivative along 1
        for k in range(r):
            ws = smooth[k]
            wd = deriv[k]
            lo_d = ext_d[k : k + w]
            hi_d = ext_d[2 * r - k : 2 * r - k + w]
            lo_s = ext_s[k : k + w]
            hi_s = ext_s[2 * r - k : 2 * r - k + w]
            for j in range(w):
                acc_d[j] += (lo_d[j] + hi_d[j]) * ws
                acc_s[j] += (lo_s[j] - hi_s[j]) * wd
        orow = out[i]
        for j in range(w):
            a = np.float32(acc_d[j])
            b = np.float32(acc_s[j])
            orow[j] = np.sqrt(a * a + b * b)
    return out


_KERNELS = {"gfm_magnitude": _gfm_magnitude_kernel}
_COMPILED: dict = {}


def _compiled(name):
    """numba-compiled kernel (compiled on first use, cached on disk); imports numba lazily."""
    if name not in _COMPILED:
        import numba

        _COMPILED[name] = numba.njit(cache=True, nogil=True)(_KERNELS[name])
    return _COMPILED[name]
