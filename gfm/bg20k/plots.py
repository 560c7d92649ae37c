"""Figures of stage 2: of a constructed set, kept and rejected examples (cf. paper Fig. 4) and the
resolution filter; of the released BG-20k, examples and shorter sides per official split."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from gfm.bg20k.build import REASONS
from gfm.core.io import list_images
from gfm.data.registry import BG20K_SPLITS


def plot_gallery(manifest: pd.DataFrame, candidates_dir: str | os.PathLike, *, per_reason: int = 4,
                 thumb_height: int = 120):
    """Kept and rejected candidates, ``per_reason`` examples per reason (cf. paper Fig. 4).

    One row per reason present in the manifest (kept first). Unreadable files are shown as a
    grey tile. Returns a matplotlib Figure.
    """
    files = {Path(p).stem: p for p in list_images(candidates_dir)}
    reasons = [r for r in REASONS if (manifest["reason"] == r).any()]
    fig, axes = plt.subplots(len(reasons), per_reason, squeeze=False,
                             figsize=(2.4 * per_reason, 2.0 * len(reasons)))
    for row, reason in zip(axes, reasons):
        examples = manifest[manifest["reason"] == reason].head(per_reason)
        for ax, (_, item) in zip(row, examples.iterrows()):
            ax.imshow(_thumbnail(files.get(item["name"]), thumb_height))
            ax.set_title(_caption(item), fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        label = "kept" if reason == "ok" else f"rejected:\n{reason}"
        row[0].set_ylabel(label, fontsize=9)
    fig.suptitle("BG-20k construction: kept and rejected candidates (cf. paper Fig. 4)")
    fig.tight_layout()
    return fig


def plot_resolution_hist(manifest: pd.DataFrame, *, min_short_side: int | None = None,
                         bins: int = 30):
    """Histogram of the candidates' shorter side before filtering and of the kept images.

    The kept images are then resized to the target shorter side (the manifest's ``out_width``
    / ``out_height``), drawn as a dashed line with ``min_short_side`` if given.
    Returns a matplotlib Figure.
    """
    measured = manifest[manifest["short_side"] > 0]
    kept = measured[measured["status"] == "kept"]
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    edges = np.histogram_bin_edges(measured["short_side"], bins=bins)
    ax.hist(measured["short_side"], bins=edges, color="0.75", label=f"all candidates ({len(measured)})")
    ax.hist(kept["short_side"], bins=edges, color="tab:blue", alpha=0.8,
            label=f"kept, before resizing ({len(kept)})")
    if min_short_side is not None:
        ax.axvline(min_short_side, color="tab:red", label=f"min_short_side = {min_short_side}")
    if len(kept):
        target = int(np.minimum(kept["out_width"], kept["out_height"]).iloc[0])
        ax.axvline(target, color="k", ls="--", label=f"kept, after resizing = {target}")
    ax.set_xlabel("shorter side (px)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title("Resolution filter (paper, Sect. 4.1: shorter side ≥ 1080 px)")
    fig.tight_layout()
    return fig


def plot_split_gallery(manifest: pd.DataFrame, root: str | os.PathLike, *, per_split: int = 4,
                       thumb_height: int = 120):
    """Examples of the released BG-20k (cf. paper Fig. 4): one row per official split, ``per_split``
    images each (the first by name), read from ``root/<split>/<file>``. Returns a matplotlib Figure."""
    root = Path(root)
    fig, axes = plt.subplots(len(BG20K_SPLITS), per_split, squeeze=False,
                             figsize=(2.4 * per_split, 2.0 * len(BG20K_SPLITS)))
    for row, split in zip(axes, BG20K_SPLITS):
        examples = manifest[manifest["split"] == split].sort_values("name").head(per_split)
        for ax, (_, item) in zip(row, examples.iterrows()):
            ax.imshow(_thumbnail(root / split / item["file"], thumb_height))
            ax.set_title(f"{item['name']} ({item['width']}×{item['height']})", fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        row[0].set_ylabel(f"{split}\n({(manifest['split'] == split).sum()} images)", fontsize=9)
    fig.suptitle("BG-20k as released: examples per official split (cf. paper Fig. 4)")
    fig.tight_layout()
    return fig


def plot_split_resolution(manifest: pd.DataFrame, *, bins: int = 30):
    """Histogram of the shorter side of the released images per official split (the paper resized
    them to a 1080 px shorter side, Sect. 4.1). Returns a matplotlib Figure."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    edges = np.histogram_bin_edges(manifest["short_side"], bins=bins)
    for split, colour in zip(BG20K_SPLITS, ("tab:blue", "tab:orange")):
        sides = manifest.loc[manifest["split"] == split, "short_side"]
        ax.hist(sides, bins=edges, color=colour, alpha=0.7, label=f"{split} ({len(sides)})")
    ax.set_xlabel("shorter side (px)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title("BG-20k as released: shorter side per official split")
    fig.tight_layout()
    return fig


def _thumbnail(path: Path | None, height: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
        if min(rgb.shape[:2]) < 2:
            raise ValueError("degenerate")
        return cv2.resize(rgb, (max(1, round(rgb.shape[1] * height / rgb.shape[0])), height),
                          interpolation=cv2.INTER_AREA if rgb.shape[0] > height else cv2.INTER_NEAREST)
    except (OSError, ValueError, TypeError, SyntaxError, AttributeError):
        return np.full((height, height, 3), 200, np.uint8)


def _caption(item: pd.Series) -> str:
    text = f"{item['name']} ({item['width']}×{item['height']})"
    if item["reason"] == "duplicate":
        text += f"\n≈ {item['duplicate_of']} (d={item['hash_distance']:.0f})"
    elif pd.notna(item.get("saliency_score")) and item["reason"] in ("ok", "salient"):
        text += f"\nsaliency {item['saliency_score']:.3f}"
    return text
