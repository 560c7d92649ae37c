"""gfm.evaluate.stage: the evaluate stage from Params alone -- every run of the grid (seed folders
and the legacy single model), the reference mattes, Tables 6 and 7, figures, metrics JSON."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from gfm.core.config import load_params, parse_params, to_dict
from gfm.evaluate import stage
from gfm.evaluate.files import PER_IMAGE, PREDICTIONS, read_per_image
from gfm.evaluate.figures import INDEX
from gfm.evaluate.run import evaluate_model
from gfm.model.infer import load_model
from gfm.ui.browser import build_result_browser

from test_config import ROOT
from test_evaluate import make_validation

TINY = {"width_divisor": 16}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_run):
    """A validation split and trained runs: ori-tt with seeds 0 and 1, coco-tt in the legacy layout."""
    root = tmp_path_factory.mktemp("world")
    make_validation(root / "datasets", n=4)
    models = root / "models"
    for seed in (0, 1):
        make_run(models / "ori-tt" / f"s{seed}", seed=seed, backbone_options=TINY)
    make_run(models / "coco-tt", legacy=True, seed=2, backbone_options=TINY)
    return root


def make_params(root, rostas=(), **evaluate):
    """The repository's params with this world's folders and a tiny evaluate section; ``rostas``: add
    ``ori-<rosta>`` experiments, ori-tt's configuration with that RoSTa (a Table 5 set)."""
    raw = to_dict(load_params(ROOT / "params.yaml"))
    for rosta in rostas:
        raw["train"]["experiments"][f"ori-{rosta.lower()}"] = {**raw["train"]["experiments"]["ori-tt"], "rosta": rosta}
    raw["device"] = "cpu"
    raw["data"]["datasets"] = str(root / "datasets")
    raw["train"]["out"] = str(root / "models")
    for item in raw["train"]["experiments"].values():
        if item["track"] == "ori":
            item["data"] = str(root / "datasets" / "am2k" / "train")
    raw["evaluate"].update({"out": str(root / "evaluation"), "metrics_out": str(root / "metrics" / "evaluate.json"),
                            "experiments": ["ori-tt", "coco-tt"], "table6_model": "ori-tt", "table6_d": [1.0, 2.0],
                            "table6_single": [1.5], "table6_images": 2, "complexity_backbones": ["r18_lite"],
                            "latency_backbones": [], "latency_runs": 0, "workers": 1, "qualitative_images": 2,
                            **evaluate})
    return parse_params(raw, source="test params")


@pytest.fixture(scope="module")
def result(world):
    (world / "evaluation" / "stale").mkdir(parents=True)                # left by an earlier run: must go
    return stage.run(make_params(world))


def test_every_run_and_baseline_evaluated(world, result):
    out = world / "evaluation"
    for folder in ("ori-tt/s0", "ori-tt/s1", "coco-tt/s0", "baselines/blank", "baselines/closed_form"):
        assert list(read_per_image(out / folder).index) == ["v_0", "v_1", "v_2", "v_3"], folder
    assert not (out / "stale").exists()
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["run"]) == ["ori-tt-s0", "ori-tt-s1", "coco-tt-s0"]
    assert list(runs["model"]) == [str(world / "models" / p) for p in ("ori-tt/s0", "ori-tt/s1", "coco-tt")]
    assert list(pd.read_csv(out / "baselines.csv")["baseline"]) == ["blank", "closed_form"]
    pd.testing.assert_frame_equal(runs[["run", "sad"]], result.runs[["run", "sad"]], check_exact=False, rtol=1e-5)


def test_per_image_scores_are_the_direct_evaluation(world):
    params = make_params(world)
    model, _ = load_model(world / "models" / "ori-tt" / "s1")
    cfg = params.evaluate
    direct = evaluate_model(model, world / "datasets", strategy=cfg.strategy, d1=cfg.d1, d2=cfg.d2, device="cpu",
                            workers=0, progress=False, names=["v_2"], warmup=0)
    saved = read_per_image(world / "evaluation" / "ori-tt" / "s1").loc["v_2"]
    for key in ("sad", "mse", "grad", "conn", "sad_trans"):
        assert saved[key] == pytest.approx(direct.loc[0, key], rel=1e-5), key


def test_metrics_json_shape(world, result):
    written = json.loads((world / "metrics" / "evaluate.json").read_text())
    assert written == result.metrics and list(written) == ["ori-tt", "coco-tt", "baselines", "fusions"]
    runs = result.runs.set_index("run")
    assert written["ori-tt"]["seeds"] == 2 and written["coco-tt"]["seeds"] == 1
    assert written["ori-tt"]["images"] == 4
    assert written["ori-tt"]["sad"] == pytest.approx((runs.loc["ori-tt-s0", "sad"] + runs.loc["ori-tt-s1", "sad"]) / 2,
                                                     rel=1e-5)
    assert set(written["baselines"]) == {"blank", "closed_form"}
    for entry in (written["ori-tt"], written["coco-tt"], *written["baselines"].values()):
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry.values())  # dvc metrics
        assert {"sad", "mse", "mad", "grad", "conn", "sad_trans", "inference_s", "metrics_s"} <= set(entry)
    gt_mass = sum(read_per_image(world / "evaluation" / "baselines" / "blank")["sad"]) / 4
    assert written["baselines"]["blank"]["sad"] == pytest.approx(gt_mass, rel=1e-5)
    assert written["baselines"]["closed_form"]["sad"] < written["baselines"]["blank"]["sad"]


def test_both_fusions_measured_from_the_same_passes(world, result):
    written = result.metrics["fusions"]
    assert list(written) == ["ori-tt", "coco-tt"] and list(written["ori-tt"]) == ["official", "upsampled", "difference"]
    per_image = read_per_image(world / "evaluation" / "ori-tt" / "s0")
    assert {f"{m}_upsampled" for m in ("sad", "mse", "mad", "grad", "conn", "sad_trans")} <= set(per_image.columns)
    table = pd.read_csv(world / "evaluation" / "fusions.csv")
    assert list(table.columns[:5]) == ["benchmark", "run", "experiment", "seed", "fusion"]
    s0 = table[table["run"] == "ori-tt-s0"].set_index("fusion")
    assert s0.loc["official", "sad"] == pytest.approx(per_image["sad"].mean(), rel=1e-5)       # evaluate.fusion
    assert s0.loc["upsampled", "sad"] == pytest.approx(per_image["sad_upsampled"].mean(), rel=1e-5)
    assert s0.loc["difference", "sad"] == pytest.approx(s0.loc["upsampled", "sad"] - s0.loc["official", "sad"],
                                                        rel=1e-4, abs=1e-9)
    means = table[table["experiment"] == "ori-tt"].groupby("fusion")["sad"].mean()
    for kind in ("official", "upsampled", "difference"):
        assert written["ori-tt"][kind]["sad"] == pytest.approx(means[kind], rel=1e-5, abs=1e-9)
    assert written["ori-tt"]["official"]["sad"] == pytest.approx(result.metrics["ori-tt"]["sad"], rel=1e-5)
    protocol = json.loads((world / "evaluation" / "protocol.json").read_text())
    assert protocol["fusion"] == "official" and protocol["fusions"] == ["official", "upsampled"]
    assert [b["name"] for b in protocol["benchmarks"]] == ["am2k"] and protocol["table5_sets"] == []


def test_table6_on_the_lowest_seed_and_a_subset(world, result):
    table = pd.read_csv(world / "evaluation" / "table6.csv")
    assert list(zip(table["test"], table["d1"], table["d2"])) == [
        ("hybrid", 1.0, 1.0), ("hybrid", 2.0, 1.0), ("hybrid", 2.0, 2.0), ("single", 1.5, 1.5)]
    assert set(table["run"]) == {"ori-tt-s0"}
    assert result.timing["table6"] == {**result.timing["table6"], "run": "ori-tt-s0", "images": 2, "settings": 4}
    per_image = pd.read_csv(world / "evaluation" / "table6_per_image.csv", dtype={"name": str})
    assert list(per_image.columns[:5]) == ["test", "d1", "d2", "run", "name"]
    assert list(per_image["name"][:2]) == ["v_0", "v_3"]                  # 2 evenly spread images of 4
    means = per_image.groupby(["test", "d1", "d2"], sort=False)["sad"].mean().to_numpy()
    np.testing.assert_allclose(table["sad"], means, rtol=1e-5)


def test_complexity_measured_only(world):
    table = pd.read_csv(world / "evaluation" / "complexity.csv")
    assert list(table.columns) == ["backbone", "parameters_m", "gmac", "latency_s", "device"]
    assert list(table["backbone"]) == ["r18_lite"] and math.isnan(table.loc[0, "latency_s"])


def test_figures_and_their_index(world, result):
    folder = world / "evaluation" / "figures"
    index = json.loads((folder / INDEX).read_text())
    assert index == result.figures and [e["kind"] for e in index] == ["qualitative", "qualitative", "decoders"]
    assert all((folder / e["file"]).is_file() for e in index)
    assert index[0]["runs"] == ["ori-tt-s0", "coco-tt-s0"] and index[0]["baselines"] == ["closed_form"]


def test_timing_per_image(world, result):
    timing = json.loads((world / "evaluation" / "timing.json").read_text())
    assert timing == result.timing and timing["images"] == 4 and timing["device"] == "cpu"
    for key in ("inference_s_per_image", "metrics_s_per_image", "run_wall_s_per_image", "closed_form_s_per_image",
                "blank_s_per_image", "stage_wall_s", "complexity_wall_s", "figures_wall_s"):
        assert timing[key] >= 0, key
    assert timing["stage_wall_s"] >= timing["table6"]["wall_s"]


def test_browser_over_the_stage_output(world, result):
    browser = build_result_browser(world / "evaluation", world / "datasets", image=result.figures[-1]["image"],
                                   run="ori-tt-s0")
    assert browser.children[0].children[1].options == ("coco-tt-s0", "ori-tt-s0", "ori-tt-s1")


def test_without_saved_predictions_only_the_figures_images_are_kept(world, tmp_path):
    params = make_params(world, save_predictions=False, baselines=["closed_form"], experiments=["ori-tt"],
                         table6_images=1, table6_d=[1.0], table6_single=[1.0], out=str(tmp_path / "ev"),
                         metrics_out=str(tmp_path / "ev.json"))
    result = stage.run(params)
    shown = sorted({e["image"] for e in result.figures})
    assert len(shown) == 2
    for folder in ("ori-tt/s0", "baselines/closed_form"):                 # the figures' run: seed 0
        saved = sorted(p.stem for p in (tmp_path / "ev" / folder / PREDICTIONS / "alpha").iterdir())
        assert saved == shown, folder
    assert not (tmp_path / "ev" / "ori-tt" / "s1" / PREDICTIONS).exists()
    assert (tmp_path / "ev" / "ori-tt" / "s1" / PER_IMAGE).is_file()
    assert list(json.loads((tmp_path / "ev.json").read_text())["baselines"]) == ["closed_form"]
    assert len(build_result_browser(tmp_path / "ev", world / "datasets").children[0].children[0].options) == len(shown)


def test_missing_model_names_the_experiment_folder(world, tmp_path):
    params = make_params(world, experiments=["ori-tt", "rssn-tt"])
    with pytest.raises(FileNotFoundError, match=r"rssn-tt: no trained model"):
        stage.run(params)


def test_validation_of_falls_back_to_the_embedded_world(world, tmp_path):
    params = make_params(world)
    assert stage.validation_of(params).root == world / "datasets" / "am2k" / "validation"
    raw = to_dict(params)
    raw["data"]["datasets"] = str(tmp_path / "not-yet")
    raw["data"]["data_root"] = str(world / "datasets")
    for item in raw["train"]["experiments"].values():
        if item["track"] == "ori":
            item["data"] = str(tmp_path / "not-yet" / "am2k" / "train")
    assert stage.validation_of(parse_params(raw)).root == world / "datasets" / "am2k" / "validation"


@pytest.fixture(scope="module")
def portraits(world, make_run):
    """P3M-500-P beside AM-2k (<datasets>/pm10k/validation) and FT / BT models of ori-tt's configuration
    (FT: seeds 0 and 1, BT: seed 0 only); the stage run over both benchmarks with that Table 5 set."""
    import shutil

    source = make_validation(world / "portrait-source", n=3)
    shutil.copytree(source / "am2k" / "validation", world / "datasets" / "pm10k" / "validation")
    for rosta, seeds in (("FT", (0, 1)), ("BT", (0,))):
        for seed in seeds:
            make_run(world / "models" / f"ori-{rosta.lower()}" / f"s{seed}", rosta, seed=seed, backbone_options=TINY)
    params = make_params(world, rostas=("FT", "BT"), experiments=["ori-tt", "ori-ft", "ori-bt"],
                         benchmarks=["am2k", "p3m500p"], baselines=["blank"], table6_d=[1.0], table6_single=[1.0],
                         table6_images=1, qualitative_images=1, out=str(world / "evaluation-2"),
                         metrics_out=str(world / "metrics" / "evaluate-2.json"))
    return stage.run(params)


def test_a_second_benchmark_gets_its_own_folder_and_section(world, portraits):
    out = world / "evaluation-2"
    for folder in ("ori-tt/s1", "ori-bt/s0", "baselines/blank"):                    # AM-2k: where it always was
        assert list(read_per_image(out / folder).index) == ["v_0", "v_1", "v_2", "v_3"], folder
    bench = out / "benchmarks" / "p3m500p"
    for folder in ("ori-tt/s0", "ori-tt/s1", "ori-ft/s1", "ori-bt/s0", "baselines/blank"):
        assert list(read_per_image(bench / folder).index) == ["v_0", "v_1", "v_2"], folder
    runs = pd.read_csv(bench / "runs.csv")
    assert list(runs["run"]) == ["ori-tt-s0", "ori-tt-s1", "ori-ft-s0", "ori-ft-s1", "ori-bt-s0"]
    assert list(pd.read_csv(bench / "baselines.csv")["baseline"]) == ["blank"]
    written = json.loads((world / "metrics" / "evaluate-2.json").read_text())
    assert list(written) == ["ori-tt", "ori-ft", "ori-bt", "baselines", "fusions", "table5", "benchmarks"]
    section = written["benchmarks"]["p3m500p"]
    assert list(section) == ["ori-tt", "ori-ft", "ori-bt", "baselines", "fusions"]
    assert section["ori-tt"]["images"] == 3 and section["ori-tt"]["seeds"] == 2
    assert section["ori-tt"]["sad"] == pytest.approx(runs[runs["experiment"] == "ori-tt"]["sad"].mean(), rel=1e-5)
    assert set(pd.read_csv(out / "fusions.csv")["benchmark"]) == {"am2k", "p3m500p"}
    assert list(portraits.benchmarks) == ["p3m500p"] and len(portraits.benchmarks["p3m500p"]["experiments"]) == 3
    protocol = json.loads((out / "protocol.json").read_text())
    assert [(b["name"], b["out"]) for b in protocol["benchmarks"]] == [("am2k", "."), ("p3m500p", "benchmarks/p3m500p")]


def test_table5_one_pass_at_one_third_and_en_median(world, portraits):
    out = world / "evaluation-2" / "table5"
    runs = pd.read_csv(out / "runs.csv")
    assert list(zip(runs["row"], runs["run"])) == [("TT", "ori-tt-s0"), ("FT", "ori-ft-s0"), ("BT", "ori-bt-s0"),
                                                   ("EN-median", "ori-tt+ori-ft+ori-bt-s0")]   # the seed all share
    assert list(runs["folder"]) == ["ori-tt/s0", "ori-ft/s0", "ori-bt/s0", "en-median/ori-tt+ori-ft+ori-bt/s0"]
    model, _ = load_model(world / "models" / "ori-ft" / "s0")
    direct = evaluate_model(model, world / "datasets", strategy="resize", d=3.0, device="cpu", workers=0,
                            progress=False, names=["v_1"], warmup=0)
    assert read_per_image(out / "ori-ft" / "s0").loc["v_1", "sad"] == pytest.approx(direct.loc[0, "sad"], rel=1e-5)
    written = json.loads((world / "metrics" / "evaluate-2.json").read_text())["table5"]
    assert list(written) == ["ori-tt", "ori-ft", "ori-bt", "ori-tt+ori-ft+ori-bt"]
    assert written["ori-tt+ori-ft+ori-bt"]["seeds"] == 1
    assert written["ori-tt+ori-ft+ori-bt"]["sad"] == pytest.approx(runs.loc[3, "sad"], rel=1e-5)
    protocol = json.loads((world / "evaluation-2" / "protocol.json").read_text())
    assert protocol["table5_d"] == 3.0 and protocol["table5_sets"] == [
        {"members": {"TT": "ori-tt", "FT": "ori-ft", "BT": "ori-bt"}, "backbone": "r18_slim", "en_median": True}]
    assert len(portraits.table5) == 4


def test_a_missing_benchmark_names_its_folder_and_source(world, tmp_path):
    params = make_params(world, benchmarks=["am2k", "p3m500np"], out=str(tmp_path / "ev"))
    with pytest.raises(FileNotFoundError, match=r"pm10k/validation_np: benchmark 'p3m500np' .* data\.real_sources "
                                                r"entry 'p3m10k'"):
        stage.run(params)
    assert not (tmp_path / "ev").exists()
    # without AM-2k the parameters are refused when read, before any stage runs (gfm.core.config)
    with pytest.raises(ValueError, match="evaluate.benchmarks: must include am2k"):
        make_params(world, benchmarks=["p3m500p"], out=str(tmp_path / "ev"))
