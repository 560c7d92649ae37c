"""The cameras of the embedded world: how a scene becomes a photograph.

A :class:`Camera` is one photographer's settings. Its pipeline, in order:

1. *optics* — :meth:`Camera.defocus_background`: the background plane is blurred with a disk
   (or Gaussian) kernel of radius ``defocus`` when the depth of field is shallow (paper,
   Sect. 4.2 "Sharpness discrepancy"); the subject stays in focus;
2. *development* — :meth:`Camera.develop`: exposure and white-balance gains, then clipping
   (the illumination of one shot);
3. *sensor* — :meth:`Camera.sensor_jpeg`: resampling to the sensor resolution, ONE Gaussian noise
   realisation of standard deviation ``noise_sigma`` (0–255 scale) over the whole frame (Sect. 4.3
   "Noise discrepancy"), 8-bit quantisation and JPEG encoding at ``jpeg_quality``.

:func:`photograph` takes a real photo of an animal in a scene: ``I = alpha*F + (1-alpha)*B`` (Eq. 1)
is formed at the scene level from the developed foreground and the developed, defocused
background — so F and B share one resolution, one illumination and one noise realisation. A
composite (stage 3) instead mixes an F from one camera with a B from another camera.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Camera:
    """One shot's camera settings (all effects are deterministic given ``seed``).

    Attributes
    ----------
    noise_sigma : standard deviation of the sensor noise, on the 0–255 scale.
    jpeg_quality : JPEG quality of the stored photo (OpenCV, 4:2:0 chroma subsampling).
    defocus : radius in pixels of the background blur (0: everything in focus).
    defocus_kind : ``"disk"`` (lens aperture) or ``"gaussian"``.
    exposure : global gain.
    white_balance : per-channel (R, G, B) gains.
    resolution : sensor resolution relative to the scene grid (< 1 downsamples before the noise).
    seed : seed of the noise realisation when no generator is passed.
    """

    noise_sigma: float = 3.0
    jpeg_quality: int = 90
    defocus: float = 0.0
    defocus_kind: str = "disk"
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resolution: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.noise_sigma < 0:
            raise ValueError(f"Camera.noise_sigma must be >= 0, got {self.noise_sigma}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"Camera.jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.defocus < 0:
            raise ValueError(f"Camera.defocus must be >= 0, got {self.defocus}")
        if self.defocus_kind not in ("disk", "gaussian"):
            raise ValueError(f"Camera.defocus_kind must be 'disk' or 'gaussian', got {self.defocus_kind!r}")
        if not 0 < self.resolution <= 1:
            raise ValueError(f"Camera.resolution must be in (0, 1], got {self.resolution}")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (full precision: ``Camera(**d)`` reproduces the shot)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def defocus_background(self, rgb: np.ndarray) -> np.ndarray:
        """The background plane as seen through the lens: blurred by ``defocus`` (float32)."""
        rgb = np.asarray(rgb, np.float32)
        return defocus(rgb, self.defocus, kind=self.defocus_kind)

    def develop(self, rgb: np.ndarray) -> np.ndarray:
        """Exposure and white-balance gains, clipped to [0, 1] (float32)."""
        gains = np.float32(self.exposure) * np.asarray(self.white_balance, np.float32)
        return np.clip(np.asarray(rgb, np.float32) * gains, 0.0, 1.0)

    def sensor_jpeg(self, rgb: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        """Sample, add one noise realisation, quantise and JPEG-encode a developed image."""
        rgb = np.asarray(rgb, np.float32)
        if self.resolution < 1:
            h, w = rgb.shape[:2]
            size = (max(1, int(round(w * self.resolution))), max(1, int(round(h * self.resolution))))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        noisy = rgb * 255.0 + rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(self.noise_sigma)
        return encode_jpeg(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), self.jpeg_quality)

    def capture_jpeg(self, scene: np.ndarray, rng: np.random.Generator | None = None) -> bytes:
        """Photograph a scene with no subject in focus (the whole scene is the background plane)."""
        return self.sensor_jpeg(self.develop(self.defocus_background(scene)), rng)

    def capture(self, scene: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """:meth:`capture_jpeg`, decoded: RGB uint8 H×W×3."""
        return decode_jpeg(self.capture_jpeg(scene, rng))


def random_camera(rng: np.random.Generator, *, noise_sigma: tuple[float, float] = (1.0, 8.0),
                  jpeg_quality: tuple[int, int] = (75, 95), p_defocus: float = 0.5,
                  defocus_radius: tuple[float, float] = (2.5, 9.0), p_gaussian: float = 0.3,
                  exposure: tuple[float, float] = (0.85, 1.12), white_balance_sd: float = 0.05,
                  resolution: float = 1.0) -> Camera:
    """Draw one camera: noise sigma and JPEG quality uniform in their ranges, background defocus
    with probability ``p_defocus`` (radius uniform in ``defocus_radius``; the paper's averaging
    kernels 20–60 px at 1080 px correspond to radii ≈ 3–10 px at the world's 360 px)."""
    blur = rng.random() < p_defocus
    return Camera(
        noise_sigma=float(rng.uniform(*noise_sigma)),
        jpeg_quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)),
        defocus=float(rng.uniform(*defocus_radius)) if blur else 0.0,
        defocus_kind="gaussian" if rng.random() < p_gaussian else "disk",
        exposure=float(rng.uniform(*exposure)),
        white_balance=tuple(float(g) for g in np.clip(rng.normal(1.0, white_balance_sd, 3), 0.8, 1.2)),
        resolution=float(resolution),
        seed=int(rng.integers(0, 2 ** 31 - 1)),
    )


def expose(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The true foreground and background of a photo as the camera renders them (before noise).

    Returns ``(F, B)``, float32 H×W×3 in [0, 1]: ``F = develop(fg)`` and
    ``B = develop(defocus_background(bg))``. The photo is ``alpha*F + (1-alpha)*B`` plus noise and
    JPEG (Eq. 1).
    """
    _check_layers(fg, alpha, bg)
    return camera.develop(fg), camera.develop(camera.defocus_background(bg))


def photograph(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, camera: Camera,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """A real photo of ``fg`` (with matte ``alpha``) in front of ``bg``: RGB uint8 H×W×3.

    Eq. 1 at the scene level on the camera's own F and B (:func:`expose`), then one noise
    realisation over the whole frame and JPEG (``camera.resolution`` must be 1 so that the
    matte stays exact).
    """
    if camera.resolution != 1:
        raise ValueError("photograph: camera.resolution must be 1 (the matte is given at the sensor grid)")
    F, B = expose(fg, alpha, bg, camera)
    a = np.asarray(alpha, np.float32)[..., None]
    return decode_jpeg(camera.sensor_jpeg(a * F + (1 - a) * B, rng))


def defocus(rgb: np.ndarray, radius: float, *, kind: str = "disk") -> np.ndarray:
    """Blur with a disk (aperture) or Gaussian (sigma = radius / 2) kernel; radius 0 is identity."""
    if radius <= 0:
        return np.asarray(rgb, np.float32).copy()
    if kind == "gaussian":
        return cv2.GaussianBlur(rgb, (0, 0), sigmaX=radius / 2.0, borderType=cv2.BORDER_REFLECT)
    if kind != "disk":
        raise ValueError(f"defocus kind must be 'disk' or 'gaussian', got {kind!r}")
    return cv2.filter2D(rgb, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)


def disk_kernel(radius: float, *, supersample: int = 8) -> np.ndarray:
    """Normalised anti-aliased disk of the given radius (float32, odd size)."""
    r = int(np.ceil(radius))
    n = 2 * r + 1
    s = supersample
    yy, xx = np.mgrid[0:n * s, 0:n * s].astype(np.float32)
    c = (n * s - 1) / 2.0
    inside = ((xx - c) ** 2 + (yy - c) ** 2 <= (radius * s) ** 2).astype(np.float32)
    k = inside.reshape(n, s, n, s).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


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


def _check_layers(fg, alpha, bg):
    fg, alpha, bg = np.asarray(fg), np.asarray(alpha), np.asarray(bg)
    if fg.ndim != 3 or fg.shape[2] != 3 or bg.shape != fg.shape or alpha.shape != fg.shape[:2]:
        raise ValueError(f"expected fg H×W×3, alpha H×W and bg H×W×3 of one size, got "
                         f"{fg.shape}, {alpha.shape}, {bg.shape}")
