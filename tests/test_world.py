"""Tests of the embedded world (gfm.data.world): layout, furry mattes, Eq. 1 on the real photos,
determinism, candidate truth labels, corrupt files and the atomic build — on a tiny world; the camera
(disk defocus, Poisson-Gaussian noise, Bayer demosaicing, JPEG) against RSSN's augmentations; and the
committed world in data/."""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from gfm.compose.rssn import add_gaussian_noise, average_blur
from gfm.core import layout
from gfm.core.io import ImageError, list_images, read_alpha, read_image
from gfm.data.world import (BAD_FILES, CANDIDATE_COLUMNS, CANDIDATE_KINDS, UNREADABLE_FILES, WORLD_VERSION, Camera,
                            build_world, decode_jpeg, defocus, disk_kernel, expose, make_animal, make_scene,
                            optical_low_pass, photograph, random_camera, world_summary)
from gfm.data.world import build as world_build
from gfm.data.world.camera import ADC_BITS, RAW_WB_MULTIPLIERS, bayer_mosaic, linear_to_srgb, srgb_to_linear

ROOT = Path(__file__).resolve().parents[1]

# 12 candidates: 2 lowres (one a tiny 8×8), 1 duplicate, 1 salient, 6 bad files (every variant), 2 clean
TINY = dict(n_train=3, n_val=2, n_candidates=12, n_coco=3, short_side=120, long_side=160,
            candidate_fractions={"lowres": 0.17, "duplicate": 0.05, "salient": 0.05, "corrupt": 0.5})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world") / "data"
    build_world(root, seed=0, **TINY)
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _candidates(root: Path) -> list[dict]:
    with open(root / layout.BG_CANDIDATES_TRUTH, newline="") as f:
        return list(csv.DictReader(f))


def _photos(root: Path):
    manifest = json.loads((root / "world.json").read_text())
    for split in layout.SPLITS:
        sp = layout.matting_split(root, split)
        for record in manifest["records"][split]:
            name = record["name"]
            yield (record, read_image(sp.image_path(name)).astype(np.float64),
                   read_alpha(sp.mask_path(name)), read_image(sp.fg / f"{name}.png").astype(np.float64),
                   read_image(sp.bg / f"{name}.png").astype(np.float64))


def test_layout_and_manifest(world):
    manifest = json.loads((world / "world.json").read_text())
    assert manifest["seed"] == 0 and manifest["synthetic"] is True
    assert manifest["counts"] == {"train": 3, "validation": 2, "bg_candidates": 12, "coco": 3}
    assert set(manifest["textures"]) == {"grass", "gravel", "brick"}
    assert all("CC0" in t["licence"] for t in manifest["textures"].values())
    train = layout.matting_split(world, "train")
    val = layout.matting_split(world, "validation")
    assert train.names() == ["m_0001", "m_0002", "m_0003"]
    assert val.names() == ["v_0001", "v_0002"]
    for sp in (train, val):
        for name in sp.names():
            image = read_image(sp.image_path(name))
            assert sp.image_path(name).suffix == ".jpg"
            for folder in (sp.mask, sp.fg, sp.bg):
                assert (folder / f"{name}.png").is_file()
            assert read_alpha(sp.mask_path(name)).shape == image.shape[:2]
            assert cv2.imread(str(sp.mask_path(name)), cv2.IMREAD_UNCHANGED).ndim == 2
    for name in val.names():
        tri = read_alpha(val.trimap_path(name))
        assert set(np.unique(tri)) <= {0, 128, 255} and (tri == 128).any()
    assert len(list((world / layout.COCO).glob("*.jpg"))) == 3
    assert not list(world.parent.glob(".data.*")), "temporary build folders left behind"


def test_alpha_is_furry_and_has_semi_transparent_regions(world):
    train = layout.matting_split(world, "train")
    for name in train.names():
        alpha = read_alpha(train.mask_path(name))
        fractional = int(((alpha > 0) & (alpha < 255)).sum())
        solid = (alpha > 127).astype(np.uint8)
        perimeter = sum(len(c) for c in cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0])
        # a hard or merely anti-aliased edge has ~1 fractional pixel per contour pixel; fur has many
        assert fractional > 2.5 * perimeter, (name, fractional, perimeter)
        assert len(np.unique(alpha)) > 200
        assert (alpha == 255).sum() > 0.05 * alpha.size
        # a translucent region: a 5×5 neighbourhood entirely at alpha 0.25–0.75
        mid = ((alpha >= 64) & (alpha <= 192)).astype(np.uint8)
        assert cv2.erode(mid, np.ones((5, 5), np.uint8)).any(), name


def test_real_photos_follow_eq1_up_to_noise_and_jpeg(world):
    photos = list(_photos(world))
    for i, (record, image, alpha, fg, bg) in enumerate(photos):
        a = alpha.astype(np.float64)[..., None] / 255.0
        residual = image - (a * fg + (1 - a) * bg)
        sigma = record["noise_std"]  # predicted sensor noise of this photo (8-bit levels, rms)
        rms = np.sqrt((residual ** 2).mean())
        assert abs(residual.mean()) < 1.5, record["name"]
        assert rms < 1.2 * sigma + 4.0, (record["name"], rms, sigma)
        # a wrong background explains the photo much worse
        other_bg = photos[(i + 1) % len(photos)][4]
        if other_bg.shape == bg.shape:
            wrong = image - (a * fg + (1 - a) * other_bg)
            assert np.sqrt((wrong ** 2).mean()) > 2 * rms


def test_same_seed_is_byte_identical_and_other_seed_differs(world, tmp_path):
    again = tmp_path / "again"
    build_world(again, seed=0, **TINY)
    assert _files(again) == _files(world)
    other = tmp_path / "other"
    build_world(other, seed=1, **TINY)
    a, b = _files(world), _files(other)
    originals = [k for k in a if "/original/" in k]
    assert originals and all(a[k] != b.get(k) for k in originals)


def test_candidates_truth_labels_match_the_files(world):
    rows = _candidates(world)
    assert list(rows[0]) == list(CANDIDATE_COLUMNS)
    assert {r["kind"] for r in rows} == set(CANDIDATE_KINDS)
    short = TINY["short_side"]
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        path = world / layout.BG_CANDIDATES / row["file"]
        assert path.stem == row["name"] and path.is_file()
        if row["notes"] in UNREADABLE_FILES:
            assert row["kind"] == "corrupt"
            with pytest.raises(ImageError):
                read_image(path)
            continue
        image = read_image(path)
        assert (int(row["width"]), int(row["height"])) == (image.shape[1], image.shape[0])
        if row["kind"] == "lowres":
            assert min(image.shape[:2]) <= 2 * short / 3
        else:
            assert min(image.shape[:2]) >= short
        if row["kind"] == "duplicate":
            assert by_name[row["duplicate_of"]]["kind"] == "clean"
        else:
            assert row["duplicate_of"] == ""
    assert any(r["notes"] == "tiny 8x8" and r["width"] == r["height"] == "8" for r in rows)


def test_bad_files_are_what_their_notes_say(world):
    from PIL import Image

    bad = {r["notes"]: world / layout.BG_CANDIDATES / r["file"] for r in _candidates(world) if r["kind"] == "corrupt"}
    assert set(bad) == set(BAD_FILES)
    raw = {k: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for k, p in bad.items() if k not in UNREADABLE_FILES}
    assert raw["grayscale PNG"].ndim == 2
    assert raw["16-bit PNG"].dtype == np.uint16 and raw["16-bit PNG"].ndim == 3
    with Image.open(bad["CMYK JPEG"]) as im:
        assert im.mode == "CMYK"
    assert bad["empty file"].stat().st_size == 0
    with Image.open(bad["truncated JPEG"]) as im:  # the header is intact: only decoding fails
        assert min(im.size) >= TINY["short_side"]


def test_duplicates_are_near_duplicates(world):
    rows = _candidates(world)

    def thumb(row):
        gray = cv2.cvtColor(read_image(world / layout.BG_CANDIDATES / row["file"]), cv2.COLOR_RGB2GRAY)
        t = cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float64)
        return (t - t.mean()) / (t.std() + 1e-9)

    cleans = {r["name"]: thumb(r) for r in rows if r["kind"] == "clean"}
    for row in (r for r in rows if r["kind"] == "duplicate"):
        d = thumb(row)
        corr = {name: float((d * t).mean()) for name, t in cleans.items()}
        assert corr[row["duplicate_of"]] > 0.9
        assert max(corr, key=corr.get) == row["duplicate_of"]


def test_coco_like_images_are_small_jpegs(world):
    for path in sorted((world / layout.COCO).glob("*.jpg")):
        image = read_image(path)
        assert min(image.shape[:2]) < 0.7 * TINY["short_side"]


def test_world_summary_counts(world):
    summary = world_summary(world).set_index("group")
    assert summary.loc["am2k/train", "count"] == 3
    assert summary.loc["am2k/validation", "count"] == 2
    assert summary.loc["coco", "count"] == 3
    assert summary.filter(like="bg_candidates/", axis=0)["count"].sum() == 12
    assert summary.loc["bg_candidates/corrupt", "unreadable"] == len(UNREADABLE_FILES)


def test_failed_build_leaves_nothing_and_keeps_the_previous_world(tmp_path, monkeypatch):
    out = tmp_path / "data"

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(world_build, "_coco", boom)
    with pytest.raises(RuntimeError):
        build_world(out, seed=0, **TINY)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    build_world(out, seed=0, **TINY)
    before = _files(out)
    monkeypatch.setattr(world_build, "_coco", boom)
    with pytest.raises(RuntimeError):
        build_world(out, seed=3, **TINY)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_refuses_to_replace_a_folder_that_is_not_a_world(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an embedded world"):
        build_world(out, seed=0, **TINY)
    assert (out / "notes.txt").read_text() == "keep me"


def test_make_animal_is_seeded_and_bounded():
    fg1, a1 = make_animal(np.random.default_rng(5), 60, 80)
    fg2, a2 = make_animal(np.random.default_rng(5), 60, 80)
    assert fg1.shape == (60, 80, 3) and a1.shape == (60, 80)
    assert fg1.dtype == np.float32 and a1.dtype == np.float32
    assert np.array_equal(fg1, fg2) and np.array_equal(a1, a2)
    assert 0 <= fg1.min() and fg1.max() <= 1 and 0 <= a1.min() and a1.max() == 1


def test_photograph_is_eq1_without_noise():
    rng = np.random.default_rng(0)
    fg, alpha = make_animal(rng, 60, 80)
    bg = make_scene(rng, 60, 80, "meadow")
    camera = Camera(iso=0, jpeg_quality=100, defocus=3.0, exposure=0.9, white_balance=(1.05, 1.0, 0.95))
    a, F, B = expose(fg, alpha, bg, camera)
    expected = a[..., None] * F + (1 - a[..., None]) * B
    image = photograph(fg, alpha, bg, camera).astype(np.float32) / 255.0
    sensed = camera.process(camera.raw(expected))  # the ideal sensor: mosaic and demosaicing, no noise
    luma = [cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY) for x in (image, sensed)]
    assert np.abs(luma[0] - luma[1]).mean() < 0.004  # JPEG keeps luma; chroma is subsampled 4:2:0
    assert np.abs(image - sensed).mean() < 0.02
    assert np.abs(image - expected).mean() < 0.02  # demosaicing and JPEG together
    assert np.array_equal(image, decode_jpeg(camera.sensor_jpeg(expected)).astype(np.float32) / 255.0)


def test_expose_gives_the_truth_that_reaches_the_sensor():
    rng = np.random.default_rng(1)
    fg, alpha = make_animal(rng, 60, 80)
    bg = make_scene(rng, 60, 80, "forest")
    camera = Camera(defocus=2.5, exposure=1.2, white_balance=(0.9, 1.0, 1.1))
    a, F, B = expose(fg, alpha, bg, camera)
    # Eq. 1 on the returned truth is the low-passed frame of Eq. 1 on the developed layers
    F0, B0 = camera.develop(fg), camera.develop(camera.defocus_background(bg))
    frame = optical_low_pass(alpha[..., None] * F0 + (1 - alpha[..., None]) * B0)
    assert np.abs(a[..., None] * F + (1 - a[..., None]) * B - frame).max() < 1e-5
    assert np.abs(a - optical_low_pass(alpha)).max() < 1e-6
    assert F.min() >= 0 and F.max() <= 1 and B.min() >= 0 and B.max() <= 1
    # exposure and white balance act on linear light, where they are plain gains
    grey = np.full((4, 4, 3), 0.3, np.float32)
    gains = 1.2 * np.array([0.9, 1.0, 1.1], np.float32)
    assert np.allclose(srgb_to_linear(camera.develop(grey)), srgb_to_linear(grey) * gains, atol=1e-6)


def test_defocus_removes_high_frequencies():
    rng = np.random.default_rng(0)
    scene = make_scene(rng, 80, 100, "rocks")

    def detail(x):
        return np.abs(np.diff(x, axis=1)).mean()

    assert detail(defocus(scene, 4.0)) < 0.5 * detail(scene)
    assert detail(defocus(scene, 4.0, kind="gaussian")) < 0.7 * detail(scene)
    assert np.array_equal(defocus(scene, 0.0), scene)


def test_defocus_is_a_disk_in_linear_light_not_rssns_box():
    k = disk_kernel(4.0)
    assert k.shape == (9, 9) and abs(k.sum() - 1) < 1e-6 and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    assert k[0, 0] == 0 and k[0, 4] > 0  # round: the corners of its square are empty, unlike a box
    assert np.ptp(k[2:7, 2:7]) < 1e-6  # flat top: every point of the aperture weighs the same
    # a point light through the lens: a disk of the kernel's radius, in linear light (energy kept)
    point = np.zeros((41, 41, 3), np.float32)
    point[20, 20] = 1.0
    camera = Camera(defocus=6.0)
    spot = camera.defocus_background(point)
    assert abs(srgb_to_linear(spot).sum() - srgb_to_linear(point).sum()) < 0.01 * srgb_to_linear(point).sum()
    yy, xx = np.mgrid[-20:21, -20:21]
    r = np.hypot(yy, xx)
    assert spot[r > 7].max() < 1e-6 and spot[r < 5].min() > 0.01
    # RSSN's averaging filter on the same point fills its whole square, corners included
    box = average_blur((point * 255).astype(np.uint8), 13)
    assert box[14, 14].min() > 0 and spot[14, 14].max() < 1e-6
    # the default and every drawn camera use the disk
    assert Camera().defocus_kind == "disk"
    cameras = [random_camera(np.random.default_rng([7, i])) for i in range(200)]
    assert {c.defocus_kind for c in cameras} == {"disk"}
    assert 70 < sum(c.defocus > 0 for c in cameras) < 130


def test_noise_variance_grows_with_signal_level():
    """Poisson shot + Gaussian read noise: raw variance a*signal + b (Foi et al. 2008), unlike RSSN's
    additive Gaussian noise, which is the same at every level."""
    camera = Camera(iso=1600, read_noise=4.0, seed=3)
    n = camera.white_level
    levels = [0.15, 0.3, 0.5, 0.7, 0.9]  # darker raw signals are clipped at black by the ADC
    raw_var, out_var, rssn_std = [], [], []
    for level in levels:
        flat = np.full((96, 96, 3), level, np.float32)
        raw = camera.raw(flat)
        green = raw[0::2, 1::2]  # green photosites: multiplier 1
        signal = float(green.mean())
        predicted = signal / n + (camera.read_noise / n) ** 2 + (1 / (2 ** ADC_BITS - 1)) ** 2 / 12
        assert abs(green.var() / predicted - 1) < 0.1, (level, green.var(), predicted)
        red, g = raw[0::2, 0::2], RAW_WB_MULTIPLIERS[0]  # red photosites: 1/g of the electrons, then a gain g
        predicted = g * float(red.mean()) / n + g ** 2 * ((camera.read_noise / n) ** 2 + (1 / (2 ** ADC_BITS - 1)) ** 2 / 12)
        assert abs(red.var() / predicted - 1) < 0.1, (level, red.var(), predicted)
        raw_var.append(green.var())
        out_var.append(srgb_to_linear(camera.process(raw))[4:-4, 4:-4].var(axis=(0, 1)).mean())
        noisy = add_gaussian_noise(flat, 10.0, np.random.default_rng(0))
        rssn_std.append(float((noisy - flat).std() * 255))
    assert all(np.diff(raw_var) > 0) and raw_var[-1] > 5 * raw_var[0]
    assert all(np.diff(out_var) > 0)  # also after demosaicing, in linear light
    assert np.ptp(rssn_std) < 0.5 and abs(np.mean(rssn_std) - 10) < 0.5


def test_camera_noise_matches_its_prediction():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    for iso in (200, 1600):
        camera = Camera(iso=iso, jpeg_quality=100, seed=1)
        processed = camera.process(camera.raw(flat))
        measured = processed[4:-4, 4:-4].std(axis=(0, 1)) * 255
        predicted = camera.noise_std(flat)[0, 0]
        assert np.all(np.abs(measured / predicted - 1) < 0.08), (iso, measured, predicted)
        # JPEG at quality 100 keeps the luma noise
        before = np.clip(np.rint(processed * 255), 0, 255).astype(np.uint8)
        luma = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (camera.capture(flat), before)]
        assert abs(luma[0].std() - luma[1].std()) < 0.4
    # an ideal sensor adds only the ADC's quantisation
    assert Camera(iso=0).noise_std(flat).max() < 0.05


def test_mosaic_and_demosaicing_leave_their_fingerprint():
    """Demosaicing interpolates 3 of 4 sites per channel (period-2 noise variance, spatially correlated
    noise) and the colour matrix mixes channels (anti-correlated); RSSN's noise shows none of it."""
    flat = np.full((128, 128, 3), 0.45, np.float32)
    camera = Camera(iso=1600, seed=2)
    world = camera.process(camera.raw(flat))[8:-8, 8:-8]
    rssn = add_gaussian_noise(flat, 10.0, np.random.default_rng(0))[8:-8, 8:-8]

    def fingerprint(image):
        noise = image - image.mean(axis=(0, 1))
        corr = np.corrcoef(noise.reshape(-1, 3).T)
        g = noise[..., 1]
        phases = [g[i::2, j::2].var() for i in (0, 1) for j in (0, 1)]
        neighbours = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
        return corr[0, 1], corr[1, 2], max(phases) / min(phases), neighbours

    rg, gb, period, neighbours = fingerprint(world)
    assert rg < -0.2 and gb < -0.2, (rg, gb)
    assert period > 1.6, period  # green: own photosites keep the full variance, interpolated ones half
    assert neighbours > 0.2, neighbours
    rg, gb, period, neighbours = fingerprint(rssn)
    assert abs(rg) < 0.05 and abs(gb) < 0.05 and period < 1.15 and abs(neighbours) < 0.05
    # the mosaic itself: one channel per photosite, RGGB
    tile = bayer_mosaic(np.broadcast_to(np.array([1.0, 2.0, 3.0], np.float32), (2, 2, 3)))
    assert tile.tolist() == [[1.0, 2.0], [2.0, 3.0]]
    # a flat colour survives the ideal sensor (the demosaicing pattern and the colour matrix are right)
    colour = np.broadcast_to(np.array([0.8, 0.45, 0.2], np.float32), (16, 16, 3))
    ideal = Camera(iso=0)
    assert np.abs(ideal.process(ideal.raw(colour)) - colour).max() < 1e-3


def test_jpeg_leaves_8x8_blocks():
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    gradient = np.stack([0.3 + 0.4 * xx / 128, 0.4 + 0.2 * yy / 128, np.full_like(xx, 0.5)], -1)

    def blockiness(rgb):
        grey = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY)
        ratios = []
        for step in (np.abs(np.diff(grey, axis=1)).mean(axis=0), np.abs(np.diff(grey, axis=0)).mean(axis=1)):
            edge = np.arange(step.size) % 8 == 7  # between pixels 8k+7 and 8k+8: a block boundary
            ratios.append(step[edge].mean() / step[~edge].mean())
        return float(np.mean(ratios))

    camera = Camera(iso=1600, jpeg_quality=75, seed=3)
    stored = decode_jpeg(camera.sensor_jpeg(gradient)).astype(np.float32)
    before = np.rint(camera.process(camera.raw(gradient)) * 255)
    assert blockiness(stored) > 1.3 and blockiness(before) < 1.05


def test_camera_rejects_bad_settings():
    with pytest.raises(ValueError, match="read_noise"):
        Camera(read_noise=-1)
    with pytest.raises(ValueError, match="iso"):
        Camera(iso=10)
    with pytest.raises(ValueError, match="jpeg_quality"):
        Camera(jpeg_quality=0)
    with pytest.raises(ValueError, match="defocus_kind"):
        Camera(defocus_kind="box")


def test_recorded_camera_reproduces_the_photo(world):
    record, image, alpha, fg, bg = next(_photos(world))
    camera = Camera(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["camera"].items()})
    a = alpha.astype(np.float32)[..., None] / 255.0
    clean = a * fg.astype(np.float32) / 255.0 + (1 - a) * bg.astype(np.float32) / 255.0
    sp = layout.matting_split(world, "train")
    assert camera.sensor_jpeg(clean) == sp.image_path(record["name"]).read_bytes()


def test_linear_light_round_trip():
    v = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(v)) - v).max() < 1e-5
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.2140) < 1e-4  # IEC 61966-2-1


def test_committed_world_is_the_generator_output_and_pinned(tmp_path):
    """data/ was built by this generator with the default counts, and data.dvc pins it."""
    data = ROOT / "data"
    manifest = json.loads((data / "world.json").read_text())
    defaults = inspect.signature(build_world).parameters
    assert manifest["version"] == WORLD_VERSION and manifest["generator"] == "gfm.data.world"
    assert manifest["counts"] == {key: defaults[f"n_{name}"].default for key, name in
                                  (("train", "train"), ("validation", "val"), ("bg_candidates", "candidates"),
                                   ("coco", "coco"))}
    assert manifest["counts"]["validation"] >= 100
    for split in layout.SPLITS:
        sp = layout.matting_split(data, split)
        names = [r["name"] for r in manifest["records"][split]]
        assert sp.names() == names
        for folder in (sp.mask, sp.fg, sp.bg) + ((sp.trimap,) if split == "validation" else ()):
            assert sorted(p.stem for p in list_images(folder)) == names, folder
    # item i does not depend on the counts: the first photos of a small world are the committed bytes
    small = tmp_path / "small"
    build_world(small, seed=manifest["seed"], n_train=1, n_val=1, n_candidates=6, n_coco=1)
    for rel in ("am2k/train/original/m_0001.jpg", "am2k/train/mask/m_0001.png", "am2k/validation/fg/v_0001.png",
                "am2k/validation/bg/v_0001.png", "am2k/validation/trimap/v_0001.png", "coco/coco_0001.jpg"):
        assert (small / rel).read_bytes() == (data / rel).read_bytes(), f"{rel}: rebuild data/ (gfm world build)"
    files = [p for p in data.rglob("*") if p.is_file()]
    pin = yaml.safe_load((ROOT / "data.dvc").read_text())
    out = pin["outs"][0]
    assert "frozen" not in pin and out["cache"] is False      # a plain data source (see data.dvc)
    assert out["nfiles"] == len(files) and out["size"] == sum(p.stat().st_size for p in files)
