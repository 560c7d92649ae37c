"""Safe unpacking of the downloaded archives (zip, tar, tar.gz) of stage 1.

Refused before anything is read or written (:class:`UnsafeArchiveError`, naming the archive and the
member): absolute member paths, ``..`` components, symbolic and hard links (no dataset of the paper
contains any, and a link can point out of the destination, or through another link, in more ways
than a check can foresee), device files and FIFOs, two members landing on the same path (compared
ignoring case, as on a case-insensitive file system) or a member inside another that is a file,
and archives whose declared unpacked size exceeds ``max_unpacked_bytes`` (the bound is enforced
again while reading). A file that is not an archive, a truncated or corrupt archive and a zip
member Python cannot read (encrypted, or compressed with a method such as Deflate64) are a
:class:`ContentError` naming the file. A destination is replaced only when it is absent, empty, or
was unpacked here before (it holds the stamp file :data:`STAMP`).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import lzma
import os
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
#: Compression methods Python's zipfile reads.
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
#: Names of zip compression methods zipfile does not name (AES encryption is method 99).
_ZIP_METHOD_NAMES = {**zipfile.compressor_names, 9: "Deflate64", 93: "Zstandard", 95: "xz", 99: "AES encryption"}


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

    A file that is not an archive, a truncated or corrupt archive (a zip member failing its CRC-32
    or a missing central directory, a gzip stream cut short or failing its CRC, a tar header or
    member cut short) and an unreadable zip member raise :class:`ContentError`; unsafe members and
    bombs raise :class:`UnsafeArchiveError` (see the module docstring).
    """
    archive = Path(archive)
    kind = _archive_or_refuse(archive, kind)
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
    other folder is refused (:class:`DataError`) rather than replaced. A file that is not an archive
    is a :class:`ContentError`; see the module docstring for what is refused in the archive itself.
    """
    archive = Path(archive)
    _archive_or_refuse(archive, kind)
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

@dataclass(frozen=True)
class _Member:
    """What the checks need of one archive member (a zip link's target is never read)."""

    name: str
    kind: str                     # file | dir | symlink | hardlink | device
    size: int
    target: str | None = None     # a tar link's target, from its header
    unreadable: str | None = None  # why Python's zipfile cannot read it (encryption, compression method)


@dataclass
class _Budget:
    limit: int
    used: int = 0

    def take(self, n: int, where: Path) -> None:
        self.used += n
        if self.used > self.limit:
            raise UnsafeArchiveError(f"{where}: unpacked size exceeds max_unpacked_bytes={self.limit}")


def _archive_or_refuse(archive: Path, kind: str) -> str:
    found = archive_kind(archive, kind)
    if found == "none":
        raise ContentError(f"{archive}: not a zip or tar archive")
    return found


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
    """Unpack a checked archive (only folders and regular files are left after the checks)."""
    with _reading(archive, kind):
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                _check_members(archive, _zip_members(zf), max_declared)
                for info in zf.infolist():
                    with _writing(archive, info.filename, dest, info.is_dir()) as target:
                        if info.is_dir():
                            target.mkdir(parents=True, exist_ok=True)
                        else:
                            with zf.open(info) as src, open(target, "wb") as dst:
                                _bounded_copy(src, dst, budget, archive)
        else:
            with tarfile.open(archive, "r:*") as tf:
                _check_members(archive, _tar_members(tf), max_declared)
                for member in tf.getmembers():
                    with _writing(archive, member.name, dest, member.isdir()) as target:
                        if member.isdir():
                            target.mkdir(parents=True, exist_ok=True)
                        else:
                            with tf.extractfile(member) as src, open(target, "wb") as dst:
                                _bounded_copy(src, dst, budget, archive)
                _drain(tf)


@contextlib.contextmanager
def _writing(archive: Path, name: str, dest: Path, is_dir: bool) -> Iterator[Path]:
    """The path member ``name`` lands at (its folder created); a file system error names the member."""
    target = dest / _relative(archive, name, root_ok=is_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield target
    except _CORRUPT:
        raise
    except OSError as error:
        raise DataError(f"{archive}: member {name!r} could not be written to {target} "
                        f"({type(error).__name__}: {error.strerror or error})") from error


def _drain(tf: tarfile.TarFile) -> None:
    """Read the rest of the stream: a compressed tar checks its CRC (and its length) at the very end."""
    while tf.fileobj.read(1 << 20):
        pass


def _zip_members(zf: zipfile.ZipFile) -> list[_Member]:
    """Every member of a zip archive, from its central directory (no member is read)."""
    return [_Member(info.filename, _zip_type(info), info.file_size, unreadable=_zip_unreadable(info))
            for info in zf.infolist()]


def _tar_members(tf: tarfile.TarFile) -> list[_Member]:
    return [_Member(m.name, _tar_type(m), m.size, target=m.linkname or None) for m in tf.getmembers()]


def _zip_type(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "device"  # character/block device, FIFO or socket (a plain zip sets no file-type bits)
    return "file"


def _zip_unreadable(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return "is encrypted (a password is needed)"
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, "unknown")
        return (f"is compressed with method {info.compress_type} ({method}), which Python's zipfile "
                f"cannot read (it reads stored, deflate, bzip2 and lzma)")
    return None


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


def _check_members(archive: Path, members: list[_Member], max_declared: int) -> None:
    """Refuse the whole archive if any member is unsafe or unreadable (see the module docstring)."""
    total = 0
    files: dict[str, str] = {}    # case-folded path -> member name, for files
    folders: dict[str, str] = {}  # case-folded path -> member name, for folders (listed or implied)
    for member in members:
        name = member.name
        rel = _relative(archive, name, root_ok=member.kind == "dir")
        if member.kind == "device":
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a device file or FIFO")
        if member.kind in ("symlink", "hardlink"):
            what = "a symbolic link" if member.kind == "symlink" else "a hard link"
            to = f" to {member.target!r}" if member.target else ""
            raise UnsafeArchiveError(f"{archive}: member {name!r} is {what}{to}; archives holding links are "
                                     f"refused (no dataset of the paper has any): unpack it yourself if you trust it")
        if member.unreadable:
            raise ContentError(f"{archive}: member {name!r} {member.unreadable}; unpack the archive with "
                               f"another tool and place its files by hand, or repack it as a plain zip")
        if rel:
            _claim(archive, name, rel, member.kind == "dir", files, folders)
        total += max(int(member.size), 0)
        if total > max_declared:
            raise UnsafeArchiveError(f"{archive}: declared unpacked size exceeds max_unpacked_bytes={max_declared} "
                                     f"(at member {name!r})")


def _claim(archive: Path, name: str, rel: str, is_dir: bool, files: dict[str, str], folders: dict[str, str]) -> None:
    """Record the path of member ``name``; refuse it when it lands where another member does."""
    key = rel.casefold()
    parts = key.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in files:
            raise UnsafeArchiveError(f"{archive}: member {name!r} lies inside member {files[parent]!r}, "
                                     f"which is a file")
        folders.setdefault(parent, name)
    other = files.get(key) or (None if is_dir else folders.get(key))
    if other is not None:
        raise UnsafeArchiveError(f"{archive}: member {name!r} lands on the path of member {other!r} "
                                 f"(paths compared ignoring case, as on a case-insensitive file system)")
    if is_dir:
        folders.setdefault(key, name)
    else:
        files[key] = name


def _relative(archive: Path, name: str, *, root_ok: bool = False) -> str:
    """Member ``name`` as a clean relative POSIX path (``""`` for the root folder, when ``root_ok``)."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    if not parts and not root_ok:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty path")
    return "/".join(parts)


def _bounded_copy(src, dst, budget: _Budget, archive: Path, chunk_size: int = 1 << 20) -> None:
    """Copy ``src`` to ``dst`` (or only read it when ``dst`` is None), counting bytes against ``budget``."""
    for block in iter(lambda: src.read(chunk_size), b""):
        budget.take(len(block), archive)
        if dst is not None:
            dst.write(block)
