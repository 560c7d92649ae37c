"""Training losses of GFM (Sect. 3, Eq. 2-8) for every RoSTa (Sect. 3.4) and RIM (Sect. 5.5).

* glance decoder: cross-entropy against the RoSTa target (Eq. 2);
* focus decoder: alpha loss (Eq. 4) + Laplacian loss (Eq. 5) in the transition area (Eq. 3);
* collaborative matting: alpha + Laplacian + composition loss (Eq. 7) over the whole image (Eq. 6);
* total: L = L_CE + L_FD + L_CM (Eq. 8); RIM sums one such group per RoSTa head plus the CM loss
  of the matte after RIM (Sect. 5.5).

A training batch (see :mod:`gfm.train.dataset`) is a dict of tensors: ``image``, ``fg``, ``bg``
(N x 3 x H x W, float in [0, 255]), ``alpha`` (N x 1 x H x W in [0, 1]), ``trimap`` (N x H x W
int64 classes 0 background / 1 transition / 2 foreground, kernel 25), ``erosion`` and
``dilation`` (N x 1 x H x W in {0, 1}: erosion of alpha == 1 and dilation of alpha > 0, kernel 50).

RoSTa targets (paper reading)
-----------------------------
===== ========================= ================================= ==========================
RoSTa glance target (C classes) transition area W (Eq. 4, 5)      focus target
===== ========================= ================================= ==========================
TT    trimap (3)                trimap == transition              alpha
FT    erosion mask F (2)        1(alpha > 0) - F                  alpha (= alpha - F)
BT    dilation mask B (2)       B - 1(alpha = 1)  (see note)      1 - alpha (inside B)
===== ========================= ================================= ==========================

Notes. BT: the paper writes the transition area as "B - 1(alpha > 0)", which would hold only
pixels with alpha = 0; we read it as the mirror image of FT (pixels of B that are not sure
foreground). The focus target of BT is ``1 - alpha`` because collaborative matting subtracts the
focus prediction from the glance label (Sect. 3.2); the paper's "ground truth alpha" in the
transition area is only right for TT and FT. The official code agrees (``dilation - mask``).

Official code vs paper (every difference, in one place)
-------------------------------------------------------
``official=True`` reproduces the released ``core/train.py`` / ``core/evaluate.py``; a set of the
names below switches on only those differences. The default follows the paper.

======================= ======================================= ===============================================
name                    paper (default)                         official code
======================= ======================================= ===============================================
``ce_on_sigmoid``       Eq. 2 on class probabilities: softmax   ``nn.CrossEntropyLoss`` fed the *sigmoid*
                        cross-entropy of the glance logits      outputs (a softmax over sigmoids)
``quarter_weights``     Eq. 8: L = L_CE + L_FD + L_CM           0.25 x (L_CE + L_FD + (L_alpha + L_lap) + L_comp)
                                                                = 0.25 x Eq. 8 (TT/FT/BT; RIM is unweighted)
``trimap_transition``   W per RoSTa (table above)               W = TT trimap transition (kernel 25) for all
                                                                RoSTa
``ft_bt_glance_targets`` FT: erosion mask, BT: dilation mask    single-RoSTa FT trains GD on the *dilation*
                                                                mask and BT on ``alpha == 1`` (the RIM branch
                                                                uses erosion / dilation, as the paper)
``rim_bt_reads_ft``     BT group on the BT head                 RIM's BT loss group reads the FT head's
                                                                outputs (``predict[1]`` twice)
``alpha_norm_plus_one`` Eq. 4 divides by sum(W) (>= 1 guard)    divides by sum(W) + 1
``laplacian_residual``  Eq. 5: k = 1..5 band-pass levels        also the low-pass residual (6 terms)
``gist_kernel``         5x5 Gaussian, sigma = 1 (not specified  "Gaussian" of the borrowed gist:
                        in the paper)                           g(x) + g(y) with g(d) = exp(-d^2), normalised
``composite_vs_image``  Eq. 7: C(alpha_CM) vs C(alpha), both    C(alpha_CM) vs the input image (differs from
                        composed from the sample's F and B      C(alpha) for ORI-Track images whose F, B come
                                                                from alpha blending: then C(alpha) != image)
======================= ======================================= ===============================================

Shared by both (not a difference): epsilon = 1e-6 inside the square roots (Eq. 4, 7); masked
inputs for the transition Laplacian (alpha and prediction multiplied by W before the pyramid;
the paper's per-pixel W is not defined on coarser levels); each pyramid level contributes its
mean absolute difference (the paper's Eq. 5 writes an un-normalised sum); the composition loss
sums the three colour channels and divides by the number of alpha pixels (Eq. 7's N), on
images scaled to [0, 1].

Paper vs both codes (followed as the official code, not switchable)
-------------------------------------------------------------------
``cm_gradient``: Sect. 3.5 (Collaborative Matting) says both decoders are trained "that the losses
can be back-propagated to each of them via the CM module". In the official code, and here, CM takes
the arg-max of the glance output (:func:`gfm.model.network.collaborative_matting`), which has no
gradient: the CM loss (Eq. 6) trains the focus decoder only, and the glance decoder learns from Eq.
2 alone. A differentiable CM would need a choice the paper does not make (e.g. soft class
probabilities), so the project keeps the released behaviour and lists it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

__all__ = [
    "OFFICIAL_DIFFERENCES",
    "official_flags",
    "glance_target",
    "transition_mask",
    "focus_target",
    "glance_loss",
    "alpha_loss",
    "laplacian_pyramid",
    "laplacian_loss",
    "composition_loss",
    "focus_loss",
    "collaborative_matting_loss",
    "rosta_loss",
    "gfm_loss",
    "LOSS_TERMS",
]

#: Names of the differences between the official training code and the paper (module docstring).
OFFICIAL_DIFFERENCES = (
    "ce_on_sigmoid",
    "quarter_weights",
    "trimap_transition",
    "ft_bt_glance_targets",
    "rim_bt_reads_ft",
    "alpha_norm_plus_one",
    "laplacian_residual",
    "gist_kernel",
    "composite_vs_image",
)

#: The loss terms every single-RoSTa :func:`gfm_loss` call reports (RIM adds more).
LOSS_TERMS = ("total", "glance", "focus_alpha", "focus_lap", "fusion_alpha", "fusion_lap", "fusion_comp")

ROSTA_CLASSES = {"TT": 3, "FT": 2, "BT": 2}


def official_flags(official: bool | str | Iterable[str] = False) -> frozenset[str]:
    """Normalise the ``official`` argument to the set of official behaviours to reproduce.

    ``False`` (paper everywhere), ``True`` (all of :data:`OFFICIAL_DIFFERENCES`), or an iterable
    (or comma-separated string) of names from :data:`OFFICIAL_DIFFERENCES`.
    """
    if official is True:
        return frozenset(OFFICIAL_DIFFERENCES)
    if official is False or official is None:
        return frozenset()
    if isinstance(official, str):
        if official.strip().lower() in ("true", "official", "all"):
            return frozenset(OFFICIAL_DIFFERENCES)
        if official.strip().lower() in ("false", "paper", "none", ""):
            return frozenset()
        official = [name.strip() for name in official.split(",") if name.strip()]
    flags = frozenset(official)
    unknown = sorted(flags - set(OFFICIAL_DIFFERENCES))
    if unknown:
        raise ValueError(f"official: unknown difference name(s) {unknown}; expected True, False or "
                         f"names from {list(OFFICIAL_DIFFERENCES)}")
    return flags


# --------------------------------------------------------------------------------------------
# RoSTa targets (Sect. 3.4)
# --------------------------------------------------------------------------------------------

def glance_target(batch: Mapping[str, torch.Tensor], rosta: str, *, official=False) -> torch.Tensor:
    """Class labels (N x H x W, int64) that supervise the glance decoder (Sect. 3.4).

    TT: the trimap (0 background, 1 transition, 2 foreground); FT: 1 on the eroded foreground
    mask F; BT: 1 on the dilated mask B. With the official ``ft_bt_glance_targets`` behaviour,
    FT uses the dilation mask and BT ``alpha == 1`` instead (see the module docstring).
    """
    _check_rosta(rosta)
    flags = official_flags(official)
    if rosta == "TT":
        return batch["trimap"].long()
    if "ft_bt_glance_targets" in flags:
        mask = batch["dilation"] if rosta == "FT" else (batch["alpha"] >= 1.0)
    else:
        mask = batch["erosion"] if rosta == "FT" else batch["dilation"]
    return (mask[:, 0] > 0.5).long()


def transition_mask(batch: Mapping[str, torch.Tensor], rosta: str, *, official=False) -> torch.Tensor:
    """W of Eq. 4-5 (N x 1 x H x W, float 0/1): the transition area of ``rosta`` (Sect. 3.4).

    TT: trimap transition; FT: ``1(alpha > 0) - F``; BT: ``B - 1(alpha = 1)``. With the official
    ``trimap_transition`` behaviour, the TT trimap transition for every RoSTa.
    """
    _check_rosta(rosta)
    alpha = batch["alpha"]
    if rosta == "TT" or "trimap_transition" in official_flags(official):
        return (batch["trimap"] == 1).unsqueeze(1).to(alpha.dtype)
    if rosta == "FT":
        return ((alpha > 0) & (batch["erosion"] < 0.5)).to(alpha.dtype)
    return ((batch["dilation"] > 0.5) & (alpha < 1.0)).to(alpha.dtype)


def focus_target(batch: Mapping[str, torch.Tensor], rosta: str) -> torch.Tensor:
    """What the focus decoder must predict (N x 1 x H x W in [0, 1]) so that CM gives alpha.

    TT: alpha; FT: ``alpha - F`` (alpha on the transition area, 0 on F); BT: ``B - alpha``
    (``1 - alpha`` inside the dilated mask B, 0 outside) -- the official code's
    ``erosion_subtraction`` / ``dilation_subtraction``.
    """
    _check_rosta(rosta)
    alpha = batch["alpha"]
    if rosta == "TT":
        return alpha
    if rosta == "FT":
        return (alpha - batch["erosion"]).clamp(min=0.0)
    return (batch["dilation"] - alpha).clamp(min=0.0)


# --------------------------------------------------------------------------------------------
# Loss terms
# --------------------------------------------------------------------------------------------

def glance_loss(glance: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the glance decoder, Eq. 2, averaged over pixels.

    Parameters
    ----------
    glance : torch.Tensor
        N x C x H x W scores; softmax is applied here, so pass the logits (paper) or, to
        reproduce the official code, the sigmoid probabilities.
    target : torch.Tensor
        N x H x W int64 class labels (:func:`glance_target`).
    """
    if glance.ndim != 4 or target.shape != (glance.shape[0], *glance.shape[2:]):
        raise ValueError(f"glance N x C x H x W {tuple(glance.shape)} and target N x H x W "
                         f"{tuple(target.shape)} do not match")
    return F.cross_entropy(glance.float(), target)


def alpha_loss(pred: torch.Tensor, alpha: torch.Tensor, weight: torch.Tensor | None = None, *,
               eps: float = 1e-6, plus_one: bool = False) -> torch.Tensor:
    """Alpha-prediction loss, Eq. 4: ``sum_i sqrt(((alpha_i - pred_i) W_i)^2 + eps^2) / sum_i W_i``.

    Without ``weight`` (W = 1 everywhere) it is the whole-image alpha loss of Eq. 6. The
    denominator is at least 1 (a crop without transition pixels gives a finite loss);
    ``plus_one=True`` uses ``sum W + 1`` as the official code does.
    """
    _check_same_shape(pred, alpha, "pred", "alpha")
    diff = pred.float() - alpha.float()
    if weight is None:
        return torch.sqrt(diff ** 2 + eps ** 2).mean()
    _check_same_shape(weight, alpha, "weight", "alpha")
    total = torch.sqrt((diff * weight) ** 2 + eps ** 2).sum()
    norm = weight.sum() + 1.0 if plus_one else weight.sum().clamp(min=1.0)
    return total / norm


def laplacian_pyramid(x: torch.Tensor, levels: int = 5, *, kernel_size: int = 5, sigma: float = 1.0,
                      gist_kernel: bool = False) -> list[torch.Tensor]:
    """Laplacian pyramid of an N x 1 x H x W map (Eq. 5): ``levels`` band-pass maps + the low-pass rest.

    Each level is ``x_k - blur(x_k)`` and ``x_{k+1} = avgpool2(blur(x_k))`` (replicate padding),
    the construction of the Laplacian loss GFM borrowed; the last element is the low-pass residual.
    ``gist_kernel=True`` uses that loss's kernel ``g(x) + g(y)``, ``g(d) = exp(-d^2 / sigma^2)``,
    instead of a true (separable) Gaussian.
    """
    kernel = _blur_kernel(kernel_size, sigma, gist_kernel, x.device)
    pad = kernel_size // 2
    pyramid, current = [], x.float()
    for _ in range(levels):
        blurred = F.conv2d(F.pad(current, (pad, pad, pad, pad), mode="replicate"), kernel)
        pyramid.append(current - blurred)
        current = F.avg_pool2d(blurred, 2)
    pyramid.append(current)
    return pyramid


def laplacian_loss(pred: torch.Tensor, alpha: torch.Tensor, weight: torch.Tensor | None = None, *,
                   levels: int = 5, residual: bool = False, gist_kernel: bool = False) -> torch.Tensor:
    """Laplacian loss, Eq. 5: L1 distance between the Laplacian pyramids of alpha and prediction.

    The sum over ``levels`` band-pass levels (k = 1..5) of each level's mean absolute difference;
    ``residual=True`` adds the low-pass residual (official). With ``weight`` (W of Eq. 5) both
    maps are multiplied by W first; without it the whole image counts (Eq. 6).
    """
    _check_same_shape(pred, alpha, "pred", "alpha")
    pred, alpha = pred.float(), alpha.float()
    if weight is not None:
        _check_same_shape(weight, alpha, "weight", "alpha")
        pred, alpha = pred * weight, alpha * weight
    pyr_p = laplacian_pyramid(pred, levels, gist_kernel=gist_kernel)
    pyr_a = laplacian_pyramid(alpha, levels, gist_kernel=gist_kernel)
    if not residual:
        pyr_p, pyr_a = pyr_p[:-1], pyr_a[:-1]
    return sum(F.l1_loss(p, a) for p, a in zip(pyr_p, pyr_a))


def composition_loss(pred: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, reference: torch.Tensor, *,
                     eps: float = 1e-6, scale: float = 255.0) -> torch.Tensor:
    """Composition loss, Eq. 7: ``sum_i sqrt((C(alpha)_i - C(pred)_i)^2 + eps^2) / N``.

    ``C(pred) = pred F + (1 - pred) B`` is composed from the sample's foreground and background;
    ``reference`` is ``C(alpha)`` (paper) or the input image (official). Images are divided by
    ``scale`` (255 for [0, 255] tensors); the three channels are summed and N counts alpha pixels.
    """
    if not (fg.shape == bg.shape == reference.shape) or fg.shape[1] != 3 or pred.shape[1] != 1 \
            or pred.shape[0] != fg.shape[0] or pred.shape[2:] != fg.shape[2:]:
        raise ValueError(f"composition_loss: pred N x 1 x H x W {tuple(pred.shape)}, fg {tuple(fg.shape)}, "
                         f"bg {tuple(bg.shape)} and reference {tuple(reference.shape)} (N x 3 x H x W) do not match")
    pred = pred.float()
    composite = pred * fg.float() + (1.0 - pred) * bg.float()
    diff = (composite - reference.float()) / scale
    return torch.sqrt(diff ** 2 + eps ** 2).sum() / pred.numel()


def focus_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, official=False) -> dict:
    """L_FD of Eq. 3 in the transition area W: ``{"alpha": Eq. 4, "lap": Eq. 5}``."""
    flags = official_flags(official)
    return {"alpha": alpha_loss(pred, target, weight, plus_one="alpha_norm_plus_one" in flags),
            "lap": laplacian_loss(pred, target, weight, residual="laplacian_residual" in flags,
                                  gist_kernel="gist_kernel" in flags)}


def collaborative_matting_loss(fusion: torch.Tensor, batch: Mapping[str, torch.Tensor], *, official=False) -> dict:
    """L_CM of Eq. 6 on the whole image: ``{"alpha": Eq. 4, "lap": Eq. 5, "comp": Eq. 7}``."""
    flags = official_flags(official)
    alpha, fg, bg = batch["alpha"], batch["fg"], batch["bg"]
    if "composite_vs_image" in flags:
        reference = batch["image"]
    else:
        reference = alpha * fg + (1.0 - alpha) * bg
    return {"alpha": alpha_loss(fusion, alpha),
            "lap": laplacian_loss(fusion, alpha, residual="laplacian_residual" in flags,
                                  gist_kernel="gist_kernel" in flags),
            "comp": composition_loss(fusion, fg, bg, reference)}


def rosta_loss(outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], rosta: str, *,
               official=False) -> dict:
    """The terms of Eq. 8 for one RoSTa's outputs (``glance``/``glance_logits``/``focus``/``fusion``).

    Returns ``glance``, ``focus_alpha``, ``focus_lap``, ``fusion_alpha``, ``fusion_lap``,
    ``fusion_comp`` (unweighted tensors).
    """
    flags = official_flags(official)
    glance = outputs["glance"] if "ce_on_sigmoid" in flags else outputs["glance_logits"]
    if glance.shape[1] != ROSTA_CLASSES[rosta]:
        raise ValueError(f"rosta {rosta}: glance output must have {ROSTA_CLASSES[rosta]} channels, "
                         f"got {glance.shape[1]}")
    terms = {"glance": glance_loss(glance, glance_target(batch, rosta, official=flags))}
    focus = focus_loss(outputs["focus"], focus_target(batch, rosta),
                       transition_mask(batch, rosta, official=flags), official=flags)
    terms.update(focus_alpha=focus["alpha"], focus_lap=focus["lap"])
    cm = collaborative_matting_loss(outputs["fusion"], batch, official=flags)
    terms.update(fusion_alpha=cm["alpha"], fusion_lap=cm["lap"], fusion_comp=cm["comp"])
    return terms


def gfm_loss(outputs: Mapping, batch: Mapping[str, torch.Tensor], rosta: str, *,
             official=False) -> tuple[torch.Tensor, dict]:
    """Total training loss of GFM, Eq. 8, and its terms.

    Parameters
    ----------
    outputs : dict
        The model's output dict (:class:`gfm.model.network.GFM`); for ``rosta="RIM"`` it holds
        ``rosta = {"TT": {...}, "FT": {...}, "BT": {...}}`` and the RIM matte as ``fusion``.
    batch : dict
        A training batch (module docstring).
    rosta : {"TT", "FT", "BT", "RIM"}
    official : bool, str or iterable of str
        Reproduce the official code's differences from the paper (all with ``True``; see the
        module docstring table and :func:`official_flags`).

    Returns
    -------
    total : torch.Tensor
        The scalar to back-propagate.
    terms : dict of str -> float tensor (detached)
        :data:`LOSS_TERMS`; for RIM the same keys summed over the three groups, plus ``TT``,
        ``FT``, ``BT`` (each group's total) and ``rim_alpha``, ``rim_lap``, ``rim_comp``
        (CM loss of the RIM matte).
    """
    flags = official_flags(official)
    if rosta in ROSTA_CLASSES:
        terms = rosta_loss(outputs, batch, rosta, official=flags)
        total = sum(terms.values())
        if "quarter_weights" in flags:
            total = 0.25 * total
        return total, {"total": total.detach(), **{k: v.detach() for k, v in terms.items()}}
    if rosta != "RIM":
        raise ValueError(f"rosta must be 'TT', 'FT', 'BT' or 'RIM', got {rosta!r}")
    if "rosta" not in outputs:
        raise ValueError("rosta='RIM' needs the model's per-RoSTa outputs (outputs['rosta'])")
    groups, summed = {}, {}
    for name in ("TT", "FT", "BT"):
        head = outputs["rosta"]["FT" if name == "BT" and "rim_bt_reads_ft" in flags else name]
        terms = rosta_loss(head, batch, name, official=flags - {"ft_bt_glance_targets"})
        groups[name] = sum(terms.values())
        for key, value in terms.items():
            summed[key] = summed.get(key, 0.0) + value
    final = collaborative_matting_loss(outputs["fusion"], batch, official=flags)
    total = sum(groups.values()) + sum(final.values())
    report = {"total": total, **summed, **groups, "rim_alpha": final["alpha"], "rim_lap": final["lap"],
              "rim_comp": final["comp"]}
    return total, {k: v.detach() for k, v in report.items()}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_KERNELS: dict = {}


def _blur_kernel(size: int, sigma: float, gist: bool, device) -> torch.Tensor:
    key = (size, sigma, gist, str(device))
    if key not in _KERNELS:
        d = torch.arange(size, dtype=torch.float64) - size // 2
        if gist:
            g = torch.exp(-(d ** 2) / sigma ** 2)
            kernel = g[None, :] + g[:, None]
        else:
            g = torch.exp(-(d ** 2) / (2 * sigma ** 2))
            kernel = g[:, None] * g[None, :]
        kernel = (kernel / kernel.sum()).float().to(device)
        _KERNELS[key] = kernel[None, None]
    return _KERNELS[key]


def _check_rosta(rosta: str) -> None:
    if rosta not in ROSTA_CLASSES:
        raise ValueError(f"rosta must be 'TT', 'FT' or 'BT' here, got {rosta!r}")


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")
