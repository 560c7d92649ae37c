"""Denoisers for the noise-discrepancy step of RSSN (Sect. 4.3, Pipeline 1) and their cache.

Foregrounds and backgrounds come from different cameras and carry different noise, a cheap cue
that tells a model where the pasted object is. RSSN removes it with BM3D (Dabov et al., 2009)
from both layers before blending and adds one Gaussian noise field to the composite afterwards.

Methods (:data:`METHODS`):

``"bm3d"``
    BM3D (the ``bm3d`` package), the paper's choice. Slow (single-threaded, minutes per
    1080p image) and under a non-commercial licence: use it through :func:`denoise_folder`,
    which runs it once per image and caches the result; never inside a training loop.
``"nlm"``
    OpenCV's fast non-local means (``cv2.fastNlMeansDenoisingColored``): the documented faster
    option, seconds per 1080p image.
``"none"``
    The identity (a copy), so that a route can keep the step and switch it off.

``sigma`` is the noise standard deviation in 8-bit grey levels whatever the dtype of the image;
``None`` estimates it from the image (``skimage.restoration.estimate_sigma``, wavelet based).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from gfm.core.io import list_images, read_image, sha256_file, write_image, write_json, write_text
from gfm.core.parallel import parallel_map

METHODS = ("bm3d", "nlm", "none")
RECIPE_VERSION = 1
MANIFEST = "manifest.csv"
RECIPE_SUFFIX = ".recipe.json"


def denoise(image: np.ndarray, method: str = "bm3d", sigma: float | None = None, *,
            nlm_strength: float = 1.0, nlm_template: int = 7, nlm_search: int = 21,
            min_sigma: float = 0.5) -> np.ndarray:
    """Remove the noise of one image (the denoising step of Pipeline 1).

    Parameters
    ----------
    image : ndarray
        RGB H×W×3 (or grey H×W), uint8 or float in [0, 1].
    method : str
        One of :data:`METHODS`; ``"bm3d"`` is the paper's (Dabov et al., 2009).
    sigma : float or None
        Noise standard deviation in 8-bit levels; None estimates it from the image.
    nlm_strength : float
        ``"nlm"`` filter strength ``h = hColor = nlm_strength * sigma`` (OpenCV's ``h``).
    nlm_template, nlm_search : int
        ``"nlm"`` template patch and search window sizes (OpenCV's defaults 7 and 21).
    min_sigma : float
        Lower bound of the (estimated) sigma, so a clean image is still passed through the filter.

    Returns
    -------
    ndarray
        The denoised image, same shape; uint8 for a uint8 input, float32 in [0, 1] otherwise.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must be H×W×3 or H×W, got shape {image.shape}")
    if sigma is not None and sigma < 0:
        raise ValueError(f"sigma must be >= 0 (8-bit levels) or None, got {sigma}")
    was_uint8 = image.dtype == np.uint8
    if method == "none":
        return image.copy() if was_uint8 else np.clip(image, 0, 1).astype(np.float32)
    image01 = image.astype(np.float32) / 255.0 if was_uint8 else np.clip(image, 0, 1).astype(np.float32)
    if sigma is None:
        sigma = estimate_noise(image01)
    sigma = max(float(sigma), min_sigma)
    if method == "nlm":
        import cv2

        u8 = np.clip(np.rint(image01 * 255.0), 0, 255).astype(np.uint8)
        h = float(nlm_strength * sigma)
        if u8.ndim == 2:
            out = cv2.fastNlMeansDenoising(u8, None, h, nlm_template, nlm_search)
        else:
            out = cv2.fastNlMeansDenoisingColored(u8, None, h, h, nlm_template, nlm_search)
        return out if was_uint8 else out.astype(np.float32) / 255.0
    import bm3d

    sigma01 = sigma / 255.0
    if image01.ndim == 2:
        out01 = bm3d.bm3d(image01.astype(np.float64), sigma01)
    else:
        out01 = bm3d.bm3d_rgb(image01.astype(np.float64), sigma01)
    out01 = np.clip(np.asarray(out01, dtype=np.float32).reshape(image01.shape), 0.0, 1.0)
    return np.clip(np.rint(out01 * 255.0), 0, 255).astype(np.uint8) if was_uint8 else out01


def estimate_noise(image: np.ndarray) -> float:
    """Noise standard deviation of an image in 8-bit levels (wavelet estimate, averaged over channels)."""
    from skimage.restoration import estimate_sigma

    image = np.asarray(image)
    image01 = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    axis = -1 if image01.ndim == 3 else None
    return float(estimate_sigma(image01, channel_axis=axis, average_sigmas=True)) * 255.0


def recipe(method: str, sigma: float | None = None, **params) -> dict:
    """The description of a denoising run that decides whether a cached output is still valid."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return {"method": method, "sigma": sigma, "params": dict(sorted(params.items())),
            "version": RECIPE_VERSION}


def denoise_folder(src: str | os.PathLike, dst: str | os.PathLike, method: str = "nlm",
                   workers: int = 2, *, sigma: float | None = None, progress: bool = True,
                   **params):
    """Denoise every image of ``src`` into ``dst`` once, as a cached parallel step.

    Each output ``dst/<stem>.png`` (lossless) has a sidecar ``dst/<stem>.recipe.json`` holding
    the recipe (:func:`recipe`: method, sigma, parameters) and the SHA-256 of the source file.
    An image whose output and sidecar exist with the same recipe and source hash is skipped, so
    a second run costs only hashing; changing the method, a parameter or the source image
    recomputes it. Outputs are written atomically, so an interrupted run resumes where it was.
    ``dst/manifest.csv`` lists every image with the denoiser that produced its output.

    Parameters
    ----------
    src, dst : path
        Folder of source images (RGB), folder of the denoised PNGs.
    method : str
        One of :data:`METHODS`.
    workers : int
        Processes (joblib, loky backend); 1 runs in this process.
    sigma : float or None
        Passed to :func:`denoise` (None: estimated per image).
    progress : bool
        Show a tqdm progress bar.
    **params
        Further keyword arguments of :func:`denoise` (e.g. ``nlm_strength``); part of the recipe.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``name``, ``source``, ``output``, ``method``, ``sigma``,
        ``source_sha256``, ``cached`` (True when the output was reused), ``seconds``.
    """
    import pandas as pd

    src, dst = Path(src), Path(dst)
    wanted = recipe(method, sigma, **params)
    sources = list_images(src)
    dst.mkdir(parents=True, exist_ok=True)
    jobs = [(str(path), str(dst), wanted) for path in sources]
    rows = parallel_map(_denoise_one, jobs, workers, progress=progress, desc=f"denoise[{method}] {src.name}")
    manifest = pd.DataFrame(rows, columns=["name", "source", "output", "method", "sigma",
                                           "source_sha256", "cached", "seconds"])
    write_text(dst / MANIFEST, manifest.to_csv(index=False))
    return manifest


def cached_output(source: str | os.PathLike, dst: str | os.PathLike, wanted: dict) -> Path | None:
    """The cached denoised output of ``source`` in ``dst`` if its recipe matches ``wanted``, else None."""
    source = Path(source)
    out = Path(dst) / f"{source.stem}.png"
    sidecar = Path(dst) / f"{source.stem}{RECIPE_SUFFIX}"
    if not (out.is_file() and sidecar.is_file()):
        return None
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if recorded.get("recipe") != json.loads(json.dumps(wanted)) or recorded.get("source_sha256") != sha256_file(source):
        return None
    return out


def _denoise_one(source: str, dst: str, wanted: dict) -> dict:
    import time

    start = time.perf_counter()
    source_path = Path(source)
    out = Path(dst) / f"{source_path.stem}.png"
    sha = sha256_file(source_path)
    row = {"name": source_path.stem, "source": source, "output": str(out), "method": wanted["method"],
           "source_sha256": sha}
    hit = cached_output(source_path, dst, wanted)
    if hit is not None:
        sidecar = json.loads((Path(dst) / f"{source_path.stem}{RECIPE_SUFFIX}").read_text())
        return {**row, "sigma": sidecar.get("sigma_used"), "cached": True,
                "seconds": time.perf_counter() - start}
    image = read_image(source_path)
    sigma = wanted["sigma"]
    if sigma is None and wanted["method"] != "none":
        sigma = estimate_noise(image)
    result = denoise(image, wanted["method"], sigma, **wanted["params"])
    write_image(out, result)
    write_json(Path(dst) / f"{source_path.stem}{RECIPE_SUFFIX}",
               {"recipe": wanted, "source": source_path.name, "source_sha256": sha, "sigma_used": sigma})
    return {**row, "sigma": sigma, "cached": False, "seconds": time.perf_counter() - start}


