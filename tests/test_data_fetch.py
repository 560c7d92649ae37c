"""gfm.data.fetch and gfm.data.content against a real local HTTP server (and gdown monkeypatched):
resume (only of the same object, If-Range), retry, 4xx, Content-Length, deadlines, checksums, and the
content checks that keep HTML pages and truncated archives from ever landing — all offline."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gfm.data import content, fetch
from gfm.data.errors import ChecksumError, ContentError, DownloadError

from httpserver import QUOTA_PAGE, VIRUS_PAGE, LocalServer, png, sha, tar_bytes, torch_zip, zip_bytes

FAST = {"backoff": 0.01, "timeout": 10.0, "progress": False}


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- HTTP downloads ------------------------------------------------------------------------------

def test_fetch_url_downloads_verifies_and_lands_atomically(server, tmp_path):
    body = np.random.default_rng(0).bytes(300_000)
    server.add("/a.bin", body)
    dest = fetch.fetch_url(server.url("/a.bin"), tmp_path / "a.bin", sha256=sha(body), chunk_size=4096, **FAST)
    assert dest.read_bytes() == body
    assert _names(tmp_path) == ["a.bin"]  # no part, no sidecar


def test_resume_after_a_dropped_connection_uses_range_and_if_range(server, tmp_path):
    body = np.random.default_rng(1).bytes(200_000)
    route = server.add("/big.bin", body, drop_after=70_000)
    dest = fetch.fetch_url(server.url("/big.bin"), tmp_path / "big.bin", sha256=sha(body), retries=2,
                           chunk_size=4096, **FAST)
    assert dest.read_bytes() == body
    assert route.hits[0] is None and len(route.hits) == 2
    resumed_at = int(route.hits[1].removeprefix("bytes=").removesuffix("-"))
    assert 70_000 - 4096 <= resumed_at <= 70_000, route.hits  # at most the chunk being read is lost
    assert route.if_ranges == [None, route.validators()["ETag"]]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    body = np.random.default_rng(2).bytes(120_000)
    route = server.add("/norange.bin", body, drop_after=50_000, ignore_range=True)
    dest = fetch.fetch_url(server.url("/norange.bin"), tmp_path / "n.bin", sha256=sha(body), retries=2,
                           chunk_size=4096, **FAST)
    assert dest.read_bytes() == body  # not the kept bytes + the whole body appended
    assert len(route.hits) == 2 and route.hits[0] is None
    assert 50_000 - 4096 <= int(route.hits[1].removeprefix("bytes=").removesuffix("-")) <= 50_000, route.hits


def test_a_stale_part_resumes_only_when_the_server_confirms_the_same_object(server, tmp_path):
    old = np.random.default_rng(3).bytes(50_000)
    route = server.add("/obj.bin", old, drop_after=20_000)
    url, dest = server.url("/obj.bin"), tmp_path / "obj.bin"
    with pytest.raises(DownloadError, match=r"kept in .*obj\.bin\.part and resumed next time"):
        fetch.fetch_url(url, dest, retries=0, **FAST)  # a killed run: the part and its sidecar stay
    assert _names(tmp_path) == ["obj.bin.part", "obj.bin.part.json"]

    fetch.fetch_url(url, dest, **FAST)  # same object: resumed from the part
    assert dest.read_bytes() == old and route.hits[-1] == "bytes=20000-"
    assert route.if_ranges[-1] == route.validators()["ETag"] and _names(tmp_path) == ["obj.bin"]

    dest.unlink()
    route.drop_after = 20_000
    with pytest.raises(DownloadError):
        fetch.fetch_url(url, dest, retries=0, **FAST)
    new = np.random.default_rng(4).bytes(50_000)
    route.body = new  # the object changed between the runs: If-Range no longer matches, 200 whole body
    fetch.fetch_url(url, dest, sha256=sha(new), **FAST)
    assert dest.read_bytes() == new and route.hits[-1] == "bytes=20000-"


def test_a_part_without_a_recorded_validator_restarts_from_zero(server, tmp_path):
    body = np.random.default_rng(5).bytes(40_000)
    route = server.add("/x.bin", body)
    (tmp_path / "x.bin.part").write_bytes(b"bytes of who knows what")  # no sidecar
    fetch.fetch_url(server.url("/x.bin"), tmp_path / "x.bin", **FAST)
    assert route.hits == [None] and (tmp_path / "x.bin").read_bytes() == body

    weak = server.add("/weak.bin", body, etag="weak", drop_after=10_000)  # a weak ETag is no If-Range validator
    fetch.fetch_url(server.url("/weak.bin"), tmp_path / "w.bin", retries=1, **FAST)
    assert weak.if_ranges[1] == weak.validators()["Last-Modified"]

    none = server.add("/none.bin", body, etag=None, last_modified=False, drop_after=10_000)
    fetch.fetch_url(server.url("/none.bin"), tmp_path / "none.bin", retries=1, **FAST)
    assert none.hits == [None, None] and (tmp_path / "none.bin").read_bytes() == body  # restarted, not spliced
    assert fetch.discard_unresumable(tmp_path / "x.bin") == []


def test_5xx_is_retried_with_a_bound(server, tmp_path):
    body = b"x" * 1000
    route = server.add("/flaky.bin", body, fail_times=3)
    fetch.fetch_url(server.url("/flaky.bin"), tmp_path / "ok.bin", retries=3, **FAST)
    assert len(route.hits) == 4
    assert (tmp_path / "ok.bin").read_bytes() == body

    route = server.add("/down.bin", body, fail_times=10, fail_status=503)
    with pytest.raises(DownloadError, match=r"/down\.bin.*3 attempt\(s\).*503"):
        fetch.fetch_url(server.url("/down.bin"), tmp_path / "down.bin", retries=2, **FAST)
    assert len(route.hits) == 3
    assert not (tmp_path / "down.bin").exists()


def test_404_fails_at_once_naming_url_and_status(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(DownloadError) as error:
        fetch.fetch_url(url, tmp_path / "m.zip", retries=5, **FAST)
    assert url in str(error.value) and "404" in str(error.value)
    route = server.add("/gone.zip", b"", status=410)
    with pytest.raises(DownloadError, match="410"):
        fetch.fetch_url(server.url("/gone.zip"), tmp_path / "g.zip", retries=5, **FAST)
    assert len(route.hits) == 1
    assert _names(tmp_path) == []


def test_checksum_mismatch_leaves_nothing_at_the_destination(server, tmp_path):
    server.add("/c.bin", b"hello world")
    with pytest.raises(ChecksumError, match="differs"):
        fetch.fetch_url(server.url("/c.bin"), tmp_path / "c.bin", sha256="0" * 64, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_a_short_body_is_an_error_not_a_success(server, tmp_path):
    body = zip_bytes({"a.txt": b"a" * 5000})
    route = server.add("/short.zip", body, cut_at=len(body) // 2)  # every answer ends early
    url = server.url("/short.zip")
    with pytest.raises(DownloadError) as error:
        fetch.fetch_url(url, tmp_path / "short.zip", expect="zip", retries=2, **FAST)
    message = str(error.value)
    assert url in message and "3 attempt(s)" in message and f"of the {len(body)} bytes" in message
    assert "nothing was written to" in message and str(tmp_path / "short.zip") in message
    assert not (tmp_path / "short.zip").exists() and len(route.hits) == 3

    server.add("/nolength.zip", body, content_length=False)  # no Content-Length, complete: fine
    assert fetch.fetch_url(server.url("/nolength.zip"), tmp_path / "ok.zip", expect="zip", **FAST).read_bytes() == body


def test_a_body_cut_short_without_content_length_is_caught_by_the_archive_check(server, tmp_path):
    body = zip_bytes({f"f{i}.bin": np.random.default_rng(i).bytes(3000) for i in range(4)})
    server.add("/cut.zip", body, content_length=False, cut_at=len(body) - 40)
    url = server.url("/cut.zip")
    with pytest.raises(ContentError) as error:
        fetch.fetch_url(url, tmp_path / "cut.zip", expect="zip", **FAST)
    message = str(error.value)
    assert message.startswith(url) and "truncated or corrupt zip archive" in message
    assert f"nothing was written to {tmp_path / 'cut.zip'}" in message
    assert _names(tmp_path) == []


def test_a_body_broken_off_without_a_length_is_retried_and_never_lands(server, tmp_path):
    """Chunked: no Content-Length, so a transfer that breaks off is the only sign of a cut body; a
    file that is neither an archive nor pinned by a sha256 would otherwise land truncated."""
    body = np.random.default_rng(7).bytes(40_000)
    route = server.add("/notes.bin", body, chunked=True, cut_at=25_000)  # every answer breaks off
    url, dest = server.url("/notes.bin"), tmp_path / "notes.bin"
    with pytest.raises(DownloadError) as error:
        fetch.fetch_url(url, dest, expect="data", retries=1, **FAST)
    message = str(error.value)
    assert message.startswith(f"{url}: failed after 2 attempt(s)") and "its length is unknown" in message
    assert not dest.exists() and len(route.hits) == 2

    route = server.add("/once.bin", body, chunked=True, drop_after=25_000)  # breaks off once, then resumed
    fetch.fetch_url(server.url("/once.bin"), tmp_path / "once.bin", expect="data", retries=1, **FAST)
    assert (tmp_path / "once.bin").read_bytes() == body and route.hits[0] is None
    assert route.hits[1].startswith("bytes=") and route.if_ranges[1] == route.validators()["ETag"]


def test_check_magic_reads_only_the_head_of_an_html_page(tmp_path):
    page = tmp_path / "page.zip"
    page.write_bytes(b"<!DOCTYPE html><html><title>Oops</title>" + b" " * 30_000_000 + b"</html>")
    tracemalloc.start()
    try:
        with pytest.raises(ContentError, match=r"an HTML page where a zip archive was expected.*'Oops'"):
            content.check_magic(page, "zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # the first 64 KiB, not the 30 MB


@pytest.mark.parametrize("page, advice", [
    (QUOTA_PAGE, r"download quota for this file is exceeded.*24 hours.*'Make a copy'"),
    (VIRUS_PAGE, r"virus-scan page for a large file.*gdrive:<file id>"),
    (b"<html><head><title>Oops</title></head><body>Not here</body></html>", r"web page instead of the file.*'Oops'"),
])
def test_an_html_page_where_an_archive_is_expected_is_refused_with_advice(server, tmp_path, page, advice):
    server.add("/data.zip", page, content_type="text/html; charset=utf-8")
    url = server.url("/data.zip")
    with pytest.raises(ContentError, match=rf"(?s)^{url}: .*an HTML page where a zip archive was expected: .*{advice}"):
        fetch.fetch_url(url, tmp_path / "data.zip", expect="zip", **FAST)
    assert _names(tmp_path) == []
    with pytest.raises(ContentError, match="HTML page"):  # with a known sha256, the page is named for what it is
        fetch.fetch_url(url, tmp_path / "data.zip", sha256="0" * 64, expect="zip", **FAST)
    assert _names(tmp_path) == []


def test_the_wrong_file_type_is_refused(server, tmp_path):
    server.add("/model.pth", png(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ContentError, match=r"/model\.pth: an image where a torch checkpoint was expected"):
        fetch.fetch_url(server.url("/model.pth"), tmp_path / "model.pth", expect="torch", **FAST)
    server.add("/empty.tar.gz", b"")
    with pytest.raises(ContentError, match="empty file where a gzip-compressed tar archive was expected"):
        fetch.fetch_url(server.url("/empty.tar.gz"), tmp_path / "e.tar.gz", expect="gzip", **FAST)
    assert _names(tmp_path) == []


def test_a_dripping_server_is_cut_off_at_the_deadline(server, tmp_path):
    route = server.add("/slow.bin", b"z" * 2000, drip=0.02)  # 40 s for the whole body
    url = server.url("/slow.bin")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"not complete after the deadline of 0\.5 s \(\d+ of 2000 bytes"):
        fetch.fetch_url(url, tmp_path / "slow.bin", deadline=0.5, chunk_size=64, **FAST)
    assert time.monotonic() - start < 3
    assert not (tmp_path / "slow.bin").exists() and len(route.hits) == 1
    assert _names(tmp_path) == ["slow.bin.part", "slow.bin.part.json"]  # resumable by the next run

    server.add("/busy.bin", b"x", fail_times=100, fail_status=503)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="deadline of 1 s"):  # no backoff sleep past the deadline
        fetch.fetch_url(server.url("/busy.bin"), tmp_path / "busy.bin", retries=10, backoff=0.4, timeout=10.0,
                        deadline=1.0, progress=False)
    assert time.monotonic() - start < 2


# --- content checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("filename, archive, checkpoint, kind", [
    ("AM-2k.zip", "auto", False, "zip"), ("x.bin", "zip", False, "zip"), ("BG-20k.tar.gz", "auto", False, "gzip"),
    ("a.tgz", "none", False, "gzip"), ("a.tar", "auto", False, "tar"), ("a.tar", "tar.gz", False, "gzip"),
    ("gfm_r34_tt.pth", "auto", True, "torch"), ("weights", "auto", True, "torch"), ("h.JPG", "auto", False, "image"),
    ("readme.txt", "auto", False, "data"),
])
def test_expected_content_follows_the_declared_archive_then_the_suffix(filename, archive, checkpoint, kind):
    assert content.expected(filename, archive, checkpoint=checkpoint) == kind


def test_sniff_reads_magic_numbers(tmp_path):
    blobs = {"zip": zip_bytes({"a": b"a"}), "gzip": tar_bytes([("a", b"a")]), "tar": tar_bytes([("a", b"a")], "w"),
             "torch": b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19rest", "image": png(np.zeros((2, 2))),
             "html": b"\xef\xbb\xbf\n  <!doctype HTML><p>hi", "empty": b"", "unknown": b"plain text"}
    for kind, blob in blobs.items():
        path = tmp_path / kind
        path.write_bytes(blob)
        assert content.sniff(path) == kind
    assert content.check_magic(tmp_path / "zip", "torch") == "zip"  # a zip-format torch checkpoint
    with pytest.raises(ValueError, match="expect must be one of"):
        content.check_magic(tmp_path / "zip", "archive")


# --- Google Drive (gdown monkeypatched; no network) ----------------------------------------------

@pytest.mark.parametrize("refusal, advice", [
    ("Too many users have viewed or downloaded this file recently. Please try accessing the file again later.",
     r"quota.*24 hours"),
    ("Cannot retrieve the public link of the file. You may need to change the permission to 'Anyone with the link'",
     r"not shared publicly, or the id is wrong"),
])
def test_gdrive_refusals_say_what_to_do(monkeypatch, tmp_path, refusal, advice):
    import gdown

    def refuse(**kw):
        raise gdown.exceptions.FileURLRetrievalError(f"Failed to retrieve file url:\n\n\t{refusal}\n\n"
                                                     f"You may still be able to access the file from the browser")

    monkeypatch.setattr(gdown, "download", refuse)
    dest = tmp_path / "P3M-10k.zip"
    with pytest.raises(DownloadError, match=rf"(?s)^gdrive:abc: Google Drive refused the download \(Failed to retrieve"
                                            rf".*\): .*{advice}.*belongs at .*P3M-10k\.zip"):
        fetch.fetch_gdrive("abc", dest, expect="zip", progress=False)
    assert _names(tmp_path) == []


def test_gdrive_html_file_and_deadline(monkeypatch, tmp_path):
    import gdown

    def html(output=None, **kw):
        Path(output).write_bytes(QUOTA_PAGE)
        return output

    monkeypatch.setattr(gdown, "download", html)
    with pytest.raises(ContentError, match=r"(?s)^gdrive:abc: .*an HTML page where a torch checkpoint.*quota"):
        fetch.fetch_gdrive("abc", tmp_path / "m.pth", expect="torch", progress=False)
    assert _names(tmp_path) == []

    def stall(cancel=None, timeout=None, retries=None, **kw):
        assert timeout == 10.0 and retries == 5
        if cancel.wait(5):  # gdown stops reading when the event is set
            raise gdown.exceptions.DownloadCancelled("Download cancelled")

    monkeypatch.setattr(gdown, "download", stall)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"gdrive:abc: not complete after the deadline of 0\.3 s"):
        fetch.fetch_gdrive("abc", tmp_path / "m.pth", deadline=0.3, timeout=10.0, progress=False)
    assert time.monotonic() - start < 2 and not (tmp_path / "m.pth").exists()

    monkeypatch.setattr(gdown, "download", lambda **kw: None)
    with pytest.raises(DownloadError, match="Google Drive refused"):
        fetch.fetch_gdrive("someid", tmp_path / "x.pth", progress=False)
    assert not (tmp_path / "x.pth").exists()


def test_a_drive_folder_has_one_deadline_for_all_its_files(monkeypatch, tmp_path):
    import gdown
    from gdown.download import GoogleDriveFileToDownload

    names = [f"f{i}.bin" for i in range(10)]

    def listing(id=None, output=None, skip_download=False, **kw):
        return [GoogleDriveFileToDownload(id=name, path=name, local_path=str(Path(output, name))) for name in names]

    def slow(id=None, output=None, cancel=None, **kw):  # 0.15 s per file, well within a per-file deadline
        if cancel.wait(0.15):
            raise gdown.exceptions.DownloadCancelled("Download cancelled")
        Path(output).write_bytes(id.encode())
        return output

    monkeypatch.setattr(gdown, "download_folder", listing)
    monkeypatch.setattr(gdown, "download", slow)
    dest = tmp_path / "folder"
    start = time.monotonic()
    with pytest.raises(DownloadError) as error:
        fetch.fetch_gdrive_folder("fid", dest, deadline=0.5, progress=False)
    assert time.monotonic() - start < 1.2  # not 10 x 0.5 s
    message = str(error.value)
    assert message.startswith("gdrive-folder:fid: not complete after the deadline of 0.5 s")
    assert "raise data.deadline in params.yaml" in message and f"nothing was written to {dest}" in message
    landed = sorted(p.name for p in (tmp_path / "folder.part").iterdir())
    assert 1 <= len(landed) < len(names) and f"{len(landed)} of its 10 files landed" in message
    assert not dest.exists()

    files = fetch.fetch_gdrive_folder("fid", dest, progress=False)  # the next run fetches only the rest
    assert [p.name for p in files] == names and not (tmp_path / "folder.part").exists()


def test_reopen_folder_merges_a_landed_folder_into_its_staging(tmp_path):
    dest, part = tmp_path / "folder", tmp_path / "folder.part"
    (dest / "sub").mkdir(parents=True)
    (dest / "a.bin").write_bytes(b"landed a")
    (dest / "sub" / "b.bin").write_bytes(b"landed b")
    part.mkdir()
    (part / "a.bin").write_bytes(b"older a")
    (part / "c.bin").write_bytes(b"interrupted c")
    assert fetch.reopen_folder(dest) == part and not dest.exists()
    assert {p.relative_to(part).as_posix(): p.read_bytes() for p in part.rglob("*") if p.is_file()} == {
        "a.bin": b"landed a", "sub/b.bin": b"landed b", "c.bin": b"interrupted c"}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "d.bin").write_bytes(b"d")
    assert fetch.reopen_folder(tmp_path / "other") == tmp_path / "other.part"  # no staging yet: a rename
    assert (tmp_path / "other.part" / "d.bin").read_bytes() == b"d" and not (tmp_path / "other").exists()


def test_gdrive_file_lands_only_after_its_checks(monkeypatch, tmp_path):
    import gdown

    calls = []

    def fake_download(id=None, output=None, quiet=False, resume=False, **kw):
        calls.append((id, resume))
        Path(output).write_bytes(torch_zip())
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    dest = fetch.fetch_gdrive("id1", tmp_path / "m.pth", sha256=sha(torch_zip()), expect="torch", progress=False)
    assert dest.read_bytes() == torch_zip() and _names(tmp_path) == ["m.pth"] and calls == [("id1", True)]
    with pytest.raises(ChecksumError, match=r"gdrive:id2: .*differs"):
        fetch.fetch_gdrive("id2", tmp_path / "n.pth", sha256="0" * 64, expect="torch", progress=False)
    assert _names(tmp_path) == ["m.pth"]
