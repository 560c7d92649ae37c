"""Conversions between 8-bit images and float images in [0, 1], the one place for them."""
from __future__ import annotations

import numpy as np

__all__ = ["to01", "to_uint8"]


def to01(array, name: str = "image", *, clip: bool = True) -> np.ndarray:
    """uint8 (0-255) or float (0-1) -> float32 in [0, 1].

    uint8 is divided by 255; float is clipped to [0, 1] (``clip=False`` keeps it as given, e.g. for
    a hot path whose input is known to be in range). Any other dtype is an error naming ``name``.
    """
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32, copy=False)
        return np.clip(out, 0.0, 1.0) if clip else out
    raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {array.dtype}")


def to_uint8(array, name: str = "image") -> np.ndarray:
    """float in [0, 1] -> uint8 by rounding and clipping; uint8 passes unchanged (contiguous);
    uint16 is rescaled (65535 -> 255, rounded). Any other dtype is an error naming ``name``."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"{name} must be uint8, uint16 or float in [0, 1], got dtype {array.dtype}")
