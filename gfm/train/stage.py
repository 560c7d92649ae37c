"""Stage 4 (``train@<experiment>``, notebook 04_train): every seed of one experiment of the grid.

:func:`run` trains the experiment once per seed of ``train.seeds`` (:func:`gfm.train.loop.train`,
settings from :meth:`gfm.train.loop.TrainConfig.from_params`), each into its run folder
``<train.out>/<experiment>/s<seed>/``, writes ``<train.metrics_dir>/<experiment>.json`` and returns
what the notebook shows. Several seeds are what lets the later stages tell a difference between
two arms of the grid from the spread of training itself (issue 11).

``metrics/train/<experiment>.json`` (``dvc metrics show``): the experiment, the number of seeds,
steps, summed training time, mean seconds per step, parameters, device and precision, the
final losses (mean over the last epoch) averaged over the seeds as ``loss_<term>``, and under
``runs`` the same per run ``<experiment>-s<seed>``.

``metrics/train/<experiment>_losses.csv`` (``dvc plots show``): ``step``, the total loss (Eq. 8) of
each run (one column per run name) and ``total``, their mean, as the last column (the one dvc
draws by default). Every term of every run is in the run folders' ``losses.csv``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gfm.core import layout
from gfm.core.config import Params
from gfm.core.device import resolve_device
from gfm.core.io import read_alpha, read_image, write_json, write_text
from gfm.core.parallel import parallel_map
from gfm.model.backbones import prepare_pretrained
from gfm.train.dataset import MattingDataset, training_dataset
from gfm.train.loop import TrainConfig, TrainResult, train

__all__ = ["StageResult", "run", "configs", "samples", "validation_preview"]


@dataclass
class StageResult:
    """What :func:`run` returns: every run of the experiment (run name -> result, in seed order),
    the metrics written, and a few validation images for the prediction figure."""

    experiment: str
    runs: dict[str, TrainResult]
    metrics: dict
    preview_names: list[str]
    preview_images: list[np.ndarray]
    preview_alphas: list[np.ndarray]

    @property
    def histories(self) -> dict[str, pd.DataFrame]:
        """Run name -> loss table (for :func:`gfm.train.plots.plot_training_curves`)."""
        return {name: result.history for name, result in self.runs.items()}

    @property
    def model(self) -> torch.nn.Module:
        """The first seed's model."""
        return next(iter(self.runs.values())).model

    @property
    def table(self) -> pd.DataFrame:
        """One row per run: seed, steps, epochs, time, seconds per step, final total loss."""
        return pd.DataFrame([{"run": name, "seed": r.summary["seed"], "steps": r.summary["steps"],
                              "epochs": r.summary["epochs"], "time_s": r.summary["time_s"],
                              "seconds_per_step": r.summary["seconds_per_step"],
                              "loss_total": r.summary["final_losses"].get("total", float("nan"))}
                             for name, r in self.runs.items()]).set_index("run")


def run(params: Params, experiment: str, *, resume: bool = False, progress: bool = True) -> StageResult:
    """Train ``experiment`` once per seed of ``train.seeds``; write the runs and the stage metrics.

    ``resume`` continues each run from its ``checkpoint.pt`` (bit-identical on CPU, see
    :mod:`gfm.train.loop`). On a CPU, ``train.parallel`` runs train at once, each in its own
    process on ``train.threads`` threads: the same weights as one after another, in less time when
    one run's small operations cannot keep the cores busy. Under ``torchrun`` every rank trains
    every seed, one after another, and rank 0 writes.
    """
    runs = configs(params, experiment, resume=resume, progress=progress)
    # the backbone's initialisation is resolved (downloaded, or its absence reported) before any work
    initialisation = prepare_pretrained(runs[0].backbone, runs[0].pretrained, progress=progress)
    at_once = min(params.train.parallel, len(runs))
    if at_once > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1 and resolve_device(params.device).type == "cpu":
        trained = parallel_map(train, [(dataclasses.replace(c, progress=False),) for c in runs], at_once,
                               progress=progress, desc=f"{experiment}: {len(runs)} runs, {at_once} at once", unit="run")
    else:
        trained = [train(config) for config in runs]
    results = {config.run: result for config, result in zip(runs, trained)}
    metrics = {**_metrics(experiment, results), "pretrained": initialisation}
    if next(iter(results.values())).extra.get("rank", 0) == 0:
        write_json(params.train.metrics_path(experiment), metrics)
        write_text(params.train.losses_path(experiment), _total_losses(results).to_csv(index=False, float_format="%.6g"))
    names, images, alphas = validation_preview(params, params.train.n_preview)
    return StageResult(experiment, results, metrics, names, images, alphas)


def configs(params: Params, experiment: str, *, resume: bool = False, progress: bool = True) -> list[TrainConfig]:
    """The runs of ``experiment``, one per seed of ``train.seeds``, reading :func:`datasets_folder`."""
    folder = datasets_folder(params)
    return [dataclasses.replace(TrainConfig.from_params(params, experiment, seed, resume=resume, progress=progress),
                                datasets=folder) for seed in params.train.seeds]


def samples(params: Params, experiment: str) -> MattingDataset:
    """The training samples of ``experiment`` as its first seed's first epoch draws them (composed on
    the fly for an online route)."""
    config = configs(params, experiment)[0]
    return training_dataset(config.track, config.datasets, config.composites, fg_bg=config.fg_bg,
                            on_bad_sample=config.on_bad_sample, input_size=config.input_size,
                            crop_sizes=config.crop_sizes, trimap_kernel=config.trimap_kernel,
                            ftbt_kernel=config.ftbt_kernel, seed=config.seed)


def validation_preview(params: Params, n: int) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Names, images and ground-truth alphas of the first ``n`` validation images."""
    split = layout.matting_split(datasets_folder(params), "validation")
    names = split.names()[:n]
    return names, [read_image(split.image_path(m)) for m in names], [read_alpha(split.mask_path(m)) for m in names]


def datasets_folder(params: Params) -> str:
    """``data.datasets``; before stage 1 has run (no ``am2k`` there), the embedded world ``data.data_root``."""
    if Path(params.data.datasets, layout.MATTING_SET).is_dir():
        return params.data.datasets
    warnings.warn(f"{params.data.datasets}/{layout.MATTING_SET} does not exist (stage 1 has not run): training on "
                  f"the embedded world in {params.data.data_root}", stacklevel=2)
    return params.data.data_root


def _total_losses(results: dict[str, TrainResult]) -> pd.DataFrame:
    table = pd.concat({name: r.history.set_index("step")["total"] for name, r in results.items()}, axis=1)
    return table.assign(total=table.mean(axis=1)).rename_axis("step").reset_index()


def _metrics(experiment: str, results: dict[str, TrainResult]) -> dict:
    summaries = {name: r.summary for name, r in results.items()}
    first = next(iter(summaries.values()))
    per_run = {name: {"seed": s["seed"], "steps": s["steps"], "time_s": s["time_s"],
                      "seconds_per_step": s["seconds_per_step"],
                      **{f"loss_{k}": round(v, 5) for k, v in s["final_losses"].items()}}
               for name, s in summaries.items()}
    terms = [k for k in per_run[next(iter(per_run))] if k.startswith("loss_")]
    return {"experiment": experiment, "seeds": len(summaries), "steps": first["steps"],
            "time_s": round(sum(s["time_s"] for s in summaries.values()), 2),
            "seconds_per_step": round(statistics.mean(s["seconds_per_step"] for s in summaries.values()), 4),
            "parameters": first["parameters"], "device": first["device"], "precision": first["precision"],
            **{k: round(statistics.mean(r[k] for r in per_run.values()), 5) for k in terms},
            "runs": per_run}
