"""Conn., the connectivity error of an alpha matte (paper, Sect. "Evaluation Metrics"; Rhemann et al., 2009).

Σ |φ(p) − φ(g)| / 1000 in the two conventions of :mod:`gfm.evaluate.metrics`, which validates the
inputs (H×W float64 in [0, 1]) and chooses the region (whole image in "gfm", unknown region in
"dim"). For thresholds t_i = ``np.arange(0, stop, step)`` (step 0.1, i ≥ 1), Ω_i is the largest
4-connected component of {p ≥ t_i} ∩ {g ≥ t_i} (ties: the component met first in raster order); a
pixel's level l is t_{i−1} at the first non-empty level i whose Ω_i misses it, 1 if none does;
φ(x) = 1 − (x − l) where x − l ≥ θ = 0.15, else 1. "gfm" (official GFM ``core/evaluate.py``) stores
l in float32 and uses ``stop = 1.1`` whatever the step; "dim" (DIM MATLAB code, as ported by
mmagic / mmeval) stores l in float64 and uses ``stop = 1 + step``.

Quirks of the official loop, reproduced in "gfm": a threshold whose intersection is empty is
skipped, so pixels in every non-empty Ω_i get l = 1 rather than the last non-empty threshold (same
as DIM's ``l(l == −1) = 1``). With stop fixed at 1.1, step 0.1 gives 0, 0.1, …, 1.0, where 0.3, 0.6
and 0.7 are one ulp above their decimal value: a ground truth of 153/255 = 0.6 is *below* the
threshold 0.6000000000000001. The official loop also computes a normalised distance map per
threshold that is never used (a large share of its run time); it is omitted here. Some Python
ports of DIM pick the largest component with ``np.bincount`` *including* the background label; we
follow mmagic.

Speed (benchmarks/bench_metrics.py): each threshold is labelled once with OpenCV (4-connectivity),
only inside the previous level's Ω unless the pixels outside it could hold a larger component, and
the number of consecutive Ω_i holding each pixel is tracked instead of building full-image maps
and distance transforms per threshold.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["error", "levels"]


def error(pred, gt, mask, convention, step, theta, norm):
    """Σ_mask |φ(pred) − φ(gt)| / norm of validated mattes (``mask`` None: the whole image)."""
    level = levels(pred, gt, convention, step)
    # φ(x) = 1 − (x − l)·[x − l ≥ θ], computed as the official code does, in reused buffers
    below = np.nextafter(theta, -np.inf)  # cv2's TOZERO keeps values > thresh, i.e. ≥ θ here
    phi_pred = np.subtract(pred, level)
    phi_gt = np.subtract(gt, level, out=level)
    for phi in (phi_pred, phi_gt):
        cv2.threshold(phi, below, 0.0, cv2.THRESH_TOZERO, dst=phi)
        np.subtract(1.0, phi, out=phi)
    err = np.abs(np.subtract(phi_pred, phi_gt, out=phi_pred), out=phi_pred)
    total = err.sum() if mask is None else err[mask].sum()
    return float(total / norm)


def levels(pred, gt, convention, step):
    """The per-pixel level l (float64 H×W) of validated mattes: the threshold at which a pixel leaves Ω."""
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
