"""The filters of BG-20k's construction (paper, Sect. 4.1), each a function of one image or of a set.

* format: :func:`read_candidate` reads a candidate as 8-bit RGB or names why it is unusable
  (unreadable, truncated, grayscale, CMYK, 16-bit; BG-20k is 8-bit colour);
* resolution: :func:`resize_short_side` (the paper's 1080 px shorter side);
* near-duplicates: a 64-bit DCT perceptual hash (:func:`phash`, bit-identical to
  ``imagehash.phash``) compared by Hamming distance (:func:`find_duplicates`), or ImageNet
  ResNet-18 embeddings (:func:`cnn_embeddings`) compared by cosine distance
  (:func:`find_duplicates_cosine`) in place of the paper's deep matching model;
* salient objects: an image-boundary contrast map (:func:`saliency_map`, :func:`saliency_score`,
  no weights) or a COCO Faster R-CNN (:func:`object_scores`) in place of the paper's YOLO-v3;
  there is no manual double-check here.

The optional models run only with weights already in the torch hub cache (:func:`local_weights`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps

#: Local weight files the optional models need (looked up in ``<torch hub dir>/checkpoints``).
WEIGHT_FILES = {"cnn": "resnet18-f37072fd.pth",
                "torchvision": "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"}


def read_candidate(path: str | os.PathLike, *,
                   convert: Sequence[str] = ()) -> tuple[np.ndarray | None, str, str]:
    """Read a candidate as 8-bit RGB, or say why it is unusable.

    The file itself is inspected (PIL mode, PNG/TIFF bit depth) before any conversion, so a
    grayscale, CMYK or 16-bit file is recognised as such. A truncated file fails PIL's full
    decode and is ``unreadable``. A photo stored sideways with an EXIF orientation is turned upright.

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
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))  # upright, as displayed
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


def find_duplicates_cosine(embeddings: np.ndarray, threshold: float, *,
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


def cnn_embeddings(paths: Sequence[Path], *, batch_size: int = 16, size: int = 224) -> np.ndarray:
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
    foreign regions for a scene with salient objects. :func:`gfm.bg20k.build.build_bg20k` rejects images
    scoring at or above ``saliency_threshold``.
    """
    smap = saliency_map(image, side=side, border=border, colour_floor=colour_floor)
    return float((smap > contrast).mean())


def object_scores(paths: Sequence[Path], *, min_box_fraction: float = 0.01) -> np.ndarray:
    """Detector "torchvision": per image, the best COCO detection score among boxes covering at
    least ``min_box_fraction`` of the image (0 without such a box; local Faster R-CNN weights only)."""
    import torch
    import torchvision

    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    model.load_state_dict(torch.load(local_weights("torchvision"), map_location="cpu",
                                     weights_only=True))
    model.eval()
    found = []
    with torch.inference_mode():
        for path in paths:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            out = model([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0])[0]
            boxes, scores = out["boxes"].numpy(), out["scores"].numpy()
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (rgb.shape[0] * rgb.shape[1])
            big = scores[area >= min_box_fraction]
            found.append(float(big.max()) if len(big) else 0.0)
    return np.asarray(found, dtype=np.float64)


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
