"""Stage 2 (paper, Sect. 4.1): the construction (each filter on constructed candidates, the split, the
scoring against truth labels, the atomic output folder) and the released BG-20k passed through with
its official split."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gfm.bg20k import build, filters, official, plots, stage, summary
from gfm.core.config import load_params
from gfm.core.figures import FIGURE_INDEX
from gfm.core.io import read_image
from gfm.core.layout import BG_CANDIDATES, BG_CANDIDATES_TRUTH
from gfm.data.registry import BG20K_SET

from httpserver import tree

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- helpers
def landscape(seed: int, height: int = 120, width: int = 180) -> np.ndarray:
    """A smooth textured landscape: sky gradient over a noisy ground, no object (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    horizon = rng.uniform(0.3, 0.6)
    sky = np.array([0.35, 0.55, 0.9]) * (1 - yy[..., None]) + np.array([0.8, 0.85, 0.95]) * yy[..., None]
    noise = cv2.resize(rng.normal(size=(height // 8, width // 8)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 1.0)
    ground_colour = rng.uniform(0.2, 0.7, 3)
    ground = ground_colour * (1 + 0.15 * noise[..., None] + 0.1 * fine[..., None])
    image = np.where((yy > horizon)[..., None], ground, np.broadcast_to(sky, (height, 1, 3)))
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def with_object(image: np.ndarray, colour=(230, 20, 20)) -> np.ndarray:
    """Paste a high-contrast rectangle-and-disc object in the middle of the scene."""
    out = image.copy()
    h, w = out.shape[:2]
    cv2.rectangle(out, (w // 3, h // 3), (w // 2, 3 * h // 4), colour, -1)
    cv2.circle(out, (w // 2 + w // 10, h // 2), h // 6, (250, 240, 30), -1)
    return out


def save(path, image, quality=95):
    Image.fromarray(image).save(path, quality=quality)
    return path


def jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny candidate folder with truth labels covering every kind."""
    root = tmp_path_factory.mktemp("bg")
    folder = root / "candidates"
    folder.mkdir()
    truth = []
    for i in range(8):
        save(folder / f"c{i:02d}.jpg", landscape(i))
        truth.append((f"c{i:02d}", "clean", ""))
    save(folder / "d00.jpg", jpeg(landscape(3)[2:-2, 3:-3], 80))  # near-duplicate of c03
    truth.append(("d00", "duplicate", "c03"))
    for i in range(2):
        save(folder / f"s{i:02d}.jpg", with_object(landscape(20 + i)))
        truth.append((f"s{i:02d}", "salient", ""))
    save(folder / "l00.jpg", landscape(30, 60, 90))
    truth.append(("l00", "lowres", ""))
    save(folder / "t00.jpg", landscape(31, 8, 8))
    truth.append(("t00", "lowres", ""))
    (folder / "x00.png").write_bytes(np.random.default_rng(0).bytes(500))
    truth.append(("x00", "corrupt", ""))
    truth = pd.DataFrame(truth, columns=["name", "kind", "duplicate_of"])
    truth.to_csv(root / "truth.csv", index=False)
    return folder, root / "truth.csv"


BUILD = dict(min_short_side=100, short_side=96, progress=False)


# ---------------------------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("shape, short, expected", [((300, 500), 120, (120, 200)),
                                                     ((500, 300), 120, (200, 120)),
                                                     ((101, 333), 101, (101, 333)),
                                                     ((80, 90), 160, (160, 180))])
def test_resize_keeps_aspect_with_exact_short_side(shape, short, expected):
    image = np.zeros((*shape, 3), np.uint8)
    assert filters.resize_short_side(image, short).shape[:2] == expected


def test_small_images_are_dropped(world, tmp_path):
    folder, _ = world
    manifest = build.build_bg20k(folder, tmp_path / "out", workers=1, **BUILD).set_index("name")
    assert manifest.loc["l00", "reason"] == "low_resolution"
    assert manifest.loc["t00", "reason"] == "too_small"
    kept = manifest[manifest.status == "kept"]
    assert (np.minimum(kept.out_width, kept.out_height) == 96).all()
    written = sorted(p.stem for p in (tmp_path / "out").rglob("*.jpg"))
    assert written == sorted(kept.index)


# ---------------------------------------------------------------------------------------------- duplicates
def test_phash_matches_imagehash():
    imagehash = pytest.importorskip("imagehash")
    for seed in range(3):
        image = landscape(seed)
        expected = int(str(imagehash.phash(Image.fromarray(image))), 16)
        assert filters.phash(image) == expected


@pytest.mark.parametrize("edit", ["crop3", "jpeg", "brighter"])
def test_near_duplicates_found_and_distinct_images_not(edit):
    base = landscape(5, 240, 360)
    h, w = base.shape[:2]
    edited = {"crop3": base[int(0.03 * h):, int(0.03 * w):],
              "jpeg": jpeg(base, 60),
              "brighter": np.clip(base.astype(int) + 10, 0, 255).astype(np.uint8)}[edit]
    others = [landscape(s, 240, 360) for s in (6, 7, 8)]
    hashes = [filters.phash(x) for x in (base, edited, *others)]
    duplicate_of, distance, _ = filters.find_duplicates(hashes, build.DEFAULT_THRESHOLDS["phash"])
    assert duplicate_of.tolist() == [-1, 0, -1, -1, -1]
    assert 0 <= distance[1] <= build.DEFAULT_THRESHOLDS["phash"]


def test_find_duplicates_grouping_and_blocks_match_brute_force():
    hashes = [0b0000, 0b0001, 0b0011, 0b0111, (1 << 64) - 1, (1 << 64) - 2]
    duplicate_of, distance, nearest = filters.find_duplicates(hashes, 1)
    # 1 duplicates 0; 2 is within 1 of 1 only (a duplicate), so it is kept; 3 duplicates 2.
    assert duplicate_of.tolist() == [-1, 0, -1, 2, -1, 4]
    assert distance.tolist() == [-1, 1, -1, 1, -1, 1]
    assert nearest.tolist() == [1, 1, 1, 1, 1, 1]
    rng = np.random.default_rng(0)
    many = [int(x) for x in rng.integers(0, 2**63, 300, dtype=np.int64)]
    many += [h ^ (1 << int(b)) for h, b in zip(many[:50], rng.integers(0, 64, 50))]
    full = filters.find_duplicates(many, 3)
    blocked = filters.find_duplicates(many, 3, block_elements=1000)
    for a, b in zip(full, blocked):
        np.testing.assert_array_equal(a, b)
    brute = np.array([[bin(x ^ y).count("1") for y in many] for x in many[:20]])
    np.fill_diagonal(brute[:, :20], 65)
    np.testing.assert_array_equal(full[2][:20], brute.min(axis=1))
    assert (full[0][300:] == np.arange(50)).all()


# ---------------------------------------------------------------------------------------------- saliency
def test_saliency_flags_pasted_object_and_passes_landscape():
    threshold = build.DEFAULT_THRESHOLDS["saliency"]
    for seed in range(4):
        scene = landscape(seed, 240, 360)
        assert filters.saliency_score(scene) < threshold
        assert filters.saliency_score(with_object(scene)) > 3 * threshold


def test_torchvision_detector_and_cnn_dedup_need_local_weights(world, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folder, _ = world
    with pytest.raises(FileNotFoundError, match="fasterrcnn_mobilenet_v3_large_fpn.*never downloads"):
        build.build_bg20k(folder, tmp_path / "out", detector="torchvision", **BUILD)
    with pytest.raises(FileNotFoundError, match="resnet18.*dedup='phash'"):
        build.build_bg20k(folder, tmp_path / "out", dedup="cnn", **BUILD)
    with pytest.raises(ValueError, match="detector must be one of"):
        build.build_bg20k(folder, tmp_path / "out", detector="yolo", **BUILD)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- bad files
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    colour = landscape(1, 120, 160)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "random.png").write_bytes(np.random.default_rng(1).bytes(300))
    full = io.BytesIO()
    Image.fromarray(colour).save(full, format="JPEG")
    (folder / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    Image.fromarray(colour[..., 1]).save(folder / "gray.png")
    Image.fromarray(landscape(2, 120, 160)).convert("CMYK").save(folder / "cmyk.jpg")
    cv2.imwrite(str(folder / "deep.png"), colour[..., ::-1].astype(np.uint16) * 257)
    return folder


@pytest.mark.parametrize("name, reason", [("empty.jpg", "unreadable"), ("random.png", "unreadable"),
                                          ("truncated.jpg", "unreadable"), ("gray.png", "grayscale"),
                                          ("cmyk.jpg", "cmyk"), ("deep.png", "16bit")])
def test_bad_files_rejected_with_reason(bad_files, name, reason):
    rgb, found, note = filters.read_candidate(bad_files / name)
    assert (rgb, found) == (None, reason)
    assert note


def test_cmyk_and_16bit_converted_on_request(bad_files):
    colour = landscape(1, 120, 160)
    rgb, reason, note = filters.read_candidate(bad_files / "deep.png", convert=("16bit",))
    assert reason == "ok" and "16bit" in note
    np.testing.assert_array_equal(rgb, colour)  # x*257 scaled back to 8 bits exactly
    rgb, reason, note = filters.read_candidate(bad_files / "cmyk.jpg", convert=("cmyk",))
    assert reason == "ok" and "cmyk" in note and rgb.shape == colour.shape
    assert np.abs(rgb.astype(int) - landscape(2, 120, 160)).mean() < 6


def test_build_survives_bad_files(bad_files, tmp_path):
    manifest = build.build_bg20k(bad_files, tmp_path / "out", min_short_side=64, short_side=64,
                                 workers=1, progress=False, saliency_threshold=1.0).set_index("name")
    assert manifest.reason.to_dict() == {"cmyk": "cmyk", "deep": "16bit", "empty": "unreadable",
                                         "gray": "grayscale", "random": "unreadable",
                                         "truncated": "unreadable"}
    assert manifest.loc["gray", "short_side"] == 120  # size recorded for readable wrong formats
    converted = build.build_bg20k(bad_files, tmp_path / "out2", min_short_side=64, short_side=64,
                                  workers=1, progress=False, saliency_threshold=1.0,
                                  convert=("cmyk", "16bit", "grayscale"))
    converted = converted.set_index("name")
    assert converted.reason[["cmyk", "deep", "gray"]].tolist() == ["ok", "ok", "duplicate"]
    assert converted.loc["gray", "duplicate_of"] == "deep"  # its green channel


# ---------------------------------------------------------------------------------------------- split
def test_split_disjoint_fraction_deterministic():
    names = [f"n{i:03d}" for i in range(200)]
    split = build.split_train_testval(names, val_fraction=0.25, seed=3)
    assert sorted(split) == names
    assert sum(v == "testval" for v in split.values()) == 50
    assert split == build.split_train_testval(reversed(names), val_fraction=0.25, seed=3)
    assert split != build.split_train_testval(names, val_fraction=0.25, seed=4)


def test_build_independent_of_workers(world, tmp_path):
    folder, _ = world
    one = build.build_bg20k(folder, tmp_path / "a", workers=1, **BUILD)
    two = build.build_bg20k(folder, tmp_path / "b", workers=2, **BUILD)
    pd.testing.assert_frame_equal(one, two)
    train = {p.name for p in (tmp_path / "a" / "train").iterdir()}
    testval = {p.name for p in (tmp_path / "a" / "testval").iterdir()}
    assert not train & testval and len(testval) == round(0.25 * (len(train) + len(testval)))
    assert train == {p.name for p in (tmp_path / "b" / "train").iterdir()}
    saved = pd.read_csv(tmp_path / "a" / "manifest.csv", keep_default_na=False)
    assert list(saved.columns) == list(build.MANIFEST_COLUMNS)
    assert len(saved) == len(list(folder.iterdir()))


def test_world_filters_all_correct(world, tmp_path):
    folder, truth = world
    manifest = build.build_bg20k(folder, tmp_path / "out", workers=1, **BUILD)
    scores = summary.score_filters(manifest, truth)
    assert (scores.precision == 1).all() and (scores.recall == 1).all(), scores
    assert manifest.set_index("name").loc["d00", "duplicate_of"] == "c03"


# ---------------------------------------------------------------------------------------------- scoring
def test_score_filters_hand_computed():
    truth = pd.DataFrame({"name": ["a", "b", "c", "d", "e", "f", "g", "h"],
                          "kind": ["clean", "duplicate", "clean", "salient", "salient", "lowres",
                                   "corrupt", "clean"],
                          "duplicate_of": ["", "c", "", "", "", "", "", ""]})
    manifest = pd.DataFrame({
        "name": list("abcdefgh"),
        # c is flagged as duplicate of b: right pair, the truth calls c the original -> still a hit
        "reason": ["ok", "ok", "duplicate", "salient", "ok", "low_resolution", "unreadable", "salient"],
        "duplicate_of": ["", "", "b", "", "", "", "", ""]})
    scores = summary.score_filters(manifest, truth)
    assert scores.loc["duplicate", ["precision", "recall"]].tolist() == [1.0, 1.0]
    assert scores.loc["salient", ["precision", "recall"]].tolist() == [0.5, 0.5]
    assert scores.loc["low_resolution", ["precision", "recall"]].tolist() == [1.0, 1.0]
    assert scores.loc["bad_file", ["precision", "recall"]].tolist() == [1.0, 1.0]
    # rejected: c d f g h (5); dirty: b d e f g (5); both: d f g (3)
    assert scores.loc["overall", ["precision", "recall"]].tolist() == [0.6, 0.6]


# ---------------------------------------------------------------------------------------------- atomic
def test_failure_midway_leaves_previous_output_intact(world, tmp_path, monkeypatch):
    folder, _ = world
    out = tmp_path / "out"

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(build, "split_train_testval", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        build.build_bg20k(folder, out, workers=1, **BUILD)
    assert list(tmp_path.iterdir()) == []  # no out_dir, no hidden build folder
    out.mkdir()
    (out / "old.txt").write_text("previous build")
    with pytest.raises(RuntimeError):
        build.build_bg20k(folder, out, workers=1, **BUILD)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (out / "old.txt").read_text() == "previous build"


def test_figures(world, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    folder, _ = world
    manifest = build.build_bg20k(folder, tmp_path / "out", workers=1, **BUILD)
    gallery = plots.plot_gallery(manifest, folder, per_reason=3)
    assert len(gallery.axes) == 3 * manifest.reason.nunique()
    hist = plots.plot_resolution_hist(manifest, min_short_side=100)
    assert hist.axes[0].get_xlabel() == "shorter side (px)"
    counts = summary.summarise(manifest)
    assert counts.loc["candidates", "images"] == len(manifest)


# ---------------------------------------------------------------------------------------------- the stage
def test_stage_builds_scores_and_saves_its_figures(world, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    folder, truth = world
    datasets = tmp_path / "datasets"
    shutil.copytree(folder, datasets / BG_CANDIDATES)
    shutil.copy(truth, datasets / BG_CANDIDATES_TRUTH)
    params = load_params(ROOT / "params.yaml")
    params = dataclasses.replace(
        params, seed=2, data=dataclasses.replace(params.data, datasets=str(datasets)),
        bg20k=dataclasses.replace(params.bg20k, out=str(tmp_path / "bg20k"), min_short_side=100, short_side=96,
                                  dedup_threshold=10, saliency_threshold=0.03, workers=1, gallery_per_reason=2,
                                  metrics_out=str(tmp_path / "metrics" / "bg20k.json")))
    result = stage.run(params)
    direct = build.build_bg20k(datasets / BG_CANDIDATES, tmp_path / "direct", workers=1, seed=2, **BUILD)
    pd.testing.assert_frame_equal(result.manifest, direct)
    kept = (direct.split == "train").sum(), (direct.split == "testval").sum()
    assert result.mode == "constructed" and result.metrics["mode"] == "constructed"
    assert result.metrics["split"] == f"random split (seed 2, val_fraction 0.25), {kept[0]}/{kept[1]} images"
    pd.testing.assert_frame_equal(result.summary, summary.summarise(direct))
    assert (result.scores.precision == 1).all() and (result.scores.recall == 1).all()
    assert json.loads((tmp_path / "metrics" / "bg20k.json").read_text()) == result.metrics
    assert result.metrics["kept"] == (direct.status == "kept").sum() and result.metrics["filters"]["overall"]["recall"] == 1
    assert sorted(p.name for p in (tmp_path / "bg20k" / "figures").iterdir()) == [
        "fig4_gallery.png", "figures.json", "resolution.png"]
    index = json.loads((tmp_path / "bg20k" / "figures" / FIGURE_INDEX).read_text())
    assert [e["file"] for e in index] == ["fig4_gallery.png", "resolution.png"]
    assert "Fig. 4" in index[0]["caption"] and "min_short_side = 100" in index[1]["caption"]
    assert set(result.figures) == {"fig4_gallery", "resolution"}
    gallery = read_image(result.figures["fig4_gallery"])
    assert gallery.shape[0] > 100 and gallery.shape[1] > 100
    assert sorted(p.name for p in (tmp_path / "bg20k").iterdir()) == ["figures", "manifest.csv", "testval", "train"]


# ---------------------------------------------------------------------------------------------- the release
def _stage_params(tmp_path, datasets, *, source="real", candidates=None, seed=2):
    params = load_params(ROOT / "params.yaml")
    return dataclasses.replace(
        params, seed=seed, data=dataclasses.replace(params.data, source=source, datasets=str(datasets)),
        bg20k=dataclasses.replace(params.bg20k, out=str(tmp_path / "bg20k"), min_short_side=100, short_side=96,
                                  dedup_threshold=10, saliency_threshold=0.03, workers=1, gallery_per_reason=2,
                                  candidates=candidates, metrics_out=str(tmp_path / "metrics" / "bg20k.json")))


@pytest.fixture
def release(tmp_path):
    """A tiny BG-20k release as stage 1 places it: images the construction would reject stay where they are."""
    root = tmp_path / "datasets" / BG20K_SET
    for split in ("train", "testval"):
        (root / split).mkdir(parents=True)
    save(root / "train" / "h_00.jpg", landscape(1))
    save(root / "train" / "h_01.jpg", landscape(1, 60, 90))                    # below min_short_side
    save(root / "train" / "h_02.jpg", jpeg(landscape(1)[2:-2, 3:-3], 80))      # a near-duplicate of h_00
    save(root / "testval" / "h_10.jpg", with_object(landscape(20)))           # a salient object
    save(root / "testval" / "h_11.png", landscape(4, 130, 100))
    return root


def test_the_release_is_passed_through_with_its_official_split(release, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    out = tmp_path / "bg20k"
    result = stage.run(_stage_params(tmp_path, release.parent))
    assert result.mode == "official" and result.scores is None
    assert tree(out / "train") == tree(release / "train") and tree(out / "testval") == tree(release / "testval")
    assert (out / "train" / "h_00.jpg").stat().st_ino == (release / "train" / "h_00.jpg").stat().st_ino  # linked
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest.columns) == list(official.OFFICIAL_COLUMNS) and (manifest.origin == official.ORIGIN).all()
    assert dict(zip(manifest.name, manifest.split)) == {"h_00": "train", "h_01": "train", "h_02": "train",
                                                        "h_10": "testval", "h_11": "testval"}
    assert dict(zip(manifest.name, manifest.short_side)) == {"h_00": 120, "h_01": 60, "h_02": 116, "h_10": 120,
                                                             "h_11": 100}
    metrics = json.loads((tmp_path / "metrics" / "bg20k.json").read_text())
    assert metrics == result.metrics and metrics.pop("seconds") >= 0
    assert metrics == {"mode": "official", "split": "official split, 3/2 images", "images": 5, "train": 3,
                       "testval": 2, "min_short_side": 60}
    assert result.summary.loc["train", "images"] == 3 and result.summary.loc["testval", "min_short_side"] == 100
    index = json.loads((out / "figures" / FIGURE_INDEX).read_text())
    assert [e["file"] for e in index] == ["fig4_gallery.png", "resolution.png"]
    assert "official split, 3/2 images" in index[0]["caption"]
    assert read_image(result.figures["fig4_gallery"]).shape[0] > 100
    assert sorted(p.name for p in out.iterdir()) == ["figures", "manifest.csv", "testval", "train"]


def test_a_release_that_cannot_be_used_is_refused_before_anything_changes(release, tmp_path):
    out = tmp_path / "bg20k"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    params = _stage_params(tmp_path, release.parent)
    shutil.copy(release / "train" / "h_00.jpg", release / "testval" / "h_00.png")
    with pytest.raises(ValueError, match=r"1 name\(s\) in both official splits .*h_00\.jpg and .*h_00\.png"):
        stage.run(params)
    (release / "testval" / "h_00.png").rename(release / "testval" / "h_12.png")
    (release / "testval" / "h_12.png").write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(ValueError, match=r"h_12\.png: not a readable image .*broken download"):
        stage.run(params)
    shutil.rmtree(release / "testval")
    with pytest.raises(FileNotFoundError, match=r"testval: missing or holds no image.*'bg20k' in data\.real_sources"):
        stage.run(params)
    shutil.rmtree(release)
    with pytest.raises(FileNotFoundError, match=r"no released BG-20k \(data\.source is real\).*bg20k\.candidates"):
        stage.run(params)
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_candidates_are_built_from_whatever_the_source(world, release, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    folder, _ = world
    result = stage.run(_stage_params(tmp_path, release.parent, candidates=str(folder)))  # data.source: real
    direct = build.build_bg20k(folder, tmp_path / "direct", workers=1, seed=2, **BUILD)
    pd.testing.assert_frame_equal(result.manifest, direct)
    assert result.mode == "constructed" and result.scores is None and "filters" not in result.metrics
    assert result.metrics["split"].startswith("random split (seed 2, val_fraction 0.25)")
    with pytest.raises(FileNotFoundError, match=r"bg20k\.candidates: .*missing is not a folder"):
        stage.run(_stage_params(tmp_path, release.parent, candidates=str(tmp_path / "missing")))
    with pytest.raises(FileNotFoundError, match=r"no background candidates \(data\.source is embedded\)"):
        stage.run(_stage_params(tmp_path, release.parent, source="embedded"))
