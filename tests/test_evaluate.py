"""gfm.evaluate.run: the evaluation loop (per-image scores and times), summaries, predictions saved."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gfm.core.io import read_alpha, read_image, write_image
from gfm.core.trimap import trimap as make_trimap
from gfm.evaluate import metrics
from gfm.evaluate import run as ev
from gfm.evaluate.files import load_prediction
from gfm.model.infer import predict
from gfm.model.network import build_gfm

H, W = 64, 96

pytestmark = pytest.mark.usefixtures("one_thread")


def make_validation(root, n=3, *, trimaps=True):
    """An ``n``-image validation split in the AM-2k layout under ``<root>/am2k/validation`` -> root."""
    split = root / "am2k" / "validation"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    for i in range(n):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        radius = 18 + 4 * i
        alpha = np.clip((radius - np.hypot(yy - H / 2, xx - W / 2)) / 6 + 0.5, 0, 1)
        alpha8 = np.rint(alpha * 255).astype(np.uint8)
        write_image(split / "original" / f"v_{i}.jpg", image)
        write_image(split / "mask" / f"v_{i}.png", alpha8)
        if trimaps:
            write_image(split / "trimap" / f"v_{i}.png", make_trimap(alpha8, kernel_size=5))
    return root


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"))


class Stub(nn.Module):
    """Glance: transition everywhere; focus: the input's mean intensity (so every image differs)."""

    rosta = "TT"

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, _, h, w = x.shape
        glance = torch.zeros(n, 3, h, w)
        glance[:, 1] = 1
        focus = x.mean(1, keepdim=True) / 255
        return {"glance": glance, "focus": focus, "fusion": focus}


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluate_model_scores_match_direct_computation(datasets, workers):
    model = Stub()
    frame = ev.evaluate_model(model, datasets, d1=1, d2=1, device="cpu", workers=workers, progress=False)
    assert list(frame["name"]) == ["v_0", "v_1", "v_2"]
    assert set(metrics.KEYS) <= set(frame.columns) and (frame["inference_s"] > 0).all()
    assert (frame["metrics_s"] > 0).all()                               # timed in the worker
    split = datasets / "am2k" / "validation"
    for _, row in frame.iterrows():
        image = read_image(split / "original" / f"{row['name']}.jpg")
        gt = read_alpha(split / "mask" / f"{row['name']}.png") / 255.0
        trimap = read_alpha(split / "trimap" / f"{row['name']}.png")
        expected = metrics.evaluate(predict(model, image, d1=1, d2=1, device="cpu")["fusion"], gt, trimap)
        for key in metrics.KEYS:
            assert row[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key


def test_evaluate_model_optimised_close_to_plain(datasets):
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    options = dict(d1=1, d2=1, device="cpu", workers=0, progress=False, warmup=0, names=["v_0", "v_2"])
    plain = ev.evaluate_model(model, datasets, optimise=False, **options)
    fast = ev.evaluate_model(model, datasets, optimise=True, **options)
    np.testing.assert_allclose(fast["mse"], plain["mse"], rtol=1e-3, atol=1e-6)


def test_evaluate_model_without_trimaps_leaves_trimap_keys_nan(tmp_path):
    root = make_validation(tmp_path, n=1, trimaps=False)
    frame = ev.evaluate_model(Stub(), root, d1=1, d2=1, device="cpu", workers=0, progress=False, warmup=0)
    assert math.isfinite(frame.loc[0, "sad"]) and math.isnan(frame.loc[0, "sad_trans"])


def test_evaluate_model_saves_the_evaluated_matte(datasets, tmp_path):
    frame = ev.evaluate_model(Stub(), datasets, d1=1, d2=1, device="cpu", workers=0, progress=False, warmup=0,
                              names=["v_1"], save_to=tmp_path / "predictions")
    saved = load_prediction(tmp_path, "v_1")                       # the folder holding predictions/
    assert saved["fusion"].shape == (H, W) and set(np.unique(saved["glance"])) <= {0, 128, 255}
    assert saved["focus"].dtype == np.float32
    # the saved matte is the evaluated one, quantised to 8 bits
    gt = read_alpha(datasets / "am2k" / "validation" / "mask" / "v_1.png") / 255.0
    assert metrics.sad(saved["fusion"].astype(np.float64), gt) == pytest.approx(frame.loc[0, "sad"], rel=1e-3)


def test_predict_and_save_matches_predict(datasets, tmp_path):
    ev.predict_and_save(Stub(), datasets, ["v_0"], tmp_path, device="cpu", d1=1, d2=1)
    image = read_image(datasets / "am2k" / "validation" / "original" / "v_0.jpg")
    expected = predict(Stub(), image, d1=1, d2=1, device="cpu")["fusion"]
    assert np.abs(load_prediction(tmp_path, "v_0")["fusion"] - expected).max() <= 0.5 / 255 + 1e-6


def test_summarise_skips_non_finite():
    frame = pd.DataFrame({"name": ["a", "b"], "inference_s": [1.0, 3.0], "metrics_s": [0.5, 0.5],
                          **{k: [1.0, 2.0] for k in metrics.KEYS}})
    frame.loc[1, "mse_trans"] = math.inf
    frame.loc[:, "sad_fg"] = math.nan
    summary = ev.summarise(frame)
    assert summary["images"] == 2 and summary["sad"] == 1.5 and summary["inference_s"] == 2.0
    assert summary["mse_trans"] == 1.0 and summary["sad_fg"] is None and summary["metrics_s"] == 0.5


def test_mean_over_seeds():
    runs = [{"images": 4, "sad": 1.0, "mse": 0.1, "sad_fg": None, "inference_s": 2.0},
            {"images": 4, "sad": 3.0, "mse": 0.3, "sad_fg": 5.0, "inference_s": 4.0, "experiment": "x"}]
    means = ev.mean_over_seeds(runs)
    assert means == {"images": 4, "sad": 2.0, "mse": 0.2, "sad_fg": 5.0, "inference_s": 3.0, "seeds": 2}
    with pytest.raises(ValueError, match="different numbers of images"):
        ev.mean_over_seeds([{"images": 4, "sad": 1.0}, {"images": 5, "sad": 1.0}])
    with pytest.raises(ValueError, match="no run"):
        ev.mean_over_seeds([])


def test_compare_fusions_scores_both_from_the_same_passes(datasets):
    torch.manual_seed(0)
    model = build_gfm("r18_slim", "TT").eval()
    options = dict(d1=3, d2=2, device="cpu", workers=0, progress=False, warmup=0, names=["v_0", "v_1"])
    both = ev.evaluate_model(model, datasets, compare_fusions=True, **options)
    for fusion in ("official", "upsampled"):
        alone = ev.evaluate_model(model, datasets, fusion=fusion, **options)
        suffix = "" if fusion == "official" else "_upsampled"                # official: the default
        for key in ev.FUSION_METRICS:
            np.testing.assert_allclose(both[f"{key}{suffix}"], alone[key], rtol=1e-6, atol=1e-9)
    summary = ev.fusion_summary(both, "official")
    assert list(summary) == ["official", "upsampled", "difference"]
    assert summary["difference"]["sad"] == pytest.approx(both["sad_upsampled"].mean() - both["sad"].mean(), abs=1e-6)
    # the other way round: upsampled evaluated, official compared
    flipped = ev.fusion_summary(ev.evaluate_model(model, datasets, fusion="upsampled", compare_fusions=True, **options),
                                "upsampled")
    assert flipped["difference"]["sad"] == pytest.approx(summary["difference"]["sad"], abs=1e-6)
    # a single pass has no fusion to choose: nothing compared
    single = ev.evaluate_model(model, datasets, strategy="resize", compare_fusions=True, **options)
    assert not any(c.endswith("_upsampled") for c in single.columns) and ev.fusion_summary(single, "official") is None
