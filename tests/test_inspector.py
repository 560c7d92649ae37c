"""The composition-artifact inspector: the pure `inspect`, its figures and the live widget."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from gfm.compose import discrepancy
from gfm.ui import inspector  # noqa: E402
from gfm.ui.inspector import BackgroundItem, ForegroundItem, Settings  # noqa: E402

H, W = 72, 88


def _texture(seed: int, blur: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 3)), (0, 0), blur)
    return np.clip(np.rint(128 + 45 * field / field.std()), 0, 255).astype(np.uint8)


def _alpha() -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    hard = (np.hypot(y - H / 2, x - W / 3) < 22).astype(np.float64)
    return np.clip(np.rint(255 * cv2.GaussianBlur(hard, (0, 0), 1.5)), 0, 255).astype(np.uint8)


@pytest.fixture()
def items():
    alpha = _alpha()
    a = alpha[..., None] / 255.0
    photo = np.clip(np.rint(a * _texture(1) + (1 - a) * cv2.blur(_texture(2), (5, 5))), 0, 255).astype(np.uint8)
    fg = ForegroundItem("photo", photo, alpha)
    bgs = [BackgroundItem("bg_a", _texture(3)), BackgroundItem("bg_b", _texture(4, blur=3.0))]
    return fg, bgs


def test_plain_composite_keeps_the_background_where_alpha_is_zero(items):
    fg, (bg, _) = items
    composite, zoom, measures = inspector.inspect(fg, bg, Settings(fg_method="naive"))
    assert composite.dtype == np.uint8 and composite.shape == (H, W, 3)
    outside = fg.alpha == 0
    assert np.abs(composite[outside].astype(int) - bg.image[outside].astype(int)).max() <= 1
    inside = fg.alpha == 255
    assert np.abs(composite[inside].astype(int) - fg.image[inside].astype(int)).max() <= 1
    y0, x0, size = measures["window"]
    np.testing.assert_array_equal(zoom, composite[y0:y0 + size, x0:x0 + size])
    expected = discrepancy.measure(composite, fg.alpha)
    assert measures["noise_gap"] == pytest.approx(expected["noise_gap"])


def test_blur_lowers_background_sharpness_and_noise_raises_noise_level(items):
    fg, (bg, _) = items
    plain = inspector.inspect(fg, bg, Settings(fg_method="naive"), margin=4)[2]
    blurred = inspector.inspect(fg, bg, Settings(fg_method="naive", blur_kernel=7), margin=4)[2]
    noisy = inspector.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=20.0), margin=4)[2]
    assert blurred["sharpness_bg"] < 0.2 * plain["sharpness_bg"]
    assert blurred["sharpness_fg"] == pytest.approx(plain["sharpness_fg"])
    assert blurred["sharpness_gap"] > plain["sharpness_gap"] + 1.0
    assert noisy["noise_fg"] > plain["noise_fg"] + 5 and noisy["noise_bg"] > plain["noise_bg"] + 5


def test_noise_is_reproducible_by_seed(items):
    fg, (bg, _) = items
    one = inspector.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=1))[0]
    same = inspector.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=1))[0]
    other = inspector.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=2))[0]
    np.testing.assert_array_equal(one, same)
    assert not np.array_equal(one, other)


def test_denoise_lowers_the_noise_of_a_noisy_background(items):
    fg, _ = items
    rng = np.random.default_rng(5)
    smooth = cv2.GaussianBlur(_texture(6), (0, 0), 3)
    noisy_bg = BackgroundItem("noisy", np.clip(smooth + rng.normal(0, 15, smooth.shape), 0, 255).astype(np.uint8))
    plain = inspector.inspect(fg, noisy_bg, Settings(fg_method="naive"), margin=4)[2]
    clean = inspector.inspect(fg, noisy_bg, Settings(fg_method="naive", denoise=True, denoiser="nlm"), margin=4)[2]
    assert clean["noise_bg"] < 0.6 * plain["noise_bg"]


def test_boundary_window_finds_the_transition():
    alpha = np.zeros((100, 120), np.uint8)
    alpha[:, 80:] = 255
    alpha[40:60, 70:80] = 128  # the only soft pixels
    y0, x0, size = inspector.boundary_window(alpha, 30)
    assert size == 30
    assert y0 <= 40 and y0 + size >= 60 and x0 <= 70 and x0 + size >= 80
    hard = np.zeros((50, 50), np.uint8)
    hard[:, 25:] = 255
    y0, x0, size = inspector.boundary_window(hard, 10)
    assert x0 <= 25 <= x0 + size
    assert inspector.boundary_window(np.zeros((50, 60), np.uint8), 100) == (0, 5, 50)


def test_measures_table_has_composite_and_real_columns(items):
    fg, (bg, _) = items
    measures = inspector.inspect(fg, bg, Settings(fg_method="naive"))[2]
    real = discrepancy.measure(fg.image, fg.alpha)
    table = inspector.measures_table(measures, real)
    assert list(table.index) == list(discrepancy.MEASURES)
    assert table.loc["noise", "real gap"] == pytest.approx(real["noise_gap"])
    assert table.loc["sharpness", "composite bg"] == pytest.approx(measures["sharpness_bg"])


def test_static_and_fig3_figures(items):
    fg, (bg_a, bg_b) = items
    fig = inspector.static_inspector_figure(fg, bg_a, [fg], fg_method="naive", blur_kernel=5, noise_sigma=10)
    assert len(fig.axes) == 15
    fig3 = inspector.fig3_route_comparison(fg, {"coco": bg_b.image, "bg20k": bg_a}, fg_method="naive", blur_kernel=5,
                                           panels=("original", "coco", "bg20k", "rssn_blur", "rssn"))
    assert len(fig3.axes) == 10
    with pytest.raises(ValueError, match="coco"):
        inspector.fig3_route_comparison(fg, {"bg20k": bg_a}, fg_method="naive", panels=("coco",))
    with pytest.raises(ValueError, match="panels"):
        inspector.fig3_route_comparison(fg, {"bg20k": bg_a}, panels=("nope",))


def test_foreground_error_table_scores_each_method(items):
    fg, _ = items
    table = inspector.foreground_error_table([fg], {"photo": fg.image}, methods=("naive", "premultiplied"))
    assert list(table["method"]) == ["naive", "premultiplied"]
    # the photo itself is the "true" F here: naive (F = I) is exact, α·I is not
    assert table.loc[0, "mse"] == 0.0 and table.loc[1, "mse"] > 0.0
    assert len(inspector.foreground_error_figure(table).axes) == 2
    with pytest.raises(ValueError, match="photo"):
        inspector.foreground_error_table([fg], {}, methods=("naive",))


def test_widget_recomputes_when_a_control_changes(items):
    fg, bgs = items
    widget = inspector.build_inspector([fg], bgs, [fg], fg_methods=("naive",), blur_kernels=(0, 5, 9),
                                       noise_sigmas=(0.0, 10.0))
    first = widget.result
    assert first["settings"] == Settings(fg_method="naive")
    widget.controls["blur_kernel"].value = 9
    blurred = widget.result
    assert blurred["settings"].blur_kernel == 9
    assert blurred["measures"]["sharpness_bg"] < first["measures"]["sharpness_bg"]
    assert not np.array_equal(blurred["composite"], first["composite"])
    widget.controls["noise_sigma"].value = 10.0
    assert widget.result["measures"]["noise_fg"] > blurred["measures"]["noise_fg"]
    widget.controls["background"].value = "bg_b"
    assert not np.array_equal(widget.result["composite"], blurred["composite"])
    assert widget.result["reference"]["noise_gap"] == pytest.approx(discrepancy.measure(fg.image, fg.alpha)["noise_gap"])


def test_bad_items_are_rejected_with_the_name():
    with pytest.raises(ValueError, match="'x'.*RGB uint8"):
        ForegroundItem("x", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="'y'.*alpha"):
        ForegroundItem("y", np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint8))
    with pytest.raises(ValueError, match="backgrounds"):
        inspector.build_inspector([("f", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))], [])
