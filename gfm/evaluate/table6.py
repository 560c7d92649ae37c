"""Table 6 (Sect. 5.5 "Hybrid-resolution Test"): the down-sampling ratios of the test, as a grid.

Hybrid rows put the glance decoder's pass at 1/d1 and the focus decoder's at 1/d2 (every pair of
the grid with d1 >= d2; the paper: d1, d2 in {2, 3, 4}, best at d1 = 3, d2 = 2); single rows make
one pass at 1/d (the paper: d = 2.0 .. 3.0 step 0.2, best at 2.6).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from gfm.core.io import read_image
from gfm.evaluate.metrics import MAIN_METRICS
from gfm.evaluate.files import read_ground_truth, read_trimap, validation_split
from gfm.evaluate.pool import MetricPool
from gfm.evaluate.run import prepare_model, summarise
from gfm.model.infer import MAX_SIDE, combine_passes, forward_passes

__all__ = ["table6", "table6_per_image", "table6_means", "spread_subset"]


def table6(model, validation_dir: str | Path, **options) -> pd.DataFrame:
    """Table 6: the means over the validation images of :func:`table6_per_image` (``options``), one
    row per setting: ``test, d1, d2``, SAD, MSE, MAD, Grad, Conn and the inference time."""
    return table6_means(table6_per_image(model, validation_dir, **options))


def table6_per_image(model, validation_dir: str | Path, *, ds=(2, 3, 4), singles=(2.0, 2.2, 2.4, 2.6, 2.8, 3.0),
                     max_side: int = MAX_SIDE, fusion: str = "official", device: str = "auto", precision: str = "fp32",
                     convention: str = "gfm", workers: int = 2, names: Sequence[str] | None = None,
                     optimise: bool = False, progress: bool = True) -> pd.DataFrame:
    """The Table 6 grid image by image: one row per setting and validation image (``names``, default
    all) -> ``test, d1, d2, name``, ``inference_s`` and the keys of :data:`gfm.evaluate.metrics.KEYS`.

    Settings: every hybrid pair of ``ds`` with d1 >= d2 (glance at 1/d1, focus at 1/d2), then each
    single ratio d of ``singles`` (one pass at 1/d, strategy "resize"; "rim" for a RIM model).
    Each image goes through the network once per distinct pass size
    (:func:`gfm.model.infer.forward_passes`) and every setting is assembled from those passes
    (:func:`gfm.model.infer.combine_passes`) -- the same mattes as :func:`gfm.model.infer.predict` gives
    for that setting, at a fraction of the cost. A setting's ``inference_s`` is the time of its
    pass(es) plus that of its assembly, i.e. what :func:`~gfm.model.infer.predict` would take.
    Ratios whose passes have the same size (after snapping to multiples of 32) give identical rows.
    ``optimise``: see :func:`gfm.evaluate.run.evaluate_model` (several pass sizes: off).
    """
    settings = [("hybrid", float(d1), float(d2)) for d1 in ds for d2 in ds if d1 >= d2]
    settings += [("single", float(d), float(d)) for d in singles]
    if not settings:
        raise ValueError("table6: no setting (ds and singles are both empty)")
    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    model = prepare_model(model, device, precision, optimise)
    if getattr(getattr(model, "model", model), "rosta", None) == "RIM" and any(t == "hybrid" for t, _, _ in settings):
        raise ValueError("table6: the hybrid rows need a TT, FT or BT model (a RIM model is tested in one pass); "
                         "pass ds=() to get the single-ratio rows only")
    ratios = sorted({d for _, d1, d2 in settings for d in (d1, d2)})
    seconds = {}
    with MetricPool(workers) as pool:
        for name in tqdm(names, desc="table 6", unit="image", disable=not progress, dynamic_ncols=True):
            image = read_image(split.image_path(name))
            gt = read_ground_truth(split, name, image.shape[:2])
            trimap = read_trimap(split, name)
            passes, rosta = forward_passes(model, image, ratios, max_side=max_side, device=device,
                                           precision=precision)
            for i, (test, d1, d2) in enumerate(settings):
                start = time.perf_counter()
                strategy = "hybrid" if test == "hybrid" else ("rim" if rosta == "RIM" else "resize")
                out = combine_passes(rosta, passes[d1], passes[d2], image.shape[:2], strategy=strategy,
                                     fusion=fusion)[0]
                used = {id(passes[d1]): passes[d1], id(passes[d2]): passes[d2]}.values()
                seconds[i, name] = time.perf_counter() - start + sum(p["seconds"] for p in used)
                pool.submit((i, name), out["fusion"], gt, trimap, convention)
        scores = pool.results()
    return pd.DataFrame([{"test": test, "d1": d1, "d2": d2, "name": name, "inference_s": seconds[i, name],
                          **scores[i, name]} for i, (test, d1, d2) in enumerate(settings) for name in names])


def table6_means(per_image: pd.DataFrame) -> pd.DataFrame:
    """One row per setting of a :func:`table6_per_image` table, in its order: ``test, d1, d2``, the
    means (:func:`gfm.evaluate.run.summarise`) of :data:`gfm.evaluate.metrics.MAIN_METRICS` and of
    ``inference_s``."""
    rows = []
    for (test, d1, d2), frame in per_image.groupby(["test", "d1", "d2"], sort=False):
        means = summarise(frame)
        rows.append({"test": test, "d1": d1, "d2": d2, **{k: means[k] for k in (*MAIN_METRICS, "inference_s")}})
    return pd.DataFrame(rows)


def spread_subset(names: Sequence[str], n: int | None) -> list[str]:
    """``n`` of ``names`` evenly spaced over the list (first and last included), or all of them when
    ``n`` is None or not smaller: a Table 6 subset that spans the whole validation split."""
    names = list(names)
    if n is None or n >= len(names):
        return names
    if n < 1:
        raise ValueError(f"table6_images must be >= 1, got {n}")
    picks = np.unique(np.round(np.linspace(0, len(names) - 1, n)).astype(int))
    return [names[i] for i in picks]
