"""Matting evaluation metrics (paper, Sect. "Evaluation Metrics and Implementation Details").

The paper evaluates an alpha matte with SAD, MSE, Grad. and Conn. (Rhemann et al., 2009; Xu et al.,
2017) on the whole image, plus the auxiliary MAD, SAD-TRAN, SAD-FG and SAD-BG. Two conventions are
implemented; :func:`evaluate` returns the same ten keys for both:

============  =========================================  =========================================
key           ``convention="gfm"`` (official GFM code)   ``convention="dim"`` (DIM / mmagic)
============  =========================================  =========================================
sad           Σ_all |p − g| / 1000                       Σ_U |p' − g| / 1000
mse           Σ_all (p − g)² / (H·W)                     Σ_U (p' − g)² / |U|   (0 when U is empty)
mad           Σ_all |p − g| / (H·W)                      NaN (not a DIM metric)
grad          Σ_all (‖∇_σ p‖ − ‖∇_σ g‖)² / 10            Σ_U (‖∇_σ p̂'‖ − ‖∇_σ ĝ‖)² / 1000
conn          Σ_all |φ(p) − φ(g)| / 1000                 Σ_U |φ(p') − φ(g)| / 1000
sad_trans     Σ_all |p' − g| / 1000                      NaN
mse_trans     Σ_all (p' − g)² / |U|                      NaN
mad_trans     Σ_all |p' − g| / |U|                       NaN
sad_fg        Σ_F |p − g| / 1000                         NaN
sad_bg        Σ_B |p − g| / 1000                         NaN
============  =========================================  =========================================

Notation: ``p`` prediction and ``g`` ground truth in [0, 1]; ``U``, ``F``, ``B`` the pixels where the
trimap is 128, 255 and 0; ``p'`` = :func:`force_known` (p, trimap), i.e. p with 1 on F and 0 on B;
``x̂`` = min–max normalisation of x to [0, 1] (MATLAB ``mat2gray``). Keys that need a trimap are
NaN when ``trimap`` is None ("gfm": the last five; "dim": all of them).

Gradient ∇_σ (σ = 1.4) and connectivity φ:

* "gfm": ``scipy.ndimage.gaussian_filter(x, 1.4, order=(1, 0))`` and ``order=(0, 1)`` — sampled
  Gaussian (radius ``int(4σ + 0.5)`` = 6, kernel sums to 1) and its analytic derivative, mirror
  ("reflect") border, each 1-D pass rounded to float32; magnitudes, squares and the sum in float32.
* "dim": the MATLAB ``gaussgradient`` kernel (9×9 for σ = 1.4: half size
  ⌈σ·sqrt(−2·ln(sqrt(2π)·σ·0.01))⌉, product of a Gaussian and a Gaussian derivative normalised to
  unit L2 norm), replicated border, on min–max normalised images, in float64.
* Conn (both): for thresholds t_i = ``np.arange(0, stop, step)`` (step 0.1, i ≥ 1), Ω_i is the
  largest 4-connected component of {p ≥ t_i} ∩ {g ≥ t_i} (ties: the component met first in raster
  order); a pixel's level l is t_{i−1} at the first non-empty level i whose Ω_i misses it, 1 if
  none does; φ(x) = 1 − (x − l) where x − l ≥ 0.15, else 1. "gfm" stores l in float32 and uses
  ``stop = 1.1`` whatever the step; "dim" stores l in float64 and uses ``stop = 1 + step``.

``"gfm"`` reproduces ``core/evaluate.py`` exactly as ``core/test.py`` calls it (checked to 1e-6
relative against recorded outputs of the official functions, tests/fixtures/metrics_*):
prediction and ground truth are float64 — the network output resized with skimage, never
quantised to 8 bits, and the ground truth PNG divided by 255 — and the trimap is the raw uint8 PNG.
Inputs here are converted to float64 the same way.

Quirks of the official GFM evaluation (reproduced in ``"gfm"``, absent from ``"dim"``):

1. SAD-TRAN / MSE-TRAN / MAD-TRAN are *not* restricted to the transition area: the prediction is
   forced to the trimap on known pixels, but the sum runs over the whole image, so wherever the
   ground truth is not exactly 0 / 1 under a known trimap label (trimap made from a different
   alpha, or soft alpha under the eroded foreground) the difference is counted. MSE/MAD-TRAN then
   divide that whole-image sum by the number of *unknown* pixels; with no unknown pixel they
   divide by the number of pixels that are none of 0 / 128 / 255 — zero for a valid trimap — and
   the result is inf (or NaN when the sum is 0 too).
2. Grad is divided by 10, not 1000, and is computed on the whole image in float32 (the returned
   value is a float32). It compares gradient *magnitudes*, like DIM, while Rhemann et al. define
   the error on the normalised gradient vectors (question raised, unanswered, in JizhiziLi/P3M
   issue #7, which uses the same code). Being scipy's ``order=(1, 0)``, the "x" derivative is in
   fact along rows; the magnitude does not care.
3. Conn: when the intersection at a threshold is empty the official loop skips it, so pixels that
   belong to every non-empty Ω_i get l = 1 rather than the last non-empty threshold (same
   as DIM's ``l(l == −1) = 1``). Thresholds come from ``np.arange(0, 1.1, step)`` with stop fixed at
   1.1 (step = 0.1 gives 0, 0.1, …, 1.0, where 0.3, 0.6 and 0.7 are one ulp above their decimal
   value: a ground truth of 153/255 = 0.6 is *below* the threshold 0.6000000000000001). The
   official loop also computes a normalised distance map per threshold that is never used (a
   large share of its run time); it is omitted here. Conn is computed on the whole image.
4. SAD-FG / SAD-BG use the raw prediction (not forced), so they measure the errors that
   SAD-TRAN's forcing hides. SAD ≠ SAD-TRAN + SAD-FG + SAD-BG in general.

Known disagreements between "dim" implementations (we follow mmagic / mmeval, which ports the DIM
MATLAB code): mmagic requires p already forced to the trimap and sums SAD and the MSE numerator
over the whole image, which equals the unknown-region sum used here whenever the ground truth
agrees with the trimap on known pixels (true for Composition-1k); mmagic returns MSE = 0 with no
unknown pixel where MATLAB gives NaN; GCA-Matting / IndexNet's Python ports divide by 255 instead
of min–max normalising for Grad, use ``scipy.ndimage.convolve(mode="nearest")`` (a convolution,
same magnitudes), and some of them pick the largest Conn component with ``np.bincount`` *including*
the background label.

Speed (benchmarks/bench_metrics.py, 1080×1440): every individual metric validates its inputs
(ValueError naming the argument); :func:`evaluate` validates once and shares intermediate results.
Conn labels each threshold once with OpenCV (4-connectivity), only inside the previous level's Ω
unless the pixels outside it could hold a larger component, and tracks how many consecutive Ω_i
each pixel belongs to instead of building full-image maps and distance transforms per threshold.
The "gfm" Grad runs scipy's two-pass filter arithmetic in a numba kernel (compiled on first use,
≈ 3 s, then cached on disk: ≈ 1 s to import numba and load it in a new process) and matches
scipy bit for bit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gfm.core.trimap import BACKGROUND, FOREGROUND, UNKNOWN  # trimap values as stored on disk

__all__ = [
    "KEYS", "MAIN_METRICS", "TABLE1_METRICS", "CONVENTIONS",
    "evaluate", "sad", "mse", "mad", "grad", "conn", "force_known", "connectivity_levels",
]

#: Keys returned by :func:`evaluate`, in the order the official test log prints them.
KEYS = ("sad", "mse", "mad", "grad", "conn", "sad_trans", "mse_trans", "mad_trans", "sad_fg", "sad_bg")
#: The paper's four major metrics (SAD, MSE, Grad., Conn.) plus the size-independent MAD: the
#: columns of Tables 4-6 ("Evaluation Metrics"). Lower is better for every key of :data:`KEYS`.
MAIN_METRICS = ("sad", "mse", "mad", "grad", "conn")
#: The columns of Tables 1 and 3: :data:`MAIN_METRICS` and the auxiliary SAD-TRAN, SAD-FG, SAD-BG.
TABLE1_METRICS = (*MAIN_METRICS, "sad_trans", "sad_fg", "sad_bg")
CONVENTIONS = ("gfm", "dim")

_GRAD_NORM = {"gfm": 10.0, "dim": 1000.0}


def evaluate(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    convention: str = "gfm",
    *,
    sigma: float = 1.4,
    conn_step: float = 0.1,
    conn_theta: float = 0.15,
    norm: float = 1000.0,
) -> dict[str, float]:
    """All matting errors of one prediction, in the paper's units (see the module table).

    Parameters
    ----------
    pred, gt : ndarray
        H×W float alpha mattes in [0, 1] (prediction and ground truth).
    trimap : ndarray of uint8, optional
        H×W trimap with values 0 / 128 / 255. Keys that need it are NaN when None.
    convention : {"gfm", "dim"}
        "gfm" reproduces the official GFM ``core/evaluate.py`` as ``core/test.py`` calls it;
        "dim" the Deep Image Matting evaluation as ported by mmagic (unknown region only).
    sigma : float
        Standard deviation of the Gaussian derivative filters of Grad (paper/DIM: 1.4).
    conn_step, conn_theta : float
        Threshold step (0.1) and the minimum level difference counted by φ (0.15) of Conn.
    norm : float
        Divisor of SAD-type sums and of Conn (1000 in both conventions).

    Returns
    -------
    dict
        Float values for the keys of :data:`KEYS`.
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    if trimap is not None:
        trimap = _check_trimap(trimap, pred.shape)
    out = dict.fromkeys(KEYS, math.nan)
    if convention == "gfm":
        out.update(_evaluate_gfm(pred, gt, trimap, sigma, conn_step, conn_theta, norm))
    elif trimap is not None:
        out.update(_evaluate_dim(pred, gt, trimap, sigma, conn_step, conn_theta, norm))
    return out


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, norm: float = 1000.0) -> float:
    """Sum of absolute differences, Σ_mask |pred − gt| / norm (Rhemann et al., 2009).

    Alphas in [0, 1]; the paper, GFM and DIM all report SAD divided by ``norm`` = 1000
    (e.g. 10.26 for GFM-TT(d) on AM-2k). ``mask`` (bool H×W) defaults to the whole image.
    """
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    diff = np.abs(pred - gt)
    return float((diff.sum() if mask is None else diff[mask].sum()) / norm)


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, count: float | None = None) -> float:
    """Mean squared error, Σ_mask (pred − gt)² / count, alphas in [0, 1] (no further scaling).

    ``count`` defaults to the number of pixels in ``mask`` (the whole image when None); GFM's
    MSE-TRAN passes the number of unknown pixels with a whole-image sum. A zero count follows
    IEEE division (inf, or NaN for a zero sum), as the official code does.
    """
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    sq = np.square(pred - gt)
    total = sq.sum() if mask is None else sq[mask].sum()
    return _divide(total, _count(mask, pred.shape) if count is None else count)


def mad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, count: float | None = None) -> float:
    """Mean absolute difference, Σ_mask |pred − gt| / count (paper: "MAD", size-independent SAD).

    ``count`` as in :func:`mse`. The paper reports MAD unscaled (e.g. 0.0059).
    """
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    diff = np.abs(pred - gt)
    total = diff.sum() if mask is None else diff[mask].sum()
    return _divide(total, _count(mask, pred.shape) if count is None else count)


def grad(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    convention: str = "gfm",
    sigma: float = 1.4,
    norm: float | None = None,
) -> float:
    """Gradient error, Σ_mask (‖∇_σ pred‖ − ‖∇_σ gt‖)² / norm (Rhemann et al., 2009; DIM).

    "gfm": scipy-style Gaussian derivatives (radius int(4σ + 0.5), mirror border, float32 passes
    and sum) on the raw mattes, ``norm`` = 10, whole image by default. "dim": MATLAB
    ``gaussgradient`` filters (unit-L2 9×9 kernel for σ = 1.4, replicated border) on min–max
    normalised mattes, float64, ``norm`` = 1000 (callers pass the unknown region as ``mask``).
    ``sigma`` is 1.4 in both.
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    return _grad(pred, gt, mask, convention, sigma, _GRAD_NORM[convention] if norm is None else norm)


def conn(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    convention: str = "gfm",
    step: float = 0.1,
    theta: float = 0.15,
    norm: float = 1000.0,
) -> float:
    """Connectivity error, Σ_mask |φ(pred) − φ(gt)| / norm (Rhemann et al., 2009; DIM code).

    φ(x) = 1 − (x − l) where x − l ≥ ``theta`` (0.15), else 1; l is the threshold at which a pixel
    leaves the largest 4-connected component of {pred ≥ t} ∩ {gt ≥ t}, t = ``step``, 2·step, …
    (see the module docstring for the exact rule and the two conventions' threshold lists).
    ``norm`` = 1000 in both conventions; the whole image by default ("gfm"), the unknown region
    in "dim".
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    return _conn(pred, gt, mask, convention, step, theta, norm)


def force_known(pred: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Copy of ``pred`` with 1 where the trimap is 255 and 0 where it is 0 (known regions).

    This is what the official SAD-TRAN does before summing, and what mmagic requires of a
    prediction before evaluating it.
    """
    pred = _check_alpha(pred, "pred")
    trimap = _check_trimap(trimap, pred.shape)
    return _force_known(pred, trimap)


def connectivity_levels(
    pred: np.ndarray, gt: np.ndarray, *, convention: str = "gfm", step: float = 0.1
) -> np.ndarray:
    """The per-pixel level l of Conn (float64 H×W): the threshold at which a pixel leaves Ω.

    Useful to visualise where connectivity errors come from; see :func:`conn`.
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    return _levels(pred, gt, convention, step)


# --------------------------------------------------------------------------- conventions


def _evaluate_gfm(pred, gt, trimap, sigma, step, theta, norm):
    # every sum below runs over a full H×W float64 array, as in the official code, so the
    # pairwise summation (and hence the result) is the same to the last bit
    n = pred.size
    absdiff = np.abs(np.subtract(pred, gt))
    abs_sum = absdiff.sum()
    scratch = np.square(absdiff)
    out = {
        "sad": float(abs_sum / norm),
        "mse": float(scratch.sum() / n),
        "mad": float(abs_sum / n),
        "grad": _grad(pred, gt, None, "gfm", sigma, _GRAD_NORM["gfm"]),
        "conn": _conn(pred, gt, None, "gfm", step, theta, norm),
    }
    if trimap is None:
        return out
    fg, bg = trimap == FOREGROUND, trimap == BACKGROUND
    out["sad_fg"] = float(np.multiply(absdiff, fg, out=scratch).sum() / norm)
    out["sad_bg"] = float(np.multiply(absdiff, bg, out=scratch).sum() / norm)
    # |forced − gt| with the prediction forced to the trimap: 1 − gt on F, gt on B, |p − g| on U
    forced = absdiff
    np.subtract(1.0, gt, out=forced, where=fg)
    np.copyto(forced, gt, where=bg)
    forced_abs_sum = forced.sum()
    forced_sq_sum = np.square(forced, out=scratch).sum()
    unknown = float(np.count_nonzero(trimap == UNKNOWN))
    if unknown == 0:  # the official fallback: pixels that are none of 0 / 128 / 255
        unknown = float(n - np.count_nonzero(fg) - np.count_nonzero(bg))
    out.update(
        sad_trans=float(forced_abs_sum / norm),
        mse_trans=_divide(forced_sq_sum, unknown),
        mad_trans=_divide(forced_abs_sum, unknown),
    )
    return out


def _evaluate_dim(pred, gt, trimap, sigma, step, theta, norm):
    unknown = trimap == UNKNOWN
    count = int(np.count_nonzero(unknown))
    forced = _force_known(pred, trimap)
    diff = (forced - gt)[unknown]
    return {
        "sad": float(np.abs(diff).sum() / norm),
        "mse": float(np.square(diff).sum() / count) if count else 0.0,
        "grad": _grad(forced, gt, unknown, "dim", sigma, _GRAD_NORM["dim"]),
        "conn": _conn(forced, gt, unknown, "dim", step, theta, norm),
    }


# --------------------------------------------------------------------------- gradient


def _grad(pred, gt, mask, convention, sigma, norm):
    if convention == "gfm":
        err = np.square(_magnitude_gfm(pred, sigma) - _magnitude_gfm(gt, sigma))  # float32, as official
        total = err.sum() if mask is None else err[mask].sum()
        return float(total / np.float32(norm))
    err = np.square(_magnitude_dim(pred, sigma) - _magnitude_dim(gt, sigma))
    total = err.sum() if mask is None else err[mask].sum()
    return float(total / norm)


def _magnitude_gfm(alpha, sigma, truncate=4.0):
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


def _magnitude_dim(alpha, sigma, epsilon=1e-2):
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


# --------------------------------------------------------------------------- connectivity


def _conn(pred, gt, mask, convention, step, theta, norm):
    levels = _levels(pred, gt, convention, step)
    # φ(x) = 1 − (x − l)·[x − l ≥ θ], computed as the official code does, in reused buffers
    below = np.nextafter(theta, -np.inf)  # cv2's TOZERO keeps values > thresh, i.e. ≥ θ here
    phi_pred = np.subtract(pred, levels)
    phi_gt = np.subtract(gt, levels, out=levels)
    for phi in (phi_pred, phi_gt):
        cv2.threshold(phi, below, 0.0, cv2.THRESH_TOZERO, dst=phi)
        np.subtract(1.0, phi, out=phi)
    err = np.abs(np.subtract(phi_pred, phi_gt, out=phi_pred), out=phi_pred)
    total = err.sum() if mask is None else err[mask].sum()
    return float(total / norm)


def _levels(pred, gt, convention, step):
    stop = 1.1 if convention == "gfm" else 1.0 + step
    thresholds = np.arange(0, stop, step)
    depth, last = _omega_depth(np.minimum(pred, gt), thresholds)
    table = np.ones(256 if depth.dtype == np.uint8 else last + 1)
    table[:last] = thresholds[:last]  # depth c < last: left at level c + 1, l = t_c
    # depth == last (in every non-empty Ω_i, or no level at all): never assigned, set to 1 at the end
    if convention == "gfm":
        table = table.astype(np.float32).astype(np.float64)  # the official map is float32
    return cv2.LUT(depth, table) if depth.dtype == np.uint8 else table[depth]


def _omega_depth(low, thresholds):
    """Number of leading levels i = 1, 2, … whose Ω_i holds each pixel; and the last non-empty i.

    ``low`` = min(pred, gt), so {pred ≥ t} ∩ {gt ≥ t} = {low ≥ t}. A pixel's depth can only grow
    at level i if it is in S = Ω_1 ∩ … ∩ Ω_{i−1} ⊂ Ω_{i−1}, and every component of {low ≥ t_i}
    meeting Ω_{i−1} lies inside it; so level i is labelled inside Ω_{i−1} only, unless the pixels
    of the level outside Ω_{i−1} could form a component as large as the largest one inside, in
    which case the whole level is labelled. Labelling stops once S is empty.
    """
    h, w = low.shape
    depth = np.zeros((h, w), np.uint8 if len(thresholds) <= 256 else np.uint16)
    last = int(np.searchsorted(thresholds[1:], low.max(), side="right"))  # levels 1..last non-empty
    box, omega = (0, 0, h, w), None  # Ω_{i−1}: bounding box (y0, x0, y1, x1), mask inside it
    bound = h * w  # an upper bound of |{low ≥ t_i}|, which shrinks with i
    for i in range(1, last + 1):
        t = thresholds[i]
        y0, x0, y1, x1 = box
        inside = low[y0:y1, x0:x1] >= t
        if omega is not None:
            inside &= omega
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            inside.view(np.uint8), connectivity=4, ltype=cv2.CV_32S
        )
        if count <= 1:  # nothing of this level inside Ω_{i−1}: Ω_i misses S
            break
        areas = stats[1:, cv2.CC_STAT_AREA]
        if omega is None:
            bound = int(areas.sum())
        elif int(areas.max()) <= bound - int(areas.sum()):  # maybe not the largest: count exactly
            level = low >= t
            bound = int(np.count_nonzero(level))
            if int(areas.max()) <= bound - int(areas.sum()):
                y0, x0 = 0, 0
                count, labels, stats, _ = cv2.connectedComponentsWithStats(
                    level.view(np.uint8), connectivity=4, ltype=cv2.CV_32S
                )
        best = _largest_label(labels, stats)
        x, y, bw, bh = (int(v) for v in stats[best, :4])
        omega = labels[y : y + bh, x : x + bw] == best
        box = (y0 + y, x0 + x, y0 + y + bh, x0 + x + bw)
        region = depth[box[0] : box[2], box[1] : box[3]]
        held = omega & (region == i - 1)
        if not held.any():  # S_i is empty: no depth can grow any more
            break
        np.copyto(region, i, where=held)
    return depth, last


def _largest_label(labels, stats):
    """Label of the largest component; among equals, the one whose first pixel comes first."""
    areas = stats[1:, cv2.CC_STAT_AREA]
    tied = np.flatnonzero(areas == areas.max()) + 1
    if tied.size == 1:
        return int(tied[0])
    flat = labels.ravel()
    where = np.flatnonzero(np.isin(flat, tied))
    names, first = np.unique(flat[where], return_index=True)  # raster position of each one's first pixel
    return int(names[np.argmin(where[first])])


# --------------------------------------------------------------------------- helpers


def _force_known(pred, trimap):
    out = pred.copy()
    out[trimap == FOREGROUND] = 1.0
    out[trimap == BACKGROUND] = 0.0
    return out


def _divide(total, count):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(total) / np.float64(count))


def _count(mask, shape):
    return float(np.count_nonzero(mask)) if mask is not None else float(shape[0] * shape[1])


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def _check_pair(pred, gt):
    pred = _check_alpha(pred, "pred")
    gt = _check_alpha(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"gt must have the shape of pred {pred.shape}, got {gt.shape}")
    return pred, gt


def _check_alpha(alpha, name):
    if not isinstance(alpha, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(alpha).__name__}")
    if not np.issubdtype(alpha.dtype, np.floating):
        hint = " (divide 8-bit mattes by 255)" if np.issubdtype(alpha.dtype, np.integer) else ""
        raise ValueError(f"{name} must be a float array with values in [0, 1], got dtype {alpha.dtype}{hint}")
    if alpha.ndim != 2:
        raise ValueError(f"{name} must be a 2-D H×W matte, got shape {alpha.shape}")
    if alpha.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {alpha.shape}")
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    lo, hi = alpha.min(), alpha.max()  # NaN propagates into both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    if lo < 0.0 or hi > 1.0:
        outside = (alpha < 0.0) | (alpha > 1.0)
        y, x = np.argwhere(outside)[0]
        raise ValueError(f"{name} must lie in [0, 1]: {int(outside.sum())} value(s) outside, the first "
                         f"{float(alpha[y, x])!r} at row {y}, column {x} (range {float(lo)!r} to {float(hi)!r})")
    return alpha


def _check_trimap(trimap, shape):
    if not isinstance(trimap, np.ndarray):
        raise ValueError(f"trimap must be a numpy array, got {type(trimap).__name__}")
    if trimap.dtype != np.uint8:
        raise ValueError(f"trimap must be a uint8 array with values 0/128/255, got dtype {trimap.dtype}")
    if trimap.shape != tuple(shape):
        raise ValueError(f"trimap must have the shape of pred {tuple(shape)}, got {trimap.shape}")
    present = np.flatnonzero(np.bincount(trimap.ravel(), minlength=256))
    stray = sorted(set(present.tolist()) - {BACKGROUND, UNKNOWN, FOREGROUND})
    if stray:
        raise ValueError(f"trimap must only hold 0, 128 and 255, found {stray[:5]}")
    return np.ascontiguousarray(trimap)


def _check_mask(mask, shape):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be a boolean array, got dtype {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"mask must have the shape of pred {tuple(shape)}, got {mask.shape}")
    return mask
