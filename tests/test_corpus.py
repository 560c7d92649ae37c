"""The bad-input corpus of issue 13: every hostile or unlucky input the issue tried, built here and
sent through the public entry points, with the exact behaviour each must keep.

One table, :data:`CASES` (it closes the module), one row per case: an id ``<area>/<what>``, the
builder that makes the bad input and returns the call, and what must come out -- the error raised
(or the exit code of ``gfm matte``, or ``None`` for a call that must succeed), fragments of the
message that name the file and the problem, how many lines the message has, and the exact
set of paths (``fnmatch`` patterns, relative to the case's folder) the call adds, changes or
removes: nothing else changes and nothing half-written remains. A builder yields its call once;
the code after its ``yield`` checks what else must hold (a route not retried, the old checkpoint
still whole, the next run recovering).

The rows follow issue 13: items 1-10 (checkpoint payloads, first downloads, the pixel cap, masks,
archive destinations, ``gfm matte``, parameters, litter, EXIF, messages), the checks of "What to
build", and what the issue found handled well (archive traversal, links and bombs; truncated, empty
and fake images; 404, 5xx, resume, checksums; the training checkpoint after an interrupted save).
A case that does not behave as the issue asks is marked ``xfail(strict=True)`` with what it does
instead. Downloads run against a local HTTP server on 127.0.0.1 (``tests/httpserver.py``); payloads
are harmless (they would create a file); nothing is trained (resuming bit-identically after a real
interrupted run needs training: ``tests/test_train.py`` covers it).
"""

from __future__ import annotations

import errno
import fnmatch
import io
import json
import os
import pickle
import re
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import gfm.matte as gfm_matte
from gfm.bg20k.build import build_bg20k
from gfm.cli import main
from gfm.core.config import ConfigError, load_params, parse_params, to_dict
from gfm.core.io import MAX_PIXELS_ENV, ImageError, read_alpha, read_image, sha256_file, write_image
from gfm.data.archive import extract_archive
from gfm.data.errors import ChecksumError, ContentError, DataError, DownloadError, UnsafeArchiveError
from gfm.data.fetch import fetch_url
from gfm.data.materialise import download, materialise
from gfm.data.registry import Source
from gfm.data.validate import validate_pairs
from gfm.evaluate.metrics import sad
from gfm.model.checkpoint import (CHECKPOINT_FILE, MODEL_FILE, RUN_FORMAT, CheckpointError, ModelSpec,
                                  load_training_state, save_training_state)
from gfm.model.infer import load_model
from gfm.train.loop import TrainConfig, train

from httpserver import QUOTA_PAGE, VIRUS_PAGE, LocalServer, Route, jpg, png, sha, tar_bytes, zip_bytes

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
FAST = {"backoff": 0.01, "timeout": 10.0, "progress": False}
MATTE_FAST = ("--device", "cpu", "--d1", "1", "--d2", "1", "--quiet")


def pytest_generate_tests(metafunc):
    """One test per row of :data:`CASES`."""
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])


def test_bad_input(case, bench, capsys):
    steps = case.build(bench)
    call = next(steps)
    before = _tree(bench.root)
    capsys.readouterr()
    outcome, message = _run(call, case.expect, capsys)
    names = {"root": bench.root, "url": bench.url("")}
    for fragment in case.says:
        assert fragment.format(**names) in message, f"{fragment.format(**names)!r} is not in the message:\n{message}"
    assert "Traceback" not in message and "weights_only" not in message, message
    if case.lines is not None:
        assert len(message.splitlines()) == case.lines, message
    _assert_changes(before, _tree(bench.root), case.leaves)
    _then(steps, outcome)


# --------------------------------------------------------------------------------------------
# The bench a case is built on, and how a case is run and judged
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One row of the corpus (module docstring)."""

    id: str
    build: Callable[[Bench], Iterator]
    expect: type[BaseException] | int | None
    says: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()
    lines: int | None = None
    marks: tuple = ()


@dataclass(frozen=True)
class Bench:
    """A case's folder (``root``), the local HTTP server (routes under ``/<root's name>/``),
    ``monkeypatch`` and the conftest factory of training run folders."""

    root: Path
    server: LocalServer
    monkeypatch: pytest.MonkeyPatch
    make_run: Callable

    def url(self, name: str) -> str:
        return self.server.url(f"/{self.root.name}/{name}".rstrip("/"))

    def serve(self, name: str, body: bytes, **behaviour) -> Route:
        return self.server.add(f"/{self.root.name}/{name}", body, **behaviour)


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def bench(tmp_path, server, monkeypatch, make_run) -> Bench:
    return Bench(tmp_path, server, monkeypatch, make_run)


def _run(call, expect, capsys) -> tuple[object, str]:
    """(outcome, message): a command's exit code and stderr, the error raised, or the call's value."""
    if isinstance(expect, int):
        try:
            code = call()
        except SystemExit as error:  # argparse's usage errors
            code = error.code
        err = capsys.readouterr().err
        assert code == expect, err
        return code, err
    if expect is None:
        return call(), ""
    with pytest.raises(expect) as error:
        call()
    return error.value, str(error.value)


def _tree(root: Path) -> dict[str, str]:
    """``{relative path: sha256 | "folder" | "link -> target"}`` of everything under ``root``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            else:
                found[rel] = "folder" if path.is_dir() else sha256_file(path)
    return found


def _assert_changes(before: dict, after: dict, leaves: tuple[str, ...]) -> None:
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    stray = [p for p in changed if not any(fnmatch.fnmatchcase(p, pattern) for pattern in leaves)]
    missing = [pattern for pattern in leaves if not any(fnmatch.fnmatchcase(p, pattern) for p in changed)]
    assert not stray and not missing, (f"changed, not expected: {stray}; expected, not changed: {missing} "
                                       f"(all changes: {changed})")


def _then(steps: Iterator, outcome) -> None:
    """Run what a builder checks after its ``yield``."""
    try:
        steps.send(outcome)
    except StopIteration:
        return
    raise AssertionError("a builder yields its call once")


# --------------------------------------------------------------------------------------------
# Inputs shared by several cases
# --------------------------------------------------------------------------------------------

class Payload:
    """Pickles as a call to ``open(marker, "w")``: an unsafe load creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(bench: Bench) -> Payload:
    """A payload that would create ``<root>/ran`` (no case may leave it), shown live first: plain
    pickle runs it on a control file."""
    control = bench.root / "control"
    pickle.loads(pickle.dumps(Payload(control))).close()
    assert control.is_file(), "the payload is not live"
    control.unlink()
    return Payload(bench.root / "ran")


def _run_folder_with_payload(bench: Bench) -> Path:
    """A run folder whose model.pt has the shape of :func:`gfm.model.checkpoint.save_run`'s, with a
    payload where the weights belong."""
    run = bench.root / "run"
    run.mkdir()
    torch.save({"format": RUN_FORMAT, "spec": ModelSpec("r18_lite").to_dict(), "state_dict": _payload(bench),
                "extra": {}}, run / MODEL_FILE)
    return run


def _photo(path: Path, h: int = 40, w: int = 56, seed: int = 0) -> Path:
    write_image(path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _phone_photo(path: Path) -> Path:
    """A JPEG stored landscape (64 wide, 40 high) with EXIF orientation 6: a viewer shows it portrait (40 wide,
    64 high). One flat colour, so that the BG-20k builder finds nothing salient in it."""
    rgb = np.full((40, 64, 3), (90, 140, 200), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, exif=exif.tobytes())
    return path


def _matte_pixels(h: int = 40, w: int = 56) -> np.ndarray:
    """A uint8 matte: a 20 x 28 rectangle of foreground (560 pixels), its top row half transparent."""
    alpha = np.zeros((h, w), np.uint8)
    alpha[10:30, 14:42] = 255
    alpha[10, 14:42] = 128
    return alpha


def _split(root: Path, masks: dict[str, np.ndarray], images: tuple[str, ...]) -> Path:
    """A matting split ``root/{original,mask}``: 40 x 56 photos ``images`` and ``masks`` by stem
    (RGB / RGBA arrays are written as such)."""
    for stem in images:
        _photo(root / "original" / f"{stem}.jpg")
    for stem, mask in masks.items():
        write_image(root / "mask" / f"{stem}.png", mask)
    return root


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG of about 100 bytes whose header (IHDR) declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _never_decoded(*args, **kwargs):
    raise AssertionError("the image was decoded")


def _matte(*argv) -> Callable[[], int]:
    """``gfm matte ARGV`` in this process -> its exit code."""
    return lambda: main(["matte", *map(str, argv)])


def _process(*argv) -> int:
    """``python -m gfm.cli ARGV`` in a new process -> its exit code (its stderr goes to ours)."""
    done = subprocess.run([sys.executable, "-m", "gfm.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, check=False)
    sys.stderr.write(done.stderr)
    return done.returncode


def _resume_config(bench: Bench) -> TrainConfig:
    """A resumed run of r18_lite on a one-sample ORI-Track set, configured the pipeline's way
    (params.yaml parsed by gfm.core.config); its run folder is ``<root>/runs/tiny/s0``."""
    datasets = bench.root / "datasets"
    _photo(datasets / "am2k" / "train" / "original" / "s0.png", 32, 32)
    write_image(datasets / "am2k" / "train" / "mask" / "s0.png", _matte_pixels(32, 32))
    raw = to_dict(load_params(ROOT / "params.yaml"))
    raw["device"] = "cpu"
    raw["data"]["datasets"] = str(datasets)
    raw["train"].update(out=str(bench.root / "runs"), input_size=32, crop_sizes=[32], seeds=[0], precision="fp32",
                        workers=0, cache=False, ema=0.0)
    raw["train"]["experiments"] = {"tiny": {
        "track": "ori", "data": f"{datasets}/am2k/train", "backbone": "r18_lite", "rosta": "TT", "decoder": "two",
        "ppm": "five", "bridge": True, "epochs": 1, "batch_size": 1}}
    raw["evaluate"].update(experiments=["tiny"], table6_model="tiny")
    config = TrainConfig.from_params(parse_params(raw, source="corpus params"), "tiny", 0, resume=True, progress=False)
    config.run_dir.mkdir(parents=True)
    return config


def _downloads(bench: Bench) -> Path:
    (bench.root / "dl").mkdir()
    return bench.root / "dl"


def _source(bench: Bench, name: str, filename: str, archive: str = "zip") -> Source:
    return Source(name, name, urls=(bench.url(filename),), filename=filename, archive=archive,
                  layout=(("*", f"files/{name}"),))


def _lock(bench: Bench) -> dict:
    return json.loads((bench.root / "lock.json").read_text())["files"]


HELLO = b"hello world"


# --------------------------------------------------------------------------------------------
# 1. Code execution from a checkpoint; 6. checkpoints gfm matte cannot use
# --------------------------------------------------------------------------------------------

def _payload_via_matte(bench):
    yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", _run_folder_with_payload(bench),
                 "--out", bench.root / "out", "--device", "cpu")


def _payload_via_evaluate(bench):
    yield partial(load_model, _run_folder_with_payload(bench))  # what the evaluate stage calls


def _payload_via_resume(bench):
    config = _resume_config(bench)
    torch.save({"model": _payload(bench), "config": config.to_dict()}, config.run_dir / CHECKPOINT_FILE)
    yield partial(train, config)


def _payload_via_official(bench):
    path = bench.root / "gfm_r34_tt.pth"
    torch.save({"decoder0_g.0.weight": _payload(bench)}, path)
    yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", path, "--official", "r34-tt", "--out",
                 bench.root / "out", "--device", "cpu")


def _official_file(content: Callable[[Path], None]):
    """``gfm matte --official r34-tt`` on ``<root>/gfm.pth`` written by ``content(path)``."""
    def build(bench):
        path = bench.root / "gfm.pth"
        content(path)
        yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", path, "--official", "r34-tt", "--out",
                     bench.root / "out", "--device", "cpu")
    return build


def _official_on_a_run_folder(bench):
    bench.make_run(bench.root / "run")
    yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", bench.root / "run", "--official", "r34-tt",
                 "--out", bench.root / "out", "--device", "cpu")


def _run_folder_holding_a_list(bench):
    (bench.root / "run").mkdir()
    torch.save([1, 2, 3], bench.root / "run" / MODEL_FILE)
    yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", bench.root / "run", "--out", bench.root / "out",
                 "--device", "cpu")


def _resume_from_a_truncated_checkpoint(bench):
    config = _resume_config(bench)
    path = save_training_state(config.run_dir / CHECKPOINT_FILE,
                               {"model": config.spec.build().state_dict(), "config": config.to_dict()})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    yield partial(train, config)


def _stale_staging_beside_a_checkpoint(bench):
    config = _resume_config(bench)  # a save killed mid-write left its staging file; this run stops early
    path = save_training_state(config.run_dir / CHECKPOINT_FILE,
                               {"model": config.spec.build().state_dict(), "config": config.to_dict()})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    stale = config.run_dir / ".checkpoint.pt.k1ll3d0x.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    yield partial(train, config)
    assert not stale.exists()


def _resume_from_another_network(bench):
    config = _resume_config(bench)  # r18_lite TT; the checkpoint holds r18_lite FT (2 glance classes, not 3)
    save_training_state(config.run_dir / CHECKPOINT_FILE,
                        {"model": ModelSpec("r18_lite", "FT").build().state_dict(), "config": config.to_dict()})
    yield partial(train, config)


def _save_a_numpy_array(bench):
    yield partial(save_training_state, bench.root / "c.pt", {"step": 1, "rng": np.zeros(3)})


def _legacy_run_folder(bench):
    bench.make_run(bench.root / "run", legacy=True)  # model.pt a bare state dict, its network in train_summary.json
    _, meta = yield partial(load_model, bench.root / "run")
    assert (meta["backbone"], meta["rosta"]) == ("r18_lite", "TT")


def _save_interrupted_mid_write(bench):
    path = save_training_state(bench.root / "run" / CHECKPOINT_FILE, {"step": 1, "model": {"w": torch.ones(3)}})

    def interrupted(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 the first bytes of a checkpoint")
        raise KeyboardInterrupt

    bench.monkeypatch.setattr(torch, "save", interrupted)
    yield partial(save_training_state, path, {"step": 2, "model": {"w": torch.zeros(3)}})
    state = load_training_state(path)  # what a resumed run reads: the last complete save
    assert state["step"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))


# --------------------------------------------------------------------------------------------
# 2. Downloads: nothing locked unchecked; and the download cases handled well
# --------------------------------------------------------------------------------------------

def _quota_page_first_download(bench):
    downloads = _downloads(bench)
    route = bench.serve("q.zip", QUOTA_PAGE, content_type="text/html; charset=utf-8")
    source = _source(bench, "q", "q.zip")
    yield partial(download, [source], downloads, lock_file=bench.root / "lock.json", **FAST)
    body = zip_bytes({"a.txt": b"a" * 4000})
    route.body, route.content_type = body, "application/zip"  # the quota is over: the next run gets the file
    roots = download([source], downloads, lock_file=bench.root / "lock.json", **FAST)
    assert (roots["q"] / "a.txt").read_bytes() == b"a" * 4000 and _lock(bench)["q/q.zip"]["sha256"] == sha(body)


def _cut_short_without_length(bench):
    body = zip_bytes({f"f{i}.bin": np.random.default_rng(i).bytes(3000) for i in range(4)})
    bench.serve("c.zip", body, content_length=False, cut_at=len(body) - 40)
    yield partial(download, [_source(bench, "c", "c.zip")], _downloads(bench), lock_file=bench.root / "lock.json",
                  **FAST)


def _stale_part_of_unrelated_bytes(bench):
    downloads = _downloads(bench)
    body = zip_bytes({"a.txt": b"a" * 3000})
    route = bench.serve("p.zip", body)
    (downloads / "p.zip.part").write_bytes(b"PK\x03\x04 bytes of another object, left by a killed run")
    roots = yield partial(download, [_source(bench, "p", "p.zip")], downloads, lock_file=bench.root / "lock.json",
                          **FAST)
    assert route.hits == [None]  # asked from byte 0: nothing appended to bytes of unknown origin
    assert (roots["p"] / "a.txt").read_bytes() == b"a" * 3000 and _lock(bench)["p/p.zip"]["sha256"] == sha(body)


def _part_of_a_changed_object(bench):
    dest = _downloads(bench) / "o.bin"
    old, new = np.random.default_rng(1).bytes(50_000), np.random.default_rng(2).bytes(50_000)
    route = bench.serve("o.bin", old, drop_after=20_000)
    with pytest.raises(DownloadError):
        fetch_url(bench.url("o.bin"), dest, retries=0, **FAST)  # cut off: the part and its validator stay
    old_etag, route.body = route.validators()["ETag"], new  # the object on the server changed since
    got = yield partial(fetch_url, bench.url("o.bin"), dest, **FAST)
    assert got.read_bytes() == new
    assert route.hits[-1].startswith("bytes=") and route.if_ranges[-1] == old_etag  # resume asked, refused


def _dripping_server(bench):
    bench.serve("slow.bin", b"z" * 2000, drip=0.02)  # 40 s for the whole body
    started = time.monotonic()
    yield partial(fetch_url, bench.url("slow.bin"), _downloads(bench) / "slow.bin", deadline=0.5, chunk_size=64,
                  **FAST)
    assert time.monotonic() - started < 3


def _html_where_an_archive_belongs(page: bytes):
    def build(bench):
        bench.serve("v.zip", page, content_type="text/html")
        yield partial(fetch_url, bench.url("v.zip"), _downloads(bench) / "v.zip", expect="zip", **FAST)
    return build


def _image_where_a_checkpoint_belongs(bench):
    bench.serve("m.pth", png(np.zeros((4, 4), np.uint8)))
    yield partial(fetch_url, bench.url("m.pth"), _downloads(bench) / "m.pth", expect="torch", **FAST)


def _shorter_than_its_content_length(bench):
    bench.serve("short.bin", np.random.default_rng(3).bytes(50_000), cut_at=20_000)  # every answer ends early
    yield partial(fetch_url, bench.url("short.bin"), _downloads(bench) / "short.bin", retries=1, **FAST)


def _not_found(bench):
    route = bench.serve("missing.zip", b"", status=404)
    yield partial(fetch_url, bench.url("missing.zip"), _downloads(bench) / "missing.zip", retries=5, **FAST)
    assert len(route.hits) == 1  # not retried


def _always_5xx(bench):
    route = bench.serve("down.bin", b"x" * 1000, fail_times=10, fail_status=503)
    yield partial(fetch_url, bench.url("down.bin"), _downloads(bench) / "down.bin", retries=2, **FAST)
    assert len(route.hits) == 3


def _5xx_then_fine(bench):
    route = bench.serve("flaky.bin", b"x" * 1000, fail_times=2)
    got = yield partial(fetch_url, bench.url("flaky.bin"), _downloads(bench) / "flaky.bin", retries=3, **FAST)
    assert got.read_bytes() == b"x" * 1000 and len(route.hits) == 3


def _dropped_connection(bench):
    body = np.random.default_rng(4).bytes(100_000)
    route = bench.serve("big.bin", body, drop_after=30_000)
    got = yield partial(fetch_url, bench.url("big.bin"), _downloads(bench) / "big.bin", retries=2, chunk_size=4096,
                        **FAST)
    assert got.read_bytes() == body and route.hits[0] is None and route.hits[1].startswith("bytes=")
    assert route.if_ranges[1] == route.validators()["ETag"]


def _checksum_mismatch(bench):
    bench.serve("c.bin", HELLO)
    yield partial(fetch_url, bench.url("c.bin"), _downloads(bench) / "c.bin", sha256="0" * 64, **FAST)


def _bad_cached_file(bench):
    downloads = _downloads(bench)
    body = zip_bytes({"a.txt": b"a" * 4000})
    route = bench.serve("s.zip", body)
    (downloads / "s.zip").write_bytes(body[:-50])  # placed by hand, cut short, in no lock file
    yield partial(download, [_source(bench, "s", "s.zip")], downloads, lock_file=bench.root / "lock.json", **FAST)
    assert route.hits == []  # nothing fetched, nothing decided for the user


# --------------------------------------------------------------------------------------------
# 3. The pixel cap; and the image files handled well
# --------------------------------------------------------------------------------------------

TRUNCATED_PNG = png(np.random.default_rng(5).integers(0, 256, (40, 56, 3), dtype=np.uint8))[:3000]
TRUNCATED_JPEG = jpg(np.random.default_rng(6).integers(0, 256, (40, 56, 3), dtype=np.uint8))[:2000]


def _header_declaring(width: int, height: int, cap: str | None = None):
    def build(bench):
        path = bench.root / "huge.png"
        path.write_bytes(_png_declaring(width, height))
        if cap is not None:
            bench.monkeypatch.setenv(MAX_PIXELS_ENV, cap)
        bench.monkeypatch.setattr(cv2, "imdecode", _never_decoded)
        yield partial(read_image, path)
    return build


def _image_file(name: str, blob: bytes):
    def build(bench):
        (bench.root / name).write_bytes(blob)
        yield partial(read_image, bench.root / name)
    return build


def _over_the_cap_via_matte(bench):
    _photo(bench.root / "in" / "ok.png")
    (bench.root / "in" / "huge.png").write_bytes(_png_declaring(8000, 6000))
    bench.monkeypatch.setenv(MAX_PIXELS_ENV, "10_000_000")
    bench.make_run(bench.root / "run")
    yield _matte(bench.root / "in", "--checkpoint", bench.root / "run", "--out", bench.root / "out", *MATTE_FAST)


def _bad_images_via_matte(bench):
    folder = bench.root / "in"
    _photo(folder / "ok.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "fake.png").write_text("not an image")
    (folder / "trunc.png").write_bytes(TRUNCATED_PNG)
    bench.make_run(bench.root / "run")
    yield _matte(folder, "--checkpoint", bench.root / "run", "--out", bench.root / "out", *MATTE_FAST)


# --------------------------------------------------------------------------------------------
# 4. Masks; 5. archive destinations; and the archives handled well
# --------------------------------------------------------------------------------------------

def _red_channel_matte(strict: bool):
    def build(bench):
        red = np.dstack([_matte_pixels(), np.zeros((40, 56, 2), np.uint8)])  # RGB: the matte in R only
        split = _split(bench.root / "split", {"s0": red, "s1": _matte_pixels()}, ("s0", "s1"))
        report = yield partial(validate_pairs, split, strict=strict)
        if not strict:
            assert report["pairs"] == 1 and report["dropped"] == 1 and report["converted"] == 0
            assert any(w.startswith(f"dropped: {split}/mask/s0.png: mask is RGB and its channels differ")
                       for w in report["warnings"]), report["warnings"]
    return build


def _red_channel_matte_read_directly(bench):
    write_image(bench.root / "m.png", np.dstack([_matte_pixels(), np.zeros((40, 56, 2), np.uint8)]))
    yield partial(read_alpha, bench.root / "m.png")


def _strict_with_a_conversion_pending(bench):
    rgba = np.dstack([np.zeros((40, 56, 3), np.uint8), _matte_pixels()])  # converted by a lenient run
    split = _split(bench.root / "split", {"s0": rgba, "s1": _matte_pixels(), "s9": _matte_pixels()}, ("s0", "s1"))
    yield partial(validate_pairs, split, strict=True)


def _extract_into_a_folder_gfm_did_not_make(bench):
    (bench.root / "dest").mkdir()
    (bench.root / "dest" / "keep.txt").write_text("mine")
    (bench.root / "a.zip").write_bytes(zip_bytes({"a.txt": b"a"}))
    yield partial(extract_archive, bench.root / "a.zip", bench.root / "dest")


def _unpack(blob: bytes, suffix: str, **options):
    """``extract_archive(<root>/a.<suffix>, <root>/dest)``: a member escaping ``dest`` lands in ``root``."""
    def build(bench):
        (bench.root / f"a.{suffix}").write_bytes(blob)
        yield partial(extract_archive, bench.root / f"a.{suffix}", bench.root / "dest", **options)
    return build


def _zip_symlink(name: str, target: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def _tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info


def _case_colliding_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Data/A.jpg", b"x")
        zf.writestr("data/a.jpg", b"y")
    return buf.getvalue()


RANDOM_TAR_GZ = tar_bytes([("a.bin", np.random.default_rng(7).bytes(20_000)),
                           ("b.bin", np.random.default_rng(8).bytes(20_000))])


# --------------------------------------------------------------------------------------------
# 6. gfm matte: arguments and output folder before the model, outputs in pairs, signals; 9. EXIF
# --------------------------------------------------------------------------------------------

def _matte_with(*options):
    """``gfm matte`` with ``options`` and a --checkpoint that does not exist: an argument error that
    names the argument shows it was found before any model was loaded."""
    def build(bench):
        yield _matte(_photo(bench.root / "cat.png"), "--checkpoint", bench.root / "no-model", "--out",
                     bench.root / "out", *options)
    return build


def _usage_error_in_a_process(bench):
    """What a shell sees: ``python -m gfm.cli matte ... --max-side 8`` in a new process."""
    yield partial(_process, "matte", _photo(bench.root / "cat.png"), "--checkpoint", bench.root / "no-model", "--out",
                  bench.root / "out", "--max-side", "8")


def _out_is_a_file(bench):
    (bench.root / "out").write_text("a file")
    yield from _matte_with()(bench)


def _out_read_only(bench):
    (bench.root / "out").mkdir(mode=0o500)
    if os.access(bench.root / "out", os.W_OK):
        pytest.skip("this user may write into any folder (root)")
    yield from _matte_with()(bench)


def _full_disk_during_matte(bench):
    _photo(bench.root / "in" / "cat.png")
    bench.make_run(bench.root / "run")
    real, writes = gfm_matte.write_image, []

    def full_disk_on_the_second_file(path, image, *args, **kwargs):
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, image, *args, **kwargs)

    bench.monkeypatch.setattr(gfm_matte, "write_image", full_disk_on_the_second_file)
    yield _matte(bench.root / "in" / "cat.png", "--checkpoint", bench.root / "run", "--out", bench.root / "out",
                 *MATTE_FAST)
    assert len(writes) == 2


def _signal_during_matte(signum: int):
    def build(bench):
        for name in ("a", "b", "c"):
            _photo(bench.root / "in" / f"{name}.png")
        bench.make_run(bench.root / "run")
        real, calls = gfm_matte.matte_image, []

        def signalled_on_the_second_image(*args, **kwargs):
            calls.append(args[1])
            if len(calls) == 2:
                os.kill(os.getpid(), signum)
                time.sleep(5)  # the handler interrupts this
            return real(*args, **kwargs)

        bench.monkeypatch.setattr(gfm_matte, "matte_image", signalled_on_the_second_image)
        handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        yield _matte(bench.root / "in", "--checkpoint", bench.root / "run", "--out", bench.root / "out", *MATTE_FAST)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    return build


def _phone_photo_via_matte(bench):
    bench.make_run(bench.root / "run")
    yield _matte(_phone_photo(bench.root / "phone.jpg"), "--checkpoint", bench.root / "run", "--out",
                 bench.root / "out", *MATTE_FAST)
    assert cv2.imread(str(bench.root / "out" / "phone_alpha.png"), cv2.IMREAD_UNCHANGED).shape == (64, 40)


def _phone_photo_via_bg20k(bench):
    _phone_photo(bench.root / "candidates" / "phone.jpg")
    yield partial(build_bg20k, bench.root / "candidates", bench.root / "bg20k", min_short_side=32, short_side=40,
                  saliency_threshold=1.0, val_fraction=0.0, workers=1, progress=False)
    shape = cv2.imread(str(bench.root / "bg20k" / "train" / "phone.jpg")).shape[:2]
    assert shape == (64, 40), f"the background is {shape[1]} x {shape[0]}: the stored pixels, not the upright photo"


# --------------------------------------------------------------------------------------------
# 7. Parameters; 8. litter of a killed run; 10. messages
# --------------------------------------------------------------------------------------------

def _params_line(line: str, replacement: str):
    """``load_params`` of the repository's params.yaml with ``line`` replaced (a typo by hand)."""
    def build(bench):
        text, found = re.subn(rf"^{re.escape(line)}\b", replacement, (ROOT / "params.yaml").read_text(), flags=re.MULTILINE)
        assert found == 1, f"params.yaml has no line {line!r}"
        (bench.root / "params.yaml").write_text(text)
        yield partial(load_params, bench.root / "params.yaml")
    return build


KILLED_BUILD = ("import os, sys\nfrom gfm.core.io import atomic_dir\n"
                "with atomic_dir(sys.argv[1]) as tmp:\n"
                "    (tmp / 'half.png').write_bytes(bytes(1000))\n"
                "    os.kill(os.getpid(), int(sys.argv[2]))\n")


def _killed_build(signum: int):
    """A datasets build killed by ``signum`` (no Python cleanup runs), then the next stage-1 run."""
    def build(bench):
        datasets = bench.root / "datasets"
        killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(datasets), str(int(signum))], cwd=ROOT,
                                timeout=300, check=False)
        assert killed.returncode == -signum
        litter = [p.name for p in bench.root.iterdir()]
        assert len(litter) == 1 and fnmatch.fnmatchcase(litter[0], ".datasets.*.tmp"), litter
        report = yield partial(materialise, {}, datasets, strict=True)
        assert report["datasets"] == str(datasets)
    return build


def _just_above_one(bench):
    gt = np.full((4, 5), 0.5)
    pred = gt.copy()
    pred[2, 3] = 1 + 1e-9
    yield partial(sad, pred, gt)


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------

_REFUSED = "refused, nothing in it was run: its pickle would call"
_LINKS = "; archives holding links are refused"

CASES = [
    # 1. a checkpoint whose pickle carries a __reduce__ payload: refused by every reader, never run
    Case("checkpoint/payload-in-run-folder-via-matte", _payload_via_matte, 2,
         (f"gfm matte: error: {{root}}/run/model.pt: {_REFUSED}", "which is not plain data"), ("out",), lines=1),
    Case("checkpoint/payload-in-run-folder-via-evaluate", _payload_via_evaluate, CheckpointError,
         (f"{{root}}/run/model.pt: {_REFUSED}",)),
    Case("checkpoint/payload-in-training-resume", _payload_via_resume, CheckpointError,
         (f"{{root}}/runs/tiny/s0/checkpoint.pt: {_REFUSED}",)),
    Case("checkpoint/payload-via-matte-official", _payload_via_official, 2,
         (f"gfm matte: error: {{root}}/gfm_r34_tt.pth: {_REFUSED}",), ("out",), lines=1),
    # 6. checkpoints that cannot be used: one line, exit 2, the file named
    Case("checkpoint/official-empty-file", _official_file(lambda p: p.write_bytes(b"")), 2,
         ("gfm matte: error: {root}/gfm.pth: empty file, not a checkpoint",), ("out",), lines=1),
    Case("checkpoint/official-random-bytes",
         _official_file(lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())),
         2, ("gfm matte: error: {root}/gfm.pth: not a PyTorch checkpoint",), ("out",), lines=1),
    Case("checkpoint/official-pickled-model-object",
         _official_file(lambda p: torch.save(ModelSpec("r18_lite").build(), p)), 2,
         (f"gfm matte: error: {{root}}/gfm.pth: {_REFUSED}",), ("out",), lines=1),
    Case("checkpoint/official-pointed-at-a-run-folder", _official_on_a_run_folder, 2,
         (("gfm matte: error: {root}/run: a training run folder of this project, not a released GFM checkpoint; "
           "load it without --official"),), ("out",), lines=1),
    Case("checkpoint/run-model-pt-holding-a-list", _run_folder_holding_a_list, 2,
         ("gfm matte: error: {root}/run/model.pt: holds a list of 3 items, not a GFM run file",), ("out",), lines=1),
    Case("checkpoint/resume-from-a-truncated-checkpoint", _resume_from_a_truncated_checkpoint, CheckpointError,
         ("{root}/runs/tiny/s0/checkpoint.pt: not a readable PyTorch checkpoint, truncated or corrupt",)),
    Case("checkpoint/resume-from-a-checkpoint-of-another-network", _resume_from_another_network, CheckpointError,
         ("{root}/runs/tiny/s0/checkpoint.pt", "does not match")),
    Case("litter/checkpoint-staging-of-a-killed-save-removed-at-the-next-run", _stale_staging_beside_a_checkpoint,
         CheckpointError, ("{root}/runs/tiny/s0/checkpoint.pt: not a readable PyTorch checkpoint",),
         ("runs/tiny/s0/.checkpoint.pt.k1ll3d0x.tmp.pt",)),
    Case("checkpoint/save-refuses-what-is-not-plain-data", _save_a_numpy_array, TypeError,
         ("{root}/c.pt: state['rng'] is a numpy.ndarray, not plain checkpoint data",)),
    Case("checkpoint/legacy-run-folder-still-loads", _legacy_run_folder, None),
    Case("checkpoint/save-interrupted-mid-write-keeps-the-last-one", _save_interrupted_mid_write, KeyboardInterrupt),

    # 2. first downloads: checked before anything is locked; the next run recovers
    Case("download/quota-page-with-status-200-never-locked", _quota_page_first_download, ContentError,
         (("{url}/q.zip: an HTML page where a zip archive was expected: Google Drive's download quota for this "
           "file is exceeded"), "nothing was written to {root}/dl/q.zip")),
    Case("download/body-cut-short-without-content-length", _cut_short_without_length, ContentError,
         ("{url}/c.zip: truncated or corrupt zip archive", "nothing was written to {root}/dl/c.zip")),
    Case("download/stale-part-of-unrelated-bytes-restarts", _stale_part_of_unrelated_bytes, None, (),
         ("dl/p.zip.part", "dl/p.zip", "dl/p.unpacked", "dl/p.unpacked/*", "lock.json")),
    Case("download/part-of-a-changed-object-restarts", _part_of_a_changed_object, None, (),
         ("dl/o.bin", "dl/o.bin.part", "dl/o.bin.part.json")),
    Case("download/dripping-server-cut-off-at-the-deadline", _dripping_server, DownloadError,
         ("{url}/slow.bin: not complete after the deadline of 0.5 s",
          "kept in {root}/dl/slow.bin.part and resumed next time", "nothing was written to {root}/dl/slow.bin"),
         ("dl/slow.bin.part", "dl/slow.bin.part.json")),
    Case("download/virus-scan-page", _html_where_an_archive_belongs(VIRUS_PAGE), ContentError,
         ("{url}/v.zip: an HTML page where a zip archive was expected: Google Drive's virus-scan page",
          "nothing was written to {root}/dl/v.zip")),
    Case("download/image-where-a-checkpoint-belongs", _image_where_a_checkpoint_belongs, ContentError,
         ("{url}/m.pth: an image where a torch checkpoint was expected",)),
    Case("download/shorter-than-its-content-length", _shorter_than_its_content_length, DownloadError,
         ("{url}/short.bin: failed after 2 attempt(s): the body ended after",
          "of the 50000 bytes of its Content-Length", "nothing was written to {root}/dl/short.bin"),
         ("dl/short.bin.part", "dl/short.bin.part.json")),
    Case("download/404-not-retried", _not_found, DownloadError,
         ("{url}/missing.zip: HTTP 404 Not Found (not retried); nothing was written to {root}/dl/missing.zip",)),
    Case("download/5xx-every-time", _always_5xx, DownloadError,
         ("{url}/down.bin: failed after 3 attempt(s): HTTP 503", "nothing was written to {root}/dl/down.bin")),
    Case("download/5xx-then-fine", _5xx_then_fine, None, (), ("dl/flaky.bin",)),
    Case("download/dropped-connection-resumed", _dropped_connection, None, (), ("dl/big.bin",)),
    Case("download/checksum-mismatch", _checksum_mismatch, ChecksumError,
         ("{url}/c.bin: sha256 " + sha(HELLO) + " differs from the expected " + "0" * 64,
          "nothing was written to {root}/dl/c.bin")),
    Case("download/bad-cached-file-says-how-to-refresh", _bad_cached_file, ContentError,
         ("cached download {root}/dl/s.zip: truncated or corrupt zip archive", "pass refresh=True",
          "gfm.data.materialise.forget('s', '{root}/dl', '{root}/lock.json')")),

    # 3. the pixel cap, checked on the header before anything is decoded
    Case("image/header-declaring-20000x20000", _header_declaring(20000, 20000), ImageError,
         ("{root}/huge.png: its header declares 400,000,000 pixels", "not decoded")),
    Case("image/over-the-pixel-cap", _header_declaring(8000, 6000, cap="10_000_000"), ImageError,
         (("{root}/huge.png: 8000 x 6000 = 48,000,000 pixels declared in its header, more than the cap of "
           "10,000,000; not decoded (raise the cap with GFM_MAX_PIXELS"),)),
    Case("image/over-the-pixel-cap-via-matte", _over_the_cap_via_matte, 1,
         ("gfm matte: {root}/in/huge.png: 8000 x 6000 = 48,000,000 pixels", "; skipped"),
         ("out", "out/ok_alpha.png", "out/ok_cutout.png"), lines=1),
    # handled well: truncated, empty and fake images are named (and skipped by gfm matte)
    Case("image/truncated-png", _image_file("t.png", TRUNCATED_PNG), ImageError,
         ("{root}/t.png: not a readable image",)),
    Case("image/truncated-jpeg", _image_file("t.jpg", TRUNCATED_JPEG), ImageError,
         ("{root}/t.jpg: not a readable image",)),
    Case("image/empty-file", _image_file("e.png", b""), ImageError, ("{root}/e.png: empty file",)),
    Case("image/text-named-jpg", _image_file("fake.jpg", b"not an image"), ImageError,
         ("{root}/fake.jpg: not a readable image",)),
    Case("image/bad-images-named-and-skipped-via-matte", _bad_images_via_matte, 1,
         ("gfm matte: {root}/in/empty.jpg: empty file; skipped", "gfm matte: {root}/in/fake.png: not a readable image",
          "gfm matte: {root}/in/trunc.png: not a readable image"), ("out", "out/ok_alpha.png", "out/ok_cutout.png"),
         lines=3),

    # 4. masks: a colour matte whose channels differ is refused, and strict validation changes nothing
    Case("mask/matte-in-the-red-channel-strict", _red_channel_matte(strict=True), DataError,
         ("{root}/split: 1 problem(s) (strict=True; nothing was changed)",
          "{root}/split/mask/s0.png: mask is RGB and its channels differ at 560 of 2240 pixels")),
    Case("mask/matte-in-the-red-channel-lenient-drops-the-pair", _red_channel_matte(strict=False), None, (),
         ("split/original/s0.jpg", "split/mask/s0.png")),
    Case("mask/matte-in-the-red-channel-read-directly", _red_channel_matte_read_directly, ImageError,
         ("{root}/m.png: an RGB matte whose channels differ at 560 of 2240 pixels",)),
    Case("mask/strict-validation-checks-everything-before-converting", _strict_with_a_conversion_pending, DataError,
         ("{root}/split: 1 problem(s) (strict=True; nothing was changed)",
          "{root}/split/mask/s9.png: mask without an image in {root}/split/original")),

    # 5. and handled well: archives refused before anything is written
    Case("archive/extract-into-a-folder-gfm-did-not-make", _extract_into_a_folder_gfm_did_not_make, DataError,
         ("{root}/dest: folder is not empty and was not unpacked by gfm", "refusing to replace it")),
    Case("archive/zip-traversal", _unpack(zip_bytes({"../evil.txt": b"x"}), "zip"), UnsafeArchiveError,
         ("{root}/a.zip: member '../evil.txt' contains '..'",)),
    Case("archive/zip-absolute-path", _unpack(zip_bytes({"/tmp/gfm-corpus-evil.txt": b"x"}), "zip"),
         UnsafeArchiveError, ("{root}/a.zip: member '/tmp/gfm-corpus-evil.txt' has an absolute path",)),
    Case("archive/zip-symlink", _unpack(_zip_symlink("link", b"../../outside"), "zip"), UnsafeArchiveError,
         (f"{{root}}/a.zip: member 'link' is a symbolic link{_LINKS}",)),
    Case("archive/zip-names-equal-ignoring-case", _unpack(_case_colliding_zip(), "zip"), UnsafeArchiveError,
         ("{root}/a.zip: member 'data/a.jpg' lands on the path of member 'Data/A.jpg'",)),
    Case("archive/zip-bomb", _unpack(zip_bytes({"zeros.bin": bytes(2_000_000)}), "zip", max_unpacked_bytes=1_000_000),
         UnsafeArchiveError,
         ("{root}/a.zip: declared unpacked size exceeds max_unpacked_bytes=1000000 (at member 'zeros.bin')",)),
    Case("archive/tar-traversal", _unpack(tar_bytes([("../evil.txt", b"x")]), "tar.gz"), UnsafeArchiveError,
         ("{root}/a.tar.gz: member '../evil.txt' contains '..'",)),
    Case("archive/tar-symlink",
         _unpack(tar_bytes([("ok.txt", b"x"), _tar_member("link", tarfile.SYMTYPE, "/etc/passwd")]), "tar.gz"),
         UnsafeArchiveError,
         (f"{{root}}/a.tar.gz: member 'link' is a symbolic link to '/etc/passwd'{_LINKS}",)),
    Case("archive/tar-hardlink",
         _unpack(tar_bytes([_tar_member("hard", tarfile.LNKTYPE, "../../etc/passwd")]), "tar.gz"),
         UnsafeArchiveError, (f"{{root}}/a.tar.gz: member 'hard' is a hard link to '../../etc/passwd'{_LINKS}",)),
    Case("archive/tar-device", _unpack(tar_bytes([_tar_member("dev/null", tarfile.CHRTYPE)]), "tar.gz"),
         UnsafeArchiveError,
         ("{root}/a.tar.gz: member 'dev/null' is a device file or FIFO",)),
    # 10. truncated archives name the file
    Case("archive/truncated-zip", _unpack(zip_bytes({"a.txt": b"a" * 4000})[:-60], "zip"), ContentError,
         ("{root}/a.zip: truncated or corrupt zip archive (BadZipFile",)),
    Case("archive/truncated-tar-gz", _unpack(RANDOM_TAR_GZ[: len(RANDOM_TAR_GZ) // 2], "tar.gz"), ContentError,
         ("{root}/a.tar.gz: truncated or corrupt tar.gz archive",)),

    # 6. gfm matte: usage errors found before the model loads (exit 2, one line), outputs in pairs, signals
    Case("matte/bad-d", _matte_with("--d", "0"), 2,
         ("gfm matte: error: argument --d: expected a number > 0, got '0'",), lines=1),
    Case("matte/bad-d1", _matte_with("--d1", "-3"), 2,
         ("gfm matte: error: argument --d1: expected a number > 0, got '-3'",), lines=1),
    Case("matte/bad-max-side", _matte_with("--max-side", "16"), 2,
         ("gfm matte: error: argument --max-side: expected a whole number of pixels >= 32, got '16'",), lines=1),
    Case("matte/bad-strategy", _matte_with("--strategy", "fast"), 2,
         ("gfm matte: error: argument --strategy: invalid choice: 'fast'",), lines=1),
    Case("matte/usage-error-in-a-real-process", _usage_error_in_a_process, 2,
         ("gfm matte: error: argument --max-side: expected a whole number of pixels >= 32, got '8'",), lines=1),
    Case("matte/out-is-a-file", _out_is_a_file, 2,
         ("gfm matte: error: --out {root}/out: exists and is not a folder",), lines=1),
    Case("matte/out-read-only", _out_read_only, 2,
         ("gfm matte: error: --out {root}/out: not a writable folder (Permission denied)",), lines=1),
    Case("matte/missing-checkpoint", _matte_with(), 2, ("gfm matte: error: {root}/no-model: no such checkpoint",),
         ("out",), lines=1),
    Case("matte/full-disk-writes-neither-file", _full_disk_during_matte, 1,
         ("gfm matte: {root}/in/cat.png: ", "No space left on device", "; skipped"), ("out",), lines=1),
    Case("matte/sigint", _signal_during_matte(signal.SIGINT), 130,
         ("gfm matte: interrupted by SIGINT: 1 of 3 image(s) matted into {root}/out",),
         ("out", "out/a_alpha.png", "out/a_cutout.png"), lines=1),
    Case("matte/sigterm", _signal_during_matte(signal.SIGTERM), 143,
         ("gfm matte: interrupted by SIGTERM: 1 of 3 image(s) matted into {root}/out",),
         ("out", "out/a_alpha.png", "out/a_cutout.png"), lines=1),

    # 7. parameters refused when read, before any stage work, one line per problem naming file and key
    Case("params/typo-in-a-key", _params_line("  source: embedded", "  sorce: real"), ConfigError,
         ("{root}/params.yaml: data.sorce: unknown key (did you mean 'data.source'?)",), lines=1),
    Case("params/probability-below-zero", _params_line("  p_blur: 0.5", "  p_blur: -0.5"), ConfigError,
         ("{root}/params.yaml: compose.p_blur: must be in [0, 1], got -0.5",), lines=1),
    Case("params/maybe-is-not-a-bool", _params_line("  strict: true", "  strict: maybe"), ConfigError,
         ("{root}/params.yaml: data.strict: expected a YAML bool (true or false), got string 'maybe'",), lines=1),

    # 8. the staging a killed build leaves is removed by the next run
    Case("staging/sigkill-litter-removed-by-the-next-run", _killed_build(signal.SIGKILL), None, (),
         ("datasets", "datasets/summary.json", ".datasets.*.tmp", ".datasets.*.tmp/half.png")),
    Case("staging/sigterm-litter-removed-by-the-next-run", _killed_build(signal.SIGTERM), None, (),
         ("datasets", "datasets/summary.json", ".datasets.*.tmp", ".datasets.*.tmp/half.png")),

    # 9. EXIF orientation honoured wherever images are read
    Case("exif/phone-photo-via-matte", _phone_photo_via_matte, 0, (),
         ("out", "out/phone_alpha.png", "out/phone_cutout.png"), lines=0),
    Case("exif/phone-photo-via-bg20k-builder", _phone_photo_via_bg20k, None, (),
         ("bg20k", "bg20k/train", "bg20k/testval", "bg20k/train/phone.jpg", "bg20k/manifest.csv")),

    # 10. a value just above 1 is shown as it is, with where it is
    Case("metrics/value-just-above-one", _just_above_one, ValueError,
         ("pred must lie in [0, 1]: 1 value(s) outside, the first 1.000000001 at row 2, column 3",)),
]
