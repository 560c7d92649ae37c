"""Composition routes of the COMP-Track: plain alpha blending and RSSN (Sect. 4, Pipeline 1).

A composite is ``I = alpha F + (1 - alpha) B`` (Eq. 1): a foreground F with its matte alpha pasted
onto a background B. The routes of the paper's COMP-Track (Sect. 5.1) and Table 4:

``coco``
    COMP-COCO: plain alpha blending onto COCO backgrounds (low resolution, salient objects).
``bg20k``
    COMP-BG20K: plain alpha blending onto BG-20k backgrounds.
``rssn``
    COMP-RSSN, Pipeline 1 on BG-20k: with probability 0.5 use the denoised F and B (BM3D),
    with probability 0.5 blur B with an averaging filter of a kernel drawn from {20, ..., 60},
    blend by Eq. 1, with probability 0.5 add Gaussian noise (sigma 10) to the composite.
``rssn_blur``, ``rssn_denoise``, ``rssn_noise``
    Table 4's ablations: RSSN with only that technique switched on.

Every route pastes each foreground onto K = 5 backgrounds sampled without replacement (the
paper: "five background images ... for each foreground"; the plain routes too); the training sets
are written by :mod:`gfm.compose.build`, and :mod:`gfm.compose.inspect` shows single composites
made by the same :func:`compose_layers`.

Where this differs from the official code (``generate_composite_rssn``), on purpose:

* B is resized to F's size by OpenCV (area averaging when shrinking, bilinear otherwise)
  instead of ``skimage.transform.resize`` (bilinear after a Gaussian anti-aliasing filter); both
  stretch the whole background to F's height and width (aspect ratio not kept), as the official
  code does; ``mode="cover"`` keeps the aspect ratio and crops the centre instead.
* B stays 8-bit after resizing and blurring, so the stored ``bg`` file is exactly the B of
  Eq. (1) (the composition loss needs it).
* The composite is rounded to 8 bits, not truncated (truncation darkens it by 0.5 level).
* The noise is rounded to integers and the noisy composite clipped to [0, 255]; the official
  ``np.uint8(img + gauss)`` wraps negative values around to bright pixels.

As in the official code, one draw decides the denoising of F and B together, and the noise
added to the composite is added to the stored F and B too, so that Eq. (1) still holds for the
stored triplet (up to clipping).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from gfm.compose.denoise import denoise
from gfm.core.arrays import to01, to_uint8

PAPER_BLUR_KERNELS = (20, 30, 40, 50, 60)
RESIZE_MODES = ("stretch", "cover")


@dataclass(frozen=True)
class RSSNConfig:
    """The knobs of one composition route (Pipeline 1); defaults are the paper's.

    Parameters
    ----------
    k : int
        Backgrounds sampled per foreground (paper: K = 5).
    p_denoise : float
        Probability of using the denoised F and B (paper: 0.5, BM3D).
    p_blur : float
        Probability of blurring B with an averaging filter (paper: 0.5).
    blur_kernels : tuple of int
        Averaging-filter sizes to draw from (paper: 20, 30, 40, 50, 60 at ~1080 px; see
        :func:`scale_kernels` for smaller images).
    p_noise : float
        Probability of adding Gaussian noise to the composite (paper: 0.5).
    noise_sigma : float
        Standard deviation of that noise in 8-bit levels (paper: 10).
    use_denoise, use_blur, use_noise : bool
        Switches of the three techniques (all on for RSSN, one on for Table 4's ablations,
        all off for plain alpha blending).
    resize_mode : str
        How B is fitted to F's size: ``"stretch"`` (official) or ``"cover"``; see :func:`resize_to`.
    """

    k: int = 5
    p_denoise: float = 0.5
    p_blur: float = 0.5
    blur_kernels: tuple[int, ...] = PAPER_BLUR_KERNELS
    p_noise: float = 0.5
    noise_sigma: float = 10.0
    use_denoise: bool = True
    use_blur: bool = True
    use_noise: bool = True
    resize_mode: str = "stretch"

    def __post_init__(self):
        object.__setattr__(self, "blur_kernels", tuple(int(k) for k in self.blur_kernels))
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        for name in ("p_denoise", "p_blur", "p_noise"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if not self.blur_kernels or min(self.blur_kernels) < 1:
            raise ValueError(f"blur_kernels must be a non-empty set of sizes >= 1, got {self.blur_kernels}")
        if self.noise_sigma < 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")

    def replace(self, **changes) -> "RSSNConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "blur_kernels": list(self.blur_kernels)}


_PLAIN = RSSNConfig(use_denoise=False, use_blur=False, use_noise=False)

ROUTES: dict[str, RSSNConfig] = {
    "coco": _PLAIN,
    "bg20k": _PLAIN,
    "rssn": RSSNConfig(),
    "rssn_blur": RSSNConfig(use_denoise=False, use_noise=False),
    "rssn_denoise": RSSNConfig(use_blur=False, use_noise=False),
    "rssn_noise": RSSNConfig(use_denoise=False, use_blur=False),
}
"""Route name -> configuration (paper defaults). The switches define the route."""

ROUTE_BACKGROUNDS = {"coco": "coco", "bg20k": "bg20k", "rssn": "bg20k", "rssn_blur": "bg20k",
                     "rssn_denoise": "bg20k", "rssn_noise": "bg20k"}
"""Route name -> the background set it samples from (COCO or BG-20k's training split)."""


def route_config(route: str, **overrides) -> RSSNConfig:
    """The configuration of ``route`` with some knobs overridden (e.g. scaled ``blur_kernels``).

    The route's switches (``use_*``) are kept; only knobs given in ``overrides`` change.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {tuple(ROUTES)}, got {route!r}")
    return ROUTES[route].replace(**overrides)


def scale_kernels(kernels, short_side: int, reference: int = 1080) -> tuple[int, ...]:
    """Blur-kernel sizes scaled from the paper's ~1080 px images to images of ``short_side`` px.

    ``scale_kernels((20, 30, 40, 50, 60), 360)`` gives ``(7, 10, 13, 17, 20)``; sizes stay >= 1.
    """
    if short_side <= 0 or reference <= 0:
        raise ValueError(f"short_side and reference must be > 0, got {short_side}, {reference}")
    return tuple(max(1, int(round(int(k) * short_side / reference))) for k in kernels)


def blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha blending, Eq. (1): ``I = alpha F + (1 - alpha) B``.

    Parameters
    ----------
    fg, bg : ndarray
        RGB H×W×3 (or H×W), uint8 or float in [0, 1], same size.
    alpha : ndarray
        H×W (or H×W×1), uint8 or float in [0, 1].

    Returns
    -------
    ndarray
        float32 in [0, 1], the shape of ``fg``.
    """
    f, b, a = to01(fg, "fg", clip=False), to01(bg, "bg", clip=False), to01(alpha, "alpha", clip=False)
    if a.ndim == 3:
        a = a[..., 0]
    if f.shape != b.shape or f.shape[:2] != a.shape:
        raise ValueError(f"fg {f.shape}, bg {b.shape} and alpha {a.shape} must share H×W (and fg, bg their channels)")
    if f.ndim == 3:
        a = a[..., None]
    return b + a * (f - b)


def average_blur(image: np.ndarray, kernel: int) -> np.ndarray:
    """The averaging filter of the sharpness step (Sect. 4.2): ``cv2.blur`` with a kernel×kernel box.

    Borders are reflected (OpenCV's default ``BORDER_REFLECT_101``); the dtype is kept (uint8
    results are rounded). ``kernel`` 1 returns a copy.
    """
    kernel = int(kernel)
    if kernel < 1:
        raise ValueError(f"kernel must be >= 1, got {kernel}")
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.float32):
        image = image.astype(np.float32)
    return cv2.blur(image, (kernel, kernel)) if kernel > 1 else image.copy()


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``sigma`` 8-bit levels (the noise step of Sect. 4.3).

    A uint8 image gets the noise rounded to integers and is clipped to [0, 255]; a float image
    (in [0, 1]) gets ``sigma / 255`` and is clipped to [0, 1] (float32). The noise field is a
    function of ``rng`` (one seed drawn from it; see :func:`_noise_field`).
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return _add_noise_u8(image, _noise_field(image.shape, sigma, rng))
    noise = _noise_field(image.shape, sigma / 255.0, rng, np.float32)
    return np.clip(to01(image, "image", clip=False) + noise, 0.0, 1.0)


def resize_to(bg: np.ndarray, shape, mode: str = "stretch") -> np.ndarray:
    """Fit a background to the foreground's size (``shape`` = (H, W) or (H, W, C)).

    ``"stretch"`` resizes the whole background to H×W, ignoring its aspect ratio, as the
    official code does (``skimage.transform.resize(bg, fg.shape)``); ``"cover"`` scales it, keeping
    the aspect ratio, until it covers H×W and crops the centre. Interpolation: area averaging when
    shrinking both sides, bilinear otherwise (a low-resolution COCO background therefore looks
    soft: the resolution discrepancy of Sect. 4.1). The dtype is kept (uint8 or float32).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}, got {mode!r}")
    height, width = int(shape[0]), int(shape[1])
    if height < 1 or width < 1:
        raise ValueError(f"shape must be positive (H, W), got {tuple(shape)}")
    bg = np.asarray(bg)
    if bg.dtype not in (np.uint8, np.float32):
        bg = bg.astype(np.float32)
    h0, w0 = bg.shape[:2]
    if mode == "cover":
        scale = max(height / h0, width / w0)
        th, tw = max(height, int(round(h0 * scale))), max(width, int(round(w0 * scale)))
    else:
        th, tw = height, width
    if (th, tw) == (h0, w0):
        out = bg.copy()
    else:
        shrink = th <= h0 and tw <= w0
        out = cv2.resize(bg, (tw, th), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if bg.ndim == 3 and out.ndim == 2:
            out = out[..., None]
    y0, x0 = (th - height) // 2, (tw - width) // 2
    return np.ascontiguousarray(out[y0:y0 + height, x0:x0 + width])


class Composite(NamedTuple):
    """One composite and the exact layers of Eq. (1) that produced it (all uint8)."""

    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    record: dict


def draw(config: RSSNConfig, rng: np.random.Generator) -> dict:
    """The random decisions of one composite (Pipeline 1), in a fixed draw order.

    Four variates are drawn whatever the switches, so that routes sharing a seed share their
    decisions (a ``rssn_blur`` composite is blurred exactly when the ``rssn`` one is):
    ``u_denoise``, ``u_blur``, the kernel index, ``u_noise``. A step fires when its switch is on
    and its variate is below its probability. The noise field's seed is drawn after them
    (:func:`compose`), only when the noise step fires.
    """
    u_denoise, u_blur = rng.random(), rng.random()
    kernel_index = int(rng.integers(len(config.blur_kernels)))
    u_noise = rng.random()
    blur = bool(config.use_blur and u_blur < config.p_blur)
    noise = bool(config.use_noise and u_noise < config.p_noise and config.noise_sigma > 0)
    return {
        "denoise": bool(config.use_denoise and u_denoise < config.p_denoise),
        "blur": blur,
        "kernel": int(config.blur_kernels[kernel_index]) if blur else 0,
        "noise": noise,
        "sigma": float(config.noise_sigma) if noise else 0.0,
    }


def peek(config: RSSNConfig, rng: np.random.Generator) -> dict:
    """The decisions :func:`compose` will :func:`draw` from ``rng`` next, ``rng`` left as it is.

    On-the-fly composition (:mod:`gfm.compose.online`) reads the cached denoised F and B only
    for the composites that use them.
    """
    return draw(config, copy.deepcopy(rng))


def compose(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, config: RSSNConfig,
            rng: np.random.Generator, *, fg_denoised: np.ndarray | None = None,
            bg_denoised: np.ndarray | None = None, denoiser: str = "nlm"):
    """One composite by Pipeline 1 (or plain alpha blending when the switches are off).

    Steps: decisions (:func:`draw`); if denoise fires, F and B are replaced by their denoised
    versions (computed with ``denoiser`` when not given: pass cached ones, BM3D is slow);
    B is fitted to F's size (:func:`resize_to`); if blur fires, B is averaged with the drawn
    kernel (:func:`average_blur`); Eq. (1) (:func:`blend`), rounded to 8 bits; if noise fires,
    Gaussian noise of ``noise_sigma`` is added to the composite (and to F and B). Deterministic
    given ``rng``.

    Parameters
    ----------
    fg : ndarray
        Foreground colours F, RGB H×W×3, uint8 or float in [0, 1].
    alpha : ndarray
        Matte H×W, uint8 or float in [0, 1].
    bg : ndarray
        Background, RGB of any size, uint8 or float in [0, 1].
    config : RSSNConfig
        The route's knobs (:data:`ROUTES`).
    rng : numpy.random.Generator
        Source of every random decision.
    fg_denoised, bg_denoised : ndarray, optional
        Denoised F (same size as ``fg``) and B (same size as ``bg``).
    denoiser : str
        :func:`gfm.compose.denoise.denoise` method used when a denoised layer is needed but not given.

    Returns
    -------
    image : ndarray
        The composite, RGB uint8 H×W×3.
    record : dict
        ``denoise``, ``blur``, ``kernel`` (0 if no blur), ``noise``, ``sigma`` (0 if no noise),
        ``denoised_by`` ("given", the on-the-fly method, or "" when not denoised).
    """
    result = compose_layers(fg, alpha, bg, config, rng, fg_denoised=fg_denoised,
                            bg_denoised=bg_denoised, denoiser=denoiser)
    return result.image, result.record


def compose_layers(fg, alpha, bg, config: RSSNConfig, rng: np.random.Generator, *,
                   fg_denoised=None, bg_denoised=None, denoiser: str = "nlm") -> Composite:
    """:func:`compose`, also returning the uint8 alpha, F and B of Eq. (1) (a :class:`Composite`)."""
    f = to_uint8(fg, "fg")
    fg_shape = f.shape
    a = to_uint8(alpha, "alpha")
    b = to_uint8(bg, "bg")
    if a.ndim == 3:
        a = a[..., 0]
    if f.ndim != 3 or f.shape[2] != 3 or b.ndim != 3 or b.shape[2] != 3:
        raise ValueError(f"fg and bg must be RGB H×W×3, got {f.shape} and {b.shape}")
    if a.shape != f.shape[:2]:
        raise ValueError(f"alpha must be H×W of fg's size {f.shape[:2]}, got {a.shape}")
    record = draw(config, rng)
    record["denoised_by"] = ""
    if record["denoise"]:
        given = fg_denoised is not None and bg_denoised is not None
        if fg_denoised is None or bg_denoised is None:
            fg_denoised = denoise(f, denoiser) if fg_denoised is None else fg_denoised
            bg_denoised = denoise(b, denoiser) if bg_denoised is None else bg_denoised
        f, b = to_uint8(fg_denoised, "fg_denoised"), to_uint8(bg_denoised, "bg_denoised")
        if f.shape != fg_shape:
            raise ValueError(f"fg_denoised must have fg's shape {fg_shape}, got {f.shape}")
        record["denoised_by"] = "given" if given else denoiser
    b = resize_to(b, f.shape, mode=config.resize_mode)
    if record["blur"]:
        b = average_blur(b, record["kernel"])
    image = _blend_u8(f, b, a)
    if record["noise"]:
        noise = _noise_field(image.shape, record["sigma"], rng)
        image, f, b = _add_noise_u8(image, noise), _add_noise_u8(f, noise), _add_noise_u8(b, noise)
    return Composite(image=image, alpha=a, fg=f, bg=b, record=record)


def _blend_u8(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Eq. (1) on uint8 layers, rounded to uint8, in exact 16-bit integer arithmetic.

    ``round((a F + (255 - a) B) / 255)``: the numerator plus 127 is at most 65152, and
    ``(t + 1 + (t >> 8)) >> 8`` equals ``t // 255`` for ``t < 65535``. There is no .5 tie (an
    integer over 255 never ends in .5), so this equals the float64 rounding of :func:`blend`.
    """
    a = alpha.astype(np.uint16)[..., None]
    t = a * fg + (255 - a) * bg.astype(np.uint16)
    t += 127
    t += 1 + (t >> 8)
    t >>= 8
    return t.astype(np.uint8)


def _noise_field(shape, sigma: float, rng: np.random.Generator, dtype=np.int16) -> np.ndarray:
    """Zero-mean Gaussian noise of ``sigma``; int16 fields are rounded (OpenCV's saturate_cast).

    The variates come from OpenCV's generator (several times faster than numpy's at 1080p),
    seeded by one integer drawn from ``rng``, so the field is still a function of ``rng``. The
    generator is thread-local, seeded right before use. The array is filled as one channel so
    that every value gets ``sigma``.
    """
    seed = int(rng.integers(1, 2**31))
    field = np.empty((int(shape[0]), int(np.prod(shape[1:], dtype=np.int64))), dtype)
    cv2.setRNGSeed(seed)
    cv2.randn(field, 0.0, float(sigma))
    return field.reshape(shape)


def _add_noise_u8(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``clip(image + noise, 0, 255)`` for a uint8 image and an int16 noise field."""
    return cv2.add(image, noise, dtype=cv2.CV_8U)


