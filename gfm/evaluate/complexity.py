"""Table 7 (Sect. 5.6 "Model Complexity Analysis"), measured: parameters, GMac and inference time.

The paper times every model on an 800 x 800 image (Tesla V100). This stage writes only what it
measures here; the paper's figures live in ``gfm/report/paper_numbers.yaml`` and the report puts
the two side by side.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from gfm.core.device import autocast, resolve_device
from gfm.model.complexity import count_macs, count_parameters
from gfm.model.network import build_gfm

__all__ = ["complexity_table"]


def complexity_table(backbones: Sequence[str] = ("d121", "r34", "r34_2b", "r101"), *, input_size=(800, 800),
                     rosta: str = "TT", device: str = "auto", precision: str = "fp32", latency_runs: int = 1,
                     warmup_runs: int = 1, latency_backbones: Sequence[str] | None = None) -> pd.DataFrame:
    """Parameters (M), GMac and measured inference time at ``input_size`` per backbone -> DataFrame.

    MACs are counted by :func:`gfm.model.complexity.count_macs` (no arithmetic); the latency is the
    median of ``latency_runs`` forward passes (after ``warmup_runs`` untimed ones) of an
    untrained GFM on a random image, on ``device`` -- only for ``latency_backbones`` (default:
    all; 0 runs: none), since an 800 x 800 pass of the larger backbones takes seconds on a CPU.

    Columns: ``backbone, parameters_m, gmac, latency_s`` (NaN: not timed), ``device``.
    """
    backbones = list(backbones)
    timed = set(backbones if latency_backbones is None else latency_backbones)
    device = resolve_device(device)
    rows = []
    for backbone in backbones:
        time_it = latency_runs > 0 and backbone in timed
        with torch.device("cpu" if time_it else "meta"):  # counting needs no weights: no memory, no init
            model = build_gfm(backbone, rosta).eval()
        latency = _latency(model, input_size, device, precision, latency_runs, warmup_runs) if time_it else math.nan
        rows.append({"backbone": backbone, "parameters_m": round(count_parameters(model) / 1e6, 2),
                     "gmac": round(count_macs(model, tuple(input_size)) / 1e9, 2), "latency_s": latency,
                     "device": str(device) if time_it else f"{device} (not timed)"})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return pd.DataFrame(rows)


def _latency(model, input_size, device, precision, runs, warmup) -> float:
    model = model.to(device)
    x = torch.rand(1, 3, *input_size, device=device) * 255
    times = []
    for i in range(int(warmup) + int(runs)):
        _synchronise(device)
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, precision):
            model(x)
        _synchronise(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def _synchronise(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
