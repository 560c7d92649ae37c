"""Stage 1 (gfm.data.fetch): downloads against a real local HTTP server (resume, retry, 4xx, checksums, lock
file), safe extraction of malicious archives, Google Drive dispatch (gdown monkeypatched), pair
validation, and the embedded and real routes end to end — all offline."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from gfm.data import fetch as data
from gfm.core import layout
from gfm.core.io import read_alpha

from httpserver import LocalServer

FAST = dict(backoff=0.01, timeout=10.0, progress=False)


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def _jpg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    return buf.tobytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def _sample(rng, h=24, w=32):
    """(jpg bytes of an image, uint8 alpha) of one h x w sample."""
    alpha = np.zeros((h, w), np.uint8)
    alpha[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
    alpha[h // 4, w // 4:3 * w // 4] = 128
    return _jpg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), alpha


def _source(name, url, **kw) -> data.Source:
    base = dict(filename=f"{name}.bin", archive="none", layout=(("*", f"files/{name}"),))
    base.update(kw)
    return data.Source(name, name, urls=(url,), **base)


# --- HTTP downloads ------------------------------------------------------------------------------

def test_fetch_url_downloads_verifies_and_lands_atomically(server, tmp_path):
    body = np.random.default_rng(0).bytes(300_000)
    server.add("/a.bin", body)
    dest = data.fetch_url(server.url("/a.bin"), tmp_path / "a.bin", sha256=_sha(body), chunk_size=4096, **FAST)
    assert dest.read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_resume_after_a_dropped_connection_uses_range(server, tmp_path):
    body = np.random.default_rng(1).bytes(200_000)
    route = server.add("/big.bin", body, drop_after=70_000)
    dest = data.fetch_url(server.url("/big.bin"), tmp_path / "big.bin", sha256=_sha(body), retries=2,
                          chunk_size=4096, **FAST)
    assert dest.read_bytes() == body
    assert route.hits[0] is None and len(route.hits) == 2
    resumed_at = int(route.hits[1].removeprefix("bytes=").removesuffix("-"))
    assert 70_000 - 4096 <= resumed_at <= 70_000, route.hits  # at most the chunk being read is lost


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    body = np.random.default_rng(2).bytes(120_000)
    route = server.add("/norange.bin", body, drop_after=50_000, ignore_range=True)
    dest = data.fetch_url(server.url("/norange.bin"), tmp_path / "n.bin", sha256=_sha(body), retries=2,
                          chunk_size=4096, **FAST)
    assert dest.read_bytes() == body  # not the kept bytes + the whole body appended
    assert len(route.hits) == 2 and route.hits[0] is None and route.hits[1].startswith("bytes=4")


def test_5xx_is_retried_with_a_bound(server, tmp_path):
    body = b"x" * 1000
    route = server.add("/flaky.bin", body, fail_times=3)
    data.fetch_url(server.url("/flaky.bin"), tmp_path / "ok.bin", retries=3, **FAST)
    assert len(route.hits) == 4
    assert (tmp_path / "ok.bin").read_bytes() == body

    route = server.add("/down.bin", body, fail_times=10, fail_status=503)
    with pytest.raises(data.DownloadError, match=r"/down\.bin.*3 attempt\(s\).*503"):
        data.fetch_url(server.url("/down.bin"), tmp_path / "down.bin", retries=2, **FAST)
    assert len(route.hits) == 3
    assert not (tmp_path / "down.bin").exists()


def test_404_fails_at_once_naming_url_and_status(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(data.DownloadError) as error:
        data.fetch_url(url, tmp_path / "m.zip", retries=5, **FAST)
    assert url in str(error.value) and "404" in str(error.value)
    route = server.add("/gone.zip", b"", status=410)
    with pytest.raises(data.DownloadError, match="410"):
        data.fetch_url(server.url("/gone.zip"), tmp_path / "g.zip", retries=5, **FAST)
    assert len(route.hits) == 1


def test_checksum_mismatch_leaves_nothing_at_the_destination(server, tmp_path):
    server.add("/c.bin", b"hello world")
    with pytest.raises(data.ChecksumError, match="differs"):
        data.fetch_url(server.url("/c.bin"), tmp_path / "c.bin", sha256="0" * 64, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_lock_file_records_unknown_sha_then_verifies_it(server, tmp_path):
    lock = tmp_path / "data.lock.json"
    route = server.add("/w.bin", b"version 1")
    src = _source("w", server.url("/w.bin"))
    roots = data.download([src], tmp_path / "dl", lock_file=lock, **FAST)
    entry = json.loads(lock.read_text())["files"]["w/w.bin"]
    assert entry["sha256"] == _sha(b"version 1") and entry["size"] == 9 and entry["url"] == server.url("/w.bin")
    assert roots["w"].read_bytes() == b"version 1"

    data.download([src], tmp_path / "dl", lock_file=lock, **FAST)  # cached and verified: not fetched again
    assert len(route.hits) == 1
    data.download([src], tmp_path / "fresh", lock_file=lock, **FAST)  # same bytes again: accepted
    route.body = b"version 2"  # the server now serves something else
    with pytest.raises(data.ChecksumError):
        data.download([src], tmp_path / "again", lock_file=lock, **FAST)
    assert not (tmp_path / "again" / "w.bin").exists()
    assert json.loads(lock.read_text())["files"]["w/w.bin"]["sha256"] == _sha(b"version 1")


def test_registry_checksum_wins_over_a_missing_lock(server, tmp_path):
    server.add("/r.bin", b"payload")
    src = _source("r", server.url("/r.bin"), sha256=_sha(b"other"))
    with pytest.raises(data.ChecksumError):
        data.download([src], tmp_path / "dl", lock_file=tmp_path / "lock.json", **FAST)
    assert not (tmp_path / "dl" / "r.bin").exists()
    assert not (tmp_path / "lock.json").exists()


def test_every_url_failing_lists_the_errors(server, tmp_path):
    src = dataclasses.replace(_source("m", server.url("/nope1")), urls=(server.url("/nope1"), server.url("/nope2")))
    with pytest.raises(data.DownloadError, match=r"(?s)nope1.*404.*nope2.*404"):
        data.download([src], tmp_path / "dl", lock_file=tmp_path / "lock.json", retries=0, **FAST)


# --- safe extraction -----------------------------------------------------------------------------

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
    return _tar([("ok.txt", b"fine"), info, *extra])


def _device() -> bytes:
    info = tarfile.TarInfo("dev/null")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return _tar([info])


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(2_000_000))
    return buf.getvalue()


MALICIOUS = {
    "zip-absolute": (_zip({"/tmp/gfm-evil.txt": b"x"}), "absolute"),
    "zip-traversal": (_zip({"a/../../gfm-evil.txt": b"x"}), r"'\.\.'"),
    "zip-symlink-escape": (_zip_symlink("link", "../../outside"), "outside"),
    "zip-bomb": (_zip_bomb(), "max_unpacked_bytes"),
    "tar-absolute": (_tar([("/tmp/gfm-evil.txt", b"x")]), "absolute"),
    "tar-traversal": (_tar([("../gfm-evil.txt", b"x")]), r"'\.\.'"),
    "tar-symlink-escape": (_tar_link("link", "../../etc"), "outside"),
    "tar-symlink-absolute": (_tar_link("link", "/etc/passwd"), "absolute"),
    "tar-write-through-symlink": (_tar_link("inner", ".", extra=[("inner/x.txt", b"x")]), "through"),
    "tar-hardlink-escape": (_tar_link("hard", "../../etc/passwd", kind=tarfile.LNKTYPE), "outside"),
    "tar-device": (_device(), "device"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_before_writing(server, tmp_path, case):
    blob, message = MALICIOUS[case]
    suffix = "zip" if case.startswith("zip") else "tar.gz"
    server.add(f"/{case}.{suffix}", blob)
    src = _source(case, server.url(f"/{case}.{suffix}"), filename=f"{case}.{suffix}", archive=suffix)
    downloads = tmp_path / "deep" / "downloads"
    with pytest.raises(data.UnsafeArchiveError, match=message):
        data.download([src], downloads, lock_file=tmp_path / "lock.json", max_unpacked_bytes=1_000_000, **FAST)
    assert sorted(p.name for p in downloads.iterdir()) == [f"{case}.{suffix}"]  # no unpacked or temp folder
    assert not (tmp_path / "gfm-evil.txt").exists() and not (tmp_path / "deep" / "gfm-evil.txt").exists()


def test_safe_archives_extract_with_inner_links_and_auto_detection(tmp_path):
    link = tarfile.TarInfo("set/alias.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "real.txt"
    hard = tarfile.TarInfo("set/copy.txt")
    hard.type, hard.linkname = tarfile.LNKTYPE, "set/real.txt"
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(_tar([("set/real.txt", b"content"), link, hard]))
    out = data.extract_archive(archive, tmp_path / "out", max_unpacked_bytes=1000)
    assert (out / "set" / "alias.txt").read_bytes() == b"content"
    assert (out / "set" / "alias.txt").is_symlink()
    assert (out / "set" / "copy.txt").read_bytes() == b"content"
    archive2 = tmp_path / "ok.zip"
    archive2.write_bytes(_zip({"a/b.txt": b"zip content"}))
    out = data.extract_archive(archive2, tmp_path / "out", max_unpacked_bytes=1000)  # replaces the old folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a", "a/b.txt"]
    with pytest.raises(data.UnsafeArchiveError, match="not a zip or tar"):
        data.extract_archive(_write(tmp_path / "plain.pth", b"\x80\x02weights"), tmp_path / "x")


def _write(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


def test_torch_zip_checkpoint_is_not_unpacked(tmp_path):
    ckpt = _write(tmp_path / "gfm_r34_tt.pth", _zip({"archive/data.pkl": b"pickle", "archive/version": b"3"}))
    assert data._archive_kind(ckpt, "auto") == "none"
    zipped = _write(tmp_path / "gfm_r34_tt.zip", _zip({"gfm_r34_tt.pth": b"weights"}))
    assert data._archive_kind(zipped, "auto") == "zip"


# --- Google Drive dispatch (gdown monkeypatched; no network) -------------------------------------

def test_gdrive_file_dispatch_verifies_and_records(monkeypatch, tmp_path):
    import gdown

    calls = []

    def fake_download(id=None, output=None, quiet=False, resume=False, **kw):  # noqa: A002
        calls.append((id, resume))
        Path(output).write_bytes(b"torch weights")
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.setitem(data.REGISTRY, "gfm_r34_tt", data.REGISTRY["gfm_r34_tt"])
    lock = tmp_path / "lock.json"
    roots = data.download("gfm_r34_tt", tmp_path / "dl", lock_file=lock, **FAST)
    assert calls == [("1AdtoIdYTLsjXfVe_a50tin0cFwZMSz93", True)]
    assert roots["gfm_r34_tt"] == tmp_path / "dl" / "gfm_r34_tt.pth"
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["gfm_r34_tt.pth"]
    assert json.loads(lock.read_text())["files"]["gfm_r34_tt/gfm_r34_tt.pth"]["sha256"] == _sha(b"torch weights")
    report = data.materialise(roots, tmp_path / "datasets")
    assert (tmp_path / "datasets" / data.PRETRAINED / "gfm_r34_tt.pth").read_bytes() == b"torch weights"
    assert report["counts"][data.PRETRAINED] == 1

    monkeypatch.setattr(gdown, "download", lambda **kw: None)
    with pytest.raises(data.DownloadError, match="Google Drive refused"):
        data.fetch_gdrive("someid", tmp_path / "x.pth", **FAST)
    assert not (tmp_path / "x.pth").exists()


def test_gdrive_folder_dispatch_unpacks_every_archive(monkeypatch, tmp_path):
    import gdown

    rng = np.random.default_rng(3)
    members = {}
    for split, names in (("train", ["m_a", "m_b"]), ("validation", ["m_c"])):
        for name in names:
            image, alpha = _sample(rng)
            members[f"AM-2k/{split}/original/{name}.jpg"] = image
            members[f"AM-2k/{split}/mask/{name}.png"] = _png(alpha)
            if split == "validation":
                members[f"AM-2k/{split}/trimap/{name}.png"] = _png(alpha)
    calls = []

    def fake_folder(id=None, output=None, quiet=False, resume=False, **kw):  # noqa: A002
        calls.append(id)
        Path(output, "AM-2k.zip").write_bytes(_zip(members))
        Path(output, "readme.txt").write_text("AM-2k")
        return [str(Path(output, "AM-2k.zip")), str(Path(output, "readme.txt"))]

    monkeypatch.setattr(gdown, "download_folder", fake_folder)
    lock = tmp_path / "lock.json"
    roots = data.download(["am2k"], tmp_path / "dl", lock_file=lock, **FAST)
    assert calls == ["1SReB9Zma0TDfDhow7P5kiZNMwY9j9xMA"]
    assert set(json.loads(lock.read_text())["files"]) == {"am2k/AM-2k.zip", "am2k/readme.txt"}
    assert (roots["am2k"] / "readme.txt").read_text() == "AM-2k"
    report = data.materialise(roots, tmp_path / "datasets")
    assert report["counts"] == {"am2k/train": 2, "am2k/validation": 1}
    assert layout.matting_split(tmp_path / "datasets", "validation").names() == ["m_c"]
    data.download(["am2k"], tmp_path / "dl", lock_file=lock, **FAST)  # folder present: not listed again
    assert len(calls) == 1


# --- pair validation -----------------------------------------------------------------------------

def _split(root: Path, n=3, *, trimap=False, rng=None) -> Path:
    rng = rng or np.random.default_rng(4)
    for i in range(n):
        image, alpha = _sample(rng)
        _write_file(root / "original" / f"s{i}.jpg", image)
        _write_file(root / "mask" / f"s{i}.png", _png(alpha))
        if trimap:
            _write_file(root / "trimap" / f"s{i}.png", _png(alpha))
    return root


def _write_file(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


def test_validate_pairs_accepts_a_clean_split(tmp_path):
    report = data.validate_pairs(_split(tmp_path / "train", trimap=True))
    assert report["pairs"] == 3 and report["warnings"] == [] and report["sizes"] == [[32, 24]] * 3


@pytest.mark.parametrize("problem, pattern", [
    ("orphan-image", r"s0\.jpg: no mask"),
    ("orphan-mask", r"x9\.png: mask without an image"),
    ("size", r"s1\.png: mask is 16x8, its image s1\.jpg is 32x24"),
    ("unreadable", r"s2\.png: not a readable image"),
    ("duplicate", r"s0\.png: same name as s0\.jpg"),
    ("trimap-missing", r"s1\.jpg: no trimap"),
])
def test_validate_pairs_names_the_file_and_problem(tmp_path, problem, pattern):
    split = _split(tmp_path / "validation", trimap=True)
    if problem == "orphan-image":
        (split / "mask" / "s0.png").unlink()
    elif problem == "orphan-mask":
        _write_file(split / "mask" / "x9.png", _png(np.zeros((24, 32), np.uint8)))
    elif problem == "size":
        _write_file(split / "mask" / "s1.png", _png(np.zeros((8, 16), np.uint8)))
    elif problem == "unreadable":
        _write_file(split / "mask" / "s2.png", b"not a png")
    elif problem == "duplicate":
        _write_file(split / "original" / "s0.png", _png(np.zeros((24, 32, 3), np.uint8)))
    elif problem == "trimap-missing":
        (split / "trimap" / "s1.png").unlink()
    with pytest.raises(data.DataError, match=pattern):
        data.validate_pairs(split, strict=True)
    report = data.validate_pairs(split, strict=False)
    assert report["dropped"] == 1 and report["pairs"] == (3 if problem in ("orphan-mask", "duplicate") else 2)
    assert any(w.startswith("dropped:") for w in report["warnings"])
    names = [p.stem for p in (split / "original").iterdir()]
    assert sorted(names) == sorted(set(names)) and {p.stem for p in (split / "mask").iterdir()} == set(names)
    assert data.validate_pairs(split, strict=True)["warnings"] == []  # what is left is clean


def test_rgba_rgb_and_16bit_alphas_are_converted_with_a_warning(tmp_path):
    split = _split(tmp_path / "train", n=3)
    alpha = read_alpha(split / "mask" / "s0.png")
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = alpha
    _write_file(split / "mask" / "s0.png", _png(rgba))
    _write_file(split / "mask" / "s1.png", _png(np.repeat(alpha[..., None], 3, axis=2)))
    (split / "mask" / "s2.png").unlink()
    ok, buf = cv2.imencode(".tif", alpha.astype(np.uint16) * 257)
    _write_file(split / "mask" / "s2.tif", buf.tobytes())
    report = data.validate_pairs(split)
    assert report["converted"] == 3 and report["pairs"] == 3
    assert any("RGBA" in w for w in report["warnings"]) and any("16-bit" in w for w in report["warnings"])
    assert sorted(p.name for p in (split / "mask").iterdir()) == ["s0.png", "s1.png", "s2.png"]
    for name in ("s0", "s1", "s2"):
        stored = cv2.imread(str(split / "mask" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert stored.dtype == np.uint8 and stored.ndim == 2
        np.testing.assert_array_equal(stored, alpha)


# --- materialise: embedded and real --------------------------------------------------------------

def _fake_world(root: Path) -> Path:
    rng = np.random.default_rng(5)
    _split(root / "am2k" / "train", n=4, rng=rng)
    _split(root / "am2k" / "validation", n=2, trimap=True, rng=rng)
    for split, n in (("train", 4), ("validation", 2)):
        for i in range(n):
            _write_file(root / "am2k" / split / "fg" / f"s{i}.png", _png(np.zeros((24, 32, 3), np.uint8)))
            _write_file(root / "am2k" / split / "bg" / f"s{i}.png", _png(np.zeros((24, 32, 3), np.uint8)))
    for i in range(3):
        _write_file(root / "bg_candidates" / f"bg_{i}.jpg", _jpg(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)))
    _write_file(root / "bg_candidates" / "bg_broken.jpg", b"corrupt on purpose")
    (root / "bg_candidates.csv").write_text("name,kind\n")
    for i in range(2):
        _write_file(root / "coco" / f"coco_{i}.jpg", _jpg(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)))
    (root / "world.json").write_text("{}")
    return root


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def test_run_download_embedded_links_validates_and_replaces_atomically(tmp_path):
    world = _fake_world(tmp_path / "data")
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = read_alpha(world / "am2k" / "train" / "mask" / "s3.png")
    _write_file(world / "am2k" / "train" / "mask" / "s3.png", _png(rgba))
    before = _tree(world)
    out = tmp_path / "artifacts" / "datasets"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an older run")

    report = data.run_download("embedded", out, data_root=world, metrics_out=tmp_path / "metrics" / "download.json")
    assert report["counts"] == {"am2k/train": 4, "am2k/validation": 2, "bg_candidates": 4, "coco": 2}
    assert report["converted"] == 1 and "s3.png" in report["warnings"][0]
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["datasets"]  # no temp sibling left behind
    assert _tree(world) == before  # the conversion replaced the link, it did not write through it
    image = out / "am2k" / "validation" / "original" / "s0.jpg"
    assert image.stat().st_ino == (world / "am2k" / "validation" / "original" / "s0.jpg").stat().st_ino
    assert read_alpha(out / "am2k" / "train" / "mask" / "s3.png").ndim == 2
    assert (out / "bg_candidates.csv").exists() and (out / "world.json").exists()
    summary = json.loads((out / data.SUMMARY).read_text())
    assert summary["counts"] == report["counts"]
    metrics = json.loads((tmp_path / "metrics" / "download.json").read_text())
    assert metrics == {"source": "embedded", "counts": report["counts"], "warnings": 1, "converted": 1, "dropped": 0}

    (world / "am2k" / "train" / "mask" / "s0.png").unlink()  # a broken world must not replace a good folder
    with pytest.raises(data.DataError, match=r"s0\.jpg: no mask"):
        data.run_download("embedded", out, data_root=world)
    assert json.loads((out / data.SUMMARY).read_text())["counts"] == report["counts"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["datasets"]
    report = data.run_download("embedded", out, data_root=world, strict=False, link=False)
    assert report["counts"]["am2k/train"] == 3 and report["dropped"] == 1


def test_run_download_embedded_without_a_world_says_how_to_build_it(tmp_path):
    with pytest.raises(data.DataError, match="gfm world build"):
        data.run_download("embedded", tmp_path / "out", data_root=tmp_path / "nothing")
    with pytest.raises(ValueError, match="'embedded' or 'real'"):
        data.run_download("internet", tmp_path / "out", data_root=tmp_path)


def _official_am2k(rng) -> bytes:
    """A small AM-2k zip in the official layout (wrapped in AM-2k/), one 16-bit and one RGBA mask."""
    members = {"AM-2k/readme.txt": b"AM-2k"}
    for split, names in (("train", ["m_01", "m_02", "m_03"]), ("validation", ["m_04", "m_05"])):
        for name in names:
            image, alpha = _sample(rng)
            members[f"AM-2k/{split}/original/{name}.jpg"] = image
            mask = alpha
            if name == "m_02":
                mask = alpha.astype(np.uint16) * 257
            if name == "m_04":
                mask = np.dstack([np.zeros_like(alpha)] * 3 + [alpha])
            members[f"AM-2k/{split}/mask/{name}.png"] = _png(mask)
            if split == "validation":
                members[f"AM-2k/{split}/trimap/{name}.png"] = _png(np.where(alpha > 0, 128, 0).astype(np.uint8))
    return _zip(members)


def test_end_to_end_real_route_from_a_local_server(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    am2k = _official_am2k(rng)
    bg = _tar([(f"BG-20k/train/h_{i}.jpg", _jpg(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))) for i in range(3)]
              + [("BG-20k/testval/h_t.jpg", _jpg(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)))])
    coco = _zip({f"train2014/COCO_train2014_{i:012d}.jpg": _jpg(rng.integers(0, 256, (20, 26, 3), dtype=np.uint8))
                 for i in range(2)})
    route = server.add("/AM-2k.zip", am2k, drop_after=len(am2k) // 2)
    server.add("/BG-20k.tar.gz", bg, fail_times=2)
    server.add("/train2014.zip", coco)
    monkeypatch.setitem(data.REGISTRY, "am2k", dataclasses.replace(
        data.REGISTRY["am2k"], urls=(server.url("/AM-2k.zip"),), filename="AM-2k.zip", archive="zip"))
    monkeypatch.setitem(data.REGISTRY, "bg20k", dataclasses.replace(
        data.REGISTRY["bg20k"], urls=(server.url("/BG-20k.tar.gz"),), filename="BG-20k.tar.gz", archive="auto"))
    monkeypatch.setitem(data.REGISTRY, "coco", dataclasses.replace(data.REGISTRY["coco"], urls=(server.url("/train2014.zip"),)))
    lock = tmp_path / "data.lock.json"
    out = tmp_path / "artifacts" / "datasets"

    report = data.run_download("real", out, downloads=tmp_path / "downloads", lock_file=lock,
                               sources="am2k,bg20k,coco", retries=3, **FAST)
    assert len(route.hits) == 2  # the dropped transfer was retried
    assert report["counts"] == {"am2k/train": 3, "am2k/validation": 2, "bg_candidates": 4, "coco": 2}
    assert report["converted"] == 2
    assert {"am2k/AM-2k.zip", "bg20k/BG-20k.tar.gz", "coco/train2014.zip"} == set(json.loads(lock.read_text())["files"])
    for split, names in (("train", ["m_01", "m_02", "m_03"]), ("validation", ["m_04", "m_05"])):
        s = layout.matting_split(out, split)
        assert s.names() == names
        for name in names:
            stored = cv2.imread(str(s.mask_path(name)), cv2.IMREAD_UNCHANGED)
            assert stored.dtype == np.uint8 and stored.ndim == 2
            assert stored.shape == cv2.imread(str(s.image_path(name))).shape[:2]
    assert sorted(p.name for p in (out / layout.BG_CANDIDATES).iterdir()) == ["h_0.jpg", "h_1.jpg", "h_2.jpg", "h_t.jpg"]

    hits = len(route.hits)
    again = data.run_download("real", out, downloads=tmp_path / "downloads", lock_file=lock,
                              sources=["am2k", "bg20k", "coco"], **FAST)
    assert len(route.hits) == hits and again["counts"] == report["counts"]  # verified cache, nothing fetched


def test_registry_lists_the_paper_datasets_and_the_seven_checkpoints():
    checkpoints = {s.name: (s.backbone, s.rosta) for s in data.REGISTRY.values() if s.kind == "checkpoint"}
    assert checkpoints == {"gfm_d121_tt": ("d121", "TT"), "gfm_r34_tt": ("r34", "TT"), "gfm_r34_ft": ("r34", "FT"),
                           "gfm_r34_bt": ("r34", "BT"), "gfm_r34_2b_tt": ("r34_2b", "TT"),
                           "gfm_r101_tt": ("r101", "TT"), "gfm_d121_rim": ("d121", "RIM")}
    assert {"am2k", "bg20k", "coco", "p3m10k"} <= set(data.REGISTRY)
    assert dict(data.REGISTRY["am2k"].layout)["validation/trimap"] == "am2k/validation/trimap"
    assert {dst for _, dst in data.REGISTRY["bg20k"].layout} == {layout.BG_CANDIDATES}
    with pytest.raises(ValueError, match="unsupported URL"):
        data.Source("x", "x", urls=("ftp://host/x",), filename="x", archive="zip", layout=())
    with pytest.raises(ValueError, match="unknown source 'imagenet'"):
        data.download("am2k,imagenet", "unused")


# --- table and figures ---------------------------------------------------------------------------

def test_summary_table_and_figures(tmp_path):
    world = _fake_world(tmp_path / "data")
    out = tmp_path / "datasets"
    data.run_download("embedded", out, data_root=world)
    table = data.summarise(out)
    rows = {(r.set, r.split): r for r in table.itertuples()}
    assert (rows["am2k", "train"].images, rows["am2k", "train"].masks, rows["am2k", "train"].trimaps) == (4, 4, 0)
    assert rows["am2k", "validation"].trimaps == 2 and rows["am2k", "validation"].min_short_side == 24
    assert rows["bg_candidates", ""].images == 4 and rows["coco", ""].median_width == 30
    fig = data.plot_samples(out, "train", n=2)
    assert len(fig.axes) == 6 and fig.axes[2].get_title().startswith("trimap (generated")
    fig = data.plot_samples(out, "validation", n=5)
    assert len(fig.axes) == 6 and fig.axes[2].get_title() == "trimap"
    fig = data.plot_resolutions(out)
    assert len(fig.axes) == 4 and "1 unreadable" in fig.axes[2].get_xlabel()
