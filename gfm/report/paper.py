"""The paper report (stage 6): this run's numbers beside the paper's, and which of its claims hold.

The paper's Tables 1-7 are images; the numbers its prose quotes are transcribed once, with their
origin, in ``gfm/report/paper_numbers.yaml`` (:func:`paper_numbers`). Every table function here puts the
paper's lines (``source = "paper"``, ``data`` = AM-2k / PM-10k) beside this run's lines
(``source = "this run"``, ``data`` = what the run evaluated on: the embedded synthetic world in the
sample profile, AM-2k in the paper profile). Absolute values are not comparable across data
(image size and content differ); orderings and ratios are, and :func:`findings` checks those.

Experiments are mapped to the paper's rows by their configuration (track, backbone, RoSTa,
decoder, PPM, bridge block; ``params.yaml`` ``train.experiments``), or, without one, by their name
(:func:`parse_experiment`: ``ori-tt-d``, ``coco-tt-r``, ``ori-single``, ``rssn-blur-r``, ...).
A paper row with no experiment of this run says "not run in this profile".

* :func:`paper_numbers` -- the transcribed numbers as a DataFrame.
* :func:`table1` ... :func:`table7` -- the paper's Tables 1-7 with this run beside them
  (Tables 2 and 3's trimap-based rows: the paper's numbers only).
* :func:`findings` -- one row per qualitative claim: the paper's evidence, this run's numbers,
  reproduced yes / no / partly / not run; :func:`findings_summary` counts them.
* Figures: :func:`fig_composition_routes` (Fig. 3, the run's stored composites),
  :func:`fig_bg20k_examples` (Fig. 4), :func:`fig_qualitative` (Figs. 6-7),
  :func:`fig_training_curves`, :func:`fig_domain_gap`, :func:`fig_comp_track`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from gfm.core.figures import save_figure  # noqa: F401  (re-exported for the notebooks)
from gfm.core.io import write_text

__all__ = [
    "NUMBERS_FILE", "DATA_SAMPLE", "DATA_REAL", "NOT_RUN", "NOT_PART",
    "paper_numbers", "paper_value", "run_data", "load_experiments", "load_metrics", "read_csv", "run_overview",
    "parse_experiment", "experiment_label",
    "table1", "table2", "table3", "table4", "table5", "table6", "table7",
    "findings", "findings_summary", "pretty", "save_table", "save_figure",
    "fig_composition_routes", "fig_bg20k_examples", "fig_qualitative", "fig_training_curves",
    "fig_domain_gap", "fig_comp_track",
]

NUMBERS_FILE = Path(__file__).with_name("paper_numbers.yaml")
DATA_SAMPLE = "embedded world (synthetic, 360 px)"
DATA_REAL = "AM-2k (validation)"
NOT_RUN = "not run in this profile"
NOT_PART = "not reproduced in this run: trimap-based methods are not part of this companion"
SHM_NOTE = "SHM (Chen et al. 2018) is not part of this companion: the paper's numbers only"

#: Columns of the paper's Table 1 (and 3); Tables 4-6 use the first five.
TABLE1_METRICS = ("sad", "mse", "mad", "grad", "conn", "sad_trans", "sad_fg", "sad_bg")
MAIN_METRICS = TABLE1_METRICS[:5]
METRIC_NAMES = {"sad": "SAD", "mse": "MSE", "mad": "MAD", "grad": "Grad", "conn": "Conn", "sad_trans": "SAD-TRAN",
                "sad_fg": "SAD-FG", "sad_bg": "SAD-BG", "parameters_m": "Params (M)", "gmac": "GMac",
                "latency_s": "Time (s)"}
#: Backbone names (gfm.model.backbones) -> the paper's letters.
BACKBONE_CODES = {"d121": "d", "r34": "r", "r101": "r†", "r34_2b": "r2b", "r18_lite": "r18-lite"}
#: Training tracks (params.yaml ``track``) -> the paper's track names.
TRACKS = {"ori": "ORI", "coco": "COMP-COCO", "bg20k": "COMP-BG20K", "rssn": "COMP-RSSN",
          "rssn_blur": "COMP-BG20K w/ blur", "rssn_denoise": "COMP-BG20K w/ denoise",
          "rssn_noise": "COMP-BG20K w/ noise"}
#: A configuration's defaults: the paper's GFM (two decoders, five PPM blocks, bridge block).
DEFAULT_CONFIG = {"track": "ori", "backbone": None, "rosta": "TT", "decoder": "two", "ppm": "five", "bridge": True}

_NAME_TOKENS = {"tt": ("rosta", "TT"), "ft": ("rosta", "FT"), "bt": ("rosta", "BT"), "rim": ("rosta", "RIM"),
                "single": ("decoder", "single"), "noppm": ("ppm", "none"), "oneppm": ("ppm", "one"),
                "nobb": ("bridge", False), "d": ("backbone", "d121"), "r": ("backbone", "r34"),
                "r101": ("backbone", "r101"), "r2b": ("backbone", "r34_2b"), "lite": ("backbone", "r18_lite")}
_GFM_ROW = re.compile(r"^(GFM-[A-Z]+)\([^)]*\)")


# --------------------------------------------------------------------------------------------
# The paper's numbers and the mapping of experiments to its rows
# --------------------------------------------------------------------------------------------

def paper_numbers(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's reported numbers (``gfm/report/paper_numbers.yaml``) -> DataFrame.

    Columns ``id, table, dataset, track, method, metric, value, source, note``; one row per
    number, each with the table or section it comes from (the file's header explains the fields).
    """
    path = Path(path) if path is not None else NUMBERS_FILE
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable paper-numbers YAML file ({error})") from error
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list of entries")
    required = ("id", "table", "dataset", "track", "method", "metric", "value", "source")
    for index, entry in enumerate(entries):
        missing = [key for key in required if not isinstance(entry, dict) or entry.get(key) in (None, "")]
        if missing:
            raise ValueError(f"{path}: entry {index} ({entry.get('id') if isinstance(entry, dict) else entry!r}) "
                             f"lacks {missing}")
    frame = pd.DataFrame(entries, columns=[*required, "note"])
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}")
    frame["table"] = frame["table"].astype(str)
    frame["value"] = frame["value"].astype(float)
    frame["note"] = frame["note"].fillna("")
    return frame


def paper_value(numbers: pd.DataFrame, id: str) -> float:
    """The value of entry ``id`` of :func:`paper_numbers`."""
    match = numbers.loc[numbers["id"] == id, "value"]
    if match.empty:
        raise KeyError(f"paper numbers: no entry {id!r}")
    return float(match.iloc[0])


def run_data(download: Mapping | None = None, profile: str = "sample") -> str:
    """What this run evaluated on: :data:`DATA_SAMPLE` (the embedded world) or :data:`DATA_REAL`.

    ``download`` is ``metrics/download.json`` (its ``source``: embedded | real); without it the
    ``profile`` decides (sample: embedded world).
    """
    source = (download or {}).get("source")
    if source is None:
        source = "embedded" if profile == "sample" else "real"
    return DATA_SAMPLE if source == "embedded" else DATA_REAL


def load_experiments(path: str | Path) -> dict:
    """``train.experiments`` of a params file or profile (e.g. ``profiles/paper.yaml``) -> dict."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable YAML file ({error})") from error
    experiments = (params.get("train") or {}).get("experiments") or {}
    if not isinstance(experiments, dict):
        raise ValueError(f"{path}: train.experiments must be a mapping of name -> configuration")
    return dict(experiments)


def load_metrics(metrics_dir: str | Path = "metrics",
                 names: Sequence[str] = ("download", "bg20k", "compose", "evaluate")) -> dict:
    """The stages' metrics files ``<metrics_dir>/<name>.json`` that exist -> {name: content}
    (a missing stage is simply absent, so the report shows what ran)."""
    import json

    found = {}
    for name in names:
        path = Path(metrics_dir) / f"{name}.json"
        if path.is_file():
            try:
                found[name] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise ValueError(f"{path}: not valid JSON ({error})") from error
    return found


def read_csv(path: str | Path) -> pd.DataFrame | None:
    """``path`` as a DataFrame, or None when the file does not exist (an optional stage output)."""
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


def run_overview(metrics: Mapping, experiments: Mapping | None = None, *, data: str = DATA_SAMPLE) -> pd.DataFrame:
    """This run's experiments: configuration, the paper row each stands for, the data it was
    evaluated on and its whole-image SAD (NaN: not evaluated) -> DataFrame."""
    runs = _runs(metrics, experiments)
    runs["data"] = np.where(runs["evaluated"], data, "-")
    columns = ["name", "track_label", "method", "backbone", "rosta", "decoder", "ppm", "bridge", "evaluated", "data",
               "sad"]
    return runs[columns].rename(columns={"name": "experiment", "track_label": "paper track", "method": "paper row"})


def parse_experiment(name: str) -> dict:
    """The configuration an experiment's name implies (when its params.yaml entry is not at hand).

    ``<track>-<token>...`` with track ori | coco | bg20k | rssn (``rssn-blur`` etc.: the Table 4
    ablations) and tokens tt | ft | bt | rim (RoSTa), single, noppm, oneppm, nobb, and a backbone
    d | r | r101 | r2b (none: unknown backbone, e.g. the sample's ``ori-tt``).
    """
    tokens = [t for t in str(name).lower().split("-") if t]
    if not tokens or tokens[0] not in ("ori", "coco", "bg20k", "rssn"):
        raise ValueError(f"experiment {name!r}: expected a name starting with ori-, coco-, bg20k- or rssn-; "
                         f"pass its configuration via experiments=")
    config = dict(DEFAULT_CONFIG, track=tokens.pop(0))
    if config["track"] == "rssn" and tokens and tokens[0] in ("blur", "denoise", "noise"):
        config["track"] = f"rssn_{tokens.pop(0)}"
    for token in tokens:
        if token not in _NAME_TOKENS:
            raise ValueError(f"experiment {name!r}: unknown name part {token!r} (expected one of "
                             f"{sorted(_NAME_TOKENS)}); pass its configuration via experiments=")
        key, value = _NAME_TOKENS[token]
        config[key] = value
    return config


def experiment_label(config: Mapping) -> tuple[str, str]:
    """(track, row) of the paper for an experiment configuration, e.g. ("ORI", "GFM-TT(d) w/o PPM")."""
    config = _config(config)
    backbone = config["backbone"]
    method = f"GFM-{config['rosta']}" + (f"({BACKBONE_CODES.get(backbone, backbone)})" if backbone else "")
    if config["decoder"] == "single":
        method += " SINGLE"
    if config["ppm"] in ("none", "one"):
        method += " w/o PPM" if config["ppm"] == "none" else " one PPM"
    if not config["bridge"]:
        method += " w/o BB"
    return TRACKS.get(config["track"], config["track"]), method


# --------------------------------------------------------------------------------------------
# Tables 1-7
# --------------------------------------------------------------------------------------------

def table1(metrics: Mapping, experiments: Mapping | None = None, *, data: str = DATA_SAMPLE,
           numbers: pd.DataFrame | None = None, planned: Mapping | None = None) -> pd.DataFrame:
    """Table 1: ORI-Track and COMP-Track (COCO, BG-20k, RSSN), the paper's lines and this run's.

    Parameters
    ----------
    metrics : mapping
        ``metrics/evaluate.json``: ``{experiment: {sad, mse, ...}}``.
    experiments : mapping, optional
        ``train.experiments`` of this run (name -> configuration); default: parsed from the names.
    data : str
        The data this run evaluated on (:func:`run_data`).
    numbers : DataFrame, optional
        :func:`paper_numbers` (default: the shipped file).
    planned : mapping, optional
        Experiments of other profiles (``profiles/paper.yaml``), named in "not run" lines.

    Returns
    -------
    DataFrame
        ``track, row, source, data, experiment`` then the metrics of :data:`TABLE1_METRICS` and
        ``note``.
    """
    groups = [("ORI", "SHM", SHM_NOTE),
              ("ORI", "GFM (best)", "the lowest value among the paper's GFM rows; the prose names no variant"),
              ("ORI", "GFM-TT", None), ("ORI", "GFM-FT", None), ("ORI", "GFM-BT", None)]
    for track in ("COMP-COCO", "COMP-BG20K", "COMP-RSSN"):
        groups += [(track, "SHM", SHM_NOTE), (track, "GFM-TT", None)]
    return _comparison("1", groups, TABLE1_METRICS, metrics, experiments, data, numbers, planned)


def table2(numbers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 2: trimap-based methods (DIM, GCA, IndexNet), the paper's numbers only (:data:`NOT_PART`)."""
    groups = [(track, method, NOT_PART) for method in ("DIM", "GCA", "IndexNet") for track in ("COMP-COCO", "ORI")]
    return _comparison("2", groups, ("sad_trans",), {}, {}, DATA_SAMPLE, numbers, None)


def table3(metrics: Mapping, experiments: Mapping | None = None, *, data: str = DATA_SAMPLE,
           numbers: pd.DataFrame | None = None, planned: Mapping | None = None) -> pd.DataFrame:
    """Table 3: GFM(d) against DIM and GFM(d)+DIM (ORI-Track); the trimap-based rows are the
    paper's only, GFM's rows get this run's ORI-Track models beside them. See :func:`table1`."""
    groups = [("ORI", "DIM", NOT_PART), ("ORI", "GFM(d)+DIM", NOT_PART), ("ORI", "GFM-TT", None)]
    return _comparison("3", groups, TABLE1_METRICS, metrics, experiments, data, numbers, planned)


def table4(metrics: Mapping, experiments: Mapping | None = None, *, data: str = DATA_SAMPLE,
           numbers: pd.DataFrame | None = None, planned: Mapping | None = None) -> pd.DataFrame:
    """Table 4: ablations of GFM (ORI-Track: r2b, SINGLE, PPM, BB) and of RSSN (COMP-Track on
    BG-20k: alpha blending, w/ blur, w/ denoise, w/ noise, RSSN). See :func:`table1`."""
    groups = [("ORI", g, None) for g in ("GFM-TT", "GFM-TT SINGLE", "GFM-TT w/o PPM", "GFM-TT one PPM", "GFM-TT w/o BB")]
    groups += [(track, "GFM-TT", None) for track in ("COMP-BG20K", "COMP-BG20K w/ blur", "COMP-BG20K w/ denoise",
                                                     "COMP-BG20K w/ noise", "COMP-RSSN")]
    return _comparison("4", groups, MAIN_METRICS, metrics, experiments, data, numbers, planned)


def table5(metrics: Mapping, experiments: Mapping | None = None, *, data: str = DATA_SAMPLE,
           numbers: pd.DataFrame | None = None, planned: Mapping | None = None) -> pd.DataFrame:
    """Table 5: the RoSTa (TT, FT, BT) and their integration (EN-median, RIM) on the ORI-Track.

    The paper tests every row at ratio 1/3; this run's rows come from the evaluate stage (its own
    test strategy). EN-median is not computed here. See :func:`table1`.
    """
    groups = [("ORI", g, None) for g in ("GFM-TT", "GFM-FT", "GFM-BT")]
    groups += [("ORI", "EN-median", "the median of the TT, FT and BT mattes: not computed in this companion"),
               ("ORI", "GFM-RIM", None)]
    return _comparison("5", groups, MAIN_METRICS, metrics, experiments, data, numbers, planned)


def table6(grid: pd.DataFrame | None, *, data: str = DATA_SAMPLE, numbers: pd.DataFrame | None = None,
           metric: str = "sad") -> pd.DataFrame:
    """Table 6: the best test down-sampling ratios, the paper's against this run's grid.

    Parameters
    ----------
    grid : DataFrame or None
        ``artifacts/evaluation/table6.csv`` (:func:`gfm.evaluate.run.table6`: ``test`` hybrid | single,
        ``d1``, ``d2`` and the metrics); None: not run.
    metric : str
        The metric that ranks the settings (lower is better).

    Returns
    -------
    DataFrame
        One row per test kind (hybrid, single): the paper's best setting, this run's grid and best
        setting, the metric there and at the paper's setting (NaN if not in the grid), and whether
        the best settings agree (yes / no / not in grid / not run).
    """
    numbers = paper_numbers() if numbers is None else numbers
    paper_best = {"hybrid": (paper_value(numbers, "t6_best_hybrid_d1"), paper_value(numbers, "t6_best_hybrid_d2")),
                  "single": (paper_value(numbers, "t6_best_single_d"),) * 2}
    paper_grid = {"hybrid": "d1, d2 in {2, 3, 4}, d1 >= d2", "single": "d in {2.0, 2.2, ..., 3.0}"}
    rows = []
    for test in ("hybrid", "single"):
        d1, d2 = paper_best[test]
        row = {"test": test, "paper_best": _setting(test, d1, d2), "paper_grid": paper_grid[test],
               "paper_data": "AM-2k", "this_run_grid": "", "this_run_best": "", f"{metric}_at_best": math.nan,
               f"{metric}_at_paper_best": math.nan, "data": data, "agrees": "not run"}
        part = _grid_part(grid, test, metric)
        if part is not None:
            best = part.loc[part[metric].idxmin()]
            at_paper = part[np.isclose(part["d1"], d1) & np.isclose(part["d2"], d2)]
            values = sorted(set(part["d1"]) | set(part["d2"]))
            row.update(this_run_grid="d in {" + ", ".join(f"{v:g}" for v in values) + "}",
                       this_run_best=_setting(test, best["d1"], best["d2"]), **{f"{metric}_at_best": float(best[metric])})
            if at_paper.empty:
                row["agrees"] = "not in grid"
            else:
                row[f"{metric}_at_paper_best"] = float(at_paper[metric].iloc[0])
                row["agrees"] = "yes" if np.isclose(best["d1"], d1) and np.isclose(best["d2"], d2) else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def table7(complexity: pd.DataFrame | None, *, numbers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 7: parameters, GMac and inference time at 800 x 800, the paper's and this run's.

    ``complexity`` is ``artifacts/evaluation/complexity.csv`` (:func:`gfm.evaluate.run.complexity_table`:
    ``backbone, parameters_m, gmac, latency_s, device``) or None (not run). The paper's figures
    come from :func:`paper_numbers` (Tesla V100).
    """
    numbers = paper_numbers() if numbers is None else numbers
    paper = numbers[numbers["table"] == "7"]
    ours = {} if complexity is None else {str(r["backbone"]): r for _, r in complexity.iterrows()}
    backbones = list(dict.fromkeys([*ours, "d121", "r34", "r34_2b", "r101"]))
    rows = []
    for backbone in backbones:
        model = f"GFM-TT({BACKBONE_CODES.get(backbone, backbone)})"
        entries = paper[paper["method"] == model]
        line = {"model": model, "backbone": backbone, "source": "paper", "data": "800 x 800, Tesla V100",
                "parameters_m": math.nan, "gmac": math.nan, "latency_s": math.nan,
                "note": _sources(entries) if len(entries) else "no number quoted in the prose (Table 7 is an image)"}
        for _, entry in entries.iterrows():
            line[entry["metric"]] = entry["value"]
        rows.append(line)
        if backbone in ours:
            r = ours[backbone]
            latency = pd.to_numeric(pd.Series([r.get("latency_s")]), errors="coerce").iloc[0]
            rows.append({"model": model, "backbone": backbone, "source": "this run",
                         "data": f"800 x 800, {r.get('device', '?')}", "parameters_m": float(r["parameters_m"]),
                         "gmac": float(r["gmac"]), "latency_s": float(latency),
                         "note": "untrained model; GMac counted by gfm.model.complexity"})
        else:
            rows.append({"model": model, "backbone": backbone, "source": "this run", "data": "-",
                         "parameters_m": math.nan, "gmac": math.nan, "latency_s": math.nan, "note": NOT_RUN})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Findings: the paper's claims, checked on this run
# --------------------------------------------------------------------------------------------

def findings(metrics: Mapping, table6_df: pd.DataFrame | None = None, *, compose: Mapping | None = None,
             bg20k: Mapping | None = None, experiments: Mapping | None = None, numbers: pd.DataFrame | None = None,
             data: str = DATA_SAMPLE, rim_metrics: int = 4, filter_threshold: float = 0.8) -> pd.DataFrame:
    """One row per qualitative claim of the paper: does this run reproduce it?

    Parameters
    ----------
    metrics : mapping
        ``metrics/evaluate.json`` (``{experiment: {sad, ...}}``).
    table6_df : DataFrame, optional
        ``artifacts/evaluation/table6.csv``.
    compose : mapping, optional
        ``metrics/compose.json`` (its ``domain_gap``: ``{label: {distance_to_real, ...}}``).
    bg20k : mapping, optional
        ``metrics/bg20k.json`` (its ``filters``: precision / recall per filter and overall).
    experiments : mapping, optional
        ``train.experiments`` (default: parsed from the experiment names).
    rim_metrics : int
        RIM "beats each individual RoSTa" when it is lower on at least this many of the five main
        metrics (the paper: "better than each individual RoSTa on four evaluation metrics").
    filter_threshold : float
        The BG-20k filters "work" when the overall precision and recall both reach it.

    Returns
    -------
    DataFrame
        ``id, claim, paper_evidence, this_run, reproduced, comment``; ``reproduced`` is yes, no,
        partly (holds for some backbones, not all), or not run. Comparisons are made between
        experiments of the same backbone; the paper's numbers are never used as thresholds.
    """
    numbers = paper_numbers() if numbers is None else numbers
    runs = _runs(metrics, experiments)
    v = lambda id: f"{paper_value(numbers, id):g}"  # noqa: E731
    rows = []

    def add(id, claim, evidence, checks, comment=""):
        this_run, reproduced, extra = _verdict(checks)
        rows.append({"id": id, "claim": claim, "paper_evidence": evidence, "this_run": this_run,
                     "reproduced": reproduced, "comment": "; ".join(c for c in (extra, comment) if c)})

    comp = {name: dict(track=track) for name, track in (("COMP-COCO", "coco"), ("COMP-BG20K", "bg20k"),
                                                         ("COMP-RSSN", "rssn"))}
    add("comp_order", "Real-image SAD: COMP-COCO > COMP-BG20K > COMP-RSSN (each composition step generalises better)",
        f"AM-2k SAD, GFM(d) {v('t1_coco_am2k_gfm_d_sad')} > {v('t1_bg20k_am2k_gfm_d_sad')} > {v('t1_rssn_am2k_gfm_d_sad')}; "
        f"GFM(r) {v('t1_coco_am2k_gfm_r_sad')} > {v('t1_bg20k_am2k_gfm_r_sad')} > {v('t1_rssn_am2k_gfm_r_sad')}; "
        f"SHM {v('t1_coco_am2k_shm_sad')} > {v('t1_bg20k_am2k_shm_sad')} > {v('t1_rssn_am2k_shm_sad')} (Table 1, Sect. 5.3)",
        _ordered(runs, comp, "sad", data))
    add("ori_beats_comp", "The ORI-Track model (trained on real photos) beats every COMP-Track route",
        f"AM-2k SAD, GFM-TT(d) ORI {v('t1_ori_am2k_gfm_tt_d_sad')} vs best COMP {v('t1_rssn_am2k_gfm_d_sad')}; "
        f"GFM-TT(r) {v('t1_ori_am2k_gfm_tt_r_sad')} vs {v('t1_rssn_am2k_gfm_r_sad')}; SHM {v('t1_ori_am2k_shm_sad')} vs "
        f"{v('t1_rssn_am2k_shm_sad')} (Table 1)",
        _beats_all(runs, ("ORI", dict(track="ori")), comp, "sad"))
    add("bg20k_background", "BG-20k backgrounds cut the error mainly in the background area (vs COCO)",
        f"SHM SAD-BG {v('t1_coco_am2k_shm_sad_bg')} -> {v('t1_bg20k_am2k_shm_sad_bg')} (AM-2k), "
        f"{v('t1_coco_pm10k_shm_sad_bg')} -> {v('t1_bg20k_pm10k_shm_sad_bg')} (PM-10k) (Table 1, Sect. 5.3)",
        _ordered(runs, {"COMP-COCO": dict(track="coco"), "COMP-BG20K": dict(track="bg20k")}, "sad_bg", data))
    add("two_decoders", "Two decoders (glance + focus) beat a single decoder (SINGLE)",
        f"AM-2k SAD {v('t4_gfm_tt_d_sad')} vs {v('t4_single_d_sad')} (d), {v('t4_gfm_tt_r_sad')} vs "
        f"{v('t4_single_r_sad')} (r) (Table 4)",
        _ordered(runs, {"SINGLE": dict(decoder="single"), "GFM": {}}, "sad", data, base=dict(track="ori")))
    add("ppm", "The pyramid pooling module (PPM) in the glance decoder helps",
        f"AM-2k SAD {v('t4_gfm_tt_d_sad')} vs w/o PPM {v('t4_noppm_d_sad')} (d), {v('t4_gfm_tt_r_sad')} vs "
        f"{v('t4_noppm_r_sad')} (r) (Table 4)",
        _ordered(runs, {"w/o PPM": dict(ppm="none"), "GFM": {}}, "sad", data, base=dict(track="ori")))
    add("one_ppm", "One PPM block is better than none but worse than five",
        "qualitative, no number quoted (Table 4, Sect. 5.4)",
        _ordered(runs, {"w/o PPM": dict(ppm="none"), "one PPM": dict(ppm="one"), "five PPM": {}}, "sad", data,
                 base=dict(track="ori")))
    add("bridge_block", "The bridge block (BB) in the focus decoder helps",
        f"AM-2k SAD {v('t4_gfm_tt_d_sad')} vs w/o BB {v('t4_nobb_d_sad')} (d), {v('t4_gfm_tt_r_sad')} vs "
        f"{v('t4_nobb_r_sad')} (r) (Table 4)",
        _ordered(runs, {"w/o BB": dict(bridge=False), "GFM": {}}, "sad", data, base=dict(track="ori")))
    add("r2b", "GFM(r2b) improves every metric over GFM-TT(r)", "qualitative, no number quoted (Table 4, Sect. 5.4)",
        _backbone_better(runs, "r34_2b", "r34"))
    add("tt_best", "TT is the best RoSTa (vs FT and BT)",
        f"Sect. 5.3: 'GFM using TT as the RoSTa performs the best'; Table 5 (ratio 1/3) SAD {v('t5_tt_sad')} vs "
        f"{v('t5_ft_sad')}, {v('t5_bt_sad')} (TT/FT/BT assignment assumed)",
        _beats_all(runs, ("TT", dict(rosta="TT")), {"FT": dict(rosta="FT"), "BT": dict(rosta="BT")}, "sad",
                   base=dict(track="ori")))
    add("rim", f"GFM-RIM beats each individual RoSTa (on >= {rim_metrics} of the 5 main metrics)",
        f"Table 5: better than each individual RoSTa on four metrics; best MSE {v('t5_rim_mse')} vs EN-median "
        f"{v('t5_en_median_mse')}", _rim(runs, rim_metrics), "EN-median is not computed in this companion")
    add("rssn_techniques", "Each RSSN technique (blur, denoise, noise) helps over plain alpha blending on BG-20k, and "
        "all together (RSSN) do best", "qualitative, no number quoted (Table 4 bottom rows, Sect. 5.4)",
        _rssn_techniques(runs))
    add("transition_error", "The error concentrates in the transition area: SAD-TRAN > SAD-FG and SAD-BG",
        f"AM-2k GFM SAD-TRAN {v('t1_ori_am2k_gfm_sad_trans')} vs SAD-FG {v('t1_ori_am2k_gfm_sad_fg')}, SAD-BG "
        f"{v('t1_ori_am2k_gfm_sad_bg')} (Sect. 5.3); Sect. 6: '8.24 v.s. 2.01 or 7.80 v.s. 4.09'",
        _transition(runs))
    add("hybrid_best", "Hybrid test: glance at 1/3, focus at 1/2 (d1 = 3, d2 = 2) is the best setting",
        f"Table 6: best d1 = {v('t6_best_hybrid_d1')}, d2 = {v('t6_best_hybrid_d2')}",
        _table6_check(table6_df, "hybrid", numbers, data),
        "the embedded world's images are ~360 px, the paper's >= 1080 px: the best ratios need not carry over")
    add("single_best", "Single-ratio test: d = 2.6 is the best single ratio",
        f"Table 6: best d = {v('t6_best_single_d')}", _table6_check(table6_df, "single", numbers, data),
        "the embedded world's images are ~360 px, the paper's >= 1080 px: the best ratios need not carry over")
    add("domain_gap", "RSSN composites are closer to real photos than COCO / BG-20k composites "
        "(resolution, sharpness, noise discrepancies; this project's measurement)",
        "qualitative (Sect. 4); the paper measures no discrepancy", _domain_gap(compose),
        "gfm.compose.discrepancy distance_to_real: mean |fg/bg log-ratio gap - real photos' gap| over noise, sharpness, "
        "resolution")
    add("bg20k_filters", f"The BG-20k filters find low-resolution, duplicate and salient-object candidates "
        f"(overall precision and recall >= {filter_threshold:g}; this project's measurement)",
        "qualitative (Sect. 4.1); the paper double-checked by hand", _filters(bg20k, filter_threshold))
    return pd.DataFrame(rows, columns=["id", "claim", "paper_evidence", "this_run", "reproduced", "comment"])


def findings_summary(table: pd.DataFrame) -> dict:
    """Counts of :func:`findings`' verdicts and the verdict of each claim (for ``metrics/findings.json``)."""
    counts = table["reproduced"].value_counts()
    return {"claims": int(len(table)), **{key.replace(" ", "_"): int(counts.get(key, 0))
                                          for key in ("yes", "no", "partly", "not run")},
            "verdicts": dict(zip(table["id"], table["reproduced"]))}


# --------------------------------------------------------------------------------------------
# Display and files
# --------------------------------------------------------------------------------------------

def pretty(table: pd.DataFrame, *, digits: int = 4) -> pd.DataFrame:
    """The table with the paper's metric names (SAD, SAD-TRAN, ...) and NaN shown as "" -> DataFrame."""
    shown = table.rename(columns=METRIC_NAMES)
    for column in shown.select_dtypes("number").columns:
        shown[column] = ["" if pd.isna(x) else f"{x:.{digits}g}" for x in shown[column]]
    return shown


def save_table(table: pd.DataFrame, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.csv`` and ``<out_dir>/<name>.html`` (atomically)."""
    out_dir = Path(out_dir)
    csv = write_text(out_dir / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))
    page = write_text(out_dir / f"{name}.html", pretty(table).to_html(index=False, border=0))
    return csv, page


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def fig_composition_routes(composites: str | Path, datasets: str | Path, *, name: str | None = None, k: int = 0,
                           routes: Sequence[str] | None = None, zoom_size: int = 96):
    """Fig. 3 style, from this run's stored training composites: the real photo, then the same
    foreground as composed by each route, with a boundary close-up row -> Figure.

    ``composites`` is the compose stage's output (``<route>/image/<name>_<k>.png``), ``datasets``
    the matting set's root (the photo: ``am2k/train/original/<name>``). ``name`` defaults to the
    first foreground of the first route. The controlled version (same background for every
    route, every technique alone) is :func:`gfm.ui.inspector.fig3_route_comparison` (stage 3).
    """
    import matplotlib.pyplot as plt

    from gfm.ui.inspector import boundary_window
    from gfm.core.io import list_images, read_alpha, read_image
    from gfm.core.layout import matting_split

    composites = Path(composites)
    routes = [r for r in (routes or ("coco", "bg20k", "rssn", "rssn_blur", "rssn_denoise", "rssn_noise"))
              if (composites / r / "image").is_dir()]
    if not routes:
        raise FileNotFoundError(f"{composites}: no composite set (<route>/image/) found")
    if name is None:
        first = list_images(composites / routes[0] / "image")
        if not first:
            raise FileNotFoundError(f"{composites / routes[0] / 'image'}: no composites")
        name = first[0].stem.rsplit("_", 1)[0]
    train = matting_split(datasets, "train")
    panels = [("real photo", read_image(train.image_path(name)), read_alpha(train.mask_path(name)))]
    for route in routes:
        stem = f"{name}_{k}"
        image = [p for p in list_images(composites / route / "image") if p.stem == stem]
        alpha = [p for p in list_images(composites / route / "alpha") if p.stem == stem]
        if image and alpha:
            panels.append((TRACKS.get(route, route), read_image(image[0]), read_alpha(alpha[0])))
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 4.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1.25, 1]})
    for column, (title, image, alpha) in enumerate(panels):
        y0, x0, size = boundary_window(alpha, zoom_size)
        axes[0, column].imshow(image)
        axes[0, column].add_patch(plt.Rectangle((x0, y0), size, size, fill=False, color="yellow", lw=1))
        axes[0, column].set_title(title, fontsize=9)
        axes[1, column].imshow(image[y0:y0 + size, x0:x0 + size], interpolation="nearest")
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Composition routes of this run, foreground {name} (cf. paper Fig. 3)", fontsize=10)
    fig.tight_layout()
    return fig


def fig_bg20k_examples(manifest: pd.DataFrame | str | Path, candidates_dir: str | Path, *, per_reason: int = 4):
    """Fig. 4 style: kept and rejected BG-20k candidates (:func:`gfm.bg20k.build.plot_gallery`) -> Figure."""
    from gfm.bg20k.build import plot_gallery

    if not isinstance(manifest, pd.DataFrame):
        manifest = pd.read_csv(manifest)
    return plot_gallery(manifest, candidates_dir, per_reason=per_reason)


def fig_qualitative(evaluation_dir: str | Path, validation_dir: str | Path, *, name: str | None = None,
                    experiments: Sequence[str] | None = None, zoom: int | None = None):
    """Figs. 6-7 style: one validation image, its ground truth and every model's matte with close
    views (:func:`gfm.evaluate.run.result_figure`) -> Figure.

    ``name`` defaults to the image whose SAD differs most between the models (``per_image.csv``).
    """
    from gfm.evaluate.run import PER_IMAGE, result_figure

    evaluation_dir = Path(evaluation_dir)
    if name is None:
        tables = {p.parent.name: pd.read_csv(p).set_index("name")["sad"]
                  for p in sorted(evaluation_dir.glob(f"*/{PER_IMAGE}"))
                  if experiments is None or p.parent.name in experiments}
        if not tables:
            raise FileNotFoundError(f"{evaluation_dir}: no <experiment>/{PER_IMAGE}")
        sads = pd.DataFrame(tables)
        name = str((sads.max(axis=1) - sads.min(axis=1)).idxmax())
    return result_figure(evaluation_dir, validation_dir, name, experiments, zoom=zoom)


def fig_training_curves(losses: Mapping | str | Path, *, term: str = "total", smooth: int = 10):
    """The training loss of every experiment against the step (seaborn; log scale) -> Figure.

    ``losses`` maps experiment -> ``losses.csv`` path or DataFrame (:mod:`gfm.train.loop`), or is the
    models folder (``<experiment>/losses.csv``). ``smooth``: rolling mean over that many steps.
    The per-term curves of one run are :func:`gfm.train.loop.plot_training_curves`.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if isinstance(losses, (str, Path)):
        losses = {p.parent.name: p for p in sorted(Path(losses).glob("*/losses.csv"))}
    frames = []
    for experiment, history in losses.items():
        history = history if isinstance(history, pd.DataFrame) else pd.read_csv(history)
        if term not in history or "step" not in history:
            raise ValueError(f"losses of {experiment!r}: expected columns 'step' and {term!r}, got {list(history)}")
        frame = history[["step", term]].copy()
        frame[term] = frame[term].rolling(smooth, min_periods=1).mean()
        frames.append(frame.assign(experiment=experiment))
    if not frames:
        raise ValueError("losses: no training history to plot")
    long = pd.concat(frames, ignore_index=True)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    sns.lineplot(data=long, x="step", y=term, hue="experiment", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel(f"{term} loss (Eq. 8)" if term == "total" else f"{term} loss")
    ax.set_title(f"Training loss of every experiment (rolling mean over {smooth} steps)", fontsize=10)
    fig.tight_layout()
    return fig


def fig_domain_gap(compose: Mapping):
    """The measured domain gap of each composition route against real photos -> Figure.

    ``compose`` is ``metrics/compose.json`` (or its ``domain_gap`` part: ``{label: {noise_gap,
    sharpness_gap, resolution_gap, distance_to_real, ...}}``, :func:`gfm.compose.discrepancy.gap_summary`).
    Panels: the median fg/bg log-ratio gap of each measure per label (real photos first; a route
    is closer to real the nearer its bar is to the real photos' line), and ``distance_to_real``.
    The per-image box plots are :func:`gfm.compose.discrepancy.domain_gap_figure` (stage 3).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from gfm.compose.discrepancy import MEASURES

    summary = _gap_summary(compose)
    if summary is None:
        raise ValueError("compose: no domain_gap measurements (expected metrics/compose.json)")
    labels = sorted(summary.index, key=lambda label: (label != "real", list(summary.index).index(label)))
    summary = summary.loc[labels]
    panels = [f"{m}_gap" for m in MEASURES if f"{m}_gap" in summary] + \
        (["distance_to_real"] if "distance_to_real" in summary else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), squeeze=False)
    for ax, column in zip(axes[0], panels):
        values = summary[column].astype(float)
        sns.barplot(x=list(values.index), y=values.to_numpy(), ax=ax, hue=list(values.index), legend=False,
                    palette=["0.55" if label == "real" else f"C{i}" for i, label in enumerate(values.index)])
        if column != "distance_to_real" and "real" in values.index:
            ax.axhline(values["real"], color="k", ls="--", lw=0.8)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(column.replace("_gap", ": ln(fg / bg)") if column != "distance_to_real"
                     else "distance to real photos", fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.suptitle("Composite-vs-real discrepancies per route (gfm.compose.discrepancy; 0 distance = like real photos)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def fig_comp_track(metrics: Mapping, experiments: Mapping | None = None, *, numbers: pd.DataFrame | None = None,
                   data: str = DATA_SAMPLE):
    """COMP-Track SAD relative to the same model's ORI-Track SAD, the paper's (AM-2k) and this run's
    -> Figure. A ratio makes the two comparable although the data differ; 1 = as good as training
    on real photos."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    numbers = paper_numbers() if numbers is None else numbers
    tracks = ("COMP-COCO", "COMP-BG20K", "COMP-RSSN")
    rows = []
    for method in ("GFM-TT(d)", "GFM-TT(r)", "SHM"):
        sads = numbers[(numbers["table"] == "1") & (numbers["dataset"] == "AM-2k") & (numbers["method"] == method)
                       & (numbers["metric"] == "sad")].drop_duplicates("track").set_index("track")["value"]
        for track in tracks:
            if "ORI" in sads and track in sads:
                rows.append({"series": f"paper {method}, AM-2k", "track": track, "ratio": sads[track] / sads["ORI"]})
    runs = _runs(metrics, experiments)
    for backbone, group in runs[runs["evaluated"] & _matches(runs, {"rosta": "TT"})].groupby("backbone_key", sort=False):
        sads = group.drop_duplicates("track_label").set_index("track_label")["sad"]
        for track in tracks:
            if "ORI" in sads and track in sads and sads["ORI"] > 0:
                label = group["method"].iloc[0]
                rows.append({"series": f"this run {label}, {data}", "track": track, "ratio": sads[track] / sads["ORI"]})
    if not rows:
        raise ValueError("no model with both an ORI-Track and a COMP-Track SAD (paper or this run)")
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    sns.barplot(data=pd.DataFrame(rows), x="track", y="ratio", hue="series", order=list(tracks), ax=ax)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("SAD / SAD of the ORI-Track model")
    ax.set_xlabel("")
    ax.set_title("Generalisation to real images: composite-trained vs real-trained (cf. Table 1)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _config(config: Mapping) -> dict:
    merged = dict(DEFAULT_CONFIG, **{k: v for k, v in dict(config).items() if k in DEFAULT_CONFIG})
    bridge = merged["bridge"]
    merged["bridge"] = bridge if isinstance(bridge, bool) else str(bridge).strip().lower() in ("true", "1", "yes")
    return merged


def _group(method: str) -> str:
    """A row without its backbone: "GFM-TT(d) w/o PPM" -> "GFM-TT w/o PPM"."""
    return _GFM_ROW.sub(r"\1", method)


def _runs(metrics: Mapping, experiments: Mapping | None) -> pd.DataFrame:
    """One row per experiment of this run: configuration, paper row, metric values, evaluated."""
    metrics = dict(metrics or {})
    configs = dict(experiments) if experiments is not None else {name: parse_experiment(name) for name in metrics}
    rows = []
    for name, config in configs.items():
        config = _config(config)
        track, method = experiment_label(config)
        values = metrics.get(name) or {}
        row = {"name": name, **config, "backbone_key": config["backbone"] or "?", "track_label": track,
               "method": method, "group": _group(method), "evaluated": name in metrics}
        for key in TABLE1_METRICS:
            value = values.get(key)
            row[key] = float(value) if isinstance(value, (int, float)) and value is not None else math.nan
        rows.append(row)
    columns = ["name", *DEFAULT_CONFIG, "backbone_key", "track_label", "method", "group", "evaluated", *TABLE1_METRICS]
    return pd.DataFrame(rows, columns=columns)


def _comparison(table: str, groups, columns, metrics, experiments, data, numbers, planned) -> pd.DataFrame:
    numbers = paper_numbers() if numbers is None else numbers
    paper = numbers[numbers["table"] == table]
    runs = _runs(metrics, experiments)
    planned_runs = _runs({}, planned) if planned else _runs({}, {})
    rows = []
    for track, group, paper_only in groups:
        entries = paper[(paper["track"] == track) & (paper["method"].map(_group) == group)
                        & paper["metric"].isin(columns)]
        # one line per (row, dataset), rows in the file's order, AM-2k before PM-10k; where the
        # prose quotes one number twice (differently), the first quotation is shown
        entries = entries.assign(_order=entries["method"].map({m: i for i, m in enumerate(entries["method"].unique())}))
        entries = entries.sort_values(["_order", "dataset"], kind="stable").drop_duplicates(["method", "dataset", "metric"])
        for (method, dataset), part in entries.groupby(["method", "dataset"], sort=False):
            line = _line(track, method, "paper", dataset, "", columns, paper_only or _sources(part))
            line.update(dict(zip(part["metric"], part["value"])))
            rows.append(line)
        if entries.empty and paper_only is None:
            rows.append(_line(track, group, "paper", "AM-2k / PM-10k", "", columns,
                              f"no number quoted in the prose (Table {table} is an image)"))
        if paper_only is not None:
            continue
        mine = runs[(runs["track_label"] == track) & (runs["group"] == group)]
        for _, run in mine.iterrows():
            line = _line(track, run["method"], "this run", data, run["name"], columns,
                         "" if run["evaluated"] else "configured, but no metrics (evaluate has not run for it)")
            line.update({c: run[c] for c in columns})
            rows.append(line)
        if mine.empty:
            names = planned_runs[(planned_runs["track_label"] == track) & (planned_runs["group"] == group)]["name"]
            rows.append(_line(track, group, "this run", "-", ", ".join(names), columns,
                              NOT_RUN + (" (paper profile: " + ", ".join(names) + ")" if len(names) else "")))
    return pd.DataFrame(rows, columns=["track", "row", "source", "data", "experiment", *columns, "note"])


def _line(track, row, source, data, experiment, columns, note) -> dict:
    return {"track": track, "row": row, "source": source, "data": data, "experiment": experiment,
            **{c: math.nan for c in columns}, "note": note}


def _sources(entries: pd.DataFrame) -> str:
    """The sections the entries come from ("Sect. 5.3 prose; Sect. 5.4 prose"), flagging assumptions."""
    sections = []
    for source in entries["source"]:
        match = re.match(r"(Sect\. [0-9.]+ prose|paper card)", source)
        sections.append(match.group(1) if match else source)
    note = "; ".join(dict.fromkeys(sections))
    if entries["note"].str.contains("assum|inferred|not name|not stated", regex=True).any():
        note += " (attribution partly assumed: see paper_numbers)"
    return note


def _matches(runs: pd.DataFrame, criteria: Mapping) -> pd.Series:
    """Rows of ``runs`` with the default configuration except for ``criteria``."""
    wanted = {k: v for k, v in DEFAULT_CONFIG.items() if k not in ("backbone", "track", "rosta")}
    wanted.update(criteria)
    mask = pd.Series(True, index=runs.index)
    for key, value in wanted.items():
        mask &= runs[key] == value
    return mask


def _variants(runs: pd.DataFrame, variants: Mapping[str, Mapping], base: Mapping | None = None,
              metric: str = "sad") -> dict:
    """{backbone: {variant: run row}} for the backbones where every variant was evaluated."""
    found: dict = {}
    for label, criteria in variants.items():
        criteria = {"rosta": "TT", **(base or {}), **criteria}
        part = runs[_matches(runs, criteria) & runs["evaluated"] & runs[metric].notna()]
        for _, run in part.iterrows():
            found.setdefault(run["backbone_key"], {}).setdefault(label, run)
    return found


def _ordered(runs, variants: Mapping[str, Mapping], metric: str, data: str, base: Mapping | None = None) -> list:
    """Checks that ``metric`` strictly decreases along ``variants`` (listed worst first), per backbone."""
    checks = []
    for backbone, found in _variants(runs, variants, base, metric).items():
        if len(found) < len(variants):
            continue
        values = [found[label][metric] for label in variants]
        text = f"{found[next(iter(variants))]['method'].split(' ')[0]}: " + " > ".join(
            f"{label} {value:.4g}" for label, value in zip(variants, values))
        checks.append((all(a > b for a, b in zip(values, values[1:])), f"{text} ({METRIC_NAMES.get(metric, metric)})"))
    return checks


def _beats_all(runs, winner: tuple[str, Mapping], others: Mapping[str, Mapping], metric: str,
               base: Mapping | None = None) -> list:
    """Checks that the ``winner`` variant has a lower ``metric`` than every other evaluated variant."""
    checks = []
    label, criteria = winner
    for backbone, found in _variants(runs, {label: criteria, **others}, base, metric).items():
        rivals = {k: r[metric] for k, r in found.items() if k != label}
        if label not in found or not rivals:
            continue
        value = found[label][metric]
        text = f"{found[label]['method']}: {label} {value:.4g} vs " + ", ".join(f"{k} {x:.4g}" for k, x in rivals.items())
        checks.append((all(value < x for x in rivals.values()), text + f" ({METRIC_NAMES.get(metric, metric)})"))
    return checks


def _backbone_better(runs, better: str, than: str) -> list:
    ori = runs[_matches(runs, {"track": "ori", "rosta": "TT"}) & runs["evaluated"]].set_index("backbone")
    if better not in ori.index or than not in ori.index:
        return []
    a, b = ori.loc[[better]].iloc[0], ori.loc[[than]].iloc[0]
    lower = [m for m in MAIN_METRICS if a[m] < b[m]]
    return [(len(lower) == len(MAIN_METRICS),
             f"{a['name']} lower than {b['name']} on {len(lower)}/{len(MAIN_METRICS)} metrics "
             f"(SAD {a['sad']:.4g} vs {b['sad']:.4g})")]


def _rim(runs, needed: int) -> list:
    checks = []
    for backbone, found in _variants(runs, {r: dict(rosta=r) for r in ("RIM", "TT", "FT", "BT")},
                                     dict(track="ori")).items():
        if "RIM" not in found or len(found) < 2:
            continue
        rim = found["RIM"]
        parts, ok = [], True
        for rosta, run in found.items():
            if rosta == "RIM":
                continue
            lower = sum(rim[m] < run[m] for m in MAIN_METRICS)
            ok &= lower >= needed
            parts.append(f"vs {rosta}: lower on {lower}/5")
        checks.append((ok, f"{rim['method']} (SAD {rim['sad']:.4g}, MSE {rim['mse']:.4g}) " + ", ".join(parts)))
    return checks


def _rssn_techniques(runs) -> list:
    checks = []
    variants = {"alpha blending": dict(track="bg20k"), "w/ blur": dict(track="rssn_blur"),
                "w/ denoise": dict(track="rssn_denoise"), "w/ noise": dict(track="rssn_noise"),
                "RSSN": dict(track="rssn")}
    for backbone, found in _variants(runs, variants).items():
        techniques = [k for k in ("w/ blur", "w/ denoise", "w/ noise") if k in found]
        if "alpha blending" not in found or not techniques:
            continue
        base = found["alpha blending"]["sad"]
        ok = all(found[k]["sad"] < base for k in techniques)
        if "RSSN" in found:
            ok &= all(found["RSSN"]["sad"] <= found[k]["sad"] for k in techniques)
        text = ", ".join(f"{k} {r['sad']:.4g}" for k, r in found.items())
        checks.append((ok, f"{found['alpha blending']['method']} SAD: {text}"))
    return checks


def _transition(runs) -> list:
    checks = []
    part = runs[_matches(runs, {"track": "ori", "rosta": "TT"}) & runs["evaluated"]]
    for _, run in part.iterrows():
        if any(math.isnan(run[m]) for m in ("sad_trans", "sad_fg", "sad_bg")):
            continue
        checks.append((run["sad_trans"] > run["sad_fg"] and run["sad_trans"] > run["sad_bg"],
                       f"{run['name']}: SAD-TRAN {run['sad_trans']:.4g} vs SAD-FG {run['sad_fg']:.4g}, "
                       f"SAD-BG {run['sad_bg']:.4g}"))
    return checks


def _table6_check(grid, test: str, numbers, data) -> list | str:
    row = table6(grid, data=data, numbers=numbers).set_index("test").loc[test]
    if row["agrees"] == "not run":
        return []
    if row["agrees"] == "not in grid":
        return f"not run: the paper's best setting ({row['paper_best']}) is not in this run's grid " \
               f"({row['this_run_grid']}); this run's best is {row['this_run_best']}"
    return [(row["agrees"] == "yes", f"best of this run's grid ({row['this_run_grid']}): {row['this_run_best']} "
             f"(SAD {row['sad_at_best']:.4g}; at the paper's setting {row['sad_at_paper_best']:.4g})")]


def _gap_summary(compose) -> pd.DataFrame | None:
    if not compose:
        return None
    gap = compose.get("domain_gap", compose)
    if not isinstance(gap, Mapping) or not gap or not all(isinstance(v, Mapping) for v in gap.values()):
        return None
    return pd.DataFrame.from_dict(gap, orient="index")


def _domain_gap(compose) -> list:
    summary = _gap_summary(compose)
    if summary is None or "distance_to_real" not in summary or "rssn" not in summary.index:
        return []
    distance = summary["distance_to_real"].astype(float)
    others = [r for r in ("coco", "bg20k") if r in distance.index]
    if not others:
        return []
    text = "distance to real: " + ", ".join(f"{r} {distance[r]:.3g}" for r in (*others, "rssn"))
    return [(all(distance["rssn"] < distance[r] for r in others), text)]


def _filters(bg20k, threshold: float) -> list:
    overall = ((bg20k or {}).get("filters") or {}).get("overall")
    if not overall or overall.get("precision") is None or overall.get("recall") is None:
        return []
    per = ", ".join(f"{name} P {f.get('precision')} R {f.get('recall')}"
                    for name, f in bg20k["filters"].items() if name != "overall")
    return [(overall["precision"] >= threshold and overall["recall"] >= threshold,
             f"overall precision {overall['precision']:.3g}, recall {overall['recall']:.3g} ({per})")]


def _verdict(checks) -> tuple[str, str, str]:
    """(this run's numbers, verdict, comment) from a list of (holds, text) or a not-run message."""
    if isinstance(checks, str):
        return "-", "not run", checks
    if not checks:
        return "-", "not run", "the experiments this claim needs were not run (or not evaluated) in this profile"
    holds = [ok for ok, _ in checks]
    verdict = "yes" if all(holds) else "no" if not any(holds) else "partly"
    comment = "" if verdict != "partly" else "holds for some backbones only"
    if verdict == "no":
        comment = "not reproduced"
    return "; ".join(text for _, text in checks), verdict, comment


def _grid_part(grid, test: str, metric: str) -> pd.DataFrame | None:
    if grid is None or len(grid) == 0:
        return None
    missing = [c for c in ("test", "d1", "d2", metric) if c not in grid]
    if missing:
        raise ValueError(f"table6 grid: missing columns {missing} (expected gfm.evaluate.run.table6's output)")
    part = grid[(grid["test"] == test) & pd.to_numeric(grid[metric], errors="coerce").notna()]
    return part.astype({"d1": float, "d2": float, metric: float}) if len(part) else None


def _setting(test: str, d1: float, d2: float) -> str:
    return f"d1 = {d1:g}, d2 = {d2:g}" if test == "hybrid" else f"d = {d1:g}"
