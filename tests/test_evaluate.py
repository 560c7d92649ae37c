"""Evaluation stage (gfm.evaluate.run): per-image scores, summaries, Table 6 grid, Table 7, figures."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gfm.evaluate import run as ev
from gfm.evaluate import metrics
from gfm.model.complexity import count_macs, count_parameters
from gfm.model.infer import predict
from gfm.core.io import read_alpha, read_image, write_image
from gfm.model.network import build_gfm
from gfm.core.trimap import trimap as make_trimap

H, W = 64, 96


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A 3-image validation split in the AM-2k layout under ``<datasets>/am2k/validation``."""
    root = tmp_path_factory.mktemp("datasets")
    split = root / "am2k" / "validation"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:H, :W]
    for i in range(3):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        radius = 18 + 4 * i
        alpha = np.clip((radius - np.hypot(yy - H / 2, xx - W / 2)) / 6 + 0.5, 0, 1)
        alpha8 = np.rint(alpha * 255).astype(np.uint8)
        write_image(split / "original" / f"v_{i}.jpg", image)
        write_image(split / "mask" / f"v_{i}.png", alpha8)
        write_image(split / "trimap" / f"v_{i}.png", make_trimap(alpha8, kernel_size=5))
    return root


class _Stub(nn.Module):
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


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT")
    for name in ("a-tt", "b-tt"):
        (root / name).mkdir()
        torch.save(model.state_dict(), root / name / "model.pt")
        config = {"experiment": name, "backbone": "r18_lite", "rosta": "TT", "decoder": "two", "ppm": "five",
                  "bridge": True}
        (root / name / "train_summary.json").write_text(json.dumps({"config": config}))
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluate_model_scores_match_direct_computation(datasets, workers):
    model = _Stub()
    frame = ev.evaluate_model(model, datasets, d1=1, d2=1, device="cpu", workers=workers, progress=False)
    assert list(frame["name"]) == ["v_0", "v_1", "v_2"]
    assert set(metrics.KEYS) <= set(frame.columns) and (frame["inference_s"] > 0).all()
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
    fast = ev.evaluate_model(model, datasets, **options)
    np.testing.assert_allclose(fast["mse"], plain["mse"], rtol=1e-3, atol=1e-6)


def test_summarise_skips_non_finite():
    frame = pd.DataFrame({"name": ["a", "b"], "inference_s": [1.0, 3.0],
                          **{k: [1.0, 2.0] for k in metrics.KEYS}})
    frame.loc[1, "mse_trans"] = math.inf
    frame.loc[:, "sad_fg"] = math.nan
    summary = ev.summarise(frame)
    assert summary["images"] == 2 and summary["sad"] == 1.5 and summary["inference_s"] == 2.0
    assert summary["mse_trans"] == 1.0 and summary["sad_fg"] is None


def test_evaluate_experiments_writes_outputs(datasets, models_dir, tmp_path):
    out, metrics_out = tmp_path / "evaluation", tmp_path / "metrics" / "evaluate.json"
    means = ev.evaluate_experiments(models_dir, "a-tt,b-tt", datasets, out, metrics_out=metrics_out, d1=1, d2=1,
                                    device="cpu", workers=0, progress=False, warmup=0, names=["v_1", "v_2"])
    assert list(means.index) == ["a-tt", "b-tt"]
    written = json.loads(metrics_out.read_text())
    assert set(written) == {"a-tt", "b-tt"}
    assert all(isinstance(v, (int, float)) for v in written["a-tt"].values())  # flat numbers for dvc metrics
    assert written["a-tt"]["sad"] == pytest.approx(means.loc["a-tt", "sad"])
    per_image = pd.read_csv(out / "a-tt" / "per_image.csv")
    assert list(per_image["name"]) == ["v_1", "v_2"]
    saved = ev.load_prediction(out / "a-tt", "v_1")
    assert saved["fusion"].shape == (H, W) and set(np.unique(saved["glance"])) <= {0, 128, 255}
    # the saved matte is the evaluated one, quantised to 8 bits
    direct = ev.evaluate_model(_load(models_dir / "a-tt"),
                               datasets, d1=1, d2=1, device="cpu", workers=0, progress=False, names=["v_1"], warmup=0)
    assert direct.loc[0, "sad"] == pytest.approx(per_image.loc[0, "sad"], rel=1e-4)
    figure = ev.result_figure(out, datasets, "v_1")
    assert len(figure.axes) == 2 * 4                          # image, GT, two models; full + close view
    browser = ev.build_result_browser(out, datasets)
    assert browser.children[0].children[1].options == ("a-tt", "b-tt")


def _load(path):
    from gfm.model.infer import load_model

    return load_model(path)[0]


class _HalfStub(_Stub):
    def forward(self, x):
        out = super().forward(x)
        return {k: torch.full_like(v, 0.5) if k != "glance" else v for k, v in out.items()}


def test_table6_grid(datasets):
    table = ev.table6(_HalfStub(), datasets, ds="1,2", singles=(1.0, 1.5), device="cpu", workers=0, progress=False)
    assert list(zip(table["test"], table["d1"], table["d2"])) == [
        ("hybrid", 1.0, 1.0), ("hybrid", 2.0, 1.0), ("hybrid", 2.0, 2.0), ("single", 1.0, 1.0), ("single", 1.5, 1.5)]
    assert list(table.columns) == ["test", "d1", "d2", *ev.MAIN_METRICS, "inference_s"]
    # the stub predicts 0.5 everywhere at every ratio: every row has the same SAD
    gts = [read_alpha(datasets / "am2k" / "validation" / "mask" / f"v_{i}.png") / 255.0 for i in range(3)]
    expected_sad = np.mean([np.abs(0.5 - g).sum() / 1000 for g in gts])
    np.testing.assert_allclose(table["sad"], expected_sad, rtol=1e-5)


def test_table6_rows_equal_direct_evaluation(datasets):
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    options = dict(device="cpu", workers=0, progress=False, names=["v_0", "v_2"], optimise=False)
    table = ev.table6(model, datasets, ds="1,2", singles="1.5", **options).set_index(["test", "d1", "d2"])
    hybrid = ev.summarise(ev.evaluate_model(model, datasets, strategy="hybrid", d1=2, d2=1, warmup=0, **options))
    single = ev.summarise(ev.evaluate_model(model, datasets, strategy="resize", d=1.5, warmup=0, **options))
    for key in ev.MAIN_METRICS:
        assert table.loc[("hybrid", 2.0, 1.0), key] == pytest.approx(hybrid[key], rel=1e-5), key
        assert table.loc[("single", 1.5, 1.5), key] == pytest.approx(single[key], rel=1e-5), key


def test_complexity_table():
    table = ev.complexity_table("r18_lite,r34", latency_runs=0).set_index("backbone")
    model = build_gfm("r18_lite", "TT")
    lite = table.loc["r18_lite"]
    assert lite["parameters_m"] == round(count_parameters(model) / 1e6, 2)
    assert lite["gmac"] == round(count_macs(model, (800, 800)) / 1e9, 2)
    r34 = table.loc["r34"]
    assert r34["gmac"] == pytest.approx(132.28, abs=0.01)             # Table 7, GFM(r)
    assert math.isnan(r34["latency_s"]) and r34["paper_gmac"] == 132.28 and r34["paper_latency_s_v100"] == 0.1734


def test_complexity_table_latency():
    table = ev.complexity_table(["r18_lite"], input_size=(32, 32), latency_runs=1, device="cpu")
    assert table.loc[0, "latency_s"] > 0 and table.loc[0, "device"] == "cpu"


def test_plot_qualitative_zooms_on_transition():
    yy, xx = np.mgrid[:90, :120]
    gt = np.zeros((90, 120), np.float32)
    gt[:, 100:] = 1
    gt[:, 90:100] = (xx[:, 90:100] - 89) / 11                        # the only soft band: x = 90..99
    outputs = {"glance": np.zeros((90, 120), np.uint8), "glance_probs": np.zeros((3, 90, 120), np.float32),
               "focus": gt, "fusion": gt}
    fig = ev.plot_qualitative(np.zeros((90, 120, 3), np.uint8), gt, outputs, title="t", zoom=30)
    assert len(fig.axes) == 12
    rect = fig.axes[0].patches[0]
    x0 = rect.get_x() + 0.5
    assert x0 <= 90 and x0 + 30 >= 100                              # the close view covers the band


def test_validation_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a validation split"):
        ev.validation_split(tmp_path)
