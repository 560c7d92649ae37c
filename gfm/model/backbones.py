"""The shared encoder of GFM (Sect. 3.1, "Shared Encoder"; Table 4 "r2b"; Table 7), by name.

A registry in the style of timm: each backbone is a short registered function named as the
paper's tables abbreviate it (``r34`` = GFM(r), ``d121`` = GFM(d), ``r101`` = GFM(r-dagger),
``r34_2b`` = the "r2b" ablation) that returns an :class:`Encoder`: the encoder stages
E0..EL, their channels and strides, and the widths of the decoder blocks that sit on them.
:class:`gfm.model.network.GFM` builds the glance and focus decoders from that description alone.

Backbones are built from torchvision constructors with ``weights=None``; nothing is ever
downloaded. ImageNet weights are loaded by :func:`load_imagenet_weights` from the local torch
hub cache or from an explicit file.

The torchvision model is kept whole as a sub-module (``resnet`` or ``densenet``), its unused
ImageNet classifier included, because the official checkpoints store it that way (their
parameter counts, e.g. GFM(d) 46.96 M in Table 7, include it). The encoder stages share their
layers with that sub-module, so a state dict lists each backbone tensor under two names,
exactly as the released checkpoints do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

__all__ = [
    "Encoder",
    "register_backbone",
    "list_backbones",
    "create_encoder",
    "load_imagenet_weights",
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
        whose file :func:`load_imagenet_weights` loads into ``holder``.
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
    return _REGISTRY[name](**kwargs)


# --------------------------------------------------------------------------------------------
# The paper's backbones
# --------------------------------------------------------------------------------------------

@register_backbone
def r34() -> Encoder:
    """ResNet-34 (He et al., 2016): GFM(r), E0 = 7x7/2 stem, E1 = max pool + layer1."""
    return _resnet_encoder(torchvision.models.resnet34, "ResNet34_Weights.IMAGENET1K_V1",
                           channels=(64, 64, 128, 256, 512),
                           widths=((512, 512, 256), (256, 256, 128), (128, 128, 64), (64, 64, 64)))


@register_backbone
def r101() -> Encoder:
    """ResNet-101 (He et al., 2016): GFM(r-dagger) of Table 7, decoders twice as wide."""
    return _resnet_encoder(torchvision.models.resnet101, "ResNet101_Weights.IMAGENET1K_V1",
                           channels=(64, 256, 512, 1024, 2048),
                           widths=((2048, 1024, 1024), (1024, 512, 512), (512, 256, 256), (256, 128, 64)))


@register_backbone
def r34_2b() -> Encoder:
    """ResNet-34 "r2b" (Table 4): 3x3/1 stem, no max pool, E5/E6 = max pool + 3 BasicBlocks(512)."""
    resnet = torchvision.models.resnet34(weights=None)
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
    densenet = torchvision.models.densenet121(weights=None)
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
    return _resnet_encoder(torchvision.models.resnet18, "ResNet18_Weights.IMAGENET1K_V1",
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
    return nn.Sequential(BasicBlock(cin, cout, stride, shortcut), *(BasicBlock(cout, cout) for _ in range(blocks - 1)))


# --------------------------------------------------------------------------------------------
# ImageNet weights (local files only)
# --------------------------------------------------------------------------------------------

def imagenet_weights_path(weights: str) -> Path:
    """Where torch hub keeps the file of torchvision weights ``weights`` (not downloaded)."""
    enum = _weights_enum(weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name


def load_imagenet_weights(encoder: Encoder, path: str | Path | None = None) -> None:
    """Load ImageNet weights into ``encoder.holder`` from ``path`` or the torch hub cache.

    Never downloads. Raises ``FileNotFoundError`` naming the expected file and its URL when
    it is absent, and ``ValueError`` when the file does not fit the backbone.
    """
    if encoder.holder is None or encoder.weights is None:
        raise ValueError("this backbone has no ImageNet weights to load")
    if path is None:
        path = imagenet_weights_path(encoder.weights)
        if not path.is_file():
            url = _weights_enum(encoder.weights).url
            raise FileNotFoundError(
                f"ImageNet weights {encoder.weights} not found at {path}; this project never "
                f"downloads at runtime: fetch {url} yourself and put it there, or pass "
                f"pretrained=<path to the .pth file>")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained={str(path)!r}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if encoder.holder_name == "densenet":
        state = {_DENSENET_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    result = encoder.holder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{path}: not {encoder.weights} weights (missing keys "
                         f"{result.missing_keys[:5]}, unexpected keys {result.unexpected_keys[:5]})")


# The DenseNet files on download.pytorch.org predate torchvision's module names ("norm.1" for
# "norm1"); torchvision renames them the same way when it loads them.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _weights_enum(weights: str):
    enum_name, member = weights.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


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
    return nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True),
                         *(BasicBlock(width, width) for _ in range(3)))
