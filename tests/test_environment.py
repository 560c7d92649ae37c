"""environment.yml (conda) and pyproject.toml (pip) must describe the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge package names that differ from their PyPI names
CONDA_TO_PYPI = {"pytorch": "torch", "py-opencv": "opencv-python-headless"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> tuple[set[str], str, list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip, python = set(), [], None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep["pip"])
        elif _name(dep) == "python":
            python = dep.split("=", 1)[1]
        else:
            conda.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    return conda | {_name(p) for p in pip if not p.startswith("-e")}, python, pip


def test_every_dependency_is_provided_by_environment_yml():
    project = _pyproject()["project"]
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    provided, _, _ = _environment()
    assert wanted - provided == set(), "missing from environment.yml"
    assert provided - wanted - {"pip"} == set(), "environment.yml has packages pyproject.toml lacks"


def test_python_version_agrees():
    _, python, _ = _environment()
    spec = _pyproject()["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", spec).group(1)
    high = re.search(r"<\s*3\.(\d+)", spec).group(1)
    minor = int(python.split(".")[1])
    assert int(low) <= minor < int(high), f"environment.yml python {python} outside {spec}"


def test_environment_installs_the_project_itself():
    _, _, pip = _environment()
    assert "-e ." in pip


def test_constraints_pin_every_dependency():
    pins = {_name(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    project = _pyproject()["project"]
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert wanted - pins == set(), "constraints.txt lacks an exact pin; run `make lock`"
