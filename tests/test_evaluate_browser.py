"""gfm.ui.browser: the stage-5 result browser over validation images x evaluated runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import shutil

import pytest

from gfm.evaluate.files import PREDICTIONS
from gfm.evaluate.runs import Run
from gfm.ui.browser import build_result_browser

from test_evaluate import make_validation
from test_evaluate_figures import make_evaluation

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_validation(tmp_path_factory.mktemp("datasets"))


@pytest.fixture()
def evaluation(tmp_path, datasets):
    return make_evaluation(tmp_path, datasets, runs=(("a", 0, 1.0), ("b", 0, 0.5)))


def _boxes(browser):
    image_box, run_box = browser.children[0].children
    return image_box, run_box, browser.children[1]


def test_browser_offers_every_run_and_reacts(evaluation, datasets):
    browser = build_result_browser(evaluation, datasets)
    image_box, run_box, view = _boxes(browser)
    assert run_box.options == ("a-s0", "b-s0") and image_box.options == ("v_0", "v_1", "v_2")
    first = view.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    run_box.value = "b-s0"
    assert view.value != first                                        # a new figure was drawn


def test_first_view_and_images_saved_for_every_run(evaluation, datasets):
    for name in ("v_0", "v_1"):                                       # run b keeps only v_2's matte
        (Run("b", 0).folder(evaluation) / PREDICTIONS / "alpha" / f"{name}.png").unlink()
    browser = build_result_browser(evaluation, datasets, image="v_2", run="b-s0")
    image_box, run_box, _ = _boxes(browser)
    assert image_box.options == ("v_2",) and (image_box.value, run_box.value) == ("v_2", "b-s0")
    with pytest.raises(ValueError, match="image 'v_0' is not among the browsable ones"):
        build_result_browser(evaluation, datasets, image="v_0")
    with pytest.raises(ValueError, match="run 'c-s0' is not among the browsable ones"):
        build_result_browser(evaluation, datasets, run="c-s0")


def test_browser_needs_saved_predictions(evaluation, datasets):
    for run in (Run("a", 0), Run("b", 0)):
        shutil.rmtree(run.folder(evaluation) / PREDICTIONS)
    with pytest.raises(ValueError, match="no evaluated run with saved predictions"):
        build_result_browser(evaluation, datasets)
