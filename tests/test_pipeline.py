"""The DVC pipeline: data.dvc pins the committed world, a second repro does nothing, and a changed
parameter re-runs only the stages that read it. Runs in a throw-away copy of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(args, cwd, check=True):
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git copy of the project as a fresh clone would have it (tracked + new, not ignored files)."""
    dst = tmp_path_factory.mktemp("project")
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    run(["git", "init", "-q"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "copy"], dst)
    return dst


def stage_names(cwd) -> list[str]:
    out = run(["dvc", "stage", "list", "--name-only"], cwd).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def changed_stages(cwd) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], cwd).stdout or "{}")
    return {name.split(":")[-1] for name in status}


def test_data_dvc_pins_the_committed_world():
    spec = yaml.safe_load((ROOT / "data.dvc").read_text())
    assert "frozen" not in spec and "cmd" not in spec   # a data source: nothing to freeze, no warning per command
    (out,) = spec["outs"]
    assert out["path"] == "data" and out["cache"] is False and out["md5"].endswith(".dir")
    result = run(["dvc", "status", "--json", "data.dvc"], ROOT)
    assert json.loads(result.stdout or "{}") == {}, f"data/ differs from data.dvc: {result.stdout}"


def test_stages_are_named_as_the_paper_steps():
    names = stage_names(ROOT)
    prefixes = {name.split("@")[0] for name in names}
    assert "download" in prefixes
    assert prefixes <= {"download", "bg20k", "compose", "train", "evaluate", "paper", "matte", "html"}, names


def test_second_repro_does_nothing_and_params_rerun_only_their_stages(project):
    run(["dvc", "repro", "download"], project)
    again = run(["dvc", "repro", "download"], project)
    assert "didn't change" in again.stdout or "up to date" in again.stdout, again.stdout
    assert "WARNING" not in again.stdout + again.stderr, again.stdout + again.stderr
    assert "download" not in changed_stages(project)

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["strict"] = not params["data"]["strict"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "download" in changed_stages(project)
    params["data"]["strict"] = not params["data"]["strict"]
    params["bg20k"]["saliency_threshold"] = params["bg20k"]["saliency_threshold"] + 0.01
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "download" not in changed_stages(project), "a bg20k knob must not invalidate the download stage"
