"""GFM network: construction, shapes, parameter counts and parity with the official model.

The parity fixtures (``tests/fixtures/official_gfm_*``) were recorded by running the official
``core/gfm.py`` (JizhiziLi/GFM, commit in the JSON) in /tmp with weights made by
:func:`seeded_state_dict` below over the official key list, on the input made by
:func:`seeded_input`; the tests rebuild the same weights and input, load them with
:func:`gfm.model.load_official` and compare.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gfm.backbones import list_backbones
from gfm.model import (GFM, build_gfm, collaborative_matting, count_parameters, image_to_input,
                       load_official, optimise_for_inference)

FIXTURES = Path(__file__).parent / "fixtures"
PAPER_BACKBONES = ("r34", "r34_2b", "d121", "r101")


# --------------------------------------------------------------------------------------------
# The recipe shared with the fixture recorder
# --------------------------------------------------------------------------------------------

def seeded_state_dict(keys, seed: int = 0, gain: float = 0.8) -> dict:
    """Deterministic weights over a key list ``[[name, shape, dtype, alias_of_or_None], ...]``.

    Each tensor comes from its own generator seeded by ``seed`` and the CRC32 of its name;
    conv/linear weights ~ N(0, gain^2 / fan_in), biases ~ N(0, 0.01), BN weights ~ N(1, 0.01),
    running means ~ N(0, 0.01), running variances ~ U(0.5, 1.5). Aliases (one tensor stored under
    two names, as the official checkpoints do for the backbone) get the same tensor.
    """
    out = {}
    for name, shape, _dtype, alias in keys:
        if alias is not None:
            out[name] = out[alias]
            continue
        g = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(name.encode()))
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            t = torch.zeros(shape, dtype=torch.long)
        elif leaf == "running_mean":
            t = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif leaf == "bias":
            t = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g) * (gain / math.sqrt(math.prod(shape[1:])))
        out[name] = t
    return out


def seeded_input(seed: int = 0, size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size RGB float in [0, 255], as the official code feeds the network."""
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255.0


def tensor_sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


def state_checksum(state: dict) -> float:
    return float(sum(v.double().sum() for v in state.values()))


def probe(t: torch.Tensor, step: int = 4, offset: int = 1) -> np.ndarray:
    """The values kept in the fixture: a strided sub-grid of a N x C x H x W tensor."""
    return t[:, :, offset::step, offset::step].detach().float().numpy()


def summary(t: torch.Tensor) -> np.ndarray:
    """Whole-tensor statistics per channel: mean, std, min, max (float64)."""
    x = t.detach().double()
    dims = (0, 2, 3)
    return torch.stack([x.mean(dims), x.std(dims), x.amin(dims), x.amax(dims)], 1).numpy()
