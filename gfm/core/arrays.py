"""Array helpers every stage shares: 8-bit <-> [0, 1] conversions and the boundary close-up window."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["to01", "to_uint8", "boundary_window"]


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


def boundary_window(alpha: np.ndarray, size: int = 96) -> tuple[int, int, int]:
    """Top-left corner and side of the ``size``-square crop holding most transition pixels.

    Transition pixels are ``0 < alpha < 1`` (the fine details where composition artifacts show,
    Fig. 3); a matte without any falls back to the ``alpha ≥ 0.5`` contour, then to the centre.
    The side is clipped to the image.
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H×W, got shape {alpha.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    h, w = alpha.shape
    size = int(min(size, h, w))
    a = alpha.astype(np.float32) / (255.0 if alpha.dtype == np.uint8 else 1.0)
    weight = ((a > 0) & (a < 1)).astype(np.float32)
    if not weight.any():
        solid = (a >= 0.5).astype(np.uint8)
        weight = (cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0).astype(np.float32)
    if not weight.any():
        return (h - size) // 2, (w - size) // 2, size
    counts = cv2.boxFilter(weight, -1, (size, size), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    counts = counts[: h - size + 1, : w - size + 1]
    y0, x0 = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(y0), int(x0), size
