"""gfm.report.stats: the two-level paired bootstrap, its coverage, and the verdict rules."""

import math
import time

import numpy as np
import pytest

from gfm.report import stats as st


def simulate(rng, delta, *, seeds=3, images=100, seed_sd=0.1, image_sd=3.0, noise_sd=1.0):
    """Two arms on the same images: a shared image effect, a per-run (seed) shift, per-value noise."""
    image = rng.normal(10.0, image_sd, images)
    a = image + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, noise_sd, (seeds, images))
    b = image + delta + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, noise_sd, (seeds, images))
    return a, b


# --------------------------------------------------------------------------------------------
# intervals on constructed data
# --------------------------------------------------------------------------------------------

def test_interval_covers_the_truth_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    delta, covered = 0.3, 0
    for r in range(200):
        a, b = simulate(rng, delta, seed_sd=0.15)
        lo, hi = st.paired_differences(a, b, n_boot=1000, seed=r).ci95
        covered += lo <= delta <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_zero_difference_is_mostly_inconclusive():
    rng = np.random.default_rng(2)
    verdicts = [st.verdict(st.paired_differences(*simulate(rng, 0.0), n_boot=1000, seed=r).ci95, "lower")
                for r in range(200)]
    assert verdicts.count(st.INCONCLUSIVE) / 200 >= 0.90


def test_large_effects_are_reproduced_or_contradicted():
    rng = np.random.default_rng(3)
    a, b = simulate(rng, -2.0)                  # B clearly lower (better) than A
    effect = st.paired_differences(a, b)
    assert effect.ci95[1] < 0
    assert st.verdict(effect.ci95, "lower") == st.REPRODUCED
    assert st.verdict(effect.ci95, "higher") == st.CONTRADICTED
    a, b = simulate(rng, +2.0)
    assert st.verdict(st.paired_differences(a, b).ci95, "lower") == st.CONTRADICTED


def test_no_double_counting_without_seed_variation():
    """Seeds with equal means (per-value noise only): the interval is that of a plain bootstrap
    over images; the per-value noise is not counted a second time at the seed level."""
    rng = np.random.default_rng(4)
    a, b = simulate(rng, 0.0, seed_sd=0.0)
    a, b = (x - (x.mean(1) - x.mean())[:, None] for x in (a, b))
    lo, hi = st.paired_differences(a, b, small_sample=False).ci95
    d = b.mean(0) - a.mean(0)
    picks = np.random.default_rng(0).integers(0, d.size, (4000, d.size))
    ref_lo, ref_hi = np.quantile(d[picks].mean(1), [0.025, 0.975])
    assert (hi - lo) == pytest.approx(ref_hi - ref_lo, rel=0.1)


def test_seed_variation_widens_the_interval():
    rng = np.random.default_rng(5)
    a, b = simulate(rng, 0.0, seed_sd=0.0)
    quiet = st.paired_differences(a, b).ci95
    shifted = a + np.array([[-1.0], [0.0], [1.0]])       # the same images, seeds far apart
    loud = st.paired_differences(shifted, b).ci95
    assert loud[1] - loud[0] > 2 * (quiet[1] - quiet[0])


def test_estimates_means_relative_and_determinism():
    rng = np.random.default_rng(6)
    a, b = simulate(rng, -1.0, seeds=4)
    b = b[:2]                                            # arms may have different numbers of seeds
    effect = st.paired_differences(a, b, seed=7)
    assert effect.diff == pytest.approx(b.mean() - a.mean())
    assert effect.means == pytest.approx((a.mean(), b.mean()))
    assert effect.relative == pytest.approx((b.mean() - a.mean()) / a.mean())
    assert effect.n_seeds == (4, 2) and effect.n_images == 100
    assert st.paired_differences(a, b, seed=7) == effect
    rel = st.relative_effect(a, b, seed=7)
    assert rel.estimate == pytest.approx(effect.relative)
    assert rel.ci95[0] < rel.estimate < rel.ci95[1]


def test_single_seed_degenerates_to_images():
    rng = np.random.default_rng(7)
    a, b = simulate(rng, -1.0, seeds=1)
    widened = st.paired_differences(a, b, small_sample=True)
    plain = st.paired_differences(a, b, small_sample=False)
    assert widened == plain                              # no seed level at all
    assert widened.n_seeds == (1, 1) and all(math.isfinite(v) for v in widened.ci95)
    assert st.verdict(widened.ci95, "lower", n_images=widened.n_images) == st.REPRODUCED
    one_dim = st.paired_differences(a[0], b[0])          # (n_images,) is one seed
    assert one_dim == plain


def test_fewer_than_two_images_is_inconclusive():
    effect = st.paired_differences([[1.0], [1.1]], [[5.0], [5.2]])
    assert effect.n_images == 1
    assert all(math.isnan(v) for v in effect.ci95)
    assert st.verdict(effect.ci95, "higher", n_images=effect.n_images) == st.INCONCLUSIVE
    assert st.verdict((1.0, 2.0), "higher", n_images=1) == st.INCONCLUSIVE


def test_paired_seeds_and_input_checks():
    rng = np.random.default_rng(8)
    runs = rng.normal(0, 1, (3, 50))
    trans, fg = runs + 3.0 + rng.normal(0, 0.1, (3, 50)), runs
    effect = st.paired_differences(fg, trans, paired_seeds=True)
    assert st.verdict(effect.ci95, "higher") == st.REPRODUCED
    with pytest.raises(ValueError):
        st.paired_differences(fg, trans[:2], paired_seeds=True)
    with pytest.raises(ValueError):
        st.paired_differences(fg, trans[:, :40])
    with pytest.raises(ValueError):
        st.paired_differences([[1.0, math.nan]], [[1.0, 2.0]])


def test_one_interval_is_fast():
    a, b = simulate(np.random.default_rng(9), 0.2)
    st.paired_differences(a, b)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        st.paired_differences(a, b)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05


# --------------------------------------------------------------------------------------------
# ratios
# --------------------------------------------------------------------------------------------

def test_share_of_change():
    rng = np.random.default_rng(10)
    image = rng.gamma(2.0, 5.0, 80)
    bg_a = image + 8.0 + rng.normal(0, 1, (3, 80))
    rest_a = image + rng.normal(0, 1, (3, 80))
    bg_b = image + 1.0 + rng.normal(0, 1, (3, 80))       # background: -7
    rest_b = image - 2.0 + rng.normal(0, 1, (3, 80))     # elsewhere:  -2  -> share 7 / 9
    effect = st.share_of_change(bg_a, bg_b, bg_a + rest_a, bg_b + rest_b)
    assert effect.estimate == pytest.approx(7 / 9, abs=0.05)
    assert effect.ci95[0] < effect.estimate < effect.ci95[1]
    assert effect.denominator_ci95[0] > 0
    assert st.ratio_verdict(effect, "higher", 0.5) == st.REPRODUCED
    # no drop of the total: the share means nothing -> inconclusive
    flat = st.share_of_change(bg_a, bg_a + 0.01, bg_a + rest_a, bg_a + rest_a + rng.normal(0, 1, (3, 80)))
    assert st.ratio_verdict(flat, "higher", 0.5) == st.INCONCLUSIVE


def test_gap_closed():
    rng = np.random.default_rng(11)
    image = rng.gamma(2.0, 5.0, 80)
    arm = lambda shift: image + shift + rng.normal(0, 1, (3, 80))  # noqa: E731
    worst, candidate, best = arm(20.0), arm(4.0), arm(0.0)
    effect = st.gap_closed(worst, candidate, best)
    assert effect.estimate == pytest.approx(0.8, abs=0.03)
    assert st.ratio_verdict(effect, "higher", 0.74) == st.REPRODUCED
    assert st.ratio_verdict(effect, "higher", 0.95) == st.CONTRADICTED
    assert effect.n_seeds == (3, 3, 3)


def test_group_medians_and_binomial_interval():
    rng = np.random.default_rng(12)
    observed, reps = st.group_medians([rng.normal(0, 1, (40, 2)), rng.normal(5, 1, (30, 2)), np.ones((1, 2))],
                                      n_boot=500)
    assert observed.shape == (3, 2) and reps.shape == (500, 3, 2)
    assert np.isnan(reps[:, 2]).all()                    # one item: no interval
    assert st.binomial_interval(0, 10) == pytest.approx((0.0, 0.3085), abs=1e-4)
    assert st.binomial_interval(10, 10) == pytest.approx((0.6915, 1.0), abs=1e-4)
    lo, hi = st.binomial_interval(28, 33)
    assert lo < 28 / 33 < hi
    assert all(math.isnan(v) for v in st.binomial_interval(0, 0))


# --------------------------------------------------------------------------------------------
# verdict rules
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ci, expect, threshold, wanted", [
    ((-2.0, -1.0), "lower", 0.0, st.REPRODUCED),
    ((-2.0, -1.0), -1, 0.0, st.REPRODUCED),
    ((-2.0, -1.0), "higher", 0.0, st.CONTRADICTED),
    ((1.0, 2.0), "higher", 0.0, st.REPRODUCED),
    ((1.0, 2.0), +1, 0.0, st.REPRODUCED),
    ((1.0, 2.0), "lower", 0.0, st.CONTRADICTED),
    ((-1.0, 1.0), "lower", 0.0, st.INCONCLUSIVE),
    ((0.0, 1.0), "higher", 0.0, st.INCONCLUSIVE),          # touching 0
    ((-1.0, 0.0), "lower", 0.0, st.INCONCLUSIVE),          # touching 0
    ((1e-12, 1.0), "higher", 0.0, st.REPRODUCED),
    ((-1.0, -1e-12), "higher", 0.0, st.CONTRADICTED),
    ((0.6, 0.9), "higher", 0.5, st.REPRODUCED),            # a share above one half
    ((0.5, 0.9), "higher", 0.5, st.INCONCLUSIVE),
    ((0.2, 0.45), "higher", 0.5, st.CONTRADICTED),
    ((math.nan, math.nan), "higher", 0.0, st.INCONCLUSIVE),
    ((None, None), "lower", 0.0, st.INCONCLUSIVE),
])
def test_verdict_boundaries(ci, expect, threshold, wanted):
    assert st.verdict(ci, expect, threshold) == wanted


def test_verdict_rejects_unknown_direction():
    with pytest.raises(ValueError):
        st.verdict((1, 2), "better")


def test_combine():
    R, C, I, N = st.REPRODUCED, st.CONTRADICTED, st.INCONCLUSIVE, st.NOT_RUN
    assert st.combine([R, R, R]) == R
    assert st.combine([R, I, R]) == I
    assert st.combine([R, C, R]) == C
    assert st.combine([]) == N and st.combine([N, N]) == N
    assert st.combine([R, R, N]) == R
    # at least 4 of 5
    assert st.combine([R, R, R, R, C], k=4) == R
    assert st.combine([R, R, R, I, C], k=4) == I
    assert st.combine([R, R, R, C, C], k=4) == C
    assert st.combine([R, R, R], k=4) == I               # too few metrics to show 4


def test_margin():
    assert st.margin((1.0, 2.0), "higher") == 1.0
    assert st.margin((-3.0, -1.0), "lower") == 1.0
    assert st.margin((0.6, 0.9), "higher", 0.5) == pytest.approx(0.1)
