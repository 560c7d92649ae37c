"""Committed results: a finished run of one profile, kept in the repository (issue 11, part 4).

The study profile takes most of two hours on a 2-core CPU, so its outputs are committed and a
reader sees them without running it. A results folder (``results/<name>/``) mirrors the project's
own paths, so that copying its ``metrics/`` and ``params.yaml`` over the project's lets
``dvc metrics diff`` / ``dvc params diff`` compare it with the checked-out run::

    run.json            profile, commit, machine (CPU, flags, native bf16, cores, torch), training
                        precision, wall time of the repro and of each stage, the files below
    params.yaml         what ran
    dvc.lock            the hash of every input and output
    metrics/            the run's metrics folder (findings.json, headline.json, train/, run/, ...)
    reports/paper/      the paper report's tables (CSV, HTML), findings.json and figures

:func:`save` copies a finished project into such a folder, :func:`load` reads one back and
:func:`discover` every one under ``results/``; :func:`compare` sets two findings files side by
side, claim by claim (the paper report and ``benchmarks/stability.py``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

import pandas as pd

from gfm.core.config import load_params
from gfm.core.io import atomic_dir, write_json
from gfm.report.inputs import read_json

__all__ = ["RUN_FILE", "CHANGES", "CommittedRun", "save", "load", "discover", "compare", "comparison_table",
           "brief", "main"]

RUN_FILE = "run.json"
#: How a claim's verdict moved from the first findings file to the second (:func:`compare`).
CHANGES = ("same", "flipped", "to_inconclusive", "from_inconclusive", "other")
_FLIP = {("reproduced", "contradicted"), ("contradicted", "reproduced")}


@dataclass(frozen=True)
class CommittedRun:
    """A results folder read back: ``name`` (its folder name), ``folder``, ``run`` (run.json),
    ``findings`` (its ``metrics/findings.json``) and ``paper`` (its report folder)."""

    name: str
    folder: Path
    run: dict
    findings: dict
    paper: Path

    def table(self, name: str) -> pd.DataFrame | None:
        """The paper report's table ``name`` (``table4``, ``findings``, ...) as written (CSV), or None."""
        path = self.paper / f"{name}.csv"
        return pd.read_csv(path) if path.is_file() else None

    def run_rows(self, name: str) -> pd.DataFrame | None:
        """The rows of table ``name`` that this run filled (an ``experiment``), without empty columns."""
        table = self.table(name)
        if table is None or "experiment" not in table:
            return table
        return table[table["experiment"].notna()].dropna(axis=1, how="all").reset_index(drop=True)

    def figure(self, name: str) -> Path | None:
        """The paper report's figure ``name`` (``forest``, ``training_curves``, ...), or None."""
        path = self.paper / f"{name}.png"
        return path if path.is_file() else None

    def describe(self) -> str:
        """One line: profile, commit, machine, precision, wall time."""
        run, machine = self.run, self.run.get("machine", {})
        precision = ", ".join(f"{p} ({len(e)} experiments)" for p, e in run.get("precision", {}).items())
        wall = run.get("wall_s")
        return (f"profile {run.get('profile')}, commit {str(run.get('commit'))[:12]}, "
                f"{machine.get('cpu', '?')} ({machine.get('cores', '?')} cores, "
                f"native bf16: {machine.get('native_bf16', '?')}), precision {precision or '?'}, "
                f"`{run.get('command')}` in {'?' if wall is None else f'{wall / 60:.1f} min'}"
                f", finished {run.get('finished_at', '?')}")


def save(project: str | Path, out: str | Path, *, wall_s: float | None = None, started_at: str | None = None,
         command: str = "dvc repro") -> Path:
    """Copy the finished run of ``project`` (a pipeline checkout after ``dvc repro``) into the results
    folder ``out``, written as a whole or not at all; -> ``out``.

    ``wall_s``, ``started_at``: the repro's wall time and start (ISO 8601), as the caller measured
    them; a stage's time counts as this repro's when it finished after ``started_at``.
    """
    project, out = Path(project), Path(out)
    params = load_params(project / "params.yaml")
    paths = {"params": "params.yaml", "lock": "dvc.lock", "metrics": params.report.metrics_dir,
             "findings": params.report.findings_out, "paper": f"{params.report.out}/paper"}
    absolute = [f"{key}: {path}" for key, path in paths.items() if Path(path).is_absolute()]
    if absolute:
        raise ValueError(f"{project / 'params.yaml'}: a results folder mirrors the project's relative paths; "
                         f"absolute: {', '.join(absolute)}")
    for key in ("lock", "findings", "paper"):
        if not (project / paths[key]).exists():
            raise FileNotFoundError(f"{project / paths[key]}: missing; run the pipeline to the end first "
                                    f"(`dvc repro`) before saving its results")
    run_dir = project / paths["metrics"] / "run"
    records = {path.stem: _read_json(path, "") for path in sorted(run_dir.glob("*.json"))}
    stages = _stage_runs(records, started_at)
    run = {"name": out.name, "profile": params.profile, "commit": _commit(project, outputs=(paths["metrics"], params.report.out)), "command": command,
           "started_at": started_at, "finished_at": max((s["finished_at"] for s in stages.values()), default=None),
           "wall_s": wall_s, "machine": _machine(records, stages),
           "precision": _precision(project / paths["metrics"] / "train", list(params.train.experiments)),
           "seeds": list(params.train.seeds), "experiments": list(params.train.experiments),
           "stages": stages, "files": paths}
    with atomic_dir(out) as tmp:
        for key in ("params", "lock", "metrics", "paper"):
            src, dst = project / paths[key], tmp / paths[key]
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        write_json(tmp / RUN_FILE, run)
    return out


def load(folder: str | Path) -> CommittedRun:
    """The results folder ``folder`` (written by :func:`save`); a ValueError names a missing or bad file."""
    folder = Path(folder)
    run = _read_json(folder / RUN_FILE, "not a results folder (gfm.report.results.save writes it)")
    files = run.get("files")
    if not isinstance(files, Mapping) or not {"findings", "paper"} <= set(files):
        raise ValueError(f"{folder / RUN_FILE}: no 'files' with 'findings' and 'paper' (written by "
                         f"gfm.report.results.save)")
    findings = _read_json(folder / files["findings"], "the run's judged claims are missing")
    if not isinstance(findings.get("claims"), Mapping):
        raise ValueError(f"{folder / files['findings']}: no 'claims' mapping (gfm.report.findings writes it)")
    return CommittedRun(name=folder.name, folder=folder, run=run, findings=findings, paper=folder / files["paper"])


def discover(results_dir: str | Path) -> list[CommittedRun]:
    """Every results folder directly under ``results_dir`` (none when it does not exist), by name."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return [load(folder) for folder in sorted(root.iterdir()) if folder.is_dir() and not folder.name.startswith(".")]


def compare(first: Mapping, second: Mapping) -> tuple[list[dict], dict]:
    """Two findings files (``{"claims": {...}}``) claim by claim -> (rows, counts).

    A row: ``claim``, ``kind``, ``change`` (one of :data:`CHANGES`: ``flipped`` is reproduced <->
    contradicted) and each side's :func:`brief`; ``counts``: rows per change.
    """
    a, b = first.get("claims", {}), second.get("claims", {})
    rows, counts = [], dict.fromkeys(CHANGES, 0)
    for claim in list(a) + [c for c in b if c not in a]:
        va, vb = a.get(claim, {}).get("verdict", "absent"), b.get(claim, {}).get("verdict", "absent")
        if va == vb:
            change = "same"
        elif (va, vb) in _FLIP:
            change = "flipped"
        elif vb == "inconclusive":
            change = "to_inconclusive"
        elif va == "inconclusive":
            change = "from_inconclusive"
        else:
            change = "other"
        counts[change] += 1
        rows.append({"claim": claim, "kind": a.get(claim, b.get(claim, {})).get("kind"), "change": change,
                     "first": brief(a.get(claim)), "second": brief(b.get(claim))})
    return rows, counts


def comparison_table(first: Mapping, second: Mapping, labels: tuple[str, str]) -> pd.DataFrame:
    """:func:`compare` as a table whose two verdict columns are named ``labels``."""
    rows, _ = compare(first, second)
    return pd.DataFrame([{"claim": r["claim"], "kind": r["kind"], labels[0]: r["first"], labels[1]: r["second"],
                          "change": r["change"].replace("_", " ")} for r in rows])


def brief(entry: Mapping | None) -> str:
    """A claim as ``verdict diff [lo, hi]`` (``absent`` when the file lacks it)."""
    if not entry:
        return "absent"
    verdict = entry.get("verdict", "?")
    diff, ci = entry.get("diff"), entry.get("ci95")
    if diff is None or not ci or None in ci:
        return verdict
    return f"{verdict} {diff:+.3g} [{ci[0]:+.3g}, {ci[1]:+.3g}]"


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm.report.results PROJECT OUT [--wall-s S] [--started-at T] [--command C]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gfm.report.results", description=save.__doc__.splitlines()[0])
    parser.add_argument("project", help="the finished pipeline checkout")
    parser.add_argument("out", help="the results folder to write, e.g. results/study")
    parser.add_argument("--wall-s", type=float, default=None, help="the repro's wall time in seconds")
    parser.add_argument("--started-at", default=None, help="when the repro started (ISO 8601)")
    parser.add_argument("--command", default="dvc repro", help="what was run (default: %(default)s)")
    args = parser.parse_args(argv)
    out = save(args.project, args.out, wall_s=args.wall_s, started_at=args.started_at, command=args.command)
    print(load(out).describe())
    return 0


def _read_json(path: Path, why: str) -> dict:
    if not path.is_file():
        raise ValueError(f"{path}: missing; {why}")
    content = read_json(path)
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(content).__name__}")
    return content


def _stage_runs(records: Mapping[str, Mapping], started_at: str | None) -> dict:
    """``{notebook: {wall_s, finished_at, commit, this_repro}}`` from the runner's records (``metrics/run/*.json``)."""
    start = datetime.fromisoformat(started_at) if started_at else None
    stages = {}
    for name, record in records.items():
        finished = record.get("finished_at")
        stages[name] = {"wall_s": record.get("wall_s"), "finished_at": finished, "commit": record.get("commit"),
                        "this_repro": None if start is None or not finished
                        else datetime.fromisoformat(finished) >= start}
    return stages


def _machine(records: Mapping[str, Mapping], stages: Mapping) -> dict:
    """The machine the stages of this repro ran on (the newest stage record's, as the runner wrote it)."""
    keys = ("cpu", "cpu_flags", "native_bf16", "cores", "torch", "python")
    ran = [name for name, s in stages.items() if s["this_repro"] is not False and s["finished_at"]]
    if not ran:
        return {}
    newest = max(ran, key=lambda name: stages[name]["finished_at"])
    return {key: records[newest].get(key) for key in keys}


def _precision(train_dir: Path, experiments: list[str]) -> dict:
    """``{precision: [experiment, ...]}`` as each experiment's training metrics record it."""
    found: dict[str, list[str]] = {}
    for name in experiments:
        path = train_dir / f"{name}.json"
        precision = _read_json(path, "").get("precision", "unknown") if path.is_file() else "not trained"
        found.setdefault(precision, []).append(name)
    return found


def _commit(project: Path, outputs: tuple[str, ...]) -> str | None:
    """The project's git commit, ``+dirty`` when a tracked file changed that is not params.yaml, dvc.lock
    or under ``outputs`` (what a repro rewrites); None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    prefixes = tuple(f"{folder.rstrip('/')}/" for folder in outputs)
    changed = [line[3:] for line in status.stdout.splitlines()
               if line[3:] not in ("params.yaml", "dvc.lock") and not line[3:].startswith(prefixes)]
    return head.stdout.strip() + ("+dirty" if changed else "")


if __name__ == "__main__":
    raise SystemExit(main())
