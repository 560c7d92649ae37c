"""Foreground estimation (gfm.compose.foreground): Levin et al.'s closed form vs the naive estimates."""

from __future__ import annotations

import numpy as np
import pytest

from gfm.compose.foreground import METHODS, colour_bleeding, estimate_foreground, foreground_error


def _synthetic(size=48):
    """A smooth foreground over a smooth, differently coloured background with a soft matte."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    fg = np.stack([0.8 - 0.3 * yy, 0.6 + 0.2 * xx, 0.2 + 0.1 * xx * yy], axis=2)
    bg = np.stack([0.1 + 0.2 * xx, 0.2 * np.ones_like(xx), 0.9 - 0.4 * yy], axis=2)
    radius = np.hypot(yy - 0.5, xx - 0.5)
    alpha = np.clip((0.35 - radius) / 0.2, 0.0, 1.0)  # opaque core, wide soft ring
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return image, alpha, fg


def test_naive_methods_are_the_paper_baselines():
    image, alpha, _ = _synthetic(16)
    np.testing.assert_allclose(estimate_foreground(image, alpha, "naive"), image, atol=1e-6)
    np.testing.assert_allclose(estimate_foreground(image, alpha, "premultiplied"),
                               image * alpha[..., None], atol=1e-6)
    u8 = estimate_foreground((image * 255).astype(np.uint8), (alpha * 255).astype(np.uint8), "naive")
    assert u8.dtype == np.float32 and u8.max() <= 1.0


def test_foreground_error_hand_case():
    true = np.zeros((2, 2, 3))
    est = true.copy()
    est[0, 0] = 0.5  # alpha 1 pixel: squared error 0.25 per channel
    est[0, 1] = 1.0  # alpha 0 pixel: ignored
    alpha = np.array([[1.0, 0.0], [0.5, 0.5]])
    err = foreground_error(est, true, alpha)
    assert err["pixels"] == 3
    np.testing.assert_allclose(err["mse"], 0.25 * 1.0 / (1.0 + 0.5 + 0.5))
    np.testing.assert_allclose(err["sad"], 3 * 0.5 / 1000)
    assert err["mse_transition"] == 0.0
    assert foreground_error(true, true, alpha)["mse"] == 0.0


def test_rejects_bad_inputs():
    image, alpha, _ = _synthetic(8)
    with pytest.raises(ValueError, match="method"):
        estimate_foreground(image, alpha, "poisson")
    with pytest.raises(ValueError, match="alpha"):
        estimate_foreground(image, alpha[:-1], "naive")
    with pytest.raises(ValueError, match="dtype"):
        estimate_foreground(image, alpha.astype(np.int32), "naive")
    assert set(METHODS) == {"cf", "ml", "naive", "premultiplied"}


@pytest.mark.slow  # pymatting compiles its numba kernels on first use (~1.5 min, cached afterwards)
def test_closed_form_and_multilevel_beat_the_naive_estimate():
    image, alpha, fg = _synthetic()
    errors = {m: foreground_error(estimate_foreground(image, alpha, m), fg, alpha)["mse_transition"]
              for m in METHODS}
    assert errors["cf"] < 0.1 * errors["naive"], errors
    assert errors["ml"] < 0.1 * errors["naive"], errors
    assert errors["naive"] < errors["premultiplied"], errors
    bleeding = {m: colour_bleeding(estimate_foreground(image, alpha, m), image, alpha) for m in METHODS}
    assert abs(bleeding["cf"]) < 0.05 * bleeding["naive"] and abs(bleeding["ml"]) < 0.05 * bleeding["naive"], bleeding


def test_colour_bleeding_hand_case():
    """Uniform layers: F = I carries the old background's share 1 - alpha, the true F none."""
    fg, old_bg = np.array([0.9, 0.2, 0.1]), np.array([0.1, 0.3, 0.8])
    alpha = np.tile(np.array([1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]), (3, 1))
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * old_bg
    true_f = np.broadcast_to(fg, image.shape)
    band = (alpha > 0) & (alpha < 1)
    expected = (alpha * (1 - alpha))[band].sum() / alpha[band].sum()  # |d|^2 is the same everywhere
    assert colour_bleeding(image, image, alpha) == pytest.approx(expected)
    assert colour_bleeding(true_f, image, alpha) == pytest.approx(0.0, abs=1e-6)
    assert colour_bleeding(np.broadcast_to(old_bg, image.shape), image, alpha) == pytest.approx(1.0)
    # uint8 layers give the same share up to rounding
    u8 = lambda x: np.rint(np.asarray(x) * 255).astype(np.uint8)  # noqa: E731
    assert colour_bleeding(u8(image), u8(image), u8(alpha)) == pytest.approx(expected, abs=0.01)


def test_colour_bleeding_is_nan_where_it_cannot_be_measured():
    image = np.full((4, 4, 3), 0.5)
    hard = np.zeros((4, 4))
    hard[:, 2:] = 1.0
    assert np.isnan(colour_bleeding(image, image, hard))  # no transition band
    assert np.isnan(colour_bleeding(image, image, np.full((4, 4), 0.5)))  # no alpha = 1 or 0 pixel
    soft = hard.copy()
    soft[:, 1] = 0.5
    assert np.isnan(colour_bleeding(image, image, soft))  # old background = foreground colour
    with pytest.raises(ValueError, match="share"):
        colour_bleeding(image, image, hard[:3])


@pytest.mark.parametrize("method", ["cf", "ml"])
def test_background_comes_from_the_same_solve_and_recomposes_the_image(method):
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:24, 0:32] / 32.0
    alpha = np.clip(2.0 - 9 * np.hypot(yy - 0.35, xx - 0.5), 0, 1)
    fg = rng.uniform(0.2, 0.8, 3) + 0.1 * xx[..., None]
    bg = rng.uniform(0.2, 0.8, 3) - 0.1 * yy[..., None]
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    F, B = estimate_foreground(image, alpha, method, return_background=True)
    np.testing.assert_array_equal(F, estimate_foreground(image, alpha, method))
    band = (alpha > 0) & (alpha < 1)
    assert B.dtype == np.float32 and B.shape == image.shape
    assert np.abs(alpha[..., None] * F + (1 - alpha[..., None]) * B - image)[band].mean() < 1e-3


def test_background_of_the_naive_methods():
    image = np.full((2, 2, 3), 0.8, np.float32)
    alpha = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    F, B = estimate_foreground(image, alpha, "naive", return_background=True)
    np.testing.assert_array_equal(B, image)
    F, B = estimate_foreground(image, alpha, "premultiplied", return_background=True)
    np.testing.assert_allclose(B, image * (1 - alpha[..., None]))
    np.testing.assert_allclose(F + B, image)
