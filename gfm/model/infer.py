"""Inference: a full-resolution alpha matte from GFM (Sect. 5.5 "Hybrid-resolution Test", Table 6).

GFM sees the test image down-sampled and its outputs are resized back to the input size. One
function, :func:`predict` (and its batched twin :func:`predict_batch`), serves the evaluation,
the notebooks and ``gfm matte``; grids of settings (Table 6) reuse network passes with
:func:`forward_passes` + :func:`combine_passes`, the two halves of :func:`predict`.
Strategies (:data:`STRATEGIES`):

``"resize"``
    one forward pass at ratio 1/d (official RESIZE test: d = 2); the network's own collaborative
    matte is resized back.
``"hybrid"``
    the hybrid-resolution test: the glance decoder's output comes from a pass at 1/d1 (a larger
    receptive field for the semantic part), the focus decoder's from a pass at 1/d2 (finer
    details), both resized to full resolution and merged by collaborative matting (``fusion``). The
    paper's best setting is d1 = 3, d2 = 2 (Table 6). When both passes have the same size a
    single forward pass is made.
``"rim"``
    GFM-RIM (Sect. 5.5, "RoSTa Integration"): one pass at 1/3, the RIM output resized back; as in
    the official test, a RIM model is always tested this way (``"hybrid"`` falls back to it).

Pass sizes follow the official test exactly (:func:`pass_size`): each side is divided by d,
truncated to an integer, rounded *down* to a multiple of 32 (the encoder's stride) and capped
at ``max_side`` = 1600 -- each side independently, so a capped image is squeezed. A side
shorter than 32 after division becomes 32 (the official code would fail there).

Resampling: the image is down-sampled with pixel-area averaging (``cv2.INTER_AREA``; the
official test uses ``skimage.transform.resize`` with its default anti-aliasing, a Gaussian
pre-filter and bilinear interpolation) and up-sampled with bilinear interpolation (``cv2``
``INTER_LINEAR``), which is also what :mod:`gfm.train.dataset` uses to make the training inputs.
Network input: RGB float in [0, 255], no normalisation (:func:`gfm.train.dataset.to_tensor_input`).

Hybrid fusion (``fusion=``, :data:`FUSIONS`), how the glance pass at 1/d1 and the focus pass at
1/d2 are merged by collaborative matting (Sect. 3.5 "Collaborative Matting", which gives no
equation for it):

``"official"`` (default)
    the released test code: the glance arg-max is taken at 1/d1, the class map (TT: 0/128/255,
    FT/BT: 0/255) is resized bilinearly, and for TT every full-size pixel whose resized value is
    not exactly background or foreground takes the focus alpha, which widens the transition band
    by about d1 pixels on each side of every class boundary; FT/BT add or subtract the focus alpha
    to the resized (soft) class map and clip.
``"upsampled"``
    the glance *probabilities* are resized to full resolution and
    :func:`gfm.model.network.collaborative_matting` (arg-max, then the RoSTa's rule) is applied
    there: a transition band as thin as the network predicts it.

Devices: ``device="auto"`` picks CUDA, then Apple MPS, then the CPU (:func:`gfm.core.device.resolve_device`);
``precision="bf16"`` runs the forward pass under bfloat16 autocast. Outputs are float32 numpy.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gfm.core.device import resolve_device
from gfm.model.checkpoint import ModelSpec, RunInfo, load_official, load_run, parse_official
from gfm.model.network import collaborative_matting, image_to_input

__all__ = [
    "STRATEGIES",
    "FUSIONS",
    "MAX_SIDE",
    "predict",
    "predict_batch",
    "forward_passes",
    "combine_passes",
    "pass_size",
    "pass_sizes",
    "load_model",
]

STRATEGIES = ("hybrid", "resize", "rim")
#: Cap on each side of a network input (official ``MAX_SIZE_H`` / ``MAX_SIZE_W``).
MAX_SIDE = 1600
#: Default ratio of the single-pass strategies (official RESIZE test 1/2, RIM 1/3).
DEFAULT_D = {"resize": 2.0, "rim": 3.0}
#: How the hybrid test merges its two passes (module docstring); the first is the default.
FUSIONS = ("official", "upsampled")


def predict(model, image: np.ndarray, *, strategy: str = "hybrid", d: float | None = None,
            d1: float = 3.0, d2: float = 2.0, max_side: int = MAX_SIDE, fusion: str = "official",
            device: str | torch.device = "auto", precision: str = "fp32") -> dict:
    """Alpha matte of one image at its full resolution.

    Parameters
    ----------
    model : GFM or callable
        A :class:`gfm.model.network.GFM` (moved to ``device`` and put in eval mode) or the runner
        returned by :func:`gfm.model.network.optimise_for_inference` (then ``device``/``precision``
        are the runner's).
    image : ndarray
        RGB uint8 H×W×3 of any size (a pass is never smaller than 32 × 32, see :func:`pass_size`).
    strategy : {"hybrid", "resize", "rim"}
        See the module docstring.
    d : float, optional
        Down-sampling ratio 1/d of the single-pass strategies (default 2 for "resize", 3 for "rim").
    d1, d2 : float
        Ratios 1/d1 of the glance pass and 1/d2 of the focus pass of "hybrid" (paper: 3 and 2).
    max_side : int
        Cap on each side of a network input (official: 1600).
    fusion : {"official", "upsampled"}
        How "hybrid" merges glance and focus (module docstring).
    device : str or torch.device
        "auto" (CUDA, MPS, CPU), "cpu", "cuda", "cuda:N" or "mps".
    precision : {"fp32", "bf16"}
        Autocast precision of the forward pass.

    Returns
    -------
    dict
        ``glance`` H×W uint8 class map (TT: 0 background, 1 transition, 2 foreground; FT/BT:
        0/1), ``glance_probs`` C×H×W float32, ``focus`` H×W float32 alpha of the focus decoder,
        ``fusion`` H×W float32 alpha matte in [0, 1], ``sizes`` the (h, w) of the glance and
        focus passes.
    """
    return predict_batch(model, [image], strategy=strategy, d=d, d1=d1, d2=d2, max_side=max_side,
                         fusion=fusion, device=device, precision=precision)[0]


def predict_batch(model, images, *, strategy: str = "hybrid", d: float | None = None,
                  d1: float = 3.0, d2: float = 2.0, max_side: int = MAX_SIDE, fusion: str = "official",
                  device: str | torch.device = "auto", precision: str = "fp32") -> list[dict]:
    """:func:`predict` for several images of the same size, each pass one batch; a list of dicts."""
    images = [np.asarray(im) for im in images]
    if not images:
        return []
    shape = images[0].shape
    for i, image in enumerate(images):
        _check_image(image, f"images[{i}]")
        if image.shape != shape:
            raise ValueError(f"images[{i}]: all images of a batch must have the same size, "
                             f"got {image.shape[:2]} and {shape[:2]}")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    run, dev, rosta = _runner(model, device, precision)
    strategy = _check_strategy(strategy, rosta)
    glance_size, focus_size = pass_sizes(*shape[:2], strategy=strategy, d=d, d1=d1, d2=d2, max_side=max_side)
    batch = np.stack(images)
    first = _forward(run, dev, batch, glance_size)
    second = first if focus_size == glance_size else _forward(run, dev, batch, focus_size)
    return combine_passes(rosta, first, second, shape[:2], strategy=strategy, fusion=fusion)


def forward_passes(model, image: np.ndarray, ratios, *, max_side: int = MAX_SIDE,
                   device: str | torch.device = "auto", precision: str = "fp32") -> tuple[dict, str]:
    """Raw network outputs of one image at several ratios 1/d, one forward pass per distinct size.

    For grids of test settings (Table 6): combine any two of them with :func:`combine_passes`
    instead of re-running the network for every setting.

    Returns
    -------
    (dict, str)
        ``{d: pass}`` where a pass is ``{"size": (h, w), "seconds": float, "outputs": {key:
        1 x C x h x w tensor}}`` (the time of resizing the image and of the forward pass; ratios
        sharing a size share one pass), and the model's RoSTa.
    """
    _check_image(np.asarray(image), "image")
    run, dev, rosta = _runner(model, device, precision)
    h, w = image.shape[:2]
    by_size, passes = {}, {}
    for d in ratios:
        size = pass_size(h, w, d, max_side=max_side)
        if size not in by_size:
            start = time.perf_counter()
            outputs = {k: v.cpu() for k, v in _forward(run, dev, np.asarray(image)[None], size).items()}
            by_size[size] = {"size": size, "seconds": time.perf_counter() - start, "outputs": outputs}
        passes[d] = by_size[size]
    return passes, rosta


def combine_passes(rosta: str, glance_pass: dict, focus_pass: dict, full_size: tuple[int, int], *,
                   strategy: str = "hybrid", fusion: str = "official") -> list[dict]:
    """Full-resolution outputs (the dicts of :func:`predict`, one per batch item) from the glance
    pass and the focus pass (network output dicts, or the passes of :func:`forward_passes`).

    "hybrid" merges the glance of the first with the focus of the second (collaborative matting,
    ``fusion`` rule as in the module docstring); "resize" / "rim" resize the first pass's own
    matte (``focus_pass`` should then be the same pass).
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    first, second = (p["outputs"] if "outputs" in p else p for p in (glance_pass, focus_pass))
    size = tuple(int(s) for s in full_size)
    glance_probs = _upsample(first["glance"], size)
    focus = _upsample(second["focus"], size).clamp(0, 1)
    if strategy != "hybrid":
        matte = _upsample(first["fusion"], size)
    elif fusion == "upsampled":
        matte = collaborative_matting(rosta, glance_probs, focus)
    else:
        matte = _official_hybrid_fusion(rosta, first["glance"], focus, size)
    labels = glance_probs.argmax(dim=1).to(torch.uint8).cpu().numpy()
    glance_probs, focus, matte = (t.float().cpu().numpy() for t in (glance_probs, focus, matte.clamp(0, 1)))
    sizes = {"glance": tuple(first["glance"].shape[-2:]), "focus": tuple(second["focus"].shape[-2:])}
    return [{"glance": labels[i], "glance_probs": glance_probs[i], "focus": focus[i, 0], "fusion": matte[i, 0],
             "sizes": sizes} for i in range(labels.shape[0])]


def pass_size(h: int, w: int, d: float, *, max_side: int = MAX_SIDE, multiple: int = 32) -> tuple[int, int]:
    """Network input size (h', w') for an H×W image at ratio 1/d (the official test's rule).

    Each side: ``s = int(side / d)``; ``s - s % multiple``; capped at ``max_side`` (itself
    rounded down to a multiple); at least ``multiple``.
    """
    if not d > 0:
        raise ValueError(f"down-sampling ratio d must be > 0, got {d!r}")
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {h} x {w}")
    cap = max_side - max_side % multiple
    if cap < multiple:
        raise ValueError(f"max_side must be at least {multiple}, got {max_side!r}")

    def side(n: int) -> int:
        s = int(n / d)
        return max(multiple, min(cap, s - s % multiple))

    return side(h), side(w)


def pass_sizes(h: int, w: int, *, strategy: str = "hybrid", d: float | None = None, d1: float = 3.0,
               d2: float = 2.0, max_side: int = MAX_SIDE) -> tuple[tuple[int, int], tuple[int, int]]:
    """Input sizes of the glance pass and of the focus pass (equal for single-pass strategies)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "hybrid":
        return pass_size(h, w, d1, max_side=max_side), pass_size(h, w, d2, max_side=max_side)
    size = pass_size(h, w, DEFAULT_D[strategy] if d is None else d, max_side=max_side)
    return size, size


def load_model(path: str | Path, *, official: str | None = None, device: str | torch.device = "cpu"):
    """Load a trained GFM for inference -> ``(model, meta)`` (model in eval mode on ``device``).

    Parameters
    ----------
    path : str or Path
        A training run folder, its ``model.pt`` or a training ``checkpoint.pt``
        (:func:`gfm.model.checkpoint.load_run`), or -- with ``official`` -- a released GFM
        checkpoint (:func:`gfm.model.checkpoint.load_official`).
    official : str, optional
        ``"<backbone>-<rosta>"`` (e.g. ``"r34-tt"``, ``"d121-tt"``, ``"r34_2b-rim"``).
    device : str or torch.device
        Where to put the model ("auto" allowed).

    Returns
    -------
    (GFM, dict)
        ``meta`` (:meth:`gfm.model.checkpoint.RunInfo.meta`) holds ``backbone``, ``rosta``,
        ``decoder``, ``ppm``, ``bridge``, ``backbone_options``, ``source`` (the file read),
        ``experiment``, ``track`` (None when unknown) and ``official``.
    """
    if not official:
        model, info = load_run(path, device)
        return model, info.meta()
    path = Path(path)
    backbone, rosta = parse_official(official)
    model = load_official(path, backbone, rosta).to(resolve_device(device))
    return model, RunInfo(path, "official", ModelSpec(backbone, rosta), path.stem).meta()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _runner(model, device, precision):
    """(run(x) -> float32 output dict, device, rosta) for a GFM module or an optimised runner."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if not isinstance(model, torch.nn.Module):
        inner = getattr(model, "model", None)
        if not callable(model) or inner is None:
            raise ValueError("model must be a GFM module or the runner of gfm.model.network.optimise_for_inference")
        return model, next(inner.parameters()).device, inner.rosta
    dev = resolve_device(device)
    model.to(dev).eval()

    def run(x: torch.Tensor) -> dict:
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
        return {k: v.float() for k, v in out.items() if torch.is_tensor(v)}

    return run, dev, getattr(model, "rosta", "TT")


def _check_image(image: np.ndarray, name: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected an RGB uint8 H x W x 3 array, got {image.dtype} {image.shape}")


def _forward(run, dev, batch: np.ndarray, size: tuple[int, int]) -> dict:
    """Network outputs (tensors only) for a uint8 N x H x W x 3 batch resized to ``size``."""
    out = run(image_to_input(_resize_images(batch, size)).to(dev))
    return {k: v for k, v in out.items() if torch.is_tensor(v)}


def _check_strategy(strategy: str, rosta: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "rim" and rosta != "RIM":
        raise ValueError(f"strategy 'rim' needs a GFM-RIM model, this one is rosta={rosta!r}")
    if rosta == "RIM" and strategy == "hybrid":
        warnings.warn("a RIM model is tested with strategy 'rim' (one pass at 1/3), as the official test does",
                      stacklevel=3)
        return "rim"
    return strategy


def _resize_images(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if batch.shape[1:3] == (h, w):
        return batch
    shrink = h <= batch.shape[1] and w <= batch.shape[2]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (w, h), interpolation=mode) for im in batch])


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _official_hybrid_fusion(rosta: str, glance_low: torch.Tensor, focus: torch.Tensor,
                            size: tuple[int, int], tolerance: float = 1e-6) -> torch.Tensor:
    """The released test code's hybrid fusion (module docstring, ``fusion="official"``)."""
    classes = glance_low.shape[1]
    label = glance_low.argmax(dim=1, keepdim=True).float() / (classes - 1)  # TT 0/.5/1, FT/BT 0/1
    soft = _upsample(label, size)
    if rosta == "TT":
        known = (soft <= tolerance) | (soft >= 1 - tolerance)
        return torch.where(known, soft.round(), focus)
    if rosta == "FT":
        return torch.clamp(soft + focus, max=1.0)
    return torch.clamp(soft - focus, min=0.0)
