"""Small releases in the official layouts of the paper's real sources, for the stage-1 tests and the
smoke run of the whole pipeline (tests/test_smoke_pipeline.py): AM-2k (its Google Drive folder
holding ``AM-2k.zip``), BG-20k (its folder holding ``BG-20k.zip``, ``train/`` + ``testval/``),
P3M-10k (``P3M-10k.zip``), MS COCO (``train2014.zip``) and a released GFM checkpoint (the official
state-dict naming), and a mirror of them (:func:`mirror_files`, laid out as
:func:`gfm.data.registry.mirror_location` reads it).

The images come from a source of pairs: :func:`random_pairs` (tiny random images with a rectangle
matte, for tests of the layouts) or :func:`world_pairs` (the embedded world's photos, mattes and
trimaps at a reduced size: real content, a transition band, for the stages after stage 1);
backgrounds likewise from :func:`random_backgrounds` or :func:`world_backgrounds`.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from httpserver import LocalServer, jpg, png, sample, sha, zip_bytes

#: The embedded world committed in the repository (gfm.data.world builds it).
WORLD = Path(__file__).resolve().parents[1] / "data"
#: AM-2k's official split folders (github.com/JizhiziLi/GFM): split -> has trimaps.
AM2K_SPLITS = {"train": False, "validation": True}
#: P3M-10k's official layout (github.com/JizhiziLi/P3M): split folder -> (image folder, has trimaps).
P3M_SPLITS = {"train": ("blurred_image", False), "validation/P3M-500-P": ("blurred_image", True),
              "validation/P3M-500-NP": ("original_image", True)}


class Pair(NamedTuple):
    """One matting sample: JPEG bytes of the image, its alpha matte and its trimap (uint8 arrays)."""

    image: bytes
    alpha: np.ndarray
    trimap: np.ndarray


def random_pairs(rng, h=24, w=32) -> Iterator[Pair]:
    """Endless tiny samples (:func:`httpserver.sample`), each trimap 128 where the matte is not 0."""
    while True:
        image, alpha = sample(rng, h, w)
        yield Pair(image, alpha, np.where(alpha > 0, 128, 0).astype(np.uint8))


def world_pairs(split: str, *, side: int = 240, start: int = 0) -> Iterator[Pair]:
    """The embedded world's ``am2k/<split>`` photos from the ``start``-th on, cycled, with the longer
    side shrunk to ``side`` (matte by area, trimap by nearest neighbour: a trimap is labels). A split
    without trimaps (train) gets them from the matte: 0 / 255 where it is, 128 in between."""
    folder = WORLD / "am2k" / split
    names = sorted(p.stem for p in (folder / "original").iterdir() if not p.name.startswith("."))
    for name in itertools.islice(itertools.cycle(names), start, None):
        image = cv2.imread(str(folder / "original" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        alpha = cv2.imread(str(folder / "mask" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        size = _fit(image.shape[:2], side)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        trimap_file = folder / "trimap" / f"{name}.png"
        if trimap_file.is_file():
            trimap = cv2.resize(cv2.imread(str(trimap_file), cv2.IMREAD_GRAYSCALE), size,
                                interpolation=cv2.INTER_NEAREST)
        else:
            trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 128)).astype(np.uint8)
        yield Pair(jpg(cv2.resize(image, size, interpolation=cv2.INTER_AREA)[..., ::-1]), alpha, trimap)


def random_backgrounds(rng, h=30, w=40) -> Iterator[bytes]:
    """Endless JPEG bytes of random h x w images."""
    while True:
        yield jpg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def world_backgrounds(kind: str, *, side: int = 240) -> Iterator[bytes]:
    """The embedded world's backgrounds, cycled, the longer side shrunk to ``side``: ``bg20k`` its
    clean BG-20k candidates (``bg_candidates.csv`` kind ``clean``), ``coco`` its COCO stand-ins."""
    if kind == "bg20k":
        rows = (line.split(",") for line in (WORLD / "bg_candidates.csv").read_text().splitlines()[1:])
        files = [WORLD / "bg_candidates" / row[-1] for row in rows if row[1] == "clean"]
    elif kind == "coco":
        files = sorted((WORLD / "coco").glob("*.jpg"))
    else:
        raise ValueError(f"kind must be 'bg20k' or 'coco', got {kind!r}")
    for path in itertools.cycle(files):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        yield jpg(cv2.resize(image, _fit(image.shape[:2], side), interpolation=cv2.INTER_AREA)[..., ::-1])


# --- the releases ---------------------------------------------------------------------------------

def am2k_members(pairs: Iterator[Pair], names=None, *, root="AM-2k/") -> dict[str, bytes]:
    """Members of a small AM-2k zip in the official layout under ``root``
    (``{train,validation}/{original,mask}``, ``validation/trimap``): ``names`` maps each split of
    :data:`AM2K_SPLITS` to its sample names (default: 3 training, 2 validation images)."""
    names = names or {"train": ["m_01", "m_02", "m_03"], "validation": ["m_04", "m_05"]}
    members = {f"{root}readme.txt": b"AM-2k"}
    for split, stems in names.items():
        for stem, pair in zip(stems, pairs):
            members[f"{root}{split}/original/{stem}.jpg"] = pair.image
            members[f"{root}{split}/mask/{stem}.png"] = png(pair.alpha)
            if AM2K_SPLITS[split]:
                members[f"{root}{split}/trimap/{stem}.png"] = png(pair.trimap)
    return members


def p3m10k_members(pairs: Iterator[Pair], names=None, *, root="P3M-10k/") -> dict[str, bytes]:
    """Members of a small P3M-10k zip in the official layout under ``root``: ``names`` maps each split
    folder of :data:`P3M_SPLITS` to its sample names (default: 3 training, 2 + 2 validation images)."""
    names = names or {"train": ["p_0a", "p_0b", "p_0c"], "validation/P3M-500-P": ["p_1a", "p_1b"],
                      "validation/P3M-500-NP": ["n_2a", "n_2b"]}
    members = {f"{root}readme.txt": b"P3M-10k"}
    for split, stems in names.items():
        images, trimaps = P3M_SPLITS[split]
        for stem, pair in zip(stems, pairs):
            members[f"{root}{split}/{images}/{stem}.jpg"] = pair.image
            members[f"{root}{split}/mask/{stem}.png"] = png(pair.alpha)
            if trimaps:
                members[f"{root}{split}/trimap/{stem}.png"] = png(pair.trimap)
    return members


def bg20k_members(backgrounds: Iterator[bytes], names=None, *, root="BG-20k/") -> list[tuple[str, bytes]]:
    """``(name, bytes)`` members of a small BG-20k release in the official layout (``train/``,
    ``testval/``): ``names`` maps each split to its image names (default: 3 training, 1 testval)."""
    names = names or {"train": ["h_0", "h_1", "h_2"], "testval": ["h_t"]}
    return [(f"{root}{split}/{stem}.jpg", blob)
            for split, stems in names.items() for stem, blob in zip(stems, backgrounds)]


def coco_members(backgrounds: Iterator[bytes], n: int = 2) -> dict[str, bytes]:
    """Members of a small MS COCO ``train2014.zip``: ``n`` images named as the release names them."""
    return {f"train2014/COCO_train2014_{i:012d}.jpg": blob for i, blob in zip(range(1, n + 1), backgrounds)}


def official_checkpoint(backbone: str = "r34", rosta: str = "TT", *, seed: int = 0) -> bytes:
    """A released GFM checkpoint as the official code saves it: the state dict of
    ``nn.DataParallel(GFM)`` (``module.`` keys), each tensor of its official name, shape and dtype
    (:func:`gfm.model.checkpoint.load_official` reads it). The values are random and the floating
    tensors are views of one shared storage, so the file holds the largest tensor's bytes (9 MB for
    r34) instead of the whole model's (306 MB)."""
    import torch

    from gfm.model.checkpoint import ModelSpec

    with torch.device("meta"):
        own = ModelSpec(backbone, rosta).build().state_dict()
    shared = torch.randn(max(t.numel() for t in own.values()), generator=torch.Generator().manual_seed(seed)) * 0.01
    state = {f"module.{key}": shared[:t.numel()].view(t.shape) if t.dtype.is_floating_point
             else torch.zeros(t.shape, dtype=t.dtype) for key, t in own.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def mirror_files(*, side: int = 240, train: int = 6, validation: int = 4, backgrounds: int = 8,
                 checkpoint: str = "gfm_r34_tt") -> dict[str, bytes]:
    """A mirror of the five real sources, from the embedded world's images (``side`` px): ``{lock key
    <source>/<file>: bytes}`` plus the mirror's lock file (``data.lock.json``, every file's sha256),
    as ``GFM_MIRROR`` reads it. AM-2k and BG-20k are their Google Drive folders, each holding one zip;
    P3M-10k has ``train`` training images and ``validation // 2`` + ``validation - validation // 2``
    in P3M-500-P / P3M-500-NP; ``checkpoint`` names the released checkpoint (its backbone and RoSTa)."""
    from gfm.data.registry import MIRROR_LOCK, REGISTRY

    half = validation // 2
    am2k = am2k_members(world_pairs("train", side=side), {"train": [f"m_{i:04d}" for i in range(train)]})
    am2k |= am2k_members(world_pairs("validation", side=side),
                         {"validation": [f"v_{i:04d}" for i in range(validation)]})
    p3m = p3m10k_members(world_pairs("train", side=side, start=train),
                         {"train": [f"p_{i:04d}" for i in range(train)]})
    p3m |= p3m10k_members(world_pairs("validation", side=side, start=validation),
                          {"validation/P3M-500-P": [f"p_{i:04d}" for i in range(half)],
                           "validation/P3M-500-NP": [f"np_{i:04d}" for i in range(validation - half)]})
    bg = world_backgrounds("bg20k", side=side)
    source = REGISTRY[checkpoint]
    files = {"am2k/AM-2k.zip": zip_bytes(am2k),
             "bg20k/BG-20k.zip": zip_bytes(dict(bg20k_members(bg, {"train": [f"h_{i:05d}" for i in range(backgrounds)],
                                                                   "testval": [f"t_{i:05d}" for i in range(3)]}))),
             "coco/train2014.zip": zip_bytes(coco_members(world_backgrounds("coco", side=side), backgrounds)),
             "p3m10k/P3M-10k.zip": zip_bytes(p3m),
             f"{checkpoint}/{source.filename}": official_checkpoint(source.backbone, source.rosta)}
    lock = {"version": 1, "files": {key: {"sha256": sha(blob), "size": len(blob), "url": f"mirror:{key}"}
                                    for key, blob in files.items()}}
    return {**files, MIRROR_LOCK: json.dumps(lock, indent=1).encode()}


def serve_mirror(server: LocalServer, files: dict[str, bytes], prefix: str = "/mirror") -> str:
    """Serve ``files`` (:func:`mirror_files`) under ``prefix`` of ``server``; return the mirror's base URL."""
    for key, blob in files.items():
        server.add(f"{prefix}/{key}", blob)
    return server.url(prefix)


def _fit(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) of an image of ``shape`` (h, w) whose longer side becomes ``side``."""
    h, w = shape
    scale = side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))
