"""BG-20k: building a clean, high-resolution background set from candidate images (paper, Sect. 4.1).

The paper collected 50k HD candidates and (1) removed those whose shorter side is below 1080 px
and resized the rest to a 1080 px shorter side, keeping the aspect ratio; (2) removed duplicates
with a deep matching model and images with salient objects (YOLO-v3, an object detector and a
manual double-check), leaving 20,000 clean images; (3) split them into a disjoint 15k training
and 5k validation set (official folders ``train/`` and ``testval/``).

:func:`build_bg20k` runs the same steps on a folder of candidates, with pluggable, offline
filters:

* resolution: shorter side ``>= min_short_side``, then resized to ``short_side`` (INTER_AREA);
* near-duplicates: a 64-bit DCT perceptual hash (``"phash"``, bit-identical to
  ``imagehash.phash``) compared by Hamming distance, or ImageNet ResNet-18 embeddings compared by
  cosine distance (``"cnn"``, only with weights already in the torch hub cache). The first
  candidate by name of each group is kept;
* salient objects: an image-boundary contrast map (``"saliency"``, no weights) or a COCO
  Faster R-CNN (``"torchvision"``, only with weights already in the torch hub cache); there is
  no manual double-check here;
* a seeded random train/testval split.

Unusable files (unreadable, truncated, grayscale, CMYK, 16-bit, tiny) are rejected with a
reason instead of stopping the stage (BG-20k is 8-bit colour); ``convert`` may instead convert
CMYK, 16-bit or grayscale files to 8-bit RGB. Every candidate gets one manifest row
(:data:`MANIFEST_COLUMNS`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from gfm.core.io import atomic_dir, list_images, write_image, write_text
from gfm.core.parallel import parallel_map

#: Why a candidate was rejected ("ok" for kept images), in the order the checks run.
REASONS = ("ok", "unreadable", "grayscale", "cmyk", "16bit", "too_small", "low_resolution",
           "duplicate", "salient")
#: Reasons that mean "the file itself is unusable" (scored against truth kind ``corrupt``).
BAD_FILE_REASONS = ("unreadable", "grayscale", "cmyk", "16bit")
#: Filters scored by :func:`score_filters`: predicted reasons -> truth ``kind``.
FILTERS = {
    "low_resolution": (("too_small", "low_resolution"), "lowres"),
    "duplicate": (("duplicate",), "duplicate"),
    "salient": (("salient",), "salient"),
    "bad_file": (BAD_FILE_REASONS, "corrupt"),
}
MANIFEST_COLUMNS = ("name", "status", "reason", "short_side", "width", "height", "duplicate_of",
                    "hash_distance", "saliency_score", "split", "file", "out_width", "out_height",
                    "nearest_distance", "conversion", "detail")
SPLIT_FOLDERS = ("train", "testval")
DEDUP_METHODS = ("phash", "cnn")
DETECTORS = ("saliency", "torchvision")
#: Default thresholds: Hamming bits (phash), cosine distance (cnn), salient-area fraction
#: (saliency; calibrated on the embedded world, see notebooks/02_bg20k.ipynb), detection score
#: (torchvision).
DEFAULT_THRESHOLDS = {"phash": 10, "cnn": 0.08, "saliency": 0.03, "torchvision": 0.5}
#: Local weight files the optional models need (looked up in ``<torch hub dir>/checkpoints``).
WEIGHT_FILES = {"cnn": "resnet18-f37072fd.pth",
                "torchvision": "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"}


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
    detector : ``"saliency"`` (:func:`saliency_score`, offline) or ``"torchvision"``
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
        for folder in SPLIT_FOLDERS:
            (build / folder).mkdir()
        for name, split in splits.items():
            os.replace(staging / f"{name}.jpg", build / split / f"{name}.jpg")
        shutil.rmtree(staging)
        manifest = manifest.reindex(columns=MANIFEST_COLUMNS)
        write_text(build / "manifest.csv", manifest.to_csv(index=False))
    return manifest


def read_candidate(path: str | os.PathLike, *,
                   convert: Sequence[str] = ()) -> tuple[np.ndarray | None, str, str]:
    """Read a candidate as 8-bit RGB, or say why it is unusable.

    The file itself is inspected (PIL mode, PNG/TIFF bit depth) before any conversion, so a
    grayscale, CMYK or 16-bit file is recognised as such. A truncated file fails PIL's full
    decode and is ``unreadable``.

    Returns
    -------
    ``(rgb, reason, note)``: ``rgb`` is H×W×3 uint8 (None when rejected), ``reason`` is ``"ok"``
    or one of ``unreadable | grayscale | cmyk | 16bit``, ``note`` describes a conversion applied
    or the error met.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # full decode: truncated files raise here
            mode, fmt = im.mode, im.format
            if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                kind = "grayscale"
            elif mode == "CMYK":
                kind = "cmyk"
            else:
                kind = "16bit" if _colour_bit_depth(path, fmt) > 8 else "rgb"
            if kind != "rgb" and kind not in convert:
                return None, kind, f"{fmt} {mode}"
            if kind == "16bit" or (kind == "grayscale" and mode.startswith("I")):
                rgb = _read_16bit(path)
            else:
                rgb = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return None, "unreadable", f"{type(exc).__name__}: {exc}"
    note = "" if kind == "rgb" else f"{kind} {fmt} {mode} converted to 8-bit RGB"
    return np.ascontiguousarray(rgb), "ok", note


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize ``image`` so that its shorter side is exactly ``short_side``, keeping the aspect.

    Paper, Sect. 4.1 step 1 (1080 px). Shrinking uses ``cv2.INTER_AREA``, enlarging
    ``cv2.INTER_CUBIC``; the longer side is rounded to the nearest pixel.
    """
    h, w = image.shape[:2]
    if short_side < 1:
        raise ValueError(f"short_side must be a positive number of pixels, got {short_side}")
    scale = short_side / min(h, w)
    if h <= w:
        size = (max(1, int(round(w * scale))), short_side)
    else:
        size = (short_side, max(1, int(round(h * scale))))
    if size == (w, h):
        return image.copy()
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def phash(image: np.ndarray, *, hash_size: int = 8, highfreq_factor: int = 4) -> int:
    """64-bit perceptual hash of an RGB image (the DCT pHash of ``imagehash.phash``).

    The image is converted to luma and resized to 32×32 (PIL, Lanczos), its 2-D DCT-II taken and
    the top-left 8×8 low-frequency block compared with its median; the 64 bits, row by row, form
    the integer (most significant bit first). Bit-identical to ``imagehash.phash`` with the same
    arguments. Duplicates are found by :func:`find_duplicates` on these integers.
    """
    from scipy.fft import dct

    if hash_size * hash_size > 64:
        raise ValueError(f"hash_size must be at most 8 (64-bit hash), got {hash_size}")
    size = hash_size * highfreq_factor
    gray = Image.fromarray(np.asarray(image, np.uint8)).convert("L").resize(
        (size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float64)
    coefficients = dct(dct(pixels, axis=0), axis=1)[:hash_size, :hash_size]
    bits = (coefficients > np.median(coefficients)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def find_duplicates(hashes: Sequence[int] | np.ndarray, threshold: int, *,
                    block_elements: int = 1 << 18) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Near-duplicates among 64-bit hashes (Hamming distance ``<= threshold``).

    Items are in priority order (the first of a group is kept). All n² distances are computed
    in row blocks with vectorised XOR + popcount (no Python loop over pairs), ``block_elements``
    distances at a time; small blocks stay in the CPU cache (50k hashes, 2.5e9 distances: about
    40 s on one busy core). Only the few pairs under the threshold go to the grouping: an item
    is a duplicate of the nearest earlier item that is itself kept (ties: the earlier one).
    Beyond ~10^5 images, multi-index hashing (exact matches on hash bands) would avoid n².

    Returns
    -------
    ``(duplicate_of, distance, nearest)``: index of the kept item each one duplicates (-1 for
    kept items), the distance to it (-1 for kept items) and the distance to the nearest other
    item (65 when there is none), all int arrays of length n.
    """
    hashes = np.asarray([int(h) for h in hashes], dtype=np.uint64)
    n = len(hashes)
    nearest = np.full(n, 65, dtype=np.int64)
    pairs = []
    rows = max(1, block_elements // max(n, 1))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        dist = np.bitwise_count(hashes[start:stop, None] ^ hashes[None, :])  # uint8
        dist[np.arange(stop - start), np.arange(start, stop)] = 65
        if n > 1:
            nearest[start:stop] = dist.min(axis=1)
        i, j = np.nonzero(dist <= threshold)
        later = j > i + start
        pairs.append(np.stack([i[later] + start, j[later], dist[i[later], j[later]].astype(np.int64)],
                              axis=1))
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 3), np.int64)
    duplicate_of, distance = _group_pairs(pairs, n)
    return duplicate_of, distance, nearest


def saliency_map(image: np.ndarray, *, side: int = 64, border: float = 0.1,
                 colour_floor: float = 3.0, blur_sigma: float = 1.0) -> np.ndarray:
    """Image-boundary contrast saliency map (the backgroundness cue of MB+, Zhang et al., ICCV 2015).

    The image is reduced to a ``side``-pixel shorter side, smoothed and converted to CIE Lab.
    The four border strips (``border`` × shorter side wide) model the background: each pixel's
    Mahalanobis colour distance to each strip's mean and covariance (plus ``colour_floor``² on
    the diagonal, so a flat sky is not infinitely strict) is computed, and the map is the sum of
    the four distances minus the largest, so an object touching one border is still found.
    Salient objects (paper, Sect. 4.1 "Semantic ambiguity") are regions unlike every border.

    Returns
    -------
    float32 map at the reduced size (Mahalanobis units).
    """
    rgb = np.asarray(image, np.uint8)
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if blur_sigma > 0:
        small = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab).astype(np.float64)
    hh, ww = lab.shape[:2]
    r = max(1, int(round(border * min(hh, ww))))
    strips = (lab[:r], lab[-r:], lab[:, :r], lab[:, -r:])
    pixels = lab.reshape(-1, 3)
    distances = []
    for strip in strips:
        samples = strip.reshape(-1, 3)
        cov = np.cov(samples.T) + np.eye(3) * colour_floor ** 2
        diff = pixels - samples.mean(axis=0)
        d2 = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
        distances.append(np.sqrt(np.maximum(d2, 0)).reshape(hh, ww))
    distances = np.stack(distances)
    return (distances.sum(axis=0) - distances.max(axis=0)).astype(np.float32)


def saliency_score(image: np.ndarray, *, contrast: float = 20.0, side: int = 64,
                   border: float = 0.1, colour_floor: float = 3.0) -> float:
    """Fraction of the image whose boundary contrast (:func:`saliency_map`) exceeds ``contrast``.

    0 for a background made of what its borders show (sky, ground, texture); the area of the
    foreign regions for a scene with salient objects. :func:`build_bg20k` rejects images
    scoring at or above ``saliency_threshold``.
    """
    smap = saliency_map(image, side=side, border=border, colour_floor=colour_floor)
    return float((smap > contrast).mean())


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


def score_filters(manifest: pd.DataFrame, truth_csv: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of each filter against the truth labels of the candidates.

    Filters (:data:`FILTERS`): ``low_resolution`` (reasons too_small, low_resolution) vs truth
    kind ``lowres``; ``duplicate`` vs ``duplicate``; ``salient`` vs ``salient``; ``bad_file``
    (unreadable, grayscale, cmyk, 16bit) vs ``corrupt``; and ``overall``: rejected vs any kind
    but ``clean``. A predicted duplicate counts as correct when it and the image it was matched
    to belong to the same truth duplicate group (whichever of the two the truth calls the
    original), so keeping the first by name is not penalised.

    Returns
    -------
    DataFrame indexed by filter with columns predicted, actual, true_positives, precision,
    recall (NaN when undefined).
    """
    truth = pd.read_csv(truth_csv, dtype=str) if not isinstance(truth_csv, pd.DataFrame) else truth_csv
    truth = truth.assign(name=truth["name"].map(lambda s: Path(str(s)).stem)).set_index("name")
    missing = sorted(set(manifest["name"]) - set(truth.index))
    if missing:
        raise ValueError(f"truth table has no row for candidates {missing[:5]}")
    kind = manifest["name"].map(truth["kind"]).to_numpy()
    reason = manifest["reason"].to_numpy()
    rows = {}
    for name, (reasons, truth_kind) in FILTERS.items():
        predicted, actual = np.isin(reason, reasons), kind == truth_kind
        hits = predicted & actual
        if name == "duplicate":
            hits = predicted & _same_duplicate_group(manifest, truth)
        rows[name] = _precision_recall(predicted.sum(), actual.sum(), hits.sum())
    rejected, dirty = reason != "ok", kind != "clean"
    rows["overall"] = _precision_recall(rejected.sum(), dirty.sum(), (rejected & dirty).sum())
    return pd.DataFrame.from_dict(rows, orient="index")


def summarize(manifest: pd.DataFrame) -> pd.DataFrame:
    """Number of candidates per reason, and kept images per split (one row each)."""
    reasons = manifest["reason"].value_counts().reindex(REASONS, fill_value=0)
    counts = {f"reason: {r}": int(n) for r, n in reasons.items() if n or r == "ok"}
    for split in SPLIT_FOLDERS:
        counts[f"split: {split}"] = int((manifest["split"] == split).sum())
    counts["candidates"] = len(manifest)
    return pd.Series(counts, name="images").to_frame()


def metrics_summary(manifest: pd.DataFrame, scores: pd.DataFrame | None = None, *,
                    seconds: float | None = None) -> dict:
    """JSON-ready figures of a build (for ``dvc metrics show``): counts, time, filter scores."""
    metrics = {"candidates": len(manifest), "kept": int((manifest["status"] == "kept").sum())}
    metrics.update({split: int((manifest["split"] == split).sum()) for split in SPLIT_FOLDERS})
    if seconds is not None:
        metrics["seconds"] = round(float(seconds), 2)
    if scores is not None:
        metrics["filters"] = {
            name: {key: (int(value) if key in ("predicted", "actual", "true_positives")
                         else None if pd.isna(value) else round(float(value), 4))
                   for key, value in row.items()}
            for name, row in scores.iterrows()}
    return metrics


def plot_gallery(manifest: pd.DataFrame, candidates_dir: str | os.PathLike, *, per_reason: int = 4,
                 thumb_height: int = 120):
    """Kept and rejected candidates, ``per_reason`` examples per reason (cf. paper Fig. 4).

    One row per reason present in the manifest (kept first). Unreadable files are shown as a
    grey tile. Returns a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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


def local_weights(method: str) -> Path:
    """The local weight file the optional model ``method`` ("cnn" or "torchvision") needs.

    Weights are never downloaded at run time: the file must already be in
    ``<torch hub dir>/checkpoints``. Raises FileNotFoundError naming it and the way out.
    """
    import torch

    if method not in WEIGHT_FILES:
        raise ValueError(f"no local weights for {method!r}; known: {sorted(WEIGHT_FILES)}")
    path = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHT_FILES[method]
    if not path.is_file():
        fallback = "dedup='phash'" if method == "cnn" else "detector='saliency'"
        raise FileNotFoundError(
            f"{method!r} needs the pretrained weights {path}, which are not there; this project "
            f"never downloads weights at run time: copy {WEIGHT_FILES[method]} into "
            f"{path.parent} or use {fallback} (offline)")
    return path


# ----------------------------------------------------------------------------------------------
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
        embeddings = _cnn_embeddings([staging / f"{n}.jpg" for n in names])
        duplicate_of, distance, nearest = _find_duplicates_cosine(embeddings, float(threshold))
    is_dup = duplicate_of >= 0
    rows = manifest.index[passed]
    manifest.loc[rows, "nearest_distance"] = nearest
    manifest.loc[rows[is_dup], "reason"] = "duplicate"
    manifest.loc[rows[is_dup], "duplicate_of"] = names[duplicate_of[is_dup]]
    manifest.loc[rows[is_dup], "hash_distance"] = distance[is_dup]
    return manifest.drop(columns="hash")


def _group_pairs(pairs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy grouping of (i, j, distance) pairs, i < j: j duplicates its nearest kept i."""
    duplicate_of = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, -1, dtype=pairs.dtype if len(pairs) else np.int64)
    if len(pairs) == 0:
        return duplicate_of, distance
    pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 2], pairs[:, 1]))]  # by j, distance, i
    for i, j, d in pairs:
        i, j = int(i), int(j)
        if duplicate_of[j] < 0 and duplicate_of[i] < 0:
            duplicate_of[j], distance[j] = i, d
    return duplicate_of, distance


def _find_duplicates_cosine(embeddings: np.ndarray, threshold: float, *,
                            block_elements: int = 1 << 24):
    """As :func:`find_duplicates` for L2-normalised embeddings and cosine distance."""
    n = len(embeddings)
    nearest = np.full(n, 2.0)
    pairs = []
    rows = max(1, block_elements // max(n, 1))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        dist = 1.0 - embeddings[start:stop] @ embeddings.T
        dist[np.arange(stop - start), np.arange(start, stop)] = 2.0
        nearest[start:stop] = dist.min(axis=1)
        i, j = np.nonzero(dist <= threshold)
        later = j > i + start
        pairs.append(np.stack([i[later] + start, j[later], dist[i[later], j[later]]], axis=1))
    duplicate_of, distance = _group_pairs(np.concatenate(pairs), n)
    return duplicate_of, distance, nearest


def _cnn_embeddings(paths: Sequence[Path], *, batch_size: int = 16, size: int = 224) -> np.ndarray:
    """L2-normalised global-average-pooled ImageNet ResNet-18 features (local weights only)."""
    import torch
    import torchvision

    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(local_weights("cnn"), map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    features = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = [cv2.resize(np.asarray(Image.open(p).convert("RGB")), (size, size),
                                interpolation=cv2.INTER_AREA) for p in paths[start:start + batch_size]]
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0
            features.append(model((x - mean) / std).numpy())
    emb = np.concatenate(features) if features else np.zeros((0, 512), np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _detect_objects(manifest: pd.DataFrame, staging: Path, *, min_box_fraction: float = 0.01) -> None:
    """Detector "torchvision": saliency_score = best COCO detection score among boxes covering
    at least ``min_box_fraction`` of the image (local Faster R-CNN weights only)."""
    import torch
    import torchvision

    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    model.load_state_dict(torch.load(local_weights("torchvision"), map_location="cpu",
                                     weights_only=True))
    model.eval()
    with torch.inference_mode():
        for row in manifest.index[manifest["reason"] == "ok"]:
            rgb = np.asarray(Image.open(staging / f"{manifest.at[row, 'name']}.jpg").convert("RGB"))
            out = model([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0])[0]
            boxes, scores = out["boxes"].numpy(), out["scores"].numpy()
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (rgb.shape[0] * rgb.shape[1])
            big = scores[area >= min_box_fraction]
            manifest.at[row, "saliency_score"] = float(big.max()) if len(big) else 0.0


def _colour_bit_depth(path: Path, fmt: str | None) -> int:
    """Bits per channel of a colour PNG/TIFF (PIL reports 48-bit RGB as plain "RGB")."""
    if fmt == "PNG":
        with open(path, "rb") as f:
            header = f.read(25)
        return header[24] if len(header) == 25 else 8
    if fmt == "TIFF":
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        return 16 if image is not None and image.dtype == np.uint16 else 8
    return 8


def _read_16bit(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"{path}: OpenCV could not decode the 16-bit file")
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


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


def _same_duplicate_group(manifest: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per manifest row: its predicted duplicate_of lies in the same truth duplicate group."""
    parent = truth["duplicate_of"].fillna("").map(lambda s: Path(s).stem if s else "")

    def root(name: str) -> str:
        seen = set()
        while parent.get(name, "") and name not in seen:
            seen.add(name)
            name = parent[name]
        return name

    pred = manifest["duplicate_of"].fillna("").astype(str)
    return np.array([bool(o) and o in parent.index and root(n) == root(o)
                     for n, o in zip(manifest["name"], pred)])


def _precision_recall(predicted: int, actual: int, hits: int) -> dict:
    return dict(predicted=int(predicted), actual=int(actual), true_positives=int(hits),
                precision=hits / predicted if predicted else np.nan,
                recall=hits / actual if actual else np.nan)


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
