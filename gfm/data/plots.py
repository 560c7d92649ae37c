"""The table and figures of stage 1: counts and resolutions per split, and sample triplets
(image | alpha matte | trimap) of the datasets folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gfm.core import layout
from gfm.core.io import list_images, read_alpha, read_image
from gfm.core.trimap import trimap
from gfm.data.errors import DataError
from gfm.data.registry import BG20K_SET, BG20K_SPLITS, MATTING_SPLITS

if TYPE_CHECKING:
    import pandas


def summarise(datasets: str | os.PathLike) -> pandas.DataFrame:
    """Counts per set and split of a datasets folder: one row per split or folder.

    Columns: ``set``, ``split``, ``images``, ``masks``, ``trimaps``, ``fg``, ``bg`` (file counts;
    0 where the folder is absent) and ``min_short_side``, ``median_width``, ``median_height``.
    """
    import pandas as pd

    rows = []
    for set_name, split, folders in _collections(Path(datasets)):
        counts = {k: (len(list_images(p)) if p is not None and p.is_dir() else 0) for k, p in folders.items()}
        sizes = np.array([s for s in (_image_size(p) for p in list_images(folders["images"])) if s] or [[0, 0]])
        rows.append({"set": set_name, "split": split, **counts,
                     "min_short_side": int(sizes.min(axis=1).min()),
                     "median_width": float(np.median(sizes[:, 0])), "median_height": float(np.median(sizes[:, 1]))})
    columns = ["set", "split", "images", "masks", "trimaps", "fg", "bg", "min_short_side", "median_width",
               "median_height"]
    return pd.DataFrame(rows, columns=columns)


def matting_splits(datasets: str | os.PathLike, set_name: str) -> list[str]:
    """The splits of matting set ``set_name`` present in ``datasets`` (those with an ``original/`` folder), in
    the order of :data:`gfm.data.registry.MATTING_SPLITS`."""
    return [split for split in MATTING_SPLITS[set_name]
            if layout.Split(Path(datasets) / set_name / split).original.is_dir()]


def plot_samples(datasets: str | os.PathLike, split: str = "validation", *, n: int, trimap_kernel: int, seed: int,
                 set_name: str = layout.MATTING_SET):
    """Grid of ``n`` samples of a split: image | alpha matte | trimap (one row per sample).

    Samples are drawn with ``numpy.random.default_rng(seed)``. A split without trimaps (the training
    split of AM-2k) shows :func:`gfm.core.trimap.trimap` of the matte (``trimap_kernel``, the
    training stage's ``train.trimap_kernel``; the paper uses 25 for the TT trimap, Sect. 3.4),
    titled so. ``n``, ``trimap_kernel`` and ``seed`` come from params.yaml (``data.n_samples``,
    ``train.trimap_kernel``, ``seed``).
    """
    import matplotlib.pyplot as plt

    split_dirs = layout.Split(Path(datasets) / set_name / split)
    names = split_dirs.names()
    if not names:
        raise DataError(f"{split_dirs.original}: no images to plot")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(names, size=min(n, len(names)), replace=False))
    fig, axes = plt.subplots(len(chosen), 3, figsize=(9, 2.4 * len(chosen)), squeeze=False)
    for row, name in zip(axes, chosen):
        alpha = read_alpha(split_dirs.mask_path(name))
        try:
            tri, tri_title = read_alpha(split_dirs.trimap_path(name)), "trimap"
        except FileNotFoundError:
            tri, tri_title = trimap(alpha, trimap_kernel), f"trimap (generated, k={trimap_kernel})"
        panels = ((read_image(split_dirs.image_path(name)), name), (alpha, "alpha"), (tri, tri_title))
        for ax, (img, title) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{set_name}/{split}: image | alpha | trimap")
    fig.tight_layout()
    return fig


def plot_resolutions(datasets: str | os.PathLike, bins: int = 20):
    """Histograms of the short side (pixels) of the images of every set and split (one panel each):
    the resolution discrepancy of Sect. 4.1 between the matting photos and the backgrounds.

    Unreadable files (the embedded world plants a few corrupt background candidates) are skipped
    and counted under the panel.
    """
    import matplotlib.pyplot as plt

    collections = list(_collections(Path(datasets)))
    if not collections:
        raise DataError(f"{datasets}: no matting set, bg_candidates, bg20k or coco folder to plot")
    fig, axes = plt.subplots(1, len(collections), figsize=(3.2 * len(collections), 2.8), squeeze=False,
                             sharex=True)
    shorts = []
    for _, _, folders in collections:
        files = list_images(folders["images"])
        shorts.append((len(files), [min(s) for s in map(_image_size, files) if s]))
    values = [v for _, short in shorts for v in short] or [0]
    edges = np.linspace(min(values), max(values) + 1, bins + 1)
    for ax, (set_name, split, _), (n_files, short) in zip(axes[0], collections, shorts):
        ax.hist(short, bins=edges, color="tab:blue")
        skipped = n_files - len(short)
        ax.set_title(f"{set_name}/{split}" if split else set_name, fontsize=9)
        ax.set_xlabel("short side (px)" + (f"; {skipped} unreadable" if skipped else ""))
        ax.set_ylabel("images")
    fig.tight_layout()
    return fig


def _collections(datasets: Path) -> Iterable[tuple[str, str, dict]]:
    """(set, split, {images, masks, trimaps, fg, bg}) for every matting split and background folder."""
    for set_name in MATTING_SPLITS:
        for split in matting_splits(datasets, set_name):
            s = layout.Split(datasets / set_name / split)
            yield set_name, split, {"images": s.original, "masks": s.mask, "trimaps": s.trimap, "fg": s.fg, "bg": s.bg}
    backgrounds = [(layout.BG_CANDIDATES, ""), *((BG20K_SET, split) for split in BG20K_SPLITS), (layout.COCO, "")]
    for folder, split in backgrounds:
        if (datasets / folder / split).is_dir():
            yield folder, split, {"images": datasets / folder / split, "masks": None, "trimaps": None, "fg": None,
                                  "bg": None}


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable" here
        return None
