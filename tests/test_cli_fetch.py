"""``gfm fetch-checkpoint`` (gfm.cli) against a local HTTP server on 127.0.0.1 (the registry's URLs
monkeypatched to it) and gdown monkeypatched: the file written, its sha256 recorded then verified
through the lock file, atomic landing and resume, spec or registry names, one-line errors naming the
URL and the problem, the listing, and plain help text — all offline."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gfm.cli import build_parser, main
from gfm.data import fetch, registry
from gfm.data.registry import REGISTRY

from httpserver import QUOTA_PAGE, LocalServer, sha, torch_zip, write_file, zip_bytes

#: The released checkpoints as the error for an unknown name lists them: registry name (--official spec).
RELEASED = ("gfm_d121_tt (d121-tt)", "gfm_r34_tt (r34-tt)", "gfm_r34_ft (r34-ft)", "gfm_r34_bt (r34-bt)",
            "gfm_r34_2b_tt (r34_2b-tt)", "gfm_r101_tt (r101-tt)", "gfm_d121_rim (d121-rim)")


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def paths(tmp_path) -> SimpleNamespace:
    return SimpleNamespace(out=tmp_path / "ckpt", lock=tmp_path / "lock.json")


def _serve(monkeypatch, server, name: str, body: bytes | None, **route):
    """Point the registry entry ``name`` at ``/<name>.pth`` on the local server (serving ``body``;
    None: nothing there, a 404); return the route (None for a 404) and the URL."""
    path = f"/{name}.pth"
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], urls=(server.url(path),)))
    return (server.add(path, body, **route) if body is not None else None), server.url(path)


def _fetch(paths, *names: str) -> int:
    return main(["fetch-checkpoint", *names, "--out", str(paths.out), "--lock", str(paths.lock)])


def _lock(path: Path) -> dict:
    return json.loads(path.read_text())["files"]


def _checkpoint(seed: int, size: int = 2_000) -> bytes:
    """A distinct zip-format torch checkpoint (``archive/data.pkl``) of about ``size`` bytes."""
    return zip_bytes({"archive/data.pkl": np.random.default_rng(seed).bytes(size), "archive/version": b"3"})


def _matte_line(line: str) -> argparse.Namespace:
    """The printed ``gfm matte`` line parsed by the real parser (IMAGE_OR_DIR is the one placeholder)."""
    words = shlex.split(line)
    assert words[:3] == ["gfm", "matte", "IMAGE_OR_DIR"], line
    return build_parser().parse_args(words[1:])


def _one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("gfm fetch-checkpoint: error: "), err
    assert "Traceback" not in err
    return err.strip()


# --- fetching --------------------------------------------------------------------------------------

def test_a_spec_fetches_the_file_records_its_sha256_and_prints_the_matte_line(server, paths, monkeypatch, capsys):
    body = _checkpoint(0)
    route, url = _serve(monkeypatch, server, "gfm_r34_tt", body)
    assert _fetch(paths, "r34-tt") == 0
    printed = capsys.readouterr()
    path = paths.out / "gfm_r34_tt.pth"
    assert path.read_bytes() == body and sorted(p.name for p in paths.out.iterdir()) == ["gfm_r34_tt.pth"]
    assert _lock(paths.lock)["gfm_r34_tt/gfm_r34_tt.pth"] == {"sha256": sha(body), "size": len(body), "url": url}
    lines = printed.out.splitlines()
    assert lines[0] == f"{path}: gfm_r34_tt, GFM(r34)-TT trained on the AM-2k ORI-Track"
    assert lines[1] == f"  sha256 of {path}: {sha(body)}, recorded in {paths.lock} (first download; commit it)"
    args = _matte_line(lines[2])
    assert (args.official, args.checkpoint, args.strategy) == ("r34-tt", str(path), "hybrid")
    assert len(lines) == 3 and printed.err == ""

    assert _fetch(paths, "gfm_r34_tt") == 0  # present and matching the lock file: not fetched again
    assert len(route.hits) == 1
    assert capsys.readouterr().out.splitlines()[1] == f"  sha256 of {path}: {sha(body)}, verified against {paths.lock}"

    path.write_bytes(b"X" + body[1:])  # the copy in --out went bad: fetched again, said on one line
    assert _fetch(paths, "r34-tt") == 0
    err = capsys.readouterr().err
    assert err == (f"gfm fetch-checkpoint: warning: {path}: sha256 differs from the expected one ({paths.lock}); "
                   f"downloading it again\n")
    assert path.read_bytes() == body and len(route.hits) == 2


def test_several_names_registry_or_spec_each_fetched_once(server, paths, monkeypatch, capsys):
    bodies = {"gfm_r34_2b_tt": _checkpoint(1), "gfm_d121_rim": _checkpoint(2)}
    routes = {name: _serve(monkeypatch, server, name, body)[0] for name, body in bodies.items()}
    assert _fetch(paths, "gfm_r34_2b_tt", "D121-RIM", "gfm_d121_rim", "r34_2b-tt") == 0
    assert {p.name: p.read_bytes() for p in paths.out.iterdir()} == {f"{n}.pth": b for n, b in bodies.items()}
    assert [len(route.hits) for route in routes.values()] == [1, 1]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[0].startswith(f"{paths.out / 'gfm_r34_2b_tt.pth'}: gfm_r34_2b_tt, ")
    two_b, rim = _matte_line(lines[2]), _matte_line(lines[5])
    assert (two_b.official, two_b.checkpoint) == ("r34_2b-tt", str(paths.out / "gfm_r34_2b_tt.pth"))
    assert (rim.official, rim.checkpoint, rim.strategy) == ("d121-rim", str(paths.out / "gfm_d121_rim.pth"), "rim")
    assert set(_lock(paths.lock)) == {"gfm_r34_2b_tt/gfm_r34_2b_tt.pth", "gfm_d121_rim/gfm_d121_rim.pth"}


def test_a_checkpoint_released_inside_a_zip_is_found_in_its_unpacked_folder(server, paths, monkeypatch, capsys):
    inner = b"the checkpoint itself"
    release = zip_bytes({"GFM/gfm_r34_ft.pth": inner, "GFM/readme.txt": b"r34 ft"})  # a zip, not a torch zip
    _serve(monkeypatch, server, "gfm_r34_ft", release)
    assert _fetch(paths, "r34-ft") == 0
    lines = capsys.readouterr().out.splitlines()
    args = _matte_line(lines[2])
    path = Path(args.checkpoint)
    assert path.read_bytes() == inner and path.is_relative_to(paths.out / "gfm_r34_ft.unpacked")
    assert lines[0].startswith(f"{path}: gfm_r34_ft, ")
    assert lines[1] == f"  sha256 of {paths.out / 'gfm_r34_ft.pth'}: {sha(release)}, recorded in {paths.lock} " \
                       f"(first download; commit it)"


def test_a_pinned_checksum_is_verified_against_the_registry(server, paths, monkeypatch, capsys):
    body = _checkpoint(3)
    _serve(monkeypatch, server, "gfm_r101_tt", body)
    monkeypatch.setitem(REGISTRY, "gfm_r101_tt", dataclasses.replace(REGISTRY["gfm_r101_tt"], sha256=sha(body)))
    assert _fetch(paths, "r101-tt") == 0
    assert capsys.readouterr().out.splitlines()[1] == \
        f"  sha256 of {paths.out / 'gfm_r101_tt.pth'}: {sha(body)}, verified against the registry"


# --- failures: one line naming the URL and the problem, nothing half-written -----------------------

def test_a_checksum_mismatch_with_the_lock_file_is_one_line_and_writes_nothing(server, paths, monkeypatch, capsys):
    route, url = _serve(monkeypatch, server, "gfm_r34_tt", _checkpoint(4))
    registry.record_lock(paths.lock, "gfm_r34_tt", "gfm_r34_tt.pth", sha256="0" * 64, size=1, url="recorded earlier")
    locked = paths.lock.read_text()
    assert _fetch(paths, "r34-tt") == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith(f"gfm fetch-checkpoint: error: gfm_r34_tt: {url}: sha256 ")
    assert f"differs from the expected {'0' * 64}; the download was deleted and nothing was written to " \
           f"{paths.out / 'gfm_r34_tt.pth'}" in err
    assert list(paths.out.iterdir()) == [] and paths.lock.read_text() == locked and len(route.hits) == 1


def test_http_errors_are_one_line_each_and_the_other_names_are_still_fetched(server, paths, monkeypatch, capsys):
    _, missing = _serve(monkeypatch, server, "gfm_r34_tt", None)
    _, page = _serve(monkeypatch, server, "gfm_r34_bt", QUOTA_PAGE, content_type="text/html")
    good = _checkpoint(5)
    _serve(monkeypatch, server, "gfm_r34_ft", good)
    assert _fetch(paths, "r34-tt", "r34-bt", "r34-ft") == 1
    printed = capsys.readouterr()
    not_found, html = printed.err.splitlines()
    assert not_found.startswith(f"gfm fetch-checkpoint: error: gfm_r34_tt: {missing}: HTTP 404 Not Found (not "
                                f"retried); nothing was written to {paths.out / 'gfm_r34_tt.pth'}; or download "
                                f"gfm_r34_tt.pth from https://github.com/JizhiziLi/GFM#readme")
    assert html.startswith(f"gfm fetch-checkpoint: error: gfm_r34_bt: {page}: ")
    assert "an HTML page where a torch checkpoint" in html and "quota" in html.lower()
    assert [p.name for p in paths.out.iterdir()] == ["gfm_r34_ft.pth"]  # no page, no part, no 404 left
    assert set(_lock(paths.lock)) == {"gfm_r34_ft/gfm_r34_ft.pth"}  # bad bytes are never locked
    assert printed.out.startswith(f"{paths.out / 'gfm_r34_ft.pth'}: gfm_r34_ft, ")


def test_a_broken_transfer_never_lands_and_is_resumed_next_time(server, paths, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "time", SimpleNamespace(monotonic=time.monotonic, sleep=lambda seconds: None))
    body = _checkpoint(6, size=60_000)
    route, url = _serve(monkeypatch, server, "gfm_r34_tt", body, cut_at=20_000)
    assert _fetch(paths, "r34-tt") == 1
    err = _one_line_error(capsys.readouterr().err)
    part = paths.out / "gfm_r34_tt.pth.part"
    kept = part.stat().st_size
    assert 0 < kept <= 20_000 and len(route.hits) == 6
    assert err.startswith(f"gfm fetch-checkpoint: error: gfm_r34_tt: {url}: failed after 6 attempt(s): the body "
                          f"ended after {kept} of the {len(body)} bytes of its Content-Length")
    assert f"the {kept} bytes received are kept in {part} and resumed next time" in err
    assert sorted(p.name for p in paths.out.iterdir()) == ["gfm_r34_tt.pth.part", "gfm_r34_tt.pth.part.json"]
    assert not paths.lock.exists()

    route.cut_at = None  # the connection is back: the transfer resumes where it broke off
    assert _fetch(paths, "r34-tt") == 0
    assert route.hits[-1] == f"bytes={kept}-" and (paths.out / "gfm_r34_tt.pth").read_bytes() == body
    assert sorted(p.name for p in paths.out.iterdir()) == ["gfm_r34_tt.pth"]


def test_a_refused_connection_is_one_line(paths, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "time", SimpleNamespace(monotonic=time.monotonic, sleep=lambda seconds: None))
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/gfm_r34_tt.pth"
    monkeypatch.setitem(REGISTRY, "gfm_r34_tt", dataclasses.replace(REGISTRY["gfm_r34_tt"], urls=(url,)))
    assert _fetch(paths, "r34-tt") == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith(f"gfm fetch-checkpoint: error: gfm_r34_tt: {url}: failed after 6 attempt(s): ")
    assert f"nothing was written to {paths.out / 'gfm_r34_tt.pth'}" in err
    assert not (paths.out / "gfm_r34_tt.pth").exists()


def test_google_drive_refusal_then_a_file_placed_by_hand(paths, monkeypatch, capsys):
    import gdown

    file_id = REGISTRY["gfm_r34_tt"].urls[0].removeprefix(registry.GDRIVE)

    def quota(**kw):
        raise gdown.exceptions.FileURLRetrievalError(
            "Failed to retrieve file url:\n\n\tToo many users have viewed or downloaded this file recently. Please "
            "try accessing the file again later.\n\nYou may still be able to access the file from the browser")

    monkeypatch.setattr(gdown, "download", quota)
    assert _fetch(paths, "r34-tt") == 1
    err = _one_line_error(capsys.readouterr().err)
    target = paths.out / "gfm_r34_tt.pth"
    assert err.startswith(f"gfm fetch-checkpoint: error: gfm_r34_tt: gdrive:{file_id}: Google Drive refused the "
                          f"download (Failed to retrieve file url: Too many users")
    assert f"place it at {target} and run again" in err and not target.exists()

    def unexpected(**kw):
        raise AssertionError("a checkpoint placed by hand is not downloaded again")

    monkeypatch.setattr(gdown, "download", unexpected)
    write_file(target, torch_zip())
    assert _fetch(paths, "r34-tt") == 0
    assert f"recorded in {paths.lock}" in capsys.readouterr().out
    assert _lock(paths.lock)["gfm_r34_tt/gfm_r34_tt.pth"]["sha256"] == sha(torch_zip())

    write_file(paths.out / "gfm_r34_ft.pth", QUOTA_PAGE)  # the quota page saved by hand instead of the file
    assert _fetch(paths, "r34-ft") == 1
    err = _one_line_error(capsys.readouterr().err)
    assert f"gfm_r34_ft: cached download {paths.out / 'gfm_r34_ft.pth'}: an HTML page" in err
    assert "gfm_r34_ft/gfm_r34_ft.pth" not in _lock(paths.lock)


def test_an_interrupt_prints_one_line_and_lands_nothing(paths, monkeypatch, capsys):
    import gdown

    def interrupted(**kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(gdown, "download", interrupted)
    assert _fetch(paths, "r34-tt") == 130
    assert capsys.readouterr().err == "gfm fetch-checkpoint: interrupted\n"
    assert not (paths.out / "gfm_r34_tt.pth").exists() and not paths.lock.exists()


# --- usage errors: exit 2, one line, nothing fetched --------------------------------------------------

def test_an_unknown_name_lists_the_valid_ones_and_fetches_nothing(server, paths, monkeypatch, capsys):
    route, _ = _serve(monkeypatch, server, "gfm_r34_tt", _checkpoint(7))
    assert _fetch(paths, "r34-tt", "r50-tt", "am2k") == 2
    err = _one_line_error(capsys.readouterr().err)
    assert err == "gfm fetch-checkpoint: error: unknown checkpoint 'r50-tt', 'am2k'; known: " + ", ".join(RELEASED)
    assert route.hits == [] and not paths.out.exists() and not paths.lock.exists()

    assert _fetch(paths) == 2
    assert _one_line_error(capsys.readouterr().err) == \
        "gfm fetch-checkpoint: error: name at least one checkpoint (e.g. r34-tt), or pass --list to see them"


def test_an_unusable_out_folder_or_lock_file_is_a_usage_error(server, paths, monkeypatch, capsys):
    route, _ = _serve(monkeypatch, server, "gfm_r34_tt", _checkpoint(8))
    paths.out.write_text("a file")
    assert _fetch(paths, "r34-tt") == 2
    assert _one_line_error(capsys.readouterr().err) == \
        f"gfm fetch-checkpoint: error: --out {paths.out}: exists and is not a folder"
    paths.out.unlink()
    paths.lock.write_text("{not json")
    assert _fetch(paths, "r34-tt") == 2
    assert _one_line_error(capsys.readouterr().err).startswith(f"gfm fetch-checkpoint: error: {paths.lock}: not "
                                                               f"valid JSON")
    assert route.hits == [] and not paths.out.exists()


# --- listing and help -------------------------------------------------------------------------------

def test_list_shows_spec_paper_licence_page_and_checksum_state(paths, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    registry.record_lock(paths.lock, "gfm_r34_tt", "gfm_r34_tt.pth", sha256="a" * 64, size=1, url="u")
    monkeypatch.setitem(REGISTRY, "gfm_r34_ft", dataclasses.replace(REGISTRY["gfm_r34_ft"], sha256="b" * 64))
    assert main(["fetch-checkpoint", "--list", "--lock", str(paths.lock)]) == 0
    header, *rows, legend = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["NAME", "--official", "SHA256"]
    assert [" ".join(row.split()[:2]) for row in rows] == [r.replace("(", "").replace(")", "") for r in RELEASED]
    states = {row.split()[0]: row.split()[2] for row in rows}
    assert states == {"gfm_d121_tt": "unknown", "gfm_r34_tt": "locked", "gfm_r34_ft": "pinned",
                      "gfm_r34_bt": "unknown", "gfm_r34_2b_tt": "unknown", "gfm_r101_tt": "unknown",
                      "gfm_d121_rim": "unknown"}
    for row in rows:
        source = REGISTRY[row.split()[0]]
        assert source.paper in row and source.licence in row and row.endswith(source.page)
    assert legend.startswith("SHA256: pinned = given in the registry; locked = recorded in ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.json"]  # nothing fetched, no folder made

    assert main(["fetch-checkpoint", "--list", "d121-rim", "gfm_r34_tt", "--lock", str(paths.lock)]) == 0
    assert [row.split()[0] for row in capsys.readouterr().out.splitlines()[1:-1]] == ["gfm_d121_rim", "gfm_r34_tt"]


def test_help_is_plain_text_with_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "fetch-checkpoint" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch-checkpoint", "--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert exit_info.value.code == 0
    for default in ("(default: checkpoints)", "(default: data.lock.json)", "(default: off)"):
        assert default in flat, default
    for markup in ("``", ":func:", ":mod:", ":data:", ":class:", "%("):
        assert markup not in text, markup
    assert "gfm fetch-checkpoint r34-tt" in text and "exit codes:" in text
