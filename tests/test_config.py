"""gfm.core.config: params.yaml parsed and validated once into frozen, typed stage configs."""

from __future__ import annotations

import copy
import dataclasses
import importlib
from pathlib import Path

import pytest
import yaml
from ruamel.yaml import YAML

from gfm.core import config
from gfm.core.config import ConfigError, Experiment, Params, load_params, parse_params, to_dict

ROOT = Path(__file__).resolve().parents[1]


def _read(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text())


def _overlay(base: dict, profile: dict) -> dict:
    """Deep merge, as ``gfm profile`` does: a profile's ``train.experiments`` replaces the grid whole."""
    merged = copy.deepcopy(base)

    def merge(target, over, prefix):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict) and f"{prefix}{key}" != "train.experiments":
                merge(target[key], value, f"{prefix}{key}.")
            else:
                target[key] = copy.deepcopy(value)

    merge(merged, profile, "")
    return merged


@pytest.fixture(scope="module")
def raw() -> dict:
    return _read(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


def _error(mapping, source="params.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_params(mapping, source=source)
    return info.value


# --------------------------------------------------------------------------------------------
# the repository's params and profiles
# --------------------------------------------------------------------------------------------

def test_repo_params_load_typed(params):
    assert params.path == ROOT / "params.yaml"
    assert params.profile == "sample" and params.seed == 0 and params.device == "auto"
    assert params.data.source == "embedded" and params.data.real_sources == ("am2k", "bg20k", "coco")
    assert params.data.strict is True
    assert params.bg20k.convert == () and params.bg20k.dedup_threshold == 10
    assert params.compose.routes == ("coco", "bg20k", "rssn")
    assert params.compose.blur_kernels == (7, 10, 13, 17, 20)
    assert isinstance(params.compose.noise_sigma, float)
    assert params.train.crop_sizes == (160, 240, 320) and params.train.official_loss is False
    assert list(params.train.experiments) == ["ori-tt", "coco-tt", "bg20k-tt", "rssn-tt", "ori-single"]
    assert isinstance(params.train.experiments["ori-tt"], Experiment)
    assert params.evaluate.experiments == ("ori-tt", "coco-tt", "bg20k-tt", "rssn-tt", "ori-single")
    assert params.evaluate.table6_d == (2.0, 3.0, 4.0) and all(isinstance(d, float) for d in params.evaluate.table6_d)
    assert params.report.out == "reports"


def test_optional_knobs_have_the_notebook_defaults(params):
    ori = params.experiment("ori-tt")
    assert ori.steps_per_epoch is None and ori.max_steps is None and ori.pretrained is None and params.train.pretrained == "none"
    assert params.train.n_preview == 4 and params.train.metrics_path("ori-tt") == "metrics/train/ori-tt.json"
    assert params.data.n_samples == 4 and params.data.metrics_out == "metrics/download.json"
    assert params.compose.fg_error_images == 3 and params.compose.gap_images == 48
    assert params.evaluate.qualitative_images == 3
    assert params.report.matte_images == 3


def test_every_section_key_of_the_profiles_is_known(raw):
    for name in ("paper", "sample"):
        profile = _read(ROOT / f"profiles/{name}.yaml")
        overlaid = parse_params(_overlay(raw, profile), source=f"profiles/{name}.yaml")
        assert overlaid.profile == name


def test_paper_profile_overlay(raw, params):
    paper = parse_params(_overlay(raw, _read(ROOT / "profiles/paper.yaml")))
    assert paper.data.source == "real"
    assert paper.compose.routes == ("coco", "bg20k", "rssn", "rssn_blur", "rssn_denoise", "rssn_noise")
    assert paper.compose.blur_kernels == (20, 30, 40, 50, 60) and paper.compose.fg_method == "cf"
    assert paper.train.lr == 1e-5 and paper.train.input_size == 320 and paper.train.crop_sizes == (640, 960, 1280)
    assert "ori-tt" not in paper.train.experiments and paper.train.experiments["rssn-blur-r"].track == "rssn_blur"
    assert set(paper.evaluate.experiments) <= set(paper.train.experiments)
    assert paper.evaluate.table6_d == (2.0, 3.0, 4.0) and paper.evaluate.latency_runs == 10
    back = parse_params(_overlay(to_dict(paper), _read(ROOT / "profiles/sample.yaml")))
    assert back == params


def test_list_form_and_legacy_comma_strings_agree(raw, params):
    lists = copy.deepcopy(raw)
    lists["data"]["real_sources"] = ["am2k", "bg20k", "coco"]
    lists["bg20k"]["convert"] = []
    lists["compose"].update(routes=["coco", "bg20k", "rssn"], blur_kernels=[7, 10, 13, 17, 20])
    lists["train"]["crop_sizes"] = [160, 240, 320]
    lists["evaluate"].update(experiments=["ori-tt", "coco-tt", "bg20k-tt", "rssn-tt", "ori-single"],
                             table6_d=[2, 3, 4], table6_single=[2.0, 2.2, 2.6, 3.0],
                             complexity_backbones=["r34", "d121", "r34_2b", "r101"], latency_backbones=["r34"])
    assert parse_params(lists) == params
    legacy = copy.deepcopy(raw)
    legacy["bg20k"]["convert"] = "cmyk, 16bit"
    legacy["train"]["crop_sizes"] = " 160,240 ,320,"
    legacy["train"]["official_loss"] = "gist_kernel,ce_on_sigmoid"
    parsed = parse_params(legacy)
    assert parsed.bg20k.convert == ("cmyk", "16bit")
    assert parsed.train.crop_sizes == (160, 240, 320)
    assert parsed.train.official_loss == ("gist_kernel", "ce_on_sigmoid")


def test_new_format_file_loads(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(params), sort_keys=False))
    assert load_params(path) == params
    assert load_params(str(path)).path == path


# --------------------------------------------------------------------------------------------
# errors: each names the file and the dotted key
# --------------------------------------------------------------------------------------------

def _set(path: str, value):
    def change(tree):
        *parents, leaf = path.split(".")
        for key in parents:
            tree = tree[key]
        tree[leaf] = value
    return change


def _drop(path: str):
    def change(tree):
        *parents, leaf = path.split(".")
        for key in parents:
            tree = tree[key]
        del tree[leaf]
    return change


def _rename(path: str, new: str):
    def change(tree):
        *parents, leaf = path.split(".")
        for key in parents:
            tree = tree[key]
        tree[new] = tree.pop(leaf)
    return change


ORI = "train.experiments.ori-tt"

ERRORS = [
    # (change, dotted key, fragment of the problem)
    (_rename("data.source", "sorce"), "data.sorce", "unknown key (did you mean 'data.source'?)"),
    (_rename("seed", "sede"), "sede", "did you mean 'seed'?"),
    (_set("compose.colour", 1), "compose.colour", "unknown key (known: out, routes"),
    (_set("data.strict", "maybe"), "data.strict", "expected a YAML bool (true or false), got string 'maybe'"),
    (_set("train.cache", 1), "train.cache", "expected a YAML bool"),
    (_set("compose.p_blur", -0.5), "compose.p_blur", "must be in [0, 1], got -0.5"),
    (_set("compose.p_noise", 1.5), "compose.p_noise", "must be in [0, 1]"),
    (_set("compose.noise_sigma", -1), "compose.noise_sigma", "must be >= 0"),
    (_set("compose.k", 0), "compose.k", "must be >= 1"),
    (_set("compose.k", True), "compose.k", "expected an integer, got bool"),
    (_set("compose.k", 2.0), "compose.k", "expected an integer, got float 2.0"),
    (_set("compose.p_blur", "0.5"), "compose.p_blur", "expected a number, got string '0.5'"),
    (_set("compose.fg_method", "closed_form"), "compose.fg_method", "must be one of cf, ml, naive, premultiplied"),
    (_set("compose.denoiser", "bm4d"), "compose.denoiser", "did you mean 'bm3d'?"),
    (_set("compose.resize_mode", "crop"), "compose.resize_mode", "must be one of stretch, cover"),
    (_set("compose.routes", "coco,bg20k,rssn_blurr"), "compose.routes[2]", "did you mean 'rssn_blur'?"),
    (_set("compose.routes", ["coco", "coco"]), "compose.routes", "listed twice"),
    (_set("compose.blur_kernels", "7,x"), "compose.blur_kernels[1]", "expected an integer"),
    (_set("compose.blur_kernels", [7, 0]), "compose.blur_kernels[1]", "must be >= 1"),
    (_set("compose.blur_kernels", []), "compose.blur_kernels", "at least 1 item"),
    (_set("compose.blur_kernels", 7), "compose.blur_kernels", "expected a list"),
    (_set("device", "gpu"), "device", "is not a device"),
    (_set("device", "cuda:1"), None, None),
    (_set("train.precision", "fp8"), "train.precision", "must be one of auto, fp32, bf16, fp16"),
    (_set("train.input_size", 100), "train.input_size", "multiple of 32"),
    (_set("train.lr", 0), "train.lr", "must be > 0"),
    (_set("train.workers", -1), "train.workers", "must be >= 0"),
    (_set("train.parallel", 0), "train.parallel", "must be >= 1"),
    (_set("train.threads", 0), "train.parallel", "runs at once need a fixed train.threads"),
    (_set("train.official_loss", ["gist_kernel", "bogus"]), "train.official_loss[1]", "must be one of"),
    (_set("data.source", "web"), "data.source", "must be one of embedded, real"),
    (_set("data.real_sources", "am2k,imagenet"), "data.real_sources[1]", "must be one of"),
    (_set("bg20k.dedup", "md5"), "bg20k.dedup", "must be one of phash, cnn"),
    (_set("bg20k.detector", "yolo"), "bg20k.detector", "must be one of saliency, torchvision"),
    (_set("bg20k.convert", ["cmyk", "png"]), "bg20k.convert[1]", "must be one of cmyk, 16bit, grayscale"),
    (_set("bg20k.val_fraction", 0), "bg20k.val_fraction", "must be in (0, 1)"),
    (_set("bg20k.val_fraction", 1.0), "bg20k.val_fraction", "must be in (0, 1)"),
    (_set("bg20k.dedup_threshold", 2.5), "bg20k.dedup_threshold", "whole number"),
    (_set("bg20k.workers", 0), "bg20k.workers", "must be >= 1"),
    (_set("evaluate.strategy", "tiled"), "evaluate.strategy", "must be one of hybrid, resize, rim"),
    (_set("evaluate.d1", 0.5), "evaluate.d1", "must be >= 1"),
    (_set("evaluate.d2", 0), "evaluate.d2", "must be >= 1"),
    (_set("evaluate.table6_d", "2,0.5"), "evaluate.table6_d[1]", "must be >= 1"),
    (_set("evaluate.experiments", "ori-tt,ori-tx"), "evaluate.experiments[1]",
     "'ori-tx' is not in train.experiments (did you mean 'ori-tt'?)"),
    (_set("evaluate.table6_model", "nope"), "evaluate.table6_model", "'nope' is not in train.experiments"),
    (_set("evaluate.latency_backbones", "r18_lite"), "evaluate.latency_backbones", "not in complexity_backbones"),
    (_set("evaluate.complexity_backbones", "r34,r50"), "evaluate.complexity_backbones[1]", "must be one of"),
    (_drop("train.lr"), "train.lr", "missing required key"),
    (_drop("report"), "report", "missing required key"),
    (_drop(f"{ORI}.bridge"), f"{ORI}.bridge", "missing required key"),
    (_set("compose", "x"), "compose", "expected a mapping, got string 'x'"),
    (_set(f"{ORI}.epochs", 8.0), f"{ORI}.epochs", "expected an integer, got float 8.0 (write 8)"),
    (_set(f"{ORI}.batch_size", 0), f"{ORI}.batch_size", "must be >= 1"),
    (_set(f"{ORI}.max_steps", 0), f"{ORI}.max_steps", "must be >= 1"),
    (_set(f"{ORI}.rosta", "tt"), f"{ORI}.rosta", "must be one of TT, FT, BT, RIM"),
    (_set(f"{ORI}.decoder", "three"), f"{ORI}.decoder", "must be one of two, single"),
    (_set(f"{ORI}.ppm", "six"), f"{ORI}.ppm", "must be one of five, one, none"),
    (_set(f"{ORI}.backbone", "r50"), f"{ORI}.backbone", "must be one of"),
    (_set(f"{ORI}.bridge", "yes"), f"{ORI}.bridge", "expected a YAML bool"),
    (_set(f"{ORI}.track", "rssn_blur"), f"{ORI}.track", "must be ori or one of compose.routes"),
    (_set(f"{ORI}.data", "artifacts/composites/coco"), f"{ORI}.data",
     "expected 'artifacts/datasets/am2k/train'"),
    (_set("train.experiments.ori-single.ppm", "none"), "train.experiments.ori-single.ppm", "decoder: single"),
    (_set("train.pretrained", True), "train.pretrained", "got bool True (write imagenet)"),
    (_set(f"{ORI}.pretrained", False), f"{ORI}.pretrained", "got bool False (write none)"),
    (_drop("train.pretrained"), "train.pretrained", "missing required key"),
    (_set("train.pretrained", "/home/me/r34.pth"), "train.pretrained", "must be imagenet, none or a file under weights/"),
    (_set("train.pretrained", "../r34.pth"), "train.pretrained", "copy the file to weights/"),
    (_set("train.pretrained", "weights/r34.pth"), None, ""),
    (_set("compose.mode", "lazy"), "compose.mode", "must be one of online, offline"),
    (_set("evaluate.fusion", "eq7"), "evaluate.fusion", "must be one of official, upsampled"),
    (_set("evaluate.benchmarks", ["am2k", "pm10k"]), "evaluate.benchmarks[1]", "must be one of am2k, p3m500p"),
    (_set("evaluate.table5_d", 0.5), "evaluate.table5_d", "must be >= 1"),
    (_set("evaluate.benchmarks", ["p3m500p"]), "evaluate.benchmarks", "must include am2k"),
    # estimated F/B: the ORI-Track set is <compose.out>/ori, which the compose stage writes
    (_set("train.fg_bg", "estimated"), f"{ORI}.data", "expected 'artifacts/composites/ori'"),
    (_set("train.experiments", {}), "train.experiments", "at least one experiment"),
    (_set("train.experiments.bad name", {}), "train.experiments.bad name", "experiment name"),
]


@pytest.mark.parametrize("change, key, fragment", ERRORS, ids=[f"{e[1]}:{e[2]}" for e in ERRORS])
def test_each_error_names_the_file_and_the_dotted_key(raw, change, key, fragment):
    mapping = copy.deepcopy(raw)
    change(mapping)
    if key is None:                                  # a valid change
        parse_params(mapping)
        return
    error = _error(mapping)
    assert error.key == key and error.source == "params.yaml"
    line = str(error).splitlines()[0]
    assert line.startswith(f"params.yaml: {key}: "), line
    assert fragment in line, line


def test_the_contract_example_message(raw):
    mapping = copy.deepcopy(raw)
    mapping["data"]["sorce"] = mapping["data"].pop("source")
    assert str(_error(mapping)) == "params.yaml: data.sorce: unknown key (did you mean 'data.source'?)"


def test_all_problems_are_reported_at_once(raw):
    mapping = copy.deepcopy(raw)
    mapping["compose"]["p_blur"] = -0.5
    mapping["data"]["strict"] = "maybe"
    mapping["train"]["experiments"]["ori-tt"]["epochs"] = 0
    error = _error(mapping, source="mine.yaml")
    assert {key for key, _ in error.errors} == {"compose.p_blur", "data.strict", "train.experiments.ori-tt.epochs"}
    assert all(line.startswith("mine.yaml: ") for line in str(error).splitlines())


def test_load_params_names_the_file(tmp_path, raw):
    mapping = copy.deepcopy(raw)
    mapping["compose"]["p_blur"] = -0.5
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(ConfigError, match=r"exp\.yaml: compose\.p_blur: must be in \[0, 1\]"):
        load_params(path)
    path.write_text("seed: 0\nseed: 1\n")
    with pytest.raises(ConfigError, match="exp.yaml: not valid YAML"):
        load_params(path)
    path.write_text("seed: [0\n")
    with pytest.raises(ConfigError, match="exp.yaml: not valid YAML"):
        load_params(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="exp.yaml: profile: missing required key"):
        load_params(path)


def test_yaml_1_2_numbers_and_strings(tmp_path, raw):
    text = (ROOT / "params.yaml").read_text().replace("lr: 0.001 ", "lr: 1e-5 ").replace("strict: true", "strict: yes")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert [key for key, _ in info.value.errors] == ["data.strict"]   # 1e-5 is a float, `yes` is a string


def test_unknown_experiment_lookup(params):
    with pytest.raises(ConfigError, match=r"params.yaml: train.experiments: no experiment 'ori-t' \(did you mean"):
        params.experiment("ori-t")


# --------------------------------------------------------------------------------------------
# frozen, hashable, round trip
# --------------------------------------------------------------------------------------------

def test_configs_are_frozen(params):
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.compose.p_blur = 0.8
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.experiments["ori-tt"].epochs = 1
    with pytest.raises(TypeError):
        params.train.experiments["new"] = params.train.experiments["ori-tt"]
    with pytest.raises(AttributeError):
        params.train.experiments._data = {}
    assert isinstance(params.train.crop_sizes, tuple) and isinstance(params.evaluate.experiments, tuple)
    assert hash(params) == hash(load_params(ROOT / "params.yaml"))


def test_to_dict_round_trip(raw, params):
    plain = to_dict(params)
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain      # plain YAML types only
    assert plain["train"]["crop_sizes"] == [160, 240, 320]
    assert plain["evaluate"]["experiments"][0] == "ori-tt" and "path" not in plain
    assert parse_params(to_dict(params)) == params
    paper = parse_params(_overlay(raw, _read(ROOT / "profiles/paper.yaml")))
    assert parse_params(to_dict(paper)) == paper
    official = copy.deepcopy(raw)
    official["train"]["official_loss"] = ["gist_kernel"]
    official["train"]["experiments"]["ori-tt"].update(max_steps=10, pretrained="weights/r18.pth")
    parsed = parse_params(official)
    assert parse_params(to_dict(parsed)) == parsed
    assert to_dict(parsed.train)["official_loss"] == ["gist_kernel"]


# --------------------------------------------------------------------------------------------
# the library it mirrors (skipped while a module is being moved)
# --------------------------------------------------------------------------------------------

def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError as error:
        pytest.skip(f"{name} not importable: {error}")


@pytest.mark.parametrize("ours, module, theirs", [
    ("ROUTES", "gfm.compose.rssn", "ROUTES"),
    ("RESIZE_MODES", "gfm.compose.rssn", "RESIZE_MODES"),
    ("FG_METHODS", "gfm.compose.foreground", "METHODS"),
    ("DENOISERS", "gfm.compose.denoise", "METHODS"),
    ("DEDUP_METHODS", "gfm.bg20k.build", "DEDUP_METHODS"),
    ("DETECTORS", "gfm.bg20k.build", "DETECTORS"),
    ("ROSTAS", "gfm.model.network", "ROSTAS"),
    ("STRATEGIES", "gfm.model.infer", "STRATEGIES"),
    ("FUSIONS", "gfm.model.infer", "FUSIONS"),
    ("BENCHMARKS", "gfm.data.registry", "BENCHMARKS"),
    ("OFFICIAL_DIFFERENCES", "gfm.train.losses", "OFFICIAL_DIFFERENCES"),
    ("REAL_SOURCES", "gfm.data.registry", "REGISTRY"),
])
def test_choices_mirror_the_library(ours, module, theirs):
    assert tuple(getattr(config, ours)) == tuple(getattr(_module(module), theirs))


def test_backbones_mirror_the_registry():
    assert tuple(_module("gfm.model.backbones").list_backbones()) == config.BACKBONES


def test_bg20k_gallery_per_reason_is_optional_and_checked(raw, params):
    assert params.bg20k.gallery_per_reason == 4  # the Fig. 4 gallery of stage 2 (gfm.bg20k.stage)
    mapping = copy.deepcopy(raw)
    mapping["bg20k"]["gallery_per_reason"] = 2
    assert parse_params(mapping).bg20k.gallery_per_reason == 2
    mapping["bg20k"]["gallery_per_reason"] = 0
    error = _error(mapping)
    assert error.key == "bg20k.gallery_per_reason" and "must be >= 1" in str(error)


def test_train_seeds_and_checkpoint_interval_are_required_and_checked(raw):
    mapping = copy.deepcopy(raw)
    for key in ("seeds", "checkpoint_interval"):
        missing = copy.deepcopy(mapping)
        missing["train"].pop(key)
        error = _error(missing)
        assert error.key == f"train.{key}" and "missing required key" in str(error)  # dvc tracks only written keys
    mapping["train"].update(seeds=[0, 1, 2], checkpoint_interval=0)
    train = parse_params(mapping).train
    assert train.seeds == (0, 1, 2) and train.checkpoint_interval == 0.0
    mapping["train"]["seeds"] = "3,4"                                      # legacy comma string
    assert parse_params(mapping).train.seeds == (3, 4)
    for value, key, fragment in (([0, 0], "train.seeds", "listed twice"), ([], "train.seeds", "at least 1 item"),
                                 ([0, -1], "train.seeds[1]", "must be >= 0"), (1, "train.seeds", "expected a list")):
        bad = copy.deepcopy(mapping)
        bad["train"]["seeds"] = value
        error = _error(bad)
        assert error.key == key and fragment in str(error)
    mapping["train"]["checkpoint_interval"] = -1
    error = _error(mapping)
    assert error.key == "train.checkpoint_interval" and "must be >= 0" in str(error)


# --------------------------------------------------------------------------------------------
# evaluate's optional knobs (issues 10-11): predictions kept, Table 6 subset, reference mattes
# --------------------------------------------------------------------------------------------

def _evaluate_with(raw, **knobs) -> config.EvaluateConfig:
    mapping = copy.deepcopy(raw)
    for key in ("save_predictions", "table6_images", "baselines"):
        mapping["evaluate"].pop(key, None)
    mapping["evaluate"].update(knobs)
    return parse_params(mapping).evaluate


def test_evaluate_optional_knobs_defaults(raw):
    cfg = _evaluate_with(raw)
    assert cfg.save_predictions is True and cfg.table6_images is None
    assert cfg.baselines == ("blank", "closed_form")


def test_evaluate_optional_knobs_parsed(raw):
    cfg = _evaluate_with(raw, save_predictions=False, table6_images=50, baselines=["closed_form"])
    assert cfg.save_predictions is False and cfg.table6_images == 50 and cfg.baselines == ("closed_form",)
    assert _evaluate_with(raw, baselines=[]).baselines == ()
    assert _evaluate_with(raw, baselines="blank,closed_form").baselines == ("blank", "closed_form")  # legacy string


@pytest.mark.parametrize("knobs, key, fragment", [
    ({"save_predictions": "no"}, "evaluate.save_predictions", "expected a YAML bool"),
    ({"table6_images": 0}, "evaluate.table6_images", "must be >= 1"),
    ({"table6_images": 2.5}, "evaluate.table6_images", "expected an integer"),
    ({"baselines": ["blank", "knn"]}, "evaluate.baselines[1]", "must be one of blank, closed_form"),
    ({"baselines": ["blank", "blank"]}, "evaluate.baselines", "listed twice"),
])
def test_evaluate_optional_knob_errors(raw, knobs, key, fragment):
    mapping = copy.deepcopy(raw)
    mapping["evaluate"].update(knobs)
    error = _error(mapping)
    assert error.key == key and fragment in str(error)


def test_evaluate_experiment_names_must_not_be_output_folders(raw):
    mapping = copy.deepcopy(raw)
    mapping["train"]["experiments"]["baselines"] = copy.deepcopy(mapping["train"]["experiments"]["ori-tt"])
    mapping["evaluate"]["experiments"] = ["ori-tt", "baselines"]
    error = _error(mapping)
    assert error.key == "evaluate.experiments" and "'baselines' is the name of a folder of evaluate.out" in str(error)


def test_evaluate_baselines_mirror_the_library():
    check = next(f for f in dataclasses.fields(config.EvaluateConfig) if f.name == "baselines").metadata["check"]
    assert check.item.choices == tuple(_module("gfm.evaluate.baselines").BASELINES)
    assert config.EvaluateConfig.RESERVED == _module("gfm.evaluate.runs").RESERVED


def test_bg20k_candidates_is_optional_and_checked(raw, params):
    assert params.bg20k.candidates is None  # the datasets folder's: the world's candidates, or the release
    mapping = copy.deepcopy(raw)
    mapping["bg20k"]["candidates"] = "photos/backgrounds"
    assert parse_params(mapping).bg20k.candidates == "photos/backgrounds"
    mapping["bg20k"]["candidates"] = None
    assert parse_params(mapping).bg20k.candidates is None
    for value, fragment in (("", "must not be empty"), (3, "expected a string")):
        mapping["bg20k"]["candidates"] = value
        error = _error(mapping)
        assert error.key == "bg20k.candidates" and fragment in str(error)


def test_data_deadline_and_retries_are_optional_and_checked(raw, params):
    assert params.data.deadline is None and params.data.retries is None  # unset: gfm.data.fetch's defaults
    mapping = copy.deepcopy(raw)
    mapping["data"].update(deadline=600, retries=0)
    data = parse_params(mapping).data
    assert data.deadline == 600.0 and isinstance(data.deadline, float) and data.retries == 0
    for key, value, fragment in (("deadline", 0, "must be > 0, got 0"), ("deadline", "6h", "expected a number"),
                                 ("retries", -1, "must be >= 0, got -1"), ("retries", 1.5, "expected an integer")):
        mapping = copy.deepcopy(raw)
        mapping["data"][key] = value
        error = _error(mapping)
        assert error.key == f"data.{key}" and fragment in str(error)


def test_data_deadline_and_retries_defaults_live_in_the_library():
    fields = {f.name: f for f in dataclasses.fields(config.DataConfig)}
    fetch = _module("gfm.data.fetch")
    assert fields["deadline"].default is None and fields["retries"].default is None
    assert "gfm.data.fetch.DEADLINE, 6 hours" in fields["deadline"].metadata["doc"] and fetch.DEADLINE == 6 * 3600
    assert "gfm.data.fetch.RETRIES" in fields["retries"].metadata["doc"]


def test_train_ema_is_optional_and_checked(raw):
    mapping = copy.deepcopy(raw)
    mapping["train"].pop("ema", None)
    assert parse_params(mapping).train.ema == 0.0                         # off: the paper's last weights
    mapping["train"]["ema"] = 0.95
    assert parse_params(mapping).train.ema == 0.95
    for value, fragment in ((1.0, "must be in [0, 1)"), (-0.1, "must be in [0, 1)"), ("0.9", "expected a number")):
        bad = copy.deepcopy(mapping)
        bad["train"]["ema"] = value
        error = _error(bad)
        assert error.key == "train.ema" and fragment in str(error)
