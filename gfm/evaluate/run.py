"""Evaluation (Sect. 6 "Evaluation Metrics", "Hybrid-resolution Test" Table 6, "Model Complexity" Table 7).

Models of both tracks are always evaluated on the *real* validation images of the matting set
(AM-2k's ``validation/{original,mask,trimap}``): the ORI-Track trains on real images, the
COMP-Track on composites, and the point of the paper is how well each transfers to real photos.

* :func:`evaluate_model` -- predict every validation image (:func:`gfm.model.infer.predict`, one image
  at a time on the main process, timed) while worker processes compute the metrics
  (:func:`gfm.evaluate.metrics.evaluate`) of the images already predicted; one row per image.
* :func:`evaluate_experiments` -- that for every trained experiment, writing the per-image CSVs,
  the predicted mattes and the metrics JSON of the ``evaluate`` stage.
* :func:`table6` -- the hybrid-resolution grid (d1 >= d2) and the single-ratio rows of Table 6.
* :func:`complexity_table` -- parameters, GMac at 800 x 800 and measured latency (Table 7).
* :func:`plot_qualitative`, :func:`plot_models`, :func:`build_result_browser` -- Figs. 6-7
  style figures and an ipywidgets browser over validation images x models.

Inference times are wall-clock seconds of :func:`gfm.model.infer.predict` (resizing, the forward
pass(es) and resizing back) on the device at hand, after one untimed warm-up image.
"""

from __future__ import annotations

import collections
import math
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from gfm.core.arrays import to01, to_uint8
from gfm.evaluate import metrics
from gfm.core.device import resolve_device
from gfm.model.infer import MAX_SIDE, load_model, predict
from gfm.core.io import read_alpha, read_image, write_image, write_json, write_text
from gfm.core.layout import MATTING_SET, Split

__all__ = [
    "MAIN_METRICS",
    "PAPER_TABLE7",
    "validation_split",
    "evaluate_model",
    "summarise",
    "evaluate_experiments",
    "table6",
    "complexity_table",
    "write_table",
    "load_prediction",
    "contested_images",
    "plot_qualitative",
    "plot_models",
    "result_figure",
    "build_result_browser",
]

#: The four major metrics of the paper plus MAD (the columns of Table 6).
MAIN_METRICS = ("sad", "mse", "mad", "grad", "conn")

#: Table 7 figures stated in the paper's text (Sect. 7 "Model Complexity Analysis"; 800 x 800 input,
#: Tesla V100). NaN where the text gives no number (the table itself is an image).
PAPER_TABLE7 = {
    "d121": {"model": "GFM(d)", "parameters_m": 46.96, "gmac": math.nan, "latency_s": 0.2085},
    "r34": {"model": "GFM(r)", "parameters_m": math.nan, "gmac": 132.28, "latency_s": 0.1734},
    "r34_2b": {"model": "GFM(r2b)", "parameters_m": math.nan, "gmac": math.nan, "latency_s": math.nan},
    "r101": {"model": "GFM(r†)", "parameters_m": math.nan, "gmac": math.nan, "latency_s": math.nan},
}

PER_IMAGE, PREDICTIONS = "per_image.csv", "predictions"


def validation_split(path: str | Path) -> Split:
    """The validation split at ``path``: a split folder (holding ``original/``) or a datasets root
    (holding ``am2k/validation/``)."""
    path = Path(path)
    if (path / "original").is_dir():
        return Split(path)
    if (path / MATTING_SET / "validation" / "original").is_dir():
        return Split(path / MATTING_SET / "validation")
    raise FileNotFoundError(f"{path}: not a validation split (no original/ folder) nor a datasets folder "
                            f"(no {MATTING_SET}/validation/original/)")


def evaluate_model(model, validation_dir: str | Path, *, strategy: str = "hybrid", d: float | None = None,
                   d1: float = 3.0, d2: float = 2.0, max_side: int = MAX_SIDE, fusion: str = "eq7",
                   device: str = "auto", precision: str = "fp32", convention: str = "gfm", workers: int = 2,
                   names: Sequence[str] | None = None, save_to: str | Path | None = None, warmup: int = 1,
                   optimise: bool = True, progress: bool = True, desc: str = "evaluate") -> pd.DataFrame:
    """Predict and score every image of a validation split.

    Parameters
    ----------
    model : GFM or runner
        What :func:`gfm.model.infer.predict` accepts.
    validation_dir : str or Path
        See :func:`validation_split`.
    strategy, d, d1, d2, max_side, fusion, device, precision
        Passed to :func:`gfm.model.infer.predict` (paper: hybrid, d1 = 3, d2 = 2).
    convention : {"gfm", "dim"}
        Metric convention of :func:`gfm.evaluate.metrics.evaluate` ("gfm" = the paper's numbers).
    workers : int
        Processes computing metrics while the main process predicts (0 or 1: inline).
    names : sequence of str, optional
        A subset of the split's images (default: all).
    save_to : str or Path, optional
        Write each prediction there: ``alpha/<name>.png`` (the matte), ``focus/<name>.png`` and
        ``glance/<name>.png`` (TT classes as 0/128/255, FT/BT as 0/255).
    warmup : int
        Untimed predictions of the first image before timing (lazy initialisation, caches).
    optimise : bool
        Run a GFM module through :func:`gfm.model.network.optimise_for_inference` first (batch norms
        folded, fused oneDNN convolutions: 1.6-1.9x faster on a 2-core CPU at 800 x 800, same
        mattes to ~1e-5; ``benchmarks/bench_inference.py``).

    Returns
    -------
    DataFrame
        One row per image: ``name``, ``height``, ``width``, ``inference_s`` and the keys of
        :data:`gfm.evaluate.metrics.KEYS`.
    """
    from tqdm.auto import tqdm

    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    if not names:
        raise ValueError(f"{split.original}: no validation images")
    model = _prepare(model, device, precision, optimise)
    options = dict(strategy=strategy, d=d, d1=d1, d2=d2, max_side=max_side, fusion=fusion, device=device,
                   precision=precision)
    if warmup:
        first = read_image(split.image_path(names[0]))
        for _ in range(int(warmup)):
            predict(model, first, **options)
    rows = {}
    with _MetricPool(workers) as pool:
        for name in tqdm(names, desc=desc, unit="image", disable=not progress, dynamic_ncols=True):
            image = read_image(split.image_path(name))
            gt = read_alpha(split.mask_path(name))
            if gt.shape != image.shape[:2]:
                raise ValueError(f"{split.mask_path(name)}: ground truth is {gt.shape}, image is {image.shape[:2]}")
            trimap = _trimap(split, name)
            start = time.perf_counter()
            out = predict(model, image, **options)
            seconds = time.perf_counter() - start
            if save_to is not None:
                _save_prediction(Path(save_to), name, out)
            rows[name] = {"name": name, "height": image.shape[0], "width": image.shape[1], "inference_s": seconds}
            pool.submit(name, out["fusion"], gt.astype(np.float64) / 255.0, trimap, convention)
        scores = pool.results()
    return pd.DataFrame([{**rows[n], **scores[n]} for n in names])


def summarise(per_image: pd.DataFrame) -> dict:
    """Means over images of every metric and of the inference time (+ ``images``, the count).

    Non-finite per-image values (e.g. MSE-TRAN of an image without transition pixels, see
    :mod:`gfm.evaluate.metrics`) are left out of the means; a key with no finite value is None.
    """
    summary = {"images": int(len(per_image))}
    for key in (*metrics.KEYS, "inference_s"):
        values = pd.to_numeric(per_image[key], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        summary[key] = float(f"{finite.mean():.6g}") if finite.size else None
    return summary


def evaluate_experiments(models_dir: str | Path, experiments, validation_dir: str | Path, out: str | Path, *,
                         metrics_out: str | Path | None = None, save_predictions: bool = True,
                         **options) -> pd.DataFrame:
    """Evaluate each trained experiment ``<models_dir>/<experiment>/`` on the validation split.

    Writes ``<out>/<experiment>/per_image.csv``, ``<out>/<experiment>/predictions/`` (see
    :func:`evaluate_model`) and, if given, ``metrics_out``: ``{experiment: {sad: ..., mse: ...}}``
    (flat numbers, for ``dvc metrics show`` / ``diff``). ``experiments`` is a list or a
    comma-separated string; ``options`` go to :func:`evaluate_model` (device is used for loading
    too). Returns the means, one row per experiment.
    """
    experiments = _split_list(experiments)
    if not experiments:
        raise ValueError("experiments: nothing to evaluate")
    device = resolve_device(options.get("device", "auto"))
    options["device"] = device
    summaries = {}
    for experiment in experiments:
        model, _ = load_model(Path(models_dir) / experiment, device=device)
        run_dir = Path(out) / experiment
        per_image = evaluate_model(model, validation_dir, desc=experiment,
                                   save_to=run_dir / PREDICTIONS if save_predictions else None, **options)
        write_table(per_image, run_dir / PER_IMAGE)
        summaries[experiment] = summarise(per_image)
    if metrics_out is not None:
        write_json(metrics_out, summaries)
    return pd.DataFrame.from_dict(summaries, orient="index").rename_axis("experiment")


def table6(model, validation_dir: str | Path, *, ds=(2, 3, 4), singles=(2.0, 2.2, 2.4, 2.6, 2.8, 3.0),
           max_side: int = MAX_SIDE, fusion: str = "eq7", device: str = "auto", precision: str = "fp32",
           convention: str = "gfm", workers: int = 2, names: Sequence[str] | None = None, optimise: bool = True,
           progress: bool = True) -> pd.DataFrame:
    """Table 6: the down-sampling ratios of the test.

    One row per hybrid setting (glance at 1/d1, focus at 1/d2, every pair of ``ds`` with
    d1 >= d2) and per single ratio d of ``singles`` (one pass at 1/d, strategy "resize"), with the
    means over the validation images of SAD, MSE, MAD, Grad, Conn and the inference time.
    ``ds``/``singles`` may be comma-separated strings.

    Each image goes through the network once per distinct pass size
    (:func:`gfm.model.infer.forward_passes`) and every setting is assembled from those passes
    (:func:`gfm.model.infer.combine_passes`) -- the same mattes as :func:`gfm.model.infer.predict` gives for
    that setting, at a fraction of the cost. A setting's ``inference_s`` is the time of its
    pass(es) plus that of its assembly, i.e. what :func:`~gfm.model.infer.predict` would take.
    Ratios whose passes have the same size (after snapping to multiples of 32) give identical rows.
    """
    from tqdm.auto import tqdm

    from gfm.model.infer import combine_passes, forward_passes

    ds = [float(x) for x in _split_list(ds)]
    singles = [float(x) for x in _split_list(singles)]
    settings = [("hybrid", d1, d2) for d1 in ds for d2 in ds if d1 >= d2] + [("single", d, d) for d in singles]
    if not settings:
        raise ValueError("table6: no setting (ds and singles are both empty)")
    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    model = _prepare(model, device, precision, optimise)
    if getattr(getattr(model, "model", model), "rosta", None) == "RIM" and any(t == "hybrid" for t, _, _ in settings):
        raise ValueError("table6: the hybrid rows need a TT, FT or BT model (a RIM model is tested in one pass); "
                         "pass ds=() to get the single-ratio rows only")
    ratios = sorted({d for _, d1, d2 in settings for d in (d1, d2)})
    seconds = collections.defaultdict(list)
    with _MetricPool(workers) as pool:
        for name in tqdm(names, desc="table 6", unit="image", disable=not progress, dynamic_ncols=True):
            image = read_image(split.image_path(name))
            gt = read_alpha(split.mask_path(name)).astype(np.float64) / 255.0
            trimap = _trimap(split, name)
            passes, rosta = forward_passes(model, image, ratios, max_side=max_side, device=device,
                                           precision=precision)
            for i, (test, d1, d2) in enumerate(settings):
                start = time.perf_counter()
                out = combine_passes(rosta, passes[d1], passes[d2], image.shape[:2],
                                     strategy="hybrid" if test == "hybrid" else ("rim" if rosta == "RIM" else "resize"),
                                     fusion=fusion)[0]
                used = {id(passes[d1]): passes[d1], id(passes[d2]): passes[d2]}.values()
                seconds[i].append(time.perf_counter() - start + sum(p["seconds"] for p in used))
                pool.submit((i, name), out["fusion"], gt, trimap, convention)
        scores = pool.results()
    rows = []
    for i, (test, d1, d2) in enumerate(settings):
        frame = pd.DataFrame([{"name": n, "inference_s": t, **scores[(i, n)]} for n, t in zip(names, seconds[i])])
        means = summarise(frame)
        rows.append({"test": test, "d1": d1, "d2": d2, **{k: means[k] for k in (*MAIN_METRICS, "inference_s")}})
    return pd.DataFrame(rows)


def complexity_table(backbones=("d121", "r34", "r34_2b", "r101"), *, input_size=(800, 800), rosta: str = "TT",
                     device: str = "auto", precision: str = "fp32", latency_runs: int = 1, warmup_runs: int = 1,
                     latency_backbones=None) -> pd.DataFrame:
    """Table 7: parameters (M), GMac and measured inference time at ``input_size`` per backbone.

    MACs are counted by :func:`gfm.model.complexity.count_macs` (no arithmetic); the latency is the
    median of ``latency_runs`` forward passes (after ``warmup_runs`` untimed ones) of an
    untrained GFM on a random image, on ``device`` -- only for ``latency_backbones`` (default:
    all; 0 runs: none), since an 800 x 800 pass of the larger backbones takes seconds on a CPU.
    The paper's figures (:data:`PAPER_TABLE7`, Tesla V100) stand beside ours.
    """
    import torch

    from gfm.model.complexity import count_macs, count_parameters
    from gfm.model.network import build_gfm

    backbones = _split_list(backbones)
    timed = set(backbones if latency_backbones is None else _split_list(latency_backbones))
    device = resolve_device(device)
    rows = []
    for backbone in backbones:
        time_it = latency_runs > 0 and backbone in timed
        with torch.device("cpu" if time_it else "meta"):  # counting needs no weights: no memory, no init
            model = build_gfm(backbone, rosta).eval()
        latency = math.nan
        if time_it:
            latency = _latency(model, input_size, device, precision, latency_runs, warmup_runs)
        paper = PAPER_TABLE7.get(backbone, {"model": f"GFM({backbone})"})
        rows.append({"backbone": backbone, "model": paper["model"],
                     "parameters_m": round(count_parameters(model) / 1e6, 2),
                     "gmac": round(count_macs(model, tuple(input_size)) / 1e9, 2),
                     "latency_s": latency, "device": str(device) + ("" if latency == latency else " (not timed)"),
                     "paper_parameters_m": paper.get("parameters_m", math.nan),
                     "paper_gmac": paper.get("gmac", math.nan),
                     "paper_latency_s_v100": paper.get("latency_s", math.nan)})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return pd.DataFrame(rows)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a result table as CSV (no index, 6 significant digits), atomically."""
    return write_text(path, frame.to_csv(index=False, float_format="%.6g"))


# --------------------------------------------------------------------------------------------
# Figures and the result browser
# --------------------------------------------------------------------------------------------

def load_prediction(run_dir: str | Path, name: str) -> dict:
    """The prediction :func:`evaluate_model` saved for image ``name`` under ``run_dir``
    (``predictions/`` inside it, or ``run_dir`` itself): ``fusion``, ``focus`` float in [0, 1] and
    ``glance`` uint8 (0/128/255)."""
    root = Path(run_dir)
    if (root / PREDICTIONS).is_dir():
        root = root / PREDICTIONS
    out = {"glance": read_alpha(root / "glance" / f"{name}.png")}
    for key, folder in (("fusion", "alpha"), ("focus", "focus")):
        out[key] = read_alpha(root / folder / f"{name}.png").astype(np.float32) / 255.0
    return out


def contested_images(evaluation_dir: str | Path, experiments=None, *, n: int = 3, metric: str = "sad") -> list[str]:
    """The ``n`` validation images whose ``metric`` differs most between the evaluated models
    (max - min over ``<experiment>/per_image.csv``): the most telling ones to look at."""
    experiments = _evaluated(evaluation_dir, experiments)
    tables = {e: pd.Series({k: v[metric] for k, v in _per_image(evaluation_dir, e).items()}) for e in experiments}
    table = pd.DataFrame(tables).dropna()
    if table.empty:
        raise FileNotFoundError(f"{evaluation_dir}: no {PER_IMAGE} with {metric!r} for {experiments}")
    spread = (table.max(axis=1) - table.min(axis=1)).sort_values(ascending=False, kind="stable")
    return [str(name) for name in spread.index[:n]]


def plot_qualitative(image: np.ndarray, gt: np.ndarray, outputs: Mapping, *, title: str | None = None,
                     zoom: int | None = None):
    """Figs. 6-7 style panels of one prediction -> Figure.

    Top row: the image, the ground truth, the glance decoder's classes, the focus decoder's alpha,
    the collaborative matte and the absolute error |fusion - ground truth|. Bottom row: the same
    panels on a ``zoom``-pixel square (default: a third of the short side) where the ground
    truth's transition (0 < alpha < 1) is densest (:func:`gfm.ui.inspector.boundary_window`).

    ``outputs`` is a :func:`gfm.model.infer.predict` result or a :func:`load_prediction` one.
    """
    import matplotlib.pyplot as plt

    gt01 = to01(gt)
    fusion = np.asarray(outputs["fusion"], dtype=np.float32)
    panels = {"image": image, "ground truth": gt01, "glance": _glance_display(outputs),
              "focus": np.asarray(outputs["focus"], dtype=np.float32), "fusion": fusion,
              "|error|": np.abs(fusion - gt01)}
    window = _window(gt01, zoom)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.3 * len(panels), 4.4), squeeze=False)
    for col, (label, panel) in enumerate(panels.items()):
        cmap = "magma" if label == "|error|" else "gray"
        _show(axes[0, col], panel, cmap, label, window if col == 0 else None)
        _show(axes[1, col], _crop(panel, window), cmap, None)
    axes[1, 0].set_ylabel("close view")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_models(image: np.ndarray, gt: np.ndarray, fusions: Mapping[str, np.ndarray], *,
                title: str | None = None, zoom: int | None = None, scores: Mapping[str, float] | None = None):
    """The image, its ground truth and the matte of each model, full size and close view -> Figure.

    ``scores`` (model -> SAD, optional) are printed under the model names.
    """
    import matplotlib.pyplot as plt

    gt01 = to01(gt)
    panels = {"image": image, "ground truth": gt01}
    for model, fusion in fusions.items():
        label = model if scores is None or model not in scores else f"{model}\nSAD {scores[model]:.2f}"
        panels[label] = np.asarray(fusion, dtype=np.float32)
    window = _window(gt01, zoom)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.3 * len(panels), 4.6), squeeze=False)
    for col, (label, panel) in enumerate(panels.items()):
        _show(axes[0, col], panel, "gray", label, window if col == 0 else None)
        _show(axes[1, col], _crop(panel, window), "gray", None)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def result_figure(evaluation_dir: str | Path, validation_dir: str | Path, name: str, experiments=None, *,
                  zoom: int | None = None):
    """:func:`plot_models` of validation image ``name`` across the evaluated ``experiments``
    (default: every folder of ``evaluation_dir`` holding predictions), SAD from ``per_image.csv``."""
    split = validation_split(validation_dir)
    experiments = _evaluated(evaluation_dir, experiments)
    fusions = {e: load_prediction(Path(evaluation_dir) / e, name)["fusion"] for e in experiments}
    scores = {e: _per_image(evaluation_dir, e).get(name, {}).get("sad", math.nan) for e in experiments}
    return plot_models(read_image(split.image_path(name)), read_alpha(split.mask_path(name)), fusions,
                       title=name, zoom=zoom, scores=scores)


def build_result_browser(evaluation_dir: str | Path, validation_dir: str | Path, experiments=None):
    """An ipywidgets browser over validation images x evaluated models -> Widget.

    Two drop-downs (image, model) and the :func:`plot_qualitative` panels of the saved prediction,
    with that image's metrics from ``per_image.csv``. Needs a live kernel; the static companion
    is :func:`result_figure`.
    """
    import ipywidgets as widgets

    from gfm.ui import widgets as gfm_widgets

    split = validation_split(validation_dir)
    experiments = _evaluated(evaluation_dir, experiments)
    if not experiments:
        raise ValueError(f"{evaluation_dir}: no evaluated experiment with saved predictions")
    saved = [{p.stem for p in (Path(evaluation_dir) / e / PREDICTIONS / "alpha").glob("*.png")} for e in experiments]
    names = [n for n in split.names() if all(n in s for s in saved)]
    if not names:
        raise ValueError(f"{evaluation_dir}: no validation image has saved predictions for all of {experiments}")
    image_box = widgets.Dropdown(options=names, value=names[0], description="image")
    model_box = widgets.Dropdown(options=experiments, value=experiments[0], description="model")
    view = gfm_widgets.figure_view()

    def show(*_):
        name, experiment = image_box.value, model_box.value
        row = _per_image(evaluation_dir, experiment).get(name, {})
        summary = ", ".join(f"{k.upper()} {row[k]:.4g}" for k in MAIN_METRICS if k in row)
        fig = plot_qualitative(read_image(split.image_path(name)), read_alpha(split.mask_path(name)),
                               load_prediction(Path(evaluation_dir) / experiment, name),
                               title=f"{experiment} on {name}: {summary}")
        gfm_widgets.show_figure(view, fig)

    image_box.observe(show, names="value")
    model_box.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([image_box, model_box]), view])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_EXECUTORS: dict = {}


def _metric_executor(workers: int):
    """A loky process pool of ``workers`` kept for this module's own use. Not loky's global reusable
    executor: joblib.Parallel (used by other stages in the same kernel) re-configures that one."""
    executor = _EXECUTORS.get(workers)
    if executor is None or getattr(executor, "_broken", False) or getattr(executor, "_shutdown_thread", False):
        from joblib.externals.loky import ProcessPoolExecutor

        executor = _EXECUTORS[workers] = ProcessPoolExecutor(max_workers=workers)
    return executor


class _MetricPool:
    """Metric jobs on ``workers`` processes (loky), at most ``2 * workers`` pending so predictions
    do not pile up in memory; inline when ``workers`` <= 1."""

    def __init__(self, workers: int):
        self.workers, self.pending, self.done = int(workers), collections.deque(), {}
        self.executor = _metric_executor(self.workers) if self.workers > 1 else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for _, future in self.pending:
            future.cancel()
        return False

    def submit(self, name, pred, gt, trimap, convention):
        if self.executor is None:
            self.done[name] = metrics.evaluate(pred, gt, trimap, convention)
            return
        while len(self.pending) >= 2 * self.workers:
            self._collect_one()
        self.pending.append((name, self.executor.submit(metrics.evaluate, pred, gt, trimap, convention)))

    def results(self) -> dict:
        while self.pending:
            self._collect_one()
        return self.done

    def _collect_one(self):
        name, future = self.pending.popleft()
        try:
            self.done[name] = future.result()
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error


def _prepare(model, device, precision, optimise):
    """``model`` as :func:`gfm.model.infer.predict` will run it (optimised once, see :func:`evaluate_model`)."""
    import torch

    if optimise and isinstance(model, torch.nn.Module):
        from gfm.model.network import optimise_for_inference

        return optimise_for_inference(model, resolve_device(device), precision)
    return model


def _trimap(split: Split, name: str):
    try:
        path = split.trimap_path(name)
    except FileNotFoundError:
        return None
    return read_alpha(path)


def _save_prediction(folder: Path, name: str, out: dict) -> None:
    write_image(folder / "alpha" / f"{name}.png", to_uint8(out["fusion"]))
    write_image(folder / "focus" / f"{name}.png", to_uint8(out["focus"]))
    write_image(folder / "glance" / f"{name}.png", _glance_display(out))


def _glance_display(outputs: Mapping) -> np.ndarray:
    """Glance classes as uint8 grey levels: TT 0/128/255, FT/BT 0/255 (the official test's)."""
    glance = np.asarray(outputs["glance"])
    if "glance_probs" not in outputs:
        return glance
    classes = outputs["glance_probs"].shape[0]
    levels = np.array([0, 128, 255] if classes == 3 else [0, 255], dtype=np.uint8)
    return levels[glance]


def _window(gt01: np.ndarray, zoom: int | None):
    from gfm.ui.inspector import boundary_window

    return boundary_window(gt01, size=zoom or max(16, min(gt01.shape) // 3))


def _crop(panel: np.ndarray, window) -> np.ndarray:
    y, x, size = window
    return panel[y:y + size, x:x + size]


def _show(ax, panel, cmap, title, window=None):
    import matplotlib.patches as patches

    panel = np.asarray(panel)
    vmax = 255 if panel.dtype == np.uint8 else 1.0
    ax.imshow(panel, cmap=None if panel.ndim == 3 else cmap, vmin=0, vmax=vmax, interpolation="nearest")
    if window is not None:
        y, x, size = window
        ax.add_patch(patches.Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor="yellow", lw=1.2))
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _evaluated(evaluation_dir, experiments) -> list[str]:
    if experiments is not None:
        return _split_list(experiments)
    root = Path(evaluation_dir)
    return sorted(p.name for p in root.iterdir() if (p / PREDICTIONS / "alpha").is_dir()) if root.is_dir() else []


def _per_image(evaluation_dir, experiment) -> dict:
    path = Path(evaluation_dir) / experiment / PER_IMAGE
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype={"name": str})
    return frame.set_index("name").to_dict(orient="index")


def _latency(model, input_size, device, precision, runs, warmup) -> float:
    import torch

    model = model.to(device)
    x = torch.rand(1, 3, *input_size, device=device) * 255
    times = []
    for i in range(int(warmup) + int(runs)):
        _synchronise(device)
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            model(x)
        _synchronise(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def _synchronise(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _split_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() if isinstance(v, str) else v for v in value]
