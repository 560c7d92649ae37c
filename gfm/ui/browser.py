"""The result browser of stage 5: validation images x evaluated runs, from the saved predictions.

Two drop-downs (image, run) and the :func:`gfm.evaluate.figures.decoders_figure` panels of that
run's saved prediction (glance classes, focus alpha, collaborative matte, error, close view) with
the image's metrics from ``per_image.csv``. Needs a live kernel; the stage saves the static
companion (``<evaluate.out>/figures/decoders_<run>_<image>.png``, the browser's first view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import ipywidgets as widgets

from gfm.evaluate.figures import decoders_figure
from gfm.evaluate.files import PREDICTIONS, validation_split
from gfm.evaluate.runs import Run, evaluated_runs
from gfm.ui import widgets as gfm_widgets

__all__ = ["build_result_browser"]


def build_result_browser(evaluation_dir: str | Path, validation_dir: str | Path, runs: Sequence[Run] | None = None,
                         *, image: str | None = None, run: str | None = None) -> widgets.VBox:
    """An ipywidgets browser over validation images x ``runs`` (default: every evaluated run with saved
    predictions) -> Widget. Only images saved for all those runs are offered; ``image`` and ``run``
    (a run name, ``<experiment>-s<seed>``) pick the first view (default: the first of each)."""
    split = validation_split(validation_dir)
    runs = [r for r in (evaluated_runs(evaluation_dir) if runs is None else runs)
            if (r.folder(evaluation_dir) / PREDICTIONS / "alpha").is_dir()]
    if not runs:
        raise ValueError(f"{evaluation_dir}: no evaluated run with saved predictions "
                         f"(<experiment>/s<seed>/{PREDICTIONS}/)")
    saved = [{p.stem for p in (r.folder(evaluation_dir) / PREDICTIONS / "alpha").glob("*.png")} for r in runs]
    names = [n for n in split.names() if all(n in s for s in saved)]
    if not names:
        raise ValueError(f"{evaluation_dir}: no validation image has saved predictions for all of "
                         f"{[r.name for r in runs]}")
    by_name = {r.name: r for r in runs}
    for value, options, what in ((image, names, "image"), (run, list(by_name), "run")):
        if value is not None and value not in options:
            raise ValueError(f"{what} {value!r} is not among the browsable ones: {options}")
    image_box = widgets.Dropdown(options=names, value=image or names[0], description="image")
    run_box = widgets.Dropdown(options=list(by_name), value=run or runs[0].name, description="run")
    view = gfm_widgets.figure_view()

    def show(*_):
        fig = decoders_figure(evaluation_dir, validation_dir, by_name[run_box.value], image_box.value)
        gfm_widgets.show_figure(view, fig)

    image_box.observe(show, names="value")
    run_box.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([image_box, run_box]), view])
