"""Reading a PyTorch file safely: ``torch.load(weights_only=True)``, every refusal made one line.

The two readers of ``.pt``/``.pth`` files -- run folders and released checkpoints
(:mod:`gfm.model.checkpoint`) and pretrained backbone weights (:mod:`gfm.model.backbones`) -- read
through :func:`load_weights_only`. A pickle that would call anything that is not plain data (a
``__reduce__`` payload, a pickled class) is refused by torch's weights-only unpickler before any of
it runs. torch's own words for that (a multi-line message advising ``weights_only=False``) are
turned into an :class:`UnreadableFile` saying which of three things went wrong; each reader words
it as its own error, naming the file.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["REFUSED", "FOREIGN", "DAMAGED", "UnreadableFile", "load_weights_only"]

#: :attr:`UnreadableFile.kind`: the pickle would call ``detail``, which is not plain data.
REFUSED = "refused"
#: :attr:`UnreadableFile.kind`: a pickle torch does not read (another format, corrupt); ``detail`` is torch's reason.
FOREIGN = "foreign"
#: :attr:`UnreadableFile.kind`: not readable at all (truncated, damaged); ``detail`` is the first line of the error.
DAMAGED = "damaged"


class UnreadableFile(Exception):
    """``torch.load(weights_only=True)`` did not read a file: ``kind`` (:data:`REFUSED`,
    :data:`FOREIGN` or :data:`DAMAGED`) and ``detail`` (the refused callable, or torch's reason)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


def load_weights_only(path: Path, map_location="cpu", *, allowed: Sequence = (), reraise: tuple = ()):
    """``torch.load(path, map_location=map_location, weights_only=True)``; a file it does not read is an
    :class:`UnreadableFile` (raised ``from None``: torch's advice to load unsafely is not passed on).

    Parameters
    ----------
    path : Path
        The file.
    map_location
        Where tensors go (``torch.load``'s argument).
    allowed : sequence
        Globals allow-listed for this read only (``torch.serialization.safe_globals``, never
        process-wide).
    reraise : tuple of exception types
        Errors raised as they are instead (e.g. ``(OSError,)``: a file that cannot be opened).
    """
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(allowed)):
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused:
            raise UnreadableFile(REFUSED, refused.group(1)) from None
        reason = _UNPICKLER_REASON.search(str(error))
        raise UnreadableFile(FOREIGN, reason.group(1) if reason else type(error).__name__) from None
    except reraise:
        raise
    except Exception as error:  # torch's readers raise many types for a foreign or damaged file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableFile(DAMAGED, first) from None


# What torch.load(weights_only=True) says of a refused callable and of a foreign pickle
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
_UNPICKLER_REASON = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|$)", re.S)
