"""gfm.evaluate.files: the validation split, ground truth and trimaps, per-image tables, saved predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gfm.core.io import read_alpha
from gfm.evaluate import files

from test_evaluate import H, W, make_validation


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"), n=2)


def test_validation_split_from_a_datasets_root_or_the_split_itself(datasets):
    split = files.validation_split(datasets)
    assert split.root == datasets / "am2k" / "validation" and split.names() == ["v_0", "v_1"]
    assert files.validation_split(split.root) == split


def test_validation_split_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a validation split"):
        files.validation_split(tmp_path)


def test_ground_truth_in_01_and_checked_against_the_image(datasets):
    split = files.validation_split(datasets)
    gt = files.read_ground_truth(split, "v_0", (H, W))
    assert gt.dtype == np.float64 and np.array_equal(gt, read_alpha(split.mask_path("v_0")) / 255.0)
    with pytest.raises(ValueError, match=r"mask.*ground truth is \(64, 96\), image is \(10, 10\)"):
        files.read_ground_truth(split, "v_0", (10, 10))


def test_trimap_or_none(datasets, tmp_path):
    split = files.validation_split(datasets)
    assert set(np.unique(files.read_trimap(split, "v_0"))) <= {0, 128, 255}
    bare = files.validation_split(make_validation(tmp_path, n=1, trimaps=False))
    assert files.read_trimap(bare, "v_0") is None


def test_per_image_table_round_trip(tmp_path):
    frame = pd.DataFrame({"name": ["001", "b"], "sad": [1.0 / 3, 2.0]})
    files.write_table(frame, tmp_path / files.PER_IMAGE)
    back = files.read_per_image(tmp_path)
    assert list(back.index) == ["001", "b"]                        # names stay strings
    assert back.loc["001", "sad"] == pytest.approx(1 / 3, rel=1e-5)  # 6 significant digits
    assert files.read_per_image(tmp_path / "nowhere").empty


def test_model_prediction_round_trip(tmp_path):
    probs = np.zeros((3, 4, 5), np.float32)
    glance = np.array([[0, 1, 2, 1, 0]] * 4, np.uint8)
    out = {"fusion": np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5), "glance": glance, "glance_probs": probs,
           "focus": np.full((4, 5), 0.25, np.float32)}
    files.save_prediction(tmp_path / files.PREDICTIONS, "x", out)
    back = files.load_prediction(tmp_path, "x")                     # the folder holding predictions/
    assert np.abs(back["fusion"] - out["fusion"]).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(back["glance"], np.array([[0, 128, 255, 128, 0]] * 4, np.uint8))
    assert back["focus"].dtype == np.float32


def test_reference_matte_writes_alpha_only(tmp_path):
    files.save_prediction(tmp_path, "x", {"fusion": np.full((4, 5), 0.5, np.float32)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha"]
    assert set(files.load_prediction(tmp_path, "x")) == {"fusion"}


def test_glance_display_two_classes():
    out = {"glance": np.array([[0, 1]], np.uint8), "glance_probs": np.zeros((2, 1, 2), np.float32)}
    assert files.glance_display(out).tolist() == [[0, 255]]
    loaded = np.array([[0, 128]], np.uint8)                          # already grey levels: unchanged
    assert files.glance_display({"glance": loaded}).tolist() == [[0, 128]]
