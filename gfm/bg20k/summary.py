"""How well a BG-20k build did: per-reason counts, each filter scored against truth labels, the metrics.

The paper (Sect. 4.1) checked its filters by hand; the embedded world labels every candidate
(``bg_candidates.csv``: kind ``clean``, ``duplicate``, ``salient``, ``lowres`` or ``corrupt``), so
:func:`score_filters` measures each filter's precision and recall.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gfm.bg20k.build import BAD_FILE_REASONS, REASONS
from gfm.data.registry import BG20K_SPLITS

#: The ``mode`` of the metrics of a set built from candidates (the released BG-20k: ``official``).
MODE = "constructed"
#: Filters scored by :func:`score_filters`: predicted reasons -> truth ``kind``.
FILTERS = {
    "low_resolution": (("too_small", "low_resolution"), "lowres"),
    "duplicate": (("duplicate",), "duplicate"),
    "salient": (("salient",), "salient"),
    "bad_file": (BAD_FILE_REASONS, "corrupt"),
}


def score_filters(manifest: pd.DataFrame, truth_csv: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of each filter against the truth labels of the candidates.

    Filters (:data:`FILTERS`): ``low_resolution`` (reasons too_small, low_resolution) vs truth
    kind ``lowres``; ``duplicate`` vs ``duplicate``; ``salient`` vs ``salient``; ``bad_file``
    (unreadable, grayscale, cmyk, 16bit) vs ``corrupt``; and ``overall``: rejected vs any kind
    but ``clean``. A predicted duplicate counts as correct when it and the image it was matched
    to belong to the same truth duplicate group (whichever of the two the truth calls the
    original), so keeping the first by name is not penalised.

    Returns
    -------
    DataFrame indexed by filter with columns predicted, actual, true_positives, precision,
    recall (NaN when undefined).
    """
    truth = pd.read_csv(truth_csv, dtype=str) if not isinstance(truth_csv, pd.DataFrame) else truth_csv
    truth = truth.assign(name=truth["name"].map(lambda s: Path(str(s)).stem)).set_index("name")
    missing = sorted(set(manifest["name"]) - set(truth.index))
    if missing:
        raise ValueError(f"truth table has no row for candidates {missing[:5]}")
    kind = manifest["name"].map(truth["kind"]).to_numpy()
    reason = manifest["reason"].to_numpy()
    rows = {}
    for name, (reasons, truth_kind) in FILTERS.items():
        predicted, actual = np.isin(reason, reasons), kind == truth_kind
        hits = predicted & actual
        if name == "duplicate":
            hits = predicted & _same_duplicate_group(manifest, truth)
        rows[name] = _precision_recall(predicted.sum(), actual.sum(), hits.sum())
    rejected, dirty = reason != "ok", kind != "clean"
    rows["overall"] = _precision_recall(rejected.sum(), dirty.sum(), (rejected & dirty).sum())
    return pd.DataFrame.from_dict(rows, orient="index")


def summarise(manifest: pd.DataFrame) -> pd.DataFrame:
    """Number of candidates per reason, and kept images per split (one row each)."""
    reasons = manifest["reason"].value_counts().reindex(REASONS, fill_value=0)
    counts = {f"reason: {r}": int(n) for r, n in reasons.items() if n or r == "ok"}
    for split in BG20K_SPLITS:
        counts[f"split: {split}"] = int((manifest["split"] == split).sum())
    counts["candidates"] = len(manifest)
    return pd.Series(counts, name="images").to_frame()


def metrics_summary(manifest: pd.DataFrame, scores: pd.DataFrame | None = None, *,
                    seconds: float | None = None, split: str = "random split") -> dict:
    """JSON-ready figures of a build (for ``dvc metrics show``): the mode (``constructed``), how the
    kept images were split (``split``, followed by the train/testval counts), counts, time, filter
    scores."""
    counts = {name: int((manifest["split"] == name).sum()) for name in BG20K_SPLITS}
    metrics = {"mode": MODE, "split": f"{split}, {'/'.join(map(str, counts.values()))} images",
               "candidates": len(manifest), "kept": int((manifest["status"] == "kept").sum()), **counts}
    if seconds is not None:
        metrics["seconds"] = round(float(seconds), 2)
    if scores is not None:
        metrics["filters"] = {
            name: {key: (int(value) if key in ("predicted", "actual", "true_positives")
                         else None if pd.isna(value) else round(float(value), 4))
                   for key, value in row.items()}
            for name, row in scores.iterrows()}
    return metrics


def _same_duplicate_group(manifest: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per manifest row: its predicted duplicate_of lies in the same truth duplicate group."""
    parent = truth["duplicate_of"].fillna("").map(lambda s: Path(s).stem if s else "")

    def root(name: str) -> str:
        seen = set()
        while parent.get(name, "") and name not in seen:
            seen.add(name)
            name = parent[name]
        return name

    pred = manifest["duplicate_of"].fillna("").astype(str)
    return np.array([bool(o) and o in parent.index and root(n) == root(o)
                     for n, o in zip(manifest["name"], pred)])


def _precision_recall(predicted: int, actual: int, hits: int) -> dict:
    return dict(predicted=int(predicted), actual=int(actual), true_positives=int(hits),
                precision=hits / predicted if predicted else np.nan,
                recall=hits / actual if actual else np.nan)
