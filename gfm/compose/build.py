"""The COMP-Track training sets: every training foreground composed by one route (Sect. 5.1, Table 4).

:func:`build_composites` materialises one route of :data:`gfm.compose.rssn.ROUTES` on disk: the
foreground F of each training photo is estimated once (:func:`cache_foregrounds`), F and the
backgrounds are denoised once when the route can denoise (:func:`gfm.compose.denoise.denoise_folder`),
then each foreground is pasted onto K backgrounds by :func:`gfm.compose.rssn.compose_layers`, and
the exact layers of Eq. (1) are stored with a record of every random decision.

:func:`build_online_route` (``compose.mode: online``) writes instead the layers a training run draws
composites from, every epoch afresh (:mod:`gfm.compose.online`), and a few inspection composites;
:func:`build_ori_estimated` (``train.fg_bg: estimated``) writes the real training images with F and B
estimated once, for the ORI-Track composition loss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gfm.compose import online
from gfm.compose.denoise import METHODS as DENOISERS, RECIPE_SUFFIX, denoise_folder
from gfm.compose.foreground import METHODS as FG_METHODS, estimate_foreground
from gfm.compose.rssn import ROUTES, RSSNConfig, compose_layers
from gfm.core.arrays import to_uint8
from gfm.core.config import ORI_TRACK
from gfm.core.io import (atomic_dir, list_images, read_alpha, read_image, sha256_file, write_image,
                         write_json, write_text)
from gfm.core.layout import Split
from gfm.core.parallel import parallel_map
from gfm.data.archive import link_or_copy

#: The layers of Eq. (1) stored per composite (fields of :class:`gfm.compose.rssn.Composite`).
LAYERS = ("image", "alpha", "fg", "bg")
#: Columns of ``records.csv``: one row per composite.
RECORD_COLUMNS = ("name", "fg", "bg", "k", "route", "denoise", "blur", "kernel", "noise", "sigma",
                  "denoiser", "fg_method", "seed")
#: Sub-folder of a foreground cache holding B beside F (:func:`cache_foregrounds`).
BACKGROUND_CACHE = "bg"


def build_composites(matting_train_dir, backgrounds_dir, out_dir, route: str, *,
                     config: RSSNConfig | None = None, fg_method: str = "cf", denoiser: str = "nlm",
                     seed: int = 0, workers: int = 2, denoise_cache=None, fg_cache=None,
                     progress: bool = True) -> pd.DataFrame:
    """Materialise one route's composite training set (the COMP-Track stage).

    For each training foreground (``original`` + ``mask`` of the matting split): F is estimated
    once (``fg_method``, cached in ``fg_cache``); if the route can denoise, F and every background
    are denoised once (``denoiser``, cached in ``denoise_cache`` by
    :func:`gfm.compose.denoise.denoise_folder`); then ``config.k`` backgrounds are sampled without
    replacement (with replacement only if there are fewer than K) and composed by
    :func:`gfm.compose.rssn.compose_layers`.

    Randomness: ``np.random.SeedSequence(seed).spawn(n)`` gives foreground i (sorted by name) its
    own stream: its first generator samples the backgrounds, its K children drive the composites.
    The output is therefore the same for any worker count, and routes built with the same seed
    share backgrounds and decisions.

    Output (replaced atomically: built in a temporary folder, renamed at the end)::

        out_dir/<route>/image/<name>_<k>.png   composite (PNG: lossless, no JPEG artifacts added)
        out_dir/<route>/alpha/<name>_<k>.png   alpha matte
        out_dir/<route>/fg/<name>_<k>.png      F of Eq. (1) as used (denoised / noisy)
        out_dir/<route>/bg/<name>_<k>.png      B of Eq. (1) as used (resized / blurred / noisy)
        out_dir/<route>/records.csv            one row per composite (:data:`RECORD_COLUMNS`)
        out_dir/<route>/config.json            route, config, seed, fg_method, denoiser

    Parameters
    ----------
    matting_train_dir : path or gfm.core.layout.Split
        The training split (``gfm.core.layout.matting_split(datasets, "train")``).
    backgrounds_dir : path
        Folder of background images (COCO or BG-20k train, see ``gfm.compose.rssn.ROUTE_BACKGROUNDS``).
    out_dir : path
        Root of the composite sets.
    route : str
        A key of ``gfm.compose.rssn.ROUTES``.
    config : RSSNConfig, optional
        The route's knobs; default ``ROUTES[route]``. Use ``gfm.compose.rssn.route_config`` to
        override knobs.
    fg_method : str
        ``gfm.compose.foreground.estimate_foreground`` method ("cf": the paper's).
    denoiser : str
        ``gfm.compose.denoise`` method ("bm3d": the paper's; "nlm": fast).
    seed : int
        Seed of every random decision.
    workers : int
        Processes for the per-foreground work (joblib).
    denoise_cache, fg_cache : path, optional
        Cache folders; default ``out_dir/_cache/denoised`` and ``out_dir/_cache/fg``.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        The records (also written to ``records.csv``).
    """
    config, split, names, backgrounds, fg_dir, fg_dn_dir, bg_dn_dir = _prepare(
        matting_train_dir, backgrounds_dir, out_dir, route, config, fg_method, denoiser, workers, denoise_cache,
        fg_cache, progress)
    out_dir = Path(out_dir)

    with atomic_dir(out_dir / route) as tmp:
        for layer in LAYERS:
            (tmp / layer).mkdir()
        route_job = _RouteJob(route=route, config=config, backgrounds=backgrounds, fg_dir=str(fg_dir),
                              fg_dn_dir=None if fg_dn_dir is None else str(fg_dn_dir),
                              bg_dn_dir=None if bg_dn_dir is None else str(bg_dn_dir), out=str(tmp),
                              fg_method=fg_method, denoiser=denoiser, seed=seed)
        children = np.random.SeedSequence(seed).spawn(len(names))
        jobs = [(route_job, name, str(split.mask_path(name)), child) for name, child in zip(names, children)]
        rows = [row for rows in parallel_map(_compose_foreground, jobs, workers, progress=progress,
                                             desc=f"compose[{route}]") for row in rows]
        records = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
        write_text(tmp / "records.csv", records.to_csv(index=False))
        write_json(tmp / "config.json", {"route": route, "config": config.to_dict(), "seed": seed,
                                         "fg_method": fg_method, "denoiser": denoiser,
                                         "backgrounds": str(backgrounds_dir),
                                         "foregrounds": str(split.root)})
    return records


def build_online_route(matting_train_dir, backgrounds_dir, out_dir, route: str, *,
                       config: RSSNConfig | None = None, fg_method: str = "cf", denoiser: str = "nlm",
                       seed: int = 0, inspection: int = 48, workers: int = 2, denoise_cache=None, fg_cache=None,
                       progress: bool = True) -> pd.DataFrame:
    """Write one route for on-the-fly composition (``compose.mode: online``, :mod:`gfm.compose.online`).

    The caches are those of :func:`build_composites` (F estimated once; F and the backgrounds
    denoised once where the route denoises); the route folder gets hard links to them (copies
    across file systems), the mattes and the backgrounds, and the recipe, so that a training stage
    depends on this folder only. Then the first ``inspection`` composites of epoch 0 of a run
    seeded with ``seed`` are drawn (:meth:`gfm.compose.online.OnlineRoute.composite`) and stored for
    the figures and the domain-gap meter. Output (replaced atomically)::

        out_dir/<route>/recipe.json, layers/...        (gfm.compose.online)
        out_dir/<route>/inspection/{image,alpha,fg,bg}/<name>_<k>.png, records.csv, config.json

    Arguments as :func:`build_composites`. Returns the inspection composites' records.
    """
    config, split, names, backgrounds, fg_dir, fg_dn_dir, bg_dn_dir = _prepare(
        matting_train_dir, backgrounds_dir, out_dir, route, config, fg_method, denoiser, workers, denoise_cache,
        fg_cache, progress)
    with atomic_dir(Path(out_dir) / route) as tmp:
        layers = tmp / online.LAYERS_DIR
        for name in names:
            mask = split.mask_path(name)
            link_or_copy(mask, layers / online.ALPHA / f"{name}{mask.suffix}")
            link_or_copy(fg_dir / f"{name}.png", layers / online.FG / f"{name}.png")
            if fg_dn_dir is not None:
                link_or_copy(fg_dn_dir / f"{name}.png", layers / online.FG_DENOISED / f"{name}.png")
        for background in map(Path, backgrounds):
            link_or_copy(background, layers / online.BACKGROUNDS / background.name)
            if bg_dn_dir is not None:
                link_or_copy(bg_dn_dir / f"{background.stem}.png", layers / online.BG_DENOISED / f"{background.stem}.png")
        write_json(tmp / online.RECIPE_FILE, online.recipe(route, config, seed=seed, fg_method=fg_method,
                                                           denoiser=denoiser))
        drawn = online.OnlineRoute(tmp)
        shown = tmp / online.INSPECTION_DIR
        for layer in LAYERS:
            (shown / layer).mkdir(parents=True)
        jobs = [(drawn, index, seed, str(shown)) for index in range(min(int(inspection), len(drawn)))]
        rows = parallel_map(_inspect_one, jobs, workers, progress=progress, desc=f"inspect[{route}]")
        records = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
        write_text(shown / "records.csv", records.to_csv(index=False))
        write_json(shown / "config.json", {"route": route, "mode": "online", "config": config.to_dict(),
                                           "seed": seed, "epoch": 0, "fg_method": fg_method, "denoiser": denoiser,
                                           "backgrounds": str(backgrounds_dir), "foregrounds": str(split.root)})
    return records


def build_ori_estimated(matting_train_dir, out_dir, *, fg_method: str = "cf", workers: int = 2, fg_cache=None,
                        progress: bool = True) -> Path:
    """The ORI-Track set with F and B estimated (``train.fg_bg: estimated``): ``out_dir/ori``.

    Real matting sets ship no F and B, yet the composition loss (Eq. 7) needs them; the official
    code's paper setting reads closed-form ones (``--fg_generate closed_form``). Writes (replaced
    atomically) ``out_dir/ori/{original,mask}/`` (hard links to the training split, copies across
    file systems) and ``out_dir/ori/{fg,bg}/<name>.png`` (F and B by ``fg_method``, estimated once
    and cached with :func:`cache_foregrounds`, whose F the routes reuse). Returns the folder.
    """
    if fg_method not in FG_METHODS:
        raise ValueError(f"fg_method must be one of {FG_METHODS}, got {fg_method!r}")
    split = matting_train_dir if isinstance(matting_train_dir, Split) else Split(Path(matting_train_dir))
    names = split.names()
    if not names:
        raise ValueError(f"{split.original}: no training images")
    out_dir = Path(out_dir)
    fg_dir = (Path(fg_cache) if fg_cache is not None else out_dir / "_cache" / "fg") / fg_method
    cache_foregrounds(split, fg_dir, fg_method, background=True, workers=workers, progress=progress)
    with atomic_dir(out_dir / ORI_TRACK) as tmp:
        ori = Split(tmp)
        for name in names:
            image, mask = split.image_path(name), split.mask_path(name)
            link_or_copy(image, ori.original / image.name)
            link_or_copy(mask, ori.mask / mask.name)
            link_or_copy(fg_dir / f"{name}.png", ori.fg / f"{name}.png")
            link_or_copy(fg_dir / BACKGROUND_CACHE / f"{name}.png", ori.bg / f"{name}.png")
        write_json(tmp / "config.json", {"fg_method": fg_method, "foregrounds": str(split.root)})
    return out_dir / ORI_TRACK


def cache_foregrounds(split: Split, dst, method: str = "cf", *, background: bool = False, workers: int = 2,
                      progress: bool = True) -> Path:
    """Estimate F (``gfm.compose.foreground.estimate_foreground``) for every image of a split, once.

    Writes ``dst/<name>.png`` (F rounded to 8 bits, the layer every route composes with) with a
    sidecar ``dst/<name>.recipe.json`` (method and SHA-256 of the image and the mask); an output
    whose sidecar matches is reused. ``background=True`` keeps B of the same solve too, in
    ``dst/bg/<name>.png`` (the sidecar then says ``"background": true``); an entry that holds only
    F is estimated again, once, for both. Returns ``dst``.
    """
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    if background:
        (dst / BACKGROUND_CACHE).mkdir(exist_ok=True)
    jobs = [(str(split.image_path(n)), str(split.mask_path(n)), str(dst), method, background) for n in split.names()]
    parallel_map(_foreground_one, jobs, workers, progress=progress, desc=f"foreground[{method}]")
    return dst


@dataclass(frozen=True)
class _RouteJob:
    """What every per-foreground worker of one route shares (folders as strings: picklable)."""

    route: str
    config: RSSNConfig
    backgrounds: tuple[str, ...]
    fg_dir: str
    fg_dn_dir: str | None
    bg_dn_dir: str | None
    out: str
    fg_method: str
    denoiser: str
    seed: int


def _prepare(matting_train_dir, backgrounds_dir, out_dir, route, config, fg_method, denoiser, workers,
             denoise_cache, fg_cache, progress):
    """Check a route's arguments and fill its caches: (config, split, names, backgrounds, F folder,
    denoised F and B folders or None)."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {tuple(ROUTES)}, got {route!r}")
    config = ROUTES[route] if config is None else config
    if fg_method not in FG_METHODS:
        raise ValueError(f"fg_method must be one of {FG_METHODS}, got {fg_method!r}")
    if denoiser not in DENOISERS:
        raise ValueError(f"denoiser must be one of {DENOISERS}, got {denoiser!r}")
    split = matting_train_dir if isinstance(matting_train_dir, Split) else Split(Path(matting_train_dir))
    out_dir = Path(out_dir)
    names = split.names()
    if not names:
        raise ValueError(f"{split.original}: no training images")
    backgrounds = tuple(str(p) for p in list_images(backgrounds_dir))
    if not backgrounds:
        raise ValueError(f"{backgrounds_dir}: no background images")
    fg_cache = Path(fg_cache) if fg_cache is not None else out_dir / "_cache" / "fg"
    denoise_cache = Path(denoise_cache) if denoise_cache is not None else out_dir / "_cache" / "denoised"

    fg_dir = cache_foregrounds(split, fg_cache / fg_method, method=fg_method, workers=workers,
                               progress=progress)
    fg_dn_dir = bg_dn_dir = None
    if config.use_denoise and config.p_denoise > 0:
        fg_dn_dir = denoise_cache / f"fg_{fg_method}_{denoiser}"
        where = hashlib.sha256(str(Path(backgrounds_dir).resolve()).encode()).hexdigest()[:8]
        bg_dn_dir = denoise_cache / f"bg_{Path(backgrounds_dir).name}_{where}_{denoiser}"
        denoise_folder(fg_dir, fg_dn_dir, denoiser, workers, progress=progress)
        denoise_folder(backgrounds_dir, bg_dn_dir, denoiser, workers, progress=progress)
    return config, split, names, backgrounds, fg_dir, fg_dn_dir, bg_dn_dir


def _foreground_one(image_path: str, mask_path: str, dst: str, method: str, background: bool = False) -> bool:
    """Estimate and store one F (and B) unless its sidecar matches; True when the cached file was reused."""
    stem = Path(image_path).stem
    out, sidecar = Path(dst) / f"{stem}.png", Path(dst) / f"{stem}{RECIPE_SUFFIX}"
    bg_out = Path(dst) / BACKGROUND_CACHE / f"{stem}.png"
    wanted = {"method": method, "image_sha256": sha256_file(image_path), "mask_sha256": sha256_file(mask_path)}
    if out.is_file() and sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            recorded = {}
        if all(recorded.get(key) == value for key, value in wanted.items()) and (
                not background or (recorded.get("background") is True and bg_out.is_file())):
            return True
    image, alpha = read_image(image_path), read_alpha(mask_path)
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"{mask_path}: mask size {alpha.shape} differs from the image's {image.shape[:2]}")
    if background:
        fg, bg = estimate_foreground(image, alpha, method=method, return_background=True)
        write_image(bg_out, to_uint8(bg, "bg"))
        wanted["background"] = True
    else:
        fg = estimate_foreground(image, alpha, method=method)
    write_image(out, to_uint8(fg, "fg"))
    write_json(sidecar, wanted)
    return False


def _inspect_one(route: online.OnlineRoute, index: int, seed: int, out: str) -> dict:
    """Store composite ``index`` of epoch 0 (run seed ``seed``) of an online route; its record."""
    result = route.composite(index, 0, seed)
    slot = route.samples[index]
    for layer in LAYERS:
        write_image(Path(out) / layer / f"{slot.name}.png", getattr(result, layer))
    rec = result.record
    return {"name": slot.name, "fg": route.names[slot.foreground],
            "bg": route.backgrounds[route.background(index, 0, seed)].name, "k": slot.slot, "route": route.route,
            "denoise": rec["denoise"], "blur": rec["blur"], "kernel": rec["kernel"], "noise": rec["noise"],
            "sigma": rec["sigma"], "denoiser": route.denoiser if rec["denoise"] else "",
            "fg_method": route.recipe["fg_method"], "seed": seed}


def _compose_foreground(job: _RouteJob, name: str, mask_path: str, seed_seq: np.random.SeedSequence) -> list[dict]:
    """The K composites of one foreground: sample the backgrounds, compose, store, record."""
    fg = read_image(Path(job.fg_dir) / f"{name}.png")
    alpha = read_alpha(mask_path)
    fg_dn = read_image(Path(job.fg_dn_dir) / f"{name}.png") if job.fg_dn_dir else None
    k = job.config.k
    picker = np.random.default_rng(seed_seq)
    chosen = picker.choice(len(job.backgrounds), size=k, replace=k > len(job.backgrounds))
    rows = []
    for index, (choice, child) in enumerate(zip(chosen, seed_seq.spawn(k))):
        bg_path = Path(job.backgrounds[int(choice)])
        bg = read_image(bg_path)
        bg_dn = read_image(Path(job.bg_dn_dir) / f"{bg_path.stem}.png") if job.bg_dn_dir else None
        result = compose_layers(fg, alpha, bg, job.config, np.random.default_rng(child),
                                fg_denoised=fg_dn, bg_denoised=bg_dn, denoiser=job.denoiser)
        stem = f"{name}_{index}"
        for layer in LAYERS:
            write_image(Path(job.out) / layer / f"{stem}.png", getattr(result, layer))
        rec = result.record
        rows.append({"name": stem, "fg": name, "bg": bg_path.name, "k": index, "route": job.route,
                     "denoise": rec["denoise"], "blur": rec["blur"], "kernel": rec["kernel"],
                     "noise": rec["noise"], "sigma": rec["sigma"],
                     "denoiser": job.denoiser if rec["denoise"] else "", "fg_method": job.fg_method,
                     "seed": job.seed})
    return rows
