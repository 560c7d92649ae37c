"""The cameras of the embedded world: how a scene becomes a photograph.

A :class:`Camera` is one photographer's settings. Light is linear (radiance) wherever the physics
is linear; the scene generators author display-referred sRGB values, so each optical step converts
to linear light (:func:`srgb_to_linear`) and back (:func:`linear_to_srgb`). The pipeline, in order:

1. *lens* — :meth:`Camera.defocus_background`: with a shallow depth of field the background plane
   is blurred by the image of the aperture, a **disk** of radius ``defocus`` (geometric optics),
   in linear light (paper, Sect. 4.2 "Sharpness discrepancy"); the subject stays in focus;
2. *illumination* — :meth:`Camera.develop`: exposure and the white-balance error of the shot, in
   linear light, clipped at white (the illumination shared by subject and background);
3. *anti-aliasing filter* — :func:`optical_low_pass`: the sensor's optical low-pass filter over
   the whole frame, matte included (:func:`expose` blurs the premultiplied layers, so the stored
   alpha, F and B are what reaches the sensor and Eq. 1 stays exact);
4. *sensor* — :meth:`Camera.raw`: an RGGB Bayer mosaic of photosites, each counting photoelectrons
   with **Poisson shot noise** plus **Gaussian read noise** (variance ``a·signal + b``: grows with
   the signal, Foi et al. 2008), digitised by a 14-bit ADC and white-balanced;
5. *in-camera processing* — :meth:`Camera.process`: OpenCV's edge-aware **demosaicing**, a
   colour-correction matrix (camera RGB -> sRGB) and the sRGB **tone curve**;
6. *storage* — 8-bit quantisation and ONE **JPEG** encoding of the whole frame (4:2:0 chroma).

The camera against RSSN's augmentations (Sect. 4.2-4.4, :mod:`gfm.compose.rssn`)
----------------------------------------------------------------------------------
The domain-gap check must not favour a composition route by construction, so the world's camera
differs *in kind* from every augmentation RSSN applies to its composites:

=================  ==================================================  ==========================================
effect             world camera ("real" photos)                        RSSN composites
=================  ==================================================  ==========================================
background blur    lens defocus: disk (aperture) kernel, radius        OpenCV averaging (box) filter, kernel
                   2.5-9 px, in linear light, p = 0.5                  20-60 px at 1080 px (7-20 at 360 px),
                                                                       on 8-bit sRGB values, p = 0.5
whole-frame optics optical low-pass filter [1, 2, 1]/4 per axis,       none
                   matte included
noise              Poisson shot + Gaussian read noise per photosite    additive Gaussian, sigma 10 levels, on
                   on the linear raw signal: variance a*signal + b,    8-bit values: independent per pixel and
                   ISO 100-3200, read noise 2-5 e-; red and blue       channel, the same at every level, p = 0.5
                   noisier (white-balance gains)
colour sampling    RGGB Bayer mosaic, edge-aware demosaicing, colour   none (three values per pixel)
                   matrix: noise spatially correlated, period-2
                   variance, anti-correlated across channels
tone               sRGB tone curve after the noise: shadows are        none: noise added after the tone curve
                   noisier in 8-bit levels
denoising          none in camera                                      BM3D (paper) or NLM (``compose.denoiser``)
                                                                       on F and B, p = 0.5
compression        one JPEG of the whole frame, quality 75-95, 4:2:0   none (PNG composites)
illumination       exposure ±0.4 EV and white-balance cast in linear   none (F and B keep their own)
                   light, shared by F and B
=================  ==================================================  ==========================================

:func:`photograph` takes a real photo of an animal in a scene: ``I = alpha*F + (1-alpha)*B`` (Eq. 1)
is formed from the truth as it reaches the sensor (:func:`expose`), and the sensor then adds its
noise, mosaic, processing and JPEG to the whole frame — so F and B share one resolution, one
illumination and one noise realisation. A composite (stage 3) instead mixes an F from one camera
with a B from another. Eq. 1 is formed on display-referred values, as the paper's Eq. 1 and the
AM-2k annotation assume; the sensor inverts the tone curve to get its linear signal, so a noiseless
sensor returns the clean frame up to demosaicing error (about 2-4 levels rms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Photoelectrons at the raw white level at ISO 100: the full-well capacity of a ~4-5 µm CMOS
#: photosite (20-30 ke- for APS-C and full-frame sensors). At ISO s the white level is reached with
#: 100/s of them, so shot noise grows with ISO: at mid grey the processed green channel carries about
#: 1.2 levels (8-bit) of noise at ISO 100 and about 7 at ISO 3200 (RSSN adds 10).
FULL_WELL_ELECTRONS = 20000.0
#: Bit depth of the raw ADC (14 bits in current interchangeable-lens cameras; the quantisation step
#: is then far below the shot noise).
ADC_BITS = 14
#: Raw white-balance multipliers (R, G, B) for daylight: a CMOS sensor under daylight collects about
#: half as much signal in its red and two thirds in its blue photosites as in green (typical as-shot
#: multipliers of raw files, e.g. dcraw/LibRaw), so after white balance red and blue are noisier.
RAW_WB_MULTIPLIERS = (2.0, 1.0, 1.5)
#: Camera RGB -> linear sRGB colour-correction matrix. Rows sum to 1 (white stays white); the
#: diagonal 1.45-1.6 and negative off-diagonals are of the size of published camera matrices (a
#: camera's colour filters overlap, so its raw colours are less saturated than sRGB and the matrix
#: re-saturates them, amplifying and anti-correlating the noise). Its inverse is non-negative, so
#: every sRGB colour is a physical (non-negative) raw signal.
CAMERA_TO_SRGB = ((1.60, -0.45, -0.15),
                  (-0.20, 1.50, -0.30),
                  (0.00, -0.45, 1.45))
#: One axis of the optical low-pass (anti-aliasing) filter: a birefringent plate splitting each ray
#: by one pixel pitch, combined with the pixel aperture and centred. Without it, the world's
#: one-pixel hairs and textures alias into false colour in demosaicing (6-11 levels rms, 2-4 with it).
OLPF_TAPS = (0.25, 0.5, 0.25)
#: Layout of the colour filter array (row-major 2×2 tile): red at (0, 0), blue at (1, 1).
CFA = "RGGB"
DEFOCUS_KINDS = ("disk", "gaussian")


@dataclass(frozen=True)
class Camera:
    """One shot's camera settings (all effects are deterministic given ``seed``).

    Attributes
    ----------
    iso : sensor gain as an ISO speed; the raw white level holds ``FULL_WELL_ELECTRONS * 100 / iso``
        photoelectrons. ``0`` switches shot and read noise off (an ideal sensor, for tests and figures).
    read_noise : standard deviation of the read noise, in electrons.
    jpeg_quality : JPEG quality of the stored photo (OpenCV, 4:2:0 chroma subsampling).
    defocus : radius in pixels of the background blur (0: everything in focus).
    defocus_kind : ``"disk"`` (the lens aperture, the default) or ``"gaussian"``.
    exposure : global gain on linear light (1.26 is +1/3 EV).
    white_balance : per-channel (R, G, B) gains on linear light: the colour cast of the shot.
    resolution : sensor resolution relative to the scene grid (< 1 downsamples before the sensor).
    seed : seed of the noise realisation when no generator is passed.
    """

    iso: float = 400.0
    read_noise: float = 3.0
    jpeg_quality: int = 90
    defocus: float = 0.0
    defocus_kind: str = "disk"
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resolution: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.iso != 0 and self.iso < 25:
            raise ValueError(f"Camera.iso must be 0 (no noise) or >= 25, got {self.iso}")
        if self.read_noise < 0:
            raise ValueError(f"Camera.read_noise must be >= 0 electrons, got {self.read_noise}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"Camera.jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.defocus < 0:
            raise ValueError(f"Camera.defocus must be >= 0, got {self.defocus}")
        if self.defocus_kind not in DEFOCUS_KINDS:
            raise ValueError(f"Camera.defocus_kind must be one of {DEFOCUS_KINDS}, got {self.defocus_kind!r}")
        if not 0 < self.resolution <= 1:
            raise ValueError(f"Camera.resolution must be in (0, 1], got {self.resolution}")

    @property
    def white_level(self) -> float:
        """Photoelectrons at the raw white level (inf for the ideal sensor, ``iso = 0``)."""
        return FULL_WELL_ELECTRONS * 100.0 / self.iso if self.iso else float("inf")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (full precision: ``Camera(**d)`` reproduces the shot)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def defocus_background(self, rgb: np.ndarray) -> np.ndarray:
        """The background plane as seen through the lens: blurred by ``defocus`` in linear light."""
        if self.defocus <= 0:
            return np.asarray(rgb, np.float32).copy()
        return linear_to_srgb(defocus(srgb_to_linear(rgb), self.defocus, kind=self.defocus_kind))

    def develop(self, rgb: np.ndarray) -> np.ndarray:
        """Exposure and white-balance gains on linear light, clipped at white (display values, float32)."""
        gains = np.float32(self.exposure) * np.asarray(self.white_balance, np.float32)
        return linear_to_srgb(srgb_to_linear(rgb) * gains)

    def raw(self, rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The raw Bayer frame of an image on the sensor grid: float32 H×W, white-balanced, in [0, 1].

        The display values are linearised and mapped to camera RGB (the inverse colour matrix); each
        photosite of the :data:`CFA` collects ``signal * white_level / multiplier`` electrons on
        average, counted with Poisson shot noise plus Gaussian read noise (``read_noise``), then
        digitised by the :data:`ADC_BITS` converter and clipped at the white level (Foi et al.,
        "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
        IEEE TIP 2008). The result is scaled by the white-balance multipliers and clipped at 1.
        """
        camera_rgb = np.clip(srgb_to_linear(rgb) @ _SRGB_TO_CAMERA.T, 0.0, 1.0)
        h, w = camera_rgb.shape[:2]
        multipliers = _cfa_plane(h, w, RAW_WB_MULTIPLIERS)
        signal = bayer_mosaic(camera_rgb) / multipliers  # fraction of the white level
        if self.iso:
            rng = rng if rng is not None else np.random.default_rng(self.seed)
            n = np.float32(self.white_level)
            electrons = rng.poisson(signal * n).astype(np.float32)
            electrons += rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(self.read_noise)
            signal = electrons / n
        levels = np.float32(2 ** ADC_BITS - 1)
        digital = np.clip(np.rint(signal * levels), 0, levels) / levels
        return np.minimum(digital * multipliers, 1.0).astype(np.float32)

    def process(self, raw: np.ndarray) -> np.ndarray:
        """In-camera processing of a raw frame: edge-aware demosaicing (OpenCV, 16-bit), the colour
        matrix :data:`CAMERA_TO_SRGB`, clipping and the sRGB tone curve. Float32 H×W×3 in [0, 1]."""
        raw16 = np.rint(np.clip(raw, 0.0, 1.0) * 65535.0).astype(np.uint16)
        camera_rgb = cv2.demosaicing(raw16, _DEMOSAIC).astype(np.float32) / np.float32(65535.0)
        return linear_to_srgb(camera_rgb @ _CAMERA_TO_SRGB.T)

    def sensor_jpeg(self, rgb: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        """The stored photo of an image on the sensor grid: :meth:`raw`, :meth:`process`, 8-bit
        quantisation and JPEG at ``jpeg_quality``."""
        developed = self.process(self.raw(rgb, rng))
        return encode_jpeg(np.clip(np.rint(developed * 255.0), 0, 255).astype(np.uint8), self.jpeg_quality)

    def noise_std(self, rgb: np.ndarray) -> np.ndarray:
        """Predicted standard deviation (8-bit levels, H×W×3) of the sensor noise in the processed frame
        of ``rgb`` (:meth:`process` of :meth:`raw`, before JPEG): shot, read and ADC noise of each
        channel, the share of its variance that demosaicing keeps on average over the 2×2 tile, the
        colour matrix and the slope of the tone curve. Clipping at black lowers the noise in the deepest
        shadows and JPEG smooths, so the noise of the stored photo is lower."""
        linear = srgb_to_linear(rgb)
        camera_rgb = np.clip(linear @ _SRGB_TO_CAMERA.T, 0.0, 1.0)
        g = np.asarray(RAW_WB_MULTIPLIERS, np.float32)
        step = np.float32(1.0 / (2 ** ADC_BITS - 1))
        n = np.float32(self.white_level)
        var_camera = g ** 2 * ((camera_rgb / g) / n + (np.float32(self.read_noise) / n) ** 2 + step ** 2 / 12)
        var_camera = var_camera * _DEMOSAIC_KEPT_VARIANCE
        var_linear = var_camera @ (_CAMERA_TO_SRGB ** 2).T
        return 255.0 * _srgb_slope(linear) * np.sqrt(var_linear)

    def capture_jpeg(self, scene: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        """Photograph a scene with no subject in focus (the whole scene is the background plane)."""
        image = self.develop(self.defocus_background(scene))
        if self.resolution < 1:
            h, w = image.shape[:2]
            size = (max(1, int(round(w * self.resolution))), max(1, int(round(h * self.resolution))))
            image = linear_to_srgb(cv2.resize(srgb_to_linear(image), size, interpolation=cv2.INTER_AREA))
        return self.sensor_jpeg(optical_low_pass(image), rng)

    def capture(self, scene: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """:meth:`capture_jpeg`, decoded: RGB uint8 H×W×3."""
        return decode_jpeg(self.capture_jpeg(scene, rng))


def random_camera(rng: np.random.Generator, *, iso: tuple[float, float] = (100.0, 3200.0),
                  read_noise: tuple[float, float] = (2.0, 5.0), jpeg_quality: tuple[int, int] = (75, 95),
                  p_defocus: float = 0.5, defocus_radius: tuple[float, float] = (2.5, 9.0),
                  exposure: tuple[float, float] = (0.75, 1.3), white_balance_sd: float = 0.1,
                  resolution: float = 1.0) -> Camera:
    """Draw one camera.

    ISO log-uniform in ``iso`` (one stop is as likely as the next), read noise (electrons) and JPEG
    quality uniform, a disk defocus of the background with probability ``p_defocus`` (radius uniform
    in ``defocus_radius``: the paper's averaging kernels 20-60 px at 1080 px correspond to radii
    ≈ 3-10 px at the world's 360 px), exposure uniform (±0.4 EV), white-balance gains normal around 1
    (clipped to 0.6-1.5: the cast left by an imperfect automatic white balance).
    """
    blur = rng.random() < p_defocus
    return Camera(
        iso=float(np.exp(rng.uniform(np.log(iso[0]), np.log(iso[1])))),
        read_noise=float(rng.uniform(*read_noise)),
        jpeg_quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)),
        defocus=float(rng.uniform(*defocus_radius)) if blur else 0.0,
        exposure=float(rng.uniform(*exposure)),
        white_balance=tuple(float(g) for g in np.clip(rng.normal(1.0, white_balance_sd, 3), 0.6, 1.5)),
        resolution=float(resolution),
        seed=int(rng.integers(0, 2 ** 31 - 1)),
    )


def expose(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray,
           camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The truth of a photo as it reaches the sensor (before noise, mosaic and JPEG).

    ``F = develop(fg)`` and ``B = develop(defocus_background(bg))``, then the optical low-pass
    filter blurs the premultiplied layers ``alpha F``, ``(1 - alpha) B`` and ``alpha`` itself, so
    that ``alpha' F' + (1 - alpha') B'`` is exactly the low-passed frame (Eq. 1 on the sensor's truth).

    Returns ``(alpha', F', B')``: float32 H×W and H×W×3 (twice), in [0, 1]. F' is the developed
    foreground where ``alpha' = 0`` and B' the developed background where ``alpha' = 1``.
    """
    _check_layers(fg, alpha, bg)
    F, B = camera.develop(fg), camera.develop(camera.defocus_background(bg))
    a = np.asarray(alpha, np.float32)
    a_lp = np.clip(optical_low_pass(a), 0.0, 1.0)
    F_lp = _unpremultiply(optical_low_pass(a[..., None] * F), a_lp, F)
    B_lp = _unpremultiply(optical_low_pass((1 - a)[..., None] * B), 1 - a_lp, B)
    return a_lp, F_lp, B_lp


def photograph(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, camera: Camera,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """A real photo of ``fg`` (with matte ``alpha``) in front of ``bg``: RGB uint8 H×W×3.

    Eq. 1 on the sensor's truth (:func:`expose`; its alpha is the matte of the photo), then one
    sensor exposure, processing and JPEG over the whole frame (``camera.resolution`` must be 1 so
    that the matte stays exact).
    """
    if camera.resolution != 1:
        raise ValueError("photograph: camera.resolution must be 1 (the matte is given at the sensor grid)")
    a, F, B = expose(fg, alpha, bg, camera)
    a = a[..., None]
    return decode_jpeg(camera.sensor_jpeg(a * F + (1 - a) * B, rng))


def defocus(rgb: np.ndarray, radius: float, *, kind: str = "disk") -> np.ndarray:
    """Blur with a disk (aperture) or Gaussian (sigma = radius / 2) kernel; radius 0 is identity."""
    if radius <= 0:
        return np.asarray(rgb, np.float32).copy()
    rgb = np.asarray(rgb, np.float32)
    if kind == "gaussian":
        return cv2.GaussianBlur(rgb, (0, 0), sigmaX=radius / 2.0, borderType=cv2.BORDER_REFLECT)
    if kind != "disk":
        raise ValueError(f"defocus kind must be one of {DEFOCUS_KINDS}, got {kind!r}")
    return cv2.filter2D(rgb, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)


def disk_kernel(radius: float, *, supersample: int = 8) -> np.ndarray:
    """Normalised anti-aliased disk of the given radius (float32, odd size): the image of a circular
    aperture, zero in the corners of its square (unlike an averaging box)."""
    r = int(np.ceil(radius))
    n = 2 * r + 1
    s = supersample
    yy, xx = np.mgrid[0:n * s, 0:n * s].astype(np.float32)
    c = (n * s - 1) / 2.0
    inside = ((xx - c) ** 2 + (yy - c) ** 2 <= (radius * s) ** 2).astype(np.float32)
    k = inside.reshape(n, s, n, s).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def optical_low_pass(image: np.ndarray) -> np.ndarray:
    """The sensor's anti-aliasing filter: :data:`OLPF_TAPS` along each axis (float32, same shape)."""
    taps = np.asarray(OLPF_TAPS, np.float32)
    return cv2.sepFilter2D(np.asarray(image, np.float32), -1, taps, taps, borderType=cv2.BORDER_REFLECT)


def bayer_mosaic(rgb: np.ndarray) -> np.ndarray:
    """Sample an H×W×3 image through the :data:`CFA` (RGGB): one channel per pixel, H×W."""
    rgb = np.asarray(rgb)
    out = np.empty(rgb.shape[:2], rgb.dtype)
    out[0::2, 0::2] = rgb[0::2, 0::2, 0]
    out[0::2, 1::2] = rgb[0::2, 1::2, 1]
    out[1::2, 0::2] = rgb[1::2, 0::2, 1]
    out[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return out


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Display-referred sRGB values in [0, 1] -> linear light (IEC 61966-2-1), float32."""
    v = np.clip(np.asarray(rgb, np.float32), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB tone curve (IEC 61966-2-1), clipped to [0, 1], float32."""
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an RGB uint8 image (OpenCV encoder: deterministic)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("encode_jpeg: OpenCV could not encode the image")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """RGB uint8 image from JPEG bytes."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("decode_jpeg: not a decodable JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------------------------
_CAMERA_TO_SRGB = np.asarray(CAMERA_TO_SRGB, np.float32)
_SRGB_TO_CAMERA = np.linalg.inv(np.asarray(CAMERA_TO_SRGB, np.float64)).astype(np.float32)
_DEMOSAIC = cv2.COLOR_BayerRGGB2RGB_EA  # OpenCV >= 5 names the pattern by its first 2×2 tile
# Mean over the 2×2 tile of the noise variance each channel keeps after demosaicing independent
# photosites: red and blue are interpolated bilinearly (own site 1, two neighbours 1/2 twice, four
# neighbours 1/4), green along the chosen edge direction (own sites 1, two neighbours 1/2).
_DEMOSAIC_KEPT_VARIANCE = np.array([(1 + 0.5 + 0.5 + 0.25) / 4, (1 + 1 + 0.5 + 0.5) / 4,
                                    (1 + 0.5 + 0.5 + 0.25) / 4], np.float32)


def _cfa_plane(height: int, width: int, values) -> np.ndarray:
    """An H×W plane holding ``values[c]`` at the photosites of colour c of the :data:`CFA`."""
    r, g, b = (np.float32(v) for v in values)
    return bayer_mosaic(np.broadcast_to(np.array([r, g, b], np.float32), (height, width, 3)))


def _srgb_slope(linear: np.ndarray) -> np.ndarray:
    """Derivative of the sRGB tone curve at linear values (float32)."""
    x = np.clip(np.asarray(linear, np.float32), 1e-6, 1.0)
    return np.where(x <= 0.0031308, np.float32(12.92), (1.055 / 2.4) * np.power(x, 1 / 2.4 - 1)).astype(np.float32)


def _unpremultiply(premultiplied: np.ndarray, weight: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``premultiplied / weight`` where the weight is positive, ``fallback`` elsewhere (clipped to [0, 1])."""
    w = weight[..., None]
    out = np.divide(premultiplied, w, out=np.array(fallback, np.float32), where=w > 1e-6)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _check_layers(fg, alpha, bg):
    fg, alpha, bg = np.asarray(fg), np.asarray(alpha), np.asarray(bg)
    if fg.ndim != 3 or fg.shape[2] != 3 or bg.shape != fg.shape or alpha.shape != fg.shape[:2]:
        raise ValueError(f"expected fg H×W×3, alpha H×W and bg H×W×3 of one size, got "
                         f"{fg.shape}, {alpha.shape}, {bg.shape}")
