"""GFM: the Glance and Focus Matting network (Sect. 3, Fig. 2) and its RoSTa integration (RIM).

A shared encoder (:mod:`gfm.model.backbones`) feeds two decoders:

* the glance decoder (GD) D_G^L..D_G^0, each block three 3x3 convolutions and an up-sampling,
  with a pyramid pooling module (PPM) after E_L whose output reaches every block (the paper
  says "element-wise sum"; the released model concatenates, and so do we: the checkpoint
  layout is the reference); it predicts C-class probabilities (Sect. 3.2, Eq. 2);
* the focus decoder (FD) D_F^L..D_F^0 with a bridge block (three dilated 3x3 convolutions)
  after E_L and U-Net shortcuts from each E_i; it predicts the alpha matte of the transition
  area (Sect. 3.3, trained by Eq. 3).

Collaborative matting (Sect. 3.5) merges both according to the RoSTa (Sect. 3.4):
TT (trimap, C=3), FT (foreground + transition, C=2) or BT (background + transition, C=2).
RIM (Sect. 5.5, "RoSTa Integration") gives GD and FD one head per RoSTa and fuses the three
collaborative mattes with a 1x1 conv, a squeeze-and-excitation layer and another 1x1 conv.

Input convention: the network sees RGB images as float **in [0, 255]**, N x 3 x H x W, without
mean/std normalisation -- exactly what the official test and training code feed it
(``skimage.transform.resize(img) * 255``). H and W must be multiples of 32. Use
:func:`image_to_input` to get there from a uint8 image.

Module names follow the official ``core/gfm.py`` so that :func:`gfm.model.checkpoint.load_official`
reads the released checkpoints without a key mapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfm.model.backbones import Encoder, create_encoder, list_backbones, load_pretrained
from gfm.model.complexity import count_parameters
from gfm.model.fuse import fold_batch_norms, fuse_pointwise, keep_large_allocations_on_heap

__all__ = [
    "ROSTAS",
    "GFM",
    "build_gfm",
    "collaborative_matting",
    "count_parameters",
    "image_to_input",
    "optimise_for_inference",
    "fold_batch_norms",
    "list_backbones",
]

ROSTAS = ("TT", "FT", "BT", "RIM")
GLANCE_CLASSES = {"TT": 3, "FT": 2, "BT": 2}


def build_gfm(backbone: str, rosta: str = "TT", *, pretrained: str | os.PathLike | bool | None = "none",
              decoder: str = "two", ppm: str = "five", bridge: bool = True,
              **backbone_kwargs) -> "GFM":
    """Build GFM on a registered backbone.

    Parameters
    ----------
    backbone : str
        A name from :func:`gfm.model.backbones.list_backbones` (``r34``, ``r34_2b``, ``d121``,
        ``r101``, ``r18_lite``, ``r18_slim``).
    rosta : {"TT", "FT", "BT", "RIM"}
        Representation of semantic and transition areas (Sect. 3.4), or RIM (Sect. 5.5).
    pretrained : {"none", "imagenet"} or path
        The backbone's initialisation, as ``train.pretrained`` (Sect. 3.1: ImageNet weights):
        ``"none"`` keeps PyTorch's random initialisation, ``"imagenet"`` loads torchvision's
        ImageNet weights from torch hub's cache (downloading them if absent), a path loads that
        state dict, checked; ``True``/``False``/``None`` stand for ``"imagenet"``/``"none"``/``"none"``.
        :func:`gfm.model.backbones.load_pretrained` does it (the checks and the
        :class:`~gfm.model.backbones.PretrainedError` of
        :func:`~gfm.model.backbones.prepare_pretrained`, which a caller runs first to fail before
        any work). Nothing is downloaded unless ``"imagenet"`` is asked for.
    decoder : {"two", "single"}
        ``"single"`` is the SINGLE ablation of Table 4 (see :class:`GFM`).
    ppm : {"five", "one", "none"}
        Pyramid pooling connections of GD (Table 4): all blocks, only D_G^L, or no PPM.
    bridge : bool
        Keep the bridge block of FD (Table 4 "w/o BB" is ``False``).
    **backbone_kwargs
        Passed to the backbone constructor (e.g. ``width_divisor`` of ``r18_lite``).
    """
    encoder = create_encoder(backbone, **backbone_kwargs)
    load_pretrained(encoder, pretrained)
    return GFM(encoder, rosta, decoder=decoder, ppm=ppm, bridge=bridge, backbone=backbone)


class GFM(nn.Module):
    """Glance and Focus Matting network (Fig. 2).

    ``forward(x)`` takes RGB float in [0, 255], N x 3 x H x W (H, W multiples of 32), and
    returns a dict:

    ``glance``        N x C x H x W class probabilities of GD (sigmoid, as the official model;
                      C = 3 for TT: background/transition/foreground, 2 for FT and BT)
    ``glance_logits`` the same before the sigmoid
    ``focus``         N x 1 x H x W alpha of FD in the transition area (sigmoid)
    ``focus_logits``  the same before the sigmoid
    ``fusion``        N x 1 x H x W the collaborative matte (Sect. 3.5)

    With ``rosta="RIM"`` the dict also has ``rosta``: ``{"TT": {...}, "FT": {...}, "BT": {...}}``
    holding those five entries for each RoSTa head; the top-level ``glance``/``focus`` entries
    are the TT head's, and the top-level ``fusion`` is the RIM output, which -- as in the
    official model -- is the raw output of RIM's last 1x1 convolution (no sigmoid, no clipping).

    ``decoder="single"`` (the SINGLE ablation of Table 4; the paper says only "a single decoder
    to replace both FD and GD") is our reading: one decoder with the focus decoder's topology
    (bridge block after E_L if ``bridge``, U-Net shortcuts) whose last layer predicts C + 1
    channels, the first C read as glance logits and the last as focus logits, followed by the
    same collaborative matting. The PPM belongs to GD, so ``ppm`` must stay ``"five"`` there.
    Its blocks are named ``decoder{i}`` (no ``_g``/``_f`` suffix).
    """

    def __init__(self, encoder: Encoder, rosta: str = "TT", *, decoder: str = "two",
                 ppm: str = "five", bridge: bool = True, backbone: str = "custom"):
        super().__init__()
        if rosta not in ROSTAS:
            raise ValueError(f"rosta must be one of {ROSTAS}, got {rosta!r}")
        if decoder not in ("two", "single"):
            raise ValueError(f"decoder must be 'two' or 'single', got {decoder!r}")
        if ppm not in ("five", "one", "none"):
            raise ValueError(f"ppm must be 'five', 'one' or 'none', got {ppm!r}")
        if decoder == "single" and ppm != "five":
            raise ValueError(f"ppm={ppm!r} has no meaning with decoder='single' (the PPM belongs to "
                             f"the glance decoder, which SINGLE drops); leave ppm='five'")
        self.backbone, self.rosta, self.decoder, self.ppm, self.bridge = backbone, rosta, decoder, ppm, bool(bridge)
        self.levels = len(encoder.stages) - 1
        self.strides = tuple(encoder.strides)
        self.heads = ("tt", "ft", "bt") if rosta == "RIM" else ("",)

        if encoder.holder is not None:
            setattr(self, encoder.holder_name, encoder.holder)
        self._holder_name = encoder.holder_name
        for i, stage in enumerate(encoder.stages):
            setattr(self, f"encoder{i}", stage)

        L, ch, ctx = self.levels, encoder.channels, encoder.context_channels
        out = {L - j: w[2] for j, w in enumerate(encoder.widths)}           # D_i output channels
        mids = {L - j: w[:2] for j, w in enumerate(encoder.widths)}
        full_res = encoder.strides[0] == 1

        if decoder == "two":
            if ppm != "none":
                self.psp_module = PyramidPooling(ch[L], ctx)
            if ppm == "five":
                for k in range(L, 0, -1):
                    scale = encoder.strides[L] // encoder.strides[k - 1]
                    setattr(self, f"psp{k}", _conv_up(ctx, out[k], scale))
            gin = (ctx if ppm != "none" else 0) + ch[L]
            for i in range(L, 0, -1):
                setattr(self, f"decoder{i}_g", _decoder_block(gin, *mids[i], out[i], bn_relu=True,
                                                              upsample=self._upsamples(i)))
                gin = out[i] * (2 if ppm == "five" else 1)
            if full_res:  # r2b: D1 already at full resolution, psp1 exists but is unused
                gin = out[1]

        suffix = "_f" if decoder == "two" else ""
        if self.bridge:
            self.bridge_block = _bridge_block(ch[L], ctx)
        fin = (ctx if self.bridge else 0) + ch[L]
        for i in range(L, 0, -1):
            setattr(self, f"decoder{i}{suffix}", _decoder_block(fin, *mids[i], out[i], bn_relu=True,
                                                                upsample=self._upsamples(i)))
            fin = out[i] + ch[i - 1]
        if full_res:
            fin = out[1]

        for head in self.heads:
            rosta_h = head.upper() or rosta
            name = f"_{head}" if head else ""
            if decoder == "two":
                setattr(self, f"decoder0_g{name}", _head(gin, encoder.head_width, GLANCE_CLASSES[rosta_h], full_res))
                setattr(self, f"decoder0_f{name}", _head(fin, encoder.head_width, 1, full_res))
            else:
                setattr(self, f"decoder0{name}", _head(fin, encoder.head_width, GLANCE_CLASSES[rosta_h] + 1, full_res))
        if rosta == "RIM":
            self.rim = nn.Sequential(nn.Conv2d(3, 16, 1), SqueezeExcitation(16), nn.Conv2d(16, 1, 1))

    # ----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict:
        feats = self._encode(x)
        if self.decoder == "two":
            g = self._glance(feats)
            f = self._focus(feats, "_f")
        else:
            g = f = self._focus(feats, "")
        results = {}
        for head in self.heads:
            rosta = head.upper() or self.rosta
            name = f"_{head}" if head else ""
            if self.decoder == "two":
                glance_logits = getattr(self, f"decoder0_g{name}")(g)
                focus_logits = getattr(self, f"decoder0_f{name}")(f)
            else:
                logits = getattr(self, f"decoder0{name}")(f)
                glance_logits, focus_logits = logits[:, :-1], logits[:, -1:]
            glance, focus = torch.sigmoid(glance_logits), torch.sigmoid(focus_logits)
            results[rosta] = {"glance": glance, "glance_logits": glance_logits, "focus": focus,
                              "focus_logits": focus_logits,
                              "fusion": collaborative_matting(rosta, glance, focus)}
        if self.rosta != "RIM":
            return results[self.rosta]
        fused = self.rim(torch.cat([results[r]["fusion"] for r in ("TT", "FT", "BT")], 1))
        return {**results["TT"], "fusion": fused, "rosta": results}

    def unused_parameter_names(self) -> list[str]:
        """Parameters the forward pass never uses, kept for checkpoint compatibility.

        The backbone's ImageNet classifier (and, for r34_2b, the replaced 7x7 stem and the
        ``psp1`` branch; for d121, the final ``norm5``), which the official model also holds.
        """
        used = {id(p) for i in range(self.levels + 1) for p in getattr(self, f"encoder{i}").parameters()}
        names = []
        for name, p in self.named_parameters():  # de-duplicated: first (holder) name wins
            holder_part = self._holder_name and name.startswith(self._holder_name + ".")
            if holder_part and id(p) not in used:
                names.append(name)
        if self.strides[0] == 1 and hasattr(self, "psp1"):
            names += [f"psp1.{n}" for n, _ in self.psp1.named_parameters()]
        return names

    # ----------------------------------------------------------------------------------------
    def _upsamples(self, i: int) -> bool:
        return self.strides[i] != self.strides[i - 1]

    def _encode(self, x: torch.Tensor) -> list:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"GFM input must be N x 3 x H x W, got shape {tuple(x.shape)}")
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"GFM input height and width must be multiples of 32, got {tuple(x.shape[2:])}")
        feats = []
        for i in range(self.levels + 1):
            x = getattr(self, f"encoder{i}")(x)
            feats.append(x)
        return feats

    def _glance(self, feats: list) -> torch.Tensor:
        L = self.levels
        if self.ppm == "none":
            d = getattr(self, f"decoder{L}_g")(feats[L])
        else:
            ctx = self.psp_module(feats[L])
            d = getattr(self, f"decoder{L}_g")(self._join(ctx, feats[L]))
        for i in range(L - 1, 0, -1):
            inp = self._join(getattr(self, f"psp{i + 1}")(ctx), d) if self.ppm == "five" else d
            d = getattr(self, f"decoder{i}_g")(inp)
        if self.ppm == "five" and self.strides[0] != 1:
            d = self._join(self.psp1(ctx), d)
        return d

    def _focus(self, feats: list, suffix: str) -> torch.Tensor:
        L = self.levels
        top = self._join(self.bridge_block(feats[L]), feats[L]) if self.bridge else feats[L]
        d = getattr(self, f"decoder{L}{suffix}")(top)
        for i in range(L - 1, 0, -1):
            d = getattr(self, f"decoder{i}{suffix}")(self._join(d, feats[i]))
        if self.strides[0] != 1:
            d = self._join(d, feats[0])
        return d

    def _join(self, *parts: torch.Tensor):
        """Channel concatenation feeding a decoder block (:func:`gfm.model.fuse.fuse_pointwise` defers it)."""
        return torch.cat(parts, 1)


def collaborative_matting(rosta: str, glance: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
    """Collaborative matting (Sect. 3.5): merge the glance and focus predictions.

    The glance map is turned into hard labels by an arg-max over its C channels (as the
    released model does, on the sigmoid probabilities), then

    * TT (classes background 0 / transition 1 / foreground 2): the transition area takes the
      focus alpha, the foreground is 1, the background 0;
    * FT (classes 0 / 1 = foreground): alpha = label + focus, clipped at 1;
    * BT (classes 0 / 1 = foreground-or-transition): alpha = label - focus, clipped at 0.

    The result lies in [0, 1]. The arg-max carries no gradient: the collaborative-matting losses
    (Eq. 6-7) train FD only. Sect. 3.5 says both decoders are trained so "that the losses can be
    back-propagated to each of them via the CM module"; the official code's arg-max passes nothing
    to GD, and this project follows the official code (GD learns from Eq. 2 alone).

    Parameters
    ----------
    rosta : {"TT", "FT", "BT"}
    glance : torch.Tensor
        N x C x H x W class probabilities (C = 3 for TT, 2 otherwise).
    focus : torch.Tensor
        N x 1 x H x W alpha in [0, 1].

    Returns
    -------
    torch.Tensor
        N x 1 x H x W fused alpha matte.
    """
    if rosta not in GLANCE_CLASSES:
        raise ValueError(f"rosta must be 'TT', 'FT' or 'BT', got {rosta!r}")
    if glance.shape[1] != GLANCE_CLASSES[rosta]:
        raise ValueError(f"glance for rosta={rosta} must have {GLANCE_CLASSES[rosta]} channels, "
                         f"got {glance.shape[1]}")
    label = glance.argmax(dim=1, keepdim=True).to(focus.dtype)
    if rosta == "TT":
        return focus * (label == 1).to(focus.dtype) + (label == 2).to(focus.dtype)
    if rosta == "FT":
        return torch.clamp(label + focus, max=1.0)
    return torch.clamp(label - focus, min=0.0)


def image_to_input(image: np.ndarray) -> torch.Tensor:
    """uint8 RGB H x W x 3 image (or N x H x W x 3 batch) -> float tensor N x 3 x H x W in [0, 255]."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"image must be H x W x 3 or N x H x W x 3, got shape {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(0, 3, 1, 2)


def optimise_for_inference(model: GFM, device: str | torch.device = "cpu", precision: str = "fp32", *,
                           compile: bool = False) -> Callable[[torch.Tensor], dict]:
    """Return ``run(x) -> output dict`` for fast inference of ``model`` on ``device``.

    Works on a copy (the model itself is untouched): batch norms folded into the convolutions
    and channels-last layout (:mod:`gfm.model.fuse`), under ``torch.inference_mode``. On the CPU in
    ``fp32`` the convolutions also run with their ReLUs, residual additions and input
    concatenations fused into oneDNN primitives, and glibc keeps large blocks on the heap
    (:func:`gfm.model.fuse.keep_large_allocations_on_heap`, process-wide); the outputs equal the
    eval-mode model's to ~1e-5 on 0-255 inputs. ``bf16`` runs the folded copy under bfloat16
    autocast (CPU) / float16 autocast (CUDA) and returns float32 outputs -- only worth it on
    CPUs with native bf16 (AVX512-BF16/AMX) or on GPUs. ``compile=True`` also wraps the copy in
    ``torch.compile`` (inductor, weights frozen): tens of seconds per new input shape, then
    little further gain over the fused CPU path. ``benchmarks/bench_inference.py`` measures it.
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    device = torch.device(device)
    folded = fold_batch_norms(model).to(device)
    folded = folded.to(memory_format=torch.channels_last)
    if device.type == "cpu" and precision == "fp32" and not compile:
        fuse_pointwise(folded)
    if device.type == "cpu":
        keep_large_allocations_on_heap()
    forward = torch.compile(folded, dynamic=False, options={"freezing": True}) if compile else folded
    autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16

    def run(x: torch.Tensor) -> dict:
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if precision == "fp32":
                return _to_contiguous_float(forward(x))
            with torch.autocast(device.type, dtype=autocast_dtype):
                return _to_contiguous_float(forward(x))

    run.model = folded
    return run


# --------------------------------------------------------------------------------------------
# Building blocks (layer order = the official state-dict layout)
# --------------------------------------------------------------------------------------------

class PyramidPooling(nn.Module):
    """PPM (Zhao et al., 2017): average-pool to 1x1, 3x3 and 5x5 grids, 1x1 conv each,
    up-sample back (bilinear, corners aligned), concatenate with the input, 1x1 conv, ReLU."""

    def __init__(self, features: int, out_features: int, sizes: tuple = (1, 3, 5)):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), nn.Conv2d(features, features, 1, bias=False)) for s in sizes)
        self.bottleneck = nn.Conv2d(features * (len(sizes) + 1), out_features, kernel_size=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        priors = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=True) for stage in self.stages]
        return self.relu(self.bottleneck(torch.cat(priors + [x], 1)))


class SqueezeExcitation(nn.Module):
    """SE layer (Hu et al., 2018) of RIM: global average pool, FC/4, ReLU, FC, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return x * self.fc(self.avg_pool(x).view(n, c)).view(n, c, 1, 1)


def _conv_bn_relu(cin: int, cout: int, dilation: int = 1) -> list:
    return [nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _decoder_block(cin: int, mid1: int, mid2: int, cout: int, *, bn_relu: bool, upsample: bool) -> nn.Sequential:
    """A decoder block: three 3x3 convs (BN + ReLU after the first two, optionally the third),
    then an optional x2 bilinear up-sampling."""
    layers = _conv_bn_relu(cin, mid1) + _conv_bn_relu(mid1, mid2) + [nn.Conv2d(mid2, cout, 3, padding=1)]
    if bn_relu:
        layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if upsample:
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
    return nn.Sequential(*layers)


def _head(cin: int, width: int, cout: int, full_resolution: bool) -> nn.Sequential:
    """D0: a decoder block without the last BN/ReLU; a single 3x3 conv when E0 is full-size."""
    if full_resolution:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1))
    return _decoder_block(cin, width, width, cout, bn_relu=False, upsample=True)


def _conv_up(cin: int, cout: int, scale: int) -> nn.Sequential:
    """A PPM branch towards decoder block D_k: 3x3 conv, BN, ReLU, bilinear x``scale``."""
    return nn.Sequential(*_conv_bn_relu(cin, cout),
                         nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False))


def _bridge_block(cin: int, width: int) -> nn.Sequential:
    """Bridge block (Qin et al., 2019): three 3x3 convs with dilation 2, each BN + ReLU."""
    return nn.Sequential(*_conv_bn_relu(cin, width, 2), *_conv_bn_relu(width, width, 2),
                         *_conv_bn_relu(width, width, 2))


def _to_contiguous_float(out):
    if isinstance(out, dict):
        return {k: _to_contiguous_float(v) for k, v in out.items()}
    return out.float().contiguous()
