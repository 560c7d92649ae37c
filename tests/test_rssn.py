"""Composition routes (gfm.compose.rssn): Eq. (1), the RSSN steps, route probabilities; the training sets
(gfm.compose.build) and stage 3 (gfm.compose.stage)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gfm.core.figures import FIGURE_INDEX
from gfm.compose import build, rssn, stage
from gfm.core.config import load_params
from gfm.core.io import read_alpha, read_image, write_image
from gfm.core.layout import COCO, Split

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- Eq. (1) and the three steps


def test_blend_hand_cases():
    fg = np.full((1, 3, 3), 255, np.uint8)
    bg = np.zeros((1, 3, 3), np.uint8)
    alpha = np.array([[0, 128, 255]], np.uint8)
    out = rssn.blend(fg, bg, alpha)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], [0.0, 128 / 255, 1.0], atol=1e-6)
    # float inputs, two colours: I = a F + (1 - a) B per channel
    f = np.array([[[0.2, 0.4, 0.6]]], np.float32)
    b = np.array([[[1.0, 0.0, 0.5]]], np.float32)
    np.testing.assert_allclose(rssn.blend(f, b, np.array([[0.25]])), [[[0.8, 0.1, 0.525]]], atol=1e-6)
    # grey layers and an H×W×1 alpha
    np.testing.assert_allclose(rssn.blend(np.ones((2, 2)), np.zeros((2, 2)), np.full((2, 2, 1), 0.5)), 0.5)


def test_blend_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="share"):
        rssn.blend(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        rssn.blend(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.zeros((4, 4), np.int32))


def test_plain_compose_is_exactly_rounded_eq1():
    rng = np.random.default_rng(3)
    fg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    image, record = rssn.compose(fg, alpha, bg, rssn.ROUTES["bg20k"], np.random.default_rng(0))
    a = alpha[..., None].astype(np.int64)
    n = a * fg + (255 - a) * bg  # I * 255 * 255, exact integers
    expected = (2 * n + 255) // 510  # round(n / 255); n / 255 is never a .5 tie
    np.testing.assert_array_equal(image, expected.astype(np.uint8))
    assert record == {"denoise": False, "blur": False, "kernel": 0, "noise": False, "sigma": 0.0,
                      "denoised_by": ""}


def test_average_blur_is_a_box_mean():
    rng = np.random.default_rng(1)
    image = rng.random((30, 30, 3)).astype(np.float32)
    out = rssn.average_blur(image, 5)
    np.testing.assert_allclose(out[10, 12], image[8:13, 10:15].mean(axis=(0, 1)), atol=1e-6)
    u8 = (image * 255).astype(np.uint8)
    out8 = rssn.average_blur(u8, 4)  # even size: window rows/cols -2..+1 around the pixel
    assert out8.dtype == np.uint8
    np.testing.assert_allclose(out8[15, 15], u8[13:17, 13:17].mean(axis=(0, 1)), atol=0.5 + 1e-9)
    np.testing.assert_array_equal(rssn.average_blur(u8, 1), u8)
    with pytest.raises(ValueError, match="kernel"):
        rssn.average_blur(u8, 0)


def test_add_gaussian_noise_statistics_and_range():
    rng = np.random.default_rng(0)
    image = np.full((200, 200, 3), 128, np.uint8)
    noisy = rssn.add_gaussian_noise(image, 10.0, rng)
    assert noisy.dtype == np.uint8
    diff = noisy.astype(float) - 128
    assert abs(diff.mean()) < 0.2 and abs(diff.std() - 10.0) < 0.2
    dark = rssn.add_gaussian_noise(np.zeros((50, 50, 3), np.uint8), 10.0, rng)
    assert dark.min() == 0 and dark.max() < 60  # clipped, not wrapped around to bright values
    f = rssn.add_gaussian_noise(np.full((100, 100), 0.5, np.float32), 10.0, rng)
    assert f.dtype == np.float32 and abs(f.std() - 10 / 255) < 0.003


def test_resize_to_modes():
    bg = np.zeros((100, 200, 3), np.uint8)
    bg[:, 50:150] = 255  # a white band in the middle half
    assert rssn.resize_to(bg, (40, 60)).shape == (40, 60, 3)
    assert rssn.resize_to(bg, (300, 90, 3)).shape == (300, 90, 3)
    np.testing.assert_array_equal(rssn.resize_to(bg, (100, 200)), bg)
    # cover keeps the aspect ratio: 100×200 -> 50×100, centre 50×50 crop lies inside the band
    cover = rssn.resize_to(bg, (50, 50), mode="cover")
    assert cover.shape == (50, 50, 3) and cover.min() == 255
    stretch = rssn.resize_to(bg, (50, 50))
    assert stretch[:, :10].max() == 0 and stretch[:, 20:30].min() == 255
    assert rssn.resize_to(bg.astype(np.float32) / 255, (10, 10)).dtype == np.float32
    with pytest.raises(ValueError, match="mode"):
        rssn.resize_to(bg, (10, 10), mode="crop")


def test_scale_kernels():
    assert rssn.scale_kernels(rssn.PAPER_BLUR_KERNELS, 360) == (7, 10, 13, 17, 20)
    assert rssn.scale_kernels(rssn.PAPER_BLUR_KERNELS, 1080) == rssn.PAPER_BLUR_KERNELS
    assert rssn.scale_kernels((20,), 10) == (1,)


def test_config_validation_and_overrides():
    with pytest.raises(ValueError, match="p_blur"):
        rssn.RSSNConfig(p_blur=1.5)
    with pytest.raises(ValueError, match="blur_kernels"):
        rssn.RSSNConfig(blur_kernels=())
    with pytest.raises(ValueError, match="route"):
        rssn.route_config("voc")
    cfg = rssn.route_config("rssn_noise", blur_kernels=[7, 10], k=2)
    assert cfg.blur_kernels == (7, 10) and cfg.k == 2
    assert (cfg.use_denoise, cfg.use_blur, cfg.use_noise) == (False, False, True)
    assert rssn.ROUTES["rssn"] == rssn.RSSNConfig()  # paper defaults
    assert set(rssn.ROUTES) == set(rssn.ROUTE_BACKGROUNDS)


# ---------------------------------------------------------------- route probabilities

N_DRAWS = 2000
TOL = 4 * np.sqrt(0.25 / N_DRAWS)  # 4 binomial standard deviations around 0.5


def _fractions(route):
    rng = np.random.default_rng(123)
    records = pd.DataFrame([rssn.draw(rssn.ROUTES[route], rng) for _ in range(N_DRAWS)])
    return records


def test_rssn_fires_each_step_half_the_time_with_kernels_from_the_set():
    records = _fractions("rssn")
    for step in ("denoise", "blur", "noise"):
        assert abs(records[step].mean() - 0.5) < TOL, step
    kernels = records.loc[records.blur, "kernel"]
    assert set(kernels) == set(rssn.PAPER_BLUR_KERNELS)
    assert (records.loc[~records.blur, "kernel"] == 0).all()
    assert (records.loc[records.noise, "sigma"] == 10.0).all() and (records.loc[~records.noise, "sigma"] == 0).all()
    counts = kernels.value_counts()
    assert counts.min() > 0.15 * len(kernels)  # roughly uniform over the 5 sizes
    # the three steps are drawn independently
    assert abs((records.blur & records.noise).mean() - 0.25) < TOL


@pytest.mark.parametrize("route, own", [("rssn_blur", "blur"), ("rssn_denoise", "denoise"),
                                        ("rssn_noise", "noise")])
def test_ablations_fire_only_their_own_step(route, own):
    records = _fractions(route)
    assert abs(records[own].mean() - 0.5) < TOL
    for step in {"denoise", "blur", "noise"} - {own}:
        assert not records[step].any(), step


@pytest.mark.parametrize("route", ["coco", "bg20k"])
def test_plain_routes_fire_nothing(route):
    records = _fractions(route)
    assert not records[["denoise", "blur", "noise"]].any().any()


def test_routes_sharing_a_seed_share_decisions():
    full = pd.DataFrame([rssn.draw(rssn.ROUTES["rssn"], np.random.default_rng(s)) for s in range(200)])
    blur = pd.DataFrame([rssn.draw(rssn.ROUTES["rssn_blur"], np.random.default_rng(s)) for s in range(200)])
    pd.testing.assert_series_equal(full.blur, blur.blur)
    pd.testing.assert_series_equal(full.kernel, blur.kernel)


# ---------------------------------------------------------------- one composite


def _layers(seed=0, size=(36, 44)):
    rng = np.random.default_rng(seed)
    fg = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    alpha = np.clip(rng.normal(128, 90, size), 0, 255).astype(np.uint8)
    bg = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    return fg, alpha, bg


def test_compose_steps_match_their_records():
    fg, alpha, bg = _layers()
    always = rssn.RSSNConfig(p_denoise=1.0, p_blur=1.0, p_noise=1.0, blur_kernels=(5,))
    fg_dn, bg_dn = fg // 2, bg // 2
    out = rssn.compose_layers(fg, alpha, bg, always, np.random.default_rng(7), fg_denoised=fg_dn,
                              bg_denoised=bg_dn)
    assert out.record == {"denoise": True, "blur": True, "kernel": 5, "noise": True, "sigma": 10.0,
                          "denoised_by": "given"}
    expected_bg = rssn.average_blur(rssn.resize_to(bg_dn, fg.shape), 5)
    clean = np.rint(rssn.blend(fg_dn, expected_bg, alpha) * 255).astype(int)
    noise = out.image.astype(int) - clean
    inside = (clean > 40) & (clean < 215)  # away from clipping
    assert abs(noise[inside].std() - 10) < 1.0
    # the same noise field sits on the stored F and B, so Eq. (1) holds for the stored triplet
    np.testing.assert_array_equal((out.fg.astype(int) - fg_dn)[inside & (fg_dn > 40) & (fg_dn < 215)],
                                  noise[inside & (fg_dn > 40) & (fg_dn < 215)])
    recomposed = np.rint(rssn.blend(out.fg, out.bg, out.alpha) * 255)
    ok = (fg_dn > 40) & (fg_dn < 215) & (expected_bg > 40) & (expected_bg < 215)
    assert np.abs(recomposed - out.image)[ok].max() <= 1


def test_compose_denoises_on_the_fly_when_not_given():
    fg, alpha, bg = _layers()
    cfg = rssn.RSSNConfig(p_denoise=1.0, use_blur=False, use_noise=False)
    image, record = rssn.compose(fg, alpha, bg, cfg, np.random.default_rng(0), denoiser="none")
    assert record["denoise"] and record["denoised_by"] == "none"
    plain, _ = rssn.compose(fg, alpha, bg, rssn.ROUTES["bg20k"], np.random.default_rng(0))
    np.testing.assert_array_equal(image, plain)


def test_compose_is_deterministic_by_seed():
    fg, alpha, bg = _layers()
    cfg = rssn.RSSNConfig(blur_kernels=(3, 5, 7))
    a = [rssn.compose(fg, alpha, bg, cfg, np.random.default_rng(11), fg_denoised=fg, bg_denoised=bg)
         for _ in range(2)]
    assert a[0][0].tobytes() == a[1][0].tobytes() and a[0][1] == a[1][1]
    others = [rssn.compose(fg, alpha, bg, cfg, np.random.default_rng(s), fg_denoised=fg, bg_denoised=bg)[0]
              for s in range(12, 16)]
    assert any(o.tobytes() != a[0][0].tobytes() for o in others)


def test_compose_validates_inputs():
    fg, alpha, bg = _layers()
    with pytest.raises(ValueError, match="alpha"):
        rssn.compose(fg, alpha[:-1], bg, rssn.ROUTES["rssn"], np.random.default_rng(0))
    with pytest.raises(ValueError, match="RGB"):
        rssn.compose(fg[..., 0], alpha, bg, rssn.ROUTES["rssn"], np.random.default_rng(0))


# ---------------------------------------------------------------- the stage


def _tiny_world(root: Path, n_fg=3, n_bg=4) -> tuple[Split, Path]:
    rng = np.random.default_rng(5)
    split = Split(root / "am2k" / "train")
    yy, xx = np.mgrid[0:32, 0:40]
    for i in range(n_fg):
        alpha = np.clip(255 - 12 * np.hypot(yy - 16, xx - 20 + i), 0, 255).astype(np.uint8)
        image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
        write_image(split.original / f"f{i}.jpg", image)
        write_image(split.mask / f"f{i}.png", alpha)
    bgs = root / "bg20k" / "train"
    for j in range(n_bg):
        write_image(bgs / f"b{j}.jpg", rng.integers(0, 256, (24 + 4 * j, 50, 3), dtype=np.uint8))
    return split, bgs


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    return _tiny_world(root)


def test_build_composites_layout_and_records(tiny, tmp_path):
    split, bgs = tiny
    cfg = rssn.route_config("rssn", k=3, blur_kernels=(3, 5))
    records = build.build_composites(split, bgs, tmp_path, "rssn", config=cfg, fg_method="naive",
                                    denoiser="none", seed=1, workers=1, progress=False)
    route = tmp_path / "rssn"
    assert len(records) == 9 and list(records.columns) == list(build.RECORD_COLUMNS)
    pd.testing.assert_frame_equal(pd.read_csv(route / "records.csv", keep_default_na=False),
                                  records.astype({"denoiser": str}), check_dtype=False)
    for layer in build.LAYERS:
        assert sorted(p.stem for p in (route / layer).iterdir()) == sorted(records.name)
    # backgrounds of one foreground are distinct (K <= number of backgrounds)
    assert (records.groupby("fg").bg.nunique() == 3).all()
    assert set(records.kernel) <= {0, 3, 5}
    assert (records.denoiser == np.where(records.denoise, "none", "")).all()
    # the stored alpha is the mask; without noise the stored triplet recomposes the image exactly
    row = records[~records.noise].iloc[0]
    alpha = read_alpha(route / "alpha" / f"{row['name']}.png")
    np.testing.assert_array_equal(alpha, read_alpha(split.mask / f"{row.fg}.png"))
    fg, bg = read_image(route / "fg" / f"{row['name']}.png"), read_image(route / "bg" / f"{row['name']}.png")
    expected = np.rint(rssn.blend(fg, bg, alpha) * 255).astype(np.uint8)
    np.testing.assert_array_equal(read_image(route / "image" / f"{row['name']}.png"), expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_build_composites_deterministic_and_worker_independent(tiny, tmp_path):
    split, bgs = tiny
    cfg = rssn.route_config("rssn", k=2, blur_kernels=(3, 5))
    common = dict(config=cfg, fg_method="naive", denoiser="none", progress=False)
    build.build_composites(split, bgs, tmp_path / "w1", "rssn", seed=4, workers=1, **common)
    build.build_composites(split, bgs, tmp_path / "w2", "rssn", seed=4, workers=2, **common)
    build.build_composites(split, bgs, tmp_path / "s5", "rssn", seed=5, workers=1, **common)
    one, two = _digest(tmp_path / "w1" / "rssn"), _digest(tmp_path / "w2" / "rssn")
    assert one == two
    assert _digest(tmp_path / "s5" / "rssn") != one
    # a rebuild replaces the route folder with the same bytes
    build.build_composites(split, bgs, tmp_path / "w1", "rssn", seed=4, workers=1, **common)
    assert _digest(tmp_path / "w1" / "rssn") == one


def test_build_composites_rejects_bad_arguments(tiny, tmp_path):
    split, bgs = tiny
    with pytest.raises(ValueError, match="route"):
        build.build_composites(split, bgs, tmp_path, "voc")
    with pytest.raises(ValueError, match="fg_method"):
        build.build_composites(split, bgs, tmp_path, "rssn", fg_method="poisson")
    with pytest.raises(ValueError, match="no background"):
        empty = tmp_path / "empty"
        empty.mkdir()
        build.build_composites(split, empty, tmp_path, "rssn", fg_method="naive")


def _stage_params(root: Path, out: Path, **compose):
    """params.yaml with the folders pointed at a tiny world and ``compose`` knobs overridden."""
    params = load_params(ROOT / "params.yaml")
    return dataclasses.replace(
        params, seed=1, data=dataclasses.replace(params.data, datasets=str(root), data_root=str(root)),
        bg20k=dataclasses.replace(params.bg20k, out=str(root / "bg20k")),
        compose=dataclasses.replace(params.compose, out=str(out / "composites"),
                                    metrics_out=str(out / "metrics" / "compose.json"), **compose))


@pytest.mark.slow  # every foreground method is scored, pymatting's too
def test_stage_builds_every_route_and_writes_metrics_tables_and_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    root = tmp_path / "world"
    split, _ = _tiny_world(root)
    rng = np.random.default_rng(9)
    for name in split.names():  # the true F, and COCO-like backgrounds
        write_image(split.fg / f"{name}.png", rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))
    for j in range(3):
        write_image(root / COCO / f"c{j}.jpg", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    params = _stage_params(root, tmp_path, routes=("coco", "bg20k", "rssn"), k=2, blur_kernels=(3, 5),
                           fg_method="naive", denoiser="nlm", workers=1, fg_error_images=2, gap_images=4)
    result = stage.run(params)
    out = tmp_path / "composites"
    assert list(result.records) == ["coco", "bg20k", "rssn"]
    for route, records in result.records.items():
        assert len(records) == 3 * 2 and (records.route == route).all()
        pd.testing.assert_frame_equal(pd.read_csv(out / route / "records.csv", keep_default_na=False),
                                      records.astype({"denoiser": str}), check_dtype=False)
    assert set(result.records["coco"].bg) <= {f"c{j}.jpg" for j in range(3)}
    assert set(result.records["rssn"].bg) <= {f"b{j}.jpg" for j in range(4)}
    # the figures and tables the report embeds
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        [FIGURE_INDEX, *(f"{n}.png" for n in stage_figures())])
    index = json.loads((out / "figures" / FIGURE_INDEX).read_text())
    assert [e["file"] for e in index] == [f"{n}.png" for n in stage_figures()]
    assert all(e["caption"] for e in index) and "Fig. 3" in index[0]["caption"]
    assert {n: p for n, p in result.figures.items()} == {n: out / "figures" / f"{n}.png" for n in stage_figures()}
    assert read_image(result.figures["fig3_routes"]).shape[1] > 400
    gaps = pd.read_csv(result.tables["domain_gap"])
    assert list(gaps.label.unique()) == ["real", "coco", "bg20k", "rssn"] and len(gaps) == 3 + 3 * 4  # gap_images: 4
    errors = pd.read_csv(result.tables["foreground_error"])
    assert len(errors) == 2 * 4 and errors[["mse", "mse_transition", "bleeding"]].notna().all().all()
    # the metrics: strict JSON (no NaN), one summary row per label, one foreground row per method
    metrics = json.loads((tmp_path / "metrics" / "compose.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"metrics hold {c}"))
    assert metrics == result.metrics
    assert list(metrics["domain_gap"]) == ["real", "coco", "bg20k", "rssn"]
    assert list(metrics["foreground_error"]) == ["cf", "ml", "naive", "premultiplied"]
    assert metrics["foreground_error"]["naive"]["mse"] == pytest.approx(errors[errors.method == "naive"].mse.mean(), abs=1e-5)
    assert metrics["composites"] == {"coco": 6, "bg20k": 6, "rssn": 6}
    assert [it.name for it in result.foregrounds] == ["f0", "f1"] and result.foregrounds[0].true_fg is not None
    assert {k: len(v) for k, v in result.backgrounds.items()} == {"coco": 2, "bg20k": 2}


def stage_figures():
    return ("fig3_routes", "inspector", "domain_gap", "foreground_error")


def test_stage_inputs_fall_back_with_a_warning(tmp_path):
    root = tmp_path / "world"
    _tiny_world(root)
    params = _stage_params(root, tmp_path)
    inputs = stage.stage_inputs(params)
    assert inputs.bg20k == root / "bg20k" / "train" and inputs.coco == root / COCO
    params = dataclasses.replace(params, bg20k=dataclasses.replace(params.bg20k, out=str(tmp_path / "none")))
    with pytest.warns(UserWarning, match="stage 2 not run"):
        assert stage.stage_inputs(params).bg20k == root / COCO


def test_peek_tells_the_next_decisions_without_drawing_them():
    cfg = rssn.ROUTES["rssn"]
    rng = np.random.default_rng(8)
    for _ in range(20):
        seen = rssn.peek(cfg, rng)
        state = rng.bit_generator.state
        assert rssn.peek(cfg, rng) == seen and rng.bit_generator.state == state
        assert rssn.draw(cfg, rng) == seen
