"""The paper's claims as data, judged over seeds and images with paired statistics (gfm.report.stats).

A :class:`Claim` names its arms by ROLE, not by experiment name (``arm("SINGLE",
decoder="single")``), so one list of claims serves every profile: :func:`resolve_arms` finds, in a
given experiment grid (``train.experiments``: ``{name: {track, backbone, rosta, decoder, ppm,
bridge, ...}}``), the experiments playing each role. A role is the base model (track ori, RoSTa
TT, two decoders, five PPM blocks, bridge block) with some keys changed; comparisons are made
within one backbone (one group per backbone where every role is found) unless a role names its
backbone (r2b). A claim with no complete group is ``not_run``.

Each experiment is trained with several seeds (runs ``<experiment>-s<k>``; a run named after the
bare experiment counts as one seed) and every run is evaluated on the same images: ``per_image``
maps a run name to its per-image table (``name, sad, mse, mad, grad, conn, sad_trans, sad_fg,
sad_bg, ...``; lower is better). Images missing from a run, or with a non-finite value of a
compared metric, are left out of that claim.

The checks (``Claim.check``; "the reference" is the first arm, ``relative`` divides by it):

``lower``
    every later arm against the reference on ``metrics[0]``; ``direction`` "lower": the later arms
    are expected lower (better) than the reference, "higher": expected higher (the reference is
    the claimed best). All comparisons must hold.
``order``
    a chain, worst first: every adjacent pair judged as ``lower`` (the later arm lower).
``all_metrics``
    as ``lower``, on every metric of ``metrics``.
``at_least_k_metrics``
    as ``lower``, against each later arm on at least ``k`` of ``metrics``.
``share``
    arms (A, B), metrics (part, total): the total drops from A to B (a difference), and the share
    of that drop in ``part`` lies above ``threshold`` (0.5: "mainly").
``closes_gap``
    arms (worst, candidate, best): (worst - candidate) / (worst - best) above ``threshold``.
``within_run``
    one arm, metrics (m0, m1, ...): m0 higher than every other metric in the same runs (seeds
    paired, images paired).
``blank``
    every evaluated experiment lower than the blank (all-zero) matte on ``metrics[0]``; the blank
    matte's per-image values are ``per_image["blank"]`` (or ``extra["blank"]``), one "seed".
``domain_gap``, ``filters``, ``best_setting``
    judged from ``extra`` (see :func:`judge`).

* :data:`CHECKS`, :class:`Arm`, :func:`arm`, :class:`Claim`, :func:`default_claims`.
* :func:`paper_numbers`, :func:`render_evidence`, :func:`paper_gap_fraction`.
* :func:`resolve_arms`, :func:`runs_of`, :func:`judge`, :func:`findings_table`.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from gfm.report import stats as st

__all__ = [
    "BASE_CONFIG", "MAIN_METRICS", "BLANK_RUN", "CHECKS", "KINDS", "Arm", "arm", "Claim", "paper_numbers",
    "render_evidence", "paper_gap_fraction", "default_claims", "resolve_arms", "runs_of", "judge", "findings_table",
]

#: The base model's configuration: the paper's GFM (ORI-Track, TT, two decoders, five PPM blocks, BB).
BASE_CONFIG = {"track": "ori", "rosta": "TT", "decoder": "two", "ppm": "five", "bridge": True}
MAIN_METRICS = ("sad", "mse", "mad", "grad", "conn")
#: The run name of the blank (all-zero) matte's per-image table.
BLANK_RUN = "blank"
KINDS = ("paper", "project")
CHECKS = {
    "lower": "every later arm vs the reference (first) arm on one metric, in `direction`",
    "order": "a chain, worst first: each adjacent pair, the later arm lower",
    "all_metrics": "as `lower`, on every metric",
    "at_least_k_metrics": "as `lower`, on at least k of the metrics, against each later arm",
    "share": "the total drops from A to B, and the share of the drop in one part is above `threshold`",
    "closes_gap": "(worst - candidate) / (worst - best) above `threshold`",
    "within_run": "the first metric higher than each other metric, within the same runs",
    "blank": "every evaluated experiment lower than the blank (all-zero) matte",
    "domain_gap": "RSSN composites' median fg/bg discrepancy nearer real photos' than COCO's, BG-20k's",
    "filters": "the BG-20k filters' overall precision and recall above `threshold` (exact binomial interval)",
    "best_setting": "the paper's best Table 6 setting lower than every other setting of the grid",
}
_EXTRA_CHECKS = ("domain_gap", "filters", "best_setting")
_CONFIG_KEYS = (*BASE_CONFIG, "backbone")
_NUMBERS_FILE = "paper_numbers.yaml"


# --------------------------------------------------------------------------------------------
# Claims as data
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """A role in a claim: a label and the configuration keys that differ from :data:`BASE_CONFIG`."""

    label: str
    config: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict:
        """The role's full configuration (base model + its changes; ``backbone`` only if fixed)."""
        return {**BASE_CONFIG, **dict(self.config)}


def arm(label: str, **config) -> Arm:
    """``arm("SINGLE", decoder="single")``: a role (see :class:`Arm`)."""
    unknown = set(config) - set(_CONFIG_KEYS)
    if unknown:
        raise ValueError(f"arm {label!r}: unknown configuration keys {sorted(unknown)}")
    return Arm(label, tuple(sorted(config.items())))


@dataclass(frozen=True)
class Claim:
    """One claim and how to judge it.

    Attributes
    ----------
    id : str
        Stable key (today's ids of gfm.report's findings where they exist).
    kind : "paper" | "project"
        The paper's claim, or this project's own check.
    text : str
        The claim as the paper states it.
    evidence : str
        The paper's evidence: section / table and ``{id}`` placeholders of ``paper_numbers.yaml``
        (:func:`render_evidence` fills in the values; nothing is transcribed here).
    arms : tuple of Arm
        The roles, reference first (see the check's description in :data:`CHECKS`).
    metrics : tuple of str
        Per-image columns compared.
    direction : "lower" | "higher"
        What the paper expects of the later arms (or of the statistic, against ``threshold``).
    check : str
        One of :data:`CHECKS`.
    k : int, optional
        ``at_least_k_metrics``: how many metrics must hold.
    threshold : float
        The statistic's threshold (0 for a difference).
    note : str
        How the claim is operationalised, where that needs saying.
    """

    id: str
    kind: str
    text: str
    evidence: str
    arms: tuple[Arm, ...]
    metrics: tuple[str, ...]
    direction: str
    check: str
    k: int | None = None
    threshold: float = 0.0
    note: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}")
        if self.check not in CHECKS:
            raise ValueError(f"claim {self.id}: check must be one of {sorted(CHECKS)}")
        st.expected_sign(self.direction)

    @property
    def metric(self) -> str:
        return self.metrics[0]


def _numbers_path(path: str | Path | None = None) -> Path:
    return Path(path) if path is not None else Path(__file__).with_name(_NUMBERS_FILE)


def paper_numbers(path: str | Path | None = None) -> dict[str, float]:
    """``{id: value}`` of ``paper_numbers.yaml`` (next to this module)."""
    with open(_numbers_path(path), encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    return {entry["id"]: float(entry["value"]) for entry in entries}


def render_evidence(claim: Claim, numbers: Mapping[str, float] | None = None) -> str:
    """The claim's evidence with each ``{id}`` replaced by the paper's number."""
    numbers = paper_numbers() if numbers is None else numbers
    return re.sub(r"\{(\w+)\}", lambda m: f"{numbers[m.group(1)]:g}", claim.evidence)


#: Table 1 rows (AM-2k, whole-image SAD) from which the "closes the gap" fraction is implied.
_GAP_ROWS = {"GFM(d)": ("t1_coco_am2k_gfm_d_sad", "t1_rssn_am2k_gfm_d_sad", "t1_ori_am2k_gfm_tt_d_sad"),
             "GFM(r)": ("t1_coco_am2k_gfm_r_sad", "t1_rssn_am2k_gfm_r_sad", "t1_ori_am2k_gfm_tt_r_sad")}


def paper_gap_fraction(numbers: Mapping[str, float] | None = None) -> dict[str, float]:
    """The fraction of the COMP-COCO -> ORI gap that COMP-RSSN closes in the paper's Table 1.

    (SAD_coco - SAD_rssn) / (SAD_coco - SAD_ori), AM-2k, for GFM(d) and GFM(r) (the rows whose three
    numbers the prose quotes; 0.751 and 0.740), and ``"min"``: the smaller, used as the threshold
    of the claim ``rssn_closes_gap`` (the paper's GFM closes at least that much).
    """
    numbers = paper_numbers() if numbers is None else numbers
    out = {}
    for row, (coco, rssn, ori) in _GAP_ROWS.items():
        out[row] = (numbers[coco] - numbers[rssn]) / (numbers[coco] - numbers[ori])
    out["min"] = min(out.values())
    return out


def default_claims(numbers: Mapping[str, float] | None = None) -> tuple[Claim, ...]:
    """The paper's claims (kind "paper") and this project's checks (kind "project")."""
    numbers = paper_numbers() if numbers is None else numbers
    gap = paper_gap_fraction(numbers)
    gfm = arm("GFM")
    coco, bg20k, rssn, ori = arm("COMP-COCO", track="coco"), arm("COMP-BG20K", track="bg20k"), \
        arm("COMP-RSSN", track="rssn"), arm("ORI", track="ori")
    sad = ("sad",)
    return (
        Claim("comp_order", "paper",
              "Real-image SAD: COMP-COCO > COMP-BG20K > COMP-RSSN (each composition step generalises better)",
              "Table 1 (Sect. 5.3), AM-2k SAD: GFM(d) {t1_coco_am2k_gfm_d_sad} > {t1_bg20k_am2k_gfm_d_sad} > "
              "{t1_rssn_am2k_gfm_d_sad}; GFM(r) {t1_coco_am2k_gfm_r_sad} > {t1_bg20k_am2k_gfm_r_sad} > "
              "{t1_rssn_am2k_gfm_r_sad}; SHM {t1_coco_am2k_shm_sad} > {t1_bg20k_am2k_shm_sad} > {t1_rssn_am2k_shm_sad}",
              (coco, bg20k, rssn), sad, "lower", "order"),
        Claim("ori_beats_comp", "paper",
              "The ORI-Track model (trained on real photos) beats every COMP-Track route, COMP-RSSN included",
              "Table 1, AM-2k SAD: GFM-TT(d) ORI {t1_ori_am2k_gfm_tt_d_sad} vs COMP-RSSN {t1_rssn_am2k_gfm_d_sad}; "
              "GFM-TT(r) {t1_ori_am2k_gfm_tt_r_sad} vs {t1_rssn_am2k_gfm_r_sad}; SHM {t1_ori_am2k_shm_sad} vs "
              "{t1_rssn_am2k_shm_sad}; Sect. 6: 'there is still room to improve the composite-based models to "
              "match those trained using original images'",
              (ori, coco, bg20k, rssn), sad, "higher", "lower"),
        Claim("rssn_closes_gap", "paper",
              f"COMP-RSSN is 'comparable' to ORI: it closes at least {gap['min']:.2f} of the COMP-COCO -> ORI gap",
              "Sect. 1: RSSN with BG-20k 'achieve[s] comparable performance as the model trained on original natural "
              "images'; Sect. 5.3 (SHM): 'even comparable with the one obtained by training using original images'. "
              "Table 1, AM-2k SAD (COCO, RSSN, ORI): GFM(d) {t1_coco_am2k_gfm_d_sad}, {t1_rssn_am2k_gfm_d_sad}, "
              "{t1_ori_am2k_gfm_tt_d_sad}; GFM(r) {t1_coco_am2k_gfm_r_sad}, {t1_rssn_am2k_gfm_r_sad}, "
              "{t1_ori_am2k_gfm_tt_r_sad}",
              (coco, rssn, ori), sad, "higher", "closes_gap", threshold=gap["min"],
              note=f"threshold = the smaller of the fractions the paper's GFM rows imply: "
                   f"GFM(d) {gap['GFM(d)']:.3f}, GFM(r) {gap['GFM(r)']:.3f} (gfm.report.claims.paper_gap_fraction)"),
        Claim("bg20k_background", "paper",
              "BG-20k backgrounds cut the error (vs COCO) mainly in the background area",
              "Sect. 5.3: the drop 'mainly attributes to the reduction of SAD error in the background area': SHM SAD "
              "{t1_coco_am2k_shm_sad} -> {t1_bg20k_am2k_shm_sad}, SAD-BG {t1_coco_am2k_shm_sad_bg} -> "
              "{t1_bg20k_am2k_shm_sad_bg} (AM-2k); SAD {t1_coco_pm10k_shm_sad} -> {t1_bg20k_pm10k_shm_sad}, SAD-BG "
              "{t1_coco_pm10k_shm_sad_bg} -> {t1_bg20k_pm10k_shm_sad_bg} (PM-10k); 'the same trend for GFM(d), "
              "GFM(r) and GFM(r†)'",
              (coco, bg20k), ("sad_bg", "sad"), "higher", "share", threshold=0.5,
              note="the SAD drop COCO -> BG-20k must hold, and its share in SAD-BG must exceed 0.5"),
        Claim("two_decoders", "paper", "Two decoders (glance + focus) beat a single decoder (SINGLE)",
              "Table 4 (Sect. 5.4), AM-2k SAD: GFM-TT(d) {t4_gfm_tt_d_sad} vs SINGLE {t4_single_d_sad}; "
              "GFM-TT(r) {t4_gfm_tt_r_sad} vs SINGLE {t4_single_r_sad}",
              (arm("SINGLE", decoder="single"), gfm), sad, "lower", "lower"),
        Claim("ppm", "paper", "The pyramid pooling module (PPM) in the glance decoder helps",
              "Table 4 (Sect. 5.4), AM-2k SAD: GFM-TT(d) {t4_gfm_tt_d_sad} vs w/o PPM {t4_noppm_d_sad}; "
              "GFM-TT(r) {t4_gfm_tt_r_sad} vs w/o PPM {t4_noppm_r_sad}",
              (arm("w/o PPM", ppm="none"), gfm), sad, "lower", "lower"),
        Claim("one_ppm", "paper", "One PPM block is better than none but worse than five",
              "Sect. 5.4: 'using one PPM block leads to better performance but still falls behind the default "
              "setting, i.e., using five PPM blocks' (Table 4; no number quoted)",
              (arm("w/o PPM", ppm="none"), arm("one PPM", ppm="one"), gfm), sad, "lower", "order"),
        Claim("bridge_block", "paper", "The bridge block (BB) in the focus decoder helps",
              "Table 4 (Sect. 5.4), AM-2k SAD: GFM-TT(d) {t4_gfm_tt_d_sad} vs w/o BB {t4_nobb_d_sad}; "
              "GFM-TT(r) {t4_gfm_tt_r_sad} vs w/o BB {t4_nobb_r_sad}",
              (arm("w/o BB", bridge=False), gfm), sad, "lower", "lower"),
        Claim("r2b", "paper", "GFM(r2b) improves every metric over GFM-TT(r)",
              "Sect. 5.4: 'when using r2b structure, all the metrics have been improved compared with GFM-TT(r)' "
              "(Table 4; no number quoted)",
              (arm("GFM-TT(r)", backbone="r34"), arm("GFM-TT(r2b)", backbone="r34_2b")), MAIN_METRICS, "lower",
              "all_metrics"),
        Claim("tt_best", "paper", "TT is the best RoSTa (vs FT and BT)",
              "Sect. 5.3: 'GFM using TT as the RoSTa performs the best'; Table 5 (ratio 1/3) SAD TT {t5_tt_sad}, "
              "FT {t5_ft_sad}, BT {t5_bt_sad} (TT/FT/BT assignment assumed, see paper_numbers)",
              (arm("TT", rosta="TT"), arm("FT", rosta="FT"), arm("BT", rosta="BT")), sad, "higher", "lower"),
        Claim("rim", "paper", "GFM-RIM beats each individual RoSTa (TT, FT, BT) on at least 4 of the 5 main metrics",
              "Sect. 5.5: GFM-RIM 'is better than each individual RoSTa on four evaluation metrics', best MSE "
              "{t5_rim_mse} vs EN-median {t5_en_median_mse} (Table 5, every row tested at ratio 1/3)",
              (arm("RIM", rosta="RIM"), arm("TT", rosta="TT"), arm("FT", rosta="FT"), arm("BT", rosta="BT")),
              MAIN_METRICS, "higher", "at_least_k_metrics", k=4,
              note="all arms under ONE evaluation protocol (the run's evaluate settings; the paper's Table 5 tests "
                   "every row at ratio 1/3, unlike Table 1); EN-median is not computed in this companion"),
        Claim("rssn_techniques", "paper",
              "Each RSSN technique (blur, denoise, noise) improves on plain alpha blending (BG-20k) on all metrics",
              "Sect. 5.4: 'each technique in the proposed composition route is helpful to improve the matting "
              "performance in terms of all the metrics' (Table 4 bottom rows; no number quoted)",
              (arm("alpha blending", track="bg20k"), arm("w/ blur", track="rssn_blur"),
               arm("w/ denoise", track="rssn_denoise"), arm("w/ noise", track="rssn_noise")),
              MAIN_METRICS, "lower", "all_metrics"),
        Claim("rssn_complementary", "paper", "All RSSN techniques together beat each technique alone",
              "Sect. 5.4: 'different techniques are complementary to each other in that they contribute to the best "
              "performance achieved by RSSN collaboratively' (Table 4; no number quoted)",
              (arm("RSSN", track="rssn"), arm("w/ blur", track="rssn_blur"), arm("w/ denoise", track="rssn_denoise"),
               arm("w/ noise", track="rssn_noise")), sad, "higher", "lower"),
        Claim("transition_error", "paper",
              "The error concentrates in the transition area: SAD-TRAN > SAD-FG and > SAD-BG (same runs, same images)",
              "Sect. 5.3, AM-2k ORI: GFM SAD-TRAN {t1_ori_am2k_gfm_sad_trans}, SAD-FG {t1_ori_am2k_gfm_sad_fg}, "
              "SAD-BG {t1_ori_am2k_gfm_sad_bg}; Sect. 6: 'the error in the transition areas is larger than SAD in the "
              "foreground and background areas' ({text_conclusion_sad_trans_a} vs {text_conclusion_sad_fgbg_a})",
              (gfm,), ("sad_trans", "sad_fg", "sad_bg"), "higher", "within_run",
              note="paired within run: per image SAD-TRAN - SAD-FG (and - SAD-BG), seeds paired"),
        Claim("hybrid_best", "paper", "Hybrid test: glance at 1/3, focus at 1/2 (d1 = 3, d2 = 2) is the best setting",
              "Table 6 (Sect. 5.5): best hybrid d1 = {t6_best_hybrid_d1}, d2 = {t6_best_hybrid_d2}",
              (), sad, "lower", "best_setting",
              note="extra['table6']: per-image Table 6 grid (test, d1, d2, name, sad[, run]); the paper's setting vs "
                   "each other hybrid setting of the grid, same model (seeds paired). Not run with the means-only grid "
                   "(gfm.report.table6 compares those)"),
        Claim("single_best", "paper", "Single-ratio test: d = 2.6 is the best single ratio",
              "Table 6 (Sect. 5.5): best single ratio d = {t6_best_single_d}, 'comparable' to the best hybrid setting",
              (), sad, "lower", "best_setting", note="as hybrid_best, for the single-ratio settings"),
        Claim("domain_gap", "project",
              "RSSN composites are closer to real photos than COCO / BG-20k composites (fg/bg discrepancy)",
              "qualitative (Sect. 4): RSSN reduces the resolution, sharpness and noise discrepancies; the paper "
              "measures none",
              (arm("COMP-COCO", track="coco"), arm("COMP-BG20K", track="bg20k"), rssn), ("distance_to_real",),
              "lower", "domain_gap",
              note="extra['domain_gap']: per-image gfm.compose.discrepancy table (label, *_gap; bootstrap of the "
                   "medians, routes resampled independently) or its summary (no interval: inconclusive)"),
        Claim("bg20k_filters", "project",
              "The BG-20k filters find low-resolution, duplicate and salient-object candidates (overall precision "
              "and recall > 0.8)",
              "qualitative (Sect. 4.1); the paper double-checked by hand", (), ("precision", "recall"), "higher",
              "filters", threshold=0.8,
              note="extra['bg20k']: metrics/bg20k.json (filters.overall: predicted, actual, true_positives); "
                   "Clopper-Pearson intervals"),
        Claim("blank_baseline", "project", "Every evaluated model beats the blank (all-zero) matte on SAD",
              "sanity check, not in the paper", (), sad, "lower", "blank",
              note=f"the blank matte's per-image SAD: per_image['{BLANK_RUN}'] or extra['blank']"),
    )


# --------------------------------------------------------------------------------------------
# Arms in a grid, runs of an experiment
# --------------------------------------------------------------------------------------------

def _config(config: Mapping) -> dict:
    merged = {**BASE_CONFIG, "backbone": None, **{k: v for k, v in dict(config or {}).items() if k in _CONFIG_KEYS}}
    bridge = merged["bridge"]
    merged["bridge"] = bridge if isinstance(bridge, bool) else str(bridge).strip().lower() in ("true", "1", "yes")
    merged["rosta"] = str(merged["rosta"]).upper()
    for key in ("track", "decoder", "ppm"):
        merged[key] = str(merged[key]).lower()
    merged["backbone"] = "?" if merged["backbone"] is None else str(merged["backbone"])
    return merged


def resolve_arms(claim: Claim, experiments: Mapping[str, Mapping]) -> list[list[str]] | None:
    """The experiments of ``experiments`` playing the claim's roles, one list per comparable group.

    Parameters
    ----------
    claim : Claim
    experiments : mapping
        ``{name: config}`` (``train.experiments``); missing keys take the base model's values.

    Returns
    -------
    list of list of str, or None
        One list per backbone where every role is found, names in the order of ``claim.arms``
        (the first experiment of the grid matching a role is taken); roles naming a backbone
        fix it (one group). ``blank``: one single-experiment group per experiment. Checks judged
        from ``extra`` need no experiment: ``[]``. None: a role is missing from the grid.
    """
    configs = {name: _config(config) for name, config in dict(experiments or {}).items()}
    if claim.check in _EXTRA_CHECKS:
        return []
    if claim.check == "blank":
        return [[name] for name in configs] or None
    backbones = list(dict.fromkeys(c["backbone"] for c in configs.values()))
    groups: list[list[str]] = []
    for backbone in backbones:
        group = []
        for role in claim.arms:
            wanted = _config({"backbone": backbone, **role.as_dict()})
            match = next((name for name, c in configs.items() if c == wanted), None)
            if match is None:
                break
            group.append(match)
        if len(group) == len(claim.arms) and group not in groups:
            groups.append(group)
    return groups or None


def runs_of(experiment: str, per_image: Mapping, seeds: Mapping[str, Sequence[int]] | None = None) -> list[str]:
    """The run names of ``experiment`` that have a per-image table.

    With ``seeds[experiment]``: ``<experiment>-s<k>`` for those k (the ones present). Otherwise
    every ``<experiment>-s<k>`` of ``per_image`` (by k), or, if there is none, a run named
    ``experiment`` itself (one seed).
    """
    if seeds is not None and experiment in seeds:
        return [f"{experiment}-s{k}" for k in seeds[experiment] if f"{experiment}-s{k}" in per_image]
    pattern = re.compile(rf"^{re.escape(experiment)}-s(\d+)$")
    found = sorted((int(m.group(1)), name) for name in per_image if (m := pattern.match(str(name))))
    if found:
        return [name for _, name in found]
    return [experiment] if experiment in per_image else []


def _frame(table) -> pd.DataFrame:
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if "name" in frame.columns:
        frame = frame.set_index("name")
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        raise ValueError("a per-image table names an image twice")
    return frame


def _stack(run_lists: Sequence[Sequence[str]], metrics: Sequence[str], per_image: Mapping):
    """Arrays (n_seeds, n_images, n_metrics) per arm on the images common to all runs (finite values)."""
    frames = [[_frame(per_image[run]) for run in runs] for runs in run_lists]
    for frame in (f for arm_frames in frames for f in arm_frames):
        missing = [m for m in metrics if m not in frame.columns]
        if missing:
            raise ValueError(f"per-image table without {missing}")
    common = frames[0][0].index
    for frame in (f for arm_frames in frames for f in arm_frames):
        common = common.intersection(frame.index, sort=False)
    arrays = [np.stack([f.loc[common, list(metrics)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
                        for f in arm_frames]) for arm_frames in frames]
    finite = np.ones(len(common), dtype=bool)
    for x in arrays:
        finite &= np.isfinite(x).all(axis=(0, 2))
    return [x[:, finite, :] for x in arrays]


# --------------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------------

def _boot_seed(base: int, *parts) -> int:
    return (int(base) * 1_000_003 + zlib.crc32("|".join(map(str, parts)).encode())) % (2 ** 32)


def _comparison(label, arms, metric, statistic, expect, threshold, effect: st.Effect | None, verdict: str,
                primary: bool = True, relative: bool = True) -> dict:
    ci = effect.ci95 if effect is not None else (None, None)
    estimate = effect.estimate if effect is not None else None
    rel = effect.relative if (effect is not None and relative) else None
    ref = abs(effect.means[0]) if (effect is not None and effect.means and relative) else None
    score = st.margin(ci, expect, threshold) if effect is not None else math.nan
    if ref:
        score = score / ref
    return {"label": label, "arms": list(arms), "metric": metric, "statistic": statistic, "expect": expect,
            "threshold": threshold, "estimate": estimate, "relative": rel, "ci95": list(ci),
            "n_images": effect.n_images if effect is not None else 0,
            "n_seeds": list(effect.n_seeds) if effect is not None else [], "verdict": verdict,
            "primary": primary, "_score": score}


def _difference(claim, ctx, group, ref, other, metric, expect, arrays, label=None, paired=False):
    a, b = arrays
    effect = st.paired_differences(a, b, n_boot=ctx["n_boot"], paired_seeds=paired,
                                   seed=_boot_seed(ctx["seed"], claim.id, ref, other, metric))
    v = st.verdict(effect.ci95, expect, 0.0, n_images=effect.n_images)
    return _comparison(label or f"{other} vs {ref}", (ref, other), metric, f"mean {metric}: {other} - {ref}", expect,
                       0.0, effect, v)


def _runs_for(group, ctx):
    runs = [runs_of(name, ctx["per_image"], ctx["seeds"]) for name in group]
    missing = [name for name, r in zip(group, runs) if not r]
    return runs, missing


def _pairs(claim: Claim, size: int) -> list[tuple[int, int]]:
    if claim.check == "order":
        return [(j, j + 1) for j in range(size - 1)]
    return [(0, j) for j in range(1, size)]


def _check_pairwise(claim, ctx, groups):
    out, notes = [], []
    metrics = claim.metrics if claim.check in ("all_metrics", "at_least_k_metrics") else claim.metrics[:1]
    expect = "lower" if claim.check == "order" else claim.direction
    for group in groups:
        runs, missing = _runs_for(group, ctx)
        if missing:
            notes.append(f"not evaluated: {', '.join(missing)}")
            continue
        arrays = _stack(runs, metrics, ctx["per_image"])
        per_rival: dict = {}
        for i, j in _pairs(claim, len(group)):
            for m, metric in enumerate(metrics):
                c = _difference(claim, ctx, group, group[i], group[j], metric, expect,
                                (arrays[i][..., m], arrays[j][..., m]))
                per_rival.setdefault(j, []).append(c)
        if claim.check == "at_least_k_metrics":
            out += [(group, comps, claim.k) for comps in per_rival.values()]
        else:
            out.append((group, [c for comps in per_rival.values() for c in comps], None))
    return out, notes


def _check_share(claim, ctx, groups):
    out, notes = [], []
    part, total = claim.metrics[:2]
    for group in groups:
        runs, missing = _runs_for(group, ctx)
        if missing:
            notes.append(f"not evaluated: {', '.join(missing)}")
            continue
        a, b = _stack(runs, (part, total), ctx["per_image"])
        drop = _difference(claim, ctx, group, group[0], group[1], total, "lower", (a[..., 1], b[..., 1]))
        drop["primary"] = False
        effect = st.share_of_change(a[..., 0], b[..., 0], a[..., 1], b[..., 1], n_boot=ctx["n_boot"],
                                    seed=_boot_seed(ctx["seed"], claim.id, *group))
        share = _comparison(f"share of the {total} drop {group[0]} -> {group[1]} in {part}", group, part,
                            f"({part}[{group[0]}] - {part}[{group[1]}]) / ({total}[{group[0]}] - {total}[{group[1]}])",
                            claim.direction, claim.threshold, effect,
                            st.ratio_verdict(effect, claim.direction, claim.threshold), relative=False)
        out.append((group, [drop, share], None))
    return out, notes


def _check_gap(claim, ctx, groups):
    out, notes = [], []
    metric = claim.metric
    for group in groups:
        runs, missing = _runs_for(group, ctx)
        if missing:
            notes.append(f"not evaluated: {', '.join(missing)}")
            continue
        arrays = _stack(runs, (metric,), ctx["per_image"])
        effect = st.gap_closed(*arrays, n_boot=ctx["n_boot"], seed=_boot_seed(ctx["seed"], claim.id, *group))
        worst, candidate, best = group
        c = _comparison(f"fraction of the {worst} -> {best} gap closed by {candidate}", group, metric,
                        f"({metric}[{worst}] - {metric}[{candidate}]) / ({metric}[{worst}] - {metric}[{best}])",
                        claim.direction, claim.threshold, effect,
                        st.ratio_verdict(effect, claim.direction, claim.threshold), relative=False)
        out.append((group, [c], None))
    return out, notes


def _check_within(claim, ctx, groups):
    out, notes = [], []
    for group in groups:
        runs, missing = _runs_for(group, ctx)
        if missing:
            notes.append(f"not evaluated: {', '.join(missing)}")
            continue
        (x,) = _stack(runs, claim.metrics, ctx["per_image"])
        comps = []
        for m, metric in enumerate(claim.metrics[1:], start=1):
            effect = st.paired_differences(x[..., m], x[..., 0], n_boot=ctx["n_boot"], paired_seeds=True,
                                           seed=_boot_seed(ctx["seed"], claim.id, group[0], metric))
            comps.append(_comparison(f"{group[0]}: {claim.metrics[0]} vs {metric}", group, claim.metrics[0],
                                     f"mean {claim.metrics[0]} - {metric} (same runs)", claim.direction, 0.0, effect,
                                     st.verdict(effect.ci95, claim.direction, 0.0, n_images=effect.n_images)))
        out.append((group, comps, None))
    return out, notes


def _check_blank(claim, ctx, groups):
    blank = ctx["per_image"].get(BLANK_RUN)
    if blank is None:
        blank = (ctx["extra"] or {}).get("blank")
    if blank is None:
        return [], [f"no blank-matte table (per_image['{BLANK_RUN}'] or extra['blank'])"]
    per_image = {**ctx["per_image"], BLANK_RUN: blank}
    comps, notes, members = [], [], []
    for (name,) in groups:
        runs = runs_of(name, ctx["per_image"], ctx["seeds"])
        if not runs or name == BLANK_RUN:
            continue
        b, x = _stack([[BLANK_RUN], runs], claim.metrics[:1], per_image)
        comps.append(_difference(claim, ctx, None, BLANK_RUN, name, claim.metric, claim.direction,
                                 (b[..., 0], x[..., 0])))
        comps[-1]["n_seeds"] = [int(x.shape[0])]              # the blank matte is no training
        members.append(name)
    return ([([BLANK_RUN, *members], comps, None)] if comps else []), notes


def _gap_distances(samples: pd.DataFrame, labels, n_boot, seed):
    gaps = [c for c in samples.columns if str(c).endswith("_gap")]
    if not gaps:
        raise ValueError("domain-gap table without *_gap columns")
    groups = [samples.loc[samples["label"] == label, gaps].apply(pd.to_numeric, errors="coerce").dropna().to_numpy()
              for label in labels]
    observed, reps = st.group_medians(groups, n_boot=n_boot, seed=seed)
    distance = np.abs(observed[1:] - observed[0]).mean(axis=1)            # labels[1:] vs real
    distance_reps = np.abs(reps[:, 1:, :] - reps[:, :1, :]).mean(axis=2)
    return distance, distance_reps, [len(g) for g in groups]


def _check_domain_gap(claim, ctx, groups):
    gap = (ctx["extra"] or {}).get("domain_gap")
    if gap is None:
        return [], ["no domain-gap measurement (extra['domain_gap'])"]
    routes = [dict(a.config).get("track") for a in claim.arms]             # coco, bg20k, rssn
    *others, target = routes
    comps = []
    if isinstance(gap, pd.DataFrame) and "label" in gap.columns:
        labels = ["real", *routes]
        if not all((gap["label"] == label).any() for label in labels):
            return [], [f"domain-gap table lacks one of the labels {labels}"]
        distance, reps, sizes = _gap_distances(gap, labels, ctx["n_boot"], _boot_seed(ctx["seed"], claim.id))
        d = dict(zip(routes, distance))
        for k, other in enumerate(others):
            boot = reps[:, len(routes) - 1] - reps[:, k]
            ci = st._interval(boot) if min(sizes[0], sizes[k + 1], sizes[-1]) >= 2 else (math.nan, math.nan)
            effect = st.Effect(estimate=float(d[target] - d[other]), ci95=ci, n_images=int(min(sizes)), n_seeds=(1, 1),
                               means=(float(d[other]), float(d[target])),
                               relative=float((d[target] - d[other]) / d[other]) if d[other] else math.nan)
            comps.append(_comparison(f"{target} vs {other}", (other, target), "distance_to_real",
                                     f"distance_to_real: {target} - {other}", claim.direction, 0.0, effect,
                                     st.verdict(ci, claim.direction, 0.0, n_images=effect.n_images)))
        return [(routes, comps, None)], []
    summary = gap.get("domain_gap", gap) if isinstance(gap, Mapping) else None
    if not isinstance(summary, Mapping) or not all(r in summary for r in routes):
        return [], ["domain-gap summary lacks a route"]
    d = {r: float(summary[r]["distance_to_real"]) for r in routes}
    for other in others:
        effect = st.Effect(estimate=d[target] - d[other], ci95=(math.nan, math.nan),
                           n_images=int(summary[target].get("n", 0) or 0), n_seeds=(1, 1),
                           means=(d[other], d[target]),
                           relative=(d[target] - d[other]) / d[other] if d[other] else math.nan)
        comps.append(_comparison(f"{target} vs {other}", (other, target), "distance_to_real",
                                 f"distance_to_real: {target} - {other}", claim.direction, 0.0, effect,
                                 st.INCONCLUSIVE))
    return [(routes, comps, None)], ["summary medians only: no interval (pass the per-image domain-gap table)"]


def _check_filters(claim, ctx, groups):
    extra = ctx["extra"] or {}
    source = extra.get("bg20k", extra.get("filters"))
    filters = (source or {}).get("filters", source) if isinstance(source, Mapping) else None
    overall = (filters or {}).get("overall") if isinstance(filters, Mapping) else None
    needed = ("predicted", "actual", "true_positives")
    if not overall or any(overall.get(k) is None for k in needed):
        return [], ["no BG-20k filter counts (extra['bg20k']: filters.overall predicted / actual / true_positives)"]
    tp = int(overall["true_positives"])
    comps = []
    for name, trials in (("precision", int(overall["predicted"])), ("recall", int(overall["actual"]))):
        ci = st.binomial_interval(tp, trials)
        effect = st.Effect(estimate=tp / trials if trials else math.nan, ci95=ci, n_images=trials, n_seeds=(1,))
        comps.append(_comparison(f"overall {name}", ("bg20k filters",), name, f"{name} = {tp} / {trials}",
                                 claim.direction, claim.threshold, effect,
                                 st.verdict(ci, claim.direction, claim.threshold, n_images=trials), relative=False))
    return [(["bg20k filters"], comps, None)], []


def _check_best_setting(claim, ctx, groups):
    grid = (ctx["extra"] or {}).get("table6")
    if grid is None:
        return [], ["no Table 6 grid (extra['table6'])"]
    grid = pd.DataFrame(grid)
    metric = claim.metric
    if not {"test", "d1", "d2", "name", metric} <= set(grid.columns):
        return [], [f"the Table 6 grid has no per-image rows (needs test, d1, d2, name, {metric}); "
                    "means-only grids are compared by gfm.report's table6"]
    numbers = ctx["numbers"]
    test = "hybrid" if claim.id == "hybrid_best" else "single"
    if test == "hybrid":
        best = (numbers["t6_best_hybrid_d1"], numbers["t6_best_hybrid_d2"])
    else:
        best = (numbers["t6_best_single_d"],) * 2
    part = grid[grid["test"] == test].copy()
    part["d1"], part["d2"] = part["d1"].astype(float), part["d2"].astype(float)
    settings = list(dict.fromkeys(zip(part["d1"], part["d2"])))
    paper = next((s for s in settings if np.isclose(s[0], best[0]) and np.isclose(s[1], best[1])), None)
    if paper is None:
        return [], [f"the paper's setting d1 = {best[0]:g}, d2 = {best[1]:g} is not in this run's {test} grid"]
    if "run" not in part.columns:
        part["run"] = "run"
    label = (lambda s: f"d1={s[0]:g},d2={s[1]:g}") if test == "hybrid" else (lambda s: f"d={s[0]:g}")
    tables = {}
    for s in settings:
        rows = part[np.isclose(part["d1"], s[0]) & np.isclose(part["d2"], s[1])]
        for run, frame in rows.groupby("run", sort=True):
            tables[f"{label(s)}@{run}"] = frame[["name", metric]]
    run_names = sorted(part["run"].unique(), key=str)
    comps = []
    for s in settings:
        if s == paper:
            continue
        runs = [[f"{label(s)}@{r}" for r in run_names], [f"{label(paper)}@{r}" for r in run_names]]
        if not all(r in tables for rr in runs for r in rr):
            continue
        a, b = _stack(runs, (metric,), tables)
        effect = st.paired_differences(a[..., 0], b[..., 0], n_boot=ctx["n_boot"], paired_seeds=True,
                                       seed=_boot_seed(ctx["seed"], claim.id, label(s)))
        comps.append(_comparison(f"{label(paper)} vs {label(s)}", (label(s), label(paper)), metric,
                                 f"mean {metric}: {label(paper)} - {label(s)} (same model)", claim.direction, 0.0,
                                 effect, st.verdict(effect.ci95, claim.direction, 0.0, n_images=effect.n_images)))
    if not comps:
        return [], [f"no other {test} setting to compare with"]
    return [([label(paper), *(c["arms"][0] for c in comps)], comps, None)], []


_DISPATCH = {"lower": _check_pairwise, "order": _check_pairwise, "all_metrics": _check_pairwise,
             "at_least_k_metrics": _check_pairwise, "share": _check_share, "closes_gap": _check_gap,
             "within_run": _check_within, "blank": _check_blank, "domain_gap": _check_domain_gap,
             "filters": _check_filters, "best_setting": _check_best_setting}


def _headline(verdict: str, groups: list) -> tuple[list, dict | None]:
    """The comparison that speaks for the claim, and its group.

    Among the comparisons with the claim's verdict (primary ones first): for ``reproduced`` the
    weakest (smallest margin, relative to the reference arm for a difference), otherwise the first.
    """
    pool = [(g, c) for g, comps, _ in groups for c in comps if c["verdict"] == verdict]
    pool = [(g, c) for g, c in pool if c["primary"]] or pool
    if not pool:
        pool = [(g, c) for g, comps, _ in groups for c in comps if c["primary"]]
    if not pool:
        return [], None
    if verdict == st.REPRODUCED:
        return min(pool, key=lambda gc: gc[1]["_score"] if math.isfinite(gc[1]["_score"]) else math.inf)
    return pool[0]


def _clean(value):
    """JSON-able and NaN-free (NaN / inf -> None, numpy scalars -> Python)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def judge(claims: Sequence[Claim] | None, experiments: Mapping[str, Mapping], per_image: Mapping[str, Any],
          seeds: Mapping[str, Sequence[int]] | None = None, extra: Mapping | None = None, *,
          n_boot: int = st.N_BOOT, seed: int = 0, numbers: Mapping[str, float] | None = None) -> dict:
    """Judge every claim on this run's per-image results.

    Parameters
    ----------
    claims : sequence of Claim, or None
        Default: :func:`default_claims`.
    experiments : mapping
        ``{experiment: config}`` (``train.experiments``).
    per_image : mapping
        ``{run: DataFrame}``, runs ``<experiment>-s<k>`` (or ``<experiment>``), and optionally
        ``"blank"`` (the all-zero matte).
    seeds : mapping, optional
        ``{experiment: [k, ...]}``; default: every ``<experiment>-s<k>`` present (see :func:`runs_of`).
    extra : mapping, optional
        Evidence that is not a run's per-image table: ``domain_gap`` (per-image discrepancy table of
        gfm.compose.discrepancy with ``label``, or the ``metrics/compose.json`` summary), ``bg20k``
        (``metrics/bg20k.json``), ``table6`` (per-image Table 6 grid), ``blank``.
    n_boot, seed : int
        Bootstrap replicates and base seed (each comparison's generator is derived from it and the
        claim / arms, so results do not depend on the order of the claims).

    Returns
    -------
    dict
        ``{"claims": {id: {kind, verdict, text, metric, arms, diff, relative, ci95, n_images,
        n_seeds, ...}}, "summary": {reproduced, contradicted, inconclusive, not_run}}``, JSON-able
        and NaN-free (None where a value does not exist). ``diff`` / ``ci95`` / ``arms`` (reference
        first) / ``n_images`` / ``n_seeds`` (the fewest of its arms) are those of the comparison that
        speaks for the verdict (the weakest one when reproduced); every comparison is listed under
        ``comparisons``, the experiment groups under ``groups``. ``diff`` is the statistic named in
        ``statistic`` (B - A for a difference; a share or a fraction for ``share`` / ``closes_gap``),
        judged against ``threshold``; ``relative`` = diff / the reference arm's mean.
    """
    numbers = paper_numbers() if numbers is None else numbers
    claims = default_claims(numbers) if claims is None else claims
    per_image = dict(per_image or {})
    ctx = {"per_image": per_image, "seeds": seeds, "extra": extra, "n_boot": int(n_boot), "seed": int(seed),
           "numbers": numbers}
    out: dict = {}
    for claim in claims:
        resolved = resolve_arms(claim, experiments)
        entry = {"kind": claim.kind, "verdict": st.NOT_RUN, "text": claim.text, "metric": claim.metric,
                 "metrics": list(claim.metrics), "arms": [], "roles": [a.label for a in claim.arms],
                 "check": claim.check, "expect": claim.direction, "threshold": claim.threshold, "k": claim.k,
                 "statistic": None, "diff": None, "relative": None, "ci95": [None, None], "n_images": 0, "n_seeds": 0,
                 "groups": [], "comparisons": [], "evidence": render_evidence(claim, numbers), "note": claim.note}
        if resolved is None:
            entry["reason"] = "the experiments this claim needs are not in this profile's grid"
            out[claim.id] = entry
            continue
        try:
            groups, notes = _DISPATCH[claim.check](claim, ctx, resolved)
        except (KeyError, ValueError) as error:
            groups, notes = [], [f"cannot judge: {error}"]
        verdict = st.combine([st.combine([c["verdict"] for c in comps], k) for _, comps, k in groups])
        entry["verdict"] = verdict
        entry["groups"] = [list(g) for g in dict.fromkeys(tuple(g) for g, _, _ in groups)]
        entry["comparisons"] = [c for _, comps, _ in groups for c in comps]
        if notes:
            entry["reason"] = "; ".join(notes)
        if verdict != st.NOT_RUN:
            _, head = _headline(verdict, groups)
            if head is not None:
                entry.update(arms=list(head["arms"]), metric=head["metric"], statistic=head["statistic"],
                             diff=head["estimate"], relative=head["relative"], ci95=head["ci95"],
                             n_images=head["n_images"], n_seeds=min(head["n_seeds"]) if head["n_seeds"] else 0,
                             threshold=head["threshold"])
        elif "reason" not in entry:
            entry["reason"] = "no run of these experiments was evaluated"
        out[claim.id] = entry
    summary = {v: sum(e["verdict"] == v for e in out.values()) for v in st.VERDICTS}
    return _clean({"claims": out, "summary": summary,
                   "method": {"n_boot": int(n_boot), "seed": int(seed), "confidence": st.CONFIDENCE,
                              "interval": "two-level (seeds, images) percentile bootstrap, gfm.report.stats"}})


def findings_table(result: Mapping) -> pd.DataFrame:
    """:func:`judge`'s result for display: one row per claim (id, kind, claim, diff, relative, CI, n, verdict)."""
    rows = []
    for id, entry in result["claims"].items():
        lo, hi = (entry.get("ci95") or [None, None])[:2]
        ci = "" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]"
        rows.append({"id": id, "kind": entry["kind"], "claim": entry["text"], "metric": entry.get("metric"),
                     "arms": " vs ".join(entry.get("arms") or []),
                     "diff": math.nan if entry.get("diff") is None else entry["diff"],
                     "relative": math.nan if entry.get("relative") is None else entry["relative"],
                     "ci95": ci, "threshold": entry.get("threshold"), "n_images": entry.get("n_images", 0),
                     "n_seeds": entry.get("n_seeds", 0), "verdict": entry["verdict"],
                     "note": entry.get("reason", "")})
    return pd.DataFrame(rows, columns=["id", "kind", "claim", "metric", "arms", "diff", "relative", "ci95", "threshold",
                                       "n_images", "n_seeds", "verdict", "note"])
