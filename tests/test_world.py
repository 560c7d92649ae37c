"""Tests of the embedded world (gfm.data.world): layout, furry mattes, Eq. 1 on the real photos,
determinism, candidate truth labels, corrupt files and the atomic build — on a tiny world."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from gfm.core import layout
from gfm.core.io import ImageError, read_alpha, read_image
from gfm.data.world import (BAD_FILES, CANDIDATE_COLUMNS, CANDIDATE_KINDS, UNREADABLE_FILES, Camera, build_world, defocus, expose, make_animal,
                       make_scene, photograph, world_summary)
from gfm.data.world import build as world_build

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
        sigma = record["camera"]["noise_sigma"]
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
    camera = Camera(noise_sigma=0.0, jpeg_quality=100, defocus=3.0, exposure=0.9, white_balance=(1.05, 1.0, 0.95))
    F, B = expose(fg, alpha, bg, camera)
    expected = alpha[..., None] * F + (1 - alpha[..., None]) * B
    image = photograph(fg, alpha, bg, camera).astype(np.float32) / 255.0
    luma = [cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY) for x in (image, expected)]
    assert np.abs(luma[0] - luma[1]).mean() < 0.004  # JPEG keeps luma; chroma is subsampled 4:2:0
    assert np.abs(image - expected).mean() < 0.02


def test_defocus_removes_high_frequencies():
    rng = np.random.default_rng(0)
    scene = make_scene(rng, 80, 100, "rocks")

    def detail(x):
        return np.abs(np.diff(x, axis=1)).mean()

    assert detail(defocus(scene, 4.0)) < 0.5 * detail(scene)
    assert detail(defocus(scene, 4.0, kind="gaussian")) < 0.7 * detail(scene)
    assert np.array_equal(defocus(scene, 0.0), scene)


def test_camera_noise_level_is_its_sigma():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    camera = Camera(noise_sigma=6.0, jpeg_quality=100, seed=1)
    luma = cv2.cvtColor(camera.capture(flat), cv2.COLOR_RGB2GRAY).astype(np.float64)
    # independent per-channel noise seen through the luma weights (0.299, 0.587, 0.114)
    expected = 6.0 * np.sqrt(0.299 ** 2 + 0.587 ** 2 + 0.114 ** 2)
    assert abs(luma.std() - expected) < 0.4


def test_camera_rejects_bad_settings():
    with pytest.raises(ValueError, match="noise_sigma"):
        Camera(noise_sigma=-1)
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
