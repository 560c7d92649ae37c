"""gfm.model.checkpoint: the run-folder contract, safe reading, clear errors, released checkpoints."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pickle
import random

import numpy as np
import pytest
import torch

from gfm.model.checkpoint import (CHECKPOINT_FILE, MODEL_FILE, RUN_FORMAT, SUMMARY_FILE, CheckpointError, ModelSpec,
                                  load_official, load_run, load_training_state, parse_official, rng_state,
                                  save_run, save_training_state, set_rng_state)
from gfm.model.network import build_gfm
from gfm.model.torchfile import DAMAGED, FOREIGN, REFUSED, UnreadableFile, load_weights_only

pytestmark = pytest.mark.usefixtures("one_thread")
X = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
#: ``TrainConfig(experiment="tiny", backbone="r18_lite").to_dict()`` of gfm.train.loop at 896d153, the
#: ``config`` of the run folders written before gfm.model.checkpoint existed.
LEGACY_CONFIG = {
    "experiment": "tiny", "track": "ori", "datasets": "artifacts/datasets", "composites": "artifacts/composites",
    "out_dir": "artifacts/models", "backbone": "r18_lite", "rosta": "TT", "decoder": "two", "ppm": "five",
    "bridge": True, "pretrained": False, "crop_sizes": [640, 960, 1280], "input_size": 320, "trimap_kernel": 25,
    "ftbt_kernel": 50, "fg_bg": "auto", "epochs": 500, "steps_per_epoch": None, "max_steps": None, "batch_size": 32,
    "lr": 1e-05, "device": "auto", "precision": "auto", "channels_last": True, "seed": 0, "workers": 0,
    "cache": False, "resume": False, "official_loss": False, "on_bad_sample": "fail", "progress": True}


def _fusion(model):
    with torch.no_grad():
        return model.eval()(X)["fusion"]


class Payload:
    """Pickles as a call to ``open(marker, "w")``: loading it with plain pickle creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _no_torch_advice(message: str) -> None:
    assert "weights_only" not in message and "Traceback" not in message


# --------------------------------------------------------------------------------------------
# ModelSpec
# --------------------------------------------------------------------------------------------

def test_spec_round_trips_through_plain_data():
    spec = ModelSpec("r18_lite", "FT", decoder="single", bridge=False, backbone_options={"width_divisor": 16})
    data = spec.to_dict()
    assert data == {"backbone": "r18_lite", "rosta": "FT", "decoder": "single", "ppm": "five", "bridge": False,
                    "backbone_options": {"width_divisor": 16}}
    assert json.loads(json.dumps(data)) == data
    assert ModelSpec.from_dict(data) == spec and hash(ModelSpec.from_dict(data)) == hash(spec)
    assert str(spec) == "GFM(r18_lite, FT, decoder=single, bridge=False, width_divisor=16)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.rosta = "TT"
    model = spec.build()
    assert (model.backbone, model.rosta, model.decoder, model.bridge) == ("r18_lite", "FT", "single", False)


def test_spec_reads_a_training_configuration():
    config = {**LEGACY_CONFIG, "rosta": "BT", "ppm": "one"}
    assert ModelSpec.from_dict(config) == ModelSpec("r18_lite", "BT", ppm="one")


@pytest.mark.parametrize("data, match", [
    ({"rosta": "TT"}, "no 'backbone'"),
    ({"backbone": "vgg16"}, "backbone: 'vgg16' is not a registered backbone"),
    ({"backbone": "r34", "rosta": "XX"}, "rosta: expected one of"),
    ({"backbone": "r34", "ppm": "two"}, "ppm: expected one of"),
    ({"backbone": "r34", "bridge": "yes"}, "bridge: expected true or false"),
    ({"backbone": "r34", "decoder": "single", "ppm": "none"}, "no meaning with decoder 'single'"),
])
def test_spec_errors_name_the_field(data, match):
    with pytest.raises(ValueError, match=match):
        ModelSpec.from_dict(data)


# --------------------------------------------------------------------------------------------
# save_run / load_run
# --------------------------------------------------------------------------------------------

def test_save_run_then_load_run(tmp_path):
    spec = ModelSpec("r18_lite", "TT", ppm="one", backbone_options={"width_divisor": 16})
    torch.manual_seed(3)
    model = spec.build().eval()
    path = save_run(tmp_path / "x-tt", model, spec, extra={"experiment": "x-tt", "track": "rssn", "steps": 7})
    assert path == tmp_path / "x-tt" / MODEL_FILE
    assert sorted(p.name for p in path.parent.iterdir()) == [MODEL_FILE]  # atomic: no temporary file left
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == RUN_FORMAT and raw["spec"] == spec.to_dict()
    for target in (tmp_path / "x-tt", path):
        loaded, info = load_run(target)
        assert not loaded.training and info.kind == "run" and info.spec == spec and info.source == path
        assert info.experiment == "x-tt" and info.extra["steps"] == 7
        torch.testing.assert_close(_fusion(loaded), _fusion(model), rtol=0, atol=0)
    assert info.meta() == {"experiment": "x-tt", "source": str(path), "official": False, "track": "rssn",
                           **spec.to_dict()}


def test_save_run_checks_spec_and_extra_before_writing(tmp_path):
    model = build_gfm("r18_lite", "TT")
    with pytest.raises(CheckpointError, match=r"does not match GFM\(r18_lite, FT\).*another shape.*decoder0_g"):
        save_run(tmp_path / "a", model, ModelSpec("r18_lite", "FT"))
    with pytest.raises(TypeError, match=r"extra\['lr'\] is a numpy.float64.*float\(\)"):
        save_run(tmp_path / "b", model, ModelSpec("r18_lite"), extra={"lr": np.float64(1e-5)})
    with pytest.raises(TypeError, match="spec must be a ModelSpec"):
        save_run(tmp_path / "c", model, {"backbone": "r18_lite"})
    assert not any(tmp_path.rglob("*.pt"))


def test_legacy_run_folder_still_loads(tmp_path, make_run):
    """The format gfm.train.loop wrote before this module: a bare state dict + train_summary.json."""
    model = make_run(tmp_path / "old-ft", "FT", legacy=True, decoder="single")
    loaded, info = load_run(tmp_path / "old-ft")
    assert info.kind == "legacy run" and info.spec == ModelSpec("r18_lite", "FT", decoder="single")
    assert info.experiment == "old-ft" and info.meta()["track"] == "ori"
    torch.testing.assert_close(_fusion(loaded), _fusion(model), rtol=0, atol=0)


def test_legacy_training_checkpoint_with_numpy_rng_still_loads(tmp_path):
    """checkpoint.pt as gfm.train.loop wrote it before this module: numpy's RNG state is a tuple holding an ndarray."""
    model = build_gfm("r18_lite", "TT")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(X)["fusion"].mean().backward()
    optimizer.step()
    np.random.seed(5)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(), "epoch": 1, "step": 2,
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
             "sampler_seed": 0, "config": LEGACY_CONFIG,
             "history": [{"step": 1, "epoch": 1, "total": 0.5}], "time": 1.5}
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    loaded, info = load_run(tmp_path / CHECKPOINT_FILE)
    assert info.kind == "training state" and info.experiment == "tiny" and info.spec == ModelSpec("r18_lite")
    torch.testing.assert_close(_fusion(loaded), _fusion(model), rtol=0, atol=0)
    restored = load_training_state(tmp_path / CHECKPOINT_FILE)
    assert restored["optimizer"]["param_groups"][0]["lr"] == 1e-3 and restored["history"] == state["history"]
    expected = np.random.rand(3)
    np.random.seed(99)
    set_rng_state(restored["rng"])
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_training_state_round_trip_restores_every_generator(tmp_path):
    state = {"model": build_gfm("r18_lite").state_dict(), "config": {"backbone": "r18_lite", "rosta": "TT"},
             "rng": rng_state(), "epoch": 3, "history": [{"step": 1, "total": 0.25}], "seconds": None}
    expected = (torch.rand(2), np.random.rand(2), random.random())
    save_training_state(tmp_path / CHECKPOINT_FILE, state)
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]
    loaded = load_training_state(tmp_path / CHECKPOINT_FILE)
    assert loaded["epoch"] == 3 and loaded["history"] == state["history"] and loaded["seconds"] is None
    set_rng_state(loaded["rng"])
    torch.testing.assert_close(torch.rand(2), expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(np.random.rand(2), expected[1])
    assert random.random() == expected[2]
    assert load_run(tmp_path / CHECKPOINT_FILE)[1].kind == "training state"


def test_training_state_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError, match=r"state\['rng'\]\['numpy'\]\[1\] is a numpy.ndarray.*torch.from_numpy"):
        save_training_state(tmp_path / "c.pt", {"rng": {"numpy": np.random.get_state()}})
    with pytest.raises(TypeError, match=r"state\['config'\] is a .*Spec.*a dict"):
        save_training_state(tmp_path / "c.pt", {"config": ModelSpec("r34")})
    with pytest.raises(TypeError, match=r"key \(1, 2\) is a tuple"):
        save_training_state(tmp_path / "c.pt", {"x": {(1, 2): 0}})
    assert not (tmp_path / "c.pt").exists()


# --------------------------------------------------------------------------------------------
# Nothing in a checkpoint runs; every bad file gets one clear error
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("writer", ["torch.save", "torch.save legacy format", "pickle.dump"])
@pytest.mark.parametrize("reader", ["load_run", "load_training_state", "load_official", "run folder"])
def test_a_pickled_payload_is_never_run(tmp_path, writer, reader):
    marker = tmp_path / "marker"
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / (MODEL_FILE if reader == "run folder" else "evil.pt")
    payload = {"model": Payload(marker), "config": {"backbone": "r18_lite"}}
    if writer == "pickle.dump":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=writer == "torch.save")
    read = {"load_run": load_run, "load_training_state": load_training_state, "run folder": lambda p: load_run(folder),
            "load_official": lambda p: load_official(p, "r18_lite", "TT")}[reader]
    with pytest.raises(CheckpointError) as error:
        read(path)
    assert not marker.exists(), "the payload ran"
    message = str(error.value)
    assert str(path) in message and "refused" in message and "open" in message and "nothing in it was run" in message
    _no_torch_advice(message)


def _state_with(change):
    state = build_gfm("r18_lite", "TT").state_dict()
    change(state)
    return state


@pytest.mark.parametrize("name, content, match", [
    ("list", [1, 2, 3], r"holds a list of 3 items, not a GFM run file"),
    ("tensor", torch.zeros(3), r"holds a torch.Tensor, not a GFM run file"),
    ("empty", b"", r"empty file"),
    ("random", bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)),
     r"not a PyTorch checkpoint: the pickle is foreign or corrupt"),
    ("truncated", "truncated", r"not a readable PyTorch checkpoint, truncated or corrupt"),
    ("plain pickle", pickle.dumps({"a": 1}, protocol=4), r"not a PyTorch checkpoint"),
    ("missing key", _state_with(lambda s: s.pop("decoder0_f.6.bias")), r"1 missing keys \[decoder0_f.6.bias\]"),
    ("unexpected key", _state_with(lambda s: s.update({"decoder9.weight": torch.zeros(1)})),
     r"1 unexpected keys \[decoder9.weight\]"),
    ("wrong shape", _state_with(lambda s: s.update({"decoder0_g.6.weight": torch.zeros(2, 2)})),
     r"1 keys of another shape \[decoder0_g.6.weight \(2, 2\) vs"),
])
def test_wrong_content_is_one_clear_error_naming_the_file(tmp_path, make_run, name, content, match):
    folder = tmp_path / "run"
    make_run(folder, legacy=True)  # train_summary.json says GFM(r18_lite, TT)
    path = folder / MODEL_FILE
    if content == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=match) as error:
        load_run(folder)
    assert str(path) in str(error.value)
    _no_torch_advice(str(error.value))


def test_a_run_file_with_a_broken_spec_or_summary_names_it(tmp_path, make_run):
    make_run(tmp_path / "a")
    payload = torch.load(tmp_path / "a" / MODEL_FILE, weights_only=True)
    payload["spec"]["rosta"] = "XX"
    torch.save(payload, tmp_path / "a" / MODEL_FILE)
    with pytest.raises(CheckpointError, match=r"model.pt: unusable model spec: spec rosta: expected one of"):
        load_run(tmp_path / "a")
    make_run(tmp_path / "b", legacy=True)
    (tmp_path / "b" / SUMMARY_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"b/train_summary.json: no readable 'config' entry"):
        load_run(tmp_path / "b")
    (tmp_path / "b" / SUMMARY_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"bare state dict without train_summary.json.*--official r34-tt"):
        load_run(tmp_path / "b")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_run(tmp_path / "missing")
    (tmp_path / "run").mkdir()
    torch.save({}, tmp_path / "run" / CHECKPOINT_FILE)
    with pytest.raises(FileNotFoundError, match=r"without model.pt.*training has not finished.*checkpoint.pt"):
        load_run(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no such official checkpoint"):
        load_official(tmp_path / "gone.pth", "r34", "TT")
    with pytest.raises(FileNotFoundError, match="no such training checkpoint"):
        load_training_state(tmp_path / "gone.pt")


# --------------------------------------------------------------------------------------------
# The reader shared with gfm.model.backbones (gfm.model.torchfile)
# --------------------------------------------------------------------------------------------

def test_the_shared_reader_says_which_of_three_things_went_wrong(tmp_path):
    marker = tmp_path / "marker"
    refused, foreign, damaged = tmp_path / "refused.pt", tmp_path / "foreign.pt", tmp_path / "damaged.pt"
    torch.save({"a": Payload(marker)}, refused)
    foreign.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    torch.save({"w": torch.ones(1000)}, damaged)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    for path, kind in ((refused, REFUSED), (foreign, FOREIGN), (damaged, DAMAGED)):
        with pytest.raises(UnreadableFile) as error:
            load_weights_only(path)
        problem = error.value
        assert problem.kind == kind and problem.detail and "\n" not in problem.detail, (path.name, problem)
        assert problem.__suppress_context__, "torch's advice to load unsafely must not be chained"
        _no_torch_advice(problem.detail)
    assert not marker.exists(), "the payload ran"
    with pytest.raises(UnreadableFile) as error:
        load_weights_only(refused)
    assert error.value.detail.endswith("open")
    with pytest.raises(UnreadableFile) as error:
        load_weights_only(damaged)
    assert error.value.detail.startswith("PytorchStreamReader failed reading zip archive")


def test_the_shared_reader_allows_globals_for_one_read_and_reraises_what_it_is_told(tmp_path):
    path = tmp_path / "day.pt"
    torch.save({"day": datetime.date(2022, 1, 2)}, path)
    with pytest.raises(UnreadableFile, match="refused: datetime.date"):
        load_weights_only(path)
    assert load_weights_only(path, allowed=[datetime.date]) == {"day": datetime.date(2022, 1, 2)}
    with pytest.raises(UnreadableFile, match="refused: datetime.date"):
        load_weights_only(path)  # allowed for that read only, never process-wide
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        load_weights_only(folder, reraise=(OSError,))
    with pytest.raises(UnreadableFile) as error:
        load_weights_only(folder)
    assert error.value.kind == DAMAGED and "Is a directory" in error.value.detail


# --------------------------------------------------------------------------------------------
# Released (official) checkpoints
# --------------------------------------------------------------------------------------------

def test_load_official_from_a_file_with_module_prefix(tmp_path):
    torch.manual_seed(0)
    source = build_gfm("r18_lite", "TT").eval()
    path = tmp_path / "ckpt.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    with pytest.raises(ValueError, match="unexpected keys"):  # r18_lite is not in the official code
        load_official(path, "r34", "TT")
    # the loader builds registered backbones by name, so r18_lite checkpoints load too
    loaded = load_official(path, "r18_lite", "TT")
    torch.testing.assert_close(_fusion(loaded), _fusion(source), rtol=0, atol=0)


def test_load_official_lists_missing_and_unexpected_keys():
    state = build_gfm("r18_lite", "TT").state_dict()
    del state["decoder0_f.6.bias"]
    state["decoder9_f.0.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as error:
        load_official(state, "r18_lite", "TT")
    message = str(error.value)
    assert "1 missing keys [decoder0_f.6.bias]" in message and "1 unexpected keys [decoder9_f.0.weight]" in message
    with pytest.warns(UserWarning, match="decoder0_f.6.bias"):
        model = load_official(state, "r18_lite", "TT", strict=False)
    torch.testing.assert_close(model.decoder0_f[0].weight, state["decoder0_f.0.weight"], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"another shape.*decoder0_g.6.weight"):
        load_official(build_gfm("r18_lite", "FT").state_dict(), "r18_lite", "TT")


def test_load_official_refuses_a_run_and_says_what_to_use(tmp_path, make_run):
    make_run(tmp_path / "ori-tt")
    with pytest.raises(CheckpointError, match=r"ori-tt: a training run folder of this project.*without --official"):
        load_official(tmp_path / "ori-tt", "r18_lite", "TT")
    with pytest.raises(CheckpointError, match=r"model.pt: a model.pt of a training run.*load_run"):
        load_official(tmp_path / "ori-tt" / MODEL_FILE, "r18_lite", "TT")
    save_training_state(tmp_path / CHECKPOINT_FILE, {"model": {}, "config": {"backbone": "r18_lite"}})
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: a training checkpoint.pt"):
        load_official(tmp_path / CHECKPOINT_FILE, "r18_lite", "TT")
    torch.save([1], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"list.pth: holds a list of 1 items, not a state dict"):
        load_official(tmp_path / "list.pth", "r18_lite", "TT")


@pytest.mark.parametrize("spec, expected", [("r34-tt", ("r34", "TT")), ("r34_2b-RIM", ("r34_2b", "RIM")),
                                            ("d121-ft", ("d121", "FT"))])
def test_parse_official(spec, expected):
    assert parse_official(spec) == expected


@pytest.mark.parametrize("spec", ["r34", "r34-xx", "-tt"])
def test_parse_official_rejects(spec):
    with pytest.raises(ValueError, match="BACKBONE-ROSTA"):
        parse_official(spec)
