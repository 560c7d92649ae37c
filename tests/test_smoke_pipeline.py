"""The real path end to end (issue 12): the whole DVC pipeline, download through report, under the
paper-smoke profile (profiles/paper-smoke.yaml: the paper profile's structure at toy sizes), in a
throw-away copy of the project, against small releases of AM-2k, BG-20k, P3M-10k, the COCO backgrounds
and a released GFM checkpoint in their official layouts (tests/realworld.py), served on 127.0.0.1 as a
download mirror (GFM_MIRROR), with the r34 backbone initialised from a local weights file.

It checks that every stage ran, that the downloads were verified and locked, that the report has the
paper's tables on both benchmarks (AM-2k and PM-10k, released as P3M-10k), and that a second
``dvc repro`` runs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
import yaml

from gfm.core import profiles
from gfm.model.checkpoint import load_official
from httpserver import LocalServer, sha
from realworld import mirror_files, serve_mirror

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROFILE = "paper-smoke"
#: The stage notebook each stage of dvc.yaml executes (``train@<experiment>``: 04_train_<experiment>).
NOTEBOOKS = {"download": "01_download", "bg20k": "02_bg20k", "compose": "03_rssn", "train": "04_train_{}",
             "evaluate": "05_evaluate", "paper": "06_paper", "matte": "07_matte"}
#: The subprocesses' environment: this venv's tools first, no proxy between them and the local server.
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
       "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def test_the_sample_profile_undoes_the_smoke_profile(tmp_path):
    """`gfm profile sample` after `gfm profile paper-smoke` gives params.yaml back: the smoke profile
    names no key that the sample profile does not restore."""
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    changed = profiles.apply(PROFILE, params)
    assert changed["data.source"] == ("embedded", "real") and changed["compose.mode"] == ("offline", "online")
    profiles.apply("sample", params)
    assert yaml.safe_load(params.read_text()) == yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The paper-smoke profile's ``dvc repro``, run twice in a copy of the project; yields
    ``(project, first run, second run, mirror files, mirror URL, seconds of the first run)``."""
    project = _copy_project(tmp_path_factory.mktemp("smoke"))
    env = {**ENV, "TORCH_HOME": str(tmp_path_factory.mktemp("torch_home"))}
    _run([sys.executable, "-m", "gfm.cli", "profile", PROFILE], project, env)
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / params["data"]["lock_file"]).unlink(missing_ok=True)  # it would refuse these stand-in releases
    _write_resnet34(project / params["train"]["pretrained"])
    files = mirror_files()
    with LocalServer() as server:
        env["GFM_MIRROR"] = serve_mirror(server, files)
        started = time.monotonic()
        first = _run(["dvc", "repro"], project, env)
        seconds = time.monotonic() - started
        second = _run(["dvc", "repro"], project, env)
    yield project, first, second, files, env["GFM_MIRROR"], seconds


def test_every_stage_ran_once_and_a_second_repro_does_nothing(smoke):
    project, first, second, _, _, seconds = smoke
    stages = _run(["dvc", "stage", "list", "--name-only"], project).stdout.split()
    assert {name.split("@")[0] for name in stages} == {*NOTEBOOKS, "html"}, stages
    for name in stages:
        assert f"Running stage '{name}'" in first.stdout, f"stage {name} did not run:\n{first.stdout[-3000:]}"
    for name in stages:
        if name == "html":
            continue
        prefix, _, key = name.partition("@")
        notebook = NOTEBOOKS[prefix].format(key)
        executed = json.loads((project / "reports" / "notebooks" / f"{notebook}.ipynb").read_text())
        assert executed["metadata"]["papermill"]["exception"] in (None, False), notebook
        details = json.loads((project / "metrics" / "run" / f"{notebook}.json").read_text())
        assert 0 < details["wall_s"] <= seconds, (notebook, details)
    assert (project / "reports" / "html" / "index.html").is_file()

    assert "Running stage" not in second.stdout, second.stdout
    status = _run(["dvc", "status", "--json"], project).stdout
    assert json.loads(status or "{}") == {}, status


def test_the_downloads_came_from_the_mirror_verified_and_locked(smoke):
    project, _, _, files, mirror, _ = smoke
    params = yaml.safe_load((project / "params.yaml").read_text())
    lock = json.loads((project / params["data"]["lock_file"]).read_text())["files"]
    assert {key: (entry["sha256"], entry["url"]) for key, entry in lock.items()} == {
        key: (sha(blob), f"{mirror}/{key}") for key, blob in files.items() if key != "data.lock.json"}
    download = json.loads((project / "metrics" / "download.json").read_text())
    assert download["source"] == "real" and download["benchmarks"] == {"am2k": 4, "p3m500p": 2, "p3m500np": 2}
    assert download["counts"]["am2k/train"] == 6 and download["counts"]["pretrained"] == 1
    assert json.loads((project / "metrics" / "bg20k.json").read_text())["mode"] == "official"  # passed through

    released = project / params["data"]["datasets"] / "pretrained" / "gfm_r34_tt.pth"
    assert load_official(released, "r34", "TT").training is False  # the official naming, loaded strictly


def test_the_report_has_the_paper_tables_on_both_benchmarks(smoke):
    """Table 1 on AM-2k and on each P3M-10k test set (PM-10k's release), and Table 5's EN-median, hold
    this run's numbers (metrics/evaluate.json); every other table of the paper is written."""
    project, *_ = smoke
    params = yaml.safe_load((project / "params.yaml").read_text())
    evaluate = json.loads((project / "metrics" / "evaluate.json").read_text())
    paper = project / params["report"]["out"] / "paper"
    tables = {path.stem: pd.read_csv(path) for path in sorted(paper.glob("table*.csv"))}
    assert {f"table{i}" for i in range(1, 8)} <= set(tables), sorted(tables)
    assert params["evaluate"]["benchmarks"] == ["am2k", "p3m500p", "p3m500np"]
    assert _holds(tables["table1"], evaluate["ori-tt-r"]["sad"]), "Table 1 has no AM-2k number of this run"
    for benchmark in ("p3m500p", "p3m500np"):
        sad = evaluate["benchmarks"][benchmark]["ori-tt-r"]["sad"]
        assert _holds(tables.get(f"table1_{benchmark}", pd.DataFrame()), sad), f"Table 1 on {benchmark}: no {sad}"
    en_median = next(value["sad"] for key, value in evaluate["table5"].items() if "+" in key)  # TT+FT+BT
    assert _holds(tables["table5"], en_median), "Table 5 has no EN-median of this run"
    pages = {path.name for path in (project / params["report"]["out"] / "html").rglob("*.html")}
    assert "index.html" in pages and any("06_paper" in page for page in pages), sorted(pages)


# --- helpers -------------------------------------------------------------------------------------

def _holds(table: pd.DataFrame, value: float) -> bool:
    """Whether a number of ``table`` equals ``value`` (to the 4 decimals of the metrics JSON)."""
    return bool((np.abs(table.select_dtypes("number").to_numpy() - value) < 1e-3).any())


def _run(args, cwd, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env or ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed in {cwd}:\n{result.stdout[-6000:]}\n"
                             f"{result.stderr[-6000:]}")
    return result


def _copy_project(dst: Path) -> Path:
    """A git copy of the project as a fresh clone has it (tracked and new files, not ignored ones)."""
    names = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file() and not name.startswith("artifacts/"):
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        _run(args, dst)
    return dst


def _write_resnet34(path: Path) -> None:
    """torchvision's ResNet-34 state dict, randomly initialised, where ``train.pretrained`` names it
    (the file torchvision's ImageNet weights come in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
