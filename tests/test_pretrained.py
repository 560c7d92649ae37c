"""Pretrained initialisation of the shared encoder (``train.pretrained``, Sect. 3.1): torchvision's
ImageNet weights from torch hub's cache or downloaded into it, none, or a local state dict.

Offline and fast: the "ImageNet weights" are a locally made ResNet-18 state dict (torchvision's
naming, random values) placed where the loader looks (a temporary ``TORCH_HOME``) or served by the
127.0.0.1 test server under a name whose hash prefix is the file's own sha256 prefix, as
torchvision's file names are. ``r18_lite`` stands for the paper's backbones: its torchvision part
is a ResNet-18 (47 MB of weights, against 85 MB for ResNet-34); the code path is the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from gfm.core.io import sha256_file
from gfm.model.backbones import (PRETRAINED_CHOICES, PretrainedError, create_encoder, imagenet_weights_path,
                                 load_pretrained, prepare_pretrained)
from gfm.model.checkpoint import ModelSpec
from gfm.model.network import build_gfm
from httpserver import LocalServer, sha

WEIGHTS = "ResNet18_Weights.IMAGENET1K_V1"
TORCHVISION_FILE = "resnet18-f37072fd.pth"


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> Path:
    """A torchvision-shaped ResNet-18 state dict (seeded random values), saved once per module."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "resnet18-local.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def resnet18_state(resnet18_file) -> dict:
    return torch.load(resnet18_file, weights_only=True)


@pytest.fixture()
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME (torch.hub.get_dir reads it); downloads refused unless a test allows them."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # as if torch.hub.set_dir had never been called
    return home


@pytest.fixture()
def no_download(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"a download of {url} was attempted")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def cache_folder(home: Path) -> Path:
    return home / "hub" / "checkpoints"


def assert_backbone_equals(model, state: dict) -> None:
    """The GFM's torchvision part holds exactly ``state`` (its encoder stages share those tensors)."""
    own = model.resnet.state_dict()
    for key in ("conv1.weight", "layer1.0.bn1.running_var", "layer4.1.conv2.weight", "fc.weight"):
        torch.testing.assert_close(own[key], state[key], rtol=0, atol=0)
    torch.testing.assert_close(model.encoder0[0].weight, state["conv1.weight"], rtol=0, atol=0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# none
# --------------------------------------------------------------------------------------------

def test_none_and_its_aliases_load_nothing(torch_home, no_download):
    assert PRETRAINED_CHOICES == ("imagenet", "none")
    for value in ("none", " none ", False, None):
        assert prepare_pretrained("r18_slim", value) == {"pretrained": "none"}
    torch.manual_seed(0)
    a = build_gfm("r18_lite", pretrained="none").encoder0[0].weight
    torch.manual_seed(0)
    b = ModelSpec("r18_lite").build().encoder0[0].weight  # the default is none
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch_home.exists()


def test_a_value_of_another_type_is_refused():
    with pytest.raises(PretrainedError, match=r"pretrained=3: expected 'imagenet' or 'none' or the path"):
        prepare_pretrained("r18_lite", 3)


# --------------------------------------------------------------------------------------------
# imagenet: torch hub's cache
# --------------------------------------------------------------------------------------------

def test_imagenet_reads_the_file_placed_in_torch_hubs_cache(torch_home, no_download, resnet18_file, resnet18_state):
    target = imagenet_weights_path(WEIGHTS)
    assert target == cache_folder(torch_home) / TORCHVISION_FILE  # TORCH_HOME/hub/checkpoints/<name of the URL>
    target.parent.mkdir(parents=True)
    target.symlink_to(resnet18_file)
    record = prepare_pretrained("r18_lite", "imagenet", width_divisor=16)
    assert record == {"pretrained": "imagenet", "weights": WEIGHTS,
                      "url": f"https://download.pytorch.org/models/{TORCHVISION_FILE}", "file": TORCHVISION_FILE,
                      "sha256": sha256_file(resnet18_file)}
    for pretrained in ("imagenet", True):
        assert_backbone_equals(build_gfm("r18_lite", pretrained=pretrained), resnet18_state)
    assert_backbone_equals(ModelSpec("r18_lite", "RIM").build(pretrained="imagenet"), resnet18_state)
    encoder = create_encoder("r18_lite")
    assert load_pretrained(encoder, "imagenet") == record
    torch.testing.assert_close(encoder.stages[4][1].conv2.weight, resnet18_state["layer4.1.conv2.weight"],
                               rtol=0, atol=0)


def test_imagenet_downloads_into_the_cache_once(torch_home, monkeypatch, resnet18_file, resnet18_state, capsys):
    blob = resnet18_file.read_bytes()
    name = f"resnet18-{sha(blob)[:8]}.pth"  # torchvision's naming: the prefix of the file's own sha256
    with LocalServer() as server:
        route = server.add(f"/models/{name}", blob)
        url = server.url(f"/models/{name}")
        monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value, "url", url)
        record = prepare_pretrained("r18_lite", "imagenet", progress=False)
        assert record == {"pretrained": "imagenet", "weights": WEIGHTS, "url": url, "file": name,
                          "sha256": sha(blob)}
        assert sorted(p.name for p in cache_folder(torch_home).iterdir()) == [name]
        assert (cache_folder(torch_home) / name).read_bytes() == blob
        assert capsys.readouterr().err == ""  # progress=False: no progress bar
        assert_backbone_equals(build_gfm("r18_lite", pretrained="imagenet"), resnet18_state)
        assert prepare_pretrained("r18_lite", "imagenet") == record
        assert len(route.hits) == 1  # the cached file is used from then on


@pytest.mark.parametrize("failure", ["wrong-hash", "cut-short"])
def test_a_failed_download_keeps_nothing(torch_home, monkeypatch, resnet18_file, failure):
    # urllib ends a body cut short without an error: the hash prefix of the name is what catches it
    blob = resnet18_file.read_bytes()
    if failure == "wrong-hash":
        name, route = "resnet18-00000000.pth", {}
    else:
        name, route = f"resnet18-{sha(blob)[:8]}.pth", {"cut_at": 100_000}
    expected = rf"failed \(invalid hash value \(expected \"{name[9:17]}\", got"
    with LocalServer() as server:
        server.add(f"/models/{name}", blob, **route)
        monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value, "url",
                            server.url(f"/models/{name}"))
        with pytest.raises(PretrainedError, match=expected):
            prepare_pretrained("r18_lite", "imagenet", progress=False)
    assert list(cache_folder(torch_home).iterdir()) == []


@pytest.mark.parametrize("failure", ["unreachable", "404"])
def test_offline_imagenet_names_file_folder_url_and_how_to_place_it(torch_home, monkeypatch, failure):
    url = f"http://127.0.0.1:{closed_port()}/models/{TORCHVISION_FILE}"
    with LocalServer() as server:
        if failure == "404":
            url = server.url(f"/models/{TORCHVISION_FILE}")  # no such route
        monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value, "url", url)
        with pytest.raises(PretrainedError) as error:
            prepare_pretrained("r18_lite", "imagenet", progress=False)
        # build_gfm goes through the same code (moved from test_model.py: the same assertion)
        with pytest.raises(FileNotFoundError, match=r"hub/checkpoints/resnet18-.*\.pth.*download"):
            build_gfm("r18_lite", pretrained=True)
    message = str(error.value)
    folder = cache_folder(torch_home)
    for part in (f"file {TORCHVISION_FILE} in folder {folder}", url, "r18_lite", WEIGHTS,
                 "copy it into that folder under that name", "TORCH_HOME", "train.pretrained to the path"):
        assert part in message, part
    assert ("Connection refused" if failure == "unreachable" else "HTTP Error 404") in message
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ValueError)
    assert list(folder.iterdir()) == []  # no partial file left behind


def test_a_backbone_without_imagenet_weights_is_refused(torch_home, no_download):
    for value in ("imagenet", True, "weights.pth"):
        with pytest.raises(PretrainedError, match=r"backbone r18_slim is not a torchvision network.*use pretrained "
                                                  r"'none', or a backbone with ImageNet weights"):
            prepare_pretrained("r18_slim", value)
    with pytest.raises(PretrainedError, match="r18_slim"):
        build_gfm("r18_slim", pretrained="imagenet")


def test_a_corrupt_cached_file_is_named(torch_home, no_download):
    target = imagenet_weights_path(WEIGHTS)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(PretrainedError, match=rf"{TORCHVISION_FILE}: not a readable PyTorch file.*delete it"):
        prepare_pretrained("r18_lite", "imagenet")


# --------------------------------------------------------------------------------------------
# A path
# --------------------------------------------------------------------------------------------

def test_a_path_loads_a_torchvision_named_state_dict(tmp_path, torch_home, no_download, resnet18_file,
                                                     resnet18_state):
    record = prepare_pretrained("r18_lite", str(resnet18_file))
    assert record == {"pretrained": str(resnet18_file), "file": str(resnet18_file),
                      "sha256": sha256_file(resnet18_file)}
    assert_backbone_equals(build_gfm("r18_lite", pretrained=str(resnet18_file)), resnet18_state)
    assert_backbone_equals(build_gfm("r18_lite", pretrained=resnet18_file), resnet18_state)  # a Path

    # under "state_dict", saved from nn.DataParallel, without the unused ImageNet classifier
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in resnet18_state.items() if not k.startswith("fc.")}}
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    assert prepare_pretrained("r18_lite", str(path))["sha256"] == sha256_file(path)
    torch.manual_seed(1)
    model = build_gfm("r18_lite", pretrained=str(path))
    assert_backbone_equals(model, {**resnet18_state, "fc.weight": model.resnet.fc.weight})
    assert not torch.equal(model.resnet.fc.weight, resnet18_state["fc.weight"])  # absent: left as initialised


def test_densenet_files_with_the_old_key_names_load(tmp_path, no_download):
    torch.manual_seed(3)
    state = torchvision.models.densenet121(weights=None).state_dict()
    # the files on download.pytorch.org predate BatchNorm's num_batches_tracked and name "norm1" "norm.1"
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in state.items()
           if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    path = tmp_path / "densenet121-old.pth"
    torch.save(old, path)
    prepare_pretrained("d121", str(path))
    model = build_gfm("d121", pretrained=str(path))
    for key in ("features.denseblock1.denselayer1.norm1.weight", "features.denseblock4.denselayer16.conv2.weight",
                "classifier.weight"):
        torch.testing.assert_close(model.densenet.state_dict()[key], state[key], rtol=0, atol=0)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content,expected", [
    (None, (r"no such file \(.*absent\.pth\); expected 'imagenet' or 'none' or the path of a state dict of "
            r"backbone r18_lite")),
    ("folder", r"a folder"),
    (b"\x00\x01 garbage", r"not a PyTorch file of tensors, the pickle is foreign or corrupt \(.+\)"),
    (b"", r"not a readable PyTorch file"),
    ([1, 2, 3], r"holds a list of 3 items, not a state dict"),
    ({}, r"holds a dict of 0 items, not a state dict"),
    ({"conv1.weight": torch.zeros(64, 3, 7, 7), "epoch": 3}, r"1 entries are not tensors \['epoch'\]"),
    ({"runs": _RunsCode()}, r"refused, nothing in it was run: its pickle would call (builtins\.)?print,"),
    ({"conv1.weight": torch.zeros(64, 3, 3, 3), "extra.weight": torch.zeros(1)},
     (r"not weights of backbone r18_lite \(resnet18 in torchvision's key naming, e\.g\. \['conv1\.weight', "
      r"'bn1\.weight'\]\): \d+ missing keys \['bn1\.weight', .*\]; 1 unexpected keys \['extra\.weight'\]; "
      r"1 tensors of another shape \['conv1\.weight \(64, 3, 3, 3\) \(expected \(64, 3, 7, 7\)\)'\]")),
], ids=["missing", "folder", "garbage", "empty", "list", "empty-dict", "not-tensors", "code", "keys-and-shapes"])
def test_path_errors_name_the_file(tmp_path, content, expected, no_download):
    path = tmp_path / ("absent.pth" if content is None else "weights.pth")
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    for attempt in (lambda: prepare_pretrained("r18_lite", str(path)),
                    lambda: build_gfm("r18_lite", pretrained=str(path))):
        with pytest.raises(PretrainedError, match=expected) as error:
            attempt()
        assert str(path) in str(error.value)


def test_wrong_shapes_alone_are_a_clear_error_not_a_runtime_error(tmp_path, resnet18_state):
    state = dict(resnet18_state)
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    path = tmp_path / "narrow.pth"
    torch.save(state, path)
    with pytest.raises(PretrainedError, match=r"narrow\.pth: not weights of backbone r18_lite .*: 1 tensors of "
                                              r"another shape \['layer1\.0\.conv1\.weight \(32, 64, 3, 3\) "
                                              r"\(expected \(64, 64, 3, 3\)\)'\]$"):
        build_gfm("r18_lite", pretrained=str(path))


# --------------------------------------------------------------------------------------------
# torchvision is imported when needed
# --------------------------------------------------------------------------------------------

def test_torchvision_is_imported_when_a_backbone_is_built_not_with_the_module(resnet18_file):
    """Importing gfm.model.backbones imports no torchvision (seconds per process); the first backbone, here
    built on the meta device by prepare_pretrained, imports it, and later backbones hold real weights."""
    code = f"""
import sys
import torch
import gfm.model.backbones as backbones
assert "torchvision" not in sys.modules, "torchvision imported with gfm.model.backbones"
path = {str(resnet18_file)!r}
assert backbones.prepare_pretrained("r18_lite", path)["pretrained"] == path
assert "torchvision" in sys.modules
encoder = backbones.create_encoder("r18_lite")
backbones.load_pretrained(encoder, path)
expected = torch.load(path, weights_only=True)["conv1.weight"]
assert torch.equal(encoder.stages[0][0].weight, expected), "the file's weights were not loaded"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
