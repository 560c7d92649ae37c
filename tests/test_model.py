"""GFM network: construction, shapes, parameter counts and parity with the official model.

The parity fixtures (``tests/fixtures/official_gfm_*``) were recorded by running the official
``core/gfm.py`` (JizhiziLi/GFM, commit in the JSON) in /tmp with weights made by
:func:`seeded_state_dict` below over the official key list, on the input made by
:func:`seeded_input`; the tests rebuild the same weights and input, load them with
:func:`gfm.model.checkpoint.load_official` and compare.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gfm.model.backbones import list_backbones
from gfm.model.checkpoint import load_official
from gfm.model.network import (GFM, build_gfm, collaborative_matting, count_parameters, image_to_input,
                               optimise_for_inference)

FIXTURES = Path(__file__).parent / "fixtures"
PAPER_BACKBONES = ("r34", "r34_2b", "d121", "r101")


# --------------------------------------------------------------------------------------------
# The recipe shared with the fixture recorder
# --------------------------------------------------------------------------------------------

def seeded_state_dict(keys, seed: int = 0, gain: float = 0.8) -> dict:
    """Deterministic weights over a key list ``[[name, shape, dtype, alias_of_or_None], ...]``.

    Each tensor comes from its own generator seeded by ``seed`` and the CRC32 of its name;
    conv/linear weights ~ N(0, gain^2 / fan_in), biases ~ N(0, 0.01), BN weights ~ N(1, 0.01),
    running means ~ N(0, 0.01), running variances ~ U(0.5, 1.5). Aliases (one tensor stored under
    two names, as the official checkpoints do for the backbone) get the same tensor.
    """
    out = {}
    for name, shape, _dtype, alias in keys:
        if alias is not None:
            out[name] = out[alias]
            continue
        g = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(name.encode()))
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            t = torch.zeros(shape, dtype=torch.long)
        elif leaf == "running_mean":
            t = torch.randn(shape, generator=g).mul_(0.1)
        elif leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif leaf == "bias":
            t = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g).mul_(gain / math.sqrt(math.prod(shape[1:])))
        out[name] = t
    return out


def seeded_input(seed: int = 0, size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size RGB float in [0, 255], as the official code feeds the network."""
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255.0


def tensor_sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


def state_checksum(state: dict) -> float:
    return float(sum(v.sum(dtype=torch.float64) for v in state.values()))


def probe(t: torch.Tensor, step: int = 4, offset: int = 1) -> np.ndarray:
    """The values kept in the fixture: a strided sub-grid of a N x C x H x W tensor."""
    return t[:, :, offset::step, offset::step].detach().float().numpy()


def summary(t: torch.Tensor) -> np.ndarray:
    """Whole-tensor statistics per channel: mean, std, min, max (float64)."""
    x = t.detach().double()
    dims = (0, 2, 3)
    return torch.stack([x.mean(dims), x.std(dims), x.amin(dims), x.amax(dims)], 1).numpy()


def official_fixture():
    meta = json.loads((FIXTURES / "official_gfm_reference.json").read_text())
    with gzip.open(FIXTURES / "official_gfm_keys.json.gz", "rt") as f:
        keys = json.load(f)
    return meta, keys, np.load(FIXTURES / "official_gfm_reference.npz")


META, OFFICIAL_KEYS, REFERENCE = official_fixture()
ALL_CASES = sorted(META["parameters"])


def build_on_meta(backbone, rosta="TT", **kwargs) -> GFM:
    """Shapes and counts without allocating weights (the r101 model alone is 2 GB)."""
    with torch.device("meta"):
        return build_gfm(backbone, rosta, **kwargs)


def named_outputs(out: dict, rosta: str) -> dict:
    if rosta != "RIM":
        return {n: out[n] for n in ("glance", "focus", "fusion")}
    named = {f"{r}.{n}": out["rosta"][r][n] for r in ("TT", "FT", "BT") for n in ("glance", "focus", "fusion")}
    named["fusion"] = out["fusion"]
    return named


# --------------------------------------------------------------------------------------------
# Parity with the official model
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in ("d121-RIM", "r34_2b-RIM", "r101-TT") else c
                                  for c in sorted(META["cases"])])
def test_outputs_equal_the_official_model(case):
    backbone, rosta = case.split("-")
    x = seeded_input(META["seed"], META["input_size"])
    assert tensor_sha(x) == META["input_sha256"], "torch's generator no longer reproduces the fixture input"
    state = seeded_state_dict(OFFICIAL_KEYS[case], META["seed"], META["gain"])
    assert state_checksum(state) == pytest.approx(META["cases"][case]["state_checksum"], rel=1e-9)
    if rosta in ("FT", "RIM"):  # as saved from nn.DataParallel
        state = {f"module.{k}": v for k, v in state.items()}
    model = load_official(state, backbone, rosta)
    assert not model.training
    with torch.no_grad():
        outputs = named_outputs(model(x), rosta)
    assert sorted(outputs) == META["cases"][case]["outputs"]
    for name, tensor in outputs.items():
        np.testing.assert_allclose(probe(tensor), REFERENCE[f"{case}/{name}/probe"], atol=1e-4, rtol=0,
                                   err_msg=f"{case} {name}")
        np.testing.assert_allclose(summary(tensor), REFERENCE[f"{case}/{name}/summary"], atol=1e-4, rtol=0,
                                   err_msg=f"{case} {name} (whole-tensor statistics)")


@pytest.mark.parametrize("rosta", ["TT", "FT", "BT"])
def test_collaborative_matting_equals_the_official_function(rosta):
    glance = torch.from_numpy(REFERENCE[f"cm/{rosta}/glance"])
    focus = torch.from_numpy(REFERENCE["cm/focus"])
    np.testing.assert_array_equal(collaborative_matting(rosta, glance, focus).numpy(), REFERENCE[f"cm/{rosta}/fusion"])


def test_collaborative_matting_by_hand():
    # one row of four pixels; TT classes: background, transition, foreground, transition
    tt = torch.tensor([[0.9, 0.1, 0.2, 0.3], [0.0, 0.8, 0.1, 0.6], [0.1, 0.1, 0.7, 0.5]])[None, :, None, :]
    two = torch.tensor([[0.9, 0.1, 0.2, 0.6], [0.1, 0.8, 0.7, 0.5]])[None, :, None, :]  # labels 0 1 1 0
    focus = torch.tensor([0.25, 0.5, 0.75, 0.4])[None, None, None, :]
    for rosta, glance, expected in [("TT", tt, [0.0, 0.5, 1.0, 0.4]), ("FT", two, [0.25, 1.0, 1.0, 0.4]),
                                    ("BT", two, [0.0, 0.5, 0.25, 0.0])]:
        torch.testing.assert_close(collaborative_matting(rosta, glance, focus).flatten(), torch.tensor(expected))
    with pytest.raises(ValueError, match="3 channels"):
        collaborative_matting("TT", two, focus)


@pytest.mark.parametrize("case", ALL_CASES)
def test_state_dict_layout_and_parameter_count_equal_the_official(case):
    backbone, rosta = case.split("-")
    model = build_on_meta(backbone, rosta)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    official = {name: shape for name, shape, _dtype, _alias in OFFICIAL_KEYS[case]}
    assert ours == official
    assert count_parameters(model) == META["parameters"][case]


def test_parameter_counts_of_table7():
    # Table 7 prints GFM(d) 46.96 M; the official models count the unused ImageNet classifier
    assert round(count_parameters(build_on_meta("d121")) / 1e6, 2) == 46.96
    r34 = build_on_meta("r34")
    assert count_parameters(r34) - count_parameters(r34, include_unused_classifier=False) == 512 * 1000 + 1000


@pytest.mark.parametrize("backbone", ["r34", "r34_2b", "d121", "r101", "r18_lite", "r18_slim"])
def test_unused_parameters_are_exactly_those_no_forward_call_touches(backbone):
    model = build_on_meta(backbone, "RIM")
    called = set()
    handles = [m.register_forward_hook(lambda m, i, o: called.add(id(m))) for m in model.modules()]
    with torch.no_grad():
        model(torch.empty(1, 3, 64, 64, device="meta"))
    for h in handles:
        h.remove()
    touched = {id(p) for m in model.modules() if id(m) in called for p in m.parameters(recurse=False)}
    untouched = [n for n, p in model.named_parameters() if id(p) not in touched]
    assert sorted(untouched) == sorted(model.unused_parameter_names())


# --------------------------------------------------------------------------------------------
# Every backbone x RoSTa x ablation builds and runs
# --------------------------------------------------------------------------------------------

ABLATIONS = [dict(), dict(decoder="single"), dict(ppm="one"), dict(ppm="none"), dict(bridge=False),
             dict(ppm="none", bridge=False), dict(decoder="single", bridge=False)]


def check_outputs(out: dict, rosta: str, n: int, size: int, values: bool) -> None:
    classes = {"TT": 3, "FT": 2, "BT": 2, "RIM": 3}[rosta]
    assert out["glance"].shape == out["glance_logits"].shape == (n, classes, size, size)
    for key in ("focus", "focus_logits", "fusion"):
        assert out[key].shape == (n, 1, size, size)
    heads = out["rosta"] if rosta == "RIM" else {rosta: out}
    if rosta == "RIM":
        assert sorted(heads) == ["BT", "FT", "TT"] and heads["FT"]["glance"].shape[1] == 2
    if values:
        for r, head in heads.items():
            torch.testing.assert_close(head["glance"], torch.sigmoid(head["glance_logits"]))
            torch.testing.assert_close(head["focus"], torch.sigmoid(head["focus_logits"]))
            assert 0 <= head["fusion"].min() and head["fusion"].max() <= 1
            torch.testing.assert_close(head["fusion"], collaborative_matting(r, head["glance"], head["focus"]))
        assert torch.isfinite(out["fusion"]).all()


def variant_grid():
    """Every backbone x RoSTa x ablation; the defaults and r34's ablations stay fast, the rest is slow."""
    for backbone in PAPER_BACKBONES + ("r18_lite", "r18_slim"):
        for i, ablation in enumerate(ABLATIONS):
            for j, rosta in enumerate(("TT", "FT", "BT", "RIM")):
                fast = not ablation or (backbone == "r34" and j == i % 4)
                name = "-".join(f"{k}={v}" for k, v in ablation.items()) or "default"
                yield pytest.param(backbone, rosta, ablation, id=f"{backbone}-{rosta}-{name}",
                                   marks=() if fast else pytest.mark.slow)


@pytest.mark.parametrize("backbone,rosta,ablation", list(variant_grid()))
def test_every_variant_builds_with_consistent_shapes(backbone, rosta, ablation):
    model = build_on_meta(backbone, rosta, **ablation)
    with torch.no_grad():
        out = model(torch.empty(2, 3, 64, 64, device="meta"))
    check_outputs(out, rosta, 2, 64, values=False)


@pytest.mark.parametrize("rosta,ablation", [
    ("TT", {}), ("RIM", {}), ("BT", {"decoder": "single"}), ("FT", {"ppm": "one"}),
    ("TT", {"ppm": "none", "bridge": False}), ("RIM", {"decoder": "single", "bridge": False}),
])
def test_forward_values_on_cpu(rosta, ablation):
    # the paper's backbones run on CPU in the parity tests above
    torch.manual_seed(0)
    model = build_gfm("r18_lite", rosta, **ablation).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64) * 255)
    check_outputs(out, rosta, 1, 64, values=True)


def test_ablation_switches_remove_the_modules():
    assert not hasattr(build_on_meta("r34", ppm="none"), "psp_module")
    one = build_on_meta("r34", ppm="one")
    assert hasattr(one, "psp_module") and not hasattr(one, "psp4")
    assert not hasattr(build_on_meta("r34", bridge=False), "bridge_block")
    single = build_on_meta("r34", "TT", decoder="single")
    assert not any(n.endswith("_g") or n.endswith("_f") for n, _ in single.named_children())
    assert single.decoder0[-2].out_channels == 4  # 3 glance classes + 1 focus alpha


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="backbone='vgg16'"):
        build_gfm("vgg16")
    with pytest.raises(ValueError, match="rosta"):
        build_on_meta("r34", "XX")
    with pytest.raises(ValueError, match="ppm"):
        build_on_meta("r34", decoder="single", ppm="none")
    with pytest.raises(ValueError, match="multiples of 32"):
        build_on_meta("r34")(torch.empty(1, 3, 50, 64, device="meta"))


def test_registry():
    assert set(PAPER_BACKBONES) | {"r18_lite", "r18_slim"} <= set(list_backbones())


# --------------------------------------------------------------------------------------------
# Inference helpers
# --------------------------------------------------------------------------------------------

def test_optimised_inference_matches_the_eval_model():
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "RIM").eval()
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        reference = model(x)
    fast = optimise_for_inference(model, "cpu", "fp32")(x)
    for key in ("glance", "focus", "fusion"):
        torch.testing.assert_close(fast[key], reference[key], rtol=0, atol=1e-4)
        assert fast[key].dtype == torch.float32
    half = optimise_for_inference(model, "cpu", "bf16")(x)
    assert half["focus"].dtype == torch.float32 and (half["focus"] - reference["focus"]).abs().mean() < 0.05
    assert model.encoder0[1].__class__.__name__ == "BatchNorm2d"  # the model itself is untouched


def test_image_to_input():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    x = image_to_input(image)
    assert x.shape == (1, 3, 4, 6) and x.dtype == torch.float32
    assert x[0, 2, 1, 3] == image[1, 3, 2]
    with pytest.raises(ValueError, match="H x W x 3"):
        image_to_input(np.zeros((4, 6)))
