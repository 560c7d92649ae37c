"""The training-run folder contract: every GFM checkpoint is written and read here (Sect. 5.2).

A run folder ``<out>/<experiment>/`` (:func:`gfm.train.loop.train`) holds

``model.pt``            the trained network (:func:`save_run` / :func:`load_run`): ``{"format":
                        "gfm-run/1", "spec": ModelSpec.to_dict(), "state_dict": ..., "extra": {...}}``
``checkpoint.pt``       the resumable training state (:func:`save_training_state` /
                        :func:`load_training_state`); its ``model`` and ``config`` entries also
                        make it loadable by :func:`load_run`
``train_summary.json``  steps, time, losses, device, ``config`` (the training configuration)
``losses.csv``          one row per step

Released checkpoints of the official code (JizhiziLi/GFM: a bare state dict, often saved from
``nn.DataParallel``) are read by :func:`load_official`.

Safety: a checkpoint holds plain data only -- tensors, numbers, strings, ``None``, lists,
tuples and dicts (configurations as plain dicts, never dataclasses) -- and *every* read uses
``torch.load(weights_only=True)``. A pickle that would call anything else (a ``__reduce__``
payload, a pickled class) is refused before any of it runs, and the error names the file and
the callable. Writers check the plainness first (:class:`TypeError` naming the offending key).

Run folders written before this module by ``gfm.train.loop`` are still read: their
``model.pt`` is a bare state dict whose spec is the ``config`` of ``train_summary.json``, and
their ``checkpoint.pt`` stores numpy's RNG state as ``numpy.random.get_state()``, a tuple with a
uint32 ``ndarray``. Reading that array needs exactly numpy's array reconstruction
(``_reconstruct``, ``ndarray``, ``dtype``, ``UInt32DType``); they are allow-listed for the
duration of each read (``torch.serialization.safe_globals``, never process-wide). They rebuild
an array of plain numbers from bytes and run no code; object arrays stay refused (their dtype
class is not allow-listed). New training states store that RNG state as plain data
(:func:`rng_state`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gfm.core.device import resolve_device
from gfm.core.io import atomic_path
from gfm.model.network import GLANCE_CLASSES, GFM, ROSTAS, build_gfm, list_backbones
from gfm.model.torchfile import DAMAGED, FOREIGN, REFUSED, UnreadableFile, load_weights_only

__all__ = [
    "MODEL_FILE",
    "CHECKPOINT_FILE",
    "SUMMARY_FILE",
    "LOSSES_FILE",
    "RUN_FORMAT",
    "CheckpointError",
    "ModelSpec",
    "RunInfo",
    "save_run",
    "load_run",
    "save_training_state",
    "load_training_state",
    "load_official",
    "parse_official",
    "rng_state",
    "set_rng_state",
]

MODEL_FILE, CHECKPOINT_FILE, SUMMARY_FILE, LOSSES_FILE = "model.pt", "checkpoint.pt", "train_summary.json", "losses.csv"
#: The ``format`` entry of a ``model.pt`` written by :func:`save_run`.
RUN_FORMAT = "gfm-run/1"
DECODERS, PPMS = ("two", "single"), ("five", "one", "none")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything :func:`gfm.model.network.build_gfm` needs to rebuild a trained GFM.

    ``backbone`` (a registered name), ``rosta`` (TT/FT/BT, Sect. 3.4, or RIM, Sect. 5.5), the
    Table 4 ablation switches ``decoder``, ``ppm``, ``bridge``, and ``backbone_options`` (keyword
    arguments of the backbone constructor, e.g. ``{"width_divisor": 16}`` of ``r18_lite``).
    """

    backbone: str
    rosta: str = "TT"
    decoder: str = "two"
    ppm: str = "five"
    bridge: bool = True
    backbone_options: tuple = ()

    def __post_init__(self):
        options = self.backbone_options
        if isinstance(options, Mapping):
            options = tuple(sorted(options.items()))
        object.__setattr__(self, "backbone_options", tuple(tuple(item) for item in options))
        if self.backbone not in list_backbones():
            raise ValueError(f"spec backbone: {self.backbone!r} is not a registered backbone "
                             f"({', '.join(list_backbones())})")
        for name, allowed in (("rosta", ROSTAS), ("decoder", DECODERS), ("ppm", PPMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"spec {name}: expected one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.bridge, bool):
            raise ValueError(f"spec bridge: expected true or false, got {self.bridge!r}")
        if self.decoder == "single" and self.ppm != "five":
            raise ValueError(f"spec ppm: {self.ppm!r} has no meaning with decoder 'single' (leave 'five')")

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModelSpec":
        """The spec in ``data``; keys that are not fields are ignored, so a training configuration
        (``TrainConfig.to_dict()``, the ``config`` of ``train_summary.json``) works as it is."""
        if not isinstance(data, Mapping):
            raise ValueError(f"spec: expected a dict, got {type(data).__name__}")
        if "backbone" not in data:
            raise ValueError(f"spec: no 'backbone' entry (keys: {sorted(data)})")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        """Plain data (a JSON- and checkpoint-safe dict); :meth:`from_dict` reads it back."""
        return {"backbone": self.backbone, "rosta": self.rosta, "decoder": self.decoder, "ppm": self.ppm,
                "bridge": self.bridge, "backbone_options": dict(self.backbone_options)}

    def build(self, *, pretrained: str | os.PathLike | bool | None = "none") -> GFM:
        """A freshly initialised GFM of this spec; ``pretrained``: ``"imagenet"``, ``"none"`` or the path
        of a state dict of the backbone (``train.pretrained``; see :func:`gfm.model.network.build_gfm`)."""
        return build_gfm(self.backbone, self.rosta, pretrained=pretrained, decoder=self.decoder, ppm=self.ppm,
                         bridge=self.bridge, **dict(self.backbone_options))

    def __str__(self) -> str:
        switches = [f"decoder={self.decoder}"] * (self.decoder != "two") + [f"ppm={self.ppm}"] * (self.ppm != "five")
        switches += ["bridge=False"] * (not self.bridge) + [f"{k}={v}" for k, v in self.backbone_options]
        return f"GFM({', '.join([self.backbone, self.rosta, *switches])})"


@dataclass(frozen=True)
class RunInfo:
    """What :func:`load_run` / :func:`load_official` read: the file, its kind, the spec.

    ``kind``: ``"run"`` (a ``model.pt`` of :func:`save_run`), ``"legacy run"`` (a bare state dict
    with ``train_summary.json`` beside it), ``"training state"`` (a ``checkpoint.pt``) or
    ``"official"``. ``extra``: the plain data saved with the run (:func:`save_run`), or the
    training configuration of a legacy run / training state.
    """

    source: Path
    kind: str
    spec: ModelSpec
    experiment: str
    extra: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """A flat dict: ``experiment``, ``source``, ``official``, ``track`` and the spec's fields."""
        return {"experiment": self.experiment, "source": str(self.source), "official": self.kind == "official",
                "track": self.extra.get("track"), **self.spec.to_dict()}


def save_run(run_dir: str | Path, model: torch.nn.Module, spec: ModelSpec, extra: dict | None = None) -> Path:
    """Write ``<run_dir>/model.pt`` atomically: ``model``'s weights, its ``spec`` and ``extra``.

    ``extra`` is plain data kept with the weights (e.g. ``{"experiment": ..., "track": ...}``;
    :attr:`RunInfo.extra`). The state dict must match ``spec`` (else :class:`CheckpointError`
    listing the differences) and ``extra`` must be plain (else :class:`TypeError` naming the
    key). Returns the path written.
    """
    path = Path(run_dir) / MODEL_FILE
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"{path}: spec must be a ModelSpec, got {type(spec).__name__}")
    model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel wrapper
    state = model.state_dict()
    _check_state_dict(state, spec, f"{path} (from the model being saved)")
    payload = {"format": RUN_FORMAT, "spec": spec.to_dict(), "state_dict": state, "extra": dict(extra or {})}
    _check_plain(payload["extra"], f"{path}: extra")
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_run(path: str | Path, device: str | torch.device = "cpu") -> tuple[GFM, RunInfo]:
    """A trained GFM in eval mode on ``device`` and what was read -> ``(model, RunInfo)``.

    ``path``: a run folder (its ``model.pt``), a ``model.pt`` (this format or the legacy bare state
    dict with ``train_summary.json`` beside it) or a training ``checkpoint.pt``. Anything else --
    a missing, empty, truncated or foreign file, a pickle that would run code, weights that do not
    fit the spec -- raises :class:`CheckpointError` (``FileNotFoundError`` for a missing path)
    naming the file and the problem.
    """
    path = Path(path)
    device = resolve_device(device)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            hint = (f"; training has not finished: {path / CHECKPOINT_FILE} holds the last epoch's weights"
                    if (path / CHECKPOINT_FILE).is_file() else "")
            raise FileNotFoundError(f"{path}: a folder without {MODEL_FILE} (expected a training run folder){hint}")
        path = path / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (expected a training run folder, its {MODEL_FILE} or "
                                f"{CHECKPOINT_FILE}, or a released checkpoint with official=BACKBONE-ROSTA)")
    content = _read(path)
    kind, spec, state, extra = _interpret(content, path)
    experiment = str(extra.get("experiment") or path.parent.name)
    model = _build_loaded(spec, state, str(path))
    return model.to(device).eval(), RunInfo(path, kind, spec, experiment, extra)


def save_training_state(path: str | Path, state: dict) -> Path:
    """Write the resumable training state ``state`` to ``path`` atomically.

    ``state`` must be plain data (tensors, numbers, strings, None, lists, tuples, dicts with str
    or int keys): anything else raises :class:`TypeError` naming its key, before writing. Give
    it ``"model"`` (the state dict) and ``"config"`` (the training configuration as a dict) and
    :func:`load_run` can also read the file; RNG states come from :func:`rng_state`.
    """
    path = Path(path)
    if not isinstance(state, dict):
        raise TypeError(f"{path}: a training state must be a dict, got {type(state).__name__}")
    _check_plain(state, f"{path}: state")
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The dict :func:`save_training_state` wrote (or a legacy ``checkpoint.pt``), read safely.

    Tensors go to ``map_location``. A file that is not such a dict raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training checkpoint")
    state = _read(path, map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds {_describe(state)}, not a training state (a dict)")
    return state


def load_official(path_or_state_dict, backbone: str, rosta: str, map_location="cpu", *,
                  strict: bool = True) -> GFM:
    """Build GFM(``backbone``, ``rosta``) and load a released GFM checkpoint into it.

    Accepts a file (read with ``torch.load(weights_only=True)``) or a state dict, with or
    without the ``module.`` prefix ``nn.DataParallel`` adds. With ``strict`` a key mismatch
    raises :class:`CheckpointError` listing the missing and unexpected keys and the keys of
    another shape; without it, a warning (the model then keeps PyTorch's initialisation where
    keys are missing). A run folder or a run file of this project is refused with a message
    saying to use :func:`load_run`. Returns the model in eval mode. Feed it RGB float in
    [0, 255] (see :func:`gfm.model.network.image_to_input`).
    """
    spec = ModelSpec(backbone, rosta)
    if isinstance(path_or_state_dict, (str, Path)):
        source = Path(path_or_state_dict)
        if source.is_dir():
            raise CheckpointError(_not_official(source, "a training run folder"))
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no such official checkpoint")
        state = _read(source, map_location)
        if isinstance(state, Mapping) and (state.get("format") == RUN_FORMAT or {"model", "config"} <= set(state)):
            kind = "a model.pt of a training run" if "format" in state else "a training checkpoint.pt"
            raise CheckpointError(_not_official(source, kind))
        source = str(source)
    elif isinstance(path_or_state_dict, Mapping):
        source, state = "state dict", path_or_state_dict
    else:
        raise TypeError(f"path_or_state_dict must be a path or a state dict, got {type(path_or_state_dict).__name__}")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: holds {_describe(state)}, not a state dict")
    state = {(k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k): v for k, v in state.items()}
    try:
        return _build_loaded(spec, state, source).eval()
    except CheckpointError as error:
        if strict:
            raise
        warnings.warn(str(error), stacklevel=2)
    model = spec.build()
    own = model.state_dict()
    usable = {k: v.to(own[k].dtype) for k, v in state.items()
              if k in own and torch.is_tensor(v) and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(usable, strict=False)
    return model.eval()


def parse_official(spec: str) -> tuple[str, str]:
    """``"r34-tt"`` -> ``("r34", "TT")``: the backbone and RoSTa of an official checkpoint."""
    backbone, sep, rosta = str(spec).rpartition("-")
    rosta = rosta.upper()
    if not sep or not backbone or rosta not in (*GLANCE_CLASSES, "RIM"):
        raise ValueError(f"official checkpoint spec must be BACKBONE-ROSTA (e.g. r34-tt, d121-tt, r34_2b-rim), "
                         f"got {spec!r}")
    return backbone, rosta


def rng_state() -> dict:
    """The random generators a resumed run restores, as plain data: torch (CPU and every CUDA
    device), numpy's global generator (its MT19937 key as an int64 tensor) and Python's ``random``."""
    numpy = np.random.get_state(legacy=False)
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": {"bit_generator": numpy["bit_generator"],
                        "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
                        "pos": int(numpy["state"]["pos"]), "has_gauss": int(numpy["has_gauss"]),
                        "gauss": float(numpy["gauss"])}}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_state(states: dict) -> None:
    """Restore what :func:`rng_state` returned (or the legacy ``checkpoint.pt`` form, whose numpy
    entry is the tuple of ``numpy.random.get_state()``)."""
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    numpy = states["numpy"]
    if isinstance(numpy, dict):
        numpy = {"bit_generator": numpy["bit_generator"],
                 "state": {"key": np.asarray(numpy["key"], dtype=np.int64).astype(np.uint32), "pos": numpy["pos"]},
                 "has_gauss": numpy["has_gauss"], "gauss": numpy["gauss"]}
    np.random.set_state(numpy)
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

#: numpy's array reconstruction, allow-listed while reading (legacy checkpoint.pt: module docstring);
#: numpy 2 renamed numpy.core to numpy._core, files pickled by numpy 1 name the old module.
_RECONSTRUCT = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
_NUMPY_ARRAY = [_RECONSTRUCT, (_RECONSTRUCT, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
                type(np.dtype(np.uint32))]
_SCALARS = (bool, int, float, str, bytes, type(None))
#: What :func:`_read` says of a file torch.load(weights_only=True) did not read (:mod:`gfm.model.torchfile`).
_UNREADABLE = {
    REFUSED: ("{path}: refused, nothing in it was run: its pickle would call {detail}, which is not plain data (a "
              "checkpoint holds only tensors, numbers, strings, lists and dicts). If the file is yours and trusted, "
              "re-save the plain parts (e.g. model.state_dict()) where it was made"),
    FOREIGN: "{path}: not a PyTorch checkpoint: the pickle is foreign or corrupt ({detail})",
    DAMAGED: "{path}: not a readable PyTorch checkpoint, truncated or corrupt ({detail})",
}


def _read(path: Path, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with every failure turned into one clear error."""
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        return load_weights_only(path, map_location, allowed=_NUMPY_ARRAY, reraise=(OSError,))
    except UnreadableFile as problem:
        raise CheckpointError(_UNREADABLE[problem.kind].format(path=path, detail=problem.detail)) from None


def _interpret(content, path: Path) -> tuple[str, ModelSpec, Mapping, dict]:
    """(kind, spec, state dict, extra) of a loaded run file; :class:`CheckpointError` otherwise."""
    if isinstance(content, Mapping) and content.get("format") == RUN_FORMAT:
        missing = {"spec", "state_dict"} - set(content)
        if missing:
            raise CheckpointError(f"{path}: a {RUN_FORMAT} file without {sorted(missing)}")
        extra = content.get("extra") or {}
        return "run", _spec(content["spec"], path), content["state_dict"], dict(extra)
    if isinstance(content, Mapping) and {"model", "config"} <= set(content):
        config = content["config"]
        return "training state", _spec(config, path), content["model"], dict(config)
    if isinstance(content, Mapping) and content and all(torch.is_tensor(v) for v in content.values()):
        summary = path.parent / SUMMARY_FILE
        if not summary.is_file():
            raise CheckpointError(
                f"{path}: a bare state dict without {SUMMARY_FILE} beside it, so its network is unknown; if it "
                f"is a released GFM checkpoint say which with official='<backbone>-<rosta>' (CLI: --official r34-tt)")
        try:
            config = json.loads(summary.read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{summary}: no readable 'config' entry ({type(error).__name__}: {error}); it "
                                  f"says which network {path.name} holds") from None
        return "legacy run", _spec(config, summary), content, dict(config)
    raise CheckpointError(f"{path}: holds {_describe(content)}, not a GFM run file (expected a {MODEL_FILE} of "
                          f"gfm.model.checkpoint.save_run, a training {CHECKPOINT_FILE}, or a state dict with "
                          f"{SUMMARY_FILE} beside it)")


def _spec(data, source: Path) -> ModelSpec:
    try:
        return ModelSpec.from_dict(data)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{source}: unusable model spec: {error}") from None


def _build_loaded(spec: ModelSpec, state: Mapping, source: str) -> GFM:
    """GFM of ``spec`` holding exactly the tensors of ``state`` (checked first)."""
    own = _check_state_dict(state, spec, source)
    with torch.device("meta"):  # no time spent on a random initialisation that is overwritten
        model = spec.build()
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True, assign=True)
    return model


def _check_state_dict(state, spec: ModelSpec, source: str) -> dict:
    """The reference state dict (on the meta device) of ``spec``, after checking ``state`` against it."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the weights are {_describe(state)}, not a state dict")
    try:
        with torch.device("meta"):
            own = spec.build().state_dict()
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{source}: cannot build {spec}: {error}") from None
    not_tensors = sorted(str(k) for k, v in state.items() if not torch.is_tensor(v))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(str(k) for k in set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state)
                         if torch.is_tensor(state[k]) and tuple(own[k].shape) != tuple(state[k].shape))
    if not_tensors or missing or unexpected or wrong_shape:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong_shape]
        raise CheckpointError(
            f"{source}: does not match {spec}: {len(missing)} missing keys {_preview(missing)}, "
            f"{len(unexpected)} unexpected keys {_preview(unexpected)}, "
            f"{len(wrong_shape)} keys of another shape {_preview(shapes)}"
            + (f", {len(not_tensors)} entries that are not tensors {_preview(not_tensors)}" if not_tensors else ""))
    return own


def _check_plain(value, where: str) -> None:
    """:class:`TypeError` naming the first entry of ``value`` that is not plain checkpoint data."""
    kind = type(value)
    if kind in _SCALARS or isinstance(value, torch.Tensor):
        return
    if kind in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; checkpoint keys are str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a {kind.__module__}.{kind.__qualname__}, not plain checkpoint data (tensors, "
                    f"numbers, strings, None, lists, tuples, dicts): convert it (numpy array: torch.from_numpy, "
                    f"numpy scalar: int()/float(), dataclass: a dict)")


def _not_official(path: Path, what: str) -> str:
    return (f"{path}: {what} of this project, not a released GFM checkpoint; load it without --official "
            f"(gfm.model.checkpoint.load_run / gfm.model.infer.load_model), which reads its network from the run")


def _describe(value) -> str:
    if isinstance(value, (list, tuple, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")


def _preview(items: list, limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"
