"""Inference (gfm.model.infer): pass sizes, resizing back, the hybrid-resolution test, load_model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gfm.model.checkpoint import CheckpointError
from gfm.model.infer import (FUSIONS, combine_passes, forward_passes, load_model, pass_size, pass_sizes, predict,
                             predict_batch)
from gfm.model.network import build_gfm


class SizeStub(nn.Module):
    """A stand-in for GFM whose outputs encode the size of the input it was given.

    ``glance``: one-hot TT classes, the class chosen by the input height (``classes[h]``,
    default foreground); ``focus``: ``h / 1000`` everywhere, or a ramp ``(j + 0.5) / w`` along
    the columns with ``ramp=True``; ``fusion``: ``w / 1000``.
    """

    rosta = "TT"

    def __init__(self, classes=None, ramp=False):
        super().__init__()
        self.classes, self.ramp = dict(classes or {}), ramp
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, x):
        n, _, h, w = x.shape
        self.seen.append((h, w))
        glance = torch.zeros(n, 3, h, w)
        glance[:, self.classes.get(h, 2)] = 1.0
        if self.ramp:
            focus = ((torch.arange(w) + 0.5) / w).expand(n, 1, h, w).clone()
        else:
            focus = torch.full((n, 1, h, w), h / 1000)
        return {"glance": glance, "focus": focus, "fusion": torch.full((n, 1, h, w), w / 1000)}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# pass sizes (hand-computed from the official rule: int(side / d), floor to 32, cap at 1600)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w, d, expected", [
    (360, 480, 3, (96, 160)),       # 120 -> 96, 160 -> 160
    (360, 480, 2, (160, 224)),      # 180 -> 160, 240 -> 224
    (360, 480, 1.5, (224, 320)),    # 240 -> 224, 320 -> 320
    (1080, 1920, 3, (352, 640)),    # 360 -> 352, 640
    (1080, 1920, 2, (512, 960)),    # 540 -> 512, 960
    (1080, 1440, 2.6, (384, 544)),  # int(415.38) = 415 -> 384, int(553.8) = 553 -> 544
    (5000, 4000, 2, (1600, 1600)),  # 2500 and 2000 capped at 1600 (aspect ratio not kept)
    (50, 70, 2, (32, 32)),          # 25 and 35 -> 0 and 32; never below 32
])
def test_pass_size_hand_computed(h, w, d, expected):
    assert pass_size(h, w, d) == expected


def test_pass_size_cap_rounded_to_multiple():
    assert pass_size(4000, 4000, 1, max_side=1000) == (992, 992)


def test_pass_size_rejects_bad_ratio():
    with pytest.raises(ValueError, match="d must be > 0"):
        pass_size(100, 100, 0)


def test_pass_sizes_defaults():
    assert pass_sizes(1080, 1920, strategy="resize") == ((512, 960), (512, 960))  # official RESIZE: 1/2
    assert pass_sizes(1080, 1920, strategy="hybrid") == ((352, 640), (512, 960))  # 1/3 glance, 1/2 focus
    assert pass_sizes(1080, 1920, strategy="rim") == ((352, 640), (352, 640))


# --------------------------------------------------------------------------------------------
# predict with stubs
# --------------------------------------------------------------------------------------------

def test_hybrid_takes_glance_from_pass1_and_focus_from_pass2():
    # 360x480: glance pass (d1=3) is 96x160, focus pass (d2=2) is 160x224.
    stub = SizeStub(classes={96: 1, 160: 0})  # pass 1: all transition; pass 2: all background
    out = predict(stub, _image(360, 480), strategy="hybrid", d1=3, d2=2, device="cpu")
    assert stub.seen == [(96, 160), (160, 224)]
    assert out["sizes"] == {"glance": (96, 160), "focus": (160, 224)}
    assert (out["glance"] == 1).all()                           # pass 1's classes
    np.testing.assert_allclose(out["focus"], 0.160, atol=1e-6)  # pass 2's focus (h = 160)
    np.testing.assert_allclose(out["fusion"], 0.160, atol=1e-6)  # transition -> focus of pass 2


def test_hybrid_foreground_glance_ignores_focus():
    stub = SizeStub(classes={96: 2, 160: 1})
    out = predict(stub, _image(360, 480), d1=3, d2=2, device="cpu")
    np.testing.assert_array_equal(out["fusion"], 1.0)


def test_hybrid_equal_ratios_make_one_pass():
    stub = SizeStub(classes={160: 1})
    predict(stub, _image(360, 480), d1=2, d2=2, device="cpu")
    assert stub.seen == [(160, 224)]


def test_resize_returns_network_fusion_resized():
    stub = SizeStub()
    out = predict(stub, _image(360, 480), strategy="resize", d=2, device="cpu")
    assert stub.seen == [(160, 224)]
    assert out["fusion"].shape == (360, 480)
    np.testing.assert_allclose(out["fusion"], 0.224, atol=1e-6)


def test_resize_back_is_bilinear_with_pixel_centres():
    # a ramp (j + 0.5) / w over the pass's columns must come back as (x + 0.5) / W at full size
    stub = SizeStub(classes={160: 1}, ramp=True)
    out = predict(stub, _image(360, 480), strategy="hybrid", d1=2, d2=2, device="cpu")
    W = 480
    expected = (np.arange(W) + 0.5) / W
    interior = slice(2, W - 2)  # bilinear clamps at the two outermost pixels of each side
    np.testing.assert_allclose(out["focus"][:, interior], np.broadcast_to(expected[interior], (360, W - 4)),
                               atol=1e-5)


@pytest.mark.parametrize("h, w", [(101, 77), (333, 517)])
def test_odd_sizes_with_a_real_network(h, w):
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    for strategy in ("hybrid", "resize"):
        out = predict(model, _image(h, w), strategy=strategy, d=1.5, d1=2, d2=1.5, device="cpu")
        assert out["glance"].shape == (h, w) and out["glance"].dtype == np.uint8
        assert out["glance_probs"].shape == (3, h, w)
        assert out["focus"].shape == (h, w) and out["fusion"].shape == (h, w)
        assert out["fusion"].dtype == np.float32
        assert 0 <= out["fusion"].min() and out["fusion"].max() <= 1
        assert 0 <= out["focus"].min() and out["focus"].max() <= 1


def test_official_fusion_widens_transition_band():
    class HalfStub(SizeStub):
        def forward(self, x):
            out = super().forward(x)
            w = x.shape[3]
            out["glance"].zero_()
            out["glance"][:, 0, :, : w // 2] = 1   # left half background
            out["glance"][:, 2, :, w // 2:] = 1    # right half foreground
            out["focus"].fill_(0.5)
            return out

    image = _image(192, 384)
    upsampled = predict(HalfStub(), image, d1=3, d2=3, fusion="upsampled", device="cpu")   # 64 x 128 pass
    official = predict(HalfStub(), image, d1=3, d2=3, device="cpu")          # the default
    np.testing.assert_array_equal(official["fusion"],
                                  predict(HalfStub(), image, d1=3, d2=3, fusion="official", device="cpu")["fusion"])
    assert set(np.unique(upsampled["fusion"])) == {0.0, 1.0}                 # arg-max: no transition
    band = np.flatnonzero(official["fusion"][0] == 0.5)
    assert 0 < band.size <= 6 and band.min() > 180 and band.max() < 204      # a band around x = 192
    assert (official["fusion"][:, :180] == 0).all() and (official["fusion"][:, 204:] == 1).all()


def test_fusions_official_first_and_default_everywhere():
    import inspect

    from gfm.model import infer

    assert FUSIONS == ("official", "upsampled")
    for function in (infer.predict, infer.predict_batch, infer.combine_passes):
        assert inspect.signature(function).parameters["fusion"].default == "official"
    with pytest.raises(ValueError, match="fusion must be one of .*official.*upsampled.*'eq7'"):
        predict(SizeStub(), _image(96, 128), fusion="eq7", device="cpu")


def test_combine_passes_reuses_passes_for_both_fusions():
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    image = _image(192, 256)
    passes, rosta = forward_passes(model, image, [3.0, 2.0], device="cpu")
    for fusion in FUSIONS:
        combined = combine_passes(rosta, passes[3.0], passes[2.0], image.shape[:2], fusion=fusion)[0]
        direct = predict(model, image, d1=3, d2=2, fusion=fusion, device="cpu")
        np.testing.assert_allclose(combined["fusion"], direct["fusion"], atol=1e-5)


def test_predict_batch_matches_predict():
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    images = [_image(96, 128, seed) for seed in range(2)]
    batch = predict_batch(model, images, d1=1, d2=1, device="cpu")
    for image, out in zip(images, batch):
        single = predict(model, image, d1=1, d2=1, device="cpu")
        np.testing.assert_allclose(out["focus"], single["focus"], atol=1e-5)
        # batched convolutions round differently: an arg-max near a tie may flip on a few pixels
        same = out["glance"] == single["glance"]
        assert same.mean() > 0.999
        np.testing.assert_allclose(out["fusion"][same], single["fusion"][same], atol=1e-5)


def test_predict_batch_rejects_mixed_sizes():
    with pytest.raises(ValueError, match="same size"):
        predict_batch(SizeStub(), [_image(64, 64), _image(64, 96)], device="cpu")


def test_predict_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        predict(SizeStub(), np.zeros((64, 64, 3), np.float32), device="cpu")


def test_rim_strategy_needs_rim_model():
    with pytest.raises(ValueError, match="RIM"):
        predict(SizeStub(), _image(96, 96), strategy="rim", device="cpu")


# --------------------------------------------------------------------------------------------
# load_model (the run-folder contract itself: tests/test_checkpoint.py)
# --------------------------------------------------------------------------------------------

def test_load_model_from_training_run(tmp_path, make_run):
    model = make_run(tmp_path / "x-ft", "FT", seed=1, decoder="single")
    loaded, meta = load_model(tmp_path / "x-ft")
    assert meta["rosta"] == "FT" and meta["decoder"] == "single" and meta["experiment"] == "x-ft"
    assert meta["track"] == "ori" and not meta["official"]
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fusion"], model(x)["fusion"])
    loaded2, _ = load_model(tmp_path / "x-ft" / "model.pt")
    assert not loaded2.training


def test_load_model_from_a_legacy_training_run(tmp_path, make_run):
    """model.pt as a bare state dict with train_summary.json beside it (gfm.train.loop before checkpoint.py)."""
    model = make_run(tmp_path / "x-ft", "FT", seed=1, legacy=True, decoder="single")
    loaded, meta = load_model(tmp_path / "x-ft")
    assert meta["rosta"] == "FT" and meta["decoder"] == "single" and meta["experiment"] == "x-ft"
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fusion"], model(x)["fusion"])


def test_load_model_from_training_checkpoint(tmp_path):
    model = build_gfm("r18_lite", "TT")
    config = {"experiment": "ck", "backbone": "r18_lite", "rosta": "TT", "decoder": "two", "ppm": "five",
              "bridge": True}
    torch.save({"model": model.state_dict(), "config": config, "epoch": 1}, tmp_path / "checkpoint.pt")
    loaded, meta = load_model(tmp_path / "checkpoint.pt")
    assert meta["experiment"] == "ck"


def test_load_model_official_layout(tmp_path):
    model = build_gfm("r18_lite", "BT")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "gfm_r18_bt.pth")
    loaded, meta = load_model(tmp_path / "gfm_r18_bt.pth", official="r18_lite-bt")
    assert meta["rosta"] == "BT" and meta["official"] and meta["experiment"] == "gfm_r18_bt"
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["fusion"], model.eval()(x)["fusion"])


def test_load_model_errors(tmp_path, make_run):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_model(tmp_path / "missing")
    torch.save(build_gfm("r18_lite", "TT").state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="official"):
        load_model(tmp_path / "bare.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    make_run(tmp_path / "run")
    with pytest.raises(CheckpointError, match="run: a training run folder.*without --official"):
        load_model(tmp_path / "run", official="r18_lite-tt")
    with pytest.raises(ValueError, match="BACKBONE-ROSTA"):
        load_model(tmp_path / "bare.pt", official="r18_lite")


def test_rim_model_single_pass_at_one_third():
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "RIM", width_divisor=16).eval()
    image = _image(200, 290)
    out = predict(model, image, strategy="rim", device="cpu")
    assert out["sizes"] == {"glance": (64, 96), "focus": (64, 96)}      # int(200/3)=66 -> 64, 96
    assert out["fusion"].shape == (200, 290) and 0 <= out["fusion"].min() and out["fusion"].max() <= 1
    with pytest.warns(UserWarning, match="rim"):
        hybrid = predict(model, image, strategy="hybrid", device="cpu")  # the official test's fallback
    np.testing.assert_allclose(hybrid["fusion"], out["fusion"], atol=1e-6)
