"""Table 5 (Sect. 5.5 "RoSTa Integration"): the RoSTa models under the paper's protocol, and EN-median.

The paper compares GFM-TT, GFM-FT, GFM-BT and GFM-RIM "for a fair comparison" at one test
resolution, 1/3, for all of them (a single pass: the network's own collaborative matte, or the
RIM output, resized back), and their ensemble EN-median, the per-pixel median of the TT, FT and
BT mattes. The models of this table are the *RoSTa sets* of the grid (:func:`rosta_sets`):
ORI-Track experiments of the base architecture (two decoders, five PPM blocks, the bridge block)
that differ only in their RoSTa.

* :func:`rosta_sets` -- the sets of ``evaluate.experiments``;
* :func:`table5_per_image` -- one seed of one set: every member and EN-median, image by image,
  each image through each network once.

The stage writes ``<evaluate.out>/table5/<experiment>/s<seed>/per_image.csv`` per member,
``<evaluate.out>/table5/en-median/<set>/s<seed>/per_image.csv`` for EN-median (``<set>``: the TT,
FT and BT experiments joined by "+") and ``<evaluate.out>/table5/runs.csv`` (one row per run:
``row`` TT | FT | BT | RIM | EN-median, ``folder`` relative to ``table5/``, the means).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from gfm.core.io import read_image
from gfm.evaluate.files import read_ground_truth, read_trimap, validation_split
from gfm.evaluate.pool import MetricPool
from gfm.model.infer import MAX_SIDE, predict

__all__ = ["EN_MEDIAN", "MEMBERS", "EN_MEDIAN_DIR", "RostaSet", "rosta_sets", "table5_per_image", "row_options"]

EN_MEDIAN = "EN-median"
#: The RoSTa of Table 5's rows, in the paper's order; EN-median takes the first three.
MEMBERS = ("TT", "FT", "BT", "RIM")
#: Folder of ``<evaluate.out>/table5`` holding the EN-median runs.
EN_MEDIAN_DIR = "en-median"
#: The base architecture of Table 5's rows (gfm.report.experiments.BASE_CONFIG without the RoSTa).
_BASE = {"track": "ori", "decoder": "two", "ppm": "five", "bridge": True}


@dataclass(frozen=True)
class RostaSet:
    """Experiments equal in everything but their RoSTa: ``members`` maps TT / FT / BT / RIM to an
    experiment name (those present)."""

    members: Mapping[str, str]
    backbone: str

    @property
    def ensemble(self) -> bool:
        """Whether EN-median can be formed: TT, FT and BT all present."""
        return all(r in self.members for r in MEMBERS[:3])

    @property
    def name(self) -> str:
        """The EN-median run's experiment name: the TT, FT and BT experiments joined by "+"."""
        return "+".join(self.members[r] for r in MEMBERS[:3] if r in self.members)


def rosta_sets(experiments: Mapping[str, object], names: Sequence[str]) -> list[RostaSet]:
    """The RoSTa sets among ``names`` (``evaluate.experiments``) of ``experiments``
    (``train.experiments``: gfm.core.config.Experiment objects): ORI-Track experiments of the base
    architecture with at least two members that differ only in ``rosta``; a lone model has no
    Table 5 of its own (its row is the main evaluation). Two experiments of one RoSTa in a set
    are a ValueError naming both (which one would be Table 5's row?)."""
    groups: dict[tuple, dict[str, str]] = {}
    for name in names:
        item = experiments[name]
        config = dataclasses.asdict(item)
        if any(config.get(key) != value for key, value in _BASE.items()) or config["rosta"] not in MEMBERS:
            continue
        key = tuple(sorted((k, repr(v)) for k, v in config.items() if k != "rosta"))
        members = groups.setdefault(key, {})
        if config["rosta"] in members:
            raise ValueError(f"evaluate.experiments: {members[config['rosta']]!r} and {name!r} are both "
                             f"{config['rosta']} models of one configuration; Table 5 needs one per RoSTa")
        members[config["rosta"]] = name
    return [RostaSet({r: members[r] for r in MEMBERS if r in members}, experiments[next(iter(members.values()))].backbone)
            for members in groups.values() if len(members) > 1]


def row_options(rosta: str, d: float | None, stage_options: Mapping) -> dict:
    """The :func:`gfm.model.infer.predict` options of a Table 5 row: one pass at 1/``d`` ("rim" for
    GFM-RIM, "resize" otherwise), or with ``d`` None the stage's own test (``stage_options``; a RIM
    model then at its default 1/3)."""
    if rosta == "RIM":
        return {**stage_options, "strategy": "rim", "d": d}
    if d is None:
        return dict(stage_options)
    return {**stage_options, "strategy": "resize", "d": d}


def table5_per_image(models: Mapping[str, object], validation_dir: str | Path, *, d: float | None = 3.0,
                     stage_options: Mapping | None = None, max_side: int = MAX_SIDE, device: str = "auto",
                     precision: str = "fp32", convention: str = "gfm", workers: int = 2,
                     names: Sequence[str] | None = None, progress: bool = True) -> dict[str, pd.DataFrame]:
    """One seed of a RoSTa set on the validation images: ``{row: per-image table}``.

    ``models`` maps TT / FT / BT / RIM to a model (:func:`gfm.model.infer.predict` accepts it);
    each is tested by :func:`row_options` (``d``; ``stage_options`` the stage's strategy, d1, d2
    and fusion for ``d`` None). With TT, FT and BT present the row ``"EN-median"`` scores their
    per-pixel median; its ``inference_s`` is the sum of the three (the ensemble runs three networks).
    Tables have the columns of :func:`gfm.evaluate.run.evaluate_model`.
    """
    unknown = sorted(set(models) - set(MEMBERS))
    if unknown:
        raise ValueError(f"table5: models must be keyed by {MEMBERS}, got {unknown}")
    split = validation_split(validation_dir)
    names = split.names() if names is None else list(names)
    if not names:
        raise ValueError(f"{split.original}: no validation images")
    base = {"strategy": "hybrid", "d1": 3.0, "d2": 2.0, "fusion": "official", **dict(stage_options or {}),
            "max_side": max_side, "device": device, "precision": precision}
    options = {rosta: row_options(rosta, d, base) for rosta in models}
    ensemble = all(r in models for r in MEMBERS[:3])
    rows = {row: [] for row in [*models, *([EN_MEDIAN] if ensemble else [])]}
    with MetricPool(workers) as pool:
        for name in tqdm(names, desc="table 5", unit="image", disable=not progress, dynamic_ncols=True):
            image = read_image(split.image_path(name))
            gt = read_ground_truth(split, name, image.shape[:2])
            trimap = read_trimap(split, name)
            mattes, seconds = {}, {}
            for rosta, model in models.items():
                start = time.perf_counter()
                mattes[rosta] = predict(model, image, **options[rosta])["fusion"]
                seconds[rosta] = time.perf_counter() - start
            if ensemble:
                mattes[EN_MEDIAN] = np.median(np.stack([mattes[r] for r in MEMBERS[:3]]), axis=0)
                seconds[EN_MEDIAN] = sum(seconds[r] for r in MEMBERS[:3])
            for row, matte in mattes.items():
                pool.submit((row, name), matte, gt, trimap, convention)
                rows[row].append({"name": name, "height": image.shape[0], "width": image.shape[1],
                                  "inference_s": seconds[row]})
        scores = pool.results()
    return {row: pd.DataFrame([{**found, **scores[row, found["name"]]} for found in table])
            for row, table in rows.items()}
