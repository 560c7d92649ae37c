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
NaN when ``trimap`` is None ("gfm": the last five; "dim": all of them). The gradient ∇_σ (σ = 1.4)
of each convention is defined in :mod:`gfm.evaluate.gradient`, the connectivity φ in
:mod:`gfm.evaluate.connectivity`, each with its official quirks.

``"gfm"`` reproduces ``core/evaluate.py`` exactly as ``core/test.py`` calls it (checked to 1e-6
relative against recorded outputs of the official functions, tests/fixtures/metrics_*):
prediction and ground truth are float64 — the network output resized with skimage, never
quantised to 8 bits, and the ground truth PNG divided by 255 — and the trimap is the raw uint8 PNG.
Inputs here are converted to float64 the same way.

Quirks of the official SAD family (reproduced in ``"gfm"``, absent from ``"dim"``):

1. SAD-TRAN / MSE-TRAN / MAD-TRAN are *not* restricted to the transition area: the prediction is
   forced to the trimap on known pixels, but the sum runs over the whole image, so wherever the
   ground truth is not exactly 0 / 1 under a known trimap label (trimap made from a different
   alpha, or soft alpha under the eroded foreground) the difference is counted. MSE/MAD-TRAN then
   divide that whole-image sum by the number of *unknown* pixels; with no unknown pixel they
   divide by the number of pixels that are none of 0 / 128 / 255 — zero for a valid trimap — and
   the result is inf (or NaN when the sum is 0 too).
2. SAD-FG / SAD-BG use the raw prediction (not forced), so they measure the errors that
   SAD-TRAN's forcing hides. SAD ≠ SAD-TRAN + SAD-FG + SAD-BG in general.

Known disagreements between "dim" implementations (we follow mmagic / mmeval, which ports the DIM
MATLAB code): mmagic requires p already forced to the trimap and sums SAD and the MSE numerator
over the whole image, which equals the unknown-region sum used here whenever the ground truth
agrees with the trimap on known pixels (true for Composition-1k); mmagic returns MSE = 0 with no
unknown pixel where MATLAB gives NaN.

Speed (benchmarks/bench_metrics.py, 1080×1440): every individual metric validates its inputs
(ValueError naming the argument); :func:`evaluate` validates once and shares intermediate results.
"""

from __future__ import annotations

import math

import numpy as np

from gfm.core.trimap import BACKGROUND, FOREGROUND, UNKNOWN  # trimap values as stored on disk
from gfm.evaluate import connectivity, gradient

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

    ∇_σ of each convention as in :mod:`gfm.evaluate.gradient`: "gfm" on the raw mattes in float32,
    ``norm`` = 10, whole image by default; "dim" on min–max normalised mattes in float64, ``norm`` =
    1000 (callers pass the unknown region as ``mask``). ``sigma`` is 1.4 in both.
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    return gradient.error(pred, gt, mask, convention, sigma, gradient.NORM[convention] if norm is None else norm)


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
    (see :mod:`gfm.evaluate.connectivity` for the exact rule and the two conventions' thresholds).
    ``norm`` = 1000 in both conventions; the whole image by default ("gfm"), the unknown region
    in "dim".
    """
    convention = _check_convention(convention)
    pred, gt = _check_pair(pred, gt)
    mask = _check_mask(mask, pred.shape)
    return connectivity.error(pred, gt, mask, convention, step, theta, norm)


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
    return connectivity.levels(pred, gt, convention, step)


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
        "grad": gradient.error(pred, gt, None, "gfm", sigma, gradient.NORM["gfm"]),
        "conn": connectivity.error(pred, gt, None, "gfm", step, theta, norm),
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
        "grad": gradient.error(forced, gt, unknown, "dim", sigma, gradient.NORM["dim"]),
        "conn": connectivity.error(forced, gt, unknown, "dim", step, theta, norm),
    }


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
