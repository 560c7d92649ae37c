"""The evaluation loop (Sect. 5.2 "Evaluation Metrics"): predict, score, summarise.

Models of both tracks are always evaluated on the *real* validation images of the matting set
(AM-2k's ``validation/{original,mask,trimap}``): the ORI-Track trains on real images, the
COMP-Track on composites, and the point of the paper is how well each transfers to real photos.

* :func:`evaluate_model` -- predict every validation image (:func:`gfm.model.infer.predict`, one image
  at a time on the main process, timed) while worker processes compute the metrics
  (:func:`gfm.evaluate.metrics.evaluate`, also timed) of the images already predicted; one row per
  image. With ``compare_fusions`` the hybrid test's network passes also give the other fusion's
  matte (:func:`gfm.model.infer.combine_passes`), scored in columns ``<metric>_<fusion>``.
* :func:`fusion_summary` -- the means of both fusions and their difference, from such a table.
* :func:`summarise` -- the means of one run; :func:`mean_over_seeds` -- those of one experiment.
* :func:`predict_and_save` -- save a few predictions without scoring them (the figures' images).

The files (validation split, per-image tables, saved predictions) are :mod:`gfm.evaluate.files`;
the worker processes, :mod:`gfm.evaluate.pool`.

Times are wall-clock seconds: ``inference_s`` of :func:`gfm.model.infer.predict` (resizing, the
forward pass(es) and resizing back) on the device at hand, after one untimed warm-up image;
``metrics_s`` of :func:`gfm.evaluate.metrics.evaluate` in a worker process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from gfm.core.device import resolve_device
from gfm.core.io import read_image
from gfm.evaluate import metrics
from gfm.evaluate.files import read_ground_truth, read_trimap, save_prediction, validation_split
from gfm.evaluate.fusions import FUSION_METRICS
from gfm.evaluate.pool import MetricPool
from gfm.model.infer import FUSIONS, MAX_SIDE, combine_passes, forward_passes, predict
from gfm.model.network import optimise_for_inference

__all__ = ["TIMES", "evaluate_model", "summarise", "mean_over_seeds", "fusion_summary",
           "predict_and_save", "prepare_model"]

#: Columns of a per-image table besides the metric keys.
TIMES = ("inference_s", "metrics_s")


def evaluate_model(model, validation_dir: str | Path, *, strategy: str = "hybrid", d: float | None = None,
                   d1: float = 3.0, d2: float = 2.0, max_side: int = MAX_SIDE, fusion: str = "official",
                   device: str = "auto", precision: str = "fp32", convention: str = "gfm", workers: int = 2,
                   names: Sequence[str] | None = None, save_to: str | Path | None = None, warmup: int = 1,
                   optimise: bool = False, compare_fusions: bool = False, progress: bool = True,
                   desc: str = "evaluate") -> pd.DataFrame:
    """Predict and score every image of a validation split.

    Parameters
    ----------
    model : GFM or runner
        What :func:`gfm.model.infer.predict` accepts.
    validation_dir : str or Path
        See :func:`gfm.evaluate.files.validation_split`.
    strategy, d, d1, d2, max_side, fusion, device, precision
        Passed to :func:`gfm.model.infer.predict` (paper: hybrid, d1 = 3, d2 = 2).
    convention : {"gfm", "dim"}
        Metric convention of :func:`gfm.evaluate.metrics.evaluate` ("gfm" = the paper's numbers).
    workers : int
        Processes computing metrics while the main process predicts (0 or 1: inline).
    names : sequence of str, optional
        A subset of the split's images (default: all).
    save_to : str or Path, optional
        Write each prediction there (:func:`gfm.evaluate.files.save_prediction`).
    warmup : int
        Untimed predictions of the first image before timing (lazy initialisation, caches).
    optimise : bool
        Run a GFM module through :func:`gfm.model.network.optimise_for_inference` first (batch norms
        folded, fused oneDNN convolutions, weights packed per input shape). Off by default: the
        stage's numbers are those of the module as trained.
    compare_fusions : bool
        Also score the other fusions of :data:`gfm.model.infer.FUSIONS` from the same two network
        passes (:func:`gfm.model.infer.forward_passes` + :func:`~gfm.model.infer.combine_passes`:
        the mattes :func:`~gfm.model.infer.predict` gives, no extra forward pass). Only for the
        hybrid test of a TT, FT or BT model; ignored otherwise (a single pass has no fusion to choose).

    Returns
    -------
    DataFrame
        One row per image: ``name``, ``height``, ``width``, ``inference_s``, ``metrics_s`` and the keys
        of :data:`gfm.evaluate.metrics.KEYS` (of ``fusion``'s matte); with ``compare_fusions``,
        ``<key>_<other fusion>`` for every key of :data:`gfm.evaluate.fusions.FUSION_METRICS`.
    """
    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    if not names:
        raise ValueError(f"{split.original}: no validation images")
    model = prepare_model(model, device, precision, optimise)
    options = dict(strategy=strategy, d=d, d1=d1, d2=d2, max_side=max_side, fusion=fusion, device=device,
                   precision=precision)
    others = [f for f in FUSIONS if f != fusion] if compare_fusions and _hybrid(model, strategy) else []
    if warmup:
        first = read_image(split.image_path(names[0]))
        for _ in range(int(warmup)):
            predict(model, first, **options)
    rows = {}
    with MetricPool(workers) as pool:
        for name in tqdm(names, desc=desc, unit="image", disable=not progress, dynamic_ncols=True):
            image = read_image(split.image_path(name))
            gt = read_ground_truth(split, name, image.shape[:2])
            if others:
                out, seconds, extra = _both_fusions(model, image, fusion, others, options)
            else:
                start = time.perf_counter()
                out, extra = predict(model, image, **options), {}
                seconds = time.perf_counter() - start
            if save_to is not None:
                save_prediction(save_to, name, out)
            rows[name] = {"name": name, "height": image.shape[0], "width": image.shape[1], "inference_s": seconds}
            trimap = read_trimap(split, name)
            pool.submit(name, out["fusion"], gt, trimap, convention)
            for other, matte in extra.items():
                pool.submit((name, other), matte, gt, trimap, convention)
        scores = pool.results()
    return pd.DataFrame([{**rows[n], **scores[n],
                          **{f"{key}_{other}": scores[n, other][key] for other in others for key in FUSION_METRICS}}
                         for n in names])


def summarise(per_image: pd.DataFrame) -> dict:
    """Means over images of every metric and of the times (+ ``images``, the count).

    Non-finite per-image values (e.g. MSE-TRAN of an image without transition pixels, see
    :mod:`gfm.evaluate.metrics`) are left out of the means; a key with no finite value is None.
    """
    summary = {"images": int(len(per_image))}
    for key in (*metrics.KEYS, *TIMES):
        if key not in per_image:
            continue
        values = pd.to_numeric(per_image[key], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        summary[key] = _round(finite.mean()) if finite.size else None
    return summary


def mean_over_seeds(summaries: Sequence[Mapping]) -> dict:
    """One experiment's numbers from the :func:`summarise` of each of its runs: every key the mean
    over the runs holding a value, ``images`` as given (the runs share the images) and ``seeds``,
    the number of runs."""
    if not summaries:
        raise ValueError("mean_over_seeds: no run to average")
    images = {s["images"] for s in summaries}
    if len(images) > 1:
        raise ValueError(f"mean_over_seeds: the runs were evaluated on different numbers of images {sorted(images)}")
    out = {"images": images.pop()}
    for key in (*metrics.KEYS, *TIMES):
        values = [s[key] for s in summaries if s.get(key) is not None]
        if any(key in s for s in summaries):
            out[key] = _round(np.mean(values)) if values else None
    out["seeds"] = len(summaries)
    return out


def fusion_summary(per_image: pd.DataFrame, fusion: str) -> dict | None:
    """Both hybrid fusions on one run: ``{fusion: {metric: mean}}`` for every fusion of
    :data:`gfm.model.infer.FUSIONS` and ``"difference"`` (upsampled - official: positive when the
    upsampled fusion errs more), over :data:`gfm.evaluate.fusions.FUSION_METRICS`; None when
    ``per_image`` (of :func:`evaluate_model`, its matte by ``fusion``) holds no comparison."""
    columns = {f: {key: key if f == fusion else f"{key}_{f}" for key in FUSION_METRICS} for f in FUSIONS}
    if any(column not in per_image for names in columns.values() for column in names.values()):
        return None
    means = {f: {key: summarise(per_image[[column]].rename(columns={column: key}))[key]
                 for key, column in names.items()} for f, names in columns.items()}
    official, upsampled = means["official"], means["upsampled"]
    means["difference"] = {key: None if official[key] is None or upsampled[key] is None
                           else _round(upsampled[key] - official[key]) for key in FUSION_METRICS}
    return means


def predict_and_save(model, validation_dir: str | Path, names: Sequence[str], folder: str | Path, *,
                     device: str = "auto", precision: str = "fp32", optimise: bool = False, **options) -> None:
    """:func:`gfm.evaluate.files.save_prediction` of ``names`` without scoring them (``options`` go to
    :func:`gfm.model.infer.predict`): the figures' images when the run's predictions were not kept."""
    split = validation_split(validation_dir)
    model = prepare_model(model, device, precision, optimise)
    for name in names:
        out = predict(model, read_image(split.image_path(name)), device=device, precision=precision, **options)
        save_prediction(folder, name, out)


def prepare_model(model, device, precision: str, optimise: bool):
    """``model`` as :func:`gfm.model.infer.predict` will run it: a GFM module optimised once
    (:func:`gfm.model.network.optimise_for_inference`) when ``optimise``, else unchanged."""
    if optimise and isinstance(model, torch.nn.Module):
        return optimise_for_inference(model, resolve_device(device), precision)
    return model


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _hybrid(model, strategy: str) -> bool:
    """Whether ``model`` (a GFM or an optimised runner) is tested with the hybrid test (a RIM model never is)."""
    return strategy == "hybrid" and getattr(getattr(model, "model", model), "rosta", "TT") != "RIM"


def _both_fusions(model, image, fusion: str, others, options: dict) -> tuple[dict, float, dict]:
    """The hybrid test's outputs with ``fusion`` (the dict of :func:`gfm.model.infer.predict`), their
    time (the two passes and this fusion's assembly) and ``{other fusion: matte}`` from the same passes."""
    d1, d2 = options["d1"], options["d2"]
    passes, rosta = forward_passes(model, image, [d1, d2], max_side=options["max_side"], device=options["device"],
                                   precision=options["precision"])
    start = time.perf_counter()
    out = combine_passes(rosta, passes[d1], passes[d2], image.shape[:2], fusion=fusion)[0]
    seconds = time.perf_counter() - start + sum(p["seconds"] for p in {id(p): p for p in passes.values()}.values())
    extra = {other: combine_passes(rosta, passes[d1], passes[d2], image.shape[:2], fusion=other)[0]["fusion"]
             for other in others}
    return out, seconds, extra


def _round(value) -> float:
    return float(f"{float(value):.6g}")
