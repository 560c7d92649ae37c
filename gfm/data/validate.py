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
    PNG with a warning (:func:`gfm.core.io.read_alpha`): the PNG is written atomically (a hard link
    is replaced, not written through), then the original, when it has another suffix, is deleted.
    These are two steps: a run killed between them leaves the original beside its PNG, and the next
    run recognises the PNG as the conversion of its twin (the same matte) and deletes the twin. An
    RGB map whose channels differ, or an RGBA map with a uniform alpha over a varying colour, is a
    problem: which channel holds the matte is ambiguous. Companions present (``trimap``, ``fg``,
    ``bg``) must match each image in name and size.

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
    converted_twins: list[tuple[Path, Path]] = []  # (original, its PNG) left by an interrupted conversion
    images = _by_stem(split.original, problems, duplicates)
    present = [("mask", split.mask), *((c, getattr(split, c)) for c in COMPANIONS if getattr(split, c).is_dir())]
    folders = {kind: _by_stem(folder, problems, duplicates, converted_twins if kind in ALPHA_LIKE else None)
               for kind, folder in present}
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
    for original, png in converted_twins:
        original.unlink()
        warns.append(f"{original}: deleted, {png.name} is its conversion (left by an interrupted run)")
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
            note = _alpha_note(path, kind) if kind in ALPHA_LIKE else None  # first: it explains a colour matte
            data = read_alpha(path) if kind in ALPHA_LIKE else read_image(path)
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
                            f"{rgb.shape[0] * rgb.shape[1]} pixels (channel ranges R {_range(rgb[..., 0])}, "
                            f"G {_range(rgb[..., 1])}, B {_range(rgb[..., 2])}); expected a gray or single-channel "
                            f"matte: save the channel that holds the matte as a gray PNG")
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
    """Write an 8-bit single-channel PNG of the matte of ``path`` (a new file, atomically: links are not
    written through), then delete ``path`` when it has another suffix (see :func:`validate_pairs`)."""
    data = read_alpha(path)
    target = path.with_suffix(".png")
    write_image(target, data)
    if target != path:
        path.unlink()


def _by_stem(folder: Path, problems: list[str], duplicates: list[Path],
             converted_twins: list[tuple[Path, Path]] | None = None) -> dict[str, Path]:
    """The files of ``folder`` by stem; a second file of a stem is a problem (and a duplicate), unless
    ``converted_twins`` is given and one of the two is the PNG conversion of the other."""
    files: dict[str, Path] = {}
    for path in list_images(folder):
        first = files.get(path.stem)
        if first is None:
            files[path.stem] = path
            continue
        twin = _converted_twin(first, path) if converted_twins is not None else None
        if twin is not None:
            converted_twins.append(twin)
            files[path.stem] = twin[1]
            continue
        problems.append(f"{path}: same name as {first.name} (one file per sample expected)")
        duplicates.append(path)
    return files


def _converted_twin(a: Path, b: Path) -> tuple[Path, Path] | None:
    """``(original, png)`` when one of ``a``, ``b`` is the 8-bit single-channel ``.png`` that
    :func:`_convert` writes for the other (an unambiguous matte to convert, the same pixels), else None."""
    png, original = (a, b) if a.suffix == ".png" else (b, a)
    if png.suffix != ".png" or original.suffix == ".png" or png != original.with_suffix(".png"):
        return None
    try:
        if alpha_conversion(png) is not None or _alpha_note(original, "matte") is None:
            return None
        return (original, png) if np.array_equal(read_alpha(png), read_alpha(original)) else None
    except (ImageError, DataError):
        return None
