"""Training samples (gfm.train.dataset) and the training loop (gfm.train.loop): determinism, resume,
non-finite losses, bad files, DistributedDataParallel on two CPU processes. Every run is configured
the pipeline's way: a params mapping parsed by gfm.core.config, then TrainConfig.from_params."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gfm.core import config as gconfig
from gfm.core import device as gdevice
from gfm.core.io import ImageError, write_image
from gfm.core.trimap import dilation_mask, erosion_mask, trimap
from gfm.model import checkpoint
from gfm.model.infer import load_model
from gfm.model.network import build_gfm, image_to_input
from gfm.train import dataset as ds
from gfm.train import loop as tr

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# a tiny ORI-Track set
# --------------------------------------------------------------------------------------------

def _world(root, n=6, h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    split = root / "am2k" / "train"
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        d = np.hypot(yy - h / 2 - rng.integers(-10, 10), xx - w / 2 - rng.integers(-20, 20)) - rng.integers(20, 35)
        alpha = np.clip(0.5 - d / rng.uniform(2, 8), 0, 1)
        fg = np.clip(rng.normal(rng.integers(60, 200, 3), 20, (h, w, 3)), 0, 255)
        bg = np.clip(rng.normal(rng.integers(0, 255, 3), 10, (h, w, 3)), 0, 255)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        name = f"s_{i:02d}"
        write_image(split / "original" / f"{name}.png", image.round().astype(np.uint8))
        write_image(split / "mask" / f"{name}.png", (alpha * 255).round().astype(np.uint8))
        write_image(split / "fg" / f"{name}.png", fg.round().astype(np.uint8))
        write_image(split / "bg" / f"{name}.png", bg.round().astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _world(tmp_path_factory.mktemp("world"))


pytestmark = pytest.mark.usefixtures("one_thread")

#: The tiny run of these tests: train.* knobs and the experiment "tiny" (overridable per test).
TINY_TRAIN = dict(input_size=64, crop_sizes=[64, 80], trimap_kernel=5, ftbt_kernel=9, lr=1e-3, precision="fp32",
                  workers=0, cache=True, official_loss=False, seeds=[3], checkpoint_interval=0.0)
TINY_EXPERIMENT = dict(track="ori", backbone="r18_lite", rosta="TT", decoder="two", ppm="five", bridge=True,
                       epochs=2, steps_per_epoch=2, batch_size=2)


def tiny_params(world, out, *, train=None, **experiment) -> gconfig.Params:
    """The repository's params.yaml with the datasets at ``world``, runs in ``out`` and one experiment
    ``tiny`` on the ORI-Track (``train`` overrides train.* knobs, keywords the experiment's)."""
    raw = gconfig.to_dict(gconfig.load_params(ROOT / "params.yaml"))
    raw["device"] = "cpu"
    raw["data"]["datasets"] = str(world)
    raw["train"].update({"out": str(out), **TINY_TRAIN, **(train or {})})
    raw["train"]["experiments"] = {"tiny": {**TINY_EXPERIMENT, "data": f"{world}/am2k/train", **experiment}}
    raw["evaluate"].update(experiments=["tiny"], table6_model="tiny")
    return gconfig.parse_params(raw, source="tiny params")


def _config(world, out, *, resume=False, seed=3, train=None, **experiment):
    params = tiny_params(world, out, train=train, **experiment)
    return tr.TrainConfig.from_params(params, "tiny", seed, resume=resume, progress=False)


# --------------------------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------------------------

def test_to_tensor_input_is_rgb_0_255_like_the_model_input():
    image = np.random.default_rng(0).integers(0, 256, (40, 64, 3)).astype(np.uint8)
    tensor = ds.to_tensor_input(image)
    assert tensor.shape == (3, 40, 64) and tensor.dtype == torch.float32
    assert tensor[1, 5, 7].item() == float(image[5, 7, 1])
    torch.testing.assert_close(tensor[None], image_to_input(image))
    assert ds.to_tensor_input(image[None]).shape == (1, 3, 40, 64)
    with pytest.raises(ValueError, match="uint8"):
        ds.to_tensor_input(image.astype(np.float32))


def test_crop_first_morphology_equals_full_image_morphology():
    rng = np.random.default_rng(1)
    alpha = np.zeros((120, 150), np.uint8)
    alpha[30:90, 40:120] = 255
    alpha[25:30, 40:120] = rng.integers(1, 255, (5, 80))
    tri = trimap(alpha, 7)
    for top, left, size, flip in ((0, 0, 64, False), (40, 70, 80, True), (56, 86, 64, False), (10, 5, 100, True)):
        draw = ds.CropDraw(size, top, left, flip)
        sample = ds.make_sample(alpha[..., None].repeat(3, 2), alpha, None, None, tri, draw, input_size=size,
                                ftbt_kernel=15)
        crop = (slice(top, top + size), slice(left, left + size))
        flipped = (lambda x: x[:, ::-1]) if flip else (lambda x: x)
        np.testing.assert_array_equal(sample["erosion"], flipped(erosion_mask(alpha, 15)[crop]))
        np.testing.assert_array_equal(sample["dilation"], flipped(dilation_mask(alpha, 15)[crop]))
        np.testing.assert_array_equal(sample["trimap"], flipped(tri[crop]))
        np.testing.assert_array_equal(sample["alpha"], flipped(alpha[crop]))
        # no F/B files: alpha blending of the crop
        np.testing.assert_allclose(sample["fg"], sample["image"] * (sample["alpha"][..., None] / 255.0), atol=1e-4)


def test_crop_draws_depend_only_on_seed_epoch_index(world):
    samples = ds.ori_track_samples(world)
    a = ds.MattingDataset(samples, input_size=64, crop_sizes=(64, 80), trimap_kernel=5, ftbt_kernel=9, seed=7)
    b = ds.MattingDataset(samples, input_size=64, crop_sizes=(64, 80), trimap_kernel=5, ftbt_kernel=9, seed=7,
                          cache=True)
    for index in (0, 3):
        first, second = a[index], b[index]
        assert first["name"] == samples[index].name
        for key in ("image", "alpha", "fg", "bg", "trimap", "erosion", "dilation"):
            assert torch.equal(first[key], second[key]), key
    a.set_epoch(1)
    assert not torch.equal(a[0]["image"], b[0]["image"])


def test_sample_layout_and_targets(world):
    sample = ds.MattingDataset(ds.ori_track_samples(world), input_size=64, crop_sizes=(64,), trimap_kernel=5,
                               ftbt_kernel=9)[2]
    assert sample["image"].shape == sample["fg"].shape == sample["bg"].shape == (3, 64, 64)
    assert sample["alpha"].shape == sample["erosion"].shape == sample["dilation"].shape == (1, 64, 64)
    assert sample["trimap"].shape == (64, 64) and sample["trimap"].dtype == torch.int64
    assert set(sample["trimap"].unique().tolist()) <= {0, 1, 2}
    alpha = sample["alpha"][0]
    assert bool((sample["erosion"][0] <= (alpha == 1)).all())          # F inside alpha == 1
    assert bool((sample["dilation"][0] >= (alpha > 0)).all())          # B covers alpha > 0
    # the world's F and B recompose the image (up to 8-bit rounding and resampling)
    composite = alpha * sample["fg"] + (1 - alpha) * sample["bg"]
    assert (composite - sample["image"]).abs().mean().item() < 2.0


def test_missing_partner_and_corrupt_files(tmp_path):
    root = _world(tmp_path / "w", n=4)
    split = root / "am2k" / "train"
    (split / "mask" / "s_01.png").unlink()
    with pytest.raises(FileNotFoundError, match="s_01"):
        ds.ori_track_samples(root)
    with pytest.warns(UserWarning, match="s_01"):
        samples = ds.ori_track_samples(root, on_bad_sample="skip")
    assert [s.name for s in samples] == ["s_00", "s_02", "s_03"]
    (split / "fg" / "s_02.png").write_bytes(b"not a png")
    failing = ds.MattingDataset(samples, input_size=64, crop_sizes=(64,), trimap_kernel=5, ftbt_kernel=9)
    with pytest.raises(ImageError, match=r"s_02\.png"):
        failing[1]
    skipping = ds.MattingDataset(samples, input_size=64, crop_sizes=(64,), trimap_kernel=5, ftbt_kernel=9,
                                 on_bad_sample="skip")
    with pytest.warns(UserWarning, match=r"s_02"):
        assert skipping[1]["name"] == "s_03"
    assert skipping.skipped == ["s_02"]


def test_composite_route_samples(tmp_path, world):
    route = tmp_path / "composites" / "rssn"
    source = world / "am2k" / "train"
    for layer, folder in (("image", "original"), ("alpha", "mask"), ("fg", "fg"), ("bg", "bg")):
        (route / layer).mkdir(parents=True)
        for k in range(2):
            (route / layer / f"s_00_{k}.png").write_bytes((source / folder / "s_00.png").read_bytes())
    samples = ds.training_samples("rssn", world, tmp_path / "composites")
    assert [s.name for s in samples] == ["s_00_0", "s_00_1"]
    assert samples[0].bg == route / "bg" / "s_00_0.png"
    with pytest.raises(FileNotFoundError, match="route 'coco'"):
        ds.training_samples("coco", world, tmp_path / "composites")


def test_size_mismatch_names_the_file(tmp_path):
    root = _world(tmp_path / "w", n=2)
    write_image(root / "am2k" / "train" / "bg" / "s_00.png", np.zeros((10, 10, 3), np.uint8))
    data = ds.MattingDataset(ds.ori_track_samples(root), input_size=64, crop_sizes=(64,))
    with pytest.raises(ImageError, match=r"bg/s_00\.png: size 10x10"):
        data[0]


def test_epoch_sampler_shards_a_permutation():
    full = tr.EpochSampler(10, seed=1)
    shards = [tr.EpochSampler(10, seed=1, rank=r, world_size=2) for r in range(2)]
    assert sorted(full.indices()) == list(range(10))
    assert sorted(shards[0].indices() + shards[1].indices()) == list(range(10))
    assert shards[0].indices() == full.indices()[0::2]
    full.set_epoch(1)
    assert full.indices() != tr.EpochSampler(10, seed=1).indices()


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------

def test_from_params_takes_every_setting_from_the_typed_params(world, tmp_path):
    params = tiny_params(world, tmp_path, train={"seeds": [3, 5]}, epochs=4)
    config = tr.TrainConfig.from_params(params, "tiny", 5)
    item = params.experiment("tiny")
    assert config.seed == 5 and config.run == "tiny-s5" and config.run_dir == tmp_path / "tiny" / "s5"
    assert config.crop_sizes == (64, 80) and config.epochs == 4 and config.track == "ori"
    assert config.datasets == str(world) and config.composites == params.compose.out
    assert config.checkpoint_interval == 0.0 and config.device == "cpu" and config.resume is False
    for name in ("backbone", "rosta", "decoder", "ppm", "bridge", "batch_size", "steps_per_epoch", "max_steps"):
        assert getattr(config, name) == getattr(item, name), name
    for name in ("input_size", "trimap_kernel", "ftbt_kernel", "lr", "precision", "workers", "cache",
                 "official_loss", "fg_bg", "channels_last", "on_bad_sample", "checkpoint_interval", "ema",
                 "pretrained"):
        assert getattr(config, name) == getattr(params.train, name), name
    # no second copy of the defaults: every field but the call switches must be given
    required = {f.name for f in dataclasses.fields(tr.TrainConfig) if f.default is dataclasses.MISSING}
    assert required == {f.name for f in dataclasses.fields(tr.TrainConfig)} - {"resume", "progress"}
    with pytest.raises(ValueError, match=r"train\.seeds: seed 4 is not one of \[3, 5\]"):
        tr.TrainConfig.from_params(params, "tiny", 4)
    with pytest.raises(gconfig.ConfigError, match="no experiment 'tinny'"):
        tr.TrainConfig.from_params(params, "tinny", 3)
    repo = gconfig.load_params(ROOT / "params.yaml")
    coco = tr.TrainConfig.from_params(repo, "coco-tt", repo.train.seeds[0])
    assert coco.crop_sizes == repo.train.crop_sizes and coco.track == "coco"
    assert coco.epochs == repo.experiment("coco-tt").epochs


def test_train_writes_its_outputs_and_loads_back(world, tmp_path):
    result = tr.train(_config(world, tmp_path, epochs=1))
    run = tmp_path / "tiny" / "s3"
    assert {p.name for p in run.iterdir() if not p.name.startswith(".")} == {
        "checkpoint.pt", "losses.csv", "model.pt", "train_summary.json"}
    table = pd.read_csv(run / "losses.csv")
    assert list(table.columns) == ["step", "epoch", "total", "glance", "focus_alpha", "focus_lap",
                                   "fusion_alpha", "fusion_lap", "fusion_comp"]
    assert table["step"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(table, result.history, check_exact=False, rtol=1e-5)
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["device"] == "cpu" and summary["precision"] == "fp32"
    assert summary["parameters"] > 0 and set(summary["final_losses"]) >= {"total", "glance"}
    assert summary["seed"] == 3 and summary["run"] == "tiny-s3"
    loaded, meta = load_model(run)
    for key, value in result.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert meta["backbone"] == "r18_lite" and meta["track"] == "ori"
    model, info = checkpoint.load_run(run)
    assert info.kind == "run" and info.extra["seed"] == 3 and info.extra["run"] == "tiny-s3"
    state = checkpoint.load_training_state(run / "checkpoint.pt")   # weights_only: plain data
    assert state["epoch"] == 1 and state["step"] == 2 and state["config"]["seed"] == 3


def test_checkpoints_are_written_at_the_interval_and_after_the_last_epoch(world, tmp_path, monkeypatch):
    saved = []
    real = checkpoint.save_training_state
    monkeypatch.setattr(checkpoint, "save_training_state", lambda path, state: saved.append(state["epoch"]) or
                        real(path, state))
    tr.train(_config(world, tmp_path / "hourly", train={"checkpoint_interval": 3600.0}, epochs=3, steps_per_epoch=1))
    assert saved == [3]                                   # only after the last epoch
    saved.clear()
    tr.train(_config(world, tmp_path / "each", epochs=3, steps_per_epoch=1))
    assert saved == [1, 2, 3]                             # interval 0: every epoch


@pytest.mark.slow
@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(world, tmp_path, ema):
    straight = tr.train(_config(world, tmp_path / "a", train={"ema": ema}, epochs=2))
    tr.train(_config(world, tmp_path / "b", train={"ema": ema}, epochs=1))
    resumed = tr.train(_config(world, tmp_path / "b", train={"ema": ema}, epochs=2, resume=True))
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    pd.testing.assert_frame_equal(straight.history, resumed.history)
    assert resumed.summary["steps"] == 4


def test_weight_average_is_an_exponential_moving_average_with_warm_up():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = tr.WeightAverage(model, 0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.clone() for k, v in start.items() if v.is_floating_point()}
    for step in (1, 2, 3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        model(torch.randn(4, 3))                          # moves the batch-norm statistics
        d = min(0.5, (1 + step) / (10 + step))            # warm-up: 2/11, 3/12, 4/13
        for k in expected:
            expected[k] = d * expected[k] + (1 - d) * model.state_dict()[k]
        average.update(model, step)
    for k, v in expected.items():
        torch.testing.assert_close(average.state_dict()[k], v)
    assert average.state_dict()["1.num_batches_tracked"].item() == 3   # integer buffers are copied
    with pytest.raises(ValueError, match=r"train\.ema.*\(0, 1\)"):
        tr.WeightAverage(model, 1.0)


def test_ema_run_saves_the_average_and_keeps_the_raw_weights_for_resuming(world, tmp_path):
    result = tr.train(_config(world, tmp_path, train={"ema": 0.9}, epochs=1))
    saved, _ = checkpoint.load_run(result.run_dir)
    state = checkpoint.load_training_state(result.checkpoint_path)
    assert set(state["ema"]) == set(state["model"])
    for key, value in saved.state_dict().items():
        assert torch.equal(value, state["ema"][key]), key
        assert torch.equal(result.model.state_dict()[key], value), key
    moved = [k for k, v in state["model"].items() if v.is_floating_point() and not torch.equal(v, state["ema"][k])]
    assert moved                                          # the average is not the last weights


def test_non_finite_loss_names_step_and_samples_and_keeps_the_checkpoint(world, tmp_path, monkeypatch):
    real = tr.losses.gfm_loss
    calls = {"n": 0}

    def poisoned(outputs, batch, rosta, **kwargs):
        calls["n"] += 1
        total, terms = real(outputs, batch, rosta, **kwargs)
        if calls["n"] == 3:
            total = total * float("nan")
            terms = {**terms, "total": total.detach()}
        return total, terms

    monkeypatch.setattr(tr.losses, "gfm_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"step 3 \(epoch 2\).*s_0\d") as error:
        tr.train(_config(world, tmp_path, epochs=3))
    assert "checkpoint.pt" in str(error.value) and "tiny-s3" in str(error.value)
    state = checkpoint.load_training_state(tmp_path / "tiny" / "s3" / "checkpoint.pt")
    assert state["epoch"] == 1 and state["step"] == 2
    assert pd.read_csv(tmp_path / "tiny" / "s3" / "losses.csv")["step"].tolist() == [1, 2]


def test_device_and_precision_choices():
    assert gdevice.resolve_device("cpu") == torch.device("cpu")
    assert gdevice.resolve_precision("auto", torch.device("cpu")) == ("bf16" if gdevice.cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError, match="fp16"):
        gdevice.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="device"):
        gdevice.resolve_device("not-a-device")


# --------------------------------------------------------------------------------------------
# DistributedDataParallel, two CPU processes (gloo)
# --------------------------------------------------------------------------------------------

def _ddp_worker(rank, world_size, port, config, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    result = tr.train(config)
    torch.save({k: v for k, v in result.model.named_parameters()}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_distributed_data_parallel_keeps_ranks_in_sync(world, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(world, tmp_path, epochs=1, steps_per_epoch=2, batch_size=1)
    mp.spawn(_ddp_worker, args=(2, port, config, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(3)
    initial = build_gfm("r18_lite", "TT")
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    moved = [k for k, v in initial.named_parameters() if k in ranks[0] and not torch.equal(v, ranks[0][k])]
    assert moved  # training did something
    assert json.loads((tmp_path / "tiny" / "s3" / "train_summary.json").read_text())["world_size"] == 2
