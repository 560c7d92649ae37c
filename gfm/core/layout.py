"""Folder layouts shared by the stages (one place that names every sub-folder).

A *matting set* follows the official AM-2k layout, extended with the exact foreground and
background the embedded world knows (real datasets have no ``fg``/``bg``)::

    <root>/train/original/<name>.jpg      <root>/validation/original/<name>.jpg
    <root>/train/mask/<name>.png          <root>/validation/mask/<name>.png
    <root>/train/fg/<name>.png   (opt.)   <root>/validation/trimap/<name>.png
    <root>/train/bg/<name>.png   (opt.)   <root>/validation/fg|bg/<name>.png  (opt.)

Stage 1 materialises ``am2k/`` (the matting set), ``bg_candidates/`` (images for the BG-20k
construction, with ``bg_candidates.csv`` holding the truth labels in the embedded world) and
``coco/`` (COCO-like backgrounds) under one datasets folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gfm.core.io import IMAGE_SUFFIXES, list_images

SPLITS = ("train", "validation")
MATTING_SET = "am2k"
BG_CANDIDATES = "bg_candidates"
BG_CANDIDATES_TRUTH = "bg_candidates.csv"
COCO = "coco"


@dataclass(frozen=True)
class Split:
    """The folders of one split of a matting set."""

    root: Path

    @property
    def original(self) -> Path:
        return self.root / "original"

    @property
    def mask(self) -> Path:
        return self.root / "mask"

    @property
    def trimap(self) -> Path:
        return self.root / "trimap"

    @property
    def fg(self) -> Path:
        return self.root / "fg"

    @property
    def bg(self) -> Path:
        return self.root / "bg"

    def names(self) -> list[str]:
        """Sample names (file stems) of the split, from its ``original`` folder."""
        return [p.stem for p in list_images(self.original)]

    def image_path(self, name: str) -> Path:
        return _find(self.original, name)

    def mask_path(self, name: str) -> Path:
        return _find(self.mask, name)

    def trimap_path(self, name: str) -> Path:
        return _find(self.trimap, name)


def matting_split(datasets: str | Path, split: str) -> Split:
    """The ``split`` ("train" or "validation") of the matting set under ``datasets``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Split(Path(datasets) / MATTING_SET / split)


def _find(folder: Path, name: str) -> Path:
    for suffix in IMAGE_SUFFIXES:  # the suffixes list_images and validation accept
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"{folder}: no image named {name!r} ({', '.join(IMAGE_SUFFIXES)})")
