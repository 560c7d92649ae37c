"""gfm.data.archive: malicious archives refused before anything is written (directly, and before a
download lands or is locked), truncated and corrupt archives named, destinations not created here
left alone, torch zip checkpoints kept whole."""

from __future__ import annotations

import io
import stat
import tarfile
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


def _zip_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def _tar_link(name: str, target: str, kind=tarfile.SYMTYPE, extra=()) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return tar_bytes([("ok.txt", b"fine"), info, *extra])


def _device() -> bytes:
    info = tarfile.TarInfo("dev/null")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return tar_bytes([info])


def _zip_bomb() -> bytes:
    return zip_bytes({"zeros.bin": bytes(2_000_000)})


MALICIOUS = {
    "zip-absolute": (zip_bytes({"/tmp/gfm-evil.txt": b"x"}), "absolute"),
    "zip-traversal": (zip_bytes({"a/../../gfm-evil.txt": b"x"}), r"'\.\.'"),
    "zip-symlink-escape": (_zip_symlink("link", "../../outside"), "outside"),
    "zip-bomb": (_zip_bomb(), "max_unpacked_bytes"),
    "tar-absolute": (tar_bytes([("/tmp/gfm-evil.txt", b"x")]), "absolute"),
    "tar-traversal": (tar_bytes([("../gfm-evil.txt", b"x")]), r"'\.\.'"),
    "tar-symlink-escape": (_tar_link("link", "../../etc"), "outside"),
    "tar-symlink-absolute": (_tar_link("link", "/etc/passwd"), "absolute"),
    "tar-write-through-symlink": (_tar_link("inner", ".", extra=[("inner/x.txt", b"x")]), "through"),
    "tar-hardlink-escape": (_tar_link("hard", "../../etc/passwd", kind=tarfile.LNKTYPE), "outside"),
    "tar-device": (_device(), "device"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_before_they_land_or_are_locked(server, tmp_path, case):
    blob, message = MALICIOUS[case]
    suffix = "zip" if case.startswith("zip") else "tar.gz"
    server.add(f"/{case}.{suffix}", blob)
    src = Source(case, case, urls=(server.url(f"/{case}.{suffix}"),), filename=f"{case}.{suffix}", archive=suffix,
                 layout=(("*", f"files/{case}"),))
    downloads = tmp_path / "deep" / "downloads"
    with pytest.raises(UnsafeArchiveError, match=message):
        download([src], downloads, lock_file=tmp_path / "lock.json", max_unpacked_bytes=1_000_000, **FAST)
    assert list(downloads.iterdir()) == []  # not landed, not unpacked, no temp folder
    assert not (tmp_path / "lock.json").exists()  # and not recorded as correct
    assert not (tmp_path / "gfm-evil.txt").exists() and not (tmp_path / "deep" / "gfm-evil.txt").exists()


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_by_extract_archive_before_writing(tmp_path, case):
    blob, message = MALICIOUS[case]
    path = write_file(tmp_path / "in" / f"{case}.{'zip' if case.startswith('zip') else 'tar.gz'}", blob)
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match=message):
        archive.extract_archive(path, out, max_unpacked_bytes=1_000_000)
    assert list((tmp_path / "deep").iterdir()) == []
    assert not (tmp_path / "gfm-evil.txt").exists() and not (tmp_path / "deep" / "gfm-evil.txt").exists()


def test_safe_archives_extract_with_inner_links_and_auto_detection(tmp_path):
    link = tarfile.TarInfo("set/alias.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "real.txt"
    hard = tarfile.TarInfo("set/copy.txt")
    hard.type, hard.linkname = tarfile.LNKTYPE, "set/real.txt"
    path = write_file(tmp_path / "ok.tar.gz", tar_bytes([("set/real.txt", b"content"), link, hard]))
    out = archive.extract_archive(path, tmp_path / "out", max_unpacked_bytes=1000)
    assert (out / "set" / "alias.txt").read_bytes() == b"content"
    assert (out / "set" / "alias.txt").is_symlink()
    assert (out / "set" / "copy.txt").read_bytes() == b"content"
    assert (out / archive.STAMP).is_file()
    path2 = write_file(tmp_path / "ok.zip", zip_bytes({"a/b.txt": b"zip content"}))
    out = archive.extract_archive(path2, tmp_path / "out", max_unpacked_bytes=1000)  # replaces its own folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [archive.STAMP, "a", "a/b.txt"]
    with pytest.raises(UnsafeArchiveError, match="not a zip or tar"):
        archive.extract_archive(write_file(tmp_path / "plain.pth", b"\x80\x02weights"), tmp_path / "x")


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
