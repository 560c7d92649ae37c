"""gfm.evaluate.baselines: the blank and closed-form reference mattes, scored like the models."""

from __future__ import annotations

import numpy as np
import pytest
from pymatting import estimate_alpha_cf

from gfm.core.io import read_alpha, read_image
from gfm.evaluate import baselines, metrics
from gfm.evaluate.files import load_prediction

from test_evaluate import make_validation
from test_evaluate_pool import _imports_of


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def split(datasets):
    return datasets / "am2k" / "validation"


def _inputs(split, name):
    return (read_image(split / "original" / f"{name}.jpg"), read_alpha(split / "mask" / f"{name}.png") / 255.0,
            read_alpha(split / "trimap" / f"{name}.png"))


def test_blank_matte_is_zero():
    matte = baselines.blank_matte(np.ones((4, 6, 3), np.uint8))
    assert matte.shape == (4, 6) and matte.dtype == np.float32 and not matte.any()


def test_closed_form_is_pymatting_on_the_trimap(split):
    image, _, trimap = _inputs(split, "v_1")
    matte = baselines.closed_form_matte(image, trimap)
    expected = estimate_alpha_cf(image / 255.0, trimap / 255.0)
    assert matte.dtype == np.float32 and np.abs(matte - expected).max() < 1e-6
    assert (matte[trimap == 255] == 1).all() and (matte[trimap == 0] == 0).all()   # known areas kept
    assert 0 < matte[trimap == 128].mean() < 1


@pytest.mark.parametrize("values, expected", [((0, 255), [0, 1]), ((0, 128), [0, 0]), ((128, 255), [1, 1]),
                                              ((128, 128), [0, 0])])
def test_closed_form_degenerate_trimaps(values, expected):
    """No unknown pixel: the trimap itself; no foreground (background): the all-zero (all-one) matte."""
    trimap = np.array([values], np.uint8)
    image = np.zeros((1, 2, 3), np.uint8)
    assert baselines.closed_form_matte(image, trimap).tolist() == [expected]


def test_closed_form_needs_a_trimap():
    with pytest.raises(ValueError, match="closed_form: needs the validation trimap"):
        baselines.closed_form_matte(np.zeros((2, 2, 3), np.uint8), None)


@pytest.mark.parametrize("workers", [1, 2])
def test_evaluate_baseline_scores_match_direct_computation(datasets, split, workers, tmp_path):
    frame = baselines.evaluate_baseline("closed_form", datasets, workers=workers, progress=False,
                                        save_to=tmp_path, save_names=["v_2"])
    assert list(frame["name"]) == ["v_0", "v_1", "v_2"]
    assert (frame["inference_s"] > 0).all() and (frame["metrics_s"] > 0).all()
    for _, row in frame.iterrows():
        image, gt, trimap = _inputs(split, row["name"])
        expected = metrics.evaluate(baselines.closed_form_matte(image, trimap), gt, trimap)
        for key in metrics.KEYS:
            assert row[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
    assert sorted(p.stem for p in (tmp_path / "alpha").iterdir()) == ["v_2"]     # only the images asked for
    assert load_prediction(tmp_path, "v_2")["fusion"].shape == gt.shape


def test_blank_baseline_sad_is_the_ground_truth_mass(datasets, split):
    frame = baselines.evaluate_baseline("blank", datasets, names=["v_0"], workers=1, progress=False)
    _, gt, _ = _inputs(split, "v_0")
    assert frame.loc[0, "sad"] == pytest.approx(gt.sum() / 1000) and frame.loc[0, "sad_bg"] == 0


def test_unknown_baseline():
    with pytest.raises(ValueError, match="baseline must be one of blank, closed_form, got 'knn'"):
        baselines.evaluate_baseline("knn", ".")


def test_the_baselines_module_needs_no_torch():
    """Its workers import gfm.evaluate.baselines: it must not pull torch in."""
    assert all(not name.startswith("torch") for name in _imports_of("gfm.evaluate.baselines"))
