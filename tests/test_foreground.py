"""Foreground estimation (gfm.compose.foreground): Levin et al.'s closed form vs the naive estimates."""

from __future__ import annotations

import numpy as np
import pytest

from gfm.compose.foreground import METHODS, estimate_foreground, foreground_error


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
