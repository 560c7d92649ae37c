"""Stability of the verdicts: the sample grid retrained with a disjoint set of seeds, both verdict tables side by side.

Copies the project into ``--workdir`` (the tracked files, ``dvc.lock``, and every output that
``dvc.lock`` records for the stages before training -- datasets, BG-20k, composites -- so that DVC
finds them up to date), sets ``train.seeds`` there to ``--seeds`` (default 3, 4, 5: disjoint from
params.yaml's 0, 1, 2), runs ``dvc repro paper`` (every ``train@<experiment>``, ``evaluate`` and the
judged findings) and prints, claim by claim, this project's ``metrics/findings.json`` next to the
copy's: verdict, paired difference and 95 % interval. Acceptance (issue 11): no claim flips between
``reproduced`` and ``contradicted``; the count moving to or from ``inconclusive`` is reported.
The exit status is 1 when a claim flips.

This retrains the whole grid (the sample profile: about as long as the train and evaluate stages of
``make repro``); run it on an otherwise idle machine::

    PYTHONPATH=. python benchmarks/stability.py [--seeds 3,4,5] [--workdir /tmp/gfm-stability] \\
        [--out benchmarks/results/stability.json]

``--compare A B`` only prints the side-by-side table of two findings files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from gfm.report.results import compare

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ("download", "bg20k", "compose")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3,4,5", help="comma-separated seeds of the second grid")
    parser.add_argument("--workdir", default=None, help="where the copy is made (default: a new temporary folder)")
    parser.add_argument("--out", default=None, help="also write both tables and the counts as JSON")
    parser.add_argument("--compare", nargs=2, metavar=("FIRST", "SECOND"),
                        help="only compare two findings.json files")
    args = parser.parse_args(argv)
    if args.compare:
        first, second = (_read(Path(p)) for p in args.compare)
        labels = tuple(Path(p).as_posix() for p in args.compare)
        seconds = None
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        first = _read(ROOT / "metrics" / "findings.json")
        own = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["seeds"]
        if set(seeds) & set(own):
            parser.error(f"--seeds {seeds} overlap params.yaml's train.seeds {own}: the grids must be disjoint")
        workdir = Path(args.workdir) if args.workdir else Path(
            subprocess.run(["mktemp", "-d", "-t", "gfm-stability.XXXX"], capture_output=True, text=True,
                           check=True).stdout.strip())
        start = time.perf_counter()
        second = _rerun(workdir, seeds)
        seconds = time.perf_counter() - start
        labels = (f"seeds {own}", f"seeds {seeds}")
    rows, counts = compare(first, second)
    print(render(rows, counts, labels))
    if seconds is not None:
        print(f"\nsecond grid: {seconds / 60:.1f} min")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"labels": labels, "rows": rows, "counts": counts,
                                              "seconds": seconds}, indent=1) + "\n")
    return 1 if counts["flipped"] else 0


def render(rows: list[dict], counts: dict, labels: tuple) -> str:
    """The side-by-side table as text."""
    head = f"{'claim':<22} {labels[0][:30]:<32} {labels[1][:30]:<32} change"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['claim']:<22} {row['first']:<32} {row['second']:<32} {row['change']}")
    lines.append("")
    lines.append(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
    return "\n".join(lines)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path}: no findings (run `make repro` first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path}: not JSON ({e})") from None


def _rerun(workdir: Path, seeds: list[int]) -> dict:
    """Copy the project into ``workdir`` with ``train.seeds = seeds`` and ``dvc repro paper`` there."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    upstream = [out["path"] for name in UPSTREAM for out in lock["stages"].get(name, {}).get("outs", [])]
    missing = [p for p in upstream if not (ROOT / p).exists()]
    if missing:
        raise SystemExit(f"{missing[0]}: missing; run `make repro` (at least `dvc repro compose`) first")
    for name in [f for f in files if f] + upstream:
        src, dst = ROOT / name, workdir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    shutil.copytree(ROOT / ".dvc", workdir / ".dvc", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("cache", "tmp"))
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    params = yaml_rt.load((workdir / "params.yaml").read_text())
    params["train"]["seeds"] = seeds
    with open(workdir / "params.yaml", "w") as handle:
        yaml_rt.dump(params, handle)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    git = ["git", "-c", "user.name=stability", "-c", "user.email=stability@localhost"]
    if not (workdir / ".git").exists():
        subprocess.run(git + ["init", "-q"], cwd=workdir, check=True)
        subprocess.run(git + ["add", "-A"], cwd=workdir, check=True)
        subprocess.run(git + ["commit", "-qm", "stability copy"], cwd=workdir, check=True)
    subprocess.run(["dvc", "repro", "paper"], cwd=workdir, env=env, check=True)
    return _read(workdir / "metrics" / "findings.json")


if __name__ == "__main__":
    sys.exit(main())
