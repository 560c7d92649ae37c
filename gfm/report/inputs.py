"""The stage outputs the report reads (files only: the report never runs stage code).

Folder contract (issue 11; a run is one trained model, named ``<experiment>-s<seed>``):

* evaluate: ``<evaluate.out>/<experiment>/s<seed>/per_image.csv`` (the legacy
  ``<evaluate.out>/<experiment>/per_image.csv`` is read as seed 0), the reference mattes in
  ``<evaluate.out>/baselines/<name>/per_image.csv`` (``blank``: all-zero alpha; ``closed_form``:
  closed-form matting with the validation trimap), the Table 6 grid ``table6.csv`` (means) and,
  if written, ``table6_per_image.csv`` (``test, d1, d2, run, name`` and the metrics), Table 7's
  ``complexity.csv`` -- all on AM-2k; the same run and baseline tree for each other benchmark
  under ``<evaluate.out>/benchmarks/<name>/``; ``fusions.csv`` (both hybrid fusions of each run),
  Table 5's protocol ``table5/runs.csv`` (``row, run, experiment, seed, backbone, folder``; the
  per-image tables in ``table5/<folder>/per_image.csv``) and ``protocol.json`` (strategy, fusion,
  table5_d, the benchmarks with title and output folder);
* train: ``<train.out>/<experiment>/s<seed>/losses.csv`` (legacy: ``<experiment>/losses.csv``);
* compose: ``metrics/compose.json`` (the domain-gap summary) and ``<compose.out>/tables/domain_gap.csv``
  (the per-image table behind it: ``label, name, *_gap``);
* bg20k: ``metrics/bg20k.json`` (the filters' counts);
* stages 2, 3 and 5: the figures they draw, ``<out>/figures/*.png``, and the captions of their
  index ``<out>/figures/figures.json`` (``[{"file": ..., "caption": ...}, ...]``) where one is written.

A missing output is simply absent (None, empty): the report says "not run" for it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

__all__ = ["PER_IMAGE", "BASELINES", "FIGURES", "BLANK", "CLOSED_FORM", "RESERVED", "DATA_SAMPLE", "DATA_REAL",
           "TABLE6_PER_IMAGE", "DOMAIN_GAP_PER_IMAGE", "FIGURE_INDEX", "PRIMARY", "run_name", "split_run",
           "load_metrics", "read_csv", "run_data", "evaluated_runs", "per_image_tables", "baselines", "seeds_of",
           "training_losses", "stage_figures", "protocol", "other_benchmarks", "table5_runs", "fusions"]

PER_IMAGE, BASELINES, FIGURES, LOSSES = "per_image.csv", "baselines", "figures", "losses.csv"
TABLE6_PER_IMAGE, DOMAIN_GAP_PER_IMAGE = "table6_per_image.csv", "tables/domain_gap.csv"
FIGURE_INDEX = "figures.json"
BLANK, CLOSED_FORM = "blank", "closed_form"
BENCHMARKS, TABLE5, FUSIONS, PROTOCOL = "benchmarks", "table5", "fusions", "protocol.json"
#: Folders of ``<evaluate.out>`` and sections of ``metrics/evaluate.json`` that are not experiments
#: (gfm.evaluate.runs.RESERVED).
RESERVED = (BASELINES, FIGURES, BENCHMARKS, TABLE5, FUSIONS)
#: The benchmark at the top level of ``<evaluate.out>`` (gfm.evaluate.benchmarks.PRIMARY).
PRIMARY = "am2k"
DATA_SAMPLE = "embedded world (synthetic, 360 px)"
DATA_REAL = "AM-2k (validation)"

_SEED_DIR = re.compile(r"s(\d+)")
_RUN = re.compile(r"^(?P<experiment>.+)-s(?P<seed>\d+)$")


def run_name(experiment: str, seed: int) -> str:
    """``<experiment>-s<seed>``: the name of one trained model in tables and JSON."""
    return f"{experiment}-s{int(seed)}"


def split_run(name: str) -> tuple[str, int] | None:
    """(experiment, seed) of a run name ``<experiment>-s<seed>``; None for another name."""
    match = _RUN.match(str(name))
    return (match.group("experiment"), int(match.group("seed"))) if match else None


def load_metrics(metrics_dir: str | Path = "metrics",
                 names: Iterable[str] = ("download", "bg20k", "compose", "evaluate")) -> dict:
    """The stages' metrics files ``<metrics_dir>/<name>.json`` that exist -> ``{name: content}``."""
    found = {}
    for name in names:
        path = Path(metrics_dir) / f"{name}.json"
        if path.is_file():
            found[name] = read_json(path)
    return found


def read_json(path: str | Path):
    """The content of the JSON file ``path``; a ValueError naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:                           # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not valid JSON ({error})") from error


def read_csv(path: str | Path) -> pd.DataFrame | None:
    """``path`` as a DataFrame (``name`` read as text), or None when the file does not exist."""
    path = Path(path)
    return pd.read_csv(path, dtype={"name": str}) if path.is_file() else None


def run_data(download: Mapping | None = None, profile: str = "sample") -> str:
    """What this run evaluated on: :data:`DATA_SAMPLE` (the embedded world) or :data:`DATA_REAL`.

    ``download`` is ``metrics/download.json`` (its ``source``: embedded | real); without it the
    ``profile`` decides (sample: the embedded world).
    """
    source = (download or {}).get("source")
    if source is None:
        source = "embedded" if profile == "sample" else "real"
    return DATA_SAMPLE if source == "embedded" else DATA_REAL


def evaluated_runs(evaluation_dir: str | Path, experiments: Iterable[str] | None = None) -> dict[str, Path]:
    """``{run name: per_image.csv}`` of every evaluated run, ordered by experiment then seed.

    ``experiments`` default: every folder of ``evaluation_dir`` but :data:`RESERVED`. An experiment
    without ``s<seed>/`` folders but with the legacy ``per_image.csv`` counts as seed 0.
    """
    root = Path(evaluation_dir)
    if experiments is None:
        experiments = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in RESERVED) \
            if root.is_dir() else []
    found = {}
    for experiment in experiments:
        folder = root / experiment
        seeds = sorted(int(m.group(1)) for p in folder.iterdir() if (m := _SEED_DIR.fullmatch(p.name))
                       and (p / PER_IMAGE).is_file()) if folder.is_dir() else []
        for seed in seeds:
            found[run_name(experiment, seed)] = folder / f"s{seed}" / PER_IMAGE
        if not seeds and (folder / PER_IMAGE).is_file():
            found[run_name(experiment, 0)] = folder / PER_IMAGE
    return found


def per_image_tables(evaluation_dir: str | Path, experiments: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """``{run name: per-image table}`` of :func:`evaluated_runs`, plus ``"blank"`` (the all-zero
    matte of ``baselines/blank``) when it was evaluated."""
    tables = {run: _per_image(path) for run, path in evaluated_runs(evaluation_dir, experiments).items()}
    blank = baselines(evaluation_dir).get(BLANK)
    if blank is not None:
        tables[BLANK] = blank
    return tables


def baselines(evaluation_dir: str | Path) -> dict[str, pd.DataFrame]:
    """``{name: per-image table}`` of the reference mattes in ``<evaluation_dir>/baselines/``."""
    root = Path(evaluation_dir) / BASELINES
    if not root.is_dir():
        return {}
    return {p.name: _per_image(p / PER_IMAGE) for p in sorted(root.iterdir()) if (p / PER_IMAGE).is_file()}


def seeds_of(runs: Iterable[str]) -> dict[str, list[int]]:
    """``{experiment: [seed, ...]}`` of run names ``<experiment>-s<seed>`` (others are skipped)."""
    seeds: dict[str, list[int]] = {}
    for name in runs:
        parsed = split_run(name)
        if parsed is not None:
            seeds.setdefault(parsed[0], []).append(parsed[1])
    return {experiment: sorted(found) for experiment, found in seeds.items()}


def training_losses(models_dir: str | Path, experiments: Iterable[str] | None = None) -> dict[str, Path]:
    """``{run name: losses.csv}`` of the training runs (``<experiment>/s<seed>/losses.csv``; the
    legacy ``<experiment>/losses.csv`` counts as seed 0); ``experiments`` default: every folder."""
    root = Path(models_dir)
    if experiments is None:
        experiments = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    found = {}
    for experiment in experiments:
        folder = root / experiment
        seeds = sorted(int(m.group(1)) for p in folder.iterdir() if (m := _SEED_DIR.fullmatch(p.name))
                       and (p / LOSSES).is_file()) if folder.is_dir() else []
        for seed in seeds:
            found[run_name(experiment, seed)] = folder / f"s{seed}" / LOSSES
        if not seeds and (folder / LOSSES).is_file():
            found[run_name(experiment, 0)] = folder / LOSSES
    return found


def stage_figures(stage_out: str | Path) -> list[tuple[str, Path]]:
    """The figures a stage drew, ``<stage_out>/figures/*.png`` sorted by name, each with its caption:
    the one of the stage's ``figures.json`` index, else one made from the file name
    ("qualitative_m_0001.png" -> "Qualitative m 0001"); [] when the stage has not run."""
    folder = Path(stage_out) / FIGURES
    if not folder.is_dir():
        return []
    captions = {}
    if (folder / FIGURE_INDEX).is_file():
        entries = read_json(folder / FIGURE_INDEX)
        captions = {str(e["file"]): str(e["caption"]) for e in entries if isinstance(e, Mapping)
                    and e.get("file") and e.get("caption")}
    return [(captions.get(path.name, _caption(path)), path) for path in sorted(folder.glob("*.png"))]


def protocol(evaluation_dir: str | Path) -> dict:
    """``<evaluation_dir>/protocol.json`` (how the evaluate stage tested), or {} when not written."""
    path = Path(evaluation_dir) / PROTOCOL
    return read_json(path) if path.is_file() else {}


def other_benchmarks(evaluation_dir: str | Path) -> dict[str, dict]:
    """The benchmarks evaluated besides AM-2k: ``{name: {"title": ..., "folder": Path}}`` (from
    :func:`protocol`), each folder laid out as ``<evaluate.out>`` itself (runs, ``baselines/``)."""
    root = Path(evaluation_dir)
    return {entry["name"]: {"title": entry.get("title", entry["name"]), "folder": root / entry["out"]}
            for entry in protocol(root).get("benchmarks", []) if entry.get("name") != PRIMARY}


def table5_runs(evaluation_dir: str | Path) -> tuple[pd.DataFrame | None, dict[str, pd.DataFrame]]:
    """Table 5's protocol runs (``table5/runs.csv``, None when not run) and ``{run: per-image table}``."""
    root = Path(evaluation_dir) / TABLE5
    runs = read_csv(root / "runs.csv")
    if runs is None:
        return None, {}
    return runs, {row["run"]: _per_image(root / row["folder"] / PER_IMAGE) for _, row in runs.iterrows()}


def fusions(evaluation_dir: str | Path) -> pd.DataFrame | None:
    """``<evaluation_dir>/fusions.csv``: both hybrid fusions of each run (None when not written)."""
    return read_csv(Path(evaluation_dir) / f"{FUSIONS}.csv")


def _per_image(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"name": str})
    if "name" not in frame.columns:
        raise ValueError(f"{path}: a per-image table needs a 'name' column, got {list(frame.columns)}")
    return frame


def _caption(path: Path) -> str:
    words = re.sub(r"[_\-]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:]
