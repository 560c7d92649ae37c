"""gfm.evaluate.table5: the RoSTa sets of the grid, Table 5's one-pass protocol and EN-median."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfm.core.config import Experiment, load_params, parse_params
from gfm.core.io import read_alpha, read_image
from gfm.evaluate import metrics
from gfm.evaluate.table5 import EN_MEDIAN, rosta_sets, row_options, table5_per_image
from gfm.model.infer import predict
from gfm.model.network import build_gfm
from gfm.report import summaries

from test_config import ROOT, _overlay, _read
from test_evaluate import make_validation

pytestmark = pytest.mark.usefixtures("one_thread")


def _experiment(rosta, **changes):
    fields = dict(track="ori", data="d/am2k/train", backbone="d121", rosta=rosta, decoder="two", ppm="five",
                  bridge=True, epochs=1, batch_size=4)
    return Experiment(**{**fields, **changes})


def test_the_sample_grid_has_no_rosta_set():
    params = load_params(ROOT / "params.yaml")
    assert rosta_sets(params.train.experiments, params.evaluate.experiments) == []


def test_the_paper_grid_has_one_set_of_four():
    params = parse_params(_overlay(_read(ROOT / "params.yaml"), _read(ROOT / "profiles" / "paper.yaml")))
    sets = rosta_sets(params.train.experiments, params.evaluate.experiments)
    assert [dict(s.members) for s in sets] == [{"TT": "ori-tt-d", "FT": "ori-ft-d", "BT": "ori-bt-d",
                                                 "RIM": "ori-rim-d"}]
    assert sets[0].backbone == "d121" and sets[0].ensemble and sets[0].name == "ori-tt-d+ori-ft-d+ori-bt-d"


def test_sets_need_equal_configurations_but_the_rosta():
    grid = {"tt": _experiment("TT"), "ft": _experiment("FT"), "bt-long": _experiment("BT", epochs=2),
            "ft-r": _experiment("FT", backbone="r34"), "tt-r": _experiment("TT", backbone="r34"),
            "tt-single": _experiment("TT", decoder="single"), "ft-single": _experiment("FT", decoder="single"),
            "coco-tt": _experiment("TT", track="coco"), "coco-ft": _experiment("FT", track="coco")}
    sets = rosta_sets(grid, list(grid))
    assert [dict(s.members) for s in sets] == [{"TT": "tt", "FT": "ft"}, {"TT": "tt-r", "FT": "ft-r"}]
    assert not sets[0].ensemble                                            # no BT of the same configuration
    with pytest.raises(ValueError, match="'tt' and 'tt2' are both TT models"):
        rosta_sets({**grid, "tt2": _experiment("TT")}, ["tt", "ft", "tt2"])


def test_row_options():
    stage = {"strategy": "hybrid", "d1": 3.0, "d2": 2.0, "fusion": "official"}
    assert row_options("TT", 3.0, stage) == {**stage, "strategy": "resize", "d": 3.0}
    assert row_options("RIM", 3.0, stage) == {**stage, "strategy": "rim", "d": 3.0}
    assert row_options("FT", None, stage) == stage                        # null table5_d: the stage's test
    assert row_options("RIM", None, stage) == {**stage, "strategy": "rim", "d": None}


def test_one_pass_at_one_third_and_en_median(tmp_path):
    root = make_validation(tmp_path, n=2)
    split = root / "am2k" / "validation"
    models = {}
    for seed, rosta in enumerate(("TT", "FT", "BT", "RIM")):
        torch.manual_seed(seed)
        models[rosta] = build_gfm("r18_slim", rosta).eval()
    tables = table5_per_image(models, root, d=3.0, device="cpu", workers=0, progress=False)
    assert list(tables) == ["TT", "FT", "BT", "RIM", EN_MEDIAN]
    for name in ("v_0", "v_1"):
        image = read_image(split / "original" / f"{name}.jpg")
        gt = read_alpha(split / "mask" / f"{name}.png") / 255.0
        trimap = read_alpha(split / "trimap" / f"{name}.png")
        mattes = {r: predict(m, image, strategy="rim" if r == "RIM" else "resize", d=3.0, device="cpu")["fusion"]
                  for r, m in models.items()}
        mattes[EN_MEDIAN] = np.median(np.stack([mattes["TT"], mattes["FT"], mattes["BT"]]), axis=0)
        for row, matte in mattes.items():
            expected = metrics.evaluate(matte, gt, trimap)
            got = tables[row].set_index("name").loc[name]
            for key in ("sad", "mse", "grad", "conn"):
                assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), (row, key)
    # the median lies between the members, so it never errs more than the worst of them
    en = tables[EN_MEDIAN].set_index("name")["sad"]
    worst = np.maximum.reduce([tables[r].set_index("name")["sad"] for r in ("TT", "FT", "BT")])
    assert (en <= worst + 1e-9).all()
    np.testing.assert_allclose(tables[EN_MEDIAN]["inference_s"],
                               sum(tables[r]["inference_s"] for r in ("TT", "FT", "BT")))


def test_without_all_three_there_is_no_en_median(tmp_path):
    root = make_validation(tmp_path, n=1)
    models = {r: build_gfm("r18_slim", r).eval() for r in ("TT", "FT")}
    assert list(table5_per_image(models, root, device="cpu", workers=0, progress=False)) == ["TT", "FT"]
    with pytest.raises(ValueError, match="keyed by"):
        table5_per_image({"tt": models["TT"]}, root, device="cpu", workers=0, progress=False)


def test_the_report_knows_the_en_median_row_by_the_same_name():
    """Table 5's ``runs.csv`` marks the ensemble rows EN_MEDIAN; gfm.report.summaries (which reads the stage's
    files, never its code) picks them out by its own copy of the name."""
    assert summaries.EN_MEDIAN == EN_MEDIAN
