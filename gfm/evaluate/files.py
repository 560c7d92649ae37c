"""What the evaluate stage reads and writes, image by image: the validation split, the ground truth
and trimaps, per-image tables and saved predictions.

Free of torch, so the worker processes that score mattes (:mod:`gfm.evaluate.pool`,
:mod:`gfm.evaluate.baselines`) start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from gfm.core.arrays import to_uint8
from gfm.core.io import read_alpha, write_image, write_text
from gfm.core.layout import MATTING_SET, Split

__all__ = ["PER_IMAGE", "PREDICTIONS", "validation_split", "read_ground_truth", "read_trimap", "write_table",
           "read_per_image", "save_prediction", "load_prediction", "glance_display"]

PER_IMAGE, PREDICTIONS = "per_image.csv", "predictions"


def validation_split(path: str | Path) -> Split:
    """The validation split at ``path``: a split folder (holding ``original/``) or a datasets root
    (holding ``am2k/validation/``)."""
    path = Path(path)
    if (path / "original").is_dir():
        return Split(path)
    if (path / MATTING_SET / "validation" / "original").is_dir():
        return Split(path / MATTING_SET / "validation")
    raise FileNotFoundError(f"{path}: not a validation split (no original/ folder) nor a datasets folder "
                            f"(no {MATTING_SET}/validation/original/)")


def read_ground_truth(split: Split, name: str, shape: tuple[int, int]) -> np.ndarray:
    """The ground-truth alpha of ``name`` as float64 in [0, 1] (the official test's /255), checked to
    have the image's ``shape``."""
    gt = read_alpha(split.mask_path(name))
    if gt.shape != tuple(shape):
        raise ValueError(f"{split.mask_path(name)}: ground truth is {gt.shape}, image is {tuple(shape)}")
    return gt.astype(np.float64) / 255.0


def read_trimap(split: Split, name: str) -> np.ndarray | None:
    """The validation trimap of ``name`` (uint8 0/128/255), or None when the split has none."""
    try:
        path = split.trimap_path(name)
    except FileNotFoundError:
        return None
    return read_alpha(path)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a result table as CSV (no index, 6 significant digits), atomically."""
    return write_text(path, frame.to_csv(index=False, float_format="%.6g"))


def read_per_image(folder: str | Path) -> pd.DataFrame:
    """The ``per_image.csv`` of an evaluation folder, indexed by image name (empty if absent)."""
    path = Path(folder) / PER_IMAGE
    if not path.is_file():
        return pd.DataFrame(index=pd.Index([], name="name"))
    return pd.read_csv(path, dtype={"name": str}).set_index("name")


def save_prediction(folder: str | Path, name: str, out: Mapping) -> None:
    """Write one prediction of :func:`gfm.model.infer.predict` under ``folder``: ``alpha/<name>.png``
    (the collaborative matte), ``focus/<name>.png`` and ``glance/<name>.png`` (:func:`glance_display`);
    a reference matte (``out`` with ``fusion`` only) writes ``alpha/`` alone."""
    folder = Path(folder)
    write_image(folder / "alpha" / f"{name}.png", to_uint8(out["fusion"]))
    if "focus" in out:
        write_image(folder / "focus" / f"{name}.png", to_uint8(out["focus"]))
    if "glance" in out:
        write_image(folder / "glance" / f"{name}.png", glance_display(out))


def load_prediction(folder: str | Path, name: str) -> dict:
    """The prediction :func:`save_prediction` wrote for image ``name`` under ``folder`` (an evaluation
    folder holding ``predictions/``, or that folder itself): ``fusion`` (and, for a model, ``focus``)
    float32 in [0, 1], ``glance`` uint8 (0/128/255)."""
    root = Path(folder)
    if (root / PREDICTIONS).is_dir():
        root = root / PREDICTIONS
    out = {"fusion": read_alpha(root / "alpha" / f"{name}.png").astype(np.float32) / 255.0}
    if (root / "focus" / f"{name}.png").is_file():
        out["focus"] = read_alpha(root / "focus" / f"{name}.png").astype(np.float32) / 255.0
    if (root / "glance" / f"{name}.png").is_file():
        out["glance"] = read_alpha(root / "glance" / f"{name}.png")
    return out


def glance_display(outputs: Mapping) -> np.ndarray:
    """Glance classes as uint8 grey levels: TT 0/128/255, FT/BT 0/255 (the official test's)."""
    glance = np.asarray(outputs["glance"])
    if "glance_probs" not in outputs:
        return glance
    classes = outputs["glance_probs"].shape[0]
    levels = np.array([0, 128, 255] if classes == 3 else [0, 255], dtype=np.uint8)
    return levels[glance]
