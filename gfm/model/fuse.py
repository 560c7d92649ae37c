"""Inference-time rewrites of a trained GFM for speed, outputs unchanged to ~1e-5.

Used by :func:`gfm.model.network.optimise_for_inference`; none of this changes what the network
computes, only how (see ``benchmarks/bench_inference.py`` for the measured effect):

* :func:`fold_batch_norms` -- each eval-mode BatchNorm folded into the convolution before it;
* :func:`fuse_pointwise` -- on the CPU, each convolution followed by a ReLU, and each residual
  addition (+ ReLU) of the ResNet blocks, runs as one oneDNN convolution with post-ops, and a
  convolution over a concatenation ``conv(cat(a, b))`` runs as ``conv_b(b) + conv_a(a)``
  (weights split by input channels) so the concatenated tensor is never written -- the
  decoders' U-Net shortcuts and PPM connections are such concatenations (Fig. 2);
* :func:`keep_large_allocations_on_heap` -- glibc otherwise maps every tensor above 32 MB
  (a 64-channel 400 x 400 feature map is 41 MB) freshly from the kernel and faults in its
  pages on every forward pass.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import platform

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["fold_batch_norms", "fuse_pointwise", "FusedConv2d", "keep_large_allocations_on_heap", "PACKED_SHAPES"]

PACKED_SHAPES = 8
"""Input shapes per convolution whose packed weights are kept (an image's glance and focus passes, a few image sizes)."""


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Eval-mode copy of ``model`` with each ``Conv2d -> BatchNorm2d`` pair folded.

    Covers the pairs inside a Sequential and the ``conv{k} -> bn{k}`` / ``downsample`` pairs of
    ResNet blocks. Shared modules stay shared (the copy is a ``deepcopy``); a folded batch norm
    becomes ``nn.Identity`` so module indices, and thus the module tree, are unchanged.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():  # each shared module once
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and isinstance(module, nn.Sequential):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
        for name in ("conv1", "conv2", "conv3"):  # ResNet blocks: conv{k} -> bn{k}
            conv, bn = getattr(module, name, None), getattr(module, "bn" + name[-1], None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, name, fuse_conv_bn_eval(conv, bn))
                setattr(module, "bn" + name[-1], nn.Identity())
    return folded


class FusedConv2d(nn.Module):
    """A ``Conv2d`` (BN already folded) with an optional ReLU, run as one oneDNN primitive.

    ``forward(x, residual=None)`` computes ``relu?(conv(x) + residual)``. ``x`` may be a tuple
    of tensors standing for their channel concatenation: the weight is split accordingly and the
    partial convolutions are chained through oneDNN's binary-add post-op. Off the fast path
    (CUDA, MPS, non-float32, autograd) it falls back to ``F.conv2d`` with identical semantics.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("FusedConv2d needs explicit zero padding")
        self.weight = nn.Parameter(conv.weight.detach(), requires_grad=False)  # the folded copy's own tensors
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.relu = relu
        self.geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self._splits: dict = {}

    def forward(self, x, residual: torch.Tensor | None = None) -> torch.Tensor:
        parts = x if isinstance(x, tuple) else (x,)
        head = parts[0]
        if not _onednn_path(head) or self.geometry[3] != 1:
            return self._reference(parts, residual)
        padding, stride, dilation, groups = self.geometry
        weights = self._packed_weights(parts)
        y = residual
        for i, (part, weight) in enumerate(zip(parts, weights)):
            last = i == len(parts) - 1
            attr = "relu" if (last and self.relu) else "none"
            bias = self.bias if i == 0 else None
            if y is None:
                y = torch.ops.mkldnn._convolution_pointwise(part, weight, bias, padding, stride, dilation, groups,
                                                            attr, [], "")
            else:  # the binary form wants no unary post-op as None, not "none"
                y = torch.ops.mkldnn._convolution_pointwise.binary(part, y, weight, bias, padding, stride, dilation,
                                                                   groups, "add", 1.0, attr if attr != "none" else None,
                                                                   [], "")
        return y

    def _reference(self, parts: tuple, residual) -> torch.Tensor:
        x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
        padding, stride, dilation, groups = self.geometry
        y = F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups)
        if residual is not None:
            y = y + residual
        return F.relu(y) if self.relu else y

    def _packed_weights(self, parts: tuple) -> tuple:
        """The weight split by ``parts``' channels and reordered into oneDNN's blocked layout for
        these input shapes, kept for the last :data:`PACKED_SHAPES` shapes seen: a weight packed
        for one input size runs 4x slower at another (the hybrid test makes passes of two sizes)."""
        shapes = tuple(tuple(p.shape) for p in parts)
        packed = self._splits.setdefault("packed", {})
        if shapes in packed:
            packed[shapes] = packed.pop(shapes)  # most recently used last
        else:
            padding, stride, dilation, groups = self.geometry
            channels = tuple(s[1] for s in shapes)
            packed[shapes] = tuple(
                torch.ops.mkldnn._reorder_convolution_weight(w, padding, stride, dilation, groups, list(s))
                for w, s in zip(self._split_weight(channels), shapes))
            while len(packed) > PACKED_SHAPES:
                packed.pop(next(iter(packed)))
        return packed[shapes]

    def _split_weight(self, channels: tuple) -> tuple:
        if channels not in self._splits:
            if sum(channels) != self.weight.shape[1]:
                raise ValueError(f"inputs with {channels} channels do not add up to the convolution's "
                                 f"{self.weight.shape[1]} input channels")
            self._splits[channels] = tuple(w.contiguous() for w in torch.split(self.weight, list(channels), 1))
        return self._splits[channels]


class _FusedResidual(nn.Module):
    """A torchvision ``BasicBlock``/``Bottleneck`` (BNs folded) with every ReLU and the residual
    addition fused into its convolutions (He et al., 2016: ``relu(F(x) + shortcut(x))``)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        convs = [getattr(block, n) for n in ("conv1", "conv2", "conv3") if hasattr(block, n)]
        self.convs = nn.ModuleList(FusedConv2d(c, relu=True) for c in convs)
        self.downsample = block.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        for conv in self.convs[:-1]:
            x = conv(x)
        return self.convs[-1](x, residual=shortcut)


def fuse_pointwise(model: nn.Module) -> nn.Module:
    """In place: replace BN-folded ``Conv2d [-> Identity]* -> ReLU`` runs inside Sequentials, every
    remaining decoder ``Conv2d`` of a Sequential, and ResNet blocks by fused equivalents
    (:class:`FusedConv2d`). Call after :func:`fold_batch_norms`; returns ``model``.

    A GFM fused this way also takes its concatenations lazily (``model._join`` returns the parts),
    since every decoder block it feeds starts with a :class:`FusedConv2d`.
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (BasicBlock, Bottleneck)) and _folded(child):
                setattr(module, name, _FusedResidual(child))
        if not isinstance(module, nn.Sequential):
            continue
        kids = list(module.named_children())
        for i, (name, child) in enumerate(kids):
            if type(child) is not nn.Conv2d or child.padding_mode != "zeros" or isinstance(child.padding, str):
                continue
            j = i + 1
            while j < len(kids) and isinstance(kids[j][1], nn.Identity):
                j += 1
            if j < len(kids) and isinstance(kids[j][1], nn.BatchNorm2d):
                continue  # not folded (e.g. a pre-activation layout): leave it
            relu = j < len(kids) and isinstance(kids[j][1], nn.ReLU)
            setattr(module, name, FusedConv2d(child, relu))
            if relu:
                setattr(module, kids[j][0], nn.Identity())
    if hasattr(model, "_join") and _decoders_take_parts(model):
        model._join = _parts  # an instance attribute shadows GFM._join
    return model


def _parts(*parts: torch.Tensor):
    return parts if len(parts) > 1 else parts[0]


def _decoders_take_parts(model: nn.Module) -> bool:
    blocks = [m for n, m in model.named_children() if n.startswith("decoder")]
    return bool(blocks) and all(isinstance(b, nn.Sequential) and isinstance(b[0], FusedConv2d) for b in blocks)


def _folded(block: nn.Module) -> bool:
    return all(not isinstance(getattr(block, f"bn{k}", None), nn.BatchNorm2d) for k in (1, 2, 3)) and (
        block.downsample is None or not any(isinstance(m, nn.BatchNorm2d) for m in block.downsample))


def _onednn_path(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and _has_fused_ops()
            and not (torch.is_grad_enabled() and x.requires_grad) and not torch.is_autocast_enabled("cpu"))


@functools.cache
def _has_fused_ops() -> bool:
    """oneDNN's fused convolution ops (PyTorch's private ``mkldnn::_convolution_pointwise``) exist."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise.binary
        torch.ops.mkldnn._reorder_convolution_weight
    except (AttributeError, RuntimeError):
        return False
    return True


_heap_kept = False


def keep_large_allocations_on_heap() -> bool:
    """Make glibc serve large blocks from the heap and keep freed memory for reuse (process-wide).

    PyTorch frees and re-allocates every activation on each forward pass; by default glibc
    ``mmap``s blocks above 32 MB and returns them to the kernel on ``free``, so each pass pays
    the page faults (and kernel zeroing) of all its large feature maps again -- about a third of
    GFM's time at 800 x 800 on two cores. The same effect the PyTorch CPU tuning guides get from
    jemalloc/tcmalloc, without an ``LD_PRELOAD``. Costs: the process keeps its peak memory.
    Returns whether the setting is in effect (glibc only; elsewhere a no-op).
    """
    global _heap_kept
    if _heap_kept:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    _heap_kept = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    return _heap_kept
