"""Model complexity (Sect. 5.6, "Model Complexity Analysis", Table 7): parameters and MACs.

Table 7 reports GFM(r) at 132.28 GMac on an 800 x 800 image. That figure is reproduced
(132.283 GMac) by the counting conventions of ptflops' module hooks, which :func:`count_macs`
follows by default:

* ``Conv2d``: k_h * k_w * C_in / groups multiply-accumulates per output element, plus one per
  output element for the bias;
* ``Linear``: input elements x output features (+ bias);
* ``BatchNorm2d``: 2 per input element (1 without affine parameters);
* ``ReLU``: 1 per output element;
* pooling modules (max, average, adaptive): 1 per input element;
* ``Upsample`` modules: 1 per output element;
* nothing for functional calls (the PPM's ``F.interpolate``, sigmoids, concatenations,
  residual additions) or for modules of other types (e.g. the SE layer's ``Sigmoid``).

Convolutions alone give 131.81 GMac for GFM(r). Each module is counted once per call even
when it is registered under two names (the backbone layers, see :mod:`gfm.model.backbones`). The
forward pass runs on PyTorch's ``meta`` device, so counting at 800 x 800 costs no arithmetic.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn

__all__ = ["count_macs", "mac_breakdown", "count_parameters", "MAC_CATEGORIES"]

MAC_CATEGORIES = ("conv", "conv_bias", "linear", "batchnorm", "relu", "pooling", "upsample")

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def count_macs(model: nn.Module, input_size: tuple = (800, 800), *,
               categories: tuple = MAC_CATEGORIES, batch_size: int = 1) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on a 3 x H x W input.

    Parameters
    ----------
    model : nn.Module
        Any module taking N x 3 x H x W (e.g. :class:`gfm.model.network.GFM`); not modified.
    input_size : (int, int)
        H, W. The paper's Table 7 uses 800 x 800.
    categories : tuple of str
        Which of :data:`MAC_CATEGORIES` to add up; the default (all) is ptflops' convention
        and reproduces Table 7; ``("conv", "conv_bias")`` counts convolutions only.
    batch_size : int
        N.

    Returns
    -------
    int
    """
    unknown = set(categories) - set(MAC_CATEGORIES)
    if unknown:
        raise ValueError(f"categories: unknown {sorted(unknown)}; expected a subset of {MAC_CATEGORIES}")
    breakdown = mac_breakdown(model, input_size, batch_size=batch_size)
    return sum(breakdown[c] for c in categories)


def mac_breakdown(model: nn.Module, input_size: tuple = (800, 800), *, batch_size: int = 1) -> dict:
    """MACs of one forward pass per category of :data:`MAC_CATEGORIES` (see the module doc)."""
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (H, W) with positive sizes, got {input_size!r}")
    counts: Counter = Counter()

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            per_output = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            counts["conv"] += per_output * output.numel()
            if module.bias is not None:
                counts["conv_bias"] += output.numel()
        elif isinstance(module, nn.Linear):
            counts["linear"] += x.numel() * module.out_features + (output.numel() if module.bias is not None else 0)
        elif isinstance(module, nn.BatchNorm2d):
            counts["batchnorm"] += x.numel() * (2 if module.affine else 1)
        elif isinstance(module, nn.ReLU):
            counts["relu"] += output.numel()
        elif isinstance(module, _POOLS):
            counts["pooling"] += x.numel()
        elif isinstance(module, nn.Upsample):
            counts["upsample"] += output.numel()

    replica = _meta_replica(model).eval()
    handles = [m.register_forward_hook(hook) for m in replica.modules()]  # modules() de-duplicates
    with torch.no_grad():
        replica(torch.empty(batch_size, 3, *input_size, device="meta"))
    for h in handles:
        h.remove()
    return {c: int(counts[c]) for c in MAC_CATEGORIES}


def _meta_replica(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no data copied)."""
    memo = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
            for p in model.parameters()}
    memo.update({id(b): torch.empty_like(b, device="meta") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def count_parameters(model: nn.Module, include_unused_classifier: bool = True) -> int:
    """Number of parameters, each shared tensor counted once (as ``model.parameters()``).

    ``include_unused_classifier=True`` counts what the official model and Table 7 count,
    including the backbone's ImageNet classifier and the other layers the forward pass never
    uses (``GFM.unused_parameter_names()``, e.g. 0.51 M for GFM(r), 1.03 M for GFM(d));
    ``False`` leaves those out.
    """
    total = sum(p.numel() for p in model.parameters())
    unused = getattr(model, "unused_parameter_names", None)
    if include_unused_classifier or unused is None:
        return total
    params = dict(model.named_parameters())
    return total - sum(params[n].numel() for n in unused())
