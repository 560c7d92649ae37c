"""The shared encoder of GFM (Sect. 3.1, "Shared Encoder"; Table 4 "r2b"; Table 7), by name.

A registry in the style of timm: each backbone is a short registered function named as the
paper's tables abbreviate it (``r34`` = GFM(r), ``d121`` = GFM(d), ``r101`` = GFM(r-dagger),
``r34_2b`` = the "r2b" ablation) that returns an :class:`Encoder`: the encoder stages
E0..EL, their channels and strides, and the widths of the decoder blocks that sit on them.
:class:`gfm.model.network.GFM` builds the glance and focus decoders from that description alone.

Backbones are built from torchvision constructors with ``weights=None`` (torchvision is imported
when the first backbone is built, not with this module). Their initialisation
(``train.pretrained``: ``imagenet`` | ``none`` | a path) is resolved and checked by
:func:`prepare_pretrained` before any training work -- downloading torchvision's ImageNet weights
into torch hub's cache if they are not there -- and loaded by :func:`load_pretrained`; both go
through the same code.

The torchvision model is kept whole as a sub-module (``resnet`` or ``densenet``), its unused
ImageNet classifier included, because the official checkpoints store it that way (their
parameter counts, e.g. GFM(d) 46.96 M in Table 7, include it). The encoder stages share their
layers with that sub-module, so a state dict lists each backbone tensor under two names,
exactly as the released checkpoints do.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gfm.core.io import sha256_file
from gfm.model.torchfile import DAMAGED, FOREIGN, REFUSED, UnreadableFile, load_weights_only

__all__ = [
    "Encoder",
    "register_backbone",
    "list_backbones",
    "create_encoder",
    "PRETRAINED_CHOICES",
    "PretrainedError",
    "prepare_pretrained",
    "load_pretrained",
    "imagenet_weights_path",
]

_REGISTRY: dict[str, Callable[..., "Encoder"]] = {}


@dataclass
class Encoder:
    """What the GFM decoders need to know about a backbone.

    Attributes
    ----------
    stages : list of nn.Module
        E0..EL; ``stages[i]`` maps the output of ``stages[i-1]`` (or the image) to E_i.
    channels : tuple of int
        Output channels of E0..EL.
    strides : tuple of int
        Output stride of E0..EL relative to the input image (each 1 or a power of 2).
    widths : tuple of (int, int, int)
        ``(mid1, mid2, out)`` channels of decoder blocks D_L..D_1 (the same for GD and FD).
    head_width : int
        Width of the two inner convolutions of the last decoder block D0.
    context_channels : int
        Output channels of the pyramid pooling module (GD) and of the bridge block (FD).
    holder_name, holder : str, nn.Module or None
        The torchvision model the stages were taken from, kept under this attribute name so
        that state-dict keys match the official checkpoints.
    weights : str or None
        Name of the torchvision weights enum member (e.g. ``"ResNet34_Weights.IMAGENET1K_V1"``)
        whose file :func:`load_pretrained` loads into ``holder`` (None: no ImageNet weights).
    name : str
        The registered name of the backbone (set by :func:`create_encoder`).
    """

    stages: list
    channels: tuple
    strides: tuple
    widths: tuple
    head_width: int
    context_channels: int
    holder_name: str | None = None
    holder: nn.Module | None = None
    weights: str | None = None
    name: str = ""


def register_backbone(fn: Callable[..., Encoder]) -> Callable[..., Encoder]:
    """Register ``fn`` as a backbone under its function name (a decorator)."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(_REGISTRY)


def create_encoder(name: str, **kwargs) -> Encoder:
    """Build the encoder registered as ``name`` (keyword arguments go to its constructor)."""
    if name not in _REGISTRY:
        raise ValueError(f"backbone={name!r} is not registered; expected one of {list_backbones()}")
    encoder = _REGISTRY[name](**kwargs)
    encoder.name = name
    return encoder


# --------------------------------------------------------------------------------------------
# The paper's backbones
# --------------------------------------------------------------------------------------------

@register_backbone
def r34() -> Encoder:
    """ResNet-34 (He et al., 2016): GFM(r), E0 = 7x7/2 stem, E1 = max pool + layer1."""
    return _resnet_encoder(_models().resnet34, "ResNet34_Weights.IMAGENET1K_V1",
                           channels=(64, 64, 128, 256, 512),
                           widths=((512, 512, 256), (256, 256, 128), (128, 128, 64), (64, 64, 64)))


@register_backbone
def r101() -> Encoder:
    """ResNet-101 (He et al., 2016): GFM(r-dagger) of Table 7, decoders twice as wide."""
    return _resnet_encoder(_models().resnet101, "ResNet101_Weights.IMAGENET1K_V1",
                           channels=(64, 256, 512, 1024, 2048),
                           widths=((2048, 1024, 1024), (1024, 512, 512), (512, 256, 256), (256, 128, 64)))


@register_backbone
def r34_2b() -> Encoder:
    """ResNet-34 "r2b" (Table 4): 3x3/1 stem, no max pool, E5/E6 = max pool + 3 BasicBlocks(512)."""
    resnet = _models().resnet34(weights=None)
    stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
    stages = [stem, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
              _extra_stage(512), _extra_stage(512)]
    return Encoder(stages=stages, channels=(64, 64, 128, 256, 512, 512, 512),
                   strides=(1, 1, 2, 4, 8, 16, 32),
                   widths=((512, 512, 512), (512, 512, 512), (512, 512, 256), (256, 256, 128),
                           (128, 128, 64), (64, 64, 64)),
                   head_width=64, context_channels=512,
                   holder_name="resnet", holder=resnet, weights="ResNet34_Weights.IMAGENET1K_V1")


@register_backbone
def d121() -> Encoder:
    """DenseNet-121 (Huang et al., 2017): GFM(d); E4 ends with a 1024->512 conv and a max pool."""
    densenet = _models().densenet121(weights=None)
    f = densenet.features
    reduce = [nn.Conv2d(1024, 512, 3, padding=1), nn.BatchNorm2d(512), nn.ReLU(inplace=True),
              nn.MaxPool2d(2, 2, ceil_mode=True)]
    stages = [nn.Sequential(f.conv0, f.norm0, f.relu0),
              nn.Sequential(f.denseblock1, f.transition1),
              nn.Sequential(f.denseblock2, f.transition2),
              nn.Sequential(f.denseblock3, f.transition3),
              nn.Sequential(f.denseblock4, *reduce)]
    return Encoder(stages=stages, channels=(64, 128, 256, 512, 512), strides=(2, 4, 8, 16, 32),
                   widths=((512, 512, 256), (256, 256, 128), (128, 128, 64), (64, 64, 64)),
                   head_width=64, context_channels=512,
                   holder_name="densenet", holder=densenet, weights="DenseNet121_Weights.IMAGENET1K_V1")


# --------------------------------------------------------------------------------------------
# The sample profile's backbone (not in the paper)
# --------------------------------------------------------------------------------------------

@register_backbone
def r18_lite(width_divisor: int = 4) -> Encoder:
    """ResNet-18 with every decoder, PPM and bridge width divided by ``width_divisor``.

    Not in the paper: the sample profile's backbone, small enough to train GFM on two CPU
    cores in minutes. Same topology as GFM(r): E0 = 7x7/2 stem, E1 = max pool + layer1.
    """
    if not isinstance(width_divisor, int) or width_divisor < 1 or 64 % width_divisor:
        raise ValueError(f"width_divisor must be a positive divisor of 64, got {width_divisor!r}")
    k = width_divisor
    widths = tuple(tuple(w // k for w in block)
                   for block in ((512, 512, 256), (256, 256, 128), (128, 128, 64), (64, 64, 64)))
    return _resnet_encoder(_models().resnet18, "ResNet18_Weights.IMAGENET1K_V1",
                           channels=(64, 64, 128, 256, 512), widths=widths,
                           head_width=64 // k, context_channels=512 // k)


@register_backbone
def r18_slim(width_divisor: int = 4) -> Encoder:
    """ResNet-18's topology (7x7/2 stem, max pool, two BasicBlocks per stage) at half its widths
    (32, 32, 64, 128, 256 channels), decoders, PPM and bridge divided by ``width_divisor``.

    Not in the paper and without ImageNet weights: the sample profile's backbone. Measured on two
    CPU cores (fp32, 96 px input, batch 8) a training step takes 0.28 s against r18_lite's 0.67 s
    at 128 px, so the CPU budget buys 2.4x the steps (``benchmarks/bench_train_step.py``).
    """
    if not isinstance(width_divisor, int) or width_divisor < 1 or 64 % width_divisor:
        raise ValueError(f"width_divisor must be a positive divisor of 64, got {width_divisor!r}")
    base = 32
    stem = nn.Sequential(nn.Conv2d(3, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base), nn.ReLU(inplace=True))
    stages = [stem, nn.Sequential(nn.MaxPool2d(3, 2, 1), _basic_layer(base, base, 1)),
              _basic_layer(base, 2 * base, 2), _basic_layer(2 * base, 4 * base, 2), _basic_layer(4 * base, 8 * base, 2)]
    k = width_divisor
    widths = tuple(tuple(w // k for w in block)
                   for block in ((512, 512, 256), (256, 256, 128), (128, 128, 64), (64, 64, 64)))
    return Encoder(stages=stages, channels=(base, base, 2 * base, 4 * base, 8 * base), strides=(2, 4, 8, 16, 32),
                   widths=widths, head_width=64 // k, context_channels=512 // k)


def _basic_layer(cin: int, cout: int, stride: int, blocks: int = 2) -> nn.Sequential:
    """A ResNet stage of ``blocks`` BasicBlocks, the first projecting ``cin`` -> ``cout`` at ``stride``."""
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    block = _models().resnet.BasicBlock
    return nn.Sequential(block(cin, cout, stride, shortcut), *(block(cout, cout) for _ in range(blocks - 1)))


# --------------------------------------------------------------------------------------------
# Pretrained initialisation (``train.pretrained``)
# --------------------------------------------------------------------------------------------

#: The values of ``train.pretrained`` that are not a path.
PRETRAINED_CHOICES = ("imagenet", "none")


class PretrainedError(FileNotFoundError, ValueError):
    """The initialisation ``train.pretrained`` asks for cannot be had.

    The weights are not where they were looked for (ImageNet weights neither in torch hub's cache nor
    downloadable, a path that is no file, a backbone without ImageNet weights) or the file there is
    not them (unreadable, not a state dict, keys or shapes of another network). A
    ``FileNotFoundError`` and a ``ValueError``; the message names the file, where it was looked for
    and what to do.
    """


def prepare_pretrained(backbone: str, value, *, progress: bool = True, **backbone_kwargs) -> dict:
    """Resolve ``train.pretrained`` for ``backbone`` before any training work, and check the weights fit.

    Sect. 3.1: the shared encoder is "pre-trained on the ImageNet training set" (the official code
    builds it with torchvision's ``pretrained=True``).

    Parameters
    ----------
    backbone : str
        A registered backbone name.
    value : str
        ``"imagenet"``: torchvision's ImageNet weights of the backbone, read from torch hub's cache
        (:func:`imagenet_weights_path`, honouring ``TORCH_HOME``); when absent they are downloaded
        there by torch hub's downloader (a progress bar if ``progress``, the hash prefix in the
        file name checked as torchvision does). Offline, the :class:`PretrainedError` names the
        file, the folder and the URL, and says how to place the file by hand.
        ``"none"``: PyTorch's random initialisation.
        Anything else: the path of a local state dict of the backbone, in torchvision's key
        naming of that network (the keys of ``torchvision.models.resnet34().state_dict()`` for
        ``r34`` and ``r34_2b``, ``resnet101`` for ``r101``, ``resnet18`` for ``r18_lite``,
        ``densenet121`` for ``d121``, whose pre-0.4 key names are renamed as torchvision
        does), either at the top level or under a ``"state_dict"`` entry, optionally with the
        ``"module."`` prefix of ``nn.DataParallel``. Keys the encoder never uses (the ImageNet
        classifier, r34_2b's replaced 7x7 stem, DenseNet's final norm) and BatchNorm's
        ``num_batches_tracked`` may be absent; any other missing key, any unexpected key and
        any tensor of another shape is a :class:`PretrainedError` listing the first of them.
        ``True``, ``False`` and ``None`` are accepted as ``"imagenet"``, ``"none"``, ``"none"``.
    progress : bool
        Show the download's progress bar (stderr).
    **backbone_kwargs
        Keyword arguments of the backbone constructor (they do not change its torchvision part).

    Returns
    -------
    dict
        Plain data saying what was used, for the training metrics: ``{"pretrained": "none"}``;
        ``{"pretrained": "imagenet", "weights": <torchvision weights>, "url": ..., "file": <file
        name in torch hub's cache>, "sha256": ...}``; ``{"pretrained": <path>, "file": <path>,
        "sha256": ...}``.
    """
    value = _pretrained_value(value)
    if value == "none":
        return {"pretrained": "none"}
    with torch.device("meta"):  # the shapes to check against, without initialising any weights
        encoder = create_encoder(backbone, **backbone_kwargs)
    record, _ = _read_pretrained(encoder, value, progress)
    return record


def load_pretrained(encoder: Encoder, value, *, progress: bool = True) -> dict:
    """Initialise ``encoder``'s torchvision part as ``value`` says -> what was used.

    The same resolution and checks as :func:`prepare_pretrained` (which see for ``value`` and the
    returned dict); ``"imagenet"`` downloads the weights if torch hub's cache lacks them.
    """
    value = _pretrained_value(value)
    if value == "none":
        return {"pretrained": "none"}
    record, state = _read_pretrained(encoder, value, progress)
    encoder.holder.load_state_dict(state, strict=False)  # keys and shapes checked: only optional keys are absent
    return record


def imagenet_weights_path(weights: str) -> Path:
    """Where torch hub keeps the file of torchvision weights ``weights``:
    ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (``$TORCH_HOME/hub/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights_enum(weights).url).name


# The DenseNet files on download.pytorch.org predate torchvision's module names ("norm.1" for
# "norm1"); torchvision renames them the same way when it loads them.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
#: Seconds a download may wait for a connection or a byte before it counts as failed.
_DOWNLOAD_TIMEOUT = 60.0
_SHOWN = 5
#: What :func:`_load_file` says of a file torch.load(weights_only=True) did not read (:mod:`gfm.model.torchfile`).
_UNREADABLE = {
    REFUSED: ("{path}: refused, nothing in it was run: its pickle would call {detail}, which is not plain data; "
              "expected a state dict of tensors{hint}"),
    FOREIGN: ("{path}: not a PyTorch file of tensors, the pickle is foreign or corrupt ({detail}); expected a state "
              "dict of tensors{hint}"),
    DAMAGED: "{path}: not a readable PyTorch file, truncated or corrupt ({detail}); expected a state dict of tensors{hint}",
}
_CHOICES = " or ".join(repr(c) for c in PRETRAINED_CHOICES)


def _pretrained_value(value) -> str:
    """``value`` as a string: "imagenet", "none" or a path (the bool/None aliases resolved)."""
    if value is True:
        return "imagenet"
    if value is False or value is None:
        return "none"
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return str(value).strip() if isinstance(value, str) else os.fspath(value)
    raise PretrainedError(f"pretrained={value!r}: expected {_CHOICES} or the path of a state dict of the backbone")


def _read_pretrained(encoder: Encoder, value: str, progress: bool) -> tuple[dict, dict]:
    """(what was used, the checked state dict of ``encoder.holder``) for ``value`` ("imagenet" or a path)."""
    name = encoder.name or "this backbone"
    if encoder.holder is None:
        raise PretrainedError(
            f"pretrained={value!r}: backbone {name} is not a torchvision network, so it has no ImageNet weights "
            f"and no torchvision-named state dict fits it; use pretrained 'none', or a backbone with ImageNet "
            f"weights")
    if value == "imagenet":
        path = _imagenet_file(encoder, progress)
        url = _weights_enum(encoder.weights).url
        record = {"pretrained": "imagenet", "weights": encoder.weights, "url": url, "file": path.name}
    else:
        path = Path(value)
        if not path.is_file():
            where = "a folder" if path.is_dir() else "no such file"
            raise PretrainedError(
                f"pretrained={value!r}: {where} ({path.resolve()}); expected {_CHOICES} or the path of a state "
                f"dict of backbone {name}")
        record = {"pretrained": value, "file": value}
    state = _fit(_load_file(path, value == "imagenet"), encoder, path)
    record["sha256"] = sha256_file(path)
    return record, state


def _imagenet_file(encoder: Encoder, progress: bool) -> Path:
    """The cached file of ``encoder.weights``, downloaded into torch hub's cache if absent."""
    path = imagenet_weights_path(encoder.weights)
    if path.is_file():
        return path
    url = _weights_enum(encoder.weights).url
    found = torch.hub.HASH_REGEX.search(path.name)  # torchvision's check_hash=True: the name holds a sha256 prefix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(_DOWNLOAD_TIMEOUT):
            # writes <file>.<uuid>.partial beside it and renames it into place only when complete and verified
            torch.hub.download_url_to_file(url, str(path), hash_prefix=found.group(1) if found else None,
                                           progress=progress)
    except (OSError, http.client.HTTPException, RuntimeError) as error:  # URLError, timeouts; wrong hash
        reason = str(error).strip() or type(error).__name__
        raise PretrainedError(
            f"pretrained='imagenet': the ImageNet weights of backbone {encoder.name} ({encoder.weights}) are not at "
            f"{path} and the download of {url} failed ({reason}). Looked for file {path.name} in folder "
            f"{path.parent} (torch hub's cache: $TORCH_HOME/hub/checkpoints). To place it by hand: download {url} "
            f"on a machine with network, copy it into that folder under that name (or set TORCH_HOME to a folder "
            f"whose hub/checkpoints/ holds it), or set train.pretrained to the path of the file") from None
    return path


def _load_file(path: Path, cached: bool):
    """``torch.load(path, weights_only=True)`` on the CPU, any failure a :class:`PretrainedError` naming ``path``."""
    try:
        return load_weights_only(path)
    except UnreadableFile as problem:
        hint = "; delete it and it is downloaded again" if cached else ""
        raise PretrainedError(_UNREADABLE[problem.kind].format(path=path, detail=problem.detail, hint=hint)) from None


def _fit(content, encoder: Encoder, path: Path) -> dict:
    """The state dict in ``content``, renamed to ``encoder.holder``'s keys and checked against its shapes."""
    state = content
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not state:
        what = f"a {type(content).__name__}" + (f" of {len(content)} items" if hasattr(content, "__len__") else "")
        raise PretrainedError(f"{path}: holds {what}, not a state dict (expected a dict of tensors, or one under "
                              f"a 'state_dict' entry)")
    not_tensors = [str(k) for k, v in state.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise PretrainedError(f"{path}: not a state dict: {len(not_tensors)} entries are not tensors "
                              f"{not_tensors[:_SHOWN]}")
    keys = [str(k) for k in state]
    if all(k.startswith("module.") for k in keys):
        state = {k[len("module."):]: v for k, v in zip(keys, state.values())}
    if encoder.holder_name == "densenet":
        state = {_DENSENET_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    own = encoder.holder.state_dict(keep_vars=True)
    used = {id(t) for stage in encoder.stages for t in (*stage.parameters(), *stage.buffers())}
    optional = {k for k, t in own.items() if id(t) not in used or k.endswith(".num_batches_tracked")}
    missing = [k for k in own if k not in state and k not in optional]
    unexpected = [str(k) for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        problems = [f"{len(items)} {what} {items[:_SHOWN]}"
                    for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                        ("tensors of another shape", shapes)) if items]
        raise PretrainedError(
            f"{path}: not weights of backbone {encoder.name} ({encoder.weights.split('_')[0].lower()} in "
            f"torchvision's key naming, e.g. {list(own)[:2]}): {'; '.join(problems)}")
    return dict(state)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Give sockets opened meanwhile a timeout (urllib's default is none: a silent network hangs)."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _weights_enum(weights: str):
    enum_name, member = weights.split(".")
    return getattr(getattr(_models(), enum_name), member)


def _resnet_encoder(constructor, weights: str, *, channels, widths, head_width: int = 64,
                    context_channels: int | None = None) -> Encoder:
    """E0 = conv1/bn1/relu, E1 = max pool + layer1, E2..E4 = layer2..layer4 (official layout)."""
    resnet = constructor(weights=None)
    stages = [nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu),
              nn.Sequential(resnet.maxpool, resnet.layer1),
              resnet.layer2, resnet.layer3, resnet.layer4]
    return Encoder(stages=stages, channels=tuple(channels), strides=(2, 4, 8, 16, 32),
                   widths=tuple(widths), head_width=head_width,
                   context_channels=context_channels or channels[-1],
                   holder_name="resnet", holder=resnet, weights=weights)


def _extra_stage(width: int) -> nn.Sequential:
    """E5/E6 of "r2b": a 2x2 max pool then three BasicBlocks of ``width`` filters."""
    block = _models().resnet.BasicBlock
    return nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True), *(block(width, width) for _ in range(3)))


def _models():
    """``torchvision.models``, imported when a backbone is built or its ImageNet weights resolved, not with
    this module: importing torchvision takes seconds, paid otherwise by every process importing gfm.model."""
    import torchvision.models

    return torchvision.models
