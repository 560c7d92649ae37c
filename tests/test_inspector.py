"""The composition-artifact inspector: gfm.compose.inspect (the composite a route stores, its measures),
gfm.compose.figures and the live widget gfm.ui.inspector."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from gfm.compose import build, discrepancy, figures, rssn  # noqa: E402
from gfm.compose import inspect as composition  # noqa: E402
from gfm.compose.inspect import BackgroundItem, ForegroundItem, Settings  # noqa: E402
from gfm.core.io import read_image, write_image  # noqa: E402
from gfm.core.layout import Split  # noqa: E402
from gfm.ui import inspector  # noqa: E402

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


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


@pytest.fixture()
def smooth():
    """A photo of a smooth foreground over a smooth, differently coloured background with a wide soft
    ring (the true F known), and a new background: where foreground estimation can succeed."""
    yy, xx = np.mgrid[:H, :W] / np.array([H - 1, W - 1])[:, None, None]
    true_f = np.stack([0.8 - 0.3 * yy, 0.6 + 0.2 * xx, 0.2 + 0.1 * xx * yy], axis=2)
    old_bg = np.stack([0.1 + 0.2 * xx, 0.2 * np.ones_like(xx), 0.9 - 0.4 * yy], axis=2)
    alpha = _u8(np.clip((26 - np.hypot((yy - 0.5) * H, (xx - 0.4) * W)) / 12, 0, 1))
    a = alpha[..., None] / 255.0
    fg = ForegroundItem("smooth", _u8(a * true_f + (1 - a) * old_bg), alpha, _u8(true_f))
    new_bg = BackgroundItem("new", _u8(cv2.GaussianBlur(np.random.default_rng(3).random((H, W, 3)), (0, 0), 4)))
    return fg, new_bg


def test_plain_composite_keeps_the_background_where_alpha_is_zero(items):
    fg, (bg, _) = items
    composite, zoom, measures = composition.inspect(fg, bg, Settings(fg_method="naive"))
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
    plain = composition.inspect(fg, bg, Settings(fg_method="naive"), margin=4)[2]
    blurred = composition.inspect(fg, bg, Settings(fg_method="naive", blur_kernel=7), margin=4)[2]
    noisy = composition.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=20.0), margin=4)[2]
    assert blurred["sharpness_bg"] < 0.2 * plain["sharpness_bg"]
    assert blurred["sharpness_fg"] == pytest.approx(plain["sharpness_fg"])
    assert blurred["sharpness_gap"] > plain["sharpness_gap"] + 1.0
    assert noisy["noise_fg"] > plain["noise_fg"] + 5 and noisy["noise_bg"] > plain["noise_bg"] + 5


def test_noise_is_reproducible_by_seed(items):
    fg, (bg, _) = items
    one = composition.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=1))[0]
    same = composition.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=1))[0]
    other = composition.inspect(fg, bg, Settings(fg_method="naive", noise_sigma=10.0, seed=2))[0]
    np.testing.assert_array_equal(one, same)
    assert not np.array_equal(one, other)


def test_denoise_lowers_the_noise_of_a_noisy_background(items):
    fg, _ = items
    rng = np.random.default_rng(5)
    smooth = cv2.GaussianBlur(_texture(6), (0, 0), 3)
    noisy_bg = BackgroundItem("noisy", np.clip(smooth + rng.normal(0, 15, smooth.shape), 0, 255).astype(np.uint8))
    plain = composition.inspect(fg, noisy_bg, Settings(fg_method="naive"), margin=4)[2]
    clean = composition.inspect(fg, noisy_bg, Settings(fg_method="naive", denoise=True, denoiser="nlm"), margin=4)[2]
    assert clean["noise_bg"] < 0.6 * plain["noise_bg"]


def test_measures_table_has_composite_and_real_columns(items):
    fg, (bg, _) = items
    measures = composition.inspect(fg, bg, Settings(fg_method="naive"))[2]
    real = discrepancy.measure(fg.image, fg.alpha)
    table = composition.measures_table(measures, real)
    assert list(table.index) == list(discrepancy.MEASURES)
    assert table.loc["noise", "real gap"] == pytest.approx(real["noise_gap"])
    assert table.loc["sharpness", "composite bg"] == pytest.approx(measures["sharpness_bg"])


def test_static_and_fig3_figures(items):
    fg, (bg_a, bg_b) = items
    fig = figures.static_inspector_figure(fg, bg_a, [fg], fg_method="naive", blur_kernel=5, noise_sigma=10)
    assert len(fig.axes) == 15
    fig3 = figures.fig3_route_comparison(fg, {"coco": bg_b.image, "bg20k": bg_a}, fg_method="naive", blur_kernel=5,
                                           panels=("original", "coco", "bg20k", "rssn_blur", "rssn"))
    assert len(fig3.axes) == 10
    with pytest.raises(ValueError, match="coco"):
        figures.fig3_route_comparison(fg, {"bg20k": bg_a}, fg_method="naive", panels=("coco",))
    with pytest.raises(ValueError, match="panels"):
        figures.fig3_route_comparison(fg, {"bg20k": bg_a}, panels=("nope",))


def test_foreground_error_table_scores_each_method(items):
    fg, _ = items
    table = composition.foreground_error_table([fg], {"photo": fg.image}, methods=("naive", "premultiplied"))
    assert list(table["method"]) == ["naive", "premultiplied"]
    # the photo itself is the "true" F here: naive (F = I) is exact, α·I is not
    assert table.loc[0, "mse"] == 0.0 and table.loc[1, "mse"] > 0.0
    assert len(figures.foreground_error_figure(table).axes) == 2
    with pytest.raises(ValueError, match="photo"):
        composition.foreground_error_table([fg], {}, methods=("naive",))


def test_foreground_error_table_reads_the_items_true_f(smooth, items):
    fg, _ = smooth
    table = composition.foreground_error_table([fg, items[0]], methods=("naive", "premultiplied"))
    assert list(table.columns) == ["name", "method", "mse", "mse_transition", "sad", "pixels", "bleeding", "seconds"]
    scored = table.set_index(["name", "method"])
    assert 0 < scored.loc[("smooth", "naive"), "mse_transition"] < scored.loc[("smooth", "premultiplied"), "mse_transition"]
    assert scored.loc[("smooth", "naive"), "bleeding"] > 0.3
    unknown = scored.loc["photo"]  # no true F: no errors, but the bleeding
    assert unknown[["mse", "mse_transition", "sad"]].isna().all().all() and unknown["bleeding"].notna().all()


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


def test_settings_fire_exactly_their_steps():
    settings = Settings(fg_method="naive", denoise=True, blur_kernel=5)
    for seed in range(20):
        assert rssn.draw(settings.config(), np.random.default_rng(seed)) == {
            "denoise": True, "blur": True, "kernel": 5, "noise": False, "sigma": 0.0}
    assert rssn.draw(Settings(noise_sigma=7.0).config(), np.random.default_rng(0)) == {
        "denoise": False, "blur": False, "kernel": 0, "noise": True, "sigma": 7.0}
    with pytest.raises(ValueError, match="blur_kernel"):
        Settings(blur_kernel=-1)
    with pytest.raises(ValueError, match="fg_method"):
        Settings(fg_method="poisson")


def test_the_inspector_shows_what_the_route_stores(tmp_path):
    """One draw implementation: a stored composite is the inspector's for the same decisions."""
    rng = np.random.default_rng(8)
    split = Split(tmp_path / "am2k" / "train")
    for i in range(3):
        write_image(split.original / f"f{i}.png", _texture(10 + i, blur=3.0))
        write_image(split.mask / f"f{i}.png", np.roll(_alpha(), 6 * i, axis=1))
    for j in range(4):
        write_image(tmp_path / "bgs" / f"b{j}.png", rng.integers(0, 256, (50 + 10 * j, 70, 3), dtype=np.uint8))
    config = rssn.route_config("rssn", k=3, blur_kernels=(3, 5))
    records = build.build_composites(split, tmp_path / "bgs", tmp_path / "out", "rssn", config=config,
                                     fg_method="naive", denoiser="nlm", seed=3, workers=1, progress=False)
    clean = records[~records.noise]
    assert clean.denoise.any() and clean.blur.any() and records.noise.any()
    fgs = {n: ForegroundItem.from_files(split.image_path(n), split.mask_path(n)) for n in split.names()}
    for row in clean.itertuples():
        settings = Settings(fg_method="naive", denoise=row.denoise, denoiser="nlm", blur_kernel=row.kernel)
        composite = composition.inspect(fgs[row.fg], BackgroundItem.from_file(tmp_path / "bgs" / row.bg), settings)[0]
        np.testing.assert_array_equal(composite, read_image(tmp_path / "out" / "rssn" / "image" / f"{row.name}.png"))


@pytest.mark.slow  # pymatting compiles its numba kernels on first use (cached afterwards)
def test_band_measures_tell_the_foreground_methods_apart(smooth):
    """Issue 14: the fg/bg regions lie away from the transition, where every estimate is the photo,
    so only the transition-band measures change with the foreground method."""
    fg, bg = smooth
    measures = {m: composition.inspect(fg, bg, Settings(fg_method=m), margin=4)[2]
                for m in ("naive", "premultiplied", "ml")}
    for name in discrepancy.MEASURES:
        for part in (*discrepancy.REGIONS, "gap"):
            np.testing.assert_equal(measures["naive"][f"{name}_{part}"], measures["premultiplied"][f"{name}_{part}"])
    assert measures["ml"]["band_error"] < 0.1 * measures["naive"]["band_error"]
    assert measures["naive"]["band_error"] < measures["premultiplied"]["band_error"]
    assert abs(measures["ml"]["band_bleeding"]) < 0.05 and measures["naive"]["band_bleeding"] > 0.3
    table = composition.band_table(measures["naive"])
    assert list(table.index) == list(composition.BAND_MEASURES)
    assert table.loc["band_error", "composite"] == pytest.approx(measures["naive"]["band_error"])


def test_band_error_is_the_difference_from_the_true_f_composite(smooth, items):
    fg, bg = smooth
    settings = Settings(fg_method="naive", blur_kernel=5, noise_sigma=10.0, seed=4)
    composite, _, measures = composition.inspect(fg, bg, settings)
    truth = composition.compose(fg, bg, settings, fg_method=composition.TRUE_F).image
    band = (fg.alpha > 0) & (fg.alpha < 255)
    expected = np.sqrt(np.mean((composite[band].astype(float) - truth[band]) ** 2))
    assert measures["band_error"] == pytest.approx(expected) and expected > 5
    np.testing.assert_array_equal(composite[fg.alpha == 0], truth[fg.alpha == 0])  # same decisions and noise
    unknown, (other, _) = items  # no true F: no error, the bleeding is still measured
    plain = composition.inspect(unknown, other, Settings(fg_method="naive"))[2]
    assert np.isnan(plain["band_error"]) and np.isfinite(plain["band_bleeding"])
    with pytest.raises(ValueError, match="'photo'.*no true F"):
        composition.compose(unknown, other, Settings(), fg_method=composition.TRUE_F)


def test_widget_fg_method_changes_the_band_measures(smooth):
    fg, bg = smooth
    widget = inspector.build_inspector([fg], [bg], fg_methods=("naive", "premultiplied"), blur_kernels=(0,),
                                       noise_sigmas=(0.0,), margin=4)
    naive = widget.result["measures"]
    widget.controls["fg_method"].value = "premultiplied"
    premultiplied = widget.result["measures"]
    assert widget.result["settings"].fg_method == "premultiplied"
    assert premultiplied["noise_gap"] == naive["noise_gap"]
    assert premultiplied["band_error"] > naive["band_error"] + 5
    assert premultiplied["band_bleeding"] != naive["band_bleeding"]
    assert "band_error" in widget.table_output.value


def test_bad_items_are_rejected_with_the_name():
    with pytest.raises(ValueError, match="'x'.*RGB uint8"):
        ForegroundItem("x", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="'y'.*alpha"):
        ForegroundItem("y", np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint8))
    with pytest.raises(ValueError, match="'z'.*true_fg"):
        ForegroundItem("z", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="backgrounds"):
        inspector.build_inspector([("f", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))], [])
