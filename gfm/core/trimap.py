"""RoSTa targets from a ground-truth alpha matte (paper, Sect. "RoSTa": GFM-TT / GFM-FT / GFM-BT).

* TT — 3-class trimap: dilation of ``alpha > 0`` and erosion of ``alpha == 1`` with an elliptical
  kernel (paper: size 25); also how the validation trimaps are made.
* FT — 2-class foreground mask: erosion of ``alpha == 1`` (paper: size 50).
* BT — 2-class background-complement mask: dilation of ``alpha > 0`` (paper: size 50).

All functions take a uint8 (0–255) or float (0–1) H×W matte and return uint8 maps with values
0 / 128 / 255 (trimap) or 0 / 255 (masks), matching the official code's conventions.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Trimap values, as stored on disk by AM-2k and the official code.
BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255


def trimap(alpha: np.ndarray, kernel_size: int = 25) -> np.ndarray:
    """3-class trimap (0 / 128 / 255) by dilation and erosion with an elliptical kernel (GFM-TT)."""
    fg_or_unknown, fg = _support(alpha)
    kernel = _ellipse(kernel_size)
    dilated = cv2.dilate(fg_or_unknown, kernel)
    eroded = cv2.erode(fg, kernel)
    out = np.full(alpha.shape[:2], BACKGROUND, np.uint8)
    out[dilated > 0] = UNKNOWN
    out[eroded > 0] = FOREGROUND
    return out


def erosion_mask(alpha: np.ndarray, kernel_size: int = 50) -> np.ndarray:
    """Foreground mask (0 / 255): erosion of ``alpha == 1`` (GFM-FT glance target)."""
    return cv2.erode(_support(alpha)[1], _ellipse(kernel_size)) * np.uint8(255)


def dilation_mask(alpha: np.ndarray, kernel_size: int = 50) -> np.ndarray:
    """Foreground-or-transition mask (0 / 255): dilation of ``alpha > 0`` (GFM-BT glance target)."""
    return cv2.dilate(_support(alpha)[0], _ellipse(kernel_size)) * np.uint8(255)


def _support(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H×W, got shape {alpha.shape}")
    full = 255 if alpha.dtype == np.uint8 else 1.0
    return (alpha != 0).astype(np.uint8), (alpha == full).astype(np.uint8)


def _ellipse(kernel_size: int) -> np.ndarray:
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
