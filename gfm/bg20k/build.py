"""BG-20k: building a clean, high-resolution background set from candidate images (paper, Sect. 4.1).

The paper collected 50k HD candidates and (1) removed those whose shorter side is below 1080 px
and resized the rest to a 1080 px shorter side, keeping the aspect ratio; (2) removed duplicates
with a deep matching model and images with salient objects (YOLO-v3, an object detector and a
manual double-check), leaving 20,000 clean images; (3) split them into a disjoint 15k training
and 5k validation set (official folders ``train/`` and ``testval/``).

:func:`build_bg20k` runs the same steps on a folder of candidates (the embedded world's, or one's
own photos; never the released BG-20k, which :mod:`gfm.bg20k.official` passes through) with the
offline filters of :mod:`gfm.bg20k.filters`, then a seeded random train/testval split
(:func:`split_train_testval`).
Unusable files are rejected with a reason instead of stopping the stage; ``convert`` may instead
convert CMYK, 16-bit or grayscale files to 8-bit RGB. Every candidate gets one manifest row
(:data:`MANIFEST_COLUMNS`). Scores and figures of a build: :mod:`gfm.bg20k.summary`,
:mod:`gfm.bg20k.plots`; the stage: :mod:`gfm.bg20k.stage`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from gfm.bg20k.filters import (WEIGHT_FILES, cnn_embeddings, find_duplicates, find_duplicates_cosine,
                               local_weights, object_scores, phash, read_candidate, resize_short_side,
                               saliency_score)
from gfm.core.io import atomic_dir, list_images, write_image, write_text
from gfm.core.parallel import parallel_map
from gfm.data.registry import BG20K_SPLITS

#: Why a candidate was rejected ("ok" for kept images), in the order the checks run.
REASONS = ("ok", "unreadable", "grayscale", "cmyk", "16bit", "too_small", "low_resolution",
           "duplicate", "salient")
#: Reasons that mean "the file itself is unusable" (scored against truth kind ``corrupt``).
BAD_FILE_REASONS = ("unreadable", "grayscale", "cmyk", "16bit")
MANIFEST_COLUMNS = ("name", "status", "reason", "short_side", "width", "height", "duplicate_of",
                    "hash_distance", "saliency_score", "split", "file", "out_width", "out_height",
                    "nearest_distance", "conversion", "detail")
DEDUP_METHODS = ("phash", "cnn")
DETECTORS = ("saliency", "torchvision")
#: Default thresholds: Hamming bits (phash), cosine distance (cnn), salient-area fraction
#: (saliency; calibrated on the embedded world, see notebooks/02_bg20k.ipynb), detection score
#: (torchvision).
DEFAULT_THRESHOLDS = {"phash": 10, "cnn": 0.08, "saliency": 0.03, "torchvision": 0.5}


def build_bg20k(candidates_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                min_short_side: int = 1080, short_side: int = 1080, dedup: str = "phash",
                dedup_threshold: float | None = None, detector: str = "saliency",
                saliency_threshold: float | None = None, val_fraction: float = 0.25, seed: int = 0,
                workers: int = 2, tiny_side: int = 32, convert: Sequence[str] = (),
                jpeg_quality: int = 95, progress: bool = True) -> pd.DataFrame:
    """Build a BG-20k-style background set from a folder of candidates (paper, Sect. 4.1).

    Parameters
    ----------
    candidates_dir : folder of candidate images (names must be unique without their suffix).
    out_dir : output folder; receives ``train/<name>.jpg``, ``testval/<name>.jpg`` and
        ``manifest.csv``. It is built beside ``out_dir`` under a hidden name and renamed into
        place at the end, so an interrupted build leaves any previous ``out_dir`` intact.
    min_short_side : candidates whose shorter side is below this are rejected (paper: 1080).
    short_side : the kept images are resized to this shorter side, aspect kept (paper: 1080).
    dedup : ``"phash"`` (perceptual hash, Hamming distance) or ``"cnn"`` (ResNet-18 embedding,
        cosine distance; needs local weights).
    dedup_threshold : a pair at or below this distance is a duplicate (None: the method's
        default in :data:`DEFAULT_THRESHOLDS`).
    detector : ``"saliency"`` (:func:`gfm.bg20k.filters.saliency_score`, offline) or ``"torchvision"``
        (COCO Faster R-CNN; needs local weights).
    saliency_threshold : an image scoring at or above this is rejected as salient (None: the
        detector's default in :data:`DEFAULT_THRESHOLDS`).
    val_fraction : fraction of the kept images in ``testval`` (paper: 5k of 20k = 0.25).
    seed : seed of the split.
    workers : processes for the per-image work (read, check, resize, hash, saliency).
    tiny_side : files whose shorter side is below this are degenerate (``too_small``).
    convert : unusual formats converted to 8-bit RGB instead of rejected; any of
        ``"cmyk"``, ``"16bit"``, ``"grayscale"`` (default: none, all rejected).
    jpeg_quality : JPEG quality of the written images.
    progress : show a tqdm progress bar.

    Returns
    -------
    The manifest (also written to ``out_dir/manifest.csv``), one row per candidate.
    """
    candidates_dir, out_dir = Path(candidates_dir), Path(out_dir)
    _check_options(min_short_side=min_short_side, short_side=short_side, dedup=dedup,
                   detector=detector, val_fraction=val_fraction, workers=workers,
                   tiny_side=tiny_side, convert=convert)
    dedup_threshold = DEFAULT_THRESHOLDS[dedup] if dedup_threshold is None else dedup_threshold
    saliency_threshold = (DEFAULT_THRESHOLDS[detector] if saliency_threshold is None
                          else saliency_threshold)
    for method in {dedup, detector} & set(WEIGHT_FILES):
        local_weights(method)  # fail before any work if a model's weights are missing
    paths = list_images(candidates_dir)
    _check_unique_names(paths)

    with atomic_dir(out_dir) as build:
        staging = build / "staging"
        staging.mkdir()
        options = dict(min_short_side=min_short_side, short_side=short_side, tiny_side=tiny_side,
                       convert=tuple(convert), jpeg_quality=jpeg_quality,
                       saliency=detector == "saliency")
        rows = parallel_map(_process_candidate, [(p, staging, options) for p in paths], workers, progress=progress,
                            desc="BG-20k candidates", unit="img", batch_size=4)
        manifest = pd.DataFrame(rows)
        manifest = _remove_duplicates(manifest, staging, dedup, dedup_threshold)
        if detector == "torchvision":
            _detect_objects(manifest, staging)
        salient = (manifest.reason == "ok") & (manifest.saliency_score >= saliency_threshold)
        manifest.loc[salient, "reason"] = "salient"
        kept = manifest.reason == "ok"
        manifest["status"] = np.where(kept, "kept", "rejected")
        splits = split_train_testval(manifest.loc[kept, "name"], val_fraction=val_fraction, seed=seed)
        manifest["split"] = [splits.get(name, "") for name in manifest["name"]]
        for folder in BG20K_SPLITS:
            (build / folder).mkdir()
        for name, split in splits.items():
            os.replace(staging / f"{name}.jpg", build / split / f"{name}.jpg")
        shutil.rmtree(staging)
        manifest = manifest.reindex(columns=MANIFEST_COLUMNS)
        write_text(build / "manifest.csv", manifest.to_csv(index=False))
    return manifest


def split_train_testval(names: Iterable[str], *, val_fraction: float = 0.25,
                        seed: int = 0) -> dict[str, str]:
    """Disjoint, seeded split of ``names`` into ``train`` and ``testval`` (paper: 15k / 5k).

    The names are sorted first, so the split depends only on the set of names, the fraction and
    the seed (not on their order or on the number of workers). ``round(val_fraction × n)`` names
    go to ``testval``.
    """
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    names = sorted(names)
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = int(round(val_fraction * len(names)))
    testval = {names[i] for i in order[:n_val]}
    return {name: ("testval" if name in testval else "train") for name in names}


def _process_candidate(path: Path, staging: Path, options: dict) -> dict:
    """Per-image work (runs in a worker): read and check, resize, hash, score, stage the JPEG."""
    row = dict(name=path.stem, file=path.name, reason="ok", width=0, height=0, short_side=0,
               out_width=0, out_height=0, conversion="", detail="", hash=None,
               saliency_score=np.nan)
    rgb, reason, note = read_candidate(path, convert=options["convert"])
    row["reason"] = reason
    row["conversion" if reason == "ok" else "detail"] = note
    if rgb is None:
        if reason != "unreadable":  # a readable file of the wrong format: record its size
            with Image.open(path) as im:
                row.update(width=im.width, height=im.height, short_side=min(im.size))
        return row
    h, w = rgb.shape[:2]
    row.update(width=w, height=h, short_side=min(h, w))
    if min(h, w) < options["tiny_side"]:
        row.update(reason="too_small", detail=f"{w}x{h} below tiny_side={options['tiny_side']}")
        return row
    if min(h, w) < options["min_short_side"]:
        row.update(reason="low_resolution",
                   detail=f"shorter side {min(h, w)} < min_short_side={options['min_short_side']}")
        return row
    out = resize_short_side(rgb, options["short_side"])
    row.update(out_width=out.shape[1], out_height=out.shape[0], hash=phash(out))
    if options["saliency"]:
        row["saliency_score"] = saliency_score(out)
    write_image(staging / f"{path.stem}.jpg", out, jpeg_quality=options["jpeg_quality"])
    return row


def _remove_duplicates(manifest: pd.DataFrame, staging: Path, method: str,
                       threshold: float) -> pd.DataFrame:
    """Step 2 of Sect. 4.1 (duplicates) on the candidates that passed the resolution filter."""
    manifest["duplicate_of"] = ""
    manifest["hash_distance"] = np.nan
    manifest["nearest_distance"] = np.nan
    passed = np.flatnonzero(manifest["reason"].to_numpy() == "ok")
    if len(passed) == 0:
        return manifest.drop(columns="hash")
    names = manifest["name"].to_numpy()[passed]
    if method == "phash":
        duplicate_of, distance, nearest = find_duplicates(manifest["hash"].to_numpy()[passed],
                                                          int(threshold))
    else:
        embeddings = cnn_embeddings([staging / f"{n}.jpg" for n in names])
        duplicate_of, distance, nearest = find_duplicates_cosine(embeddings, float(threshold))
    is_dup = duplicate_of >= 0
    rows = manifest.index[passed]
    manifest.loc[rows, "nearest_distance"] = nearest
    manifest.loc[rows[is_dup], "reason"] = "duplicate"
    manifest.loc[rows[is_dup], "duplicate_of"] = names[duplicate_of[is_dup]]
    manifest.loc[rows[is_dup], "hash_distance"] = distance[is_dup]
    return manifest.drop(columns="hash")


def _detect_objects(manifest: pd.DataFrame, staging: Path) -> None:
    """Detector "torchvision": the candidates still kept get :func:`gfm.bg20k.filters.object_scores`
    as their ``saliency_score``."""
    rows = manifest.index[manifest["reason"] == "ok"]
    paths = [staging / f"{name}.jpg" for name in manifest.loc[rows, "name"]]
    manifest.loc[rows, "saliency_score"] = object_scores(paths)


def _check_options(*, min_short_side, short_side, dedup, detector, val_fraction, workers,
                   tiny_side, convert) -> None:
    if dedup not in DEDUP_METHODS:
        raise ValueError(f"dedup must be one of {DEDUP_METHODS}, got {dedup!r}")
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    for name, value in (("min_short_side", min_short_side), ("short_side", short_side),
                        ("tiny_side", tiny_side), ("workers", workers)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    unknown = set(convert) - {"cmyk", "16bit", "grayscale"}
    if unknown:
        raise ValueError(f"convert may hold 'cmyk', '16bit', 'grayscale'; got {sorted(unknown)}")


def _check_unique_names(paths: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"candidates {seen[path.stem].name} and {path.name} share the name "
                             f"{path.stem!r}; the output is <name>.jpg, so names must be unique")
        seen[path.stem] = path
