"""Background scenes of the embedded world (what a camera would see behind the subject).

A scene is a float32 H×W×3 image in [0, 1] *before* any camera effect (no defocus, noise or
JPEG: those belong to :mod:`gfm.data.world.camera`). Kinds (:data:`SCENE_KINDS`): sky-and-ground
landscapes (meadow, savanna, rocks, beach, snow), forest foliage, an indoor brick wall, and a
bokeh/city-lights plate. Detail comes from multi-octave noise and the CC0 textures of
:mod:`gfm.data.world.textures`, so that defocus visibly removes high frequencies.

:func:`add_salient_objects` photographs people-, animal- or object-like shapes into a scene,
which makes it unsuitable as a BG-20k background (paper, Sect. 4.1 "Semantic ambiguity").
"""

from __future__ import annotations

import cv2
import numpy as np

from gfm.data.world.shapes import make_animal, make_object, make_person
from gfm.data.world.textures import fractal_noise, photo_texture, smoothstep, tint

SCENE_KINDS = ("meadow", "savanna", "rocks", "beach", "snow", "forest", "wall", "bokeh")

_SKIES = {  # (zenith, horizon)
    "day": ((0.30, 0.52, 0.85), (0.75, 0.85, 0.95)),
    "overcast": ((0.62, 0.65, 0.70), (0.85, 0.86, 0.88)),
    "sunset": ((0.35, 0.35, 0.60), (0.98, 0.70, 0.45)),
    "haze": ((0.60, 0.70, 0.82), (0.92, 0.90, 0.85)),
}
_GROUNDS = {  # (texture, dark, light)
    "meadow": ("grass", (0.10, 0.22, 0.05), (0.55, 0.72, 0.30)),
    "savanna": ("grass", (0.35, 0.28, 0.12), (0.90, 0.78, 0.50)),
    "rocks": ("gravel", (0.22, 0.20, 0.18), (0.72, 0.68, 0.62)),
    "beach": ("gravel", (0.68, 0.60, 0.45), (0.96, 0.90, 0.76)),
    "snow": ("gravel", (0.78, 0.82, 0.88), (0.99, 0.99, 1.00)),
}


def make_scene(rng: np.random.Generator, height: int, width: int, kind: str | None = None, *,
               info: dict | None = None) -> np.ndarray:
    """A natural-looking background scene, float32 H×W×3 in [0, 1].

    Parameters
    ----------
    rng : the random generator (the only source of randomness).
    height, width : size in pixels.
    kind : one of :data:`SCENE_KINDS` (default: random).
    info : if given, receives ``kind`` (and the sky type for landscapes).
    """
    if height < 8 or width < 8:
        raise ValueError(f"make_scene: height and width must be >= 8, got {height}×{width}")
    kind = kind or str(rng.choice(SCENE_KINDS))
    if kind not in SCENE_KINDS:
        raise ValueError(f"kind must be one of {SCENE_KINDS}, got {kind!r}")
    detail = max(height, width) / 480.0  # texture scale follows the image size
    if kind in _GROUNDS:
        scene = _landscape(rng, height, width, kind, detail, info)
    elif kind == "forest":
        scene = _forest(rng, height, width, detail)
    elif kind == "wall":
        scene = _wall(rng, height, width, detail)
    else:
        scene = _bokeh(rng, height, width)
    # global grade: gentle vignette and colour cast
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2
    vignette = 1 - rng.uniform(0.0, 0.25) * r2
    cast = rng.normal(1.0, 0.03, 3).astype(np.float32)
    scene = scene * vignette[..., None] * cast
    if info is not None:
        info["kind"] = kind
    return np.clip(scene, 0, 1).astype(np.float32)


def add_salient_objects(rng: np.random.Generator, scene: np.ndarray, *, count: int | None = None,
                        kinds: tuple[str, ...] = ("animal", "person", "object"),
                        size: tuple[float, float] = (0.35, 0.7), info: dict | None = None) -> np.ndarray:
    """Composite 1–3 salient objects (animals, people, objects) into ``scene`` (Eq. 1 per object).

    ``size`` is the object's canvas height as a fraction of the scene height.
    """
    height, width = scene.shape[:2]
    out = scene.copy()
    count = count if count is not None else int(rng.integers(1, 4))
    placed = []
    for _ in range(count):
        kind = str(rng.choice(kinds))
        oh = max(16, int(height * rng.uniform(*size)))
        ow = max(16, int(oh * (rng.uniform(1.0, 1.5) if kind != "person" else rng.uniform(0.45, 0.6))))
        ow = min(ow, width)
        if kind == "animal":
            fg, alpha = make_animal(rng, oh, ow, size=0.3)
        elif kind == "person":
            fg, alpha = make_person(rng, oh, ow)
        else:
            fg, alpha = make_object(rng, oh, ow)
        y0 = int(rng.integers(max(0, height // 5 - oh // 3), max(1, height - oh + oh // 6) + 1))
        x0 = int(rng.integers(-ow // 6, max(1, width - ow + ow // 6) + 1))
        ys, xs = slice(max(0, y0), min(height, y0 + oh)), slice(max(0, x0), min(width, x0 + ow))
        fy, fx = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
        a = alpha[fy, fx][..., None]
        out[ys, xs] = a * fg[fy, fx] + (1 - a) * out[ys, xs]
        placed.append(kind)
    if info is not None:
        info["salient"] = placed
    return out


# ----------------------------------------------------------------------------------------------
def _sky(rng, height, width, horizon):
    name = str(rng.choice(sorted(_SKIES)))
    zenith, low = (np.asarray(c, np.float32) for c in _SKIES[name])
    t = np.clip(np.arange(height, dtype=np.float32) / max(horizon, 1.0), 0, 1)[:, None, None] ** 0.8
    sky = zenith * (1 - t) + low * t
    sky = np.broadcast_to(sky, (height, width, 3)).copy()
    clouds = smoothstep(0.2, 1.4, fractal_noise(rng, height, width, cells=3, octaves=5, aspect=2.5))
    sky = sky * (1 - 0.8 * clouds[..., None]) + np.float32(0.96) * 0.8 * clouds[..., None]
    return sky, name


def _landscape(rng, height, width, kind, detail, info):
    horizon = height * rng.uniform(0.25, 0.55)
    sky, sky_name = _sky(rng, height, width, horizon)
    texture, dark, light = _GROUNDS[kind]
    # ground: fine texture near the horizon, coarse at the bottom (perspective)
    yy = np.arange(height, dtype=np.float32)[:, None]
    depth = np.clip((yy - horizon) / max(height - horizon, 1.0), 0, 1)
    far = photo_texture(rng, texture, height, width, scale=0.5 * detail)
    near = photo_texture(rng, texture, height, width, scale=1.6 * detail)
    gray = far * (1 - depth) + near * depth
    gray = 0.5 + (gray - gray.mean()) * rng.uniform(1.0, 1.6)
    gray += 0.12 * fractal_noise(rng, height, width, cells=3, octaves=3)
    ground = tint(np.clip(gray, 0, 1), dark, light)
    if kind == "beach":  # a band of sea between the horizon and the sand
        shore = horizon + (height - horizon) * rng.uniform(0.2, 0.45)
        waves = 0.5 + 0.25 * fractal_noise(rng, height, width, cells=4, octaves=4, aspect=6)
        sea = tint(np.clip(waves, 0, 1), (0.05, 0.25, 0.40), (0.45, 0.70, 0.80))
        wet = smoothstep(shore - 3, shore + 3, yy + 4 * fractal_noise(rng, height, width, cells=5, octaves=2))
        ground = sea * (1 - wet[..., None]) + ground * wet[..., None]
    # distant ridge or tree line along the horizon
    profile = fractal_noise(rng, 1, width, cells=5, octaves=5)[0]
    ridge_top = horizon - height * rng.uniform(0.03, 0.15) * (1 + 0.6 * profile)
    ridge = tint(np.clip(0.5 + 0.3 * fractal_noise(rng, height, width, cells=8, octaves=4), 0, 1),
                 *(((0.12, 0.22, 0.10), (0.35, 0.45, 0.30)) if kind in ("meadow", "savanna")
                   else ((0.35, 0.38, 0.45), (0.60, 0.63, 0.70))))
    haze = np.float32(rng.uniform(0.2, 0.6))
    ridge = ridge * (1 - haze) + sky * haze
    above = smoothstep(-1.0, 1.0, yy - ridge_top[None, :])
    below = smoothstep(-1.5, 1.5, yy - horizon - 2 * fractal_noise(rng, height, width, cells=10, octaves=2))
    scene = sky * (1 - above[..., None]) + ridge * above[..., None]
    scene = scene * (1 - below[..., None]) + ground * below[..., None]
    if kind in ("meadow", "savanna") and rng.random() < 0.7:
        scene = _grass_blades(rng, scene, horizon, detail)
    if info is not None:
        info["sky"] = sky_name
    return scene


def _grass_blades(rng, scene, horizon, detail):
    """Thin anti-aliased blades in the lower part of a grassy scene (sharp detail to defocus)."""
    height, width = scene.shape[:2]
    n = int(width * rng.uniform(0.8, 2.0))
    x = rng.uniform(0, width, n)
    y = rng.uniform(horizon + 0.3 * (height - horizon), height + 10, n)
    length = (y - horizon) / (height - horizon) * rng.uniform(6, 22, n) * detail
    lean = rng.normal(0, 0.35, n)
    pts = np.stack([np.stack([x, y], 1), np.stack([x + lean * length, y - length], 1)], 1)
    layer = np.zeros((height, width), np.uint8)
    cv2.polylines(layer, list(np.round(pts * 8).astype(np.int32)), False, 255, 1, cv2.LINE_AA, 3)
    a = layer.astype(np.float32)[..., None] / 255.0 * 0.8
    colour = np.asarray(rng.choice([(0.35, 0.50, 0.15), (0.75, 0.70, 0.40), (0.20, 0.35, 0.10)]), np.float32)
    return scene * (1 - a) + colour * a


def _forest(rng, height, width, detail):
    base = tint(np.clip(0.5 + 0.25 * fractal_noise(rng, height, width, cells=3, octaves=4), 0, 1),
                (0.03, 0.08, 0.03), (0.25, 0.38, 0.15))
    scene = base
    # trunks
    for _ in range(int(rng.integers(2, 7))):
        x = rng.uniform(0, width)
        w = width * rng.uniform(0.02, 0.08)
        bark = photo_texture(rng, "gravel", height, width, scale=0.6 * detail)
        trunk = tint(bark, (0.10, 0.07, 0.05), (0.45, 0.36, 0.28))
        xx = np.arange(width, dtype=np.float32)[None, :]
        m = smoothstep(-1.0, 1.0, w / 2 - np.abs(xx - x - 5 * fractal_noise(rng, height, 1, cells=3, octaves=2)))
        scene = scene * (1 - m[..., None]) + trunk * m[..., None]
    # leaves: a few thousand small ellipses per layer, light to dark
    for layer_i in range(3):
        canvas = np.zeros((height, width, 3), np.uint8)
        cover = np.zeros((height, width), np.uint8)
        n = int(height * width / 300 * rng.uniform(0.5, 1.0))
        xs, ys = rng.uniform(0, width, n), rng.uniform(0, height * rng.uniform(0.6, 1.0), n)
        r = rng.uniform(2, 7, n) * detail
        ang = rng.uniform(0, 180, n)
        green = np.clip(np.asarray([0.15, 0.35, 0.08]) * rng.uniform(0.5, 1.8, (n, 1))
                        + rng.normal(0, 0.04, (n, 3)), 0, 1)
        for i in range(n):
            c = tuple(int(v) for v in green[i] * 255)
            center = (int(xs[i] * 16), int(ys[i] * 16))
            axes = (int(r[i] * 16), int(r[i] * 8))
            cv2.ellipse(canvas, center, axes, ang[i], 0, 360, c, -1, cv2.LINE_AA, 4)
            cv2.ellipse(cover, center, axes, ang[i], 0, 360, 255, -1, cv2.LINE_AA, 4)
        a = cover.astype(np.float32)[..., None] / 255.0
        scene = scene * (1 - a) + canvas.astype(np.float32) / 255.0 * a
    if rng.random() < 0.6:
        scene = _bokeh_spots(rng, scene, count=int(rng.integers(5, 25)), colours=[(1.0, 0.98, 0.85)])
    return scene


def _wall(rng, height, width, detail):
    brick = photo_texture(rng, "brick", height, width, scale=rng.uniform(0.5, 1.0) * detail)
    wall = tint(brick, *(((0.25, 0.10, 0.07), (0.80, 0.50, 0.38)) if rng.random() < 0.6
                         else ((0.30, 0.30, 0.30), (0.85, 0.83, 0.80))))
    floor_y = height * rng.uniform(0.6, 0.85)
    wood = 0.5 + 0.3 * fractal_noise(rng, height, width, cells=3, octaves=5, aspect=8)
    floor = tint(np.clip(wood, 0, 1), (0.25, 0.15, 0.08), (0.70, 0.50, 0.30))
    yy = np.arange(height, dtype=np.float32)[:, None]
    m = smoothstep(-1.0, 1.0, yy - floor_y)[..., None]
    light = (1.1 - 0.3 * np.linspace(0, 1, width, dtype=np.float32))[None, :, None]
    if rng.random() < 0.5:
        light = light[:, ::-1]
    return (wall * (1 - m) + floor * m) * light


def _bokeh(rng, height, width):
    c0, c1 = rng.uniform(0.05, 0.5, 3), rng.uniform(0.1, 0.7, 3)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    scene = np.broadcast_to(c0 * (1 - t) + c1 * t, (height, width, 3)).astype(np.float32)
    scene = scene * (1 + 0.1 * fractal_noise(rng, height, width, cells=2, octaves=3))[..., None]
    colours = [tuple(rng.uniform(0.5, 1.0, 3)) for _ in range(4)]
    return _bokeh_spots(rng, scene, count=int(rng.integers(15, 60)), colours=colours)


def _bokeh_spots(rng, scene, *, count, colours):
    height, width = scene.shape[:2]
    out = scene.copy()
    for _ in range(count):
        layer = np.zeros((height, width), np.uint8)
        r = rng.uniform(0.01, 0.06) * max(height, width)
        cv2.circle(layer, (int(rng.uniform(0, width) * 16), int(rng.uniform(0, height) * 16)),
                   int(r * 16), 255, -1, cv2.LINE_AA, 4)
        a = layer.astype(np.float32)[..., None] / 255.0 * rng.uniform(0.15, 0.5)
        colour = np.asarray(colours[int(rng.integers(len(colours)))], np.float32)
        out = out + a * colour  # light adds
    return out
