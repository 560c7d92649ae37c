"""Materialise the embedded world on disk (the layout of :mod:`gfm.core.layout`), atomically.

:func:`build_world` writes, under one root:

* ``am2k/{train,validation}/original|mask|fg|bg`` (+ ``validation/trimap``): real photos of
  animals (:func:`gfm.data.world.camera.photograph`) with their exact alpha, F and B;
* ``bg_candidates/`` + ``bg_candidates.csv``: the raw pool for the BG-20k construction with the
  truth label of every file (clean | lowres | duplicate | salient | corrupt);
* ``coco/``: COCO-like backgrounds (low resolution, strong JPEG, salient objects);
* ``world.json``: seed, every parameter, counts, generator version, texture licences and the
  per-image record (camera settings, scene kind, animal traits).

Truth of a real photo (all uint8, one size), as it reaches the sensor
(:func:`gfm.data.world.camera.expose`): ``mask`` = round(255 alpha) of the optically low-passed
matte; ``fg`` = the true foreground as this photo's camera renders it (developed; zeroed where
mask == 0 to save space); ``bg`` = the true background as the camera renders it (defocused when
the shot has a shallow depth of field, developed) *before* the sensor. The photo is
``mask/255 * fg + (1 - mask/255) * bg`` (Eq. 1) through the camera's sensor — Poisson-Gaussian
noise on a Bayer mosaic, demosaicing, tone curve — and one JPEG encoding, so the identity holds
up to the sensor's noise (recorded per photo as ``noise_std``), demosaicing and JPEG error.
Validation trimaps are :func:`gfm.core.trimap.trimap` of the mask with the paper's 25 px kernel
scaled to the world's size.

Every item draws from its own generator ``np.random.default_rng([seed, stream, index])``, so the
world is byte-identical for the same seed and parameters, and item *i* does not change when the
counts change.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import cv2
import numpy as np

from gfm.core import layout
from gfm.core.arrays import to_uint8
from gfm.core.io import atomic_dir, list_images, write_bytes, write_json, write_text
from gfm.core.trimap import trimap
from gfm.data.world.camera import decode_jpeg, encode_jpeg, expose, random_camera
from gfm.data.world.scenes import add_salient_objects, make_scene
from gfm.data.world.shapes import make_animal
from gfm.data.world.textures import TEXTURE_LICENCES

#: Bumped whenever the generator's output changes for the same seed and parameters.
WORLD_VERSION = "2.0"
#: Columns of ``bg_candidates.csv`` (``file`` is the file name with its suffix).
CANDIDATE_COLUMNS = ("name", "kind", "duplicate_of", "width", "height", "notes", "file")
CANDIDATE_KINDS = ("clean", "lowres", "duplicate", "salient", "corrupt")
#: The bad files among the ``corrupt`` candidates, in the order they are assigned (the ``notes``).
BAD_FILES = ("truncated JPEG", "grayscale PNG", "16-bit PNG", "CMYK JPEG", "random bytes", "empty file")
#: Those of :data:`BAD_FILES` that no image reader can decode.
UNREADABLE_FILES = ("truncated JPEG", "random bytes", "empty file")
_STREAMS = {"train": 1, "validation": 2, "bg_candidates": 3, "coco": 4, "kinds": 5}
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 6]  # zlib default: ~2 % larger than 9, 3× faster


def build_world(out: str | os.PathLike, seed: int = 0, *, n_train: int = 80, n_val: int = 120,
                n_candidates: int = 72, n_coco: int = 40, short_side: int = 360, long_side: int = 480,
                trimap_kernel: int | None = None, p_portrait: float = 0.25,
                iso: tuple[float, float] = (100.0, 3200.0), jpeg_quality: tuple[int, int] = (75, 95),
                p_defocus: float = 0.5, defocus_radius: tuple[float, float] = (2.5, 9.0),
                candidate_p_defocus: float = 0.15, candidate_jpeg_quality: tuple[int, int] = (80, 95),
                coco_iso: tuple[float, float] = (200.0, 6400.0),
                coco_jpeg_quality: tuple[int, int] = (55, 80),
                candidate_fractions: dict | None = None) -> dict:
    """Generate the embedded world under ``out`` (replacing a previous world there atomically).

    Parameters
    ----------
    out : root folder (``data``). It must not exist, be empty, or hold a previous world
        (``world.json``); it is replaced in one rename, so readers never see a partial world.
    seed : the world's seed.
    n_train, n_val : number of real photos in AM-2k-like ``train`` / ``validation``.
    n_candidates : number of files in ``bg_candidates/`` (>= 6, so every kind is present).
    n_coco : number of COCO-like backgrounds.
    short_side, long_side : size of the real photos (landscape, or portrait with ``p_portrait``).
        Also the scale of everything else: clean candidates have a short side in
        ``[short_side, 1.5 short_side]``, low-resolution ones ``[short_side/3, 2 short_side/3]``,
        COCO-like ones ``[0.45, 0.67] × short_side``. The paper's data have >= 1080 px.
    trimap_kernel : validation trimap kernel (:func:`gfm.core.trimap.trimap`); default: the paper's 25 px
        at 1080 px scaled to ``short_side`` (8 px at 360 px).
    iso, jpeg_quality, p_defocus, defocus_radius : camera draws of the real photos
        (:func:`gfm.data.world.camera.random_camera`; ISO is drawn log-uniformly).
    candidate_p_defocus, candidate_jpeg_quality : cameras of the background candidates
        (their ISO range is ``iso``).
    coco_iso, coco_jpeg_quality : cameras of the COCO-like backgrounds (smaller, noisier sensors).
    candidate_fractions : fractions of lowres / duplicate / salient / corrupt candidates
        (default 0.12 / 0.12 / 0.14 / 0.08; each kind gets at least one; the rest is clean).
        The corrupt ("bad file") ones cycle through :data:`BAD_FILES`: a truncated JPEG, then a
        grayscale PNG, a 16-bit PNG, a CMYK JPEG (readable, but not 8-bit RGB), random bytes and
        an empty file. The first low-resolution candidate is a tiny 8×8 image when there are two
        or more.

    Returns
    -------
    The manifest (also written to ``out/world.json``).
    """
    out = Path(out)
    if n_train < 1 or n_val < 1 or n_coco < 1:
        raise ValueError(f"n_train, n_val and n_coco must be >= 1, got {n_train}, {n_val}, {n_coco}")
    if n_candidates < 6:
        raise ValueError(f"n_candidates must be >= 6 (one of each kind), got {n_candidates}")
    if short_side < 32 or long_side < short_side:
        raise ValueError(f"need 32 <= short_side <= long_side, got {short_side}, {long_side}")
    _check_replaceable(out)
    scale = short_side / 360.0
    kernel = trimap_kernel if trimap_kernel is not None else max(3, int(round(25 * short_side / 1080)))
    params = dict(n_train=n_train, n_val=n_val, n_candidates=n_candidates, n_coco=n_coco,
                  short_side=short_side, long_side=long_side, trimap_kernel=kernel, p_portrait=p_portrait,
                  iso=list(iso), jpeg_quality=list(jpeg_quality), p_defocus=p_defocus,
                  defocus_radius=[r * scale for r in defocus_radius],
                  candidate_p_defocus=candidate_p_defocus, candidate_jpeg_quality=list(candidate_jpeg_quality),
                  coco_iso=list(coco_iso), coco_jpeg_quality=list(coco_jpeg_quality),
                  candidate_fractions=dict(candidate_fractions or
                                           {"lowres": 0.12, "duplicate": 0.12, "salient": 0.14, "corrupt": 0.08}))
    with atomic_dir(out) as tmp:
        manifest = _generate(tmp, seed, params)
    return manifest


def world_summary(root: str | os.PathLike):
    """Counts and resolutions of a world (or of any folder with the same layout).

    Returns a :class:`pandas.DataFrame` with one row per group (``am2k/train``,
    ``am2k/validation``, ``bg_candidates/<kind>``, ``coco``): ``count``, ``min_short``,
    ``median_short``, ``max_short``, ``median_long`` (pixels; unreadable files are counted in
    ``unreadable`` and left out of the sizes). Background candidates are fully decoded (to catch
    truncated files); the other groups are sized from their headers.
    """
    import pandas as pd
    from PIL import Image

    root = Path(root)
    groups: dict[str, list[Path]] = {}
    for split in layout.SPLITS:
        folder = layout.matting_split(root, split).original
        if folder.is_dir():
            groups[f"{layout.MATTING_SET}/{split}"] = list_images(folder)
    truth = root / layout.BG_CANDIDATES_TRUTH
    if truth.is_file():
        with open(truth, newline="") as f:
            for row in csv.DictReader(f):
                groups.setdefault(f"{layout.BG_CANDIDATES}/{row['kind']}", []).append(
                    root / layout.BG_CANDIDATES / row["file"])
    elif (root / layout.BG_CANDIDATES).is_dir():
        groups[layout.BG_CANDIDATES] = list_images(root / layout.BG_CANDIDATES)
    if (root / layout.COCO).is_dir():
        groups[layout.COCO] = list_images(root / layout.COCO)
    rows = []
    for group, paths in groups.items():
        shorts, longs, bad = [], [], 0
        decode = group.startswith(layout.BG_CANDIDATES)  # the raw pool may hold truncated files
        for path in paths:
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    if decode:
                        im.load()
                shorts.append(min(w, h))
                longs.append(max(w, h))
            except Exception:  # noqa: BLE001 - any unreadable file is simply counted
                bad += 1
        rows.append(dict(group=group, count=len(paths), unreadable=bad,
                         min_short=min(shorts, default=0), median_short=float(np.median(shorts)) if shorts else 0.0,
                         max_short=max(shorts, default=0), median_long=float(np.median(longs)) if longs else 0.0))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
def _generate(root: Path, seed: int, params: dict) -> dict:
    records: dict[str, list] = {}
    for split, n, prefix in (("train", params["n_train"], "m"), ("validation", params["n_val"], "v")):
        records[split] = [_real_photo(root, seed, split, i, f"{prefix}_{i + 1:04d}", params) for i in range(n)]
    records["bg_candidates"] = _bg_candidates(root, seed, params)
    records["coco"] = [_coco(root, seed, i, params) for i in range(params["n_coco"])]
    kinds = {k: sum(r["kind"] == k for r in records["bg_candidates"]) for k in CANDIDATE_KINDS}
    manifest = {
        "generator": "gfm.data.world",
        "version": WORLD_VERSION,
        "synthetic": True,
        "note": "Synthetic stand-in for AM-2k / BG-20k / COCO generated from a seed with exact "
                "ground truth (alpha, F, B); see the docstring of gfm.data.world.",
        "seed": int(seed),
        "params": params,
        "counts": {"train": len(records["train"]), "validation": len(records["validation"]),
                   "bg_candidates": len(records["bg_candidates"]), "coco": len(records["coco"])},
        "bg_candidate_kinds": kinds,
        "textures": TEXTURE_LICENCES,
        "truth": {
            "mask": "uint8 alpha, round(255*alpha), of the matte as it reaches the sensor (optical low-pass)",
            "fg": "true F as the camera renders it (developed, low-passed), RGB uint8, zeroed where mask == 0",
            "bg": "true B as the camera renders it (defocused, developed, low-passed), before the sensor",
            "original": "mask/255*fg + (1-mask/255)*bg (from the stored uint8 truth) through the camera's "
                        "sensor (Poisson-Gaussian noise on an RGGB mosaic, demosaicing, colour matrix, sRGB "
                        "tone curve) and one JPEG encoding; noise_std: its predicted rms (8-bit levels)",
            "trimap": f"gfm.core.trimap.trimap(mask, {params['trimap_kernel']})",
        },
        "records": records,
    }
    write_json(root / "world.json", manifest)
    return manifest


def _real_photo(root: Path, seed: int, split: str, index: int, name: str, params: dict) -> dict:
    rng = np.random.default_rng([seed, _STREAMS[split], index])
    short, long = params["short_side"], params["long_side"]
    h, w = (long, short) if rng.random() < params["p_portrait"] else (short, long)
    animal, scene_info = {}, {}
    fg, alpha = make_animal(rng, h, w, info=animal)
    scene = make_scene(rng, h, w, info=scene_info)
    camera = random_camera(rng, iso=params["iso"], jpeg_quality=params["jpeg_quality"],
                           p_defocus=params["p_defocus"], defocus_radius=params["defocus_radius"])
    alpha, F, B = expose(fg, alpha, scene, camera)
    a8, f8, b8 = to_uint8(alpha), to_uint8(F), to_uint8(B)
    a = a8.astype(np.float32)[..., None] / 255.0
    clean = a * (f8.astype(np.float32) / 255.0) + (1 - a) * (b8.astype(np.float32) / 255.0)
    jpeg = camera.sensor_jpeg(clean)  # noise from camera.seed (recorded)
    f8[a8 == 0] = 0
    sp = layout.matting_split(root, split)
    write_bytes(sp.original / f"{name}.jpg", jpeg)
    write_bytes(sp.mask / f"{name}.png", _png(a8))
    write_bytes(sp.fg / f"{name}.png", _png(f8))
    write_bytes(sp.bg / f"{name}.png", _png(b8))
    if split == "validation":
        write_bytes(sp.trimap / f"{name}.png", _png(trimap(a8, params["trimap_kernel"])))
    noise_std = float(np.sqrt(np.mean(camera.noise_std(clean) ** 2)))
    return {"name": name, "width": w, "height": h, "camera": camera.to_dict(), "noise_std": round(noise_std, 3),
            "scene": scene_info, "animal": animal}


def _candidate_kinds(seed: int, n: int, fractions: dict) -> list[str]:
    counts = {k: max(1, int(round(fractions[k] * n))) for k in ("lowres", "duplicate", "salient", "corrupt")}
    counts["clean"] = n - sum(counts.values())
    if counts["clean"] < 2:
        raise ValueError(f"n_candidates={n} leaves {counts['clean']} clean candidates; need >= 2")
    kinds = [k for k in CANDIDATE_KINDS for _ in range(counts[k])]
    order = np.random.default_rng([seed, _STREAMS["kinds"]]).permutation(n)
    return [kinds[j] for j in order]


def _bg_candidates(root: Path, seed: int, params: dict) -> list[dict]:
    n, short = params["n_candidates"], params["short_side"]
    kinds = _candidate_kinds(seed, n, params["candidate_fractions"])
    names = [f"bg_{i + 1:04d}" for i in range(n)]
    folder = root / layout.BG_CANDIDATES
    rows: dict[int, dict] = {}
    plain_jpegs: dict[int, bytes] = {}
    low_idx = [i for i, k in enumerate(kinds) if k == "lowres"]
    corrupt_idx = [i for i, k in enumerate(kinds) if k == "corrupt"]
    order = [i for i in range(n) if kinds[i] != "duplicate"] + [i for i in range(n) if kinds[i] == "duplicate"]
    for i in order:
        rng = np.random.default_rng([seed, _STREAMS["bg_candidates"], i])
        kind, name = kinds[i], names[i]
        row = {"name": name, "kind": kind, "duplicate_of": "", "notes": ""}
        info: dict = {}
        if kind in ("clean", "salient"):
            h, w = _random_size(rng, short, 1.5 * short)
            scene = make_scene(rng, h, w, info=info)
            if kind == "salient":
                scene = add_salient_objects(rng, scene, info=info)
                row["notes"] = "salient: " + "+".join(info["salient"])
            camera = _candidate_camera(rng, params)
            data = camera.capture_jpeg(scene)
            suffix = ".jpg"
            if kind == "clean":
                plain_jpegs[i] = data
        elif kind == "lowres":
            camera = _candidate_camera(rng, params)
            if i == low_idx[0] and len(low_idx) >= 2:
                h, w = 8, 8
                row["notes"] = "tiny 8x8"
            else:
                h, w = _random_size(rng, short / 3, 2 * short / 3)
            factor = min(1.0, 1.0 / max(1.0, 1.3 * short / min(h, w)))
            big = (int(round(h / factor)), int(round(w / factor)))
            scene = make_scene(rng, *big, info=info)
            scene = cv2.resize(scene, (w, h), interpolation=cv2.INTER_AREA)
            data = camera.capture_jpeg(scene)
            suffix = ".jpg"
        elif kind == "duplicate":
            sources = sorted(plain_jpegs)
            src = sources[int(rng.integers(len(sources)))]
            data, notes = _near_duplicate(rng, decode_jpeg(plain_jpegs[src]), short)
            row.update(duplicate_of=names[src], notes=notes)
            suffix = ".jpg"
            camera = None
        else:  # corrupt: a bad file made from an otherwise clean photo
            bad = BAD_FILES[corrupt_idx.index(i) % len(BAD_FILES)]
            h, w = _random_size(rng, short, 1.5 * short)
            scene = make_scene(rng, h, w, info=info)
            camera = _candidate_camera(rng, params)
            data, suffix = _bad_file(rng, bad, camera.capture_jpeg(scene))
            row["notes"] = bad
        write_bytes(folder / f"{name}{suffix}", data)
        width, height = (0, 0) if row["notes"] in UNREADABLE_FILES else _size_of(data)
        row.update(width=width, height=height, file=f"{name}{suffix}",
                   camera=camera.to_dict() if camera is not None else None, scene=info.get("kind"))
        rows[i] = row
    ordered = [rows[i] for i in range(n)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CANDIDATE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(ordered)
    write_text(root / layout.BG_CANDIDATES_TRUTH, text.getvalue())
    return ordered


def _coco(root: Path, seed: int, index: int, params: dict) -> dict:
    rng = np.random.default_rng([seed, _STREAMS["coco"], index])
    short = params["short_side"]
    s = int(round(short * rng.uniform(0.45, 0.67)))
    l = int(round(s * rng.uniform(1.25, 1.5)))
    h, w = (l, s) if rng.random() < 0.3 else (s, l)
    info: dict = {}
    render = 1.5  # rendered finer, then the camera samples it down
    scene = make_scene(rng, int(h * render), int(w * render), info=info)
    scene = add_salient_objects(rng, scene, size=(0.4, 0.8), info=info)
    camera = random_camera(rng, iso=params["coco_iso"], jpeg_quality=params["coco_jpeg_quality"],
                           p_defocus=0.2, defocus_radius=(1.5, 4.0), resolution=1 / render)
    data = camera.capture_jpeg(scene)
    name = f"coco_{index + 1:04d}"
    write_bytes(root / layout.COCO / f"{name}.jpg", data)
    width, height = _size_of(data)
    return {"name": name, "width": width, "height": height, "camera": camera.to_dict(), "scene": info.get("kind"),
            "salient": info.get("salient")}


def _candidate_camera(rng, params):
    return random_camera(rng, iso=params["iso"], jpeg_quality=params["candidate_jpeg_quality"],
                         p_defocus=params["candidate_p_defocus"], defocus_radius=params["defocus_radius"])


def _random_size(rng, lo: float, hi: float) -> tuple[int, int]:
    short = int(round(rng.uniform(lo, hi)))
    aspect = float(rng.choice([1.0, 1.25, 4 / 3, 1.5, 16 / 9]))
    long = int(round(short * aspect))
    return (long, short) if rng.random() < 0.2 else (short, long)


def _near_duplicate(rng, image: np.ndarray, short_side: int) -> tuple[bytes, str]:
    """Re-crop a few %, rescale, shift brightness and re-encode (a near-duplicate of ``image``)."""
    h, w = image.shape[:2]
    c = rng.uniform(0.01, 0.04, 4)
    crop = image[int(c[0] * h):h - int(c[1] * h), int(c[2] * w):w - int(c[3] * w)]
    ch, cw = crop.shape[:2]
    factor = max(rng.uniform(0.85, 1.2), short_side / min(ch, cw))
    size = (int(round(cw * factor)), int(round(ch * factor)))
    resized = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    gain, offset = rng.uniform(0.92, 1.08), rng.uniform(-8, 8)
    shifted = np.clip(resized.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    quality = int(rng.integers(70, 93))
    notes = (f"crop {100 * c.max():.1f}% max, scale {factor:.2f}, gain {gain:.2f}, offset {offset:+.1f}, "
             f"JPEG q{quality}")
    return encode_jpeg(shifted, quality), notes


def _bad_file(rng, bad: str, jpeg: bytes) -> tuple[bytes, str]:
    """The bytes and suffix of one kind of bad file (:data:`BAD_FILES`) made from a good JPEG."""
    if bad == "truncated JPEG":  # a valid header, so only decoding reveals the damage
        return jpeg[:int(len(jpeg) * rng.uniform(0.4, 0.7))], ".jpg"
    if bad == "random bytes":
        return rng.bytes(4096), ".png"
    if bad == "empty file":
        return b"", ".jpg"
    rgb = decode_jpeg(jpeg)
    if bad == "grayscale PNG":
        return _png(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), ".png"
    if bad == "16-bit PNG":
        return _png((rgb.astype(np.uint16) * 257)[..., ::-1].copy(), bgr=True), ".png"
    if bad == "CMYK JPEG":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG", quality=90)
        return buf.getvalue(), ".jpg"
    raise ValueError(f"bad file kind must be one of {BAD_FILES}, got {bad!r}")


def _png(image: np.ndarray, *, bgr: bool = False) -> bytes:
    if image.ndim == 3 and not bgr:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image, _PNG)
    if not ok:
        raise ValueError("could not encode PNG")
    return buf.tobytes()


def _size_of(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _check_replaceable(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "world.json").is_file())):
        raise ValueError(f"{out}: exists and is not an embedded world (no world.json); "
                         "refusing to replace it")


