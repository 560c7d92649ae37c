"""Figures of the training stage: a training sample (Sect. 5.2, RoSTa targets of Sect. 3.4), the loss
curves of Eq. 2-8 over every seed of an experiment, and the glance / focus / collaborative matting
outputs (Sect. 3.2, 3.3, 3.5) of a trained model on validation images.

Each function returns a matplotlib Figure (the notebook shows it, tests call it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gfm.model.infer import predict
from gfm.train.losses import LOSS_TERMS

__all__ = ["plot_sample", "plot_training_curves", "plot_predictions"]


def plot_sample(sample: dict, *, title: str | None = None):
    """One training sample as the network and the losses see it -> Figure.

    Panels: the input crop, its alpha, the TT trimap, the FT erosion mask, the BT dilation mask,
    F and B (``sample`` is a :class:`gfm.train.dataset.MattingDataset` item).
    """
    import matplotlib.pyplot as plt

    def rgb(t):
        return t.permute(1, 2, 0).numpy().clip(0, 255).astype(np.uint8)

    panels = {"image": rgb(sample["image"]), "alpha": sample["alpha"][0].numpy(),
              "trimap (TT)": sample["trimap"].numpy() / 2.0, "erosion F (FT)": sample["erosion"][0].numpy(),
              "dilation B (BT)": sample["dilation"][0].numpy(), "F": rgb(sample["fg"]), "B": rgb(sample["bg"])}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    for ax, (name, panel) in zip(axes, panels.items()):
        ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=1 if panel.ndim == 2 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title or str(sample.get("name", "")), fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves(history, *, terms=None, smooth: int = 5):
    """Loss terms against the step (log scale; a rolling mean over ``smooth`` steps) -> Figure.

    ``history`` is one run's loss table (:attr:`gfm.train.loop.TrainResult.history` or a
    ``losses.csv`` path) or a mapping run name -> such a table: every run of an experiment (one per
    seed) is drawn, one thin line per run, one colour per term.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    tables = {name: _losses_table(table, name) for name, table in runs.items()}
    if not tables:
        raise ValueError("history: no training run to plot")
    first = next(iter(tables.values()))
    terms = list(terms or [c for c in LOSS_TERMS if c in first.columns])
    long = pd.concat([table.melt(id_vars=["step"], value_vars=terms, var_name="term", value_name="loss")
                      .assign(run=name) for name, table in tables.items()], ignore_index=True)
    long["loss"] = long.groupby(["run", "term"])["loss"].transform(lambda s: s.rolling(smooth, min_periods=1).mean())
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=long, x="step", y="loss", hue="term", units="run", estimator=None, lw=1, ax=ax)
    ax.set_yscale("log")
    seeds = f"{len(tables)} runs, " if len(tables) > 1 else ""
    ax.set_title(f"training losses ({seeds}rolling mean over {smooth} steps)")
    fig.tight_layout()
    return fig


def plot_predictions(model: torch.nn.Module, images, *, size: int, alphas=None, titles=None):
    """Glance / focus / fusion panels of ``model`` on a few images -> Figure.

    Each image is seen at the training scale: one pass of :func:`gfm.model.infer.predict`
    (``strategy="resize"``) with its short side resized to ``size`` (the training ``input_size``).
    One row per image: the image, the glance decoder's classes (arg-max: black background, grey
    transition, white foreground; FT/BT: white = class 1), the focus decoder's alpha, the
    collaborative matte and, if ``alphas`` are given, the ground truth.
    """
    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("images: nothing to show")
    columns = ["image", "glance", "focus", "fusion"] + (["ground truth"] if alphas is not None else [])
    fig, axes = plt.subplots(len(images), len(columns), figsize=(2.6 * len(columns), 2.3 * len(images)),
                             squeeze=False)
    was_training = model.training
    device = next(model.parameters()).device
    for row, image in enumerate(images):
        out = predict(model, image, strategy="resize", d=min(image.shape[:2]) / size, device=device)
        glance = out["glance"] / max(out["glance_probs"].shape[0] - 1, 1)
        panels = [image, glance, out["focus"], out["fusion"]]
        if alphas is not None:
            panels.append(alphas[row])
        for col, (name, panel) in enumerate(zip(columns, panels)):
            ax = axes[row, col]
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=255 if panel.ndim == 3 else (
                255 if panel.dtype == np.uint8 else 1))
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(name)
        if titles is not None:
            axes[row, 0].set_ylabel(titles[row])
    model.train(was_training)
    fig.tight_layout()
    return fig


def _losses_table(table, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        path = Path(table)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no losses.csv of run {name!r}")
        table = pd.read_csv(path)
    if table.empty:
        raise ValueError(f"history of run {name!r}: no training steps to plot")
    return table
