"""The released BG-20k (paper, Sect. 4.1: 20,000 clean backgrounds split into a disjoint 15k training
and 5k validation set, official folders ``train/`` and ``testval/``), passed through as it is.

The release is the paper's own construction (a deep matching model, YOLO-v3, an object detector
and a manual double-check); the offline filters of :mod:`gfm.bg20k.filters` are weaker stand-ins,
so the released images are neither filtered again nor split again. :func:`pass_through` only checks
that the release can be used (both split folders, readable image headers, no name in both splits) and
links each file into the output unchanged; :func:`split_summary` and :func:`official_metrics`
describe it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from gfm.core.io import atomic_dir, list_images, write_text
from gfm.data.archive import link_or_copy
from gfm.data.registry import BG20K_SPLITS

#: Columns of the manifest of a passed-through release (one row per image).
OFFICIAL_COLUMNS = ("name", "split", "file", "width", "height", "short_side", "origin")
#: The ``origin`` of every row: what the manifest says about the images.
ORIGIN = "official BG-20k release, passed through unchanged"
#: The ``mode`` of the stage's metrics for a passed-through release (a constructed set: ``constructed``).
MODE = "official"


def pass_through(release_dir: str | os.PathLike, out_dir: str | os.PathLike, *, link: bool = True) -> pd.DataFrame:
    """Place the released BG-20k at ``out_dir`` with its official split (Sect. 4.1: 15k / 5k).

    Parameters
    ----------
    release_dir : the release as stage 1 placed it, ``<datasets>/bg20k`` with ``train/`` and ``testval/``.
    out_dir : receives ``train/``, ``testval/`` (the same files, hard-linked when possible, else
        copied) and ``manifest.csv``; built under a hidden name and renamed into place.
    link : hard-link the files (False: copy them).

    Returns
    -------
    The manifest (:data:`OFFICIAL_COLUMNS`, also written to ``out_dir/manifest.csv``).

    Raises
    ------
    FileNotFoundError : a split folder is missing or empty.
    ValueError : an image is unreadable, or one name is in both splits (the official split is disjoint).
    """
    release, out_dir = Path(release_dir), Path(out_dir)
    files = {split: list_images(release / split) if (release / split).is_dir() else [] for split in BG20K_SPLITS}
    for split, paths in files.items():
        if not paths:
            raise FileNotFoundError(f"{release / split}: missing or holds no image; expected the released BG-20k "
                                    f"as {release}/{{{','.join(BG20K_SPLITS)}}} (stage 1 with 'bg20k' in "
                                    f"data.real_sources places it there)")
    _check_disjoint(files)
    rows = [{"name": path.stem, "split": split, "file": path.name, **_size(path), "origin": ORIGIN}
            for split, paths in files.items() for path in paths]
    manifest = pd.DataFrame(rows, columns=OFFICIAL_COLUMNS)
    with atomic_dir(out_dir) as build:
        for split, paths in files.items():
            for path in paths:
                link_or_copy(path, build / split / path.name, link=link)
        write_text(build / "manifest.csv", manifest.to_csv(index=False))
    return manifest


def split_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per official split: images, and the shorter side (min / median) and median size of its images."""
    rows = {}
    for split in BG20K_SPLITS:
        group = manifest[manifest["split"] == split]
        rows[split] = {"images": len(group), "min_short_side": int(group["short_side"].min()),
                       "median_short_side": float(np.median(group["short_side"])),
                       "median_width": float(np.median(group["width"])),
                       "median_height": float(np.median(group["height"]))}
    return pd.DataFrame.from_dict(rows, orient="index")


def official_metrics(manifest: pd.DataFrame, *, seconds: float | None = None) -> dict:
    """JSON-ready figures of a passed-through release (for ``dvc metrics show``)."""
    counts = {split: int((manifest["split"] == split).sum()) for split in BG20K_SPLITS}
    metrics = {"mode": MODE, "split": f"official split, {'/'.join(map(str, counts.values()))} images",
               "images": len(manifest), **counts, "min_short_side": int(manifest["short_side"].min())}
    if seconds is not None:
        metrics["seconds"] = round(float(seconds), 2)
    return metrics


def _size(path: Path) -> dict:
    """Width, height and shorter side from the image header; a file that is not an image is an error."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({type(error).__name__}: {error}); the released BG-20k "
                         f"is passed through unchanged, so this is a broken download: refresh it "
                         f"(gfm.data.materialise.forget('bg20k', ...)) and run stage 1 again") from error
    return {"width": width, "height": height, "short_side": min(width, height)}


def _check_disjoint(files: dict[str, list[Path]]) -> None:
    names = [{p.stem: p for p in paths} for paths in files.values()]
    both = sorted(set(names[0]) & set(names[1]))
    if both:
        shown = ", ".join(f"{names[0][n]} and {names[1][n]}" for n in both[:5])
        more = f" and {len(both) - 5} more" if len(both) > 5 else ""
        raise ValueError(f"{len(both)} name(s) in both official splits ({shown}{more}); BG-20k's training and "
                         f"validation sets are disjoint (Sect. 4.1): is this the released BG-20k?")
