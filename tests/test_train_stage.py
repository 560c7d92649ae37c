"""The training stage (gfm.train.stage: every seed of an experiment, the stage metrics) and its figures
(gfm.train.plots)."""

from __future__ import annotations

import json
import socket

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from gfm.core.io import write_image
from gfm.train import plots, stage
from test_train import _world, tiny_params

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny ORI-Track set with a validation split (image + mask)."""
    root = _world(tmp_path_factory.mktemp("world"), n=4)
    rng = np.random.default_rng(1)
    for i in range(3):
        write_image(root / "am2k" / "validation" / "original" / f"v_{i}.png",
                    rng.integers(0, 256, (72, 96, 3)).astype(np.uint8))
        write_image(root / "am2k" / "validation" / "mask" / f"v_{i}.png",
                    rng.integers(0, 256, (72, 96)).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    params = tiny_params(world, out / "models", train={"seeds": [0, 1], "n_preview": 2,
                                                       "metrics_dir": str(out / "metrics")},
                         epochs=2, steps_per_epoch=1)
    return params, stage.run(params, "tiny", progress=False)


def test_parallel_runs_train_the_same_weights_as_one_after_another(world, tmp_path):
    """train.parallel runs seeds in processes of their own on train.threads threads: only the wall
    time changes, not the weights, the losses or the recorded thread count."""
    results = {}
    for parallel in (1, 2):
        out = tmp_path / f"parallel{parallel}"
        params = tiny_params(world, out / "models", train={"seeds": [0, 1], "threads": 1, "parallel": parallel,
                                                           "n_preview": 1, "metrics_dir": str(out / "metrics")},
                             epochs=2, steps_per_epoch=2)
        results[parallel] = stage.run(params, "tiny", progress=False).runs
    assert list(results[1]) == list(results[2]) == ["tiny-s0", "tiny-s1"]
    for name, one_by_one in results[1].items():
        at_once = results[2][name]
        first, second = one_by_one.model.state_dict(), at_once.model.state_dict()
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), name
        pd.testing.assert_frame_equal(one_by_one.history, at_once.history)
        assert one_by_one.summary["threads"] == at_once.summary["threads"] == 1
    assert torch.get_num_threads() == 1                   # the caller's count (conftest's one_thread) is back


def test_run_trains_every_seed_into_its_run_folder(trained):
    params, result = trained
    assert list(result.runs) == ["tiny-s0", "tiny-s1"]
    for seed, (name, run) in zip((0, 1), result.runs.items()):
        folder = run.run_dir
        assert folder.name == f"s{seed}" and folder.parent.name == "tiny"
        assert {p.name for p in folder.iterdir()} == {"model.pt", "checkpoint.pt", "losses.csv", "train_summary.json"}
        assert json.loads((folder / "train_summary.json").read_text())["run"] == name
    first, second = (r.model.state_dict() for r in result.runs.values())
    assert any(not torch.equal(first[k], second[k]) for k in first)      # the seeds differ
    assert result.table.index.tolist() == ["tiny-s0", "tiny-s1"] and (result.table["steps"] == 2).all()
    assert result.model is result.runs["tiny-s0"].model
    assert result.preview_names == ["v_0", "v_1"] and result.preview_images[0].shape == (72, 96, 3)


def test_metrics_are_the_mean_over_seeds_and_per_run(trained):
    params, result = trained
    written = json.loads(open(params.train.metrics_path("tiny")).read())
    assert written == result.metrics
    assert written["seeds"] == 2 and written["steps"] == 2 and set(written["runs"]) == {"tiny-s0", "tiny-s1"}
    per_run = [written["runs"][n]["loss_total"] for n in ("tiny-s0", "tiny-s1")]
    assert written["loss_total"] == pytest.approx(np.mean(per_run), abs=1e-5)
    finals = [r.summary["final_losses"]["total"] for r in result.runs.values()]
    assert per_run == pytest.approx(finals, abs=1e-5)
    assert written["time_s"] == pytest.approx(sum(r.summary["time_s"] for r in result.runs.values()), abs=0.02)


def test_metrics_record_the_initialisation(trained):
    params, result = trained
    assert params.train.pretrained == "none" and result.metrics["pretrained"] == {"pretrained": "none"}


def test_imagenet_weights_missing_offline_stop_the_stage_before_any_work(world, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with socket.socket() as s:                       # a port nobody listens on: the machine is offline
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/models/resnet18-f37072fd.pth"
    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value, "url", url)
    params = tiny_params(world, tmp_path / "models", train={"pretrained": "imagenet",
                                                            "metrics_dir": str(tmp_path / "metrics")})
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth.*torch-home/hub/checkpoints"):
        stage.run(params, "tiny", progress=False)
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()


def test_plot_file_holds_every_seeds_total_loss_and_their_mean_last(trained):
    params, result = trained
    table = pd.read_csv(params.train.losses_path("tiny"))
    assert list(table.columns) == ["step", "tiny-s0", "tiny-s1", "total"] and table["step"].tolist() == [1, 2]
    for name, run in result.runs.items():
        np.testing.assert_allclose(table[name], run.history["total"], rtol=1e-5)
    np.testing.assert_allclose(table["total"], table[["tiny-s0", "tiny-s1"]].mean(axis=1), rtol=1e-5)


def test_configs_read_the_world_until_stage_1_has_run(world, tmp_path):
    params = tiny_params(tmp_path / "not-yet", tmp_path / "models")
    raw_world = params.data.data_root
    with pytest.warns(UserWarning, match="stage 1 has not run"):
        configs = stage.configs(params, "tiny")
    assert [c.datasets for c in configs] == [raw_world] and [c.seed for c in configs] == [3]
    assert stage.configs(tiny_params(world, tmp_path), "tiny")[0].datasets == str(world)


def test_samples_are_the_first_seeds_draws(world, tmp_path):
    data = stage.samples(tiny_params(world, tmp_path, train={"seeds": [7, 8]}), "tiny")
    assert data.seed == 7 and data.input_size == 64 and data.crop_sizes == (64, 80) and len(data) == 4


def test_figures(world, trained, tmp_path):
    params, result = trained
    assert len(plots.plot_sample(stage.samples(params, "tiny")[0]).axes) == 7
    one = plots.plot_training_curves(result.runs["tiny-s0"].history)
    assert one.axes[0].get_yscale() == "log"
    every = plots.plot_training_curves(result.histories)
    assert "2 runs" in every.axes[0].get_title()
    assert _curves(every) == 2 * _curves(one) == 2 * 7                     # one line per term and run
    from_files = plots.plot_training_curves({n: r.losses_path for n, r in result.runs.items()})
    assert _curves(from_files) == _curves(every)
    with pytest.raises(FileNotFoundError, match="no losses.csv of run 'x'"):
        plots.plot_training_curves({"x": tmp_path / "missing.csv"})
    with pytest.raises(ValueError, match="no training steps"):
        plots.plot_training_curves(pd.DataFrame(columns=["step", "total"]))
    model = result.model.train()
    fig = plots.plot_predictions(model, result.preview_images, alphas=result.preview_alphas, size=64,
                                 titles=result.preview_names)
    assert len(fig.axes) == 2 * 5 and model.training                          # train mode restored
    assert len(plots.plot_predictions(model, result.preview_images[:1], size=64).axes) == 4


def _curves(fig) -> int:
    """Lines with data (legend handles have none)."""
    return sum(1 for line in fig.axes[0].lines if len(line.get_xdata()))
