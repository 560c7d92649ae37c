"""gfm.evaluate.figures: qualitative figures from the saved predictions, written as PNG files + index."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from gfm.core.io import read_image
from gfm.evaluate import figures
from gfm.evaluate.baselines import evaluate_baseline
from gfm.evaluate.files import PER_IMAGE, PREDICTIONS, read_per_image, write_table
from gfm.evaluate.run import evaluate_model
from gfm.evaluate.runs import Run, baseline_folder

from test_evaluate import H, W, Stub, make_validation

pytestmark = pytest.mark.usefixtures("one_thread")


class Dimmer(Stub):
    """The stub's focus scaled by ``gain``: a second 'model' with different mattes."""

    def __init__(self, gain):
        super().__init__()
        self.gain = gain

    def forward(self, x):
        out = super().forward(x)
        out["focus"] = out["focus"] * self.gain
        out["fusion"] = out["focus"]
        return out


def make_evaluation(root, datasets, runs=(("a", 0, 1.0), ("b", 0, 0.5), ("b", 1, 0.25))):
    """An evaluation folder: runs of stub models (experiment, seed, gain) and the closed-form matte."""
    for experiment, seed, gain in runs:
        folder = Run(experiment, seed).folder(root)
        frame = evaluate_model(Dimmer(gain), datasets, d1=1, d2=1, device="cpu", workers=0, progress=False,
                               warmup=0, save_to=folder / PREDICTIONS)
        write_table(frame, folder / PER_IMAGE)
    folder = baseline_folder(root, "closed_form")
    write_table(evaluate_baseline("closed_form", datasets, workers=1, progress=False, save_to=folder / PREDICTIONS),
                folder / PER_IMAGE)
    return root


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, datasets):
    return make_evaluation(tmp_path_factory.mktemp("evaluation"), datasets)


def test_contested_images_by_spread(evaluation):
    runs = [Run("a", 0), Run("b", 0)]
    sads = {r.name: read_per_image(r.folder(evaluation))["sad"] for r in runs}
    spread = (sads["a-s0"] - sads["b-s0"]).abs().sort_values(ascending=False)
    assert figures.contested_images(evaluation, runs, n=2) == list(spread.index[:2])
    assert len(figures.contested_images(evaluation, n=5)) == 3         # every evaluated run, every image
    with pytest.raises(FileNotFoundError, match="no per_image.csv"):
        figures.contested_images(evaluation, [Run("missing", 0)])


def test_plot_qualitative_zooms_on_transition():
    _, xx = np.mgrid[:90, :120]
    gt = np.zeros((90, 120), np.float32)
    gt[:, 100:] = 1
    gt[:, 90:100] = (xx[:, 90:100] - 89) / 11                        # the only soft band: x = 90..99
    outputs = {"glance": np.zeros((90, 120), np.uint8), "glance_probs": np.zeros((3, 90, 120), np.float32),
               "focus": gt, "fusion": gt}
    fig = figures.plot_qualitative(np.zeros((90, 120, 3), np.uint8), gt, outputs, title="t", zoom=30)
    assert len(fig.axes) == 12
    rect = fig.axes[0].patches[0]
    x0 = rect.get_x() + 0.5
    assert x0 <= 90 and x0 + 30 >= 100                              # the close view covers the band


def test_close_view_without_transition_falls_back_to_the_contour():
    gt = np.zeros((40, 40), np.float32)
    gt[:, 30:] = 1                                                    # hard edge at x = 30, no soft pixel
    fig = figures.plot_models(np.zeros((40, 40, 3), np.uint8), gt, {"m": gt}, zoom=10)
    x0 = fig.axes[0].patches[0].get_x() + 0.5
    assert x0 <= 30 <= x0 + 10


def test_result_figure_runs_and_baselines(evaluation, datasets):
    fig = figures.result_figure(evaluation, datasets, "v_1", [Run("a", 0), Run("b", 1)], baselines=["closed_form"])
    assert len(fig.axes) == 2 * 5                                     # image, GT, two runs, closed form
    titles = [ax.get_title() for ax in fig.axes[:5]]
    sad = read_per_image(Run("b", 1).folder(evaluation)).loc["v_1", "sad"]
    assert titles[3] == f"b-s1\nSAD {sad:.2f}" and titles[4].startswith("closed_form\nSAD ")
    every = figures.result_figure(evaluation, datasets, "v_1")        # default: every evaluated run
    assert len(every.axes) == 2 * 5


def test_decoders_figure_title_holds_the_metrics(evaluation, datasets):
    fig = figures.decoders_figure(evaluation, datasets, Run("a", 0), "v_0")
    row = read_per_image(Run("a", 0).folder(evaluation)).loc["v_0"]
    assert fig._suptitle.get_text().startswith(f"a-s0 on v_0: SAD {row['sad']:.4g}, MSE")
    assert len(fig.axes) == 12


def test_save_figures_writes_pngs_and_their_index(evaluation, datasets, tmp_path):
    runs = [Run("a", 0), Run("b", 0)]
    entries = figures.save_figures(evaluation, datasets, runs, ["v_2", "v_0"], baselines=["closed_form"],
                                   folder=tmp_path)
    assert [e["file"] for e in entries] == ["qualitative_v_2.png", "qualitative_v_0.png", "decoders_a-s0_v_2.png"]
    assert json.loads((tmp_path / figures.INDEX).read_text()) == entries
    assert entries[0]["runs"] == ["a-s0", "b-s0"] and entries[0]["baselines"] == ["closed_form"]
    for entry in entries:
        image = read_image(tmp_path / entry["file"])
        assert image.shape[0] > 100 and image.std() > 0 and entry["caption"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([figures.INDEX, *(e["file"] for e in entries)])
    with pytest.raises(ValueError, match="nothing to draw"):
        figures.save_figures(evaluation, datasets, runs, [], folder=tmp_path)


def test_save_figure_is_atomic_png(tmp_path):
    fig = figures.plot_models(np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.float32), {})
    path = figures.save_figure(fig, tmp_path / "sub", "x")
    assert path == tmp_path / "sub" / "x.png" and read_image(path).shape[2] == 3
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]
