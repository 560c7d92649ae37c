"""How a run was made: commit, machine, library versions and wall time (written beside the metrics).

A reader comparing two runs must see what differed: ``precision: auto`` trains in bf16 on a CPU
with native bfloat16 and in fp32 elsewhere, and timings vary between machines. Each stage run
(:mod:`gfm.core.runner`) writes ``metrics/run/<notebook>.json`` with :func:`run_details`; the
stages add the device and precision they resolved to their own metrics.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["run_details", "cpu_info", "git_commit"]

#: CPU flags that decide the numerics or speed of a run (``/proc/cpuinfo`` names).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def run_details(*, started: float | None = None, finished: float | None = None, root: str | Path = ".") -> dict:
    """Commit, CPU, usable cores, torch/python versions and, given ``started``/``finished`` (epoch
    seconds), the wall time."""
    details = {"commit": git_commit(root), **cpu_info(), "cores": len(os.sched_getaffinity(0)),
               "torch": _version("torch"), "python": platform.python_version(),
               "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if started is not None:
        details["wall_s"] = round((finished or _dt.datetime.now().timestamp()) - started, 1)
    return details


def cpu_info() -> dict:
    """The CPU model and which of :data:`CPU_FLAGS` it has (native bf16: AMX-BF16 or AVX512-BF16)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                if flags and model:
                    break
    except OSError:
        pass
    present = [f for f in CPU_FLAGS if f in flags]
    return {"cpu": model, "cpu_flags": present,
            "native_bf16": "avx512_bf16" in present or "amx_bf16" in present}


def git_commit(root: str | Path = ".") -> str:
    """``HEAD``'s short hash, with ``+dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
