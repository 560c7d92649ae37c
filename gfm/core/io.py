"""Image and file I/O shared by every stage: atomic writes and validated image reads.

Every output file is written to a temporary name in the destination folder and renamed into
place, so an interrupted stage never leaves a half-written file behind; the staging a killed run
left beside a folder is removed the next time that folder is written (:func:`clean_stale_staging`).
Files are not fsynced: a killed process loses nothing, a crashed machine may.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from gfm.core.arrays import to_uint8



def _read_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask must set it to read it)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Environment variable overriding the default pixel cap of the image readers (:func:`max_image_pixels`).
MAX_PIXELS_ENV = "GFM_MAX_PIXELS"
#: Memory to budget per image pixel: ``gfm matte`` peaks at 36 bytes per pixel above its model with
#: the default cut-out and 116 with ``--foreground ml`` (``benchmarks/bench_matte_memory.py``).
BYTES_PER_PIXEL = 128
_EXIF_ORIENTATION = 0x0112
#: EXIF orientation (2..8) -> the flip/rotation that turns the stored pixels upright (as Pillow's exif_transpose).
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


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
    rename (:func:`replace_dir`), on failure it is deleted, and so are the parent folders made for
    it, leaving ``path`` and its surroundings as they were."""
    path = Path(path)
    made = _missing_folders(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder the usual mode
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:            # deepest first; stops at one that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
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
    """Write ``obj`` as strict JSON to ``path`` atomically (keys kept in insertion order): numpy
    scalars and arrays become numbers and lists, paths strings, NaN and infinities ``null``."""
    return write_text(path, json.dumps(_plain(obj), indent=indent, allow_nan=False) + "\n")


def clean_stale_staging(target: str | os.PathLike) -> list[Path]:
    """Delete what a killed run left beside ``target``: the staging of :func:`atomic_dir` and
    :func:`atomic_path` (``.<name>.<8 characters>.tmp[<suffix>]``) and, when ``target`` exists, a copy
    :func:`replace_dir` had moved aside (``.<name>.old-<pid>-<ns>``). Nothing else is touched; one
    writer per output is assumed (``dvc repro`` locks the repository). Returns the paths deleted."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    name = re.escape(target.name)
    staging = re.compile(rf"\.{name}\.[a-z0-9_]{{8}}\.tmp(?:{re.escape(target.suffix)})?")
    moved_aside = re.compile(rf"\.{name}\.old-\d+-\d+")
    gone = [p for p in target.parent.iterdir()
            if staging.fullmatch(p.name) or (moved_aside.fullmatch(p.name) and target.exists())]
    for path in gone:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return gone


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


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read a colour image as an RGB uint8 H×W×3 array, turned upright by its EXIF orientation.

    Grayscale images are replicated to three channels, an alpha channel is dropped and 16-bit
    images are scaled to 8 bits. The header is read first: an image declaring more pixels than
    ``max_pixels`` (default :func:`max_image_pixels`) is refused before it is decoded. A phone
    photo stored sideways with an EXIF orientation (tag 274) comes out as it is displayed
    (Pillow's ``ImageOps.exif_transpose``). Unreadable, empty or oversized files raise
    :class:`ImageError` naming the file.
    """
    image = _imread(path, max_pixels)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return _as_uint8(image, path)


def read_alpha(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an alpha matte as a uint8 H×W array (EXIF orientation and pixel cap as :func:`read_image`).

    Single-channel 8-bit files are returned as they are. RGB files use their first channel when
    the three channels agree and raise :class:`ImageError` otherwise (a matte kept in one colour
    channel would silently become another); RGBA files use their alpha channel, and 16-bit files
    are scaled to 8 bits. Callers that care (stage 1) use :func:`alpha_conversion` to warn about such files.
    """
    alpha = _imread(path, max_pixels)
    if alpha.ndim == 3 and alpha.shape[2] == 4:
        alpha = alpha[..., 3]
    elif alpha.ndim == 3:
        differ = int(np.count_nonzero((alpha != alpha[..., :1]).any(axis=2)))
        if differ:
            raise ImageError(f"{path}: an RGB matte whose channels differ at {differ} of "
                             f"{alpha.shape[0] * alpha.shape[1]} pixels; expected a gray or single-channel "
                             f"matte: save the channel that holds the matte as a gray PNG")
        alpha = alpha[..., 0]
    return _as_uint8(alpha, path)


def max_image_pixels() -> int:
    """The default pixel cap of :func:`read_image` / :func:`read_alpha`.

    ``GFM_MAX_PIXELS`` (an integer) if set, else the machine's physical memory divided by
    :data:`BYTES_PER_PIXEL` -- what ``gfm matte`` needs per pixel of its largest input, so an
    accepted image can be matted in memory -- else, where the memory size is unknown, OpenCV's
    own decoding limit of 2**30 pixels. Pillow, which reads the header, also refuses more than
    2 x ``PIL.Image.MAX_IMAGE_PIXELS`` (about 179 million) whatever the cap; raise that too to go further.
    """
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is not None:
        try:
            cap = int(value.replace("_", ""))
        except ValueError:
            cap = 0
        if cap < 1:
            raise ValueError(f"{MAX_PIXELS_ENV}={value!r}: expected a positive whole number of pixels")
        return cap
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 1 << 30
    return max(1, memory // BYTES_PER_PIXEL)


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


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _imread(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``path`` as stored (OpenCV ``IMREAD_UNCHANGED``: any depth, any channels) after
    checking its header's size against the pixel cap, then apply its EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    orientation = _check_header(path, max_image_pixels() if max_pixels is None else max_pixels)
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    return np.ascontiguousarray(_ORIENT[orientation](image)) if orientation in _ORIENT else image


def _check_header(path: Path, max_pixels: int) -> int:
    """Read ``path``'s header only (Pillow opens lazily), refuse more than ``max_pixels``; the EXIF
    orientation to apply after OpenCV's decoding (1: none).

    OpenCV's ``IMREAD_UNCHANGED`` ignores EXIF orientation, except in TIFF files, which libtiff
    turns upright while decoding. A PNG's orientation is read only from an ``eXIf`` chunk before
    the image data (Pillow would decode the image to look further). Pillow itself refuses headers
    above 2 × ``PIL.Image.MAX_IMAGE_PIXELS`` (about 179 million pixels); that is reported the same way.
    """
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be a positive number of pixels, got {max_pixels!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's size and EXIF warnings: the checks here decide
            with Image.open(path) as header:
                width, height = header.size
                orientation = _exif_orientation(header)
    except Image.DecompressionBombError as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(declared.group(1)):,} pixels" if declared else f"more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels"
        raise ImageError(f"{path}: its header declares {size}, more than Pillow's decompression-bomb limit of "
                         f"{2 * Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS); not decoded") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as error:
        raise ImageError(f"{path}: not a readable image (corrupt, truncated or unsupported format: "
                         f"{type(error).__name__})") from None
    if width * height > max_pixels:
        raise ImageError(f"{path}: {width} x {height} = {width * height:,} pixels declared in its header, more than "
                         f"the cap of {int(max_pixels):,}; not decoded (raise the cap with {MAX_PIXELS_ENV} or "
                         f"max_pixels=)")
    return orientation


def _exif_orientation(header: Image.Image) -> int:
    """The EXIF orientation (1-8) OpenCV leaves to apply; 1 when absent or unreadable (a damaged EXIF
    block does not make the pixels unreadable)."""
    if header.format == "TIFF" or "exif" not in header.info:
        return 1
    try:
        return int(header.getexif().get(_EXIF_ORIENTATION, 1))
    except (SyntaxError, ValueError, TypeError, KeyError, OSError, struct.error):
        return 1


def _plain(obj):
    """``obj`` with numpy values, paths and non-finite floats made plain JSON (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _as_uint8(image: np.ndarray, path) -> np.ndarray:
    try:
        return to_uint8(image)
    except ValueError as error:
        raise ImageError(f"{path}: unsupported image dtype {image.dtype}") from error


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
