"""Safe unpacking of the downloaded archives (zip, tar, tar.gz) of stage 1.

Refused before anything is written (:class:`UnsafeArchiveError`): absolute member paths, ``..``
components, symbolic or hard links whose target leaves the destination (or that go through another
link), device files and FIFOs, and archives whose declared unpacked size exceeds
``max_unpacked_bytes`` (the bound is enforced again while reading). A truncated or corrupt archive
is a :class:`ContentError` naming the file. A destination is replaced only when it is absent, empty,
or was unpacked here before (it holds the stamp file :data:`STAMP`).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gfm.core.io import atomic_dir, sha256_file, write_json
from gfm.data.content import sniff
from gfm.data.errors import ContentError, DataError, UnsafeArchiveError

#: Stamp file written into every unpacked folder: ``{file: sha256}`` of what it was unpacked from.
STAMP = ".gfm-unpacked.json"
#: Default bound on the unpacked size of one source (64 GiB).
MAX_UNPACKED_BYTES = 64 * 2**30
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile,
            lzma.LZMAError)


def archive_kind(path: str | os.PathLike, declared: str = "auto") -> str:
    """``zip`` | ``tar`` | ``tar.gz`` | ``none``: ``declared`` unless ``auto``, then sniffed by magic
    number (a torch zip checkpoint, holding ``data.pkl``, is ``none``: kept as it is)."""
    if declared != "auto":
        return declared
    found = sniff(path)
    if found == "zip":
        with _reading(Path(path), "zip"), zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return "none" if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names) else "zip"
    return {"gzip": "tar.gz", "bzip2": "tar", "xz": "tar", "tar": "tar"}.get(found, "none")


def verify_archive(archive: str | os.PathLike, kind: str = "auto", *,
                   max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> str:
    """Read a whole archive without writing anything, and return its kind.

    Unsafe members and bombs raise :class:`UnsafeArchiveError`; a truncated or corrupt archive (a
    zip member failing its CRC-32 or a missing central directory, a gzip stream cut short or
    failing its CRC, a tar header or member cut short) raises :class:`ContentError`.
    """
    archive = Path(archive)
    kind = archive_kind(archive, kind)
    if kind == "none":
        raise ContentError(f"{archive}: not a zip or tar archive")
    budget = _Budget(max_unpacked_bytes)
    with _reading(archive, kind):
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _check_members(archive, _zip_members(zf), max_unpacked_bytes)
                for info in zf.infolist():
                    with zf.open(info) as src:  # reading to the end checks the member's CRC-32
                        _bounded_copy(src, None, budget, archive)
        else:
            with tarfile.open(archive, "r:*") as tf:
                _check_members(archive, _tar_members(tf), max_unpacked_bytes)
                for member in tf.getmembers():
                    if member.isfile():
                        _bounded_copy(tf.extractfile(member), None, budget, archive)
                _drain(tf)
    return kind


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, *, kind: str = "auto",
                    max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Safely unpack a zip or tar archive into ``dest`` (built in a temporary sibling, then renamed).

    ``dest`` must be absent, empty, or a folder unpacked here before (it holds :data:`STAMP`); any
    other folder is refused (:class:`DataError`) rather than replaced. See the module docstring for
    what is refused in the archive itself.
    """
    archive = Path(archive)
    if archive_kind(archive, kind) == "none":
        raise UnsafeArchiveError(f"{archive}: not a zip or tar archive")
    return unpack([(archive, Path(archive.name), kind)], dest, {archive.name: sha256_file(archive)},
                  max_unpacked_bytes=max_unpacked_bytes)


def unpack(files: list[tuple[Path, Path, str]], dest: str | os.PathLike, hashes: dict[str, str], *,
           max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack archives (and place plain files) into ``dest``, unless it was already unpacked from the
    same bytes (its :data:`STAMP` equals ``hashes``).

    ``files`` are ``(path, relative name, kind)`` with kind ``zip`` | ``tar`` | ``tar.gz`` | ``auto``
    (archives are unpacked into ``dest``) or ``none`` (hard-linked, or copied, to ``dest/<relative name>``).
    """
    dest = Path(dest)
    if _stamp(dest) == hashes:
        return dest
    _check_replaceable(dest)
    with atomic_dir(dest) as tmp:
        budget = _Budget(max_unpacked_bytes)
        for path, rel, kind in files:
            kind = archive_kind(path, kind)
            if kind == "none":
                link_or_copy(path, tmp / rel)
            else:
                _extract_into(path, kind, tmp, max_unpacked_bytes, budget)
        write_json(tmp / STAMP, hashes)
    return dest


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike, *, link: bool = True) -> None:
    """Hard-link ``src`` to ``dst`` (creating its folder), or copy it when ``link`` is False or linking
    fails (another file system)."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


# --- helpers -------------------------------------------------------------------------------------

@dataclass
class _Budget:
    limit: int
    used: int = 0

    def take(self, n: int, where: Path) -> None:
        self.used += n
        if self.used > self.limit:
            raise UnsafeArchiveError(f"{where}: unpacked size exceeds max_unpacked_bytes={self.limit}")


@contextlib.contextmanager
def _reading(archive: Path, kind: str) -> Iterator[None]:
    """Turn the decoders' errors on a truncated or corrupt archive into one :class:`ContentError`."""
    try:
        yield
    except _CORRUPT as error:
        raise ContentError(f"{archive}: truncated or corrupt {kind} archive ({type(error).__name__}: "
                           f"{str(error) or 'unexpected end of data'})") from error


def _stamp(dest: Path) -> dict | None:
    """What ``dest`` was unpacked from, per its :data:`STAMP` (None when absent or unreadable)."""
    try:
        return json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _check_replaceable(dest: Path) -> None:
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_symlink() or not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a folder; unpacking replaces only folders it created")
    if any(dest.iterdir()) and not (dest / STAMP).is_file():
        raise DataError(f"{dest}: folder is not empty and was not unpacked by gfm (no {STAMP} in it); "
                        f"refusing to replace it: choose another destination, or empty or delete it yourself")


def _extract_into(archive: Path, kind: str, dest: Path, max_declared: int, budget: _Budget) -> None:
    with _reading(archive, kind):
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                members = _zip_members(zf)
                _check_members(archive, members, max_declared)
                links = {name.rstrip("/"): link for name, _, link, _ in members if link is not None}
                for info in zf.infolist():
                    target = dest / _safe_relative(archive, info.filename)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if info.is_dir():
                        target.mkdir(exist_ok=True)
                    elif info.filename.rstrip("/") in links:
                        os.symlink(links[info.filename.rstrip("/")], target)
                    else:
                        with zf.open(info) as src, open(target, "wb") as dst:
                            _bounded_copy(src, dst, budget, archive)
        else:
            with tarfile.open(archive, "r:*") as tf:
                _check_members(archive, _tar_members(tf), max_declared)
                for member in tf.getmembers():
                    target = dest / _safe_relative(archive, member.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if member.isdir():
                        target.mkdir(exist_ok=True)
                    elif member.issym():
                        os.symlink(member.linkname, target)
                    elif member.islnk():
                        os.link(dest / _safe_relative(archive, member.linkname), target)
                    else:
                        with tf.extractfile(member) as src, open(target, "wb") as dst:
                            _bounded_copy(src, dst, budget, archive)
                _drain(tf)


def _drain(tf: tarfile.TarFile) -> None:
    """Read the rest of the stream: a compressed tar checks its CRC (and its length) at the very end."""
    while tf.fileobj.read(1 << 20):
        pass


def _zip_members(zf: zipfile.ZipFile) -> list[tuple[str, str, str | None, int]]:
    """``(name, type, link target, size)`` of every member of a zip archive."""
    members = []
    for info in zf.infolist():
        kind = _zip_type(info)
        link = zf.read(info).decode("utf-8", "replace") if kind == "symlink" else None
        members.append((info.filename, kind, link, info.file_size))
    return members


def _tar_members(tf: tarfile.TarFile) -> list[tuple[str, str, str | None, int]]:
    return [(m.name, _tar_type(m), m.linkname or None, m.size) for m in tf.getmembers()]


def _zip_type(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "device"  # character/block device, FIFO or socket (a plain zip sets no file-type bits)
    return "file"


def _tar_type(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "device"


def _check_members(archive: Path, members: list[tuple[str, str, str | None, int]], max_declared: int) -> None:
    """Refuse the whole archive if any member is unsafe (see the module docstring)."""
    total = 0
    symlinks = {posixpath.normpath(_safe_relative(archive, name).as_posix())
                for name, kind, _, _ in members if kind == "symlink"}
    for name, kind, link, size in members:
        rel = _safe_relative(archive, name).as_posix()
        if kind == "device":
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a device file or FIFO")
        if _through_link(rel, symlinks):
            raise UnsafeArchiveError(f"{archive}: member {name!r} goes through a symbolic link in the archive")
        if kind in ("symlink", "hardlink"):
            if not link or link.startswith(("/", "\\")) or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} has an absolute target")
            base = posixpath.dirname(rel) if kind == "symlink" else ""
            resolved = posixpath.normpath(posixpath.join(base, link.replace("\\", "/")))
            if resolved == ".." or resolved.startswith("../") or _through_link(resolved, symlinks, inclusive=True):
                raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} points outside the archive "
                                         f"or through another link")
        total += max(int(size), 0)
        if total > max_declared:
            raise UnsafeArchiveError(f"{archive}: declared unpacked size exceeds max_unpacked_bytes={max_declared} "
                                     f"(at member {name!r})")


def _safe_relative(archive: Path, name: str) -> Path:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    if not parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty path")
    return Path(*parts)


def _through_link(rel: str, symlinks: set[str], inclusive: bool = False) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + (1 if inclusive else 0))]
    return any(p in symlinks for p in prefixes)


def _bounded_copy(src, dst, budget: _Budget, archive: Path, chunk_size: int = 1 << 20) -> None:
    """Copy ``src`` to ``dst`` (or only read it when ``dst`` is None), counting bytes against ``budget``."""
    for block in iter(lambda: src.read(chunk_size), b""):
        budget.take(len(block), archive)
        if dst is not None:
            dst.write(block)


