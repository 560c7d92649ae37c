"""The domain-gap meter on constructed images whose noise, blur and resolution are known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from gfm.compose import discrepancy

H = W = 160


def _smooth_texture(seed: int, amplitude: float = 40.0) -> np.ndarray:
    """Sinusoids, a ramp and broad blobs: texture that the noise estimator must ignore."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:H, :W].astype(float)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 3)), (0, 0), 6)
    blobs *= amplitude / blobs.std()
    waves = np.stack([np.sin(2 * np.pi * x / 23 + c) * np.cos(2 * np.pi * y / 31) for c in range(3)], -1)
    return 110 + amplitude * waves + blobs + 0.15 * x[..., None]


def _natural_texture(seed: int) -> np.ndarray:
    """1/f-amplitude random texture (natural-image statistics) in 8 bits."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.fftfreq(W)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    channels = []
    for _ in range(3):
        field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((H, W))) / radius))
        channels.append(128 + 35 * (field - field.mean()) / field.std())
    return np.stack(channels, -1)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _down_up(image: np.ndarray, factor: int) -> np.ndarray:
    small = cv2.resize(image, (W // factor, H // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)


def _disc_alpha(radius: int = 50) -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    alpha = np.zeros((H, W), np.float64)
    alpha[np.hypot(y - H / 2, x - W / 2) < radius] = 1.0
    return _u8(255 * cv2.GaussianBlur(alpha, (0, 0), 2))


@pytest.mark.parametrize("sigma", [3.0, 10.0, 20.0])
@pytest.mark.parametrize("base", ["flat", "textured"])
@pytest.mark.parametrize("estimator", ["mad", "mean"])
def test_noise_level_recovers_known_sigma(sigma, base, estimator):
    rng = np.random.default_rng(int(sigma))
    clean = np.full((H, W, 3), 120.0) if base == "flat" else _smooth_texture(1)
    noisy = _u8(clean + rng.normal(0, sigma, clean.shape))
    assert discrepancy.noise_level(noisy, estimator=estimator) == pytest.approx(sigma, rel=0.15)


def test_noise_level_restricted_to_a_region():
    rng = np.random.default_rng(0)
    image = _smooth_texture(2)
    left = np.zeros((H, W), bool)
    left[:, : W // 2] = True
    image[left] += rng.normal(0, 15, image[left].shape)
    image[~left] += rng.normal(0, 4, image[~left].shape)
    image = _u8(image)
    assert discrepancy.noise_level(image, left) == pytest.approx(15, rel=0.15)
    assert discrepancy.noise_level(image, ~left) == pytest.approx(4, rel=0.15)
    # float input in [0, 1] is measured in the same 8-bit units
    assert discrepancy.noise_level(image / 255.0, left) == pytest.approx(discrepancy.noise_level(image, left), rel=0.05)


def test_too_small_region_gives_nan():
    image = _u8(_smooth_texture(0))
    mask = np.zeros((H, W), bool)
    mask[10:14, 10:14] = True
    assert math.isnan(discrepancy.noise_level(image, mask))
    assert math.isnan(discrepancy.sharpness(image, mask))
    assert math.isnan(discrepancy.effective_resolution(image, mask))


def test_sharpness_drops_monotonically_with_blur_kernel():
    image = _u8(_natural_texture(3))
    values = [discrepancy.sharpness(image)] + [discrepancy.sharpness(cv2.blur(image, (k, k))) for k in (3, 5, 9, 15)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_sharpness_matches_direct_laplacian_variance():
    image = _u8(_natural_texture(4))[..., 0]
    g = image.astype(float)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    assert discrepancy.sharpness(image) == pytest.approx(lap.var(), rel=1e-9)


def test_effective_resolution_drops_after_down_up_sampling():
    image = _u8(_natural_texture(5))
    full, half, quarter = (discrepancy.effective_resolution(im) for im in (image, _down_up(image, 2), _down_up(image, 4)))
    assert full > 2 * half > 4 * quarter > 0, (full, half, quarter)


def test_effective_resolution_of_white_noise_matches_the_filter_response():
    # white noise has a flat spectrum: the expected fraction is the mean of |1 - H(u)H(v)|² over
    # the frequency plane, H the half-band filter's response (0.75 for an ideal filter)
    taps = 8
    n = np.arange(-taps, taps + 1)
    h = 0.5 * np.sinc(0.5 * n) * np.hamming(2 * taps + 1)
    h /= h.sum()
    response = np.real(np.exp(-2j * np.pi * np.outer(np.linspace(-0.5, 0.5, 512), n)) @ h)
    expected = np.mean(np.abs(1 - np.outer(response, response)) ** 2)
    noise = np.random.default_rng(6).normal(0.5, 0.1, (256, 256))
    assert 0.65 < expected < 0.75
    assert discrepancy.effective_resolution(noise, taps=taps) == pytest.approx(expected, rel=0.03)


def test_region_masks_stay_away_from_the_boundary():
    alpha = _disc_alpha()
    fg, bg = discrepancy.region_masks(alpha, margin=6)
    assert fg.any() and bg.any()
    assert (alpha[fg] == 255).all() and (alpha[bg] == 0).all()
    distance_to_transition = cv2.distanceTransform(((alpha > 0) & (alpha < 255)).__invert__().astype(np.uint8), cv2.DIST_L2, 5)
    assert distance_to_transition[fg | bg].min() > 6
    with pytest.raises(ValueError, match="alpha"):
        discrepancy.region_masks(np.zeros((4, 4, 3)))


def test_noisy_sharp_foreground_on_clean_blurred_background_has_positive_gaps():
    rng = np.random.default_rng(7)
    alpha = _disc_alpha()
    fg = _natural_texture(8) + rng.normal(0, 8, (H, W, 3))
    bg = cv2.blur(_natural_texture(9), (7, 7))
    a = alpha[..., None] / 255.0
    composite = _u8(a * fg + (1 - a) * bg)
    gaps = discrepancy.measure(composite, alpha)
    assert gaps["noise_fg"] > gaps["noise_bg"]
    assert gaps["noise_gap"] > 1.0
    assert gaps["sharpness_gap"] > 1.0
    assert gaps["resolution_gap"] > 0.5


def test_one_noise_realisation_and_one_blur_over_the_whole_frame_gives_no_gap():
    rng = np.random.default_rng(10)
    alpha = _disc_alpha()
    a = alpha[..., None] / 255.0
    frame = a * _natural_texture(11) + (1 - a) * _natural_texture(12)
    photo = _u8(cv2.blur(frame, (3, 3)) + rng.normal(0, 8, frame.shape))
    gaps = discrepancy.measure(photo, alpha)
    assert abs(gaps["noise_gap"]) < 0.1
    assert abs(gaps["sharpness_gap"]) < 0.25
    assert abs(gaps["resolution_gap"]) < 0.25


def test_domain_gap_table_and_summary():
    alpha = _disc_alpha()
    images = [_u8(_natural_texture(s)) for s in (13, 14)]
    table = discrepancy.domain_gap_table(((im, alpha) for im in images), "real", names=["a", "b"])
    assert list(table["name"]) == ["a", "b"] and (table["label"] == "real").all()
    assert table.loc[0, "noise_gap"] == pytest.approx(discrepancy.measure(images[0], alpha)["noise_gap"])
    table2 = discrepancy.domain_gap_table([(images[0], alpha)], "coco")
    summary = discrepancy.gap_summary(__import__("pandas").concat([table, table2]))
    assert list(summary.index) == ["real", "coco"]
    assert summary.loc["real", "noise_gap_vs_real"] == 0.0
    assert summary.loc["coco", "n"] == 1
    vs = [summary.loc["coco", f"{m}_gap_vs_real"] for m in discrepancy.MEASURES]
    assert summary.loc["coco", "distance_to_real"] == pytest.approx(np.mean(np.abs(vs)))
    fig = discrepancy.domain_gap_figure(__import__("pandas").concat([table, table2]))
    assert len(fig.axes) == 3


def test_domain_gap_figure_skips_unmeasurable_images():
    """A matte too small for its fg/bg regions gives NaN measures; the figure leaves them out."""
    images = [_u8(_natural_texture(s)) for s in (15, 16)]
    table = discrepancy.domain_gap_table(((im, _disc_alpha()) for im in images), "real")
    tiny = np.zeros((H, W), np.uint8)
    tiny[70:90, 70:90] = 255  # a 20-px square: no region survives a 10-px margin
    empty = discrepancy.domain_gap_table([(images[0], tiny)], "coco")
    assert empty.filter(like="_gap").isna().all().all()
    fig = discrepancy.domain_gap_figure(__import__("pandas").concat([table, empty]), order=["real", "coco"])
    assert len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["real", "coco"]


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="estimator"):
        discrepancy.noise_level(np.zeros((8, 8)), estimator="median")
    with pytest.raises(ValueError, match="mask"):
        discrepancy.sharpness(np.zeros((8, 8)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="same size"):
        discrepancy.measure(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 9), np.uint8))
    with pytest.raises(ValueError, match="image"):
        discrepancy.noise_level(np.zeros((8, 8), np.int32))


@pytest.mark.parametrize("sigma", [0.8, 1.3, 2.2])
def test_low_noise_on_uint8_is_not_quantised(sigma):
    rng = np.random.default_rng(17)
    noisy = _u8(np.full((256, 256), 120.0) + rng.normal(0, sigma, (256, 256)))
    # rounding to integers adds its own variance 1/12
    assert discrepancy.noise_level(noisy) == pytest.approx(math.sqrt(sigma ** 2 + 1 / 12), rel=0.1)


def test_folder_gap_table_matches_files_by_name(tmp_path):
    from gfm.core.io import write_image

    alpha = _disc_alpha()
    images = {"b": _u8(_natural_texture(20)), "a": _u8(_natural_texture(21))}
    for name, image in images.items():
        write_image(tmp_path / "image" / f"{name}.png", image)
        write_image(tmp_path / "alpha" / f"{name}.png", alpha)
    table = discrepancy.folder_gap_table(tmp_path / "image", tmp_path / "alpha", "rssn", limit=1)
    assert list(table["name"]) == ["a"] and list(table["label"]) == ["rssn"]
    assert table.loc[0, "sharpness_gap"] == pytest.approx(discrepancy.measure(images["a"], alpha)["sharpness_gap"])
    (tmp_path / "alpha" / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match="a.png"):
        discrepancy.folder_gap_table(tmp_path / "image", tmp_path / "alpha", "rssn")
