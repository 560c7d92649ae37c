"""Run folders read and written by the evaluate stage (the seeds contract of issue 11).

Every experiment of the grid is trained once per seed; a *run* is one trained model, named
``<experiment>-s<seed>`` in tables and JSON.

* Training side (read): ``<train.out>/<experiment>/s<seed>/model.pt`` (+ ``train_summary.json``).
  The legacy layout of one model per experiment, ``<train.out>/<experiment>/model.pt``, is read as
  seed 0 when the experiment has no ``s<seed>/`` folder.
* Evaluation side (written): ``<evaluate.out>/<experiment>/s<seed>/per_image.csv`` (+
  ``predictions/``), the reference mattes in ``<evaluate.out>/baselines/<name>/``; the same tree
  for every other benchmark under ``<evaluate.out>/benchmarks/<name>/``
  (:mod:`gfm.evaluate.benchmarks`) and Table 5's protocol under ``<evaluate.out>/table5/``
  (:mod:`gfm.evaluate.table5`).

:data:`RESERVED` are the names of the evaluation side (folders of ``evaluate.out``, sections of
``evaluate.metrics_out``) that no experiment may take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gfm.evaluate.benchmarks import BENCHMARKS_DIR
from gfm.evaluate.files import PER_IMAGE
from gfm.model.checkpoint import MODEL_FILE

__all__ = ["BASELINES_DIR", "FIGURES_DIR", "TABLE5_DIR", "FUSIONS_KEY", "RESERVED", "Run", "trained_runs", "evaluated_runs", "baseline_folder"]

BASELINES_DIR, FIGURES_DIR, TABLE5_DIR = "baselines", "figures", "table5"
#: The fusion comparison: ``<evaluate.out>/fusions.csv`` and its section of ``evaluate.metrics_out``.
FUSIONS_KEY = "fusions"
#: Names under ``<evaluate.out>`` and sections of ``evaluate.metrics_out`` that are not experiments
#: (mirrored by gfm.core.config.EvaluateConfig).
RESERVED = (BASELINES_DIR, FIGURES_DIR, BENCHMARKS_DIR, TABLE5_DIR, FUSIONS_KEY)
_SEED_DIR = re.compile(r"s(\d+)")


@dataclass(frozen=True)
class Run:
    """One trained model: ``experiment`` trained with ``seed``; ``model`` is the training run folder
    (what :func:`gfm.model.infer.load_model` reads; None for a run known from its evaluation only)."""

    experiment: str
    seed: int
    model: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return f"{self.experiment}-s{self.seed}"

    def folder(self, evaluation_dir: str | Path) -> Path:
        """Its evaluation folder, ``<evaluation_dir>/<experiment>/s<seed>``."""
        return Path(evaluation_dir) / self.experiment / f"s{self.seed}"


def trained_runs(models_dir: str | Path, experiment: str) -> list[Run]:
    """The trained runs of ``experiment`` under ``models_dir`` (the ``train.out`` folder), by seed.

    ``s<seed>/`` folders holding ``model.pt``; without any, the legacy ``<experiment>/model.pt`` as
    seed 0. A missing experiment is a FileNotFoundError naming the folder and both layouts.
    """
    root = Path(models_dir) / experiment
    runs = []
    if root.is_dir():
        for folder in root.iterdir():
            match = _SEED_DIR.fullmatch(folder.name)
            if match and (folder / MODEL_FILE).is_file():
                runs.append(Run(experiment, int(match.group(1)), folder))
    if not runs and (root / MODEL_FILE).is_file():
        runs.append(Run(experiment, 0, root))
    if not runs:
        raise FileNotFoundError(f"{root}: no trained model of experiment {experiment!r} (expected s<seed>/{MODEL_FILE} "
                                f"folders, or the legacy {MODEL_FILE}); has train@{experiment} run?")
    return sorted(runs, key=lambda run: run.seed)


def evaluated_runs(evaluation_dir: str | Path, experiments=None) -> list[Run]:
    """The runs evaluated under ``evaluation_dir`` (``<experiment>/s<seed>/per_image.csv``), ordered by
    ``experiments`` (default: every experiment folder, by name) then seed."""
    root = Path(evaluation_dir)
    if experiments is None:
        experiments = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in RESERVED) \
            if root.is_dir() else []
    runs = []
    for experiment in experiments:
        folder = root / experiment
        seeds = [int(m.group(1)) for p in folder.iterdir() if (m := _SEED_DIR.fullmatch(p.name))
                 and (p / PER_IMAGE).is_file()] if folder.is_dir() else []
        runs += [Run(experiment, seed) for seed in sorted(seeds)]
    return runs


def baseline_folder(evaluation_dir: str | Path, name: str) -> Path:
    """The evaluation folder of reference matte ``name``: ``<evaluation_dir>/baselines/<name>``."""
    return Path(evaluation_dir) / BASELINES_DIR / name
