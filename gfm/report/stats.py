"""Paired statistics for judging the paper's claims over several seeds and the same images.

Every claim compares *arms* (experiments: one configuration, trained with one or more seeds,
runs ``<experiment>-s<k>``) that were all evaluated on the same validation images. One arm's
per-image values form an array shaped ``(n_seeds, n_images)`` (or ``(n_seeds, n_images,
n_metrics)``). All metrics here are errors: lower is better.

Design: a corrected two-level bootstrap
---------------------------------------
The quantity of interest is the difference of the arms' expected errors, estimated by

    T = mean_i( mean_s B[s, i] ) - mean_i( mean_s A[s, i] )

(the grand mean of arm B minus that of arm A; the image mean of the per-image differences of the
seed-averaged values). Two sources of chance move T: *which images* were evaluated and *which
seeds* were drawn. Images are shared by the arms, so they are paired: an easy image is easy for
both, and the bootstrap must resample the SAME image indices for every arm. Seeds of different
arms are independent trainings (seed k of arm A has nothing to do with seed k of arm B), so seeds
are NOT paired by index: each arm's seeds are resampled independently. (The exception is two
metrics of the same runs, e.g. SAD-TRAN against SAD-FG: ``paired_seeds=True`` resamples the seeds
jointly, because both values come from the same trained model.)

One bootstrap replicate of an arm's mean is

    m* = mean_{i in I*}( xbar_i )  +  g * sum_s w*_s (r_s - rbar)

* ``I*``: n image indices drawn with replacement, shared by all arms and metrics of the replicate;
  ``xbar_i`` the arm's per-image mean over its seeds. This level carries the image-to-image
  variation of the paired differences *and* the seed-by-image noise (which already averages over
  the arm's seeds in ``xbar_i``).
* ``w*``: the arm's seeds drawn with replacement (multinomial weights), independently per arm;
  ``r_s`` seed s's mean over images. This level carries the run-level (seed) variation: a seed
  that is good on every image.
* ``g`` rescales the seed deviations so that the seed level adds exactly the estimated
  between-seed variance and nothing else: (i) the row means ``r_s`` also contain the seed-by-image
  noise, already counted at the image level; resampling both levels naively (the "pigeonhole"
  bootstrap, Owen 2007, Ann. Appl. Stat. 1:386) counts it twice and gives intervals up to ~1.4x
  too wide (coverage ~1.00 instead of 0.95). The between-seed variance is therefore estimated by
  the two-way ANOVA moment estimator ``var(r_s) - MS_residual / n`` (truncated at 0); (ii) the
  bootstrap variance of a mean of S resampled values is (S-1)/S of the unbiased one, corrected by
  ``S/(S-1)``; (iii) with few seeds that variance is itself estimated on S-1 degrees of freedom,
  and resampling 3 values cannot produce a t-distribution's tails, so the seed level is widened by
  ``t_{S-1, 0.975} / z_{0.975}`` (``small_sample=True``; 2.2 for 3 seeds, 1.4 for 5, -> 1 for
  many). In simulation (3 seeds x 100 images, seed SD from 0 to 3x the image-level SE) the 95 %
  interval covers the truth 95-98 % of the time; without (iii) it drops to 85 % when the seed
  variation dominates; the naive two-level bootstrap is at 100 % when there is none.

With a single seed per arm the seed level degenerates (``g = 0``: one training says nothing about
seed variation): the interval is still valid over images, i.e. for *this* trained model against
*that* one, not for the configurations. With fewer than 2 images no interval is formed (NaN) and
every verdict is ``inconclusive``.

The interval is the percentile interval of ``n_boot`` replicates (default 4000, fixed ``seed``):
about 10 ms for 3 seeds x 100 images. Ratios (relative effect, share of a change, fraction of a gap
closed) are computed on the same replicates, so the interval of a ratio reflects both levels too.

Verdicts
--------
:func:`verdict` turns an interval into ``reproduced`` (wholly on the paper's side of the
threshold, 0 for a difference), ``contradicted`` (wholly on the other side) or ``inconclusive``
(straddling or touching it). Never from one pair of means. :func:`combine` aggregates several
comparisons: all of them (a conjunction) or at least k of them ("better on at least 4 of 5
metrics"). No multiplicity correction is applied within a claim: each comparison is judged at
95 %, so a conjunction is conservative for ``reproduced`` while ``contradicted`` by any one
comparison is slightly more likely than 2.5 % when a true effect is exactly zero.

Functions
---------
* :func:`bootstrap_means` -- replicate means of several arms (the engine).
* :func:`paired_differences` -- B - A with its interval (and the relative effect).
* :func:`relative_effect` -- (B - A) / A, A = the reference arm (the first one).
* :func:`share_of_change` -- which share of a change in a total happens in one part.
* :func:`gap_closed` -- the fraction of the gap between a worst and a best arm closed by a third.
* :func:`group_medians` -- independent bootstrap of per-group medians (unpaired samples).
* :func:`binomial_interval` -- Clopper-Pearson interval of a proportion.
* :func:`verdict`, :func:`ratio_verdict`, :func:`combine`, :func:`margin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "CONFIDENCE", "N_BOOT", "REPRODUCED", "CONTRADICTED", "INCONCLUSIVE", "NOT_RUN", "VERDICTS",
    "Effect", "as_arm", "bootstrap_means", "paired_differences", "relative_effect", "share_of_change",
    "gap_closed", "group_medians", "binomial_interval", "expected_sign", "verdict", "ratio_verdict",
    "combine", "margin",
]

CONFIDENCE = 0.95
N_BOOT = 4000
REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "reproduced", "contradicted", "inconclusive", "not_run"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
_NAN_CI = (math.nan, math.nan)


@dataclass(frozen=True)
class Effect:
    """A statistic with its bootstrap interval.

    Attributes
    ----------
    estimate : float
        The statistic on the data as observed (e.g. mean(B) - mean(A)).
    ci95 : (float, float)
        Percentile interval (``CONFIDENCE``); (nan, nan) when undefined (< 2 images).
    n_images : int
        Images used (shared by the arms).
    n_seeds : tuple of int
        Seeds per arm, in the order the arms were given.
    means : tuple of float
        Each arm's grand mean (of the metric the statistic is built from).
    relative : float
        ``estimate / means[0]`` for a difference (the first arm is the reference); nan otherwise.
    relative_ci95 : (float, float)
        Interval of ``relative`` from the same replicates.
    denominator_ci95 : (float, float) or None
        For a ratio statistic, the interval of its denominator (the ratio is only meaningful when
        the denominator is clearly positive, see :func:`ratio_verdict`).
    """

    estimate: float
    ci95: tuple[float, float]
    n_images: int
    n_seeds: tuple[int, ...]
    means: tuple[float, ...] = ()
    relative: float = math.nan
    relative_ci95: tuple[float, float] = _NAN_CI
    denominator_ci95: tuple[float, float] | None = None

    @property
    def diff(self) -> float:
        """Alias of ``estimate`` (for a difference B - A)."""
        return self.estimate


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

def as_arm(values) -> np.ndarray:
    """``values`` as a float array shaped (n_seeds, n_images, n_metrics).

    Accepts (n_images,) (one seed, one metric), (n_seeds, n_images) (one metric) or the 3-D shape.
    Raises ValueError on non-finite values (drop such images before, see gfm.report.judge).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        x = x[None, :, None]
    elif x.ndim == 2:
        x = x[:, :, None]
    elif x.ndim != 3:
        raise ValueError(f"expected (n_seeds, n_images[, n_metrics]) values, got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError("an arm needs at least one seed")
    if not np.isfinite(x).all():
        raise ValueError("non-finite per-image values: drop those images first")
    return x


def bootstrap_means(arms: Sequence, *, n_boot: int = N_BOOT, seed: int = 0, paired_seeds: bool = False,
                    small_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each arm's grand mean per metric, observed and bootstrapped (see the module docstring).

    Parameters
    ----------
    arms : sequence of array_like
        One array per arm, shaped (n_seeds, n_images[, n_metrics]); the same images, in the same
        order, in every arm (and the same metrics).
    n_boot : int
        Replicates.
    seed : int
        Seed of the generator (fixed: the same data give the same interval on every machine).
    paired_seeds : bool
        False (default): the arms' seeds are independent trainings, resampled independently.
        True: the arms are the same runs (e.g. two metrics of one model), seed k of every arm is
        the same training; their seeds are resampled jointly (all arms need the same n_seeds).
    small_sample : bool
        Widen the seed level by t_{S-1}/z (see the module docstring).

    Returns
    -------
    observed : ndarray (n_arms, n_metrics)
    replicates : ndarray (n_boot, n_arms, n_metrics)
    """
    xs = [as_arm(a) for a in arms]
    if not xs:
        raise ValueError("no arms")
    n, m = xs[0].shape[1:]
    for x in xs[1:]:
        if x.shape[1:] != (n, m):
            raise ValueError(f"arms differ in images or metrics: {[x.shape for x in xs]}")
    if paired_seeds and len({x.shape[0] for x in xs}) > 1:
        raise ValueError("paired_seeds needs the same number of seeds in every arm")
    rng = np.random.default_rng(seed)
    observed = np.stack([x.mean(axis=(0, 1)) for x in xs])
    # image level: one multinomial count vector per replicate, shared by every arm and metric
    counts = _resample_weights(rng, n, n_boot)
    replicates = np.empty((n_boot, len(xs), m))
    weights = None
    for k, x in enumerate(xs):
        per_image = x.mean(axis=0)                          # (n, m)
        replicates[:, k, :] = counts @ per_image
        s = x.shape[0]
        if s < 2:
            continue                                        # one seed: no seed level
        if weights is None or not paired_seeds:
            weights = _resample_weights(rng, s, n_boot)                         # (n_boot, s)
        row = x.mean(axis=1)                                # (s, m)
        deviation = row - row.mean(axis=0)
        replicates[:, k, :] += (weights @ deviation) * _seed_scale(x, small_sample)
    return observed, replicates


def _resample_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) weights of n items drawn with replacement (counts / n; each row sums to 1)."""
    picks = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(picks.ravel(), minlength=n * n_boot).reshape(n_boot, n) / n


def _seed_scale(x: np.ndarray, small_sample: bool) -> np.ndarray:
    """Per metric, the factor g applied to the seed deviations (module docstring, (i)-(iii))."""
    s, n, _ = x.shape
    row = x.mean(axis=1)                                    # (s, m)
    var_row = row.var(axis=0, ddof=1)
    if n > 1:
        residual = x - row[:, None, :] - x.mean(axis=0)[None] + x.mean(axis=(0, 1))
        ms_residual = (residual ** 2).sum(axis=(0, 1)) / ((s - 1) * (n - 1))
    else:
        ms_residual = np.zeros_like(var_row)
    between = np.maximum(var_row - ms_residual / n, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(var_row > 0, np.sqrt(s / (s - 1) * between / var_row), 0.0)
    if small_sample:
        g = g * _st.t.ppf(0.5 + CONFIDENCE / 2, s - 1) / _st.norm.ppf(0.5 + CONFIDENCE / 2)
    return g


def _interval(replicates: np.ndarray) -> tuple[float, float]:
    values = np.asarray(replicates, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 0.99 * np.asarray(replicates).size or values.size == 0:
        return _NAN_CI                                      # a ratio whose denominator hit 0
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------

def paired_differences(a, b, *, n_boot: int = N_BOOT, seed: int = 0, paired_seeds: bool = False,
                       small_sample: bool = True) -> Effect:
    """mean(B) - mean(A) on the same images, with its two-level bootstrap interval.

    Parameters
    ----------
    a, b : array_like
        Per-image values of arm A (the reference) and arm B, shaped (n_seeds, n_images) each (the
        numbers of seeds may differ); column i of both is the same image. Lower is better, so a
        negative difference means B is better.
    n_boot, seed, small_sample
        See :func:`bootstrap_means`.
    paired_seeds : bool
        False: seeds of A and B are independent trainings (different arms): pairing is by image
        only. True: A and B are two metrics of the same runs (seed k of both is one model).

    Returns
    -------
    Effect
        ``estimate`` = B - A, ``relative`` = (B - A) / mean(A) (see :func:`relative_effect`).
        With < 2 images the intervals are (nan, nan). A single seed per arm: the interval covers
        image sampling only (the seed level degenerates).
    """
    observed, reps = bootstrap_means([a, b], n_boot=n_boot, seed=seed, paired_seeds=paired_seeds,
                                     small_sample=small_sample)
    n_images = int(as_arm(a).shape[1])
    mean_a, mean_b = float(observed[0, 0]), float(observed[1, 0])
    diff = mean_b - mean_a
    boot_a, boot_b = reps[:, 0, 0], reps[:, 1, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = diff / mean_a if mean_a != 0 else math.nan
        relative_reps = (boot_b - boot_a) / boot_a
    ok = n_images >= 2
    return Effect(estimate=diff, ci95=_interval(boot_b - boot_a) if ok else _NAN_CI, n_images=n_images,
                  n_seeds=(int(as_arm(a).shape[0]), int(as_arm(b).shape[0])), means=(mean_a, mean_b),
                  relative=relative, relative_ci95=_interval(relative_reps) if ok and mean_a != 0 else _NAN_CI)


def relative_effect(a, b, **kwargs) -> Effect:
    """(mean(B) - mean(A)) / mean(A): the change relative to the REFERENCE arm A (the first arm).

    -0.25 means B's error is 25 % lower than A's. Same arguments as :func:`paired_differences`;
    the returned Effect has ``estimate`` = the relative effect, ``ci95`` its interval.
    """
    effect = paired_differences(a, b, **kwargs)
    return Effect(estimate=effect.relative, ci95=effect.relative_ci95, n_images=effect.n_images,
                  n_seeds=effect.n_seeds, means=effect.means, relative=effect.relative,
                  relative_ci95=effect.relative_ci95)


def share_of_change(a_part, b_part, a_total, b_total, *, n_boot: int = N_BOOT, seed: int = 0,
                    small_sample: bool = True) -> Effect:
    """Which share of the change A -> B of a total happens in one part of it.

    ``(mean(A_part) - mean(B_part)) / (mean(A_total) - mean(B_total))``, e.g. the share of the
    SAD drop from COMP-COCO (A) to COMP-BG20K (B) that is a drop of SAD-BG. ``x_part`` and
    ``x_total`` of an arm come from the same runs (shared seed resampling within the arm); the two
    arms' seeds are independent; images are paired. The share is only meaningful when the total
    clearly changes: ``denominator_ci95`` is the interval of mean(A_total) - mean(B_total) (see
    :func:`ratio_verdict`).
    """
    a = np.stack([as_arm(a_part)[..., 0], as_arm(a_total)[..., 0]], axis=-1)
    b = np.stack([as_arm(b_part)[..., 0], as_arm(b_total)[..., 0]], axis=-1)
    observed, reps = bootstrap_means([a, b], n_boot=n_boot, seed=seed, small_sample=small_sample)
    drop = observed[0] - observed[1]                    # (part, total)
    drop_reps = reps[:, 0, :] - reps[:, 1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = drop[0] / drop[1] if drop[1] != 0 else math.nan
        share_reps = drop_reps[:, 0] / drop_reps[:, 1]
    ok = a.shape[1] >= 2
    return Effect(estimate=float(share), ci95=_interval(share_reps) if ok else _NAN_CI, n_images=int(a.shape[1]),
                  n_seeds=(a.shape[0], b.shape[0]), means=(float(observed[0, 1]), float(observed[1, 1])),
                  denominator_ci95=_interval(drop_reps[:, 1]) if ok else _NAN_CI)


def gap_closed(worst, candidate, best, *, n_boot: int = N_BOOT, seed: int = 0, small_sample: bool = True) -> Effect:
    """The fraction of the gap between ``worst`` and ``best`` that ``candidate`` closes.

    ``(mean(worst) - mean(candidate)) / (mean(worst) - mean(best))``: 0 = no better than the
    worst arm, 1 = as good as the best (e.g. COMP-COCO, COMP-RSSN and ORI). Three independent arms
    (seeds resampled independently), images paired. ``denominator_ci95`` is the gap's interval.
    """
    observed, reps = bootstrap_means([worst, candidate, best], n_boot=n_boot, seed=seed, small_sample=small_sample)
    o, r = observed[:, 0], reps[:, :, 0]
    gap, gap_reps = o[0] - o[2], r[:, 0] - r[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = (o[0] - o[1]) / gap if gap != 0 else math.nan
        fraction_reps = (r[:, 0] - r[:, 1]) / gap_reps
    n = int(as_arm(worst).shape[1])
    ok = n >= 2
    return Effect(estimate=float(fraction), ci95=_interval(fraction_reps) if ok else _NAN_CI, n_images=n,
                  n_seeds=tuple(int(as_arm(x).shape[0]) for x in (worst, candidate, best)),
                  means=tuple(float(v) for v in o), denominator_ci95=_interval(gap_reps) if ok else _NAN_CI)


def group_medians(groups: Sequence, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-group medians of unpaired samples, observed and bootstrapped.

    ``groups``: one array (n_g, n_columns) per group (different items per group, e.g. composites
    of different routes), each resampled independently. Returns observed (n_groups, n_columns)
    and replicates (n_boot, n_groups, n_columns). Groups with < 2 items give NaN replicates.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(g, dtype=float).reshape(len(g), -1) for g in groups]
    columns = arrays[0].shape[1]
    observed = np.stack([np.median(g, axis=0) if len(g) else np.full(columns, np.nan) for g in arrays])
    replicates = np.full((n_boot, len(arrays), columns), np.nan)
    for k, g in enumerate(arrays):
        if len(g) >= 2:
            picks = rng.integers(0, len(g), size=(n_boot, len(g)))
            replicates[:, k, :] = np.median(g[picks], axis=1)
    return observed, replicates


def binomial_interval(successes: int, trials: int) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval of a proportion at ``CONFIDENCE``; (nan, nan) for 0 trials."""
    if trials <= 0:
        return _NAN_CI
    alpha = 1 - CONFIDENCE
    lo = 0.0 if successes <= 0 else float(_st.beta.ppf(alpha / 2, successes, trials - successes + 1))
    hi = 1.0 if successes >= trials else float(_st.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return lo, hi


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------

def expected_sign(expect) -> int:
    """+1 / -1 from "higher" / "lower" (or the integers themselves)."""
    if expect in ("higher", "above", 1, +1):
        return 1
    if expect in ("lower", "below", -1):
        return -1
    raise ValueError(f"expect must be 'higher' (+1) or 'lower' (-1), not {expect!r}")


def verdict(ci, expect, threshold: float = 0.0, *, n_images: int | None = None) -> str:
    """The verdict of one interval against the paper's expectation.

    Parameters
    ----------
    ci : (lo, hi)
        The statistic's interval (e.g. of B - A).
    expect : "lower" | "higher" | -1 | +1
        The paper's side of ``threshold``: "lower" (-1) = the statistic is expected BELOW it (for
        B - A: B has the lower error, B is better), "higher" (+1) = expected above it.
    threshold : float
        0 for a difference; e.g. 0.5 for a share, a fraction for a gap closed.
    n_images : int, optional
        With fewer than 2 images the verdict is ``inconclusive`` whatever the interval.

    Returns
    -------
    str
        ``reproduced``: the interval lies wholly (strictly) on the paper's side; ``contradicted``:
        wholly on the other side; ``inconclusive``: otherwise (including an interval touching the
        threshold, and an undefined interval).
    """
    sign = expected_sign(expect)
    if n_images is not None and n_images < 2:
        return INCONCLUSIVE
    lo, hi = (float(v) if v is not None else math.nan for v in ci)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    lo, hi = min(lo, hi), max(lo, hi)
    above, below = lo > threshold, hi < threshold
    if above or below:
        return REPRODUCED if above == (sign > 0) else CONTRADICTED
    return INCONCLUSIVE


def ratio_verdict(effect: Effect, expect, threshold: float) -> str:
    """:func:`verdict` for a ratio (:func:`share_of_change`, :func:`gap_closed`).

    The ratio only means something when its denominator (the total change, the gap) is clearly
    positive: otherwise the verdict is ``inconclusive`` (a claim that the change itself happens is
    judged separately, as a difference).
    """
    denominator = effect.denominator_ci95 or _NAN_CI
    if verdict(denominator, "higher", 0.0, n_images=effect.n_images) != REPRODUCED:
        return INCONCLUSIVE
    return verdict(effect.ci95, expect, threshold, n_images=effect.n_images)


def margin(ci, expect, threshold: float = 0.0) -> float:
    """How far the interval's near end is on the paper's side (> 0: reproduced; nan: undefined)."""
    sign = expected_sign(expect)
    lo, hi = (float(v) if v is not None else math.nan for v in ci)
    return (lo - threshold) if sign > 0 else (threshold - hi)


def combine(verdicts: Sequence[str], k: int | None = None) -> str:
    """Aggregate comparison verdicts: at least ``k`` of them must hold (default: all of them).

    ``reproduced`` when at least k are reproduced; ``contradicted`` when so many are contradicted
    that k can no longer hold (more than n - k); ``inconclusive`` otherwise. ``not_run`` entries
    are left out (with fewer than k left the result is ``inconclusive``); no comparison at all
    gives ``not_run``.
    """
    judged = [v for v in verdicts if v != NOT_RUN]
    if not judged:
        return NOT_RUN
    n = len(judged)
    k = n if k is None else int(k)
    if k > n:
        return INCONCLUSIVE                                 # too few comparisons to show k of them
    if sum(v == REPRODUCED for v in judged) >= k:
        return REPRODUCED
    if sum(v == CONTRADICTED for v in judged) > n - k:
        return CONTRADICTED
    return INCONCLUSIVE
