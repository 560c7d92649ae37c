"""Matting metrics: hand-derived small cases, invariances, validation, and parity with recorded
outputs of the official GFM evaluation and of mmeval's DIM port (tests/fixtures/metrics_*.json).

The fixtures hold numbers only; the inputs are regenerated here from the recipes stored beside
them (``make_case``), so the official code is not needed at test time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from gfm.evaluate import gradient, metrics
from gfm.core.trimap import trimap as make_trimap

FIXTURES = Path(__file__).parent / "fixtures"


# --------------------------------------------------------------------------- hand-derived cases

# pred / gt of the SAD-family case; trimap: B on the left column and (0,1), U at (0,2) and (1,1),
# F on the bottom-right block, where gt(2,2) = 0.8 disagrees with the trimap.
PRED = np.array([[0.5, 0, 0], [0, 1, 0.5], [0, 1, 1]])
GT = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 0.8]])
TRIMAP = np.array([[0, 0, 128], [0, 128, 255], [0, 255, 255]], np.uint8)


def test_sad_family_gfm_by_hand():
    out = metrics.evaluate(PRED, GT, TRIMAP)
    # |p − g| = .5 at (0,0), .5 at (1,2), .2 at (2,2): Σ = 1.2, Σ² = .25 + .25 + .04 = .54, 9 pixels
    assert out["sad"] == pytest.approx(1.2 / 1000)
    assert out["mse"] == pytest.approx(0.54 / 9)
    assert out["mad"] == pytest.approx(1.2 / 9)
    # raw prediction on F = {(1,2), (2,1), (2,2)}: .5 + 0 + .2; on B = {(0,0), (0,1), (1,0), (2,0)}: .5
    assert out["sad_fg"] == pytest.approx(0.7 / 1000)
    assert out["sad_bg"] == pytest.approx(0.5 / 1000)
    # forced prediction = [[0,0,0],[0,1,1],[0,1,1]]: only (2,2) differs, by 1 − .8 = .2, though it
    # is in F (official quirk: SAD-TRAN sums over the whole image); |U| = 2
    assert out["sad_trans"] == pytest.approx(0.2 / 1000)
    assert out["mse_trans"] == pytest.approx(0.04 / 2)
    assert out["mad_trans"] == pytest.approx(0.2 / 2)


def test_sad_family_dim_by_hand():
    trimap = np.full((3, 3), 128, np.uint8)
    trimap[0, 0] = 0  # forces pred(0,0) = 0 = gt(0,0); U = the other 8 pixels
    out = metrics.evaluate(PRED, GT, trimap, convention="dim")
    # U errors: .5 at (1,2), .2 at (2,2)
    assert out["sad"] == pytest.approx(0.7 / 1000)
    assert out["mse"] == pytest.approx((0.25 + 0.04) / 8)
    for key in ("mad", "sad_trans", "mse_trans", "mad_trans", "sad_fg", "sad_bg"):
        assert math.isnan(out[key]), key


def test_individual_functions_by_hand():
    mask = TRIMAP == 128
    assert metrics.sad(PRED, GT) == pytest.approx(1.2e-3)
    assert metrics.sad(PRED, GT, TRIMAP == 255, norm=1.0) == pytest.approx(0.7)
    assert metrics.mse(PRED, GT, count=2) == pytest.approx(0.27)
    assert metrics.mad(PRED, GT, mask) == 0.0
    assert metrics.force_known(PRED, TRIMAP).tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]]


# Conn: min(pred, gt) has 1, .65, .65 on the diagonal and 0 elsewhere. With 4-connectivity these
# are three single-pixel components at every t ≤ .6, a tie won by (0,0), the first in raster order;
# (0,0) stays in Ω at every level (l = 1, φ = 1 for both), (1,1) and (2,2) leave at level 1 (l = 0):
# φ(pred) = 1 − 1 = 0, φ(gt) = 1 − .65 = .35 → Conn = 2 · .35 / 1000. (8-connectivity would give
# .8/1000; the tie going to (2,2) would give .35/1000.)
DIAG_PRED = np.eye(3)
DIAG_GT = np.diag([1.0, 0.65, 0.65])


@pytest.mark.parametrize("convention", ["gfm", "dim"])
def test_conn_four_connectivity_and_raster_tie_break(convention):
    trimap = np.full((3, 3), 128, np.uint8)
    out = metrics.evaluate(DIAG_PRED, DIAG_GT, trimap, convention=convention)
    assert out["conn"] == pytest.approx(0.7 / 1000)
    assert metrics.conn(DIAG_PRED, DIAG_GT, convention=convention) == pytest.approx(0.7 / 1000)


def test_conn_dropped_component_by_hand():
    # min(pred, gt): the top pair (1, 1) is the largest component at every level (l = 1, no error);
    # (2,2) = .95 is a separate component, out at level 1 (l = 0): φ(pred) = .05, φ(gt) = 0
    gt = np.array([[1.0, 1, 0], [0, 0, 0], [0, 0, 1]])
    pred = np.array([[1.0, 1, 0], [0, 0, 0], [0, 0, 0.95]])
    assert metrics.conn(pred, gt) == pytest.approx(0.05 / 1000)
    levels = metrics.connectivity_levels(pred, gt)
    assert levels.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_conn_levels_are_float32_thresholds_in_gfm():
    # a ramp (k/11 in raster order) leaves the shrinking component level by level: 4/11 ≈ .36 is
    # out at t_4 = .4, so l = t_3 = 0.30000000000000004, stored in float32 by gfm (official map)
    gt = pred = np.linspace(0, 1, 12).reshape(3, 4)
    gfm_levels = metrics.connectivity_levels(pred, gt)
    dim_levels = metrics.connectivity_levels(pred, gt, convention="dim")
    assert gfm_levels[1, 0] == np.float64(np.float32(0.30000000000000004))
    assert dim_levels[1, 0] == 0.30000000000000004
    assert gfm_levels[2, 3] == dim_levels[2, 3] == 1.0  # in every Ω


def _gauss(sigma, radius):
    x = np.arange(-radius, radius + 1, dtype=float)
    g = np.exp(-(x**2) / (2 * sigma**2))
    return x, g


def test_grad_gfm_impulse_closed_form():
    # impulse far from the borders, gt = 0: the two derivative images are D(a)S(b) and S(a)D(b) with
    # S the sampled Gaussian normalised to sum 1 (radius int(4·1.4 + .5) = 6) and D = −a/σ² S, so
    # Σ‖∇‖² = 2 · ΣD² · ΣS², and Grad = that / 10
    x, g = _gauss(1.4, 6)
    s = g / g.sum()
    d = -x / 1.4**2 * s
    expected = 2 * (d**2).sum() * (s**2).sum() / 10
    pred = np.zeros((29, 29))
    pred[14, 14] = 1.0
    assert metrics.grad(pred, np.zeros_like(pred)) == pytest.approx(expected, rel=1e-5)


def test_grad_dim_impulse_closed_form():
    # the DIM kernels g(row)·dg(col)/‖·‖₂ have unit L2 norm, so an impulse of height 1 (min–max
    # normalised to itself) far from the border gives Σ fx² = Σ fy² = 1; gt = 0 has no gradient
    pred = np.zeros((21, 21))
    pred[10, 10] = 1.0
    trimap = np.full(pred.shape, 128, np.uint8)
    out = metrics.evaluate(pred, np.zeros_like(pred), trimap, convention="dim")
    assert out["grad"] == pytest.approx(2 / 1000)
    # min–max normalisation: an impulse of any height gives the same value
    assert metrics.evaluate(0.3 * pred, np.zeros_like(pred), trimap, convention="dim")["grad"] == pytest.approx(2e-3)


def test_gfm_gradient_magnitude_is_scipy_bit_for_bit():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 9), (5, 3), (7, 14), (40, 33)]:
        alpha = rng.random(shape)
        gx = ndimage.gaussian_filter(alpha, 1.4, order=[1, 0], output=np.float32)
        gy = ndimage.gaussian_filter(alpha, 1.4, order=[0, 1], output=np.float32)
        np.testing.assert_array_equal(gradient.magnitude_gfm(alpha, 1.4), np.sqrt(gx**2 + gy**2))


# --------------------------------------------------------------------------- invariances


def _furry(shape, seed):
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (0.3 * min(h, w))
    gt = np.clip(4 * (1 - r) + 0.6 * ndimage.uniform_filter1d(rng.standard_normal(shape), 5, axis=0), 0, 1)
    gt = np.round(gt * 255) / 255
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 3)
    pred = np.clip(gt + 2.0 * noise * (gt > 0.02) + 0.05 * rng.standard_normal(shape), 0, 1)
    return pred, gt


@pytest.mark.parametrize("convention", ["gfm", "dim"])
def test_identical_mattes_have_no_error(convention):
    pred, gt = _furry((40, 50), 1)
    trimap = make_trimap(gt, kernel_size=5)
    out = metrics.evaluate(gt, gt.copy(), trimap, convention=convention)
    for key, value in out.items():
        assert math.isnan(value) or value == 0.0, key


def test_whole_image_metrics_are_symmetric():
    pred, gt = _furry((37, 41), 2)
    a, b = metrics.evaluate(pred, gt), metrics.evaluate(gt, pred)
    for key in ("sad", "mse", "mad", "grad", "conn"):
        assert a[key] == pytest.approx(b[key], rel=1e-12), key


def test_grad_ignores_constant_shift():
    _, gt = _furry((30, 30), 3)
    gt = 0.2 + 0.6 * gt
    shifted = gt + 0.1
    assert metrics.grad(shifted, gt) < 1e-10
    unknown = np.ones(gt.shape, bool)
    # DIM min–max normalises both mattes first: invariant to any positive affine change
    assert metrics.grad(0.5 * gt + 0.3, gt, unknown, convention="dim") < 1e-20
    assert metrics.grad(shifted, gt, unknown, convention="dim") < 1e-20


def test_conn_forgives_differences_below_the_first_level():
    # pixels of both mattes below t_1 = .1 leave Ω at level 1 with l = 0, and x − l < θ = .15
    rng = np.random.default_rng(4)
    gt = np.zeros((20, 20))
    gt[5:15, 5:15] = 1.0
    pred = gt.copy()
    pred[gt == 0] = rng.uniform(0, 0.099, np.count_nonzero(gt == 0))
    assert metrics.conn(pred, gt) == 0.0
    assert metrics.sad(pred, gt) > 0.0
    # a constant shift of a smooth matte is not forgiven in general
    ramp = np.tile(np.linspace(0, 0.8, 20), (20, 1))
    assert metrics.conn(ramp + 0.2, ramp) > 0.0


def test_conn_matches_direct_definition_on_random_mattes():
    rng = np.random.default_rng(5)
    for trial in range(40):
        shape = tuple(rng.integers(2, 30, 2))
        gt = rng.random(shape)
        if trial % 2:
            gt = ndimage.gaussian_filter(gt, 1.5)
            gt = (gt - gt.min()) / (np.ptp(gt) + 1e-12)
        pred = np.clip(gt + rng.normal(0, 0.3, shape), 0, 1)
        for convention in ("gfm", "dim"):
            expected = _conn_by_definition(pred, gt, convention)
            assert metrics.conn(pred, gt, convention=convention) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def _conn_by_definition(pred, gt, convention, step=0.1, theta=0.15):
    """Straight per-threshold loop: largest 4-connected component, first in raster order on ties."""
    thresholds = np.arange(0, 1.1 if convention == "gfm" else 1 + step, step)
    level = np.full(pred.shape, -1.0)
    four = ndimage.generate_binary_structure(2, 1)
    for i in range(1, len(thresholds)):
        labels, count = ndimage.label((pred >= thresholds[i]) & (gt >= thresholds[i]), structure=four)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        best = 1 + np.flatnonzero(sizes == sizes.max())
        first = [np.flatnonzero(labels.ravel() == b)[0] for b in best]
        omega = labels == best[int(np.argmin(first))]
        level[(level == -1) & ~omega] = thresholds[i - 1]
    level[level == -1] = 1
    if convention == "gfm":
        level = level.astype(np.float32).astype(np.float64)
    phi = [1 - d * (d >= theta) for d in (pred - level, gt - level)]
    return np.abs(phi[0] - phi[1]).sum() / 1000


def test_no_trimap_gives_nan_for_trimap_keys():
    pred, gt = _furry((16, 16), 6)
    out = metrics.evaluate(pred, gt)
    assert set(out) == set(metrics.KEYS)
    assert all(not math.isnan(out[k]) for k in ("sad", "mse", "mad", "grad", "conn"))
    assert all(math.isnan(out[k]) for k in ("sad_trans", "mse_trans", "mad_trans", "sad_fg", "sad_bg"))
    assert all(math.isnan(v) for v in metrics.evaluate(pred, gt, convention="dim").values())


def test_no_unknown_pixel_follows_each_convention():
    pred, gt = _furry((12, 12), 7)
    trimap = np.where(gt > 0.5, 255, 0).astype(np.uint8)
    gfm = metrics.evaluate(pred, gt, trimap)
    assert math.isinf(gfm["mse_trans"]) and math.isinf(gfm["mad_trans"])  # official: Σ / 0
    assert metrics.evaluate(pred, gt, trimap, convention="dim")["mse"] == 0.0  # mmagic


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("pred", "gt", "trimap", "match"),
    [
        (np.zeros((3, 3)), np.zeros((3, 4)), None, "gt must have the shape"),
        (np.full((3, 3), np.nan), np.zeros((3, 3)), None, "pred must be finite"),
        (np.zeros((3, 3)), np.full((3, 3), np.inf), None, "gt must be finite"),
        (np.full((3, 3), 1.5), np.zeros((3, 3)), None, r"pred must lie in \[0, 1\]"),
        (np.zeros((3, 3)), np.full((3, 3), -0.1), None, r"gt must lie in \[0, 1\]"),
        (np.zeros((3, 3, 1)), np.zeros((3, 3, 1)), None, "pred must be a 2-D"),
        (np.zeros((3, 3), np.uint8), np.zeros((3, 3)), None, "divide 8-bit mattes by 255"),
        (np.zeros((3, 3)), np.zeros((3, 3), bool), None, "gt must be a float array"),
        ([[0.0]], np.zeros((1, 1)), None, "pred must be a numpy array"),
        (np.zeros((0, 3)), np.zeros((0, 3)), None, "pred must not be empty"),
        (np.zeros((3, 3)), np.zeros((3, 3)), np.ones((3, 3), np.uint8), r"trimap must only hold 0, 128 and 255, found \[1\]"),
        (np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3)), "trimap must be a uint8"),
        (np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((2, 3), np.uint8), "trimap must have the shape"),
    ],
)
def test_invalid_inputs_raise_value_errors_naming_the_argument(pred, gt, trimap, match):
    with pytest.raises(ValueError, match=match):
        metrics.evaluate(pred, gt, trimap)


def test_invalid_options_raise():
    ok = np.zeros((3, 3))
    with pytest.raises(ValueError, match="convention must be one of"):
        metrics.evaluate(ok, ok, convention="matlab")
    with pytest.raises(ValueError, match="mask must be a boolean"):
        metrics.sad(ok, ok, np.ones((3, 3)))
    with pytest.raises(ValueError, match="mask must have the shape"):
        metrics.conn(ok, ok, np.ones((2, 2), bool))


def test_float32_inputs_are_taken_as_float64():
    pred, gt = _furry((20, 25), 8)
    trimap = make_trimap(gt, kernel_size=5)
    a = metrics.evaluate(pred.astype(np.float32), gt.astype(np.float32), trimap)
    b = metrics.evaluate(pred.astype(np.float32).astype(np.float64), gt.astype(np.float32).astype(np.float64), trimap)
    assert a == b


# --------------------------------------------------------------------------- parity fixtures


def make_case(recipe: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Regenerate (pred, gt, trimap) from a fixture recipe (also used to record the fixtures)."""
    rng = np.random.default_rng(recipe["seed"])
    shape = tuple(recipe["shape"])
    kind = recipe["kind"]
    if kind == "furry":
        pred, gt = _furry(shape, recipe["seed"])
    elif kind == "uniform":
        gt, pred = rng.random(shape), rng.random(shape)
    elif kind == "zeros":
        gt, pred = np.zeros(shape), np.clip(rng.normal(0, 0.2, shape), 0, 1)
    elif kind == "ones":
        gt = pred = np.ones(shape)
    elif kind == "binary":
        gt = (rng.random(shape) > 0.5).astype(float)
        pred = np.roll(gt, 1, axis=1)
    elif kind == "tenths":  # values on and around the thresholds, incl. 153/255 = 0.6
        gt = rng.integers(0, 256, shape) / 255.0
        gt.flat[:4] = [153 / 255, 51 / 255, 102 / 255, 0.7]
        pred = rng.integers(0, 11, shape) / 10.0
    else:
        raise ValueError(f"unknown recipe kind {kind!r}")
    if recipe.get("quantise"):  # 8-bit, as mmagic evaluates
        pred, gt = np.round(pred * 255) / 255, np.round(gt * 255) / 255
    trimap = None
    if recipe.get("trimap") == "random":
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), shape)
    elif recipe.get("trimap") == "from_gt":
        trimap = make_trimap(gt, kernel_size=recipe.get("kernel", 5))
    elif recipe.get("trimap") == "known_only":
        trimap = np.where(gt > 0.5, 255, 0).astype(np.uint8)
    if recipe.get("consistent"):  # gt and pred agree with the trimap on known pixels (mmagic)
        gt, pred = metrics.force_known(gt, trimap), metrics.force_known(pred, trimap)
    return pred, gt, trimap


def _load(name):
    with open(FIXTURES / name) as f:
        return json.load(f)["cases"]


def _assert_matches(ours, reference, keys):
    for key in keys:
        expected = reference[key]
        if expected is None or (isinstance(expected, float) and math.isnan(expected)):
            assert math.isnan(ours[key]), key
        elif math.isinf(expected):
            assert ours[key] == expected, key
        else:
            assert ours[key] == pytest.approx(expected, rel=1e-6, abs=1e-12), key


@pytest.mark.parametrize("case", _load("metrics_official_gfm.json"), ids=lambda c: c["name"])
def test_parity_with_official_gfm_evaluation(case):
    pred, gt, trimap = make_case(case["recipe"])
    _assert_matches(metrics.evaluate(pred, gt, trimap), case["official"], case["official"].keys())


@pytest.mark.parametrize("case", _load("metrics_mmeval_dim.json"), ids=lambda c: c["name"])
def test_parity_with_mmeval_dim_evaluation(case):
    pred, gt, trimap = make_case(case["recipe"])
    ours = metrics.evaluate(pred, gt, trimap, convention="dim")
    _assert_matches(ours, case["mmeval"], case["mmeval"].keys())


# --------------------------------------------------------------------------- the metric lists


def test_metric_lists_are_the_papers_columns():
    """MAIN_METRICS: the four major metrics and MAD (Tables 4-6); TABLE1_METRICS adds SAD-TRAN/FG/BG."""
    assert metrics.MAIN_METRICS == ("sad", "mse", "mad", "grad", "conn")
    assert metrics.TABLE1_METRICS == (*metrics.MAIN_METRICS, "sad_trans", "sad_fg", "sad_bg")
    assert set(metrics.TABLE1_METRICS) <= set(metrics.KEYS)
    assert set(metrics.evaluate(PRED, GT, TRIMAP)) == set(metrics.KEYS)


def test_a_value_just_outside_0_1_is_named_exactly():
    import numpy as np
    import pytest

    from gfm.evaluate import metrics

    pred = np.zeros((4, 5))
    pred[2, 3] = 1 + 1e-9
    with pytest.raises(ValueError, match=r"1 value\(s\) outside, the first 1\.000000001 at row 2, column 3"):
        metrics.sad(pred, np.zeros((4, 5)))
