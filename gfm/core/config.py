"""Typed, frozen parameters: ``params.yaml`` parsed and validated once, in one place.

Every knob travels one path: ``params.yaml`` (edited by hand, by ``gfm profile`` or by
``dvc exp run -S compose.p_blur=0.8``) -> :func:`load_params` -> one frozen config per stage. A
stage notebook receives only ``params_file`` (and, for training, the experiment name) and calls
``load_params(params_file)``; nothing else holds a copy of a value or of a default.

Everything is checked before any stage work starts, and every problem is reported at once, each
line naming the file and the dotted key::

    params.yaml: data.sorce: unknown key (did you mean 'data.source'?)
    params.yaml: compose.p_blur: must be in [0, 1], got -0.5

* unknown keys are refused (the nearest known key is suggested), missing required keys named;
* types are strict: a bool is a YAML bool (``strict: maybe`` is refused), an int is not a float
  (``epochs: 8.0`` is refused), a float accepts ints;
* ranges (probabilities in [0, 1], positive sizes and kernels, ...) and choices (devices,
  precisions, methods, routes, backbones, ...) are checked;
* cross-field checks: ``evaluate.experiments`` and ``evaluate.table6_model`` name experiments of
  ``train.experiments``; an experiment's ``track`` is ``ori`` or one of ``compose.routes`` and
  its ``data`` (the dvc dependency) is the folder that track reads.

Lists are YAML lists (``crop_sizes: [160, 240, 320]``) and come back as tuples; the legacy
comma-separated strings (``crop_sizes: 160,240,320``) are still accepted. A dataclass default
exists only for an optional knob, and that default is the only one anywhere.

The checkers (strings, numbers, lists, the error collector) live in :mod:`gfm.core.checks`; this
module holds the schema: the allowed values, one dataclass per stage and the cross-section checks.

The file is read with ruamel.yaml's safe loader (YAML 1.2, the parser dvc itself uses for
``params.yaml``): ``1e-5`` is a float, ``yes``/``no`` are strings, duplicate keys are errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gfm.core.checks import (
    Bool,
    ConfigError,
    Context,
    Float,
    FrozenMapping,
    Int,
    Invalid,
    ListOf,
    OptionalOf,
    Recorded,
    Str,
    got,
    knob,
    suggest,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "BG20kConfig",
    "ComposeConfig",
    "Experiment",
    "TrainStageConfig",
    "EvaluateConfig",
    "ReportConfig",
    "Params",
    "FrozenMapping",
    "load_params",
    "parse_params",
    "to_dict",
]

# --------------------------------------------------------------------------------------------
# Allowed values. Hard-coded on purpose (gfm.core imports nothing from higher layers); each names
# the library constant it mirrors -- keep them equal (tests of those modules may assert it).
# --------------------------------------------------------------------------------------------

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")            # gfm.core.device.resolve_device
PRECISIONS = ("auto", "fp32", "bf16", "fp16")                       # gfm.train.loop.TrainConfig
SOURCES = ("embedded", "real")                                      # gfm.data.materialise.run_download
REAL_SOURCES = ("am2k", "bg20k", "coco", "p3m10k",                  # gfm.data.registry.REGISTRY
                "gfm_d121_tt", "gfm_r34_tt", "gfm_r34_ft", "gfm_r34_bt", "gfm_r34_2b_tt", "gfm_r101_tt",
                "gfm_d121_rim")
DEDUP_METHODS = ("phash", "cnn")                                    # gfm.bg20k.build.DEDUP_METHODS
DETECTORS = ("saliency", "torchvision")                             # gfm.bg20k.build.DETECTORS
CONVERTIBLE = ("cmyk", "16bit", "grayscale")                        # gfm.bg20k.build._check_options
ROUTES = ("coco", "bg20k", "rssn", "rssn_blur", "rssn_denoise", "rssn_noise")  # gfm.compose.rssn.ROUTES
FG_METHODS = ("cf", "ml", "naive", "premultiplied")                 # gfm.compose.foreground.METHODS
DENOISERS = ("bm3d", "nlm", "none")                                 # gfm.compose.denoise.METHODS
RESIZE_MODES = ("stretch", "cover")                                 # gfm.compose.rssn.RESIZE_MODES
BACKBONES = ("d121", "r101", "r18_lite", "r18_slim", "r34", "r34_2b")           # gfm.model.backbones.list_backbones()
ROSTAS = ("TT", "FT", "BT", "RIM")                                  # gfm.model.network.ROSTAS
DECODERS = ("two", "single")                                        # gfm.model.network.GFM
PPMS = ("five", "one", "none")                                      # gfm.model.network.GFM
FG_BG = ("auto", "files", "alpha_blending", "estimated")            # gfm.train.dataset.ori_track_samples
COMPOSE_MODES = ("online", "offline")                               # gfm.train.dataset (COMP-Track)
FUSIONS = ("official", "upsampled")                                 # gfm.model.infer.FUSIONS
BENCHMARKS = ("am2k", "p3m500p", "p3m500np")                        # gfm.data.registry.BENCHMARKS
PRETRAINED_WORDS = ("imagenet", "none")                             # gfm.model.backbones.PRETRAINED_CHOICES
WEIGHTS_DIR = "weights"         # local backbone weights (train.pretrained: <path>) live here: a dep of every train@ stage
ON_BAD_SAMPLE = ("fail", "skip")                                    # gfm.train.dataset
OFFICIAL_DIFFERENCES = ("ce_on_sigmoid", "quarter_weights", "trimap_transition",  # gfm.train.losses
                        "ft_bt_glance_targets", "rim_bt_reads_ft", "alpha_norm_plus_one",
                        "laplacian_residual", "gist_kernel", "composite_vs_image")
STRATEGIES = ("hybrid", "resize", "rim")                            # gfm.model.infer.STRATEGIES
ORI_TRACK = "ori"                                                   # gfm.train.dataset.training_samples
ORI_TRAIN_DIR = ("am2k", "train")                                   # gfm.core.layout.MATTING_SET, SPLITS[0]
ORI_ESTIMATED = "estimated"     # train.fg_bg whose ORI-Track set is <compose.out>/ori (real images + estimated F/B)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")             # experiment names (paths, dvc stages)
PROFILE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")          # profiles/<profile>.yaml


@dataclass(frozen=True)
class _OfficialLoss:
    """``false`` (the paper everywhere), ``true`` (every official difference) or a list of names."""

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool):
            return value
        if not isinstance(value, (str, list, tuple)):
            raise Invalid(f"expected true, false or a list of names from gfm.train.losses.OFFICIAL_DIFFERENCES, "
                           f"{got(value)}")
        names = ListOf(Str(OFFICIAL_DIFFERENCES), min_len=0, unique=True)(value, ctx, key)
        return names or False


@dataclass(frozen=True)
class _Pretrained:
    """``imagenet`` (torchvision's ImageNet weights), ``none`` (random initialisation) or the path of
    a local state dict of the backbone inside ``weights/`` (every ``train@`` stage depends on that
    folder, so replacing a file there re-runs training). A YAML bool is refused: it does not say which
    weights."""

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, str) and value.strip():
            value = value.strip()
            if value not in PRETRAINED_WORDS:
                path = posixpath.normpath(value)
                if path.startswith("/") or path.split("/")[0] != WEIGHTS_DIR or path == WEIGHTS_DIR:
                    raise Invalid(f"{value!r} must be imagenet, none or a file under {WEIGHTS_DIR}/ (the train "
                                  f"stages' dvc dependency): copy the file to {WEIGHTS_DIR}/")
            return value
        if isinstance(value, bool):
            raise Invalid(f"expected imagenet, none or a path to weights, got bool {value!r} "
                           f"(write {'imagenet' if value else 'none'})")
        raise Invalid(f"expected imagenet, none or a path to weights, {got(value)}")


@dataclass(frozen=True)
class _Section:
    cls: type

    def __call__(self, value, ctx, key):
        built = _build(self.cls, value, ctx, key)
        if built is None:
            raise Recorded
        return built


@dataclass(frozen=True)
class _Experiments:
    def __call__(self, value, ctx, key):
        if not isinstance(value, Mapping):
            raise Invalid(f"expected a mapping of experiment name -> settings, {got(value)}")
        if not value:
            raise Invalid("must name at least one experiment")
        out, failed = {}, False
        for name, raw in value.items():
            dotted = f"{key}.{name}"
            if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
                ctx.error(dotted, f"experiment name {name!r} must be letters, digits, '-' or '_' "
                                  f"(it names a folder and the dvc stage train@<name>)")
                failed = True
                continue
            built = _build(Experiment, raw, ctx, dotted)
            if built is None:
                failed = True
            else:
                out[name] = built
        if failed:
            raise Recorded
        return FrozenMapping(out)



# --------------------------------------------------------------------------------------------
# The stage configs
# --------------------------------------------------------------------------------------------

_POSITIVE = Int(min=1)
_PATH = Str()
_PROBABILITY = Float(0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Stage 1 (01_download): the datasets folder, from the embedded world or the paper's sources."""

    source: str = knob(Str(SOURCES), doc="embedded (the committed world in data/) | real (download)")
    real_sources: tuple[str, ...] = knob(ListOf(Str(REAL_SOURCES), min_len=0, unique=True),
                                          doc="registry names downloaded when source is real")
    data_root: str = knob(_PATH, doc="the embedded world")
    datasets: str = knob(_PATH, doc="the datasets folder every later stage reads")
    downloads: str = knob(_PATH, doc="download cache (real sources)")
    lock_file: str = knob(_PATH, doc="sha256 of every download (commit it)")
    strict: bool = knob(Bool(), doc="orphans / unreadable / size-mismatched pairs are errors (else dropped)")
    n_samples: int = knob(_POSITIVE, 4, doc="sample images shown per split")
    metrics_out: str = knob(_PATH, "metrics/download.json")
    deadline: float | None = knob(OptionalOf(Float(0.0, min_open=True)), None,
                                   doc="seconds allowed for the download of one source, mirrors, files and "
                                       "retries included (default: gfm.data.fetch.DEADLINE, 6 hours)")
    retries: int | None = knob(OptionalOf(Int(min=0)), None,
                                doc="retries of a failed download after its first attempt "
                                    "(default: gfm.data.fetch.RETRIES)")

    def _validate(self) -> Iterator[tuple[str, str]]:
        if self.source == "real" and not self.real_sources:
            yield "real_sources", "must name at least one source when source is real"


@dataclass(frozen=True, kw_only=True)
class BG20kConfig:
    """Stage 2 (02_bg20k): the BG-20k background set (Sect. 4.1). The released BG-20k (data.source: real)
    is passed through with its official split; the construction knobs below apply to candidate folders
    (the embedded world's bg_candidates/, or ``candidates``)."""

    out: str = knob(_PATH)
    min_short_side: int = knob(_POSITIVE, doc="paper: 1080")
    short_side: int = knob(_POSITIVE, doc="kept images resized to this shorter side; paper: 1080")
    dedup: str = knob(Str(DEDUP_METHODS))
    dedup_threshold: float | int = knob(Float(0.0), doc="Hamming bits (phash, an integer) or cosine distance (cnn)")
    detector: str = knob(Str(DETECTORS))
    saliency_threshold: float = knob(_PROBABILITY, doc="salient-area fraction (saliency) or detection score")
    convert: tuple[str, ...] = knob(ListOf(Str(CONVERTIBLE), min_len=0, unique=True, none_word=True),
                                     doc="formats converted to 8-bit RGB instead of rejected")
    val_fraction: float = knob(Float(0.0, 1.0, min_open=True, max_open=True), doc="paper: 5k testval of 20k")
    workers: int = knob(_POSITIVE)
    gallery_per_reason: int = knob(_POSITIVE, 4, doc="examples per reason in the Fig. 4 gallery")
    candidates: str | None = knob(OptionalOf(_PATH), None,
                                   doc="a folder of one's own photos to build the set from (default: the "
                                       "datasets folder's: the world's candidates, or the released BG-20k)")
    metrics_out: str = knob(_PATH, "metrics/bg20k.json")

    def __post_init__(self):
        if self.dedup == "phash" and float(self.dedup_threshold).is_integer():
            object.__setattr__(self, "dedup_threshold", int(self.dedup_threshold))

    def _validate(self) -> Iterator[tuple[str, str]]:
        if self.dedup == "phash" and not float(self.dedup_threshold).is_integer():
            yield "dedup_threshold", f"must be a whole number of Hamming bits with dedup: phash, got {self.dedup_threshold}"
        if self.dedup == "phash" and self.dedup_threshold > 64:
            yield "dedup_threshold", f"must be <= 64 (bits of a phash) with dedup: phash, got {self.dedup_threshold}"
        if self.dedup == "cnn" and self.dedup_threshold > 2:
            yield "dedup_threshold", f"must be a cosine distance in [0, 2] with dedup: cnn, got {self.dedup_threshold:g}"


@dataclass(frozen=True, kw_only=True)
class ComposeConfig:
    """Stage 3 (03_rssn): composition routes and RSSN (Sect. 4.2; Table 4's ablation routes)."""

    out: str = knob(_PATH)
    routes: tuple[str, ...] = knob(ListOf(Str(ROUTES), unique=True))
    fg_method: str = knob(Str(FG_METHODS), doc="paper: cf (Levin et al. closed form)")
    denoiser: str = knob(Str(DENOISERS), doc="paper: bm3d")
    k: int = knob(_POSITIVE, doc="backgrounds per foreground; paper: 5")
    p_denoise: float = knob(_PROBABILITY, doc="paper: 0.5")
    p_blur: float = knob(_PROBABILITY, doc="paper: 0.5")
    blur_kernels: tuple[int, ...] = knob(ListOf(_POSITIVE), doc="paper: 20, 30, 40, 50, 60 at 1080 px")
    p_noise: float = knob(_PROBABILITY, doc="paper: 0.5")
    noise_sigma: float = knob(Float(0.0), doc="8-bit levels; paper: 10")
    resize_mode: str = knob(Str(RESIZE_MODES), doc="stretch (official) | cover")
    mode: str = knob(Str(COMPOSE_MODES), doc="online (paper: COMP-Track composites drawn afresh every epoch "
                                               "by the training dataset) | offline (made once here, read back)")
    workers: int = knob(_POSITIVE)
    fg_error_images: int = knob(_POSITIVE, 3, doc="images scored for foreground estimation")
    gap_images: int = knob(_POSITIVE, 48, doc="images per route measured by the domain-gap meter")
    metrics_out: str = knob(_PATH, "metrics/compose.json")


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One model of the grid (one ``train@<name>`` stage): its data and architecture."""

    track: str = knob(Str(pattern=NAME_PATTERN, what="a track name"), doc="ori or a route of compose.routes")
    data: str = knob(_PATH, doc="the folder the track reads (the dvc dependency)")
    backbone: str = knob(Str(BACKBONES))
    rosta: str = knob(Str(ROSTAS))
    decoder: str = knob(Str(DECODERS), doc="single: Table 4 SINGLE")
    ppm: str = knob(Str(PPMS), doc="Table 4")
    bridge: bool = knob(Bool(), doc="false: Table 4 w/o BB")
    epochs: int = knob(_POSITIVE, doc="paper: 500 (ORI-Track), 100 (COMP-Track)")
    batch_size: int = knob(_POSITIVE, doc="paper: 4 (d121), 32 (r34), 8 (r101)")
    steps_per_epoch: int | None = knob(OptionalOf(_POSITIVE), None, doc="cap on the steps of an epoch")
    max_steps: int | None = knob(OptionalOf(_POSITIVE), None, doc="cap on all steps")
    pretrained: str | None = knob(OptionalOf(_Pretrained()), None,
                                   doc="this experiment's initialisation (default: train.pretrained)")

    def _validate(self) -> Iterator[tuple[str, str]]:
        if self.decoder == "single" and self.ppm != "five":
            yield "ppm", f"must be five with decoder: single (the PPM belongs to the glance decoder), got {self.ppm!r}"


@dataclass(frozen=True, kw_only=True)
class TrainStageConfig:
    """Stage 4 (04_train): the knobs every experiment shares, and the experiment grid."""

    out: str = knob(_PATH, doc="runs land in <out>/<experiment>/s<seed>/")
    input_size: int = knob(Int(min=32, multiple=32), doc="paper: 320")
    crop_sizes: tuple[int, ...] = knob(ListOf(_POSITIVE), doc="paper: 640, 960, 1280")
    trimap_kernel: int = knob(_POSITIVE, doc="TT trimap kernel; paper: 25")
    ftbt_kernel: int = knob(_POSITIVE, doc="FT/BT erosion/dilation kernel; paper: 50")
    lr: float = knob(Float(0.0, min_open=True), doc="paper: 1e-5 (Adam, fixed)")
    precision: str = knob(Str(PRECISIONS))
    workers: int = knob(Int(min=0), doc="data-loading processes (0: in the main process)")
    cache: bool = knob(Bool(), doc="keep decoded training images in memory")
    official_loss: bool | tuple[str, ...] = knob(_OfficialLoss(), doc="names of gfm.train.losses.OFFICIAL_DIFFERENCES")
    experiments: Mapping[str, Experiment] = knob(_Experiments())
    fg_bg: str = knob(Str(FG_BG), doc="ORI-Track F and B of the composition loss; estimated: by compose.fg_method, "
                                        "from <compose.out>/ori (paper: closed form, official fg_generate=closed_form)")
    pretrained: str = knob(_Pretrained(), doc="imagenet (paper) | none | <path to a state dict of the backbone>")
    channels_last: bool = knob(Bool())
    on_bad_sample: str = knob(Str(ON_BAD_SAMPLE))
    n_preview: int = knob(_POSITIVE, doc="validation images shown after training")
    metrics_dir: str = knob(_PATH, doc="<metrics_dir>/<experiment>.json")
    seeds: tuple[int, ...] = knob(ListOf(Int(min=0), unique=True),
                                   doc="every experiment is trained once per seed (paper: one run)")
    checkpoint_interval: float = knob(Float(0.0),
                                       doc="seconds between resumable checkpoints (at an epoch end; 0: every "
                                           "epoch); one is always written after the last epoch")
    ema: float = knob(Float(0.0, 1.0, max_open=True), 0.0,
                       doc="decay of an exponential moving average of the weights, saved as the model (0: off, "
                           "the paper's last weights)")
    threads: int = knob(Int(min=0), 0,
                        doc="intra-op CPU threads of each training run (0: PyTorch's default, the machine's cores; "
                            "the trained weights depend on it, so a fixed count keeps them the same across machines)")
    parallel: int = knob(_POSITIVE, 1,
                         doc="runs (seeds) of a train stage trained at once, each in its own process (CPU only; "
                             "1: one after another); the weights do not depend on it")

    def _validate(self) -> Iterator[tuple[str, str]]:
        if self.parallel > 1 and not self.threads:
            yield "parallel", (f"{self.parallel} runs at once need a fixed train.threads (>= 1), got 0: PyTorch's "
                               f"default count would then depend on how the processes share the cores")

    def metrics_path(self, experiment: str) -> str:
        return posixpath.join(self.metrics_dir, f"{experiment}.json")

    def losses_path(self, experiment: str) -> str:
        """The stage's plot file: total loss per step of every seed, and their mean (the last column)."""
        return posixpath.join(self.metrics_dir, f"{experiment}_losses.csv")


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Stage 5 (05_evaluate): the metrics of Tables 1, 4, 5, the Table 6 grid and Table 7."""

    out: str = knob(_PATH)
    experiments: tuple[str, ...] = knob(ListOf(Str(), unique=True), doc="models of train.experiments")
    strategy: str = knob(Str(STRATEGIES), doc="paper: hybrid")
    fusion: str = knob(Str(FUSIONS), doc="hybrid test's merge: official (the released test code) | upsampled")
    benchmarks: tuple[str, ...] = knob(ListOf(Str(BENCHMARKS), unique=True),
                                        doc="validation sets scored (gfm.data.registry.BENCHMARKS); paper: AM-2k, PM-10k")
    d1: float = knob(Float(1.0), doc="glance pass at 1/d1; paper: 3")
    d2: float = knob(Float(1.0), doc="focus pass at 1/d2; paper: 2")
    table6_d: tuple[float, ...] = knob(ListOf(Float(1.0)), doc="hybrid grid, pairs with d1 >= d2; paper: 2, 3, 4")
    table6_single: tuple[float, ...] = knob(ListOf(Float(1.0)), doc="paper: 2.0 .. 3.0 step 0.2")
    table6_model: str = knob(Str(), doc="an experiment of train.experiments")
    complexity_backbones: tuple[str, ...] = knob(ListOf(Str(BACKBONES), unique=True))
    latency_backbones: tuple[str, ...] = knob(ListOf(Str(BACKBONES), min_len=0, unique=True),
                                               doc="timed at 800 x 800; paper: all")
    latency_runs: int = knob(Int(min=0), doc="timed forward passes per backbone (0: none)")
    workers: int = knob(_POSITIVE, doc="processes computing the metrics")
    qualitative_images: int = knob(_POSITIVE, 3)
    metrics_out: str = knob(_PATH, "metrics/evaluate.json")
    save_predictions: bool = knob(Bool(), True, doc="keep every run's mattes (false: the figures' images only)")
    table5_d: float | None = knob(OptionalOf(Float(1.0)), 3.0,
                                   doc="Table 5: every RoSTa model tested in one pass at 1/table5_d, and "
                                       "EN-median (paper: 3); null: Table 5 uses evaluate.strategy")
    table6_images: int | None = knob(OptionalOf(_POSITIVE), None,
                                      doc="Table 6 on this many evenly spread validation images (default: all)")
    # choices: the keys of gfm.evaluate.baselines.BASELINES
    baselines: tuple[str, ...] = knob(ListOf(Str(("blank", "closed_form")), min_len=0, unique=True),
                                       ("blank", "closed_form"), doc="reference mattes scored beside the models")

    #: Folders of evaluate.out that are not experiments (gfm.evaluate.runs.RESERVED).
    RESERVED = ("baselines", "figures", "benchmarks", "table5", "fusions")

    def _validate(self) -> Iterator[tuple[str, str]]:
        extra = [b for b in self.latency_backbones if b not in self.complexity_backbones]
        if extra:
            yield "latency_backbones", f"{extra[0]!r} is not in complexity_backbones (only those are timed)"
        if "am2k" not in self.benchmarks:
            yield "benchmarks", "must include am2k (Tables 5 and 6 and the figures are AM-2k's)"
        reserved = [e for e in self.experiments if e in self.RESERVED]
        if reserved:
            yield "experiments", (f"{reserved[0]!r} is the name of a folder of evaluate.out "
                                  f"({', '.join(self.RESERVED)} are reserved): rename the experiment")


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """Stage 6 (06_paper, 07_matte): the paper's tables and figures, and cut-outs."""

    out: str = knob(_PATH, doc="<out>/paper, <out>/matte, <out>/html")
    paper_profile: str = knob(_PATH, "profiles/paper.yaml", doc="the paper's grid (named in 'not run' rows)")
    metrics_dir: str = knob(_PATH, "metrics", doc="where the stage metrics are read")
    findings_out: str = knob(_PATH, "metrics/findings.json")
    headline_out: str = knob(_PATH, "metrics/headline.json", doc="verdict counts and each model's SAD: the only "
                                                                  "file dvc.yaml declares under metrics")
    matte_images: int = knob(_POSITIVE, 3, doc="images cut out by 07_matte")
    results: str = knob(_PATH, "results", doc="committed runs of other profiles (gfm.report.results), "
                                               "shown beside this run by 06_paper")


@dataclass(frozen=True, kw_only=True)
class Params:
    """All of ``params.yaml``: one frozen config per stage; ``path`` is the file it came from."""

    profile: str = knob(Str(pattern=PROFILE_PATTERN, what="a profile name"), doc="sample | paper")
    seed: int = knob(Int(min=0))
    device: str = knob(Str(pattern=DEVICE_PATTERN, what="a device (auto, cpu, cuda, cuda:N, mps)"))
    data: DataConfig = knob(_Section(DataConfig))
    bg20k: BG20kConfig = knob(_Section(BG20kConfig))
    compose: ComposeConfig = knob(_Section(ComposeConfig))
    train: TrainStageConfig = knob(_Section(TrainStageConfig))
    evaluate: EvaluateConfig = knob(_Section(EvaluateConfig))
    report: ReportConfig = knob(_Section(ReportConfig))
    path: Path = field(compare=False)

    def experiment(self, name: str) -> Experiment:
        """The experiment ``name`` of ``train.experiments`` (a :class:`ConfigError` names the nearest)."""
        if name not in self.train.experiments:
            raise ConfigError(str(self.path), [("train.experiments", f"no experiment {name!r}"
                                                f"{suggest(name, self.train.experiments)}")])
        return self.train.experiments[name]


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def _build(cls, raw, ctx: Context, key: str):
    """``cls`` from the mapping ``raw`` at dotted ``key``; None (errors recorded) if invalid."""
    if not isinstance(raw, Mapping):
        ctx.error(key, f"expected a mapping, {got(raw)}")
        return None
    knobs = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
    dotted = (lambda name: f"{key}.{name}") if key else (lambda name: str(name))
    ok, suggested = True, set()
    for name in raw:
        if name not in knobs:
            ok = False
            match = difflib.get_close_matches(str(name), [k for k in knobs if k not in raw], n=1, cutoff=0.6)
            suggested.update(match)
            hint = f" (did you mean {dotted(match[0])!r}?)" if match else f" (known: {', '.join(knobs)})"
            ctx.error(dotted(name), f"unknown key{hint}")
    values = {}
    for name, f in knobs.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and name not in suggested:   # a typo is reported once
                ctx.error(dotted(name), "missing required key")
                ok = False
            continue
        try:
            values[name] = f.metadata["check"](raw[name], ctx, dotted(name))
        except Invalid as error:
            ctx.error(dotted(name) + error.sub, error.problem)
            ok = False
        except Recorded:
            ok = False
    if not ok:
        return None
    built = cls(**values) if cls is not Params else cls(**values, path=Path(ctx.source))
    problems = list(built._validate()) if hasattr(built, "_validate") else []
    for name, problem in problems:
        ctx.error(dotted(name), problem)
    return None if problems else built


def _cross_checks(params: Params) -> Iterator[tuple[str, str]]:
    """Checks spanning sections (run once every section is valid)."""
    tracks = (ORI_TRACK, *params.compose.routes)
    for name, item in params.train.experiments.items():
        key = f"train.experiments.{name}"
        if item.track not in tracks:
            yield f"{key}.track", (f"must be {ORI_TRACK} or one of compose.routes ({', '.join(params.compose.routes)}); "
                                   f"got {item.track!r}{suggest(item.track, tracks)}")
            continue
        expected = posixpath.join(params.compose.out, item.track)
        if item.track == ORI_TRACK and params.train.fg_bg != ORI_ESTIMATED:
            expected = posixpath.join(params.data.datasets, *ORI_TRAIN_DIR)
        if posixpath.normpath(item.data) != posixpath.normpath(expected):
            yield f"{key}.data", (f"{item.data!r} is not the folder track {item.track!r} reads "
                                  f"(expected {expected!r}; dvc would track the wrong dependency)")
    known = params.train.experiments
    for i, name in enumerate(params.evaluate.experiments):
        if name not in known:
            yield f"evaluate.experiments[{i}]", f"{name!r} is not in train.experiments{suggest(name, known)}"
    if params.evaluate.table6_model not in known:
        name = params.evaluate.table6_model
        yield "evaluate.table6_model", f"{name!r} is not in train.experiments{suggest(name, known)}"


def parse_params(mapping: Mapping, *, source: str | Path = "params.yaml") -> Params:
    """Validate a parsed ``params.yaml`` (``source`` names it in errors); raise :class:`ConfigError`."""
    ctx = Context(str(source))
    params = _build(Params, mapping, ctx, "")
    if params is not None:
        for key, problem in _cross_checks(params):
            ctx.error(key, problem)
    if ctx.errors:
        raise ConfigError(ctx.source, ctx.errors)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, parse and validate ``path``: every stage's config, or a :class:`ConfigError`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        raise ConfigError(str(path), [("", f"not valid YAML: {error}")]) from None
    return parse_params({} if raw is None else raw, source=str(path))


def to_dict(params) -> dict:
    """A plain, YAML-able dict (lists, dicts, scalars) of ``params`` or of one stage config;
    ``parse_params(to_dict(p)) == p``."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {f.name: to_dict(getattr(params, f.name)) for f in dataclasses.fields(params) if "check" in f.metadata}
    if isinstance(params, Mapping):
        return {k: to_dict(v) for k, v in params.items()}
    if isinstance(params, tuple):
        return [to_dict(v) for v in params]
    return params
