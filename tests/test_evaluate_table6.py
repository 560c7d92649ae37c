"""gfm.evaluate.table6: the Table 6 grid of test down-sampling ratios, and its image subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfm.core.io import read_alpha
from gfm.evaluate import metrics
from gfm.evaluate import run as ev
from gfm.evaluate.table6 import spread_subset, table6, table6_means, table6_per_image
from gfm.model.network import build_gfm

from test_evaluate import Stub, make_validation

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"))


class HalfStub(Stub):
    def forward(self, x):
        out = super().forward(x)
        return {k: torch.full_like(v, 0.5) if k != "glance" else v for k, v in out.items()}


def test_table6_grid(datasets):
    table = table6(HalfStub(), datasets, ds=(1, 2), singles=(1.0, 1.5), device="cpu", workers=0, progress=False)
    assert list(zip(table["test"], table["d1"], table["d2"])) == [
        ("hybrid", 1.0, 1.0), ("hybrid", 2.0, 1.0), ("hybrid", 2.0, 2.0), ("single", 1.0, 1.0), ("single", 1.5, 1.5)]
    assert list(table.columns) == ["test", "d1", "d2", *metrics.MAIN_METRICS, "inference_s"]
    # the stub predicts 0.5 everywhere at every ratio: every row has the same SAD
    gts = [read_alpha(datasets / "am2k" / "validation" / "mask" / f"v_{i}.png") / 255.0 for i in range(3)]
    expected_sad = np.mean([np.abs(0.5 - g).sum() / 1000 for g in gts])
    np.testing.assert_allclose(table["sad"], expected_sad, rtol=1e-5)


def test_table6_rows_equal_direct_evaluation(datasets):
    torch.manual_seed(0)
    model = build_gfm("r18_lite", "TT", width_divisor=16).eval()
    options = dict(device="cpu", workers=0, progress=False, names=["v_0", "v_2"], optimise=False)
    table = table6(model, datasets, ds=[1, 2], singles=[1.5], **options).set_index(["test", "d1", "d2"])
    hybrid = ev.summarise(ev.evaluate_model(model, datasets, strategy="hybrid", d1=2, d2=1, warmup=0, **options))
    single = ev.summarise(ev.evaluate_model(model, datasets, strategy="resize", d=1.5, warmup=0, **options))
    for key in metrics.MAIN_METRICS:
        assert table.loc[("hybrid", 2.0, 1.0), key] == pytest.approx(hybrid[key], rel=1e-5), key
        assert table.loc[("single", 1.5, 1.5), key] == pytest.approx(single[key], rel=1e-5), key


def test_table6_per_image_rows_and_their_means(datasets):
    per_image = table6_per_image(HalfStub(), datasets, ds=(1, 2), singles=(1.5,), device="cpu", workers=0,
                                 progress=False, names=["v_2", "v_0"])
    assert list(per_image.columns[:5]) == ["test", "d1", "d2", "name", "inference_s"]
    assert set(metrics.KEYS) <= set(per_image.columns) and len(per_image) == 4 * 2
    assert list(per_image["name"][:2]) == ["v_2", "v_0"] and list(per_image["test"][-2:]) == ["single", "single"]
    means = table6_means(per_image)
    assert len(means) == 4 and means.loc[1, "sad"] == pytest.approx(per_image["sad"][2:4].mean(), rel=1e-5)


def test_table6_needs_a_setting_and_refuses_hybrid_rows_of_a_rim_model(datasets):
    with pytest.raises(ValueError, match="no setting"):
        table6(HalfStub(), datasets, ds=(), singles=(), device="cpu", workers=0, progress=False)
    rim = HalfStub()
    rim.rosta = "RIM"
    with pytest.raises(ValueError, match="hybrid rows need a TT, FT or BT model"):
        table6(rim, datasets, ds=(2,), singles=(), device="cpu", workers=0, progress=False)


@pytest.mark.parametrize("n, expected", [(None, list("abcdefg")), (10, list("abcdefg")), (7, list("abcdefg")),
                                         (3, ["a", "d", "g"]), (2, ["a", "g"]), (1, ["a"])])
def test_spread_subset(n, expected):
    assert spread_subset(list("abcdefg"), n) == expected


def test_spread_subset_is_distinct_and_refuses_zero():
    picks = spread_subset([str(i) for i in range(101)], 100)
    assert len(set(picks)) == 100
    with pytest.raises(ValueError, match="table6_images must be >= 1"):
        spread_subset(["a", "b"], 0)
