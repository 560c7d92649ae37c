"""The evaluate stage (05_evaluate): every run of the grid on every benchmark, the reference mattes,
both hybrid fusions, Tables 5, 6 and 7, the qualitative figures and ``metrics/evaluate.json`` --
from :class:`gfm.core.config.Params` only.

Outputs (``<out>`` = ``evaluate.out``, built beside and renamed into place as a whole):

``<out>/<experiment>/s<seed>/per_image.csv``
    one row per AM-2k validation image of run ``<experiment>-s<seed>``
    (:func:`gfm.evaluate.run.evaluate_model`; with the hybrid test of a TT/FT/BT model also
    ``<metric>_<fusion>``, the other fusion of ``evaluate.fusion`` from the same network passes),
    and ``predictions/`` beside it (every image with ``evaluate.save_predictions``, else the
    figures' images of the figures' runs only).
``<out>/baselines/<name>/per_image.csv``
    the reference mattes of ``evaluate.baselines`` (:mod:`gfm.evaluate.baselines`).
``<out>/runs.csv``, ``<out>/baselines.csv``
    the means of each run and of each reference matte.
``<out>/benchmarks/<benchmark>/...``
    the same tree (runs, baselines, ``runs.csv``, ``baselines.csv``) for every other benchmark of
    ``evaluate.benchmarks`` (:mod:`gfm.evaluate.benchmarks`; predictions only with
    ``evaluate.save_predictions``).
``<out>/fusions.csv``
    both hybrid fusions of every run so tested, on every benchmark: ``benchmark, run, experiment,
    seed, fusion`` (official | upsampled | difference = upsampled - official) and the means.
``<out>/table5/``
    Table 5's protocol (:mod:`gfm.evaluate.table5`): every RoSTa model in one pass at
    1/``evaluate.table5_d`` (null: the stage's test) and EN-median, on AM-2k.
``<out>/table6.csv``, ``<out>/table6_per_image.csv``, ``<out>/complexity.csv``
    Table 6 on ``evaluate.table6_model``'s lowest seed (on ``evaluate.table6_images`` evenly spread
    images, default all; means, and one row per setting and image) and Table 7 as measured here.
``<out>/figures/``
    the PNG figures and their index (:func:`gfm.evaluate.figures.save_figures`): the
    ``qualitative_images`` images on which the experiments' first seeds disagree most.
``<out>/protocol.json``
    how the numbers were made: strategy, d1, d2, fusion, table5_d, the benchmarks (name, title,
    split read, output folder) and Table 5's RoSTa sets.
``<out>/timing.json``
    where the stage's time went: seconds per image of inference, metrics and each reference matte.
``evaluate.metrics_out``
    AM-2k at the top level, ``{<experiment>: {<metric>: mean over seeds, ..., "images": n, "seeds":
    n}, "baselines": {<name>: {<metric>: mean, ..., "images": n}}, "fusions": {<experiment>:
    {"official" | "upsampled" | "difference": {<metric>: mean over seeds}}}}``; then ``"table5":
    {<experiment> | <TT>+<FT>+<BT> (EN-median): {<metric>: mean over seeds, ...}}`` when Table 5 ran
    and ``"benchmarks": {<benchmark>: {the same three sections}}`` for the other benchmarks. Flat
    numbers for ``dvc metrics show``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from gfm.core.config import Params
from gfm.core.device import resolve_device
from gfm.core.io import atomic_dir, write_json
from gfm.core.layout import Split
from gfm.evaluate.baselines import SHOWN, evaluate_baseline
from gfm.evaluate.benchmarks import PRIMARY, Benchmark, benchmarks_of
from gfm.evaluate.complexity import complexity_table
from gfm.evaluate.figures import contested_images, save_figures
from gfm.evaluate.files import PER_IMAGE, PREDICTIONS, write_table
from gfm.evaluate.fusions import FUSION_METRICS
from gfm.evaluate.run import evaluate_model, fusion_summary, mean_over_seeds, predict_and_save, summarise
from gfm.evaluate.runs import BASELINES_DIR, FIGURES_DIR, FUSIONS_KEY, TABLE5_DIR, Run, baseline_folder, trained_runs
from gfm.evaluate.table5 import EN_MEDIAN, EN_MEDIAN_DIR, RostaSet, rosta_sets, table5_per_image
from gfm.evaluate.table6 import spread_subset, table6_means, table6_per_image
from gfm.model.infer import FUSIONS, load_model

__all__ = ["EvaluateResult", "run", "validation_of"]

#: Evaluation precision: the paper's numbers are fp32.
PRECISION = "fp32"
#: Sections of ``evaluate.metrics_out`` besides the experiments (gfm.evaluate.runs.RESERVED holds them).
BENCHMARKS_KEY = "benchmarks"


@dataclass(frozen=True)
class EvaluateResult:
    """What :func:`run` wrote, as tables (the notebook shows them); AM-2k's unless said otherwise."""

    out: Path
    runs: pd.DataFrame           # one row per run: run, experiment, seed, model, images, means, wall_s
    experiments: pd.DataFrame    # one row per experiment: means over seeds, seeds
    baselines: pd.DataFrame      # one row per reference matte
    table6: pd.DataFrame
    complexity: pd.DataFrame
    figures: list                # the entries of <out>/figures/figures.json
    timing: dict                 # <out>/timing.json
    metrics: dict                # evaluate.metrics_out
    fusions: pd.DataFrame = field(default_factory=pd.DataFrame)   # <out>/fusions.csv
    table5: pd.DataFrame = field(default_factory=pd.DataFrame)    # <out>/table5/runs.csv (empty: no RoSTa set)
    benchmarks: dict = field(default_factory=dict)  # the other benchmarks: name -> {"runs", "experiments", "baselines"}

    def figure_paths(self, kind: str | None = None) -> list[Path]:
        """The saved figures (of ``kind``: qualitative | decoders), in index order."""
        return [self.out / FIGURES_DIR / e["file"] for e in self.figures if kind in (None, e["kind"])]


def run(params: Params, *, progress: bool = False) -> EvaluateResult:
    """Evaluate every experiment x seed of ``evaluate.experiments`` and the reference mattes on every
    benchmark of ``evaluate.benchmarks``, Tables 5, 6 and 7; save the figures; write
    ``evaluate.metrics_out`` (module docstring)."""
    cfg, started = params.evaluate, time.perf_counter()
    device = resolve_device(params.device)
    benchmarks = benchmarks_of(params)
    primary = next(b for b in benchmarks if b.name == PRIMARY)
    split = primary.split
    names = split.names()
    runs = {experiment: trained_runs(params.train.out, experiment) for experiment in cfg.experiments}
    table6_run = (runs.get(cfg.table6_model) or trained_runs(params.train.out, cfg.table6_model))[0]
    sets = rosta_sets(params.train.experiments, cfg.experiments)
    options = dict(strategy=cfg.strategy, d1=cfg.d1, d2=cfg.d2, fusion=cfg.fusion, device=device, precision=PRECISION)
    timing: dict = {"images": len(names), "device": str(device), "torch_threads": torch.get_num_threads(),
                    "workers": cfg.workers}
    out = Path(cfg.out)
    with atomic_dir(out) as tmp:
        run_rows, fusion_rows = _evaluate_runs(primary, runs, tmp, cfg, options, progress)
        figure_runs = [items[0] for items in runs.values()]
        figure_names = contested_images(tmp, figure_runs, n=cfg.qualitative_images)
        if not cfg.save_predictions:
            for item in figure_runs:
                model, _ = load_model(item.model, device=device)
                predict_and_save(model, split.root, figure_names, item.folder(tmp) / PREDICTIONS, **options)
        shown = [name for name in cfg.baselines if name in SHOWN]
        baseline_rows = [_evaluate_baseline(name, split, tmp, cfg, name in shown, figure_names, progress)
                         for name in cfg.baselines]
        others = {}
        for bench in benchmarks:
            if bench is not primary:
                others[bench.name] = _other_benchmark(bench, runs, tmp, cfg, options, progress)
                fusion_rows += others[bench.name].pop("fusion_rows")
        table5 = _table5(sets, runs, split, tmp, cfg, device, progress)
        grid, timing["table6"] = _table6(table6_run, split, spread_subset(names, cfg.table6_images), tmp, cfg,
                                         device, progress)
        start = time.perf_counter()
        complexity = complexity_table(cfg.complexity_backbones, device=device, precision=PRECISION,
                                      latency_runs=cfg.latency_runs, latency_backbones=cfg.latency_backbones)
        write_table(complexity, tmp / "complexity.csv")
        timing["complexity_wall_s"] = _seconds(start)
        start = time.perf_counter()
        figures = save_figures(tmp, split.root, figure_runs, figure_names, baselines=shown, folder=tmp / FIGURES_DIR)
        timing["figures_wall_s"] = _seconds(start)
        run_table, baseline_table = pd.DataFrame(run_rows), pd.DataFrame(baseline_rows)
        write_table(run_table, tmp / "runs.csv")
        write_table(baseline_table, tmp / "baselines.csv")
        fusions = pd.DataFrame(fusion_rows)
        if len(fusions):
            write_table(fusions, tmp / f"{FUSIONS_KEY}.csv")
        write_json(tmp / "protocol.json", _protocol(cfg, benchmarks, sets))
        timing.update(_per_image_times(run_table, baseline_table), stage_wall_s=_seconds(started))
        write_json(tmp / "timing.json", timing)

    summary = _section(runs, run_rows, baseline_rows, fusions[fusions["benchmark"] == PRIMARY] if len(fusions) else fusions)
    if len(table5):
        summary[TABLE5_DIR] = {experiment: _numbers(mean_over_seeds(part.to_dict("records")))
                               for experiment, part in table5.groupby("experiment", sort=False)}
    if others:
        summary[BENCHMARKS_KEY] = {name: _section(runs, found["runs"].to_dict("records"),
                                                  found["baselines"].to_dict("records"),
                                                  fusions[fusions["benchmark"] == name])
                                   for name, found in others.items()}
    write_json(cfg.metrics_out, summary)
    experiments = {e: mean_over_seeds([r for r in run_rows if r["experiment"] == e]) for e in runs}
    for found in others.values():
        found["experiments"] = _experiment_frame(runs, found["runs"].to_dict("records"))
    return EvaluateResult(out=out, runs=run_table,
                          experiments=pd.DataFrame.from_dict(experiments, orient="index").rename_axis("experiment"),
                          baselines=baseline_table, table6=grid, complexity=complexity, figures=figures,
                          timing=timing, metrics=summary, fusions=fusions, table5=table5, benchmarks=others)


def validation_of(params: Params) -> Split:
    """The AM-2k validation split the stage evaluates on (and draws its figures from):
    ``data.datasets``'s, else the embedded world's (``data.data_root``) before stage 1 has
    materialised it (:func:`gfm.evaluate.benchmarks.benchmarks_of`)."""
    return next(b.split for b in benchmarks_of(params) if b.name == PRIMARY)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _evaluate_runs(bench: Benchmark, runs: dict, out: Path, cfg, options: dict,
                   progress: bool) -> tuple[list[dict], list[dict]]:
    """Every run on ``bench`` into ``bench.folder(out)``: the rows of its ``runs.csv`` and of ``fusions.csv``."""
    rows, fusion_rows = [], []
    for items in runs.values():
        for item in items:
            row, fusions = _evaluate_run(item, bench.split, bench.folder(out), cfg, options, progress)
            rows.append(row)
            fusion_rows += [{"benchmark": bench.name, "run": item.name, "experiment": item.experiment,
                             "seed": item.seed, "fusion": kind, **means} for kind, means in (fusions or {}).items()]
    return rows, fusion_rows


def _evaluate_run(item: Run, split: Split, out: Path, cfg, options: dict, progress: bool) -> tuple[dict, dict | None]:
    """Evaluate one run into ``out``; its row of ``runs.csv`` and its :func:`gfm.evaluate.run.fusion_summary`."""
    start = time.perf_counter()
    model, _ = load_model(item.model, device=options["device"])
    folder = item.folder(out)
    per_image = evaluate_model(model, split.root, workers=cfg.workers, progress=progress, desc=item.name,
                               save_to=folder / PREDICTIONS if cfg.save_predictions else None, compare_fusions=True,
                               **options)
    write_table(per_image, folder / PER_IMAGE)
    row = {"run": item.name, "experiment": item.experiment, "seed": item.seed, "model": str(item.model),
           **summarise(per_image), "wall_s": _seconds(start)}
    return row, fusion_summary(per_image, options["fusion"])


def _evaluate_baseline(name: str, split: Split, out: Path, cfg, shown: bool, figure_names, progress: bool) -> dict:
    """Score one reference matte into ``out`` (its mattes kept when ``shown`` in the figures); its row
    of ``baselines.csv``."""
    start = time.perf_counter()
    folder = baseline_folder(out, name)
    per_image = evaluate_baseline(name, split.root, workers=cfg.workers, progress=progress,
                                  save_to=folder / PREDICTIONS if shown else None,
                                  save_names=None if cfg.save_predictions else figure_names)
    write_table(per_image, folder / PER_IMAGE)
    return {"baseline": name, **summarise(per_image), "wall_s": _seconds(start)}


def _other_benchmark(bench: Benchmark, runs: dict, out: Path, cfg, options: dict, progress: bool) -> dict:
    """Every run and reference matte on a benchmark other than AM-2k, into ``<out>/benchmarks/<name>``:
    ``{"runs": DataFrame, "baselines": DataFrame, "fusion_rows": [...]}`` (its ``runs.csv`` and
    ``baselines.csv`` written)."""
    folder = bench.folder(out)
    rows, fusion_rows = _evaluate_runs(bench, runs, out, cfg, options, progress)
    baselines = [{"baseline": name, **summarise(_baseline_table(name, bench.split, folder, cfg, progress))}
                 for name in cfg.baselines]
    found = {"runs": pd.DataFrame(rows), "baselines": pd.DataFrame(baselines), "fusion_rows": fusion_rows}
    write_table(found["runs"], folder / "runs.csv")
    write_table(found["baselines"], folder / "baselines.csv")
    return found


def _baseline_table(name: str, split: Split, folder: Path, cfg, progress: bool) -> pd.DataFrame:
    """One reference matte on a benchmark other than AM-2k (mattes kept with ``save_predictions``)."""
    target = baseline_folder(folder, name)
    per_image = evaluate_baseline(name, split.root, workers=cfg.workers, progress=progress,
                                  save_to=target / PREDICTIONS if cfg.save_predictions else None)
    write_table(per_image, target / PER_IMAGE)
    return per_image


def _table5(sets: list[RostaSet], runs: dict, split: Split, out: Path, cfg, device, progress: bool) -> pd.DataFrame:
    """Table 5's protocol for every RoSTa set and every seed its members share, into ``<out>/table5``;
    the rows of its ``runs.csv`` (empty when the grid has no RoSTa set)."""
    rows = []
    stage_options = dict(strategy=cfg.strategy, d1=cfg.d1, d2=cfg.d2, fusion=cfg.fusion)
    for rosta_set in sets:
        seeds = {rosta: {item.seed: item for item in runs[name]} for rosta, name in rosta_set.members.items()}
        shared = sorted(set.intersection(*(set(found) for found in seeds.values())))
        if not shared:
            raise ValueError(f"Table 5: the RoSTa set {dict(rosta_set.members)} shares no seed (seeds: "
                             f"{ {r: sorted(found) for r, found in seeds.items()} }); train them with the same train.seeds")
        for seed in shared:
            models = {rosta: load_model(seeds[rosta][seed].model, device=device)[0] for rosta in rosta_set.members}
            tables = table5_per_image(models, split.root, d=cfg.table5_d, stage_options=stage_options, device=device,
                                      precision=PRECISION, workers=cfg.workers, progress=progress)
            for row, table in tables.items():
                experiment = rosta_set.name if row == EN_MEDIAN else rosta_set.members[row]
                folder = Path(EN_MEDIAN_DIR, experiment) if row == EN_MEDIAN else Path(experiment)
                folder = folder / f"s{seed}"
                write_table(table, out / TABLE5_DIR / folder / PER_IMAGE)
                rows.append({"run": f"{experiment}-s{seed}", "row": row, "experiment": experiment, "seed": seed,
                             "backbone": rosta_set.backbone, "folder": folder.as_posix(), **summarise(table)})
    table = pd.DataFrame(rows)
    if rows:
        write_table(table, out / TABLE5_DIR / "runs.csv")
    return table


def _table6(item: Run, split: Split, names, out: Path, cfg, device, progress: bool) -> tuple[pd.DataFrame, dict]:
    """Table 6 of ``item`` on ``names`` into ``out`` (``table6.csv``, ``table6_per_image.csv``); the grid
    and its timing entry."""
    start = time.perf_counter()
    model, _ = load_model(item.model, device=device)
    per_image = table6_per_image(model, split.root, ds=cfg.table6_d, singles=cfg.table6_single, fusion=cfg.fusion,
                                 device=device, precision=PRECISION, workers=cfg.workers, names=names,
                                 progress=progress)
    grid = table6_means(per_image)
    write_table(grid.assign(run=item.name), out / "table6.csv")
    write_table(per_image.assign(run=item.name)[["test", "d1", "d2", "run", *per_image.columns[3:]]],
                out / "table6_per_image.csv")
    return grid, {"run": item.name, "images": len(names), "settings": len(grid), "wall_s": _seconds(start)}


def _section(runs: dict, run_rows: list[dict], baseline_rows: list[dict], fusions: pd.DataFrame) -> dict:
    """One benchmark's part of ``evaluate.metrics_out``: experiments, ``baselines`` and ``fusions``."""
    section = {e: _numbers(mean_over_seeds([r for r in run_rows if r["experiment"] == e])) for e in runs}
    section[BASELINES_DIR] = {row["baseline"]: _numbers(row, drop=("baseline", "wall_s")) for row in baseline_rows}
    compared = {}
    for experiment, part in (fusions.groupby("experiment", sort=False) if len(fusions) else ()):
        compared[experiment] = {kind: {key: _mean(rows[key]) for key in FUSION_METRICS if rows[key].notna().any()}
                                for kind, rows in part.groupby("fusion", sort=False)}
    if compared:
        section[FUSIONS_KEY] = compared
    return section


def _experiment_frame(runs: dict, run_rows: list[dict]) -> pd.DataFrame:
    means = {e: mean_over_seeds([r for r in run_rows if r["experiment"] == e]) for e in runs}
    return pd.DataFrame.from_dict(means, orient="index").rename_axis("experiment")


def _protocol(cfg, benchmarks: list[Benchmark], sets: list[RostaSet]) -> dict:
    """``<out>/protocol.json``: how this stage tested the models (the report states it)."""
    return {"strategy": cfg.strategy, "d1": cfg.d1, "d2": cfg.d2, "fusion": cfg.fusion, "fusions": list(FUSIONS),
            "table5_d": cfg.table5_d, "benchmarks": [b.describe() for b in benchmarks],
            "table5_sets": [{"members": dict(s.members), "backbone": s.backbone, "en_median": s.ensemble}
                            for s in sets]}


def _per_image_times(runs: pd.DataFrame, baselines: pd.DataFrame) -> dict:
    """Seconds per image: inference and metrics of the runs (means over runs), wall clock of a run
    (everything: reading, inference, metrics, saving), and each reference matte's estimation."""
    per_image = {"inference_s_per_image": float(runs["inference_s"].mean()),
                 "metrics_s_per_image": float(runs["metrics_s"].mean()),
                 "run_wall_s_per_image": float((runs["wall_s"] / runs["images"]).mean())}
    for _, row in baselines.iterrows():
        per_image[f"{row['baseline']}_s_per_image"] = float(row["inference_s"])
        per_image[f"{row['baseline']}_wall_s_per_image"] = float(row["wall_s"] / row["images"])
    return {key: float(f"{value:.4g}") for key, value in per_image.items()}


def _numbers(values: dict, drop=()) -> dict:
    """The numeric entries of ``values`` (None: no finite value, left out) for the metrics JSON."""
    return {k: v for k, v in values.items() if k not in drop and v is not None}


def _mean(values: pd.Series) -> float:
    return float(f"{float(values.dropna().mean()):.6g}")


def _seconds(start: float) -> float:
    return round(time.perf_counter() - start, 3)
