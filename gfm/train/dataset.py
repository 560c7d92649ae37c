"""Training samples of GFM (Sect. 5.2 "Implementation details"; RoSTa targets of Sect. 3.4).

Each sample is one training image (ORI-Track: an original AM-2k image; COMP-Track: a composite of
a route of stage 3) with its alpha matte, foreground F and background B, turned into a square
crop as the paper describes: a crop of a size drawn from ``crop_sizes`` (paper {640, 960, 1280}),
resized to ``input_size`` (paper 320), flipped horizontally with probability 0.5. As in the
official ``MattingTransform``, the crop's top-left corner is, with probability 0.5, a random
pixel of the trimap's transition area (else a random pixel), so that most crops hold some
transition; a crop size not smaller than the image's short side falls back to ``input_size``
(or the short side).

RoSTa targets are computed per sample from the full-resolution alpha: trimap (kernel 25),
erosion and dilation masks (kernel 50) -- :mod:`gfm.core.trimap`; scale the kernels with the images
(the sample profile uses smaller ones). Image, F, B and alpha are resized with bilinear
interpolation as the official code does; the label maps with nearest neighbour (the official
code resizes them bilinearly too and then thresholds, which turns mixed border pixels into
"transition" for the glance loss but drops them from the focus loss).

Speed (see ``benchmarks/bench_dataset.py``): files are decoded with OpenCV, the crop is taken
first and the erosion/dilation are computed only on the crop grown by the kernel radius (the
result is identical to full-image morphology); ``cache=True`` keeps decoded images and trimaps in
memory (per worker), which is what makes small datasets fast.

F and B. The composition loss (Eq. 7) needs them. The embedded world provides the exact F and B
of every training image (``train/fg``, ``train/bg``) and stage 3 writes them beside each
composite. Real AM-2k ships no F/B for the ORI-Track; then ``fg_bg="auto"`` does what the
official code does by default (``--fg_generate alpha_blending``): ``F = alpha * I`` and
``B = (1 - alpha) * I``. Its alternative, ``closed_form`` (the paper's setting), reads F/B computed
beforehand: ``fg_bg="estimated"`` reads ``<composites>/ori``, the training images with F and B
estimated by ``compose.fg_method`` in stage 3 (:func:`gfm.compose.build.build_ori_estimated`).

COMP-Track, offline or online. A route folder made once by stage 3 (``compose.mode: offline``)
holds composites read back every epoch (:class:`MattingDataset`); a route folder holding a recipe
(``online``, :mod:`gfm.compose.online`) gives an :class:`OnlineCompositeDataset`, which composes
every sample afresh each epoch from the cached layers (a new background and new RSSN decisions,
as the paper composes "on-the-fly during training"; N foregrounds x K samples per epoch, see
:mod:`gfm.compose.online`). :func:`training_dataset` picks the right one; crop, resize, RoSTa maps
and tensors are the same code for both.

Random draws depend only on ``(seed, epoch, index)`` (:meth:`MattingDataset.set_epoch`), so a
run is reproducible whatever the number of data-loading workers, and resumable.

Network input: :func:`to_tensor_input` -- RGB float in [0, 255], no mean/std normalisation, the
official code's convention and the same as :func:`gfm.model.network.image_to_input`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from gfm.compose.online import LAYERS_DIR, RECIPE_FILE, OnlineRoute, is_online
from gfm.core import trimap as rosta_trimap
from gfm.core.config import ORI_ESTIMATED, ORI_TRACK
from gfm.core.io import ImageError, list_images, read_alpha, read_image
from gfm.core.layout import Split, matting_split

__all__ = [
    "SampleFiles",
    "CropDraw",
    "to_tensor_input",
    "ori_track_samples",
    "composite_samples",
    "training_samples",
    "training_dataset",
    "rosta_maps",
    "draw_crop",
    "make_sample",
    "MattingDataset",
    "OnlineCompositeDataset",
]

#: Sub-folders of one composition route written by stage 3: ``<composites>/<route>/<folder>/``.
COMPOSITE_FOLDERS = ("image", "alpha", "fg", "bg")


@dataclass(frozen=True)
class SampleFiles:
    """The files of one training sample (``fg``/``bg`` None: derive them by alpha blending)."""

    name: str
    image: Path
    alpha: Path
    fg: Path | None = None
    bg: Path | None = None


@dataclass(frozen=True)
class CropDraw:
    """The random draws of one sample: square crop ``[top:top+size, left:left+size]``, flip."""

    size: int
    top: int
    left: int
    flip: bool


def to_tensor_input(image_uint8: np.ndarray) -> torch.Tensor:
    """The network input: uint8 RGB H x W x 3 -> float32 3 x H x W in [0, 255] (N x H x W x 3 -> N x 3 x H x W).

    No mean/std normalisation: the official training and test code feed GFM RGB values in
    [0, 255], and so must inference (:func:`gfm.model.network.image_to_input` is the batched twin).
    """
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise ValueError(f"image_uint8 must be a uint8 H x W x 3 or N x H x W x 3 array, "
                         f"got {image.dtype} {image.shape}")
    axes = (2, 0, 1) if image.ndim == 3 else (0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(axes), dtype=np.float32))


# --------------------------------------------------------------------------------------------
# Which files
# --------------------------------------------------------------------------------------------

def ori_track_samples(datasets: str | Path, split: str = "train", *, fg_bg: str = "auto",
                      on_bad_sample: str = "fail") -> list[SampleFiles]:
    """ORI-Track samples of ``<datasets>/am2k/<split>``: ``original`` + ``mask`` (+ ``fg``/``bg``).

    ``fg_bg``: ``"auto"`` uses the ``fg``/``bg`` folders when they exist, else alpha blending;
    ``"files"`` requires them; ``"alpha_blending"`` ignores them. An image without its mask (or
    F/B when they are used) raises :class:`FileNotFoundError` naming the file
    (``on_bad_sample="fail"``) or is left out with a warning (``"skip"``). (``"estimated"``: see
    :func:`training_samples`, which reads stage 3's ``<composites>/ori`` then.)
    """
    if fg_bg not in ("auto", "files", "alpha_blending"):
        raise ValueError(f"fg_bg must be 'auto', 'files' or 'alpha_blending', got {fg_bg!r}")
    return _split_samples(matting_split(datasets, split), fg_bg, on_bad_sample)


def composite_samples(composites: str | Path, route: str, *, on_bad_sample: str = "fail") -> list[SampleFiles]:
    """COMP-Track samples of one offline route: ``<composites>/<route>/{image,alpha,fg,bg}/<name>.*``."""
    root = Path(composites) / route
    if is_online(root):
        raise ValueError(f"{root / RECIPE_FILE}: {root} is an online route (layers to compose from, no "
                         f"composites): read it with training_dataset or OnlineCompositeDataset")
    if (root / LAYERS_DIR).is_dir():
        raise FileNotFoundError(f"{root / RECIPE_FILE}: missing: {root} holds an online route's layers but no "
                                f"recipe (re-run the compose stage)")
    if not (root / "image").is_dir():
        raise FileNotFoundError(f"{root / 'image'}: no composites of route {route!r} (run the compose stage)")
    partners = {key: root / key for key in ("alpha", "fg", "bg")}
    return _pair(list_images(root / "image"), partners, on_bad_sample)


def training_samples(track: str, datasets: str | Path, composites: str | Path, *,
                     fg_bg: str = "auto", on_bad_sample: str = "fail") -> list[SampleFiles]:
    """The samples of a training track: ``"ori"`` (ORI-Track) or an offline composition route's name.

    ORI-Track with ``fg_bg="estimated"``: ``<composites>/ori`` (stage 3's training images with
    estimated F and B), else ``<datasets>/am2k/train`` (:func:`ori_track_samples`).
    """
    if track == ORI_TRACK:
        if fg_bg == ORI_ESTIMATED:
            folders = Split(Path(composites) / ORI_TRACK)
            if not folders.original.is_dir():
                raise FileNotFoundError(f"{folders.original}: no ORI-Track set with estimated F and B "
                                        f"(train.fg_bg: estimated; run the compose stage)")
            return _split_samples(folders, "files", on_bad_sample)
        return ori_track_samples(datasets, "train", fg_bg=fg_bg, on_bad_sample=on_bad_sample)
    return composite_samples(composites, track, on_bad_sample=on_bad_sample)


def training_dataset(track: str, datasets: str | Path, composites: str | Path, *, fg_bg: str = "auto",
                     on_bad_sample: str = "fail", **options) -> "MattingDataset":
    """The training set of a track: an :class:`OnlineCompositeDataset` for a route folder holding a
    recipe (``compose.mode: online``), else a :class:`MattingDataset` of :func:`training_samples`.

    ``options``: the keywords of :class:`MattingDataset` (input size, crops, kernels, seed, cache).
    """
    route = Path(composites) / track
    if track != ORI_TRACK and is_online(route):
        return OnlineCompositeDataset(route, on_bad_sample=on_bad_sample, **options)
    return MattingDataset(training_samples(track, datasets, composites, fg_bg=fg_bg, on_bad_sample=on_bad_sample),
                          on_bad_sample=on_bad_sample, **options)


# --------------------------------------------------------------------------------------------
# One sample
# --------------------------------------------------------------------------------------------

def rosta_maps(alpha: np.ndarray, trimap_kernel: int = 25, ftbt_kernel: int = 50) -> dict:
    """RoSTa target maps of a uint8 alpha (Sect. 3.4): ``trimap`` (0/128/255), ``erosion``, ``dilation`` (0/255)."""
    return {"trimap": rosta_trimap.trimap(alpha, trimap_kernel),
            "erosion": rosta_trimap.erosion_mask(alpha, ftbt_kernel),
            "dilation": rosta_trimap.dilation_mask(alpha, ftbt_kernel)}


def draw_crop(trimap: np.ndarray, rng: np.random.Generator, *, crop_sizes=(640, 960, 1280),
              input_size: int = 320, p_transition: float = 0.5, p_flip: float = 0.5) -> CropDraw:
    """Draw crop size, position and flip for one sample (the official ``MattingTransform``'s draws).

    The top-left corner is, with probability ``p_transition``, a random transition pixel of
    ``trimap`` (value 128), otherwise (or when there is none) a random pixel; only positions where
    the crop fits are drawn.
    """
    h, w = trimap.shape[:2]
    size = int(crop_sizes[rng.integers(len(crop_sizes))])
    if size >= min(h, w):
        size = min(input_size, min(h, w))
    valid = trimap[: h - size + 1, : w - size + 1]
    use_transition = rng.random() < p_transition
    candidates = np.flatnonzero(valid == rosta_trimap.UNKNOWN) if use_transition else np.empty(0, np.int64)
    if candidates.size:
        flat = int(candidates[rng.integers(candidates.size)])
    else:
        flat = int(rng.integers(valid.size))
    top, left = divmod(flat, valid.shape[1])
    return CropDraw(size, top, left, bool(rng.random() < p_flip))


def make_sample(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray | None, bg: np.ndarray | None,
                trimap: np.ndarray, draw: CropDraw, *, input_size: int = 320,
                ftbt_kernel: int = 50) -> dict:
    """Crop, resize and flip one sample and compute its RoSTa targets (numpy arrays).

    Parameters
    ----------
    image, fg, bg : uint8 H x W x 3 (``fg``/``bg`` None: alpha blending of the crop)
    alpha : uint8 H x W
    trimap : uint8 H x W, :func:`gfm.core.trimap.trimap` of ``alpha`` (full resolution)
    draw : :class:`CropDraw`

    Returns
    -------
    dict
        ``image``, ``fg``, ``bg`` (uint8 S x S x 3, or float32 in [0, 255] for blended F/B),
        ``alpha`` (uint8 S x S), ``trimap`` (uint8 0/128/255), ``erosion`` and ``dilation``
        (uint8 0/255), S = ``input_size``. Erosion/dilation of the crop equal those of the full
        image cropped (computed on the crop grown by the kernel radius).
    """
    top, left, size = draw.top, draw.left, draw.size
    rows, cols = slice(top, top + size), slice(left, left + size)
    out_size = (input_size, input_size)

    def fit(crop, interpolation):  # crop -> flip -> resize, the official order
        return cv2.resize(cv2.flip(crop, 1) if draw.flip else crop, out_size, interpolation=interpolation)

    pad = ftbt_kernel // 2 + 1
    h, w = alpha.shape
    t0, l0 = max(top - pad, 0), max(left - pad, 0)
    grown = alpha[t0: min(top + size + pad, h), l0: min(left + size + pad, w)]
    inner = (slice(top - t0, top - t0 + size), slice(left - l0, left - l0 + size))
    erosion = rosta_trimap.erosion_mask(grown, ftbt_kernel)[inner]
    dilation = rosta_trimap.dilation_mask(grown, ftbt_kernel)[inner]

    sample = {"image": fit(image[rows, cols], cv2.INTER_LINEAR), "alpha": fit(alpha[rows, cols], cv2.INTER_LINEAR),
              "trimap": fit(trimap[rows, cols], cv2.INTER_NEAREST),
              "erosion": fit(erosion, cv2.INTER_NEAREST), "dilation": fit(dilation, cv2.INTER_NEAREST)}
    if fg is None or bg is None:
        a = sample["alpha"][..., None].astype(np.float32) / 255.0
        sample["fg"], sample["bg"] = sample["image"] * a, sample["image"] * (1.0 - a)
    else:
        sample["fg"], sample["bg"] = fit(fg[rows, cols], cv2.INTER_LINEAR), fit(bg[rows, cols], cv2.INTER_LINEAR)
    return sample


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

class MattingDataset(Dataset):
    """Training samples of GFM as tensors (module docstring).

    ``dataset[i]`` is a dict: ``image`` (3 x S x S float in [0, 255], the network input),
    ``fg``, ``bg`` (same), ``alpha`` (1 x S x S in [0, 1]), ``trimap`` (S x S int64 classes
    0/1/2), ``erosion``, ``dilation`` (1 x S x S float 0/1), ``name`` and ``index``: the batch
    layout :func:`gfm.train.losses.gfm_loss` reads.

    Parameters
    ----------
    samples : list of SampleFiles
    input_size : int
        Training resolution S (paper 320; multiple of 32).
    crop_sizes : sequence of int
        Crop sizes to draw from (paper 640, 960, 1280).
    trimap_kernel, ftbt_kernel : int
        Kernel sizes of the TT trimap (paper 25) and of the FT/BT masks (paper 50).
    p_flip, p_transition : float
        Horizontal flip probability (paper 0.5); probability that the crop corner is a
        transition pixel (official code 0.5).
    seed : int
        With the epoch (:meth:`set_epoch`) and the index, the seed of every random draw.
    on_bad_sample : {"fail", "skip"}
        An unreadable file or an image/alpha/F/B size mismatch raises :class:`gfm.core.io.ImageError`
        naming the file (``fail``), or is reported with a warning and replaced by the next good
        sample (``skip``; the names are kept in ``skipped``).
    cache : bool
        Keep decoded images and trimaps in memory (per worker process).
    """

    def __init__(self, samples: list[SampleFiles], *, input_size: int = 320, crop_sizes=(640, 960, 1280),
                 trimap_kernel: int = 25, ftbt_kernel: int = 50, p_flip: float = 0.5,
                 p_transition: float = 0.5, seed: int = 0, on_bad_sample: str = "fail", cache: bool = False):
        if on_bad_sample not in ("fail", "skip"):
            raise ValueError(f"on_bad_sample must be 'fail' or 'skip', got {on_bad_sample!r}")
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        if not samples:
            raise ValueError("samples: no training samples")
        crop_sizes = tuple(int(c) for c in crop_sizes)
        if not crop_sizes or min(crop_sizes) < 1:
            raise ValueError(f"crop_sizes must be positive sizes, got {crop_sizes}")
        self.samples = list(samples)
        self.input_size, self.crop_sizes = int(input_size), crop_sizes
        self.trimap_kernel, self.ftbt_kernel = int(trimap_kernel), int(ftbt_kernel)
        self.p_flip, self.p_transition = float(p_flip), float(p_transition)
        self.seed, self.epoch = int(seed), 0
        self.on_bad_sample, self.cache = on_bad_sample, bool(cache)
        self.skipped: list[str] = []
        self._cache: dict = {}
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before iterating a DataLoader)."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch (a function of seed, epoch, index)."""
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def load(self, index: int) -> tuple:
        """Decoded ``(image, alpha, fg, bg, trimap)`` of sample ``index`` in the current epoch (validated;
        cached if asked)."""
        if index in self._cache:
            return self._cache[index]
        files = self.samples[index]
        image, alpha = read_image(files.image), read_alpha(files.alpha)
        fg = read_image(files.fg) if files.fg is not None else None
        bg = read_image(files.bg) if files.bg is not None else None
        for path, array in ((files.alpha, alpha), (files.fg, fg), (files.bg, bg)):
            if array is not None and array.shape[:2] != image.shape[:2]:
                raise ImageError(f"{path}: size {array.shape[1]}x{array.shape[0]} does not match the image "
                                 f"{files.image} ({image.shape[1]}x{image.shape[0]})")
        loaded = (image, alpha, fg, bg, rosta_trimap.trimap(alpha, self.trimap_kernel))
        if self.cache:
            self._cache[index] = loaded
        return loaded

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.samples)):
            i = (int(index) + offset) % len(self.samples)
            if i in self._bad:
                continue
            try:
                image, alpha, fg, bg, trimap = self.load(i)
            except ImageError as error:
                if self.on_bad_sample == "fail":
                    raise ImageError(f"training sample {self.samples[i].name!r}: {error}") from error
                warnings.warn(f"skipping training sample {self.samples[i].name!r}: {error}", stacklevel=2)
                self._bad.add(i)
                self.skipped.append(self.samples[i].name)
                continue
            rng = self.rng(index)
            draw = draw_crop(trimap, rng, crop_sizes=self.crop_sizes, input_size=self.input_size,
                             p_transition=self.p_transition, p_flip=self.p_flip)
            sample = make_sample(image, alpha, fg, bg, trimap, draw, input_size=self.input_size,
                                 ftbt_kernel=self.ftbt_kernel)
            return {**_to_tensors(sample), "name": self.samples[i].name, "index": i}
        raise ImageError(f"no readable training sample among {len(self.samples)} (all skipped: {self.skipped[:5]}...)")


class OnlineCompositeDataset(MattingDataset):
    """COMP-Track samples composed on the fly from an online route folder (``compose.mode: online``).

    ``dataset[i]`` has the layout of :class:`MattingDataset`'s. Sample ``i`` of epoch ``e`` is
    :meth:`gfm.compose.online.OnlineRoute.composite` ``(i, e, seed)`` -- foreground ``i // K`` on a
    background and with RSSN decisions drawn for ``(seed, e, i)`` -- then cropped, resized and
    flipped like any sample (draws from :meth:`MattingDataset.rng`). ``len`` is N foregrounds x K.
    ``cache=True`` keeps the decoded layers and the trimaps of the foregrounds in memory (per
    worker), never a composite.

    Parameters
    ----------
    route_dir : path
        ``<compose.out>/<route>`` written with ``compose.mode: online`` (its ``recipe.json`` is
        required: an error names it otherwise).
    **options
        The keywords of :class:`MattingDataset`.
    """

    def __init__(self, route_dir: str | Path, **options):
        route = OnlineRoute(route_dir, cache=options.get("cache", False))
        super().__init__(list(route.samples), **options)
        self.route = route
        self._trimaps: dict = {}

    def load(self, index: int) -> tuple:
        slot = self.samples[index]
        composite = self.route.composite(index, self.epoch, self.seed)
        trimap = self._trimaps.get(slot.foreground)
        if trimap is None:
            trimap = rosta_trimap.trimap(composite.alpha, self.trimap_kernel)
            if self.cache:
                self._trimaps[slot.foreground] = trimap
        return composite.image, composite.alpha, composite.fg, composite.bg, trimap


def _to_tensors(sample: dict) -> dict:
    trimap = sample["trimap"]
    classes = np.where(trimap == rosta_trimap.FOREGROUND, 2, np.where(trimap == rosta_trimap.UNKNOWN, 1, 0))
    return {"image": to_tensor_input(sample["image"]),
            "fg": _chw(sample["fg"]), "bg": _chw(sample["bg"]),
            "alpha": torch.from_numpy(sample["alpha"].astype(np.float32) / 255.0)[None],
            "trimap": torch.from_numpy(classes.astype(np.int64)),
            "erosion": torch.from_numpy((sample["erosion"] > 127).astype(np.float32))[None],
            "dilation": torch.from_numpy((sample["dilation"] > 127).astype(np.float32))[None]}


def _chw(image: np.ndarray) -> torch.Tensor:
    # numpy does the layout change: torch's small-tensor kernels are slow in busy data workers
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


def _split_samples(folders: Split, fg_bg: str, on_bad_sample: str) -> list[SampleFiles]:
    use_files = fg_bg == "files" or (fg_bg == "auto" and folders.fg.is_dir() and folders.bg.is_dir())
    partners = {"alpha": folders.mask, **({"fg": folders.fg, "bg": folders.bg} if use_files else {})}
    return _pair(list_images(folders.original), partners, on_bad_sample)


def _pair(images: list[Path], partners: dict, on_bad_sample: str) -> list[SampleFiles]:
    if on_bad_sample not in ("fail", "skip"):
        raise ValueError(f"on_bad_sample must be 'fail' or 'skip', got {on_bad_sample!r}")
    samples = []
    for path in images:
        found = {key: _find(folder, path.stem) for key, folder in partners.items()}
        missing = [f"{partners[key]}/{path.stem}.(png|jpg)" for key, value in found.items() if value is None]
        if missing:
            message = f"{path}: training image without its partner file(s) {missing}"
            if on_bad_sample == "fail":
                raise FileNotFoundError(message)
            warnings.warn(f"skipping: {message}", stacklevel=3)
            continue
        samples.append(SampleFiles(path.stem, path, **found))
    if not samples:
        raise FileNotFoundError(f"{images[0].parent if images else 'training folder'}: no usable training images")
    return samples


def _find(folder: Path, name: str) -> Path | None:
    for suffix in (".png", ".jpg", ".jpeg", ".PNG", ".JPG"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None
