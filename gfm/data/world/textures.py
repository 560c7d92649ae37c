"""Procedural textures of the embedded world: multi-octave noise and three CC0 photographs.

The CC0 photographs are grayscale texture crops that ship inside scikit-image's ``data``
folder (no download): ``grass``, ``gravel`` and ``brick``. Their licences, as stated in the
docstrings of :func:`skimage.data.grass`, :func:`skimage.data.gravel` and
:func:`skimage.data.brick`, are recorded in :data:`TEXTURE_LICENCES` and copied into
``world.json``. They are only tinted, scaled, mirrored and cropped here.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

#: The photographic textures used and their licences (copied into world.json).
TEXTURE_LICENCES = {
    "grass": {
        "source": "scikit-image data/grass.png (skimage.data.grass)",
        "origin": "https://www.deviantart.com/linolafett/art/Grass-01-434853879",
        "licence": "CC0 1.0 (Creative Commons Zero)",
    },
    "gravel": {
        "source": "scikit-image data/gravel.png (skimage.data.gravel)",
        "origin": "https://cc0textures.com/view.php?tex=Gravel04",
        "licence": "CC0 1.0 (Creative Commons Zero)",
    },
    "brick": {
        "source": "scikit-image data/brick.png (skimage.data.brick)",
        "origin": "https://cc0textures.com/view.php?tex=Bricks25",
        "licence": "CC0 1.0 (Creative Commons Zero)",
    },
}


def fractal_noise(rng: np.random.Generator, height: int, width: int, *, cells: float = 4.0,
                  octaves: int = 5, persistence: float = 0.5, aspect: float = 1.0) -> np.ndarray:
    """Multi-octave value noise, zero mean and unit standard deviation (float32 H×W).

    Parameters
    ----------
    cells : number of noise cells across the longer side at the coarsest octave.
    octaves : number of octaves; each doubles the frequency.
    persistence : amplitude ratio between successive octaves.
    aspect : stretch of the cells along x (> 1 gives horizontal streaks).
    """
    finest = cells * 2 ** (octaves - 1)
    longest = max(height, width)
    target = int(8 * finest) + 16
    if longest > 1.5 * target:  # smooth noise: synthesise small, then upsample (same spectrum)
        f = target / longest
        small = fractal_noise(rng, max(2, int(height * f)), max(2, int(width * f)),
                              cells=cells, octaves=octaves, persistence=persistence, aspect=aspect)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    out = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = cells * 2 ** octave
        gh = max(2, int(np.ceil(n * height / longest)) + 2)
        gw = max(2, int(np.ceil(n * width / longest / aspect)) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        # Oversized grid cropped at a random offset, so the cell lattice is not aligned to the frame.
        big = cv2.resize(grid, (int(width * gw / (gw - 2)) + 2, int(height * gh / (gh - 2)) + 2),
                         interpolation=cv2.INTER_CUBIC)
        y0 = int(rng.integers(0, big.shape[0] - height + 1))
        x0 = int(rng.integers(0, big.shape[1] - width + 1))
        out += amplitude * big[y0:y0 + height, x0:x0 + width]
        amplitude *= persistence
    out -= out.mean()
    std = out.std()
    return out / std if std > 0 else out


def photo_texture(rng: np.random.Generator, name: str, height: int, width: int, *,
                  scale: float = 1.0) -> np.ndarray:
    """A crop of one CC0 texture (``grass`` | ``gravel`` | ``brick``), float32 H×W in [0, 1].

    The 512×512 source is mirror-tiled, resized by ``scale`` (pixels of output per source pixel),
    randomly flipped/transposed and cropped at a random offset.
    """
    source = _texture_source(name)
    if rng.random() < 0.5:
        source = source[:, ::-1]
    if name != "brick" and rng.random() < 0.5:
        source = source.T
    need_h = int(np.ceil(height / scale)) + 2
    need_w = int(np.ceil(width / scale)) + 2
    y0 = int(rng.integers(0, 2 * source.shape[0]))
    x0 = int(rng.integers(0, 2 * source.shape[1]))
    crop = source[np.ix_(_mirror_index(y0, need_h, source.shape[0]), _mirror_index(x0, need_w, source.shape[1]))]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    out = cv2.resize(crop, (int(round(need_w * scale)), int(round(need_h * scale))), interpolation=interp)
    return np.clip(out[:height, :width], 0.0, 1.0)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 (x <= edge0) to 1 (x >= edge1)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def tint(gray: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Map a [0, 1] gray image onto the colour ramp ``dark`` → ``light`` (H×W×3 float32)."""
    dark = np.asarray(dark, np.float32)
    light = np.asarray(light, np.float32)
    return (dark + gray[..., None] * (light - dark)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _texture_source(name: str) -> np.ndarray:
    if name not in TEXTURE_LICENCES:
        raise ValueError(f"texture name must be one of {sorted(TEXTURE_LICENCES)}, got {name!r}")
    import skimage.data

    image = getattr(skimage.data, name)().astype(np.float32) / 255.0
    image.setflags(write=False)
    return image


def _mirror_index(start: int, count: int, n: int) -> np.ndarray:
    """Indices ``start .. start+count-1`` into a mirror-repeated axis of length ``n``."""
    m = (start + np.arange(count)) % (2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)
