"""On-the-fly composition (gfm.compose.online, gfm.compose.build.build_online_route, the online training
dataset) and the ORI-Track set with estimated F and B (gfm.compose.build.build_ori_estimated), issue 12."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from gfm.compose import build, online, rssn, stage
from gfm.core import config as gconfig
from gfm.core.io import read_alpha, read_image, write_image
from gfm.core.layout import COCO, Split
from gfm.train import dataset as ds
from gfm.train import loop as tr
from gfm.train import stage as train_stage
from test_rssn import _stage_params, _tiny_world
from test_train import tiny_params

pytestmark = pytest.mark.usefixtures("one_thread")

KNOBS = dict(input_size=32, crop_sizes=(32, 40), trimap_kernel=3, ftbt_kernel=5)
CONFIG = rssn.route_config("rssn", k=2, blur_kernels=(3, 5))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny matting split (3 foregrounds) and 4 backgrounds."""
    return _tiny_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def routes(tiny, tmp_path_factory):
    """The rssn route built online and offline with the same knobs: (composites folder, inspection records)."""
    split, bgs = tiny
    out = tmp_path_factory.mktemp("composites")
    common = dict(config=CONFIG, fg_method="naive", denoiser="nlm", seed=1, workers=1, progress=False)
    records = build.build_online_route(split, bgs, out, "rssn", inspection=4, **common)
    build.build_composites(split, bgs, out / "offline", "rssn", **common)
    return out, records


def _batches(dataset, workers):
    loader = DataLoader(dataset, batch_size=2, num_workers=workers)
    return [batch for batch in loader]


def _images(dataset, epoch):
    dataset.set_epoch(epoch)
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


# --------------------------------------------------------------------------------------------
# the compose stage's side
# --------------------------------------------------------------------------------------------

def test_online_route_holds_recipe_layers_and_inspection_set(tiny, routes):
    split, bgs = tiny
    out, records = routes
    route = out / "rssn"
    assert sorted(p.name for p in route.iterdir()) == ["inspection", "layers", "recipe.json"]
    recipe = json.loads((route / online.RECIPE_FILE).read_text())
    assert recipe == json.loads(json.dumps(online.recipe("rssn", CONFIG, seed=1, fg_method="naive", denoiser="nlm")))
    assert recipe["config"]["k"] == 2 and recipe["config"]["blur_kernels"] == [3, 5]
    layers = route / online.LAYERS_DIR
    names = split.names()
    assert sorted(p.stem for p in (layers / online.ALPHA).iterdir()) == names
    for folder in (online.FG, online.FG_DENOISED):
        assert sorted(p.name for p in (layers / folder).iterdir()) == [f"{n}.png" for n in names]
    assert sorted(p.name for p in (layers / online.BACKGROUNDS).iterdir()) == sorted(p.name for p in bgs.iterdir())
    assert sorted(p.stem for p in (layers / online.BG_DENOISED).iterdir()) == sorted(p.stem for p in bgs.iterdir())
    # the layers are the caches and the sources (hard links on one file system)
    cached_fg = out / "_cache" / "fg" / "naive" / f"{names[0]}.png"
    assert os.path.samefile(layers / online.FG / f"{names[0]}.png", cached_fg)
    np.testing.assert_array_equal(read_alpha(layers / online.ALPHA / f"{names[0]}.png"),
                                  read_alpha(split.mask_path(names[0])))
    # the inspection set: the first composites of epoch 0 of a run seeded like the stage
    shown = route / online.INSPECTION_DIR
    assert len(records) == 4 and list(records.columns) == list(build.RECORD_COLUMNS)
    pd.testing.assert_frame_equal(pd.read_csv(shown / "records.csv", keep_default_na=False),
                                  records.astype({"denoiser": str}), check_dtype=False)
    drawn = online.OnlineRoute(route)
    for index, row in records.iterrows():
        composite = drawn.composite(index, 0, 1)
        for layer in build.LAYERS:
            read = read_alpha if layer == "alpha" else read_image
            np.testing.assert_array_equal(read(shown / layer / f"{row['name']}.png"), getattr(composite, layer))
        assert row.bg == drawn.backgrounds[drawn.background(index, 0, 1)].name
        assert row.fg == names[index // 2] and row.k == index % 2


def test_each_foreground_gets_k_distinct_backgrounds_per_epoch(routes):
    drawn = online.OnlineRoute(routes[0] / "rssn")
    assert len(drawn) == 3 * 2 and [s.name for s in drawn.samples[:2]] == ["f0_0", "f0_1"]
    for epoch in range(3):
        picks = [drawn.background(i, epoch, 0) for i in range(len(drawn))]
        assert all(picks[2 * f] != picks[2 * f + 1] for f in range(3))
    per_epoch = [[drawn.background(i, epoch, 0) for i in range(len(drawn))] for epoch in range(6)]
    assert len({tuple(p) for p in per_epoch}) > 1  # fresh backgrounds across epochs


def test_stage_in_online_mode_with_estimated_fg_bg(tmp_path):
    root = tmp_path / "world"
    split, _ = _tiny_world(root)
    rng = np.random.default_rng(3)
    for j in range(3):
        write_image(root / COCO / f"c{j}.jpg", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    params = _stage_params(root, tmp_path, routes=("coco", "rssn"), k=2, blur_kernels=(3, 5), fg_method="naive",
                           denoiser="nlm", workers=1, fg_error_images=1, gap_images=3, mode="online")
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, fg_bg="estimated"))
    result = stage.run(params)
    out = tmp_path / "composites"
    assert result.ori == out / "ori" and sorted(p.name for p in result.ori.iterdir()) == [
        "bg", "config.json", "fg", "mask", "original"]
    for route in ("coco", "rssn"):
        assert online.is_online(out / route) and len(result.records[route]) == 3
        assert len(list((out / route / online.INSPECTION_DIR / "image").iterdir())) == 3
    assert not (out / "coco" / online.LAYERS_DIR / online.FG_DENOISED).exists()  # the plain route never denoises
    gaps = pd.read_csv(result.tables["domain_gap"])
    assert list(gaps.label.unique()) == ["real", "coco", "rssn"] and (gaps.label == "rssn").sum() == 3
    assert result.metrics["composites"] == {"coco": 3, "rssn": 3}


# --------------------------------------------------------------------------------------------
# the training dataset
# --------------------------------------------------------------------------------------------

def test_online_dataset_is_chosen_by_the_recipe_and_matches_the_offline_layout(routes):
    out, _ = routes
    online_set = ds.training_dataset("rssn", out, out, **KNOBS)
    offline_set = ds.training_dataset("rssn", out, out / "offline", **KNOBS)
    assert isinstance(online_set, ds.OnlineCompositeDataset) and type(offline_set) is ds.MattingDataset
    assert len(online_set) == len(offline_set) == 3 * 2  # N foregrounds x K, like the offline set
    a, b = online_set[1], offline_set[1]
    assert a.keys() == b.keys() and a["name"] == "f0_1" and a["index"] == 1
    for key, value in a.items():
        if torch.is_tensor(value):
            assert (value.shape, value.dtype) == (b[key].shape, b[key].dtype), key
    assert set(a["trimap"].unique().tolist()) <= {0, 1, 2} and 0 <= float(a["alpha"].min()) <= float(a["alpha"].max()) <= 1


def test_draws_depend_only_on_seed_epoch_index_not_on_workers(routes):
    dataset = ds.training_dataset("rssn", routes[0], routes[0], seed=5, **KNOBS)
    dataset.set_epoch(2)
    inline, two = _batches(dataset, 0), _batches(dataset, 2)
    assert len(inline) == len(two) == 3
    for a, b in zip(inline, two):
        assert a["name"] == b["name"]
        for key in ("image", "fg", "bg", "alpha", "trimap"):
            assert torch.equal(a[key], b[key]), key
    again = ds.training_dataset("rssn", routes[0], routes[0], seed=5, cache=True, **KNOBS)
    assert torch.equal(_images(again, 2), torch.cat([b["image"] for b in inline]))


def test_epochs_and_seeds_draw_different_composites(routes):
    dataset = ds.training_dataset("rssn", routes[0], routes[0], seed=0, **KNOBS)
    first, second = _images(dataset, 0), _images(dataset, 1)
    assert not torch.equal(first, second)
    assert torch.equal(first, _images(dataset, 0))  # an epoch is reproducible
    drawn = online.OnlineRoute(routes[0] / "rssn")
    assert any(not np.array_equal(drawn.composite(i, 0, 0).image, drawn.composite(i, 1, 0).image)
               for i in range(len(drawn)))
    assert any(not np.array_equal(drawn.composite(i, 0, 0).image, drawn.composite(i, 0, 1).image)
               for i in range(len(drawn)))


@pytest.mark.parametrize("change", [{"seed": 2}, {"config": {"noise_sigma": 30.0, "p_noise": 1.0}}])
def test_a_changed_recipe_draws_different_composites(routes, tmp_path, change):
    import shutil

    copy = tmp_path / "rssn"
    shutil.copytree(routes[0] / "rssn", copy)
    recipe = json.loads((copy / online.RECIPE_FILE).read_text())
    before = [online.OnlineRoute(copy).composite(i, 0, 0).image for i in range(6)]
    for key, value in change.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) else value
    (copy / online.RECIPE_FILE).write_text(json.dumps(recipe))
    after = [online.OnlineRoute(copy).composite(i, 0, 0).image for i in range(6)]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_denoised_layers_are_read_exactly_when_the_draw_denoises(routes, monkeypatch):
    drawn = online.OnlineRoute(routes[0] / "rssn")
    read = []
    monkeypatch.setattr(online, "read_image", lambda path: read.append(Path(path).parent.name) or read_image(path))
    for i in range(len(drawn)):
        read.clear()
        record = drawn.composite(i, 0, 0).record
        assert (online.FG_DENOISED in read) == record["denoise"] == (online.BG_DENOISED in read)
        assert record["denoised_by"] in ("given", "")


def test_training_and_the_stage_samples_use_the_online_route(tmp_path):
    """A train@ run and gfm.train.stage.samples on an online route (compose.out/<route>, the data it declares)."""
    from test_train import _world

    world = _world(tmp_path / "world", n=4)
    composites = tmp_path / "composites"
    split = Split(world / "am2k" / "train")
    build.build_online_route(split, world / "am2k" / "train" / "bg", composites, "bg20k",
                             config=rssn.route_config("bg20k", k=2), fg_method="naive", seed=0, inspection=2,
                             workers=1, progress=False)
    raw = gconfig.to_dict(tiny_params(world, tmp_path / "runs"))
    raw["compose"]["out"] = str(composites)
    raw["train"]["experiments"]["tiny"].update(track="bg20k", data=str(composites / "bg20k"), epochs=1,
                                               steps_per_epoch=2)
    params = gconfig.parse_params(raw, source="tiny online params")
    data = train_stage.samples(params, "tiny")
    assert isinstance(data, ds.OnlineCompositeDataset) and len(data) == 8
    result = tr.train(tr.TrainConfig.from_params(params, "tiny", 3, progress=False))
    assert result.summary["training_samples"] == 8 and result.summary["steps"] == 2


# --------------------------------------------------------------------------------------------
# ORI-Track with estimated F and B
# --------------------------------------------------------------------------------------------

def _photos(root: Path, n=2, h=48, w=64) -> Split:
    """Real-like training photos: Eq. (1) of smooth F and B (the layers the closed form assumes) and a soft matte."""
    rng = np.random.default_rng(11)
    split = Split(root / "am2k" / "train")
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    for i in range(n):
        fg = rng.uniform(0.2, 0.8, 3) + 0.2 * np.stack([yy, xx, yy * xx], -1)
        bg = rng.uniform(0.1, 0.9, 3) - 0.2 * np.stack([xx, yy, xx], -1)
        alpha = np.clip(2.5 - 12 * np.hypot(yy - 0.5, xx - 0.45 + 0.05 * i), 0, 1)[..., None]
        write_image(split.original / f"p{i}.png", np.rint(255 * np.clip(alpha * fg + (1 - alpha) * bg, 0, 1)).astype(np.uint8))
        write_image(split.mask / f"p{i}.png", np.rint(255 * alpha[..., 0]).astype(np.uint8))
    return split


def test_estimated_ori_set_satisfies_eq1_in_the_transition_band(tmp_path):
    split = _photos(tmp_path / "world")
    folder = build.build_ori_estimated(split, tmp_path, fg_method="cf", workers=1, progress=False)
    assert folder == tmp_path / "ori"
    names = split.names()
    for name in names:
        image = read_image(folder / "original" / f"{name}.png").astype(np.float64) / 255
        alpha = read_alpha(folder / "mask" / f"{name}.png").astype(np.float64)[..., None] / 255
        fg = read_image(folder / "fg" / f"{name}.png").astype(np.float64) / 255
        bg = read_image(folder / "bg" / f"{name}.png").astype(np.float64) / 255
        band = ((alpha > 0) & (alpha < 1))[..., 0]
        assert band.sum() > 20
        error = np.abs(alpha * fg + (1 - alpha) * bg - image)[band]
        assert error.mean() < 2 / 255 and error.max() < 6 / 255  # 8-bit rounding of F and B, and the solver
        # the official default, F = alpha I, is far from the photo's F
        assert np.abs(alpha * image - fg)[band].mean() > 10 * error.mean()
        assert os.path.samefile(folder / "original" / f"{name}.png", split.image_path(name))
    samples = ds.training_samples("ori", tmp_path / "no-datasets", tmp_path, fg_bg="estimated")
    assert [s.name for s in samples] == names
    assert samples[0].fg == folder / "fg" / f"{names[0]}.png" and samples[0].bg == folder / "bg" / f"{names[0]}.png"
    sample = ds.training_dataset("ori", tmp_path / "no-datasets", tmp_path, fg_bg="estimated", **KNOBS)[0]
    assert sample["fg"].shape == sample["image"].shape


def test_background_cache_extends_an_f_only_cache_once(tiny, tmp_path, monkeypatch):
    split, _ = tiny
    dst = tmp_path / "cache"
    build.cache_foregrounds(split, dst, "ml", workers=1, progress=False)
    name = split.names()[0]
    f_only = (dst / f"{name}.png").read_bytes()
    assert "background" not in json.loads((dst / f"{name}.recipe.json").read_text())
    assert not (dst / build.BACKGROUND_CACHE).exists()
    calls = []
    estimate = build.estimate_foreground
    monkeypatch.setattr(build, "estimate_foreground", lambda *a, **k: calls.append(k) or estimate(*a, **k))
    build.cache_foregrounds(split, dst, "ml", background=True, workers=1, progress=False)
    assert len(calls) == 3 and all(k["return_background"] for k in calls)
    assert (dst / f"{name}.png").read_bytes() == f_only  # the same F as the F-only solve
    assert json.loads((dst / f"{name}.recipe.json").read_text())["background"] is True
    build.cache_foregrounds(split, dst, "ml", background=True, workers=1, progress=False)
    build.cache_foregrounds(split, dst, "ml", workers=1, progress=False)
    assert len(calls) == 3  # both reuse the entries


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------

def test_bad_online_routes_name_the_file(routes, tmp_path):
    import shutil

    route = tmp_path / "composites" / "rssn"
    shutil.copytree(routes[0] / "rssn", route)
    (route / online.RECIPE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"rssn/recipe\.json"):
        online.OnlineRoute(route)
    with pytest.raises(FileNotFoundError, match=r"rssn/recipe\.json: missing"):
        ds.training_dataset("rssn", tmp_path, tmp_path / "composites", **KNOBS)
    (route / online.RECIPE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"recipe\.json: not a readable JSON"):
        online.OnlineRoute(route)
    recipe = online.recipe("rssn", CONFIG, seed=1, fg_method="naive", denoiser="nlm")
    (route / online.RECIPE_FILE).write_text(json.dumps({**recipe, "config": {**recipe["config"], "p_blur": 2}}))
    with pytest.raises(ValueError, match=r"recipe\.json: config: p_blur"):
        online.OnlineRoute(route)
    (route / online.RECIPE_FILE).write_text(json.dumps(recipe))
    with pytest.raises(ValueError, match="online route"):
        ds.composite_samples(tmp_path / "composites", "rssn")
    (route / online.LAYERS_DIR / online.FG / "f1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"layers/fg/f1\.png: the cached F is missing"):
        ds.training_dataset("rssn", tmp_path, tmp_path / "composites", **KNOBS)
    shutil.copy(route / online.LAYERS_DIR / online.FG / "f0.png", route / online.LAYERS_DIR / online.FG / "f1.png")
    (route / online.LAYERS_DIR / online.BG_DENOISED / "b2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"layers/bg_denoised/b2\.png: the cached denoised B"):
        online.OnlineRoute(route)


def test_a_corrupt_layer_fails_or_is_skipped_by_name(routes, tmp_path):
    import shutil

    route = tmp_path / "rssn"
    shutil.copytree(routes[0] / "rssn", route)
    write_image(route / online.LAYERS_DIR / online.FG / "f1.png", np.zeros((5, 5, 3), np.uint8))
    failing = ds.OnlineCompositeDataset(route, **KNOBS)
    with pytest.raises(Exception, match=r"f1\.png: size 5x5 does not match"):
        failing[2]
    skipping = ds.OnlineCompositeDataset(route, on_bad_sample="skip", **KNOBS)
    with pytest.warns(UserWarning, match=r"f1_[01]"):
        assert skipping[2]["name"] == "f2_0"  # f1_1 has the same foreground
    assert skipping.skipped == ["f1_0", "f1_1"]


def test_estimated_ori_without_the_compose_stage_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ori/original: no ORI-Track set"):
        ds.training_samples("ori", tmp_path, tmp_path / "composites", fg_bg="estimated")
