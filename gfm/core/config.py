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

The file is read with ruamel.yaml's safe loader (YAML 1.2, the parser dvc itself uses for
``params.yaml``): ``1e-5`` is a float, ``yes``/``no`` are strings, duplicate keys are errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
FG_BG = ("auto", "files", "alpha_blending")                         # gfm.train.dataset.ori_track_samples
ON_BAD_SAMPLE = ("fail", "skip")                                    # gfm.train.dataset
OFFICIAL_DIFFERENCES = ("ce_on_sigmoid", "quarter_weights", "trimap_transition",  # gfm.train.losses
                        "ft_bt_glance_targets", "rim_bt_reads_ft", "alpha_norm_plus_one",
                        "laplacian_residual", "gist_kernel", "composite_vs_image")
STRATEGIES = ("hybrid", "resize", "rim")                            # gfm.model.infer.STRATEGIES
ORI_TRACK = "ori"                                                   # gfm.train.dataset.training_samples
ORI_TRAIN_DIR = ("am2k", "train")                                   # gfm.core.layout.MATTING_SET, SPLITS[0]
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")             # experiment names (paths, dvc stages)
PROFILE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")          # profiles/<profile>.yaml


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

class ConfigError(ValueError):
    """Invalid parameters. One line per problem, each naming the file and the dotted key.

    ``errors`` holds the ``(dotted key, problem)`` pairs, ``source`` the file, ``key`` the first key.
    """

    def __init__(self, source: str, errors):
        self.source = str(source)
        self.errors = tuple((str(k), str(p)) for k, p in errors)
        self.key = self.errors[0][0] if self.errors else ""
        super().__init__("\n".join(f"{self.source}: {k}: {p}" if k else f"{self.source}: {p}"
                                   for k, p in self.errors))


class _Invalid(Exception):
    """One problem with one value (``sub`` extends the dotted key, e.g. ``[2]``)."""

    def __init__(self, problem: str, sub: str = ""):
        super().__init__(problem)
        self.problem, self.sub = problem, sub


class _Recorded(Exception):
    """A nested section failed; its errors are already recorded."""


class _Context:
    def __init__(self, source: str):
        self.source = source
        self.errors: list[tuple[str, str]] = []

    def error(self, key: str, problem: str) -> None:
        self.errors.append((key, problem))


# --------------------------------------------------------------------------------------------
# Value checkers: check(value, ctx, key) -> the typed value, or raise _Invalid
# --------------------------------------------------------------------------------------------

def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "integer", float: "float", str: "string", list: "list", tuple: "list",
            dict: "mapping"}.get(type(value), "mapping" if isinstance(value, Mapping) else type(value).__name__)


def _got(value) -> str:
    return f"got {_kind(value)} {value!r}" if value is not None else "got null"


def _suggest(word, known) -> str:
    match = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _number_word(text: str):
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Str:
    choices: tuple | None = None
    pattern: re.Pattern | None = None
    what: str = ""

    def __call__(self, value, ctx=None, key=""):
        if not isinstance(value, str):
            raise _Invalid(f"expected a string, {_got(value)}")
        if not value.strip():
            raise _Invalid("must not be empty")
        if self.choices is not None and value not in self.choices:
            raise _Invalid(f"must be one of {', '.join(self.choices)}; got {value!r}{_suggest(value, self.choices)}")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise _Invalid(f"{value!r} is not {self.what}")
        return value

    def token(self, text: str):
        return text


@dataclass(frozen=True)
class _Int:
    min: int | None = None
    multiple: int | None = None

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise _Invalid(f"expected an integer, got float {value!r} (write {int(value)})")
            if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
                raise _Invalid(f"expected an integer, got string {value!r} (remove the quotes)")
            raise _Invalid(f"expected an integer, {_got(value)}")
        if self.min is not None and value < self.min:
            raise _Invalid(f"must be >= {self.min}, got {value}")
        if self.multiple and value % self.multiple:
            raise _Invalid(f"must be a multiple of {self.multiple}, got {value}")
        return value

    def token(self, text: str):
        if not re.fullmatch(r"[-+]?\d+", text):
            raise _Invalid(f"expected an integer, got {text!r}")
        return int(text)


@dataclass(frozen=True)
class _Float:
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str) and _number_word(value) is not None:
                hint = "; a YAML 1.1 reader takes 1e-5 for a string, write 1.0e-5" if "e" in value.lower() else ""
                raise _Invalid(f"expected a number, got string {value!r} (remove the quotes{hint})")
            raise _Invalid(f"expected a number, {_got(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise _Invalid(f"must be a finite number, got {value}")
        low = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if low or high:
            raise _Invalid(f"must be {self._range()}, got {value:g}")
        return value

    def _range(self) -> str:
        if self.max is None:
            return f"{'>' if self.min_open else '>='} {self.min:g}"
        return f"in {'(' if self.min_open else '['}{self.min:g}, {self.max:g}{')' if self.max_open else ']'}"

    def token(self, text: str):
        number = _number_word(text)
        if number is None:
            raise _Invalid(f"expected a number, got {text!r}")
        return number


@dataclass(frozen=True)
class _Bool:
    def __call__(self, value, ctx=None, key=""):
        if not isinstance(value, bool):
            raise _Invalid(f"expected a YAML bool (true or false), {_got(value)}")
        return value


@dataclass(frozen=True)
class _Optional:
    inner: Any

    def __call__(self, value, ctx=None, key=""):
        return None if value is None else self.inner(value, ctx, key)


@dataclass(frozen=True)
class _List:
    """A YAML list (or the legacy comma-separated string) -> tuple of checked items."""

    item: Any
    min_len: int = 1
    unique: bool = False
    none_word: bool = False            # legacy: the string "none" means the empty list

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, str):     # legacy "a,b,c"
            if self.none_word and value.strip().lower() == "none":
                items = []
            else:
                items = []
                for i, text in enumerate(t.strip() for t in value.split(",") if t.strip()):
                    try:
                        items.append(self.item.token(text))
                    except _Invalid as error:
                        raise _Invalid(error.problem, f"[{i}]") from None
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Invalid(f"expected a list (e.g. [a, b]), {_got(value)}")
        out = []
        for i, item in enumerate(items):
            try:
                out.append(self.item(item, ctx, f"{key}[{i}]"))
            except _Invalid as error:
                raise _Invalid(error.problem, f"[{i}]{error.sub}") from None
        if len(out) < self.min_len:
            raise _Invalid(f"must hold at least {self.min_len} item{'s' if self.min_len > 1 else ''}, got {value!r}")
        if self.unique:
            seen = [x for i, x in enumerate(out) if x in out[:i]]
            if seen:
                raise _Invalid(f"{seen[0]!r} is listed twice")
        return tuple(out)


@dataclass(frozen=True)
class _OfficialLoss:
    """``false`` (the paper everywhere), ``true`` (every official difference) or a list of names."""

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool):
            return value
        if not isinstance(value, (str, list, tuple)):
            raise _Invalid(f"expected true, false or a list of names from gfm.train.losses.OFFICIAL_DIFFERENCES, "
                           f"{_got(value)}")
        names = _List(_Str(OFFICIAL_DIFFERENCES), min_len=0, unique=True)(value, ctx, key)
        return names or False


@dataclass(frozen=True)
class _Pretrained:
    """``false``, ``true`` (ImageNet weights from the torch hub cache) or a weights file path."""

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip():
            return value
        raise _Invalid(f"expected true, false or a path to weights, {_got(value)}")


@dataclass(frozen=True)
class _Section:
    cls: type

    def __call__(self, value, ctx, key):
        built = _build(self.cls, value, ctx, key)
        if built is None:
            raise _Recorded
        return built


@dataclass(frozen=True)
class _Experiments:
    def __call__(self, value, ctx, key):
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected a mapping of experiment name -> settings, {_got(value)}")
        if not value:
            raise _Invalid("must name at least one experiment")
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
            raise _Recorded
        return FrozenMapping(out)


def _knob(check, default=dataclasses.MISSING, doc: str = ""):
    """A dataclass field checked by ``check``; a ``default`` makes it optional."""
    return field(default=default, metadata={"check": check, "doc": doc})


class FrozenMapping(Mapping):
    """A read-only, hashable, ordered mapping (``train.experiments``)."""

    __slots__ = ("_data",)

    def __init__(self, data=()):
        object.__setattr__(self, "_data", dict(data))

    def __setattr__(self, name, value):
        raise AttributeError("FrozenMapping is read-only")

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __hash__(self):
        return hash(frozenset(self._data.items()))

    def __repr__(self):
        return f"FrozenMapping({self._data!r})"


# --------------------------------------------------------------------------------------------
# The stage configs
# --------------------------------------------------------------------------------------------

_POSITIVE = _Int(min=1)
_PATH = _Str()
_PROBABILITY = _Float(0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Stage 1 (01_download): the datasets folder, from the embedded world or the paper's sources."""

    source: str = _knob(_Str(SOURCES), doc="embedded (the committed world in data/) | real (download)")
    real_sources: tuple[str, ...] = _knob(_List(_Str(REAL_SOURCES), min_len=0, unique=True),
                                          doc="registry names downloaded when source is real")
    data_root: str = _knob(_PATH, doc="the embedded world")
    datasets: str = _knob(_PATH, doc="the datasets folder every later stage reads")
    downloads: str = _knob(_PATH, doc="download cache (real sources)")
    lock_file: str = _knob(_PATH, doc="sha256 of every download (commit it)")
    strict: bool = _knob(_Bool(), doc="orphans / unreadable / size-mismatched pairs are errors (else dropped)")
    n_samples: int = _knob(_POSITIVE, 4, doc="sample images shown per split")
    metrics_out: str = _knob(_PATH, "metrics/download.json")
    deadline: float | None = _knob(_Optional(_Float(0.0, min_open=True)), None,
                                   doc="seconds allowed for the download of one source, mirrors, files and "
                                       "retries included (default: gfm.data.fetch.DEADLINE, 6 hours)")
    retries: int | None = _knob(_Optional(_Int(min=0)), None,
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

    out: str = _knob(_PATH)
    min_short_side: int = _knob(_POSITIVE, doc="paper: 1080")
    short_side: int = _knob(_POSITIVE, doc="kept images resized to this shorter side; paper: 1080")
    dedup: str = _knob(_Str(DEDUP_METHODS))
    dedup_threshold: float | int = _knob(_Float(0.0), doc="Hamming bits (phash, an integer) or cosine distance (cnn)")
    detector: str = _knob(_Str(DETECTORS))
    saliency_threshold: float = _knob(_PROBABILITY, doc="salient-area fraction (saliency) or detection score")
    convert: tuple[str, ...] = _knob(_List(_Str(CONVERTIBLE), min_len=0, unique=True, none_word=True),
                                     doc="formats converted to 8-bit RGB instead of rejected")
    val_fraction: float = _knob(_Float(0.0, 1.0, min_open=True, max_open=True), doc="paper: 5k testval of 20k")
    workers: int = _knob(_POSITIVE)
    gallery_per_reason: int = _knob(_POSITIVE, 4, doc="examples per reason in the Fig. 4 gallery")
    candidates: str | None = _knob(_Optional(_PATH), None,
                                   doc="a folder of one's own photos to build the set from (default: the "
                                       "datasets folder's: the world's candidates, or the released BG-20k)")
    metrics_out: str = _knob(_PATH, "metrics/bg20k.json")

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

    out: str = _knob(_PATH)
    routes: tuple[str, ...] = _knob(_List(_Str(ROUTES), unique=True))
    fg_method: str = _knob(_Str(FG_METHODS), doc="paper: cf (Levin et al. closed form)")
    denoiser: str = _knob(_Str(DENOISERS), doc="paper: bm3d")
    k: int = _knob(_POSITIVE, doc="backgrounds per foreground; paper: 5")
    p_denoise: float = _knob(_PROBABILITY, doc="paper: 0.5")
    p_blur: float = _knob(_PROBABILITY, doc="paper: 0.5")
    blur_kernels: tuple[int, ...] = _knob(_List(_POSITIVE), doc="paper: 20, 30, 40, 50, 60 at 1080 px")
    p_noise: float = _knob(_PROBABILITY, doc="paper: 0.5")
    noise_sigma: float = _knob(_Float(0.0), doc="8-bit levels; paper: 10")
    resize_mode: str = _knob(_Str(RESIZE_MODES), doc="stretch (official) | cover")
    workers: int = _knob(_POSITIVE)
    fg_error_images: int = _knob(_POSITIVE, 3, doc="images scored for foreground estimation")
    gap_images: int = _knob(_POSITIVE, 48, doc="images per route measured by the domain-gap meter")
    metrics_out: str = _knob(_PATH, "metrics/compose.json")


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One model of the grid (one ``train@<name>`` stage): its data and architecture."""

    track: str = _knob(_Str(pattern=NAME_PATTERN, what="a track name"), doc="ori or a route of compose.routes")
    data: str = _knob(_PATH, doc="the folder the track reads (the dvc dependency)")
    backbone: str = _knob(_Str(BACKBONES))
    rosta: str = _knob(_Str(ROSTAS))
    decoder: str = _knob(_Str(DECODERS), doc="single: Table 4 SINGLE")
    ppm: str = _knob(_Str(PPMS), doc="Table 4")
    bridge: bool = _knob(_Bool(), doc="false: Table 4 w/o BB")
    epochs: int = _knob(_POSITIVE, doc="paper: 500 (ORI-Track), 100 (COMP-Track)")
    batch_size: int = _knob(_POSITIVE, doc="paper: 4 (d121), 32 (r34), 8 (r101)")
    steps_per_epoch: int | None = _knob(_Optional(_POSITIVE), None, doc="cap on the steps of an epoch")
    max_steps: int | None = _knob(_Optional(_POSITIVE), None, doc="cap on all steps")
    pretrained: bool | str = _knob(_Pretrained(), False, doc="ImageNet weights (true: torch hub cache)")

    def _validate(self) -> Iterator[tuple[str, str]]:
        if self.decoder == "single" and self.ppm != "five":
            yield "ppm", f"must be five with decoder: single (the PPM belongs to the glance decoder), got {self.ppm!r}"


@dataclass(frozen=True, kw_only=True)
class TrainStageConfig:
    """Stage 4 (04_train): the knobs every experiment shares, and the experiment grid."""

    out: str = _knob(_PATH, doc="runs land in <out>/<experiment>/s<seed>/")
    input_size: int = _knob(_Int(min=32, multiple=32), doc="paper: 320")
    crop_sizes: tuple[int, ...] = _knob(_List(_POSITIVE), doc="paper: 640, 960, 1280")
    trimap_kernel: int = _knob(_POSITIVE, doc="TT trimap kernel; paper: 25")
    ftbt_kernel: int = _knob(_POSITIVE, doc="FT/BT erosion/dilation kernel; paper: 50")
    lr: float = _knob(_Float(0.0, min_open=True), doc="paper: 1e-5 (Adam, fixed)")
    precision: str = _knob(_Str(PRECISIONS))
    workers: int = _knob(_Int(min=0), doc="data-loading processes (0: in the main process)")
    cache: bool = _knob(_Bool(), doc="keep decoded training images in memory")
    official_loss: bool | tuple[str, ...] = _knob(_OfficialLoss(), doc="names of gfm.train.losses.OFFICIAL_DIFFERENCES")
    experiments: Mapping[str, Experiment] = _knob(_Experiments())
    fg_bg: str = _knob(_Str(FG_BG), doc="ORI-Track F and B")
    channels_last: bool = _knob(_Bool())
    on_bad_sample: str = _knob(_Str(ON_BAD_SAMPLE))
    n_preview: int = _knob(_POSITIVE, doc="validation images shown after training")
    metrics_dir: str = _knob(_PATH, doc="<metrics_dir>/<experiment>.json")
    seeds: tuple[int, ...] = _knob(_List(_Int(min=0), unique=True),
                                   doc="every experiment is trained once per seed (paper: one run)")
    checkpoint_interval: float = _knob(_Float(0.0),
                                       doc="seconds between resumable checkpoints (at an epoch end; 0: every "
                                           "epoch); one is always written after the last epoch")
    ema: float = _knob(_Float(0.0, 1.0, max_open=True), 0.0,
                       doc="decay of an exponential moving average of the weights, saved as the model (0: off, "
                           "the paper's last weights)")

    def metrics_path(self, experiment: str) -> str:
        return posixpath.join(self.metrics_dir, f"{experiment}.json")

    def losses_path(self, experiment: str) -> str:
        """The stage's plot file: total loss per step of every seed, and their mean (the last column)."""
        return posixpath.join(self.metrics_dir, f"{experiment}_losses.csv")


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Stage 5 (05_evaluate): the metrics of Tables 1, 4, 5, the Table 6 grid and Table 7."""

    out: str = _knob(_PATH)
    experiments: tuple[str, ...] = _knob(_List(_Str(), unique=True), doc="models of train.experiments")
    strategy: str = _knob(_Str(STRATEGIES), doc="paper: hybrid")
    d1: float = _knob(_Float(1.0), doc="glance pass at 1/d1; paper: 3")
    d2: float = _knob(_Float(1.0), doc="focus pass at 1/d2; paper: 2")
    table6_d: tuple[float, ...] = _knob(_List(_Float(1.0)), doc="hybrid grid, pairs with d1 >= d2; paper: 2, 3, 4")
    table6_single: tuple[float, ...] = _knob(_List(_Float(1.0)), doc="paper: 2.0 .. 3.0 step 0.2")
    table6_model: str = _knob(_Str(), doc="an experiment of train.experiments")
    complexity_backbones: tuple[str, ...] = _knob(_List(_Str(BACKBONES), unique=True))
    latency_backbones: tuple[str, ...] = _knob(_List(_Str(BACKBONES), min_len=0, unique=True),
                                               doc="timed at 800 x 800; paper: all")
    latency_runs: int = _knob(_Int(min=0), doc="timed forward passes per backbone (0: none)")
    workers: int = _knob(_POSITIVE, doc="processes computing the metrics")
    qualitative_images: int = _knob(_POSITIVE, 3)
    metrics_out: str = _knob(_PATH, "metrics/evaluate.json")
    save_predictions: bool = _knob(_Bool(), True, doc="keep every run's mattes (false: the figures' images only)")
    table6_images: int | None = _knob(_Optional(_POSITIVE), None,
                                      doc="Table 6 on this many evenly spread validation images (default: all)")
    # choices: the keys of gfm.evaluate.baselines.BASELINES
    baselines: tuple[str, ...] = _knob(_List(_Str(("blank", "closed_form")), min_len=0, unique=True),
                                       ("blank", "closed_form"), doc="reference mattes scored beside the models")

    #: Folders of evaluate.out that are not experiments (gfm.evaluate.runs.RESERVED).
    RESERVED = ("baselines", "figures")

    def _validate(self) -> Iterator[tuple[str, str]]:
        extra = [b for b in self.latency_backbones if b not in self.complexity_backbones]
        if extra:
            yield "latency_backbones", f"{extra[0]!r} is not in complexity_backbones (only those are timed)"
        reserved = [e for e in self.experiments if e in self.RESERVED]
        if reserved:
            yield "experiments", (f"{reserved[0]!r} is the name of a folder of evaluate.out "
                                  f"({', '.join(self.RESERVED)} are reserved): rename the experiment")


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """Stage 6 (06_paper, 07_matte): the paper's tables and figures, and cut-outs."""

    out: str = _knob(_PATH, doc="<out>/paper, <out>/matte, <out>/html")
    paper_profile: str = _knob(_PATH, "profiles/paper.yaml", doc="the paper's grid (named in 'not run' rows)")
    metrics_dir: str = _knob(_PATH, "metrics", doc="where the stage metrics are read")
    findings_out: str = _knob(_PATH, "metrics/findings.json")
    matte_images: int = _knob(_POSITIVE, 3, doc="images cut out by 07_matte")


@dataclass(frozen=True, kw_only=True)
class Params:
    """All of ``params.yaml``: one frozen config per stage; ``path`` is the file it came from."""

    profile: str = _knob(_Str(pattern=PROFILE_PATTERN, what="a profile name"), doc="sample | paper")
    seed: int = _knob(_Int(min=0))
    device: str = _knob(_Str(pattern=DEVICE_PATTERN, what="a device (auto, cpu, cuda, cuda:N, mps)"))
    data: DataConfig = _knob(_Section(DataConfig))
    bg20k: BG20kConfig = _knob(_Section(BG20kConfig))
    compose: ComposeConfig = _knob(_Section(ComposeConfig))
    train: TrainStageConfig = _knob(_Section(TrainStageConfig))
    evaluate: EvaluateConfig = _knob(_Section(EvaluateConfig))
    report: ReportConfig = _knob(_Section(ReportConfig))
    path: Path = field(compare=False)

    def experiment(self, name: str) -> Experiment:
        """The experiment ``name`` of ``train.experiments`` (a :class:`ConfigError` names the nearest)."""
        if name not in self.train.experiments:
            raise ConfigError(str(self.path), [("train.experiments", f"no experiment {name!r}"
                                                f"{_suggest(name, self.train.experiments)}")])
        return self.train.experiments[name]


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def _build(cls, raw, ctx: _Context, key: str):
    """``cls`` from the mapping ``raw`` at dotted ``key``; None (errors recorded) if invalid."""
    if not isinstance(raw, Mapping):
        ctx.error(key, f"expected a mapping, {_got(raw)}")
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
        except _Invalid as error:
            ctx.error(dotted(name) + error.sub, error.problem)
            ok = False
        except _Recorded:
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
                                   f"got {item.track!r}{_suggest(item.track, tracks)}")
            continue
        expected = (posixpath.join(params.data.datasets, *ORI_TRAIN_DIR) if item.track == ORI_TRACK
                    else posixpath.join(params.compose.out, item.track))
        if posixpath.normpath(item.data) != posixpath.normpath(expected):
            yield f"{key}.data", (f"{item.data!r} is not the folder track {item.track!r} reads "
                                  f"(expected {expected!r}; dvc would track the wrong dependency)")
    known = params.train.experiments
    for i, name in enumerate(params.evaluate.experiments):
        if name not in known:
            yield f"evaluate.experiments[{i}]", f"{name!r} is not in train.experiments{_suggest(name, known)}"
    if params.evaluate.table6_model not in known:
        name = params.evaluate.table6_model
        yield "evaluate.table6_model", f"{name!r} is not in train.experiments{_suggest(name, known)}"


def parse_params(mapping: Mapping, *, source: str | Path = "params.yaml") -> Params:
    """Validate a parsed ``params.yaml`` (``source`` names it in errors); raise :class:`ConfigError`."""
    ctx = _Context(str(source))
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
