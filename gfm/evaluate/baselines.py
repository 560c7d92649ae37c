"""Reference mattes scored with the same metrics as the models: what a model's numbers mean.

* ``blank`` -- the all-zero matte (everything background): the error of predicting nothing, the
  bar every trained model must clear.
* ``closed_form`` -- classical trimap-based matting, Levin et al.'s closed-form solution
  (``pymatting.estimate_alpha_cf``, the method behind the paper's foreground estimation, Sect. 4.2)
  given the validation trimap: the kind of trimap-based method the paper benchmarks in Table 2,
  which knows the foreground and background areas that a trimap-free GFM has to find itself.
  It solves a sparse linear system over the unknown pixels: about 1-3 s per 360 x 480 image on
  one CPU core.

:func:`evaluate_baseline` writes nothing itself; the stage puts its table in
``<evaluate.out>/baselines/<name>/per_image.csv``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from gfm.core.io import read_image
from gfm.core.parallel import parallel_map
from gfm.core.trimap import BACKGROUND, FOREGROUND
from gfm.evaluate import metrics
from gfm.evaluate.files import read_ground_truth, read_trimap, save_prediction, validation_split

__all__ = ["BASELINES", "SHOWN", "blank_matte", "closed_form_matte", "evaluate_baseline"]


def blank_matte(image: np.ndarray, trimap: np.ndarray | None = None) -> np.ndarray:
    """The all-zero H x W float32 matte of ``image`` (the trimap is not used)."""
    return np.zeros(np.asarray(image).shape[:2], np.float32)


def closed_form_matte(image: np.ndarray, trimap: np.ndarray | None) -> np.ndarray:
    """Closed-form matting (Levin et al., 2007; ``pymatting.estimate_alpha_cf``) of an RGB uint8
    ``image`` given its uint8 0/128/255 ``trimap`` -> H x W float32 alpha in [0, 1].

    A trimap without unknown pixels is its own answer; one without foreground (background) pixels
    gives the all-zero (all-one) matte, the minimiser of the closed-form cost under those
    constraints (pymatting refuses such trimaps).
    """
    if trimap is None:
        raise ValueError("closed_form: needs the validation trimap (<split>/trimap/<name>.png), found none")
    trimap = np.asarray(trimap)
    fg, bg = trimap == FOREGROUND, trimap == BACKGROUND
    if not (~(fg | bg)).any():
        return fg.astype(np.float32)
    if not (fg.any() and bg.any()):
        return np.full(trimap.shape, 1.0 if fg.any() else 0.0, np.float32)
    from pymatting import estimate_alpha_cf  # numba-compiled: imported only when used

    alpha = estimate_alpha_cf(np.asarray(image, np.float64) / 255.0, trimap.astype(np.float64) / 255.0)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


#: The reference mattes by name (mirrored by gfm.core.config.EvaluateConfig.baselines).
BASELINES = {"blank": blank_matte, "closed_form": closed_form_matte}
#: Those drawn beside the models in the qualitative figures (the blank matte is all black).
SHOWN = ("closed_form",)


def evaluate_baseline(name: str, validation_dir: str | Path, *, names: Sequence[str] | None = None,
                      workers: int = 2, convention: str = "gfm", save_to: str | Path | None = None,
                      save_names: Sequence[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """Score reference matte ``name`` (:data:`BASELINES`) on the validation images, ``workers``
    processes at a time (:func:`gfm.core.parallel.parallel_map`).

    ``save_to``: write the mattes there (:func:`gfm.evaluate.files.save_prediction`), those of
    ``save_names`` only when given. Returns one row per image, the columns of
    :func:`gfm.evaluate.run.evaluate_model` (``inference_s`` is the time of estimating the matte).
    """
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    if not names:
        raise ValueError(f"{split.original}: no validation images")
    keep = None if save_names is None else set(save_names)
    jobs = [(_Job(name, split.root, image, convention,
                  None if save_to is None or (keep is not None and image not in keep) else Path(save_to)),)
            for image in names]
    rows = parallel_map(_score, jobs, workers, progress=progress, desc=name, unit="image", batch_size=1)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Job:
    """One image of one baseline, for a worker process."""

    baseline: str
    split: Path
    image: str
    convention: str
    save_to: Path | None


def _score(job: _Job) -> dict:
    split = validation_split(job.split)
    image = read_image(split.image_path(job.image))
    gt = read_ground_truth(split, job.image, image.shape[:2])
    trimap = read_trimap(split, job.image)
    start = time.perf_counter()
    alpha = BASELINES[job.baseline](image, trimap)
    estimated = time.perf_counter()
    try:
        scores = metrics.evaluate(alpha, gt, trimap, job.convention)
    except ValueError as error:
        raise ValueError(f"{job.baseline} on {job.image}: {error}") from error
    row = {"name": job.image, "height": image.shape[0], "width": image.shape[1],
           "inference_s": estimated - start, "metrics_s": time.perf_counter() - estimated, **scores}
    if job.save_to is not None:
        save_prediction(job.save_to, job.image, {"fusion": alpha})
    return row
