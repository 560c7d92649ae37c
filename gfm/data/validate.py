"""Pair validation of a matting split (the official AM-2k layout, Sect. 5.1): every image has one
alpha matte of its size, both readable, the matte a single-channel 8-bit map.

Everything is checked before anything changes: a strict run that finds a problem leaves the folder
exactly as it was; otherwise the planned conversions and removals are applied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gfm.core import layout
from gfm.core.io import ImageError, alpha_conversion, list_images, read_alpha, read_image, write_image
from gfm.data.errors import DataError

#: Per-image companions of a split that must match the image in name and size when present.
COMPANIONS = ("trimap", "fg", "bg")
#: Companions that are single-channel 8-bit maps (converted like the masks when they are not).
ALPHA_LIKE = ("mask", "trimap")


def validate_pairs(split_dir: str | os.PathLike, *, strict: bool = True, convert: bool = True) -> dict:
    """Check (and repair) every image/alpha pair of one split of a matting set, in place.

    Rules: every ``original/<stem>.*`` has exactly one ``mask/<stem>.*`` of the same height and width
    and vice versa; both are readable; the mask is a single-channel 8-bit matte. Masks (and trimaps)
    stored as RGB with equal channels, as RGBA (alpha channel) or as 16-bit are converted to 8-bit
    PNG with a warning (:func:`gfm.core.io.read_alpha`); the converted file replaces the original one
    atomically (a hard link is replaced, not written through). An RGB map whose channels differ, or
    an RGBA map with a uniform alpha over a varying colour, is a problem: which channel holds the
    matte is ambiguous. Companions present (``trimap``, ``fg``, ``bg``) must match each image in name
    and size.

    Parameters
    ----------
    split_dir : ``<set>/<split>`` folder holding ``original/`` and ``mask/``.
    strict : raise :class:`DataError` on any problem (orphans, duplicate stems, unreadable or
        ambiguous files, size mismatches) before changing anything; when False such samples are
        removed from the split and reported as warnings.
    convert : convert non-8-bit-single-channel alpha maps (else only warn).

    Returns
    -------
    report : ``{"pairs", "converted", "dropped", "warnings", "sizes"}`` (``sizes``: ``[w, h]`` per pair).
    """
    split = layout.Split(Path(split_dir))
    for folder in (split.original, split.mask):
        if not folder.is_dir():
            raise DataError(f"{split.root}: missing folder {folder.name}/ (expected original/ and mask/)")
    problems: list[str] = []
    duplicates: list[Path] = []
    images = _by_stem(split.original, problems, duplicates)
    folders = {"mask": _by_stem(split.mask, problems, duplicates)}
    folders.update({c: _by_stem(getattr(split, c), problems, duplicates)
                    for c in COMPANIONS if getattr(split, c).is_dir()})
    bad: set[str] = set()
    for kind, files in folders.items():
        for stem in sorted(set(files) - set(images) - bad):
            problems.append(f"{files[stem]}: {kind} without an image in {split.original}")
            bad.add(stem)
    plans: dict[str, list[tuple[Path, str, str]]] = {}
    sizes = []
    for stem in sorted(images):
        issues, plans[stem], size = _check_sample(images[stem], stem, folders)
        if issues:
            problems.extend(issues)
            bad.add(stem)
        else:
            sizes.append(size)
    if problems and strict:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{split.root}: {len(problems)} problem(s) (strict=True; nothing was changed):"
                        f"\n  {shown}{more}")
    for stem in bad:
        for files in (images, *folders.values()):
            if stem in files:
                files[stem].unlink()
    for path in duplicates:
        path.unlink()
    warns, converted = [], 0
    for stem in sorted(set(plans) - bad):
        for path, kind, note in plans[stem]:
            if convert:
                _convert(path)
                converted += 1
                warns.append(f"{path}: {kind} converted to 8-bit single-channel PNG ({note})")
            else:
                warns.append(f"{path}: {kind} is not single-channel 8-bit ({note})")
    warns.extend(f"dropped: {p}" for p in problems)
    return {"pairs": len(sizes), "converted": converted, "dropped": len(bad) + len(duplicates),
            "warnings": warns, "sizes": sizes}


def _check_sample(image: Path, stem: str, folders: dict[str, dict[str, Path]]
                  ) -> tuple[list[str], list[tuple[Path, str, str]], list[int | None]]:
    """(problems, planned conversions ``(path, kind, note)``, ``[width, height]``) of one sample;
    reads files, changes nothing."""
    issues, plan = [], []
    try:
        height, width = read_image(image).shape[:2]
    except ImageError as error:
        issues.append(str(error))
        height = width = None
    for kind, files in folders.items():
        if stem not in files:
            issues.append(f"{image}: no {kind} named {stem}.* in {image.parent.parent / kind}")
            continue
        path = files[stem]
        try:
            data = read_alpha(path) if kind in ALPHA_LIKE else read_image(path)
            note = _alpha_note(path, kind) if kind in ALPHA_LIKE else None
        except (ImageError, DataError) as error:
            issues.append(str(error))
            continue
        if width is not None and data.shape[:2] != (height, width):
            issues.append(f"{path}: {kind} is {data.shape[1]}x{data.shape[0]}, its image "
                          f"{image.name} is {width}x{height}")
        elif note:
            plan.append((path, kind, note))
    return issues, plan, [width, height]


def _alpha_note(path: Path, kind: str) -> str | None:
    """The conversion :func:`read_alpha` applies to ``path`` (None for a plain 8-bit matte); an
    ambiguous colour matte raises :class:`DataError`."""
    note = alpha_conversion(path)
    if note and note.startswith("RGB:"):
        rgb = read_image(path)
        differ = int(np.count_nonzero((rgb != rgb[..., :1]).any(axis=2)))
        if differ:
            raise DataError(f"{path}: {kind} is RGB and its channels differ at {differ} of "
                            f"{rgb.shape[0] * rgb.shape[1]} pixels (channel ranges R {_range(rgb[..., 0])}, G {_range(rgb[..., 1])}, "
                            f"B {_range(rgb[..., 2])}); expected a gray or single-channel matte: save the "
                            f"channel that holds the matte as a gray PNG")
    if note and note.startswith("RGBA:"):
        alpha, rgb = read_alpha(path), read_image(path)
        if alpha.min() == alpha.max() and rgb.min() != rgb.max():
            raise DataError(f"{path}: {kind} is RGBA with a uniform alpha channel ({int(alpha.min())} everywhere) "
                            f"over varying colours (range {_range(rgb)}); the matte seems to be in the colour "
                            f"channels: save it as a gray PNG")
    return note


def _range(values: np.ndarray) -> str:
    return f"[{int(values.min())}, {int(values.max())}]"


def _convert(path: Path) -> None:
    """Replace ``path`` by an 8-bit single-channel PNG of its matte (a new file: links are not written through)."""
    data = read_alpha(path)
    target = path.with_suffix(".png")
    write_image(target, data)
    if target != path:
        path.unlink()


def _by_stem(folder: Path, problems: list[str], duplicates: list[Path]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            problems.append(f"{path}: same name as {files[path.stem].name} (one file per sample expected)")
            duplicates.append(path)
            continue
        files[path.stem] = path
    return files
