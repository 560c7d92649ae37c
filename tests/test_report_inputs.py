"""gfm.report.inputs: the stage output folders the report reads (the seeds / run-folder contract).

:func:`write_evaluation` builds a synthetic ``<evaluate.out>`` (also used by the findings and stage tests).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gfm.core.io import write_bytes, write_text
from gfm.report import inputs

PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000b49444154789c"
                        "6360000200000500017a5eab3f0000000049454e44ae426082")
METRICS = ("sad", "mse", "mad", "grad", "conn", "sad_trans", "sad_fg", "sad_bg")


def write_evaluation(root, effects, *, seeds=3, images=24, seed=0, legacy=(), blank=True, closed_form=True):
    """Write ``<root>/<experiment>/s<k>/per_image.csv`` for each experiment of ``effects`` (its SAD
    shift over a shared image difficulty; every metric follows SAD), ``legacy`` experiments as one
    ``<root>/<experiment>/per_image.csv``, and the blank / closed-form reference mattes. Returns the
    image difficulties (the SAD of the base model without noise)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(4.0, 3.0, images)
    names = [f"img{i:03d}" for i in range(images)]

    def table(shift, noise=0.4):
        sad = difficulty + shift + rng.normal(0, 0.2) + rng.normal(0, noise, images)
        frame = {"name": names, "height": 64, "width": 64}
        frame.update({m: sad * scale for m, scale in zip(METRICS, (1, 1e-3, 1e-3, 2, 1, 0.6, 0.1, 0.3))})
        frame["sad_bg"] = 0.3 * difficulty + 0.8 * shift + rng.normal(0, 0.1, images)
        frame["sad_trans"] = 0.6 * difficulty + 0.2 * shift + rng.normal(0, 0.1, images)
        return pd.DataFrame(frame)

    for experiment, shift in effects.items():
        if experiment in legacy:
            write_text(root / experiment / inputs.PER_IMAGE, table(shift).to_csv(index=False))
            continue
        for k in range(seeds):
            write_text(root / experiment / f"s{k}" / inputs.PER_IMAGE, table(shift).to_csv(index=False))
    if blank:
        frame = pd.DataFrame({"name": names, **{m: 6 * difficulty for m in METRICS}})
        write_text(root / inputs.BASELINES / inputs.BLANK / inputs.PER_IMAGE, frame.to_csv(index=False))
    if closed_form:
        frame = pd.DataFrame({"name": names, **{m: 0.2 * difficulty for m in METRICS}})
        write_text(root / inputs.BASELINES / inputs.CLOSED_FORM / inputs.PER_IMAGE, frame.to_csv(index=False))
    return difficulty


def test_run_names():
    assert inputs.run_name("ori-tt", 2) == "ori-tt-s2"
    assert inputs.split_run("ori-tt-single-s10") == ("ori-tt-single", 10)
    assert inputs.split_run("blank") is None and inputs.split_run("ori-tt") is None


def test_evaluated_runs_seeded_legacy_and_reserved(tmp_path):
    write_evaluation(tmp_path, {"ori-tt": 0.0, "coco-tt": 5.0}, seeds=2, legacy=("coco-tt",))
    write_bytes(tmp_path / inputs.FIGURES / "qualitative_a.png", PNG_1PX)
    (tmp_path / "ori-tt" / "s7").mkdir()                              # a seed folder without results
    runs = inputs.evaluated_runs(tmp_path)
    assert list(runs) == ["coco-tt-s0", "ori-tt-s0", "ori-tt-s1"]     # baselines/ and figures/ are no experiments
    assert runs["coco-tt-s0"] == tmp_path / "coco-tt" / "per_image.csv"
    assert runs["ori-tt-s1"] == tmp_path / "ori-tt" / "s1" / "per_image.csv"
    assert list(inputs.evaluated_runs(tmp_path, ["ori-tt", "rssn-tt"])) == ["ori-tt-s0", "ori-tt-s1"]
    assert inputs.evaluated_runs(tmp_path / "nothing") == {}


def test_per_image_tables_baselines_and_seeds(tmp_path):
    write_evaluation(tmp_path, {"ori-tt": 0.0, "ori-single": 2.0}, seeds=3, images=10)
    tables = inputs.per_image_tables(tmp_path)
    assert set(tables) == {"ori-tt-s0", "ori-tt-s1", "ori-tt-s2", "ori-single-s0", "ori-single-s1",
                           "ori-single-s2", inputs.BLANK}
    assert len(tables["ori-tt-s0"]) == 10 and tables["ori-tt-s0"]["name"].iloc[0] == "img000"
    assert inputs.seeds_of(tables) == {"ori-single": [0, 1, 2], "ori-tt": [0, 1, 2]}
    assert set(inputs.baselines(tmp_path)) == {inputs.BLANK, inputs.CLOSED_FORM}
    assert inputs.baselines(tmp_path / "nothing") == {}
    write_text(tmp_path / "bad" / "s0" / inputs.PER_IMAGE, "sad\n1.0\n")
    with pytest.raises(ValueError, match=r"bad/s0/per_image.csv.*'name'"):
        inputs.per_image_tables(tmp_path, ["bad"])


def test_training_losses(tmp_path):
    for folder in ("ori-tt/s0", "ori-tt/s1", "coco-tt"):
        write_text(tmp_path / folder / "losses.csv", "step,total\n1,2.0\n")
    found = inputs.training_losses(tmp_path)
    assert found == {"coco-tt-s0": tmp_path / "coco-tt" / "losses.csv",
                     "ori-tt-s0": tmp_path / "ori-tt" / "s0" / "losses.csv",
                     "ori-tt-s1": tmp_path / "ori-tt" / "s1" / "losses.csv"}
    assert list(inputs.training_losses(tmp_path, ["ori-tt"])) == ["ori-tt-s0", "ori-tt-s1"]


def test_stage_figures_sorted_with_captions(tmp_path):
    assert inputs.stage_figures(tmp_path) == []                       # the stage has not run
    for name in ("route_comparison.png", "gallery-kept_rejected.png", "notes.txt"):
        write_bytes(tmp_path / inputs.FIGURES / name, PNG_1PX)
    found = inputs.stage_figures(tmp_path)
    assert [caption for caption, _ in found] == ["Gallery kept rejected", "Route comparison"]
    assert [path.name for _, path in found] == ["gallery-kept_rejected.png", "route_comparison.png"]
    # the stage's own index gives the caption where it has one
    write_text(tmp_path / inputs.FIGURES / inputs.FIGURE_INDEX,
               json.dumps([{"file": "route_comparison.png", "kind": "routes", "caption": "One foreground, every route"}]))
    assert [caption for caption, _ in inputs.stage_figures(tmp_path)] == ["Gallery kept rejected",
                                                                          "One foreground, every route"]
    write_text(tmp_path / inputs.FIGURES / inputs.FIGURE_INDEX, "[not json")
    with pytest.raises(ValueError, match="figures.json"):
        inputs.stage_figures(tmp_path)


def test_metrics_csv_and_data(tmp_path):
    write_text(tmp_path / "evaluate.json", json.dumps({"ori-tt": {"sad": 1.0}}))
    write_text(tmp_path / "compose.json", "{not json")
    assert inputs.load_metrics(tmp_path, ["evaluate", "bg20k"]) == {"evaluate": {"ori-tt": {"sad": 1.0}}}
    with pytest.raises(ValueError, match="compose.json"):
        inputs.load_metrics(tmp_path, ["compose"])
    assert inputs.read_csv(tmp_path / "none.csv") is None
    write_text(tmp_path / "t.csv", "name,sad\n007,1\n")
    assert inputs.read_csv(tmp_path / "t.csv")["name"].iloc[0] == "007"
    assert inputs.run_data({"source": "embedded"}) == inputs.DATA_SAMPLE
    assert inputs.run_data({"source": "real"}, "sample") == inputs.DATA_REAL
    assert inputs.run_data(None, "paper") == inputs.DATA_REAL and inputs.run_data(None) == inputs.DATA_SAMPLE
