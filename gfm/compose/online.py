"""On-the-fly composition of the COMP-Track (Sect. 5.2; Pipeline 1 of Sect. 4 drawn afresh every epoch).

The paper composes its COMP-Track training images "on-the-fly during training", five backgrounds
per foreground. With ``compose.mode: online`` stage 3 does not freeze composites; it writes what
a training run needs to draw them (:func:`gfm.compose.build.build_online_route`)::

    <route>/recipe.json                    the draw's recipe (:func:`recipe`): route, RSSN knobs, seed, ...
    <route>/layers/alpha/<name>.<ext>      the training mattes
    <route>/layers/fg/<name>.png           F estimated by ``compose.fg_method`` (cached once)
    <route>/layers/backgrounds/<file>      the route's backgrounds (COCO or BG-20k train)
    <route>/layers/fg_denoised/<name>.png  denoised F       } routes that denoise only
    <route>/layers/bg_denoised/<stem>.png  denoised B       } (BM3D is slow: cached once)
    <route>/inspection/...                 a few composites as a run draws them (figures, domain gap)

and :class:`OnlineRoute` draws composite ``index`` of ``epoch`` from these files.

Epoch length: N foregrounds x K (``compose.k``) samples, sample ``index`` being foreground
``index // K`` on its ``index % K``-th background of the epoch -- the same count as the offline set,
so that ``epochs``, ``steps_per_epoch`` and the profiles' equal-step budgets (paper: 500 ORI-Track
epochs, 100 COMP-Track epochs of five composites per foreground, "about two days" each) mean
the same in both modes. The official loader has one sample per foreground on one fixed background
(``bg_list[i]``; its ``SAMPLE_BAGS = 5`` is never used), which gives one background, not the
paper's five, and a COMP epoch one fifth as long.

Draws: the K backgrounds of foreground i in an epoch are sampled without replacement (with
replacement only if there are fewer than K) from a generator seeded by (recipe seed, run seed,
epoch, i); the RSSN decisions (:func:`gfm.compose.rssn.compose_layers`, the one implementation of
Pipeline 1) come from a generator seeded by (recipe seed, run seed, epoch, index). A composite is
therefore a function of the recipe, the files, the run's seed, the epoch and the index only: the
same for any number of data-loading workers, different in every epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gfm.compose.rssn import Composite, RSSNConfig, compose_layers, peek
from gfm.core.io import ImageError, list_images, read_alpha, read_image

#: The recipe of an online route; its presence is what makes a route folder online.
RECIPE_FILE = "recipe.json"
#: Version of the recipe's format (part of the recipe: a new format re-runs training).
RECIPE_VERSION = 1
#: Folder of the layers composites are drawn from, and its sub-folders.
LAYERS_DIR = "layers"
ALPHA, FG, BACKGROUNDS, FG_DENOISED, BG_DENOISED = "alpha", "fg", "backgrounds", "fg_denoised", "bg_denoised"
#: Folder of the inspection composites (``image``, ``alpha``, ``fg``, ``bg``, ``records.csv``).
INSPECTION_DIR = "inspection"
#: Keys a recipe must hold.
RECIPE_KEYS = ("version", "mode", "route", "config", "seed", "fg_method", "denoiser")

_BACKGROUND_STREAM = 0xB6  # keeps the background generator apart from the decisions of sample index


@dataclass(frozen=True)
class Slot:
    """Sample ``index`` of an epoch: foreground ``foreground`` on its ``slot``-th background."""

    name: str
    foreground: int
    slot: int


def recipe(route: str, config: RSSNConfig, *, seed: int, fg_method: str, denoiser: str) -> dict:
    """The recipe of an online route: everything the draws depend on besides the files."""
    return {"version": RECIPE_VERSION, "mode": "online", "route": route, "config": config.to_dict(),
            "seed": int(seed), "fg_method": fg_method, "denoiser": denoiser}


def is_online(route_dir: str | Path) -> bool:
    """Whether ``route_dir`` is an online route (holds a :data:`RECIPE_FILE`)."""
    return (Path(route_dir) / RECIPE_FILE).is_file()


class OnlineRoute:
    """The layers of one online route and the draw of its composites (module docstring).

    Opening checks the recipe and that every file the draws may read exists, and raises
    ``FileNotFoundError`` / ``ValueError`` naming the file at fault. ``cache=True`` keeps decoded
    layers in memory (per process). Reading a file raises :class:`gfm.core.io.ImageError` naming it.
    """

    def __init__(self, folder: str | Path, *, cache: bool = False):
        self.folder = Path(folder)
        path = self.folder / RECIPE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no recipe: {self.folder} is not an online route "
                                    f"(compose.mode online writes it; run the compose stage)")
        self.recipe = _read_recipe(path)
        try:
            self.config = RSSNConfig(**self.recipe["config"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: config: {error}") from None
        self.route, self.seed = self.recipe["route"], int(self.recipe["seed"])
        self.denoiser = self.recipe["denoiser"]
        layers = self.folder / LAYERS_DIR
        alphas = list_images(layers / ALPHA)
        if not alphas:
            raise FileNotFoundError(f"{layers / ALPHA}: no training mattes")
        self.names = tuple(p.stem for p in alphas)
        self.alpha_paths = tuple(alphas)
        self.fg_paths = tuple(_required(layers / FG / f"{name}.png", "the cached F") for name in self.names)
        self.backgrounds = tuple(list_images(layers / BACKGROUNDS))
        if not self.backgrounds:
            raise FileNotFoundError(f"{layers / BACKGROUNDS}: no backgrounds")
        self.denoises = self.config.use_denoise and self.config.p_denoise > 0
        self.fg_denoised = self.bg_denoised = ()
        if self.denoises:
            self.fg_denoised = tuple(_required(layers / FG_DENOISED / f"{name}.png", "the cached denoised F")
                                     for name in self.names)
            self.bg_denoised = tuple(_required(layers / BG_DENOISED / f"{p.stem}.png", "the cached denoised B")
                                     for p in self.backgrounds)
        k = self.config.k
        self.samples = tuple(Slot(f"{name}_{s}", i, s) for i, name in enumerate(self.names) for s in range(k))
        self.cache = bool(cache)
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.samples)

    def background(self, index: int, epoch: int, seed: int) -> int:
        """Index in :attr:`backgrounds` of the background of sample ``index`` in ``epoch`` of a run with ``seed``."""
        slot = self.samples[index]
        k, m = self.config.k, len(self.backgrounds)
        rng = np.random.default_rng((self.seed, int(seed), int(epoch), slot.foreground, _BACKGROUND_STREAM))
        return int(rng.choice(m, size=k, replace=k > m)[slot.slot])

    def composite(self, index: int, epoch: int, seed: int) -> Composite:
        """Composite ``index`` of ``epoch`` of a run with ``seed``: full-size image, alpha, F and B of Eq. (1)."""
        slot = self.samples[index]
        fg, alpha = self.foreground(slot.foreground)
        b = self.background(index, epoch, seed)
        rng = np.random.default_rng((self.seed, int(seed), int(epoch), int(index)))
        fg_dn = bg_dn = None
        if self.denoises and peek(self.config, rng)["denoise"]:
            fg_dn = self._read(self.fg_denoised[slot.foreground], fg.shape)
            bg_dn = self._read(self.bg_denoised[b])
        return compose_layers(fg, alpha, self._read(self.backgrounds[b]), self.config, rng,
                              fg_denoised=fg_dn, bg_denoised=bg_dn, denoiser=self.denoiser)

    def foreground(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The cached F (uint8 H x W x 3) and alpha (uint8 H x W) of foreground ``i``."""
        alpha = self._read(self.alpha_paths[i], matte=True)
        return self._read(self.fg_paths[i], alpha.shape), alpha

    def _read(self, path: Path, shape=None, *, matte: bool = False) -> np.ndarray:
        if path in self._cache:
            return self._cache[path]
        array = read_alpha(path) if matte else read_image(path)
        if shape is not None and array.shape[:2] != tuple(shape[:2]):
            raise ImageError(f"{path}: size {array.shape[1]}x{array.shape[0]} does not match its foreground's "
                             f"{shape[1]}x{shape[0]} ({self.folder / LAYERS_DIR})")
        if self.cache:
            self._cache[path] = array
        return array


def _read_recipe(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON recipe ({error})") from None
    missing = [key for key in RECIPE_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        raise ValueError(f"{path}: recipe without {missing} (expected keys {list(RECIPE_KEYS)})")
    if data["version"] != RECIPE_VERSION or data["mode"] != "online":
        raise ValueError(f"{path}: expected an online recipe of version {RECIPE_VERSION}, got mode "
                         f"{data['mode']!r} version {data['version']!r} (re-run the compose stage)")
    return data


def _required(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} is missing (re-run the compose stage)")
    return path
