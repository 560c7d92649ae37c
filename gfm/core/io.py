"""Image and file I/O shared by every stage: atomic writes and validated image reads.

Every output file is written to a temporary name in the destination folder and renamed into
place, so an interrupted stage never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from gfm.core.arrays import to_uint8

_UMASK = os.umask(0)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside ``path`` to build in; on success it replaces ``path`` in one
    rename (:func:`replace_dir`), on failure it is deleted and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder the usual mode
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Rename the complete folder ``new`` onto ``dest``; an existing ``dest`` is moved aside first
    (and put back if the rename fails), then deleted."""
    new, dest = Path(new), Path(dest)
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (keys kept in insertion order)."""
    return write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def write_image(path: str | os.PathLike, image: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Write an RGB (H×W×3) or single-channel (H×W) uint8 image atomically.

    The format follows the suffix of ``path``; JPEG uses ``jpeg_quality``.
    """
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"{path}: expected a uint8 array to write, got {image.dtype}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix.lower() or ".png", image, params)
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode the image")
    return write_bytes(path, buf.tobytes())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image as an RGB uint8 H×W×3 array.

    Grayscale images are replicated to three channels, an alpha channel is dropped and 16-bit
    images are scaled to 8 bits. Unreadable or empty files raise :class:`ImageError`.
    """
    image = _imread(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return _as_uint8(image, path)


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte as a uint8 H×W array.

    Single-channel 8-bit files are returned as they are. RGB files (identical channels expected)
    use their first channel, RGBA files their alpha channel, and 16-bit files are scaled to 8 bits;
    callers that care (stage 1) use :func:`alpha_conversion` to warn about such files.
    """
    alpha = _imread(path)
    if alpha.ndim == 3:
        alpha = alpha[..., 3] if alpha.shape[2] == 4 else alpha[..., 0]
    return _as_uint8(alpha, path)


def alpha_conversion(path: str | os.PathLike) -> str | None:
    """Describe the conversion :func:`read_alpha` applies to ``path``, or None for a plain 8-bit matte."""
    alpha = _imread(path)
    notes = []
    if alpha.ndim == 3:
        notes.append("RGBA: alpha channel used" if alpha.shape[2] == 4 else "RGB: first channel used")
    if alpha.dtype == np.uint16:
        notes.append("16-bit: scaled to 8-bit")
    return "; ".join(notes) or None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _imread(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{path}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    return image


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _as_uint8(image: np.ndarray, path) -> np.ndarray:
    try:
        return to_uint8(image)
    except ValueError as error:
        raise ImageError(f"{path}: unsupported image dtype {image.dtype}") from error
