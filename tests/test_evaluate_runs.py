"""gfm.evaluate.runs: the run folders (one model per experiment and seed; the legacy single model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gfm.core.config import EvaluateConfig
from gfm.evaluate.files import PER_IMAGE
from gfm.evaluate.runs import RESERVED, Run, baseline_folder, evaluated_runs, trained_runs


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_seed_folders_by_seed(tmp_path):
    for seed in (2, 0, 10):
        _touch(tmp_path / "ori-tt" / f"s{seed}" / "model.pt")
    _touch(tmp_path / "ori-tt" / "s3" / "checkpoint.pt")               # unfinished: no model.pt
    _touch(tmp_path / "ori-tt" / "sx" / "model.pt")                   # not a seed folder
    runs = trained_runs(tmp_path, "ori-tt")
    assert [r.name for r in runs] == ["ori-tt-s0", "ori-tt-s2", "ori-tt-s10"]
    assert runs[0].model == tmp_path / "ori-tt" / "s0" and runs[0].folder("out") == Path("out/ori-tt/s0")


def test_legacy_single_model_is_seed_0(tmp_path):
    _touch(tmp_path / "coco-tt" / "model.pt")
    assert trained_runs(tmp_path, "coco-tt") == [Run("coco-tt", 0)]
    assert trained_runs(tmp_path, "coco-tt")[0].model == tmp_path / "coco-tt"


def test_seed_folders_win_over_a_legacy_model(tmp_path):
    _touch(tmp_path / "x" / "model.pt")
    _touch(tmp_path / "x" / "s1" / "model.pt")
    assert [r.model for r in trained_runs(tmp_path, "x")] == [tmp_path / "x" / "s1"]


def test_missing_experiment_names_the_folder_and_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"rssn-tt: no trained model.*s<seed>/model\.pt.*legacy model\.pt"):
        trained_runs(tmp_path, "rssn-tt")


def test_evaluated_runs(tmp_path):
    for folder in ("b/s1", "b/s0", "a/s0", "baselines/blank", "a/s2"):
        _touch(tmp_path / folder / PER_IMAGE)
    (tmp_path / "a" / "s3").mkdir()                                   # no per_image.csv: not evaluated
    assert [r.name for r in evaluated_runs(tmp_path)] == ["a-s0", "a-s2", "b-s0", "b-s1"]
    assert [r.name for r in evaluated_runs(tmp_path, ["b", "missing"])] == ["b-s0", "b-s1"]
    assert evaluated_runs(tmp_path / "nowhere") == []
    assert baseline_folder(tmp_path, "blank") == tmp_path / "baselines" / "blank"


def test_reserved_names_mirror_the_config():
    assert RESERVED == EvaluateConfig.RESERVED
