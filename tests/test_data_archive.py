"""gfm.data.archive: malicious archives refused before anything is written (directly, and before a
download lands or is locked) — links of any kind, colliding names, bombs —, truncated, corrupt and
unreadable archives named, destinations not created here left alone, torch zip checkpoints kept whole."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from gfm.data import archive
from gfm.data.errors import ContentError, DataError, UnsafeArchiveError
from gfm.data.materialise import download
from gfm.data.registry import Source

from httpserver import LocalServer, tar_bytes, torch_zip, tree, write_file, zip_bytes

FAST = {"backoff": 0.01, "timeout": 10.0, "progress": False}


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def _zip_symlink(name: str, target: str | bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, target)
    return buf.getvalue()


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _tar_link(name: str, target: str, kind=tarfile.SYMTYPE, extra=()) -> bytes:
    return tar_bytes([("ok.txt", b"fine"), _link(name, target, kind), *extra])


def _zip_members(*names: str) -> bytes:
    """A zip of the members ``names`` in this order (duplicates kept, as a crafted archive has them)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name" warning: on purpose here
        for name in names:
            zf.writestr(name, b"x")
    return buf.getvalue()


def _device() -> bytes:
    info = tarfile.TarInfo("dev/null")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return tar_bytes([info])


def _zip_bomb() -> bytes:
    return zip_bytes({"zeros.bin": bytes(2_000_000)})


#: case -> (archive bytes, what the error says after "<archive>: "). Every link is refused, whatever
#: its target (the messages once matched only words of the archive's own name, e.g. "absolute").
_LINKS_REFUSED = "; archives holding links are refused"
MALICIOUS = {
    "zip-absolute": (zip_bytes({"/tmp/gfm-evil.txt": b"x"}), r"member '/tmp/gfm-evil\.txt' has an absolute path"),
    "zip-traversal": (zip_bytes({"a/../../gfm-evil.txt": b"x"}), r"member 'a/\.\./\.\./gfm-evil\.txt' contains '\.\.'"),
    "zip-symlink-escape": (_zip_symlink("link", "../../outside"), rf"member 'link' is a symbolic link{_LINKS_REFUSED}"),
    "zip-symlink-inside": (_zip_symlink("link", "ok.txt"), rf"member 'link' is a symbolic link{_LINKS_REFUSED}"),
    "zip-bomb": (_zip_bomb(), r"declared unpacked size exceeds max_unpacked_bytes=1000000 \(at member 'zeros\.bin'\)"),
    "zip-duplicate": (_zip_members("a.txt", "a.txt"), r"member 'a\.txt' lands on the path of member 'a\.txt'"),
    "zip-case-duplicate": (_zip_members("Data/A.jpg", "data/a.jpg"),
                           r"member 'data/a\.jpg' lands on the path of member 'Data/A\.jpg' \(paths compared "
                           r"ignoring case"),
    "zip-file-then-folder": (_zip_members("a", "a/b.txt"),
                             r"member 'a/b\.txt' lies inside member 'a', which is a file"),
    "zip-folder-then-file": (_zip_members("a/b.txt", "a"), r"member 'a' lands on the path of member 'a/b\.txt'"),
    "tar-absolute": (tar_bytes([("/tmp/gfm-evil.txt", b"x")]), r"member '/tmp/gfm-evil\.txt' has an absolute path"),
    "tar-traversal": (tar_bytes([("../gfm-evil.txt", b"x")]), r"member '\.\./gfm-evil\.txt' contains '\.\.'"),
    "tar-symlink-escape": (_tar_link("link", "../../etc"), r"member 'link' is a symbolic link to '\.\./\.\./etc'"
                                                           rf"{_LINKS_REFUSED}"),
    "tar-symlink-absolute": (_tar_link("link", "/etc/passwd"), r"member 'link' is a symbolic link to '/etc/passwd'"),
    "tar-write-through-symlink": (_tar_link("inner", ".", extra=[("inner/x.txt", b"x")]),
                                  rf"member 'inner' is a symbolic link to '\.'{_LINKS_REFUSED}"),
    # a -> . and b -> a/..: b's target normalised alone is ".", yet out/b resolves to the parent of out
    "tar-symlink-dotdot-chain": (tar_bytes([_link("a", "."), _link("b", "a/..")]),
                                 rf"member 'a' is a symbolic link to '\.'{_LINKS_REFUSED}"),
    "tar-hardlink-escape": (_tar_link("hard", "../../etc/passwd", kind=tarfile.LNKTYPE),
                            rf"member 'hard' is a hard link to '\.\./\.\./etc/passwd'{_LINKS_REFUSED}"),
    "tar-hardlink-to-later": (tar_bytes([_link("early", "late.txt", tarfile.LNKTYPE), ("late.txt", b"x")]),
                              rf"member 'early' is a hard link to 'late\.txt'{_LINKS_REFUSED}"),
    "tar-device": (_device(), r"member 'dev/null' is a device file or FIFO"),
    "tar-duplicate": (tar_bytes([("d/a.txt", b"1"), ("d/a.txt", b"2")]),
                      r"member 'd/a\.txt' lands on the path of member 'd/a\.txt'"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_before_they_land_or_are_locked(server, tmp_path, case):
    blob, message = MALICIOUS[case]
    suffix = "zip" if case.startswith("zip") else "tar.gz"
    server.add(f"/{case}.{suffix}", blob)
    src = Source(case, case, urls=(server.url(f"/{case}.{suffix}"),), filename=f"{case}.{suffix}", archive=suffix,
                 layout=(("*", f"files/{case}"),))
    downloads = tmp_path / "deep" / "downloads"
    with pytest.raises(UnsafeArchiveError, match=rf"{src.urls[0]}: {message}"):
        download([src], downloads, lock_file=tmp_path / "lock.json", max_unpacked_bytes=1_000_000, **FAST)
    assert list(downloads.iterdir()) == []  # not landed, not unpacked, no temp folder
    assert not (tmp_path / "lock.json").exists()  # and not recorded as correct
    assert not (tmp_path / "gfm-evil.txt").exists() and not (tmp_path / "deep" / "gfm-evil.txt").exists()


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_by_extract_archive_before_writing(tmp_path, case):
    blob, message = MALICIOUS[case]
    path = write_file(tmp_path / "in" / f"{case}.{'zip' if case.startswith('zip') else 'tar.gz'}", blob)
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match=rf"^{path}: {message}"):
        archive.extract_archive(path, out, max_unpacked_bytes=1_000_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]   # nothing written, no folder made for out/
    assert not (tmp_path / "gfm-evil.txt").exists()


def test_safe_archives_extract_with_auto_detection_and_inner_links_are_refused(tmp_path):
    """Links inside the archive, even harmless ones, are refused now (no dataset of the paper has any);
    the same archive without them extracts, its root entry ``./`` (``tar -C dir .``) included."""
    for link, what in ((_link("set/alias.txt", "real.txt"), "a symbolic link to 'real.txt'"),
                       (_link("set/copy.txt", "set/real.txt", tarfile.LNKTYPE), "a hard link to 'set/real.txt'")):
        path = write_file(tmp_path / "links.tar.gz", tar_bytes([("set/real.txt", b"content"), link]))
        with pytest.raises(UnsafeArchiveError, match=rf"^{path}: member '{link.name}' is {what}{_LINKS_REFUSED}"):
            archive.extract_archive(path, tmp_path / "out", max_unpacked_bytes=1000)
        assert not (tmp_path / "out").exists()
    root, folder = tarfile.TarInfo("./"), tarfile.TarInfo("./set")
    root.type = folder.type = tarfile.DIRTYPE
    path = write_file(tmp_path / "ok.tar.gz", tar_bytes([root, folder, ("./set/real.txt", b"content")]))
    out = archive.extract_archive(path, tmp_path / "out", max_unpacked_bytes=1000)
    assert (out / "set" / "real.txt").read_bytes() == b"content"
    assert (out / archive.STAMP).is_file()
    path2 = write_file(tmp_path / "ok.zip", zip_bytes({"a/b.txt": b"zip content"}))
    out = archive.extract_archive(path2, tmp_path / "out", max_unpacked_bytes=1000)  # replaces its own folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [archive.STAMP, "a", "a/b.txt"]
    plain = write_file(tmp_path / "plain.pth", b"\x80\x02weights")
    for check in (lambda: archive.extract_archive(plain, tmp_path / "x"), lambda: archive.verify_archive(plain)):
        with pytest.raises(ContentError, match=rf"^{plain}: not a zip or tar archive$"):  # the same error both ways
            check()
    assert not (tmp_path / "x").exists()


def test_zip_links_are_refused_before_any_member_is_read(tmp_path, monkeypatch):
    """A zip "symlink" whose body declares megabytes is never decompressed to learn its target."""
    path = write_file(tmp_path / "big-link.zip", _zip_symlink("link", bytes(8_000_000)))

    def no_reading(*args, **kwargs):
        raise AssertionError("a member was read")

    monkeypatch.setattr(zipfile.ZipFile, "read", no_reading)
    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    for check in (archive.verify_archive, lambda p: archive.extract_archive(p, tmp_path / "out")):
        with pytest.raises(UnsafeArchiveError, match=rf"^{path}: member 'link' is a symbolic link{_LINKS_REFUSED}"):
            check(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _zip_patched(*, flag: int = 0, method: int | None = None) -> bytes:
    """A stored zip of ``data.bin`` whose headers claim general-purpose ``flag`` bits or a compression ``method``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data.bin", b"A" * 100)
    blob = bytearray(buf.getvalue())
    local, central = blob.index(b"PK\x03\x04"), blob.index(b"PK\x01\x02")
    blob[local + 6] |= flag
    blob[central + 8] |= flag
    if method is not None:
        struct.pack_into("<H", blob, local + 8, method)
        struct.pack_into("<H", blob, central + 10, method)
    return bytes(blob)


@pytest.mark.parametrize("blob, problem", [
    (_zip_patched(flag=0x1), r"is encrypted \(a password is needed\)"),
    (_zip_patched(method=9), r"is compressed with method 9 \(Deflate64\), which Python's zipfile cannot read"),
])
def test_unreadable_zip_members_are_a_content_error_naming_archive_and_member(tmp_path, blob, problem):
    path = write_file(tmp_path / "odd.zip", blob)
    for check in (archive.verify_archive, lambda p: archive.extract_archive(p, tmp_path / "out")):
        with pytest.raises(ContentError, match=rf"^{path}: member 'data\.bin' {problem}"):
            check(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_member_the_file_system_refuses_is_named(tmp_path):
    name = "a" * 300 + ".txt"  # longer than a file name may be (255 bytes)
    path = write_file(tmp_path / "long.zip", zip_bytes({"ok.txt": b"ok", name: b"x"}))
    assert archive.verify_archive(path) == "zip"  # nothing wrong with the archive itself
    with pytest.raises(DataError, match=rf"^{path}: member '{name}' could not be written to .*File name too long"):
        archive.extract_archive(path, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_extract_archive_refuses_a_folder_it_did_not_create(tmp_path):
    path = write_file(tmp_path / "ok.zip", zip_bytes({"a.txt": b"a"}))
    mine = write_file(tmp_path / "home" / "notes.txt", b"precious").parent
    before = tree(mine)
    with pytest.raises(DataError, match=rf"{mine}: folder is not empty and was not unpacked by gfm "
                                        rf"\(no \{archive.STAMP}"):
        archive.extract_archive(path, mine)
    assert tree(mine) == before and sorted(p.name for p in tmp_path.iterdir()) == ["home", "ok.zip"]
    with pytest.raises(DataError, match="exists and is not a folder"):
        archive.extract_archive(path, mine / "notes.txt")
    (tmp_path / "empty").mkdir()
    assert (archive.extract_archive(path, tmp_path / "empty") / "a.txt").read_bytes() == b"a"


def _truncated_tar_gz() -> bytes:
    blob = tar_bytes([(f"f{i}.bin", bytes(range(256)) * 40) for i in range(5)])
    return blob[: len(blob) // 2]


def _crc_broken_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data.bin", b"A" * 1000)
    blob = bytearray(buf.getvalue())
    blob[blob.index(b"A" * 1000) + 500] = ord("B")  # one byte flipped inside the stored member
    return bytes(blob)


CORRUPT = {
    "zip-cut": ("zip", zip_bytes({"a.bin": bytes(5000), "b.bin": b"b" * 100})[:-30], "BadZipFile"),
    "zip-crc": ("zip", _crc_broken_zip(), "BadZipFile: Bad CRC-32 for file 'data.bin'"),
    "tar.gz-cut": ("tar.gz", _truncated_tar_gz(), "EOFError|ReadError"),
    "tar.gz-trailer-cut": ("tar.gz", tar_bytes([("a.txt", b"a" * 100)])[:-4], "EOFError|BadGzipFile"),
    "tar-cut": ("tar", tar_bytes([("a.bin", bytes(3000))], "w")[:1500], "ReadError"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_truncated_or_corrupt_archives_are_named(tmp_path, case):
    suffix, blob, cause = CORRUPT[case]
    path = write_file(tmp_path / f"{case}.{suffix}", blob)
    with pytest.raises(ContentError, match=rf"^{path}: truncated or corrupt {suffix} archive \(({cause})"):
        archive.verify_archive(path, max_unpacked_bytes=1_000_000)
    with pytest.raises(ContentError, match=rf"^{path}: truncated or corrupt"):
        archive.extract_archive(path, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no output, no staging


def test_verify_archive_bounds_what_it_reads(tmp_path):
    path = write_file(tmp_path / "bomb.zip", _zip_bomb())
    with pytest.raises(UnsafeArchiveError, match="max_unpacked_bytes=1000000"):
        archive.verify_archive(path, max_unpacked_bytes=1_000_000)
    assert archive.verify_archive(path, max_unpacked_bytes=3_000_000) == "zip"


def test_torch_zip_checkpoint_is_not_unpacked(tmp_path):
    ckpt = write_file(tmp_path / "gfm_r34_tt.pth", torch_zip())
    assert archive.archive_kind(ckpt, "auto") == "none"
    zipped = write_file(tmp_path / "gfm_r34_tt.zip", zip_bytes({"gfm_r34_tt.pth": b"weights"}))
    assert archive.archive_kind(zipped, "auto") == "zip"
    assert archive.archive_kind(write_file(tmp_path / "b.tgz", tar_bytes([("a", b"a")])), "auto") == "tar.gz"
    assert archive.archive_kind(write_file(tmp_path / "t.tar", tar_bytes([("a", b"a")], "w")), "auto") == "tar"
    assert archive.archive_kind(Path(write_file(tmp_path / "x.bin", b"plain")), "auto") == "none"
