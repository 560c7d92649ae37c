"""Judging the paper's claims (gfm.report.claims) on this run's per-image results.

Each experiment is trained with several seeds (runs ``<experiment>-s<k>``; a run named after the
bare experiment counts as one seed) and every run is evaluated on the same images: ``per_image``
maps a run name to its per-image table (``name, sad, mse, mad, grad, conn, sad_trans, sad_fg,
sad_bg, ...``; lower is better). Images missing from a run, or with a non-finite value of a
compared metric, are left out of that claim. Every comparison is a paired two-level bootstrap
(gfm.report.stats): a verdict comes from an interval, never from one pair of means.

* :func:`judge` -- every claim's verdict, statistic, interval and sample sizes (JSON-able).
* :func:`resolve_arms` -- the experiments of a grid playing a claim's roles, per backbone.
* :func:`runs_of` -- the evaluated runs (seeds) of an experiment.
* :data:`VERDICT_CODES` -- a verdict as a number (+1 / 0 / -1; None: not run).
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from gfm.report import stats as st
from gfm.report.claims import BLANK_RUN, EXTRA_CHECKS, Claim, default_claims, render_evidence
from gfm.report.experiments import normalise
from gfm.report.numbers import paper_values

__all__ = ["VERDICT_CODES", "judge", "resolve_arms", "runs_of"]

#: A verdict as a number, for ``dvc metrics show``: the paper's side +1, the other side -1.
VERDICT_CODES = {st.REPRODUCED: 1, st.INCONCLUSIVE: 0, st.CONTRADICTED: -1, st.NOT_RUN: None}


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
        ``{"claims": {id: {kind, verdict, code, text, metric, arms, diff, relative, relative_ci95,
        ci95, n_images, n_seeds, ...}}, "summary": {reproduced, contradicted, inconclusive,
        not_run}}``, JSON-able and NaN-free (None where a value does not exist). ``diff`` / ``ci95``
        / ``arms`` (reference first) / ``n_images`` / ``n_seeds`` (the fewest of its arms) are those
        of the comparison that speaks for the verdict (the weakest one when reproduced); every
        comparison is listed under ``comparisons``, the experiment groups under ``groups``. ``diff``
        is the statistic named in ``statistic`` (B - A for a difference; a share or a fraction for
        ``share`` / ``closes_gap``), judged against ``threshold``; ``relative`` = diff / the
        reference arm's mean (differences only) with its bootstrap interval ``relative_ci95``;
        ``code`` is :data:`VERDICT_CODES` of the verdict.
    """
    numbers = paper_values() if numbers is None else numbers
    claims = default_claims(numbers) if claims is None else claims
    per_image = dict(per_image or {})
    ctx = {"per_image": per_image, "seeds": seeds, "extra": extra, "n_boot": int(n_boot), "seed": int(seed),
           "numbers": numbers}
    out: dict = {}
    for claim in claims:
        resolved = resolve_arms(claim, experiments)
        entry = {"kind": claim.kind, "verdict": st.NOT_RUN, "code": None, "text": claim.text, "metric": claim.metric,
                 "metrics": list(claim.metrics), "arms": [], "roles": [a.label for a in claim.arms],
                 "check": claim.check, "expect": claim.direction, "threshold": claim.threshold, "k": claim.k,
                 "statistic": None, "diff": None, "relative": None, "relative_ci95": [None, None],
                 "ci95": [None, None], "n_images": 0, "n_seeds": 0,
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
        entry["verdict"], entry["code"] = verdict, VERDICT_CODES[verdict]
        entry["groups"] = [list(g) for g in dict.fromkeys(tuple(g) for g, _, _ in groups)]
        entry["comparisons"] = [c for _, comps, _ in groups for c in comps]
        if notes:
            entry["reason"] = "; ".join(notes)
        if verdict != st.NOT_RUN:
            _, head = _headline(verdict, groups)
            if head is not None:
                entry.update(arms=list(head["arms"]), metric=head["metric"], statistic=head["statistic"],
                             diff=head["estimate"], relative=head["relative"],
                             relative_ci95=head["relative_ci95"], ci95=head["ci95"],
                             n_images=head["n_images"], n_seeds=min(head["n_seeds"]) if head["n_seeds"] else 0,
                             threshold=head["threshold"])
        elif "reason" not in entry:
            entry["reason"] = "no run of these experiments was evaluated"
        out[claim.id] = entry
    summary = {v: sum(e["verdict"] == v for e in out.values()) for v in st.VERDICTS}
    return _clean({"claims": out, "summary": summary,
                   "method": {"n_boot": int(n_boot), "seed": int(seed), "confidence": st.CONFIDENCE,
                              "interval": "two-level (seeds, images) percentile bootstrap, gfm.report.stats"}})


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
    configs = {name: normalise(config) for name, config in dict(experiments or {}).items()}
    if claim.check in EXTRA_CHECKS:
        return []
    if claim.check == "blank":
        return [[name] for name in configs] or None
    backbones = list(dict.fromkeys(c["backbone"] for c in configs.values()))
    groups: list[list[str]] = []
    for backbone in backbones:
        group = []
        for role in claim.arms:
            wanted = normalise({"backbone": backbone, **role.as_dict()})
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



# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

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



def _boot_seed(base: int, *parts) -> int:
    return (int(base) * 1_000_003 + zlib.crc32("|".join(map(str, parts)).encode())) % (2 ** 32)


def _comparison(label, arms, metric, statistic, expect, threshold, effect: st.Effect | None, verdict: str,
                primary: bool = True, relative: bool = True) -> dict:
    ci = effect.ci95 if effect is not None else (None, None)
    estimate = effect.estimate if effect is not None else None
    rel = effect.relative if (effect is not None and relative) else None
    rel_ci = effect.relative_ci95 if (effect is not None and relative) else (None, None)
    ref = abs(effect.means[0]) if (effect is not None and effect.means and relative) else None
    score = st.margin(ci, expect, threshold) if effect is not None else math.nan
    if ref:
        score = score / ref
    return {"label": label, "arms": list(arms), "metric": metric, "statistic": statistic, "expect": expect,
            "threshold": threshold, "estimate": estimate, "relative": rel,
            "relative_ci95": list(rel_ci), "ci95": list(ci),
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

