"""Stage 1 end to end (gfm.data.materialise, gfm.data.registry, gfm.data.plots): the lock file, cached
downloads and how to refresh them, Google Drive dispatch (gdown monkeypatched), the embedded and real
routes against a local HTTP server, the staging a killed run leaves, the registry, the table and
figures — all offline."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from gfm.core import layout
from gfm.core.io import clean_stale_staging, read_alpha
from gfm.data import materialise as stage
from gfm.data import fetch, plots, registry
from gfm.data.errors import ChecksumError, ContentError, DataError, DownloadError
from gfm.data.registry import PRETRAINED, REGISTRY, Source

from httpserver import LocalServer, jpg, png, sha, split_tree, tar_bytes, torch_zip, tree, write_file, zip_bytes
from realworld import (am2k_members, bg20k_members, coco_members, mirror_files, p3m10k_members, random_backgrounds,
                       random_pairs, serve_mirror)

FAST = {"backoff": 0.01, "timeout": 10.0, "progress": False}
SAMPLES = {"trimap_kernel": 25, "seed": 0}  # params.yaml's train.trimap_kernel (the paper's 25) and seed


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def mirrored() -> dict[str, bytes]:
    """A mirror of the five real sources of the smoke profile (tests/realworld.py), at 3 training images."""
    return mirror_files(side=120, train=3, validation=2, backgrounds=3)


def _source(name, url, **kw) -> Source:
    base = {"filename": f"{name}.bin", "archive": "none", "layout": (("*", f"files/{name}"),)}
    base.update(kw)
    return Source(name, name, urls=(url,), **base)


def _lock(path: Path) -> dict:
    return json.loads(path.read_text())["files"]


def _stage(tmp_path: Path, source: str, out: Path, **kw) -> dict:
    """``run_download`` with every stage knob given, as notebook 01 passes them from params.yaml."""
    knobs = {"data_root": tmp_path / "data", "downloads": tmp_path / "downloads", "lock_file": tmp_path / "lock.json",
             "sources": ("am2k", "bg20k", "coco"), "strict": True, **FAST}
    return stage.run_download(source=source, datasets_out=out, **{**knobs, **kw})


# --- the lock file and cached downloads ----------------------------------------------------------

def test_lock_file_records_unknown_sha_then_verifies_it(server, tmp_path):
    lock = tmp_path / "data.lock.json"
    route = server.add("/w.bin", b"version 1")
    src = _source("w", server.url("/w.bin"))
    roots = stage.download([src], tmp_path / "dl", lock_file=lock, **FAST)
    entry = _lock(lock)["w/w.bin"]
    assert entry["sha256"] == sha(b"version 1") and entry["size"] == 9 and entry["url"] == server.url("/w.bin")
    assert roots["w"].read_bytes() == b"version 1"

    stage.download([src], tmp_path / "dl", lock_file=lock, **FAST)  # cached and verified: not fetched again
    assert len(route.hits) == 1
    stage.download([src], tmp_path / "fresh", lock_file=lock, **FAST)  # same bytes again: accepted
    route.body = b"version 2"  # the server now serves something else
    with pytest.raises(ChecksumError):
        stage.download([src], tmp_path / "again", lock_file=lock, **FAST)
    assert not (tmp_path / "again" / "w.bin").exists()
    assert _lock(lock)["w/w.bin"]["sha256"] == sha(b"version 1")


def test_registry_checksum_wins_over_a_missing_lock(server, tmp_path):
    server.add("/r.bin", b"payload")
    src = _source("r", server.url("/r.bin"), sha256=sha(b"other"))
    with pytest.raises(ChecksumError):
        stage.download([src], tmp_path / "dl", lock_file=tmp_path / "lock.json", **FAST)
    assert not (tmp_path / "dl" / "r.bin").exists()
    assert not (tmp_path / "lock.json").exists()


def test_every_url_failing_lists_the_errors(server, tmp_path):
    src = dataclasses.replace(_source("m", server.url("/nope1")), urls=(server.url("/nope1"), server.url("/nope2")))
    with pytest.raises(DownloadError, match=r"(?s)nope1.*404.*nope2.*404"):
        stage.download([src], tmp_path / "dl", lock_file=tmp_path / "lock.json", retries=0, **FAST)


def test_a_first_download_of_bad_bytes_is_never_locked(server, tmp_path):
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    server.add("/quota.zip", b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title>Too many users "
                             b"have viewed or downloaded this file recently.</html>", content_type="text/html")
    html_then_zip = dataclasses.replace(_source("q", server.url("/quota.zip"), filename="q.zip", archive="zip"),
                                        urls=(server.url("/quota.zip"), server.url("/good.zip")))
    with pytest.raises(DownloadError, match=r"(?s)every URL failed.*/quota\.zip: an HTML page.*quota.*/good\.zip.*404"):
        stage.download([html_then_zip], downloads, lock_file=lock, **FAST)
    body = zip_bytes({"a.txt": b"a" * 4000, "b.txt": b"b" * 4000})
    server.add("/cut.zip", body, content_length=False, cut_at=len(body) - 30)
    with pytest.raises(ContentError, match=r"/cut\.zip: truncated or corrupt zip archive"):
        stage.download([_source("c", server.url("/cut.zip"), filename="c.zip", archive="auto")], downloads,
                       lock_file=lock, **FAST)
    assert list(downloads.iterdir()) == [] and not lock.exists()

    server.add("/good.zip", body)  # the mirror is back: the page is skipped, the archive locked
    roots = stage.download([html_then_zip], downloads, lock_file=lock, **FAST)
    assert _lock(lock)["q/q.zip"]["url"] == server.url("/good.zip") and (roots["q"] / "b.txt").is_file()


def test_a_bad_cached_file_gives_one_message_and_refresh_fetches_it_again(server, tmp_path):
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    body = zip_bytes({"a.txt": b"a" * 4000})
    route = server.add("/s.zip", body)
    src = _source("s", server.url("/s.zip"), filename="s.zip", archive="zip")
    cached = write_file(downloads / "s.zip", body[:-50])  # placed by hand, cut short, not in the lock file
    with pytest.raises(ContentError) as error:
        stage.download([src], downloads, lock_file=lock, **FAST)
    message = str(error.value)
    assert message.startswith(f"cached download {cached}: truncated or corrupt zip archive")
    assert "pass refresh=True" in message and f"gfm.data.materialise.forget('s', '{downloads}', '{lock}')" in message
    assert route.hits == [] and not lock.exists() and cached.read_bytes() == body[:-50]  # nothing decided for you

    roots = stage.download([src], downloads, lock_file=lock, refresh=True, **FAST)
    assert (roots["s"] / "a.txt").read_bytes() == b"a" * 4000 and _lock(lock)["s/s.zip"]["sha256"] == sha(body)

    registry.record_lock(lock, "s", "s.zip", sha256=sha(body[:-50]), size=len(body) - 50, url="old")  # locked
    cached.write_bytes(body[:-50])  # by an older version that did not check what it locked
    with pytest.raises(ContentError, match=rf"(?s)^{cached}: truncated or corrupt zip.*pass refresh=True"):
        stage.download([src], downloads, lock_file=lock, **FAST)
    gone = stage.forget(src, downloads, lock)
    assert sorted(p.name for p in gone) == ["s.unpacked", "s.zip"] and "s/s.zip" not in _lock(lock)
    roots = stage.download([src], downloads, lock_file=lock, **FAST)
    assert _lock(lock)["s/s.zip"]["sha256"] == sha(body) and len(route.hits) == 2


# --- Google Drive dispatch (gdown monkeypatched; no network) -------------------------------------

def test_gdrive_file_dispatch_verifies_and_records(monkeypatch, tmp_path):
    import gdown

    calls = []

    def fake_download(id=None, output=None, quiet=False, resume=False, **kw):
        calls.append((id, resume))
        Path(output).write_bytes(torch_zip())
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    lock = tmp_path / "lock.json"
    roots = stage.download("gfm_r34_tt", tmp_path / "dl", lock_file=lock, **FAST)
    assert calls == [("1AdtoIdYTLsjXfVe_a50tin0cFwZMSz93", True)]
    assert roots["gfm_r34_tt"] == tmp_path / "dl" / "gfm_r34_tt.pth"
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["gfm_r34_tt.pth"]
    assert _lock(lock)["gfm_r34_tt/gfm_r34_tt.pth"]["sha256"] == sha(torch_zip())
    report = stage.materialise(roots, tmp_path / "datasets", strict=True)
    assert (tmp_path / "datasets" / PRETRAINED / "gfm_r34_tt.pth").read_bytes() == torch_zip()
    assert report["counts"][PRETRAINED] == 1


def _drive_am2k(rng) -> bytes:
    """The AM-2k.zip of the Google Drive tests: two training images and one validation image."""
    return zip_bytes(am2k_members(random_pairs(rng), {"train": ["m_a", "m_b"], "validation": ["m_c"]}))


def _fake_drive(monkeypatch, files: dict[str, bytes]) -> list:
    """gdown with one Drive folder holding ``files`` (by id = file name); returns the calls made."""
    import gdown
    from gdown.download import GoogleDriveFileToDownload

    calls = []

    def fake_folder(id=None, output=None, quiet=False, skip_download=False, **kw):
        assert skip_download
        calls.append(("list", id))
        return [GoogleDriveFileToDownload(id=name, path=name, local_path=str(Path(output, name))) for name in files]

    def fake_download(id=None, output=None, resume=False, **kw):
        calls.append(("get", id))
        Path(output).write_bytes(files[id])
        return output

    monkeypatch.setattr(gdown, "download_folder", fake_folder)
    monkeypatch.setattr(gdown, "download", fake_download)
    return calls


def test_gdrive_folder_dispatch_unpacks_every_archive(monkeypatch, tmp_path):
    calls = _fake_drive(monkeypatch, {"AM-2k.zip": _drive_am2k(np.random.default_rng(3)),
                                      "readme.txt": b"AM-2k"})
    lock = tmp_path / "lock.json"
    roots = stage.download(["am2k"], tmp_path / "dl", lock_file=lock, **FAST)
    assert calls == [("list", "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"), ("get", "AM-2k.zip"), ("get", "readme.txt")]
    assert set(_lock(lock)) == {"am2k/AM-2k.zip", "am2k/readme.txt"}
    assert (roots["am2k"] / "readme.txt").read_text() == "AM-2k"
    report = stage.materialise(roots, tmp_path / "datasets", strict=True)
    assert report["counts"] == {"am2k/train": 2, "am2k/validation": 1}
    assert layout.matting_split(tmp_path / "datasets", "validation").names() == ["m_c"]
    stage.download(["am2k"], tmp_path / "dl", lock_file=lock, **FAST)  # folder present: not listed again
    assert len(calls) == 3


def test_gdrive_folder_with_a_bad_file_lands_nothing_and_resumes_the_rest(monkeypatch, tmp_path):
    files = {"AM-2k.zip": _drive_am2k(np.random.default_rng(3)),
             "z_extra.zip": b"<html><title>Google Drive - Virus scan warning</title><form id=\"download-form\">"}
    calls = _fake_drive(monkeypatch, files)
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    with pytest.raises(ContentError, match=r"gdrive:z_extra\.zip: an HTML page where a zip archive .*virus-scan"):
        stage.download(["am2k"], downloads, lock_file=lock, **FAST)
    assert sorted(p.name for p in downloads.iterdir()) == ["am2k.part"] and not lock.exists()
    assert sorted(p.name for p in (downloads / "am2k.part").iterdir()) == ["AM-2k.zip"]  # checked, kept
    files["z_extra.zip"] = zip_bytes({"x.txt": b"x"})
    stage.download(["am2k"], downloads, lock_file=lock, **FAST)
    assert calls[-2:] == [("list", "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"), ("get", "z_extra.zip")]
    assert set(_lock(lock)) == {"am2k/AM-2k.zip", "am2k/z_extra.zip"}


def test_a_cached_drive_folder_missing_files_gets_them_again(monkeypatch, tmp_path):
    files = {"AM-2k.zip": _drive_am2k(np.random.default_rng(3)), "readme.txt": b"AM-2k"}
    calls = _fake_drive(monkeypatch, files)
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    stage.download(["am2k"], downloads, lock_file=lock, **FAST)
    (downloads / "am2k" / "readme.txt").unlink()  # deleted by hand, or lost
    with pytest.warns(UserWarning, match=rf"readme\.txt recorded in {lock} missing; downloading again"):
        roots = stage.download(["am2k"], downloads, lock_file=lock, **FAST)
    assert calls[3:] == [("list", "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"), ("get", "readme.txt")]  # only what is missing
    assert (roots["am2k"] / "readme.txt").read_text() == "AM-2k" and (downloads / "am2k" / "readme.txt").is_file()
    assert sorted(p.name for p in downloads.iterdir()) == ["am2k", "am2k.unpacked"]

    (downloads / "am2k" / "readme.txt").write_text("changed")  # a stale file, and the staging of a killed run
    write_file(downloads / "am2k.part" / "AM-2k.zip", files["AM-2k.zip"])
    with pytest.warns(UserWarning, match=rf"sha256 of readme\.txt differs from {lock}"):
        roots = stage.download(["am2k"], downloads, lock_file=lock, **FAST)  # merged into am2k.part, not an OSError
    assert calls[5:] == [("list", "1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"), ("get", "readme.txt")]
    assert (roots["am2k"] / "readme.txt").read_text() == "AM-2k"
    assert sorted(p.name for p in downloads.iterdir()) == ["am2k", "am2k.unpacked"]

    del files["readme.txt"]  # the release changed: the lock file's entry is no longer on Drive
    (downloads / "am2k" / "readme.txt").unlink()
    with pytest.warns(UserWarning, match="missing"), \
            pytest.raises(DownloadError, match=r"(?s)no longer holds readme\.txt.*refresh=True"):
        stage.download(["am2k"], downloads, lock_file=lock, **FAST)


def test_a_source_has_one_deadline_for_all_its_mirrors(server, tmp_path):
    first = server.add("/slow1.bin", b"z" * 2000, drip=0.02)
    second = server.add("/slow2.bin", b"z" * 2000, drip=0.02)
    src = dataclasses.replace(_source("s", server.url("/slow1.bin")),
                              urls=(server.url("/slow1.bin"), server.url("/slow2.bin")))
    start = time.monotonic()
    with pytest.raises(DownloadError) as error:
        stage.download([src], tmp_path / "dl", lock_file=tmp_path / "lock.json", deadline=0.5, **FAST)
    assert time.monotonic() - start < 2
    message = str(error.value)
    assert "/slow1.bin: not complete after the deadline of 0.5 s (" in message
    assert f"{server.url('/slow2.bin')}: not complete after the deadline of 0.5 s; " in message
    assert message.count("; not started") == 1
    assert len(first.hits) == 1 and second.hits == []  # the second mirror did not get a fresh deadline


def test_run_download_takes_retries_and_deadline_from_params_or_the_library(server, tmp_path, monkeypatch):
    route = server.add("/flaky.pth", torch_zip(), fail_times=5)
    monkeypatch.setitem(REGISTRY, "gfm_r34_tt", dataclasses.replace(
        REGISTRY["gfm_r34_tt"], urls=(server.url("/flaky.pth"),), filename="flaky.pth"))
    kw = {"downloads": tmp_path / "dl", "sources": "gfm_r34_tt", "lock_file": tmp_path / "lock.json"}
    with pytest.raises(DownloadError, match=r"failed after 3 attempt\(s\)"):  # data.retries: 2
        _stage(tmp_path, "real", tmp_path / "out", retries=2, deadline=None, **kw)
    route.fail_times = 5
    report = _stage(tmp_path, "real", tmp_path / "out", retries=None, deadline=None, **kw)  # unset: fetch.RETRIES
    assert fetch.RETRIES == 5 and report["counts"][PRETRAINED] == 1 and len(route.hits) == 3 + 6
    server.add("/slow.pth", torch_zip(), drip=0.02)
    monkeypatch.setitem(REGISTRY, "gfm_r34_tt", dataclasses.replace(
        REGISTRY["gfm_r34_tt"], urls=(server.url("/slow.pth"),), filename="slow.pth"))
    with pytest.raises(DownloadError, match=r"deadline of 0\.3 s.*raise data\.deadline in params\.yaml"):
        _stage(tmp_path, "real", tmp_path / "out", deadline=0.3, **kw)


def test_links_in_a_placed_tree_are_not_followed(tmp_path):
    outside = write_file(tmp_path / "outside" / "validation" / "trimap" / "secret.png", b"not yours").parents[2]
    src = Source("t", "t", urls=(), filename="t", archive="none", marker="validation/trimap",
                 layout=(("validation", "t/validation"),))
    root = tmp_path / "root"
    root.mkdir()
    (root / "wrap").symlink_to(outside, target_is_directory=True)  # the marker is only reachable through a link
    with pytest.raises(DataError, match=rf"{root}: no 'validation/trimap' found within 3 folder level"):
        stage.materialise({"t": root}, tmp_path / "out", strict=True, known_sources={"t": src})
    (root / "wrap").unlink()
    write_file(root / "validation" / "trimap" / "a.png", b"mine")
    (root / "validation" / "trimap" / "b.png").symlink_to(outside / "validation" / "trimap" / "secret.png")
    with pytest.raises(DataError, match=rf"{root / 'validation' / 'trimap' / 'b.png'}: a symbolic link in the tree "
                                        rf"of source 't'; links are not followed"):
        stage.materialise({"t": root}, tmp_path / "out", strict=True, known_sources={"t": src})
    assert not (tmp_path / "out").exists()


# --- materialise: embedded and real --------------------------------------------------------------

def _fake_world(root: Path) -> Path:
    rng = np.random.default_rng(5)
    split_tree(root / "am2k" / "train", n=4, rng=rng)
    split_tree(root / "am2k" / "validation", n=2, trimap=True, rng=rng)
    for split, n in (("train", 4), ("validation", 2)):
        for i in range(n):
            write_file(root / "am2k" / split / "fg" / f"s{i}.png", png(np.zeros((24, 32, 3), np.uint8)))
            write_file(root / "am2k" / split / "bg" / f"s{i}.png", png(np.zeros((24, 32, 3), np.uint8)))
    for i in range(3):
        write_file(root / "bg_candidates" / f"bg_{i}.jpg", jpg(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)))
    write_file(root / "bg_candidates" / "bg_broken.jpg", b"corrupt on purpose")
    (root / "bg_candidates.csv").write_text("name,kind\n")
    for i in range(2):
        write_file(root / "coco" / f"coco_{i}.jpg", jpg(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)))
    (root / "world.json").write_text("{}")
    return root


def test_run_download_embedded_links_validates_and_replaces_atomically(tmp_path):
    world = _fake_world(tmp_path / "data")
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = read_alpha(world / "am2k" / "train" / "mask" / "s3.png")
    write_file(world / "am2k" / "train" / "mask" / "s3.png", png(rgba))
    before = tree(world)
    out = tmp_path / "artifacts" / "datasets"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an older run")

    report = _stage(tmp_path, "embedded", out, data_root=world, metrics_out=tmp_path / "metrics" / "download.json")
    assert report["counts"] == {"am2k/train": 4, "am2k/validation": 2, "bg_candidates": 4, "coco": 2}
    assert report["converted"] == 1 and "s3.png" in report["warnings"][0]
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["datasets"]  # no temp sibling left behind
    assert tree(world) == before  # the conversion replaced the link, it did not write through it
    image = out / "am2k" / "validation" / "original" / "s0.jpg"
    assert image.stat().st_ino == (world / "am2k" / "validation" / "original" / "s0.jpg").stat().st_ino
    assert read_alpha(out / "am2k" / "train" / "mask" / "s3.png").ndim == 2
    assert (out / "bg_candidates.csv").exists() and (out / "world.json").exists()
    summary = json.loads((out / stage.SUMMARY).read_text())
    assert summary["counts"] == report["counts"]
    metrics = json.loads((tmp_path / "metrics" / "download.json").read_text())
    assert metrics == {"source": "embedded", "counts": report["counts"], "benchmarks": {"am2k": 2}, "warnings": 1,
                       "converted": 1, "dropped": 0}

    (world / "am2k" / "train" / "mask" / "s0.png").unlink()  # a broken world must not replace a good folder
    with pytest.raises(DataError, match=r"s0\.jpg: no mask"):
        _stage(tmp_path, "embedded", out, data_root=world)
    assert json.loads((out / stage.SUMMARY).read_text())["counts"] == report["counts"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["datasets"]
    report = _stage(tmp_path, "embedded", out, data_root=world, strict=False, link=False)
    assert report["counts"]["am2k/train"] == 3 and report["dropped"] == 1


def test_run_download_embedded_without_a_world_says_how_to_build_it(tmp_path):
    with pytest.raises(DataError, match="gfm world build"):
        _stage(tmp_path, "embedded", tmp_path / "out", data_root=tmp_path / "nothing")
    with pytest.raises(ValueError, match="'embedded' or 'real'"):
        _stage(tmp_path, "internet", tmp_path / "out", data_root=tmp_path)


def test_a_killed_run_leaves_staging_that_the_next_run_removes(tmp_path):
    world = _fake_world(tmp_path / "data")
    art = tmp_path / "artifacts"
    out, metrics = art / "datasets", tmp_path / "metrics" / "download.json"
    _stage(tmp_path, "embedded", out, data_root=world, metrics_out=metrics)
    killed = ("import os, sys\nfrom gfm.core.io import atomic_dir, atomic_path\n"
              "with atomic_dir(sys.argv[1]) as tmp, atomic_path(sys.argv[2]) as part:\n"
              "    (tmp / 'half.jpg').write_bytes(b'x'); part.write_text('{')\n    os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", killed, str(out), str(metrics)], check=False).returncode == 9
    leftovers = [p for p in [*art.iterdir(), *metrics.parent.iterdir()]
                 if p.name.startswith((".datasets.", ".download"))]
    assert len(leftovers) == 2  # what a kill leaves: atomic_dir's and atomic_path's staging
    leftovers.append(write_file(art / ".datasets.old-123-456" / "x.jpg", b"x").parent)  # replace_dir's, moved aside
    unrelated = [write_file(art / ".datasets.keep" / "x", b"x").parent, write_file(art / ".other.ab12cd34.tmp", b""),
                 write_file(art / ".datasets.toolong12.tmp", b""), write_file(tmp_path / ".datasets.ab12cd34.tmp", b"")]
    _stage(tmp_path, "embedded", out, data_root=world, metrics_out=metrics)
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in unrelated)
    assert sorted(p.name for p in art.iterdir()) == sorted(["datasets", *(p.name for p in unrelated[:3])])
    assert clean_stale_staging(tmp_path / "missing" / "target") == []  # gfm.core.io's, the one stage 1 uses


def test_stale_partial_downloads_are_discarded_unless_resumable(server, tmp_path):
    downloads, lock = tmp_path / "dl", tmp_path / "lock.json"
    body = zip_bytes({"a.txt": b"a" * 3000})
    route = server.add("/p.zip", body)
    write_file(downloads / "p.zip.part", b"PK\x03\x04 from a killed run, no sidecar")
    write_file(downloads / "q.zip.part.json", b"{}")  # a sidecar without its part
    stage.download([_source("p", server.url("/p.zip"), filename="p.zip", archive="zip")], downloads,
                   lock_file=lock, **FAST)
    assert route.hits == [None]  # restarted from zero, nothing appended to unknown bytes
    assert sorted(p.name for p in downloads.iterdir()) == ["p.unpacked", "p.zip", "q.zip.part.json"]


def _official_am2k(rng) -> bytes:
    """A small AM-2k zip in the official layout (wrapped in AM-2k/), one 16-bit and one RGBA mask."""
    members = am2k_members(random_pairs(rng))
    for mask, widen in (("train/mask/m_02", lambda alpha: alpha.astype(np.uint16) * 257),
                        ("validation/mask/m_04", lambda alpha: np.dstack([np.zeros_like(alpha)] * 3 + [alpha]))):
        name = f"AM-2k/{mask}.png"
        members[name] = png(widen(cv2.imdecode(np.frombuffer(members[name], np.uint8), cv2.IMREAD_UNCHANGED)))
    return zip_bytes(members)


def test_end_to_end_real_route_from_a_local_server(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    am2k = _official_am2k(rng)
    bg_members = bg20k_members(random_backgrounds(rng))
    bg = tar_bytes(bg_members)
    coco = zip_bytes(coco_members(random_backgrounds(rng, 20, 26), 2))
    route = server.add("/AM-2k.zip", am2k, drop_after=len(am2k) // 2)
    server.add("/BG-20k.tar.gz", bg, fail_times=2)
    server.add("/train2014.zip", coco)
    monkeypatch.setitem(REGISTRY, "am2k", dataclasses.replace(
        REGISTRY["am2k"], urls=(server.url("/AM-2k.zip"),), filename="AM-2k.zip", archive="zip"))
    monkeypatch.setitem(REGISTRY, "bg20k", dataclasses.replace(
        REGISTRY["bg20k"], urls=(server.url("/BG-20k.tar.gz"),), filename="BG-20k.tar.gz", archive="auto"))
    monkeypatch.setitem(REGISTRY, "coco", dataclasses.replace(REGISTRY["coco"], urls=(server.url("/train2014.zip"),)))
    lock = tmp_path / "data.lock.json"
    out = tmp_path / "artifacts" / "datasets"

    report = _stage(tmp_path, "real", out, downloads=tmp_path / "downloads", lock_file=lock,
                                sources="am2k,bg20k,coco", retries=3, **FAST)
    assert len(route.hits) == 2  # the dropped transfer was retried
    assert report["counts"] == {"am2k/train": 3, "am2k/validation": 2, "bg20k/train": 3, "bg20k/testval": 1, "coco": 2}
    assert report["converted"] == 2
    assert {"am2k/AM-2k.zip", "bg20k/BG-20k.tar.gz", "coco/train2014.zip"} == set(_lock(lock))
    for split, names in (("train", ["m_01", "m_02", "m_03"]), ("validation", ["m_04", "m_05"])):
        s = layout.matting_split(out, split)
        assert s.names() == names
        for name in names:
            stored = cv2.imread(str(s.mask_path(name)), cv2.IMREAD_UNCHANGED)
            assert stored.dtype == np.uint8 and stored.ndim == 2
            assert stored.shape == cv2.imread(str(s.image_path(name))).shape[:2]
    # BG-20k lands as released: its official split kept, the bytes unchanged, nothing in bg_candidates
    assert tree(out / "bg20k") == {name.removeprefix("BG-20k/"): sha(blob) for name, blob in bg_members}
    assert not (out / layout.BG_CANDIDATES).exists()

    hits = len(route.hits)
    again = _stage(tmp_path, "real", out, downloads=tmp_path / "downloads", lock_file=lock,
                               sources=["am2k", "bg20k", "coco"], **FAST)
    assert len(route.hits) == hits and again["counts"] == report["counts"]  # verified cache, nothing fetched
    again = _stage(tmp_path, "real", out, downloads=tmp_path / "downloads", lock_file=lock, sources="coco",
                               refresh=True, **FAST)
    assert again["counts"] == {"coco": 2} and len(server.routes["/train2014.zip"].hits) == 2


def _serve_p3m(server, monkeypatch, members: dict[str, bytes], path="/P3M-10k.zip", **route):
    """Serve a P3M-10k zip and point the registry's ``p3m10k`` at it (its official layout, our server)."""
    served = server.add(path, zip_bytes(members), **route)
    monkeypatch.setitem(REGISTRY, "p3m10k", dataclasses.replace(REGISTRY["p3m10k"], urls=(server.url(path),)))
    return served


def test_p3m10k_from_a_local_server_lands_as_the_portrait_set(server, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(8)
    members = p3m10k_members(random_pairs(rng))
    rgb_mask = "P3M-10k/validation/P3M-500-NP/mask/n_2b.png"
    members[rgb_mask] = png(np.dstack([cv2.imdecode(np.frombuffer(members[rgb_mask], np.uint8), 0)] * 3))
    _serve_p3m(server, monkeypatch, members, fail_times=1)
    out, metrics = tmp_path / "datasets", tmp_path / "metrics" / "download.json"

    report = _stage(tmp_path, "real", out, downloads=tmp_path / "downloads", lock_file=tmp_path / "lock.json",
                                sources=["p3m10k"], metrics_out=metrics, **FAST)
    assert report["counts"] == {"pm10k/train": 3, "pm10k/validation": 2, "pm10k/validation_np": 2}
    assert report["benchmarks"] == {"p3m500p": 2, "p3m500np": 2}
    assert json.loads(metrics.read_text())["benchmarks"] == report["benchmarks"]
    assert report["converted"] == 1 and "n_2b.png" in report["warnings"][0]  # validated like AM-2k
    official = {"train": ("train", "blurred_image"), "validation": ("validation/P3M-500-P", "blurred_image"),
                "validation_np": ("validation/P3M-500-NP", "original_image")}
    for ours, (split, images) in official.items():
        s = layout.Split(out / registry.PORTRAIT_SET / ours)
        stems = sorted(Path(m).stem for m in members if m.startswith(f"P3M-10k/{split}/{images}/"))
        assert s.names() == stems and s.trimap.is_dir() == (ours != "train")
        for stem in stems:
            assert s.image_path(stem).read_bytes() == members[f"P3M-10k/{split}/{images}/{stem}.jpg"]
            assert read_alpha(s.mask_path(stem)).ndim == 2
    assert plots.matting_splits(out, registry.PORTRAIT_SET) == ["train", "validation", "validation_np"]
    rows = {(r.set, r.split): r for r in plots.summarise(out).itertuples()}
    assert (rows["pm10k", "validation_np"].images, rows["pm10k", "validation_np"].trimaps) == (2, 2)
    assert rows["pm10k", "train"].trimaps == 0
    fig = plots.plot_samples(out, "validation_np", n=2, set_name=registry.PORTRAIT_SET, **SAMPLES)
    assert fig.axes[2].get_title() == "trimap" and "pm10k/validation_np" in fig.texts[0].get_text()


def test_p3m10k_in_another_layout_or_with_a_bad_pair_is_refused(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    flat = {name.replace("validation/", ""): blob  # no validation/
            for name, blob in p3m10k_members(random_pairs(rng)).items()}
    _serve_p3m(server, monkeypatch, flat, path="/flat.zip")
    kw = {"downloads": tmp_path / "dl", "lock_file": tmp_path / "lock.json", "sources": "p3m10k", **FAST}
    with pytest.raises(DataError, match=r"no 'validation/P3M-500-NP' found within 3 folder level\(s\); is this P3M"):
        _stage(tmp_path, "real", tmp_path / "out", **kw)

    members = p3m10k_members(random_pairs(rng))
    members["P3M-10k/validation/P3M-500-NP/mask/n_2a.png"] = png(np.zeros((10, 10), np.uint8))
    _serve_p3m(server, monkeypatch, members, path="/bad.zip")
    with pytest.raises(DataError, match=r"(?s)validation_np: 1 problem.*n_2a\.png: mask is 10x10, its image n_2a"):
        _stage(tmp_path, "real", tmp_path / "out", refresh=True, **kw)
    assert not (tmp_path / "out").exists()


def test_a_refused_download_says_where_to_place_it_and_a_placed_file_is_used(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    refused = _serve_p3m(server, monkeypatch, {}, status=403)  # Google Drive's quota, say
    downloads, lock = tmp_path / "dl", tmp_path / "lock.json"
    with pytest.raises(DownloadError) as error:
        stage.download(["p3m10k"], downloads, lock_file=lock, **FAST)
    hint = str(error.value).splitlines()[-1]
    assert "HTTP 403" in str(error.value) and "https://github.com/JizhiziLi/P3M#readme" in hint
    assert "P3M-10k_Dataset_Release_Agreement.pdf" in hint and f"place it at {downloads / 'P3M-10k.zip'}" in hint
    blob = zip_bytes(p3m10k_members(random_pairs(rng)))
    write_file(downloads / "P3M-10k.zip", blob)  # downloaded by hand (a mirror, a browser)
    report = _stage(tmp_path, "real", tmp_path / "out", downloads=downloads, lock_file=lock, sources="p3m10k",
                                **FAST)
    assert report["counts"]["pm10k/train"] == 3 and len(refused.hits) == 1  # checked and used, not fetched
    assert _lock(lock)["p3m10k/P3M-10k.zip"]["sha256"] == sha(blob)

    import gdown

    def refused_listing(**kw):
        raise gdown.exceptions.DownloadError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(gdown, "download_folder", refused_listing)
    with pytest.raises(DownloadError, match=rf"(?s)did not list the folder.*\n  or download the files of AM-2k .*"
                                            rf"AM-2k_Dataset_Release_Agreement\.pdf\) into {downloads / 'am2k'}/"):
        stage.download(["am2k"], downloads, lock_file=lock, **FAST)
    write_file(downloads / "am2k" / "AM-2k.zip", _drive_am2k(rng))  # the folder, placed by hand
    assert stage.download(["am2k"], downloads, lock_file=lock, **FAST)["am2k"] == downloads / "am2k.unpacked"
    assert "am2k/AM-2k.zip" in _lock(lock)
    placed = tmp_path / "new" / "P3M-10k.zip"
    with pytest.raises(DownloadError, match=rf"no URL: download P3M-10k\.zip .* place it at {placed} and run again"):
        stage.download([dataclasses.replace(REGISTRY["p3m10k"], urls=())], tmp_path / "new", lock_file=lock, **FAST)


# --- a mirror of the downloads (GFM_MIRROR) -------------------------------------------------------

MIRRORED = ["am2k", "bg20k", "coco", "p3m10k", "gfm_r34_tt"]


def _drive_refuses(monkeypatch) -> list:
    """gdown refusing every file and folder (as Google Drive over quota); returns the ids asked for."""
    import gdown

    asked = []

    def refuse(id=None, **kw):
        asked.append(id)
        raise gdown.exceptions.DownloadError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(gdown, "download_folder", refuse)
    monkeypatch.setattr(gdown, "download", refuse)
    return asked


def _by_hand(downloads: Path, key: str) -> Path:
    """Where a file of the mirror (``<source>/<file>``) is placed by hand in the downloads folder."""
    name, file = key.split("/", 1)
    source = REGISTRY[name]
    folder = any(url.startswith(registry.GDRIVE_FOLDER) for url in source.urls)
    return downloads / source.filename / file if folder else downloads / file


def test_a_mirror_is_tried_first_locked_and_lands_what_a_download_by_hand_lands(server, tmp_path, monkeypatch,
                                                                                mirrored):
    base = serve_mirror(server, mirrored)
    asked = _drive_refuses(monkeypatch)
    monkeypatch.setenv(registry.MIRROR_ENV, base + "/")
    lock, out = tmp_path / "data.lock.json", tmp_path / "artifacts" / "datasets"
    report = _stage(tmp_path, "real", out, lock_file=lock, sources=MIRRORED)
    assert asked == []  # Google Drive (and cocodataset.org) never asked
    assert report["counts"] == {"am2k/train": 3, "am2k/validation": 2, "pm10k/train": 3, "pm10k/validation": 1,
                                "pm10k/validation_np": 1, "bg20k/train": 3, "bg20k/testval": 3, "coco": 3,
                                PRETRAINED: 1}
    files = {key: blob for key, blob in mirrored.items() if key != registry.MIRROR_LOCK}
    assert {key: (entry["sha256"], entry["size"], entry["url"]) for key, entry in _lock(lock).items()} == {
        key: (sha(blob), len(blob), f"{base}/{key}") for key, blob in files.items()}
    assert all(len(server.routes[f"/mirror/{key}"].hits) == 1 for key in mirrored)

    again = _stage(tmp_path, "real", out, lock_file=lock, sources=MIRRORED)  # cached and verified: nothing fetched
    assert again["counts"] == report["counts"]
    assert all(len(server.routes[f"/mirror/{key}"].hits) == 1 for key in mirrored)

    landed = tree(out)
    monkeypatch.delenv(registry.MIRROR_ENV)
    for key, blob in files.items():
        write_file(_by_hand(tmp_path / "by_hand", key), blob)
    _stage(tmp_path, "real", out, downloads=tmp_path / "by_hand", lock_file=tmp_path / "by_hand.json", sources=MIRRORED)
    assert tree(out) == landed and asked == []  # the mirror changes where the bytes come from, nothing else


def test_a_mirror_lacking_a_file_falls_back_and_a_mirror_with_other_bytes_is_refused(server, tmp_path, monkeypatch,
                                                                                    mirrored):
    asked = _drive_refuses(monkeypatch)
    files = {key: blob for key, blob in mirrored.items() if key not in ("p3m10k/P3M-10k.zip", registry.MIRROR_LOCK)}
    base = serve_mirror(server, files)  # no P3M-10k, no lock file of its own
    official = server.add("/official/P3M-10k.zip", mirrored["p3m10k/P3M-10k.zip"])
    monkeypatch.setitem(REGISTRY, "p3m10k", dataclasses.replace(REGISTRY["p3m10k"],
                                                               urls=(server.url("/official/P3M-10k.zip"),)))
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    stage.download(["p3m10k"], downloads, lock_file=lock, mirror=base, **FAST)
    assert len(official.hits) == 1 and _lock(lock)["p3m10k/P3M-10k.zip"]["url"] == server.url("/official/P3M-10k.zip")
    with pytest.raises(DownloadError, match=rf"(?s)every URL failed:.*GFM_MIRROR mirror {base}: lists no file of "
                                            rf"'am2k' \(its data.lock.json records none\).*did not list the folder"):
        stage.download(["am2k"], downloads, lock_file=lock, mirror=base, **FAST)
    assert asked == ["1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"] and not (downloads / "am2k").exists()

    registry.record_lock(lock, "coco", "train2014.zip", sha256="ab" * 32, size=1, url="the first download")
    with pytest.raises(ChecksumError, match=rf"{base}/coco/train2014\.zip: sha256 \w+ differs from the expected a"):
        stage.download(["coco"], downloads, lock_file=lock, mirror=base, **FAST)  # the lock file wins over the mirror
    assert not (downloads / "train2014.zip").exists()

    lying = {**files, registry.MIRROR_LOCK: mirrored[registry.MIRROR_LOCK],
             "gfm_r34_tt/gfm_r34_tt.pth": torch_zip()}  # its lock file says other bytes
    base = serve_mirror(server, lying, prefix="/lying")
    with pytest.raises(ChecksumError, match=rf"{base}/gfm_r34_tt/gfm_r34_tt\.pth: sha256 \w+ differs"):
        stage.download(["gfm_r34_tt"], downloads, lock_file=lock, mirror=base, **FAST)
    assert "gfm_r34_tt/gfm_r34_tt.pth" not in _lock(lock) and asked == ["1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"]


def test_a_mirror_on_disk_is_copied_through_the_same_checks(tmp_path, monkeypatch, mirrored):
    asked = _drive_refuses(monkeypatch)
    folder = tmp_path / "lab mirror"
    for key in ("am2k/AM-2k.zip", "gfm_r34_tt/gfm_r34_tt.pth"):  # no lock file: the folder lists AM-2k's files
        write_file(folder / key, mirrored[key])
    write_file(folder / "am2k" / "readme.txt", b"AM-2k, as released")
    monkeypatch.setenv(registry.MIRROR_ENV, f"file://{folder}")
    lock, downloads = tmp_path / "lock.json", tmp_path / "dl"
    roots = stage.download(["am2k", "gfm_r34_tt"], downloads, lock_file=lock, **FAST)
    assert asked == [] and (roots["am2k"] / "readme.txt").read_bytes() == b"AM-2k, as released"
    assert {key: entry["url"] for key, entry in _lock(lock).items()} == {
        key: str(folder / key) for key in ("am2k/AM-2k.zip", "am2k/readme.txt", "gfm_r34_tt/gfm_r34_tt.pth")}
    assert (downloads / "gfm_r34_tt.pth").read_bytes() == mirrored["gfm_r34_tt/gfm_r34_tt.pth"]

    write_file(folder / "coco" / "train2014.zip", b"<html><title>Sign in</title></html>")  # a bad copy on the disk
    monkeypatch.setitem(REGISTRY, "coco", dataclasses.replace(REGISTRY["coco"], urls=()))  # the mirror alone
    with pytest.raises(ContentError, match=r"(?s)coco/train2014\.zip: an HTML page where a zip archive"):
        stage.download(["coco"], downloads, lock_file=lock, **FAST)
    assert not (downloads / "train2014.zip").exists() and "coco/train2014.zip" not in _lock(lock)


def test_the_mirror_setting_is_a_url_or_a_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert registry.mirror() is None and registry.mirror("  ") is None
    monkeypatch.setenv(registry.MIRROR_ENV, "")
    assert registry.mirror() is None
    monkeypatch.setenv(registry.MIRROR_ENV, "https://data.lab.org/gfm/")
    assert registry.mirror() == "https://data.lab.org/gfm" and registry.mirror("") is None  # "" turns it off
    assert registry.mirror_location(registry.mirror(), "coco/train2014.zip") == \
        "https://data.lab.org/gfm/coco/train2014.zip"
    assert registry.mirror("mirror") == str(tmp_path / "mirror") == registry.mirror(f"file://{tmp_path}/mirror")
    assert registry.mirror_location(str(tmp_path), "am2k/AM-2k.zip") == str(tmp_path / "am2k" / "AM-2k.zip")


# --- the registry --------------------------------------------------------------------------------

def test_registry_lists_the_paper_datasets_and_the_seven_checkpoints(tmp_path):
    checkpoints = {s.name: (s.backbone, s.rosta) for s in REGISTRY.values() if s.kind == "checkpoint"}
    assert checkpoints == {"gfm_d121_tt": ("d121", "TT"), "gfm_r34_tt": ("r34", "TT"), "gfm_r34_ft": ("r34", "FT"),
                           "gfm_r34_bt": ("r34", "BT"), "gfm_r34_2b_tt": ("r34_2b", "TT"),
                           "gfm_r101_tt": ("r101", "TT"), "gfm_d121_rim": ("d121", "RIM")}
    assert {"am2k", "bg20k", "coco", "p3m10k"} <= set(REGISTRY)
    assert dict(REGISTRY["am2k"].layout)["validation/trimap"] == "am2k/validation/trimap"
    assert dict(REGISTRY["bg20k"].layout) == {"train": "bg20k/train", "testval": "bg20k/testval"}  # the official split
    p3m = dict(REGISTRY["p3m10k"].layout)
    assert p3m == {"train/blurred_image": "pm10k/train/original", "train/mask": "pm10k/train/mask",
                   "validation/P3M-500-P/blurred_image": "pm10k/validation/original",
                   "validation/P3M-500-P/mask": "pm10k/validation/mask",
                   "validation/P3M-500-P/trimap": "pm10k/validation/trimap",
                   "validation/P3M-500-NP/original_image": "pm10k/validation_np/original",
                   "validation/P3M-500-NP/mask": "pm10k/validation_np/mask",
                   "validation/P3M-500-NP/trimap": "pm10k/validation_np/trimap"}
    assert REGISTRY["p3m10k"].urls == ("gdrive:1LqUU7BZeiq8I3i5KxApdOJ2haXm-cEv1",)  # the official P3M README
    assert {name: folder for name, (folder, _) in registry.BENCHMARKS.items()} == {
        "am2k": "am2k/validation", "p3m500p": "pm10k/validation", "p3m500np": "pm10k/validation_np"}
    with pytest.raises(ValueError, match="unsupported URL"):
        Source("x", "x", urls=("ftp://host/x",), filename="x", archive="zip", layout=())
    with pytest.raises(ValueError, match="unknown source 'imagenet'"):
        stage.download("am2k,imagenet", "unused", lock_file=tmp_path / "lock.json")
    lock = tmp_path / "lock.json"
    registry.record_lock(lock, "coco", "train2014.zip", sha256="ab" * 32, size=1, url="u")
    table = registry.registry_table(lock).set_index("name")
    assert table.loc["coco", "sha256"] == "lock" and table.loc["am2k", "sha256"] == "first download"
    assert len(table) == len(REGISTRY) and table.loc["gfm_r34_tt", "url"].startswith(registry.GDRIVE)
    agreements = table.loc[["am2k", "bg20k", "p3m10k", "coco"], "licence"]
    assert [a.rsplit("/", 1)[-1] for a in agreements] == ["AM-2k_Dataset_Release_Agreement.pdf",
                                                          "BG-20k_Dataset_Release_Agreement.pdf",
                                                          "P3M-10k_Dataset_Release_Agreement.pdf", "#termsofuse"]
    assert table.loc["p3m10k", "page"] == "https://github.com/JizhiziLi/P3M#readme" and table["page"].all()
    assert REGISTRY["coco"].urls == ("https://images.cocodataset.org/zips/train2014.zip",)
    assert all(url.startswith(("https://", registry.GDRIVE, registry.GDRIVE_FOLDER))
               for s in REGISTRY.values() for url in s.urls)  # no plain HTTP
    assert all(s.sha256 is None for s in REGISTRY.values())  # no release publishes one: none is invented
    assert set(table["official_sha256"]) == {"none published"}
    lock.write_text("{not json")
    with pytest.raises(DataError, match=rf"{lock}: not valid JSON"):
        registry.read_lock(lock)


# --- table and figures ---------------------------------------------------------------------------

def test_summary_table_and_figures(tmp_path):
    world = _fake_world(tmp_path / "data")
    out = tmp_path / "datasets"
    _stage(tmp_path, "embedded", out, data_root=world)
    table = plots.summarise(out)
    rows = {(r.set, r.split): r for r in table.itertuples()}
    assert (rows["am2k", "train"].images, rows["am2k", "train"].masks, rows["am2k", "train"].trimaps) == (4, 4, 0)
    assert rows["am2k", "validation"].trimaps == 2 and rows["am2k", "validation"].min_short_side == 24
    assert rows["bg_candidates", ""].images == 4 and rows["coco", ""].median_width == 30
    fig = plots.plot_samples(out, "train", n=2, **SAMPLES)
    assert len(fig.axes) == 6 and fig.axes[2].get_title().startswith("trimap (generated")
    fig = plots.plot_samples(out, "validation", n=5, **SAMPLES)
    assert len(fig.axes) == 6 and fig.axes[2].get_title() == "trimap"
    fig = plots.plot_resolutions(out)
    assert len(fig.axes) == 4 and "1 unreadable" in fig.axes[2].get_xlabel()
