"""The paper's claims as data: what each claim says, the paper's evidence, and how it is checked.

A :class:`Claim` names its arms by ROLE, not by experiment name (``arm("SINGLE",
decoder="single")``), so one list of claims serves every profile: gfm.report.judge finds, in a
given experiment grid, the experiments playing each role. A role is the base model
(:data:`gfm.report.experiments.BASE_CONFIG`: track ori, RoSTa TT, two decoders, five PPM blocks,
bridge block) with some keys changed; comparisons are made within one backbone unless a role names
its backbone (r2b). The evidence quotes the paper through ``{id}`` placeholders of
``paper_numbers.yaml`` (:func:`render_evidence`): nothing is transcribed twice.

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
    judged from evidence that is not a run's per-image table (:data:`EXTRA_CHECKS`, see
    :func:`gfm.report.judge.judge`).

* :data:`CHECKS`, :class:`Arm`, :func:`arm`, :class:`Claim`, :func:`default_claims`.
* :func:`render_evidence`, :func:`paper_gap_fraction`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from gfm.evaluate.metrics import MAIN_METRICS
from gfm.report import stats as st
from gfm.report.experiments import BASE_CONFIG, CONFIG_KEYS
from gfm.report.inputs import BLANK
from gfm.report.numbers import paper_values

__all__ = ["BLANK_RUN", "CHECKS", "EXTRA_CHECKS", "KINDS", "Arm", "arm", "Claim", "render_evidence",
           "paper_gap_fraction", "default_claims"]

#: The run name of the blank (all-zero) matte's per-image table.
BLANK_RUN = BLANK
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
#: Checks judged from evidence other than the runs' per-image tables.
EXTRA_CHECKS = ("domain_gap", "filters", "best_setting")


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
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise ValueError(f"arm {label!r}: unknown configuration keys {sorted(unknown)}")
    return Arm(label, tuple(sorted(config.items())))


@dataclass(frozen=True)
class Claim:
    """One claim and how to judge it.

    Attributes
    ----------
    id : str
        Stable key (the key of ``metrics/findings.json``).
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



def render_evidence(claim: Claim, numbers: Mapping[str, float] | None = None) -> str:
    """The claim's evidence with each ``{id}`` replaced by the paper's number (:func:`paper_values`)."""
    numbers = paper_values() if numbers is None else numbers
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
    numbers = paper_values() if numbers is None else numbers
    out = {}
    for row, (coco, rssn, ori) in _GAP_ROWS.items():
        out[row] = (numbers[coco] - numbers[rssn]) / (numbers[coco] - numbers[ori])
    out["min"] = min(out.values())
    return out



def default_claims(numbers: Mapping[str, float] | None = None) -> tuple[Claim, ...]:
    """The paper's claims (kind "paper") and this project's checks (kind "project")."""
    numbers = paper_values() if numbers is None else numbers
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
                   "(gfm.report.table6.table6_best compares those)"),
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

