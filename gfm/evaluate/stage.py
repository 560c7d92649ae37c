"""The evaluate stage (05_evaluate): every run of the grid, the reference mattes, Tables 6 and 7,
the qualitative figures and ``metrics/evaluate.json`` -- from :class:`gfm.core.config.Params` only.

Outputs (``<out>`` = ``evaluate.out``, built beside and renamed into place as a whole):

``<out>/<experiment>/s<seed>/per_image.csv``
    one row per validation image of run ``<experiment>-s<seed>`` (:func:`gfm.evaluate.run.evaluate_model`),
    and ``predictions/`` beside it (every image with ``evaluate.save_predictions``, else the
    figures' images of the figures' runs only).
``<out>/baselines/<name>/per_image.csv``
    the reference mattes of ``evaluate.baselines`` (:mod:`gfm.evaluate.baselines`).
``<out>/runs.csv``, ``<out>/baselines.csv``
    the means of each run and of each reference matte.
``<out>/table6.csv``, ``<out>/table6_per_image.csv``, ``<out>/complexity.csv``
    Table 6 on ``evaluate.table6_model``'s lowest seed (on ``evaluate.table6_images`` evenly spread
    images, default all; means, and one row per setting and image) and Table 7 as measured here.
``<out>/figures/``
    the PNG figures and their index (:func:`gfm.evaluate.figures.save_figures`): the
    ``qualitative_images`` images on which the experiments' first seeds disagree most.
``<out>/timing.json``
    where the stage's time went: seconds per image of inference, metrics and each reference matte.
``evaluate.metrics_out``
    ``{<experiment>: {<metric>: mean over seeds, ..., "images": n, "seeds": n}, "baselines":
    {<name>: {<metric>: mean, ..., "images": n}}}``, flat numbers for ``dvc metrics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from gfm.core.config import Params
from gfm.core.device import resolve_device
from gfm.core.io import atomic_dir, write_json
from gfm.core.layout import MATTING_SET, Split
from gfm.evaluate.baselines import SHOWN, evaluate_baseline
from gfm.evaluate.complexity import complexity_table
from gfm.evaluate.figures import contested_images, save_figures
from gfm.evaluate.files import PER_IMAGE, PREDICTIONS, validation_split, write_table
from gfm.evaluate.run import evaluate_model, mean_over_seeds, predict_and_save, summarise
from gfm.evaluate.runs import BASELINES_DIR, FIGURES_DIR, Run, baseline_folder, trained_runs
from gfm.evaluate.table6 import spread_subset, table6_means, table6_per_image
from gfm.model.infer import load_model

__all__ = ["EvaluateResult", "run", "validation_of"]

#: Evaluation precision: the paper's numbers are fp32.
PRECISION = "fp32"


@dataclass(frozen=True)
class EvaluateResult:
    """What :func:`run` wrote, as tables (the notebook shows them)."""

    out: Path
    runs: pd.DataFrame           # one row per run: run, experiment, seed, model, images, means, wall_s
    experiments: pd.DataFrame    # one row per experiment: means over seeds, seeds
    baselines: pd.DataFrame      # one row per reference matte
    table6: pd.DataFrame
    complexity: pd.DataFrame
    figures: list                # the entries of <out>/figures/figures.json
    timing: dict                 # <out>/timing.json
    metrics: dict                # evaluate.metrics_out

    def figure_paths(self, kind: str | None = None) -> list[Path]:
        """The saved figures (of ``kind``: qualitative | decoders), in index order."""
        return [self.out / FIGURES_DIR / e["file"] for e in self.figures if kind in (None, e["kind"])]


def run(params: Params, *, progress: bool = False) -> EvaluateResult:
    """Evaluate every experiment x seed of ``evaluate.experiments``, the reference mattes, Table 6
    and Table 7; save the figures; write ``evaluate.metrics_out`` (module docstring)."""
    cfg, started = params.evaluate, time.perf_counter()
    device = resolve_device(params.device)
    split = validation_of(params)
    names = split.names()
    if not names:
        raise FileNotFoundError(f"{split.original}: no validation images to evaluate")
    runs = {experiment: trained_runs(params.train.out, experiment) for experiment in cfg.experiments}
    table6_run = (runs.get(cfg.table6_model) or trained_runs(params.train.out, cfg.table6_model))[0]
    options = dict(strategy=cfg.strategy, d1=cfg.d1, d2=cfg.d2, device=device, precision=PRECISION)
    timing: dict = {"images": len(names), "device": str(device), "torch_threads": torch.get_num_threads(),
                    "workers": cfg.workers}
    out = Path(cfg.out)
    with atomic_dir(out) as tmp:
        run_rows = [_evaluate_run(item, split, tmp, cfg, options, progress)
                    for items in runs.values() for item in items]
        figure_runs = [items[0] for items in runs.values()]
        figure_names = contested_images(tmp, figure_runs, n=cfg.qualitative_images)
        if not cfg.save_predictions:
            for item in figure_runs:
                model, _ = load_model(item.model, device=device)
                predict_and_save(model, split.root, figure_names, item.folder(tmp) / PREDICTIONS, **options)
        shown = [name for name in cfg.baselines if name in SHOWN]
        baseline_rows = [_evaluate_baseline(name, split, tmp, cfg, name in shown, figure_names, progress)
                         for name in cfg.baselines]
        grid, timing["table6"] = _table6(table6_run, split, spread_subset(names, cfg.table6_images), tmp, cfg,
                                         device, progress)
        start = time.perf_counter()
        complexity = complexity_table(cfg.complexity_backbones, device=device, precision=PRECISION,
                                      latency_runs=cfg.latency_runs, latency_backbones=cfg.latency_backbones)
        write_table(complexity, tmp / "complexity.csv")
        timing["complexity_wall_s"] = _seconds(start)
        start = time.perf_counter()
        figures = save_figures(tmp, split.root, figure_runs, figure_names, baselines=shown, folder=tmp / FIGURES_DIR)
        timing["figures_wall_s"] = _seconds(start)
        run_table, baseline_table = pd.DataFrame(run_rows), pd.DataFrame(baseline_rows)
        write_table(run_table, tmp / "runs.csv")
        write_table(baseline_table, tmp / "baselines.csv")
        timing.update(_per_image_times(run_table, baseline_table), stage_wall_s=_seconds(started))
        write_json(tmp / "timing.json", timing)

    experiments = {e: mean_over_seeds([r for r in run_rows if r["experiment"] == e]) for e in runs}
    summary = {experiment: _numbers(means) for experiment, means in experiments.items()}
    summary[BASELINES_DIR] = {row["baseline"]: _numbers(row, drop=("baseline", "wall_s")) for row in baseline_rows}
    write_json(cfg.metrics_out, summary)
    return EvaluateResult(out=out, runs=run_table,
                          experiments=pd.DataFrame.from_dict(experiments, orient="index").rename_axis("experiment"),
                          baselines=baseline_table, table6=grid, complexity=complexity, figures=figures,
                          timing=timing, metrics=summary)


def validation_of(params: Params) -> Split:
    """The validation split the stage evaluates on: ``data.datasets``'s matting set, else the
    embedded world's (``data.data_root``) before stage 1 has materialised it."""
    datasets = Path(params.data.datasets)
    return validation_split(datasets if (datasets / MATTING_SET).is_dir() else params.data.data_root)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _evaluate_run(item: Run, split: Split, out: Path, cfg, options: dict, progress: bool) -> dict:
    """Evaluate one run into ``out``; its row of ``runs.csv``."""
    start = time.perf_counter()
    model, _ = load_model(item.model, device=options["device"])
    folder = item.folder(out)
    per_image = evaluate_model(model, split.root, workers=cfg.workers, progress=progress, desc=item.name,
                               save_to=folder / PREDICTIONS if cfg.save_predictions else None, **options)
    write_table(per_image, folder / PER_IMAGE)
    return {"run": item.name, "experiment": item.experiment, "seed": item.seed, "model": str(item.model),
            **summarise(per_image), "wall_s": _seconds(start)}


def _evaluate_baseline(name: str, split: Split, out: Path, cfg, shown: bool, figure_names, progress: bool) -> dict:
    """Score one reference matte into ``out`` (its mattes kept when ``shown`` in the figures); its row
    of ``baselines.csv``."""
    start = time.perf_counter()
    folder = baseline_folder(out, name)
    per_image = evaluate_baseline(name, split.root, workers=cfg.workers, progress=progress,
                                  save_to=folder / PREDICTIONS if shown else None,
                                  save_names=None if cfg.save_predictions else figure_names)
    write_table(per_image, folder / PER_IMAGE)
    return {"baseline": name, **summarise(per_image), "wall_s": _seconds(start)}


def _table6(item: Run, split: Split, names, out: Path, cfg, device, progress: bool) -> tuple[pd.DataFrame, dict]:
    """Table 6 of ``item`` on ``names`` into ``out`` (``table6.csv``, ``table6_per_image.csv``); the grid
    and its timing entry."""
    start = time.perf_counter()
    model, _ = load_model(item.model, device=device)
    per_image = table6_per_image(model, split.root, ds=cfg.table6_d, singles=cfg.table6_single, device=device,
                                 precision=PRECISION, workers=cfg.workers, names=names, progress=progress)
    grid = table6_means(per_image)
    write_table(grid.assign(run=item.name), out / "table6.csv")
    write_table(per_image.assign(run=item.name)[["test", "d1", "d2", "run", *per_image.columns[3:]]],
                out / "table6_per_image.csv")
    return grid, {"run": item.name, "images": len(names), "settings": len(grid), "wall_s": _seconds(start)}


def _per_image_times(runs: pd.DataFrame, baselines: pd.DataFrame) -> dict:
    """Seconds per image: inference and metrics of the runs (means over runs), wall clock of a run
    (everything: reading, inference, metrics, saving), and each reference matte's estimation."""
    per_image = {"inference_s_per_image": float(runs["inference_s"].mean()),
                 "metrics_s_per_image": float(runs["metrics_s"].mean()),
                 "run_wall_s_per_image": float((runs["wall_s"] / runs["images"]).mean())}
    for _, row in baselines.iterrows():
        per_image[f"{row['baseline']}_s_per_image"] = float(row["inference_s"])
        per_image[f"{row['baseline']}_wall_s_per_image"] = float(row["wall_s"] / row["images"])
    return {key: float(f"{value:.4g}") for key, value in per_image.items()}


def _numbers(values: dict, drop=()) -> dict:
    """The numeric entries of ``values`` (None: no finite value, left out) for the metrics JSON."""
    return {k: v for k, v in values.items() if k not in drop and v is not None}


def _seconds(start: float) -> float:
    return round(time.perf_counter() - start, 3)
