"""Foreground objects of the embedded world: furry animals (the matting subjects) and the
people-/object-like shapes that make a background *salient* (paper, Sect. 4.1 "Semantic ambiguity").

Every object is drawn at ``supersample``× resolution with anti-aliased OpenCV primitives
(sub-pixel coordinates via ``shift``) and reduced with area averaging of the *premultiplied*
colour, so the returned alpha is properly fractional along the boundary and the returned
foreground ``F`` satisfies ``alpha * F`` = the premultiplied colour exactly (Eq. 1).

An animal is a body silhouette (Fourier-perturbed ellipses: body, head, snout, ears, legs,
tail), hundreds to thousands of thin hair strands along its contour (sub-pixel width, varying
length, curvature and opacity → fractional alpha), optional whiskers, and one translucent
appendage (wing/fin/veil, alpha 0.3–0.7) behind the body. Coats follow natural palettes with
stripes, spots, patch networks and streaky fur noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from gfm.data.world.textures import fractal_noise, smoothstep

#: Coat palettes: (base colour, secondary colour, pattern colour, pattern kind), RGB in [0, 1].
PALETTES = {
    "lion": ((0.76, 0.60, 0.38), (0.92, 0.84, 0.66), None, "none"),
    "tiger": ((0.86, 0.50, 0.16), (0.95, 0.92, 0.85), (0.08, 0.06, 0.05), "stripes"),
    "leopard": ((0.84, 0.67, 0.38), (0.95, 0.90, 0.78), (0.14, 0.10, 0.06), "spots"),
    "zebra": ((0.93, 0.92, 0.89), (0.93, 0.92, 0.89), (0.07, 0.07, 0.07), "stripes"),
    "elephant": ((0.50, 0.48, 0.46), (0.56, 0.54, 0.52), None, "none"),
    "sheep": ((0.90, 0.87, 0.79), (0.95, 0.93, 0.88), None, "none"),
    "fox": ((0.78, 0.38, 0.13), (0.96, 0.94, 0.90), None, "none"),
    "bear": ((0.30, 0.20, 0.12), (0.36, 0.25, 0.16), None, "none"),
    "cat": ((0.12, 0.11, 0.11), (0.20, 0.19, 0.18), None, "none"),
    "giraffe": ((0.62, 0.36, 0.16), (0.93, 0.85, 0.68), (0.92, 0.84, 0.66), "network"),
    "panda": ((0.94, 0.93, 0.90), (0.94, 0.93, 0.90), (0.08, 0.08, 0.08), "patches"),
    "deer": ((0.60, 0.40, 0.24), (0.93, 0.88, 0.80), None, "none"),
    "wolf": ((0.55, 0.53, 0.50), (0.86, 0.84, 0.80), (0.25, 0.23, 0.21), "patches"),
    "cattle": ((0.45, 0.28, 0.17), (0.95, 0.94, 0.92), (0.95, 0.94, 0.92), "patches"),
}

#: Colours of the translucent appendage (wing / fin / veil).
TRANSLUCENT_COLOURS = ((0.85, 0.92, 1.00), (1.00, 0.88, 0.62), (0.95, 0.95, 0.95),
                       (0.80, 1.00, 0.85), (1.00, 0.80, 0.85))


def make_animal(rng: np.random.Generator, height: int, width: int, *, supersample: int = 2,
                size: float | None = None, palette: str | None = None, fur_length: float | None = None,
                hair_density: float = 0.8, p_whiskers: float = 0.6,
                translucent_alpha: tuple[float, float] = (0.3, 0.7),
                info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A furry animal-like foreground on an H×W canvas.

    Parameters
    ----------
    rng : the random generator (the only source of randomness).
    height, width : canvas size of the returned arrays.
    supersample : drawing resolution factor; the result is area-averaged down.
    size : body half-length as a fraction of the shorter side (default: random 0.22–0.32).
    palette : a key of :data:`PALETTES` (default: random).
    fur_length : typical hair length in output pixels (default: random 1.5–14).
    hair_density : hair roots per output pixel of contour.
    p_whiskers : probability of whiskers.
    translucent_alpha : range of the alpha of the translucent appendage.
    info : if given, filled with the drawn traits (palette, pattern, fur length, ...).

    Returns
    -------
    fg : float32 H×W×3 in [0, 1], the true foreground colour F (defined where alpha > 0,
        extended smoothly elsewhere).
    alpha : float32 H×W in [0, 1].
    """
    if height < 8 or width < 8:
        raise ValueError(f"make_animal: height and width must be >= 8, got {height}×{width}")
    s = int(supersample)
    H, W = height * s, width * s
    short = min(H, W)
    palette = palette or str(rng.choice(sorted(PALETTES)))
    if palette not in PALETTES:
        raise ValueError(f"palette must be one of {sorted(PALETTES)}, got {palette!r}")
    base, secondary, pattern_colour, pattern = PALETTES[palette]
    jitter = rng.normal(1.0, 0.06, 3)
    base = np.clip(np.asarray(base) * jitter, 0, 1)
    secondary = np.clip(np.asarray(secondary) * jitter, 0, 1)
    fur = (fur_length if fur_length is not None else float(rng.uniform(1.5, 14.0))) * s
    half = (size if size is not None else float(rng.uniform(0.22, 0.32))) * short
    facing = 1 if rng.random() < 0.5 else -1

    # --- silhouette -------------------------------------------------------------------------
    body = np.zeros((H, W), np.uint8)
    cx = W * rng.uniform(0.38, 0.62)
    cy = H * rng.uniform(0.45, 0.62)
    rx = half * rng.uniform(0.95, 1.25)
    ry = half * rng.uniform(0.50, 0.78)
    tilt = rng.uniform(-0.25, 0.25)
    _fill(body, _blob(rng, cx, cy, rx, ry, tilt, wobble=0.06))
    # head, neck and snout
    hr = half * rng.uniform(0.36, 0.52)
    hx = cx + facing * rx * rng.uniform(0.75, 1.0)
    hy = cy - ry * rng.uniform(0.4, 1.1)
    _fill(body, _blob(rng, (cx + hx) / 2, (cy + hy) / 2, rx * 0.45, ry * 0.55, tilt - facing * 0.6, wobble=0.03))
    _fill(body, _blob(rng, hx, hy, hr * rng.uniform(0.95, 1.15), hr * rng.uniform(0.85, 1.0), 0, wobble=0.04))
    sx, sy = hx + facing * hr * rng.uniform(0.7, 1.0), hy + hr * rng.uniform(0.1, 0.4)
    _fill(body, _blob(rng, sx, sy, hr * rng.uniform(0.4, 0.6), hr * rng.uniform(0.3, 0.45), 0, wobble=0.03))
    # ears: pointed (triangles) or round
    pointed = rng.random() < 0.6
    for side in (-1, 1):
        ex = hx + side * hr * rng.uniform(0.35, 0.6) - facing * hr * 0.15
        ey = hy - hr * rng.uniform(0.7, 0.9)
        er = hr * rng.uniform(0.3, 0.5)
        if pointed:
            tip = (ex + rng.normal(0, er * 0.3), ey - er * rng.uniform(1.2, 1.9))
            tri = np.array([(ex - er * 0.7, ey + er * 0.5), tip, (ex + er * 0.7, ey + er * 0.5)])
            _fill(body, tri)
        else:
            _fill(body, _blob(rng, ex, ey - er * 0.4, er, er * 0.9, 0, wobble=0.03))
    # legs
    n_legs = int(rng.choice([2, 3, 4]))
    leg_w = half * rng.uniform(0.16, 0.26)
    leg_len = half * rng.uniform(0.6, 1.3)
    for i in range(n_legs):
        lx = cx + rx * (-0.7 + 1.4 * (i + 0.5) / n_legs) + rng.normal(0, rx * 0.05)
        ly = cy + ry * 0.5
        foot = (lx + rng.normal(0, leg_w * 0.8), ly + leg_len)
        _thick_line(body, (lx, ly), foot, leg_w)
    # tail: a tapered curve from the back end
    tx0, ty0 = cx - facing * rx * 0.9, cy - ry * 0.2
    angle = np.pi / 2 + facing * rng.uniform(0.3, 1.3) + (np.pi if rng.random() < 0.5 else 0)
    tail_len = half * rng.uniform(0.5, 1.1)
    curl = rng.uniform(-0.8, 0.8)
    t = np.linspace(0, 1, 12)
    ang = angle + curl * t
    pts = np.stack([tx0 + np.cumsum(np.cos(ang)) * tail_len / 12, ty0 + np.cumsum(np.sin(ang)) * tail_len / 12], 1)
    tail_w = half * rng.uniform(0.08, 0.16)
    prev = (tx0, ty0)
    for k, p in enumerate(pts):
        _thick_line(body, prev, p, tail_w * (1 - 0.7 * k / len(pts)))
        prev = p

    mask = body > 127
    if not mask.any():
        raise ValueError("make_animal: the silhouette fell outside the canvas; use a larger canvas")

    # --- coverage layers at the drawing resolution ---------------------------------------------
    hair_alpha, fur_shade = _hairs(rng, mask, fur, hair_density / s, s)
    body_alpha = body.astype(np.float32) / 255.0
    wing_alpha, wing_colour, wing_kind = _translucent(rng, H, W, cx, cy, rx, ry, facing, translucent_alpha, s)
    whiskers = rng.random() < p_whiskers
    whisker_alpha = (_whiskers(rng, H, W, (sx + facing * hr * 0.3, sy), facing, hr, s) if whiskers
                     else np.zeros((H, W), np.float32))
    # back to front: wing, body, hairs over the body, whiskers in front ("over" compositing).
    # The weight of each layer's colour in the premultiplied result:
    front = 1 - whisker_alpha
    w_hair = hair_alpha * front
    w_body = body_alpha * (1 - hair_alpha) * front
    w_wing = wing_alpha * (1 - body_alpha) * (1 - hair_alpha) * front
    alpha = whisker_alpha + w_hair + w_body + w_wing
    # Colours are defined on the output grid (constant over each supersampled block), so
    # area-averaging the weights and then multiplying by the colours is exact.
    w_hair, w_body, w_wing, w_whisker, alpha, fur_shade, solid = (
        _area(x, width, height) for x in (w_hair, w_body, w_wing, whisker_alpha, alpha, fur_shade,
                                          mask.astype(np.float32)))

    # --- colours on the output grid ---------------------------------------------------------------
    colour = _coat(rng, height, width, base, secondary, pattern_colour, pattern, cy / s, ry / s, half / s)
    solid = (solid > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    shade = 0.72 + 0.28 * np.sqrt(np.clip(inside / (0.5 * ry / s), 0, 1))
    light = 1.06 - 0.14 * (np.arange(height, dtype=np.float32) / height)[:, None]
    colour *= (shade * light)[..., None]
    eye = np.zeros((height, width), np.uint8)  # eyes and nose (colour only)
    for (px, py), (ax, ay) in ((((hx + facing * hr * 0.45), hy - hr * 0.15), (hr * 0.13, hr * 0.11)),
                               ((sx + facing * hr * 0.4, sy - hr * 0.08), (hr * 0.12, hr * 0.09))):
        cv2.ellipse(eye, _pt((px / s, py / s)), _pt((ax / s, ay / s)), 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    e = eye.astype(np.float32)[..., None] / 255.0
    colour = colour * (1 - e) + np.float32(0.04) * e
    outside = cv2.distanceTransform(1 - solid, cv2.DIST_L2, 3)
    tip_gain = rng.uniform(-0.15, 0.3)
    hair_colour = colour * (1 + tip_gain * np.clip(outside * s / max(fur, 1.0), 0, 1))[..., None]
    body_colour = colour * fur_shade[..., None]
    whisker_colour = np.float32(rng.uniform(0.8, 0.97))
    premult = (w_hair[..., None] * hair_colour + w_body[..., None] * body_colour
               + w_wing[..., None] * wing_colour + w_whisker[..., None] * whisker_colour)

    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    alpha[alpha < 1.0 / 512] = 0.0
    safe = np.maximum(alpha, 1e-6)[..., None]
    fg = np.where(alpha[..., None] > 0, premult / safe, body_colour)
    if info is not None:
        info.update(palette=palette, pattern=pattern, fur_length=round(fur / s, 2),
                    whiskers=bool(whiskers), translucent=wing_kind, facing=int(facing))
    return np.clip(fg, 0.0, 1.0).astype(np.float32), alpha


def make_person(rng: np.random.Generator, height: int, width: int, *,
                supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A person-like figure (head, torso, arms, legs; clothing colours), hard-edged (no fur).

    Returns ``(fg, alpha)`` like :func:`make_animal`.
    """
    s = int(supersample)
    H, W = height * s, width * s
    u = min(H, W / 0.45) / 8.0  # head height unit; the figure is ~8 units tall
    cx, top = W * rng.uniform(0.4, 0.6), H * 0.05
    skin = np.array(rng.choice([(0.93, 0.78, 0.65), (0.78, 0.57, 0.42), (0.45, 0.30, 0.20)]))
    shirt = rng.uniform(0.05, 0.95, 3)
    trousers = rng.uniform(0.05, 0.6, 3)
    parts = []  # (mask, colour)
    m = np.zeros((H, W), np.uint8)
    cv2.ellipse(m, _pt((cx, top + 0.5 * u)), _pt((0.38 * u, 0.5 * u)), 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    parts.append((m, skin))
    m = np.zeros((H, W), np.uint8)
    _fill(m, np.array([(cx - 0.9 * u, top + 1.2 * u), (cx + 0.9 * u, top + 1.2 * u),
                       (cx + 0.75 * u, top + 4.2 * u), (cx - 0.75 * u, top + 4.2 * u)]))
    for side in (-1, 1):
        hand = (cx + side * u * rng.uniform(1.0, 1.8), top + u * rng.uniform(3.2, 4.4))
        _thick_line(m, (cx + side * 0.8 * u, top + 1.5 * u), hand, 0.28 * u)
    parts.append((m, shirt))
    m = np.zeros((H, W), np.uint8)
    for side in (-1, 1):
        _thick_line(m, (cx + side * 0.4 * u, top + 4.1 * u),
                    (cx + side * u * rng.uniform(0.4, 0.9), top + 7.8 * u), 0.36 * u)
    parts.append((m, trousers))
    return _layers_to_fg(parts, height, width)


def make_object(rng: np.random.Generator, height: int, width: int, *,
                supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A man-made object (car-, box-, ball- or bottle-like), hard-edged. Returns ``(fg, alpha)``."""
    s = int(supersample)
    H, W = height * s, width * s
    kind = rng.choice(["car", "box", "ball", "bottle"])
    colour = rng.uniform(0.05, 0.95, 3)
    parts = []
    m = np.zeros((H, W), np.uint8)
    cx, cy = W / 2, H / 2
    if kind == "car":
        w, h = W * 0.45, H * 0.16
        _fill(m, np.array([(cx - w, cy), (cx + w, cy), (cx + w, cy + h), (cx - w, cy + h)]))
        _fill(m, np.array([(cx - w * 0.55, cy), (cx - w * 0.35, cy - h * 0.9), (cx + w * 0.35, cy - h * 0.9),
                           (cx + w * 0.6, cy)]))
        parts.append((m, colour))
        wheels = np.zeros((H, W), np.uint8)
        for side in (-0.6, 0.6):
            cv2.circle(wheels, _pt((cx + side * w, cy + h)), int(h * 0.55 * 16), 255, -1, cv2.LINE_AA, 4)
        parts.append((wheels, np.array([0.05, 0.05, 0.05])))
    elif kind == "box":
        w, h = W * rng.uniform(0.2, 0.4), H * rng.uniform(0.2, 0.4)
        _fill(m, np.array([(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)]))
        parts.append((m, colour))
    elif kind == "ball":
        cv2.circle(m, _pt((cx, cy)), int(min(H, W) * 0.35 * 16), 255, -1, cv2.LINE_AA, 4)
        parts.append((m, colour))
    else:
        w, h = W * 0.09, H * 0.4
        _fill(m, np.array([(cx - w, cy - h * 0.3), (cx + w, cy - h * 0.3), (cx + w, cy + h), (cx - w, cy + h)]))
        _thick_line(m, (cx, cy - h * 0.3), (cx, cy - h), w * 0.8)
        parts.append((m, colour))
    fg, alpha = _layers_to_fg(parts, height, width)
    # simple shading so the object is not flat
    grad = np.linspace(1.1, 0.8, height, dtype=np.float32)[:, None, None]
    return np.clip(fg * grad, 0, 1).astype(np.float32), alpha


# ----------------------------------------------------------------------------------------------
def _pt(xy) -> tuple[int, int]:
    """Sub-pixel point for OpenCV drawing with ``shift=4``."""
    return int(round(xy[0] * 16)), int(round(xy[1] * 16))


def _fill(canvas: np.ndarray, polygon: np.ndarray, value: int = 255) -> None:
    pts = np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], value, cv2.LINE_AA, 4)


def _thick_line(canvas: np.ndarray, p0, p1, width: float, value: int = 255) -> None:
    cv2.line(canvas, _pt(p0), _pt(p1), value, max(1, int(round(width))), cv2.LINE_AA, 4)


def _blob(rng, cx, cy, rx, ry, tilt, *, wobble=0.05, n=180, harmonics=6) -> np.ndarray:
    """Ellipse with a Fourier-perturbed radius, as an n×2 polygon."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, harmonics + 1):
        r += rng.normal(0, wobble / k ** 0.7) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    x, y = rx * r * np.cos(theta), ry * r * np.sin(theta)
    c, sn = np.cos(tilt), np.sin(tilt)
    return np.stack([cx + c * x - sn * y, cy + sn * x + c * y], 1)


def _coat(rng, H, W, base, secondary, pattern_colour, pattern, cy, ry, half) -> np.ndarray:
    """Coat colour over the whole plane: belly blend, pattern, streaky fur noise."""
    yy = np.arange(H, dtype=np.float32)[:, None]
    belly = smoothstep(0.1, 0.9, ((yy - cy) / ry + 0.2 * fractal_noise(rng, H, W, cells=3, octaves=2)))
    colour = (np.asarray(base, np.float32) * (1 - belly[..., None])
              + np.asarray(secondary, np.float32) * belly[..., None])
    if pattern != "none":
        pc = np.asarray(pattern_colour, np.float32)
        if pattern == "stripes":
            phi = rng.uniform(-0.4, 0.4) + np.pi / 2
            xx = np.arange(W, dtype=np.float32)[None, :]
            period = half * rng.uniform(0.18, 0.35)
            warp = fractal_noise(rng, H, W, cells=3, octaves=3) * period * 0.35
            phase = (xx * np.cos(phi) + yy * np.sin(phi) * 0.3 + warp) / period
            v = np.sin(2 * np.pi * phase)
            p = smoothstep(0.35, 0.6, v)
        elif pattern == "spots":
            n = fractal_noise(rng, H, W, cells=max(4.0, 2.5 * max(H, W) / half), octaves=2)
            p = smoothstep(0.9, 1.3, n)
            ring = smoothstep(0.55, 0.75, n) * (1 - smoothstep(0.95, 1.1, n))
            p = np.maximum(p * 0.6, ring)  # rosettes: dark rings with lighter centres
        elif pattern == "network":
            n = fractal_noise(rng, H, W, cells=max(4.0, 1.8 * max(H, W) / half), octaves=2)
            p = 1 - smoothstep(0.08, 0.2, np.abs(n))
        else:  # patches
            n = fractal_noise(rng, H, W, cells=max(3.0, 0.9 * max(H, W) / half), octaves=3)
            p = smoothstep(0.3, 0.45, n)
        colour = colour * (1 - p[..., None]) + pc * p[..., None]
    # streaky fur noise: fine noise smeared along one direction
    fine = rng.standard_normal((H, W)).astype(np.float32)
    k = 5
    kernel = np.zeros((k, k), np.float32)
    ang = rng.uniform(0, np.pi)
    c = (k - 1) / 2
    for t in np.linspace(-c, c, 2 * k):
        kernel[int(round(c + t * np.sin(ang))), int(round(c + t * np.cos(ang)))] = 1.0
    streak = cv2.filter2D(fine, -1, kernel / kernel.sum())
    streak /= streak.std() + 1e-6
    amount = rng.uniform(0.04, 0.1)
    coarse = fractal_noise(rng, H, W, cells=6, octaves=3) * rng.uniform(0.03, 0.07)
    colour = colour * (1 + amount * streak + coarse)[..., None]
    return np.clip(colour, 0, 1).astype(np.float32)


def _hairs(rng, mask, fur, density, s) -> tuple[np.ndarray, np.ndarray]:
    """Hair strands along the contour (alpha layer) and darker strokes inside (shade layer)."""
    H, W = mask.shape
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c[:, 0, :] for c in contours]).astype(np.float32)
    # tangent from neighbours along each contour, outward normal by testing the mask
    tang = np.concatenate([np.roll(c[:, 0, :], -3, 0) - np.roll(c[:, 0, :], 3, 0) for c in contours]).astype(np.float32)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True) + 1e-6
    normal = np.stack([tang[:, 1], -tang[:, 0]], 1)
    probe = np.clip(np.round(pts + 4 * normal).astype(int), 0, [W - 1, H - 1])
    flip = mask[probe[:, 1], probe[:, 0]]
    normal[flip] *= -1
    n_roots = int(len(pts) * density * rng.uniform(0.8, 1.3)) + 1
    idx = rng.integers(0, len(pts), n_roots)
    roots, normals = pts[idx], normal[idx]
    alpha = _strands(rng, roots, normals, fur, H, W, inward=(0.3, 0.9), spread=0.45,
                     opacity=(0.35, 1.0), segments=5)
    # a second, sparser pass of long guard hairs
    idx = rng.integers(0, len(pts), max(1, n_roots // 6))
    guard = _strands(rng, pts[idx], normal[idx], fur * 1.7, H, W, inward=(0.1, 0.4), spread=0.6,
                     opacity=(0.25, 0.8), segments=6)
    alpha = 1 - (1 - alpha) * (1 - guard)
    # interior strokes: fur texture on the body
    ys, xs = np.nonzero(mask[::2, ::2])
    n_in = min(len(xs), int(mask.sum() * 0.004 * rng.uniform(0.5, 1.5)))
    sel = rng.integers(0, len(xs), n_in) if len(xs) else np.zeros(0, int)
    inner_roots = np.stack([xs[sel] * 2.0, ys[sel] * 2.0], 1).astype(np.float32)
    flow = rng.uniform(0, 2 * np.pi)
    inner_dirs = np.tile([[np.cos(flow), np.sin(flow)]], (len(inner_roots), 1)).astype(np.float32)
    strokes = _strands(rng, inner_roots, inner_dirs, fur * 0.8 + 2 * s, H, W, inward=(0, 0), spread=0.5,
                       opacity=(0.3, 0.8), segments=4)
    shade = 1 - rng.uniform(0.15, 0.35) * strokes
    return alpha.astype(np.float32), shade.astype(np.float32)


def _strands(rng, roots, directions, length, H, W, *, inward, spread, opacity, segments) -> np.ndarray:
    """Draw curved anti-aliased 1-px strands (vectorised point generation; one polylines call per
    opacity bin). Returns the union alpha of all strands, float32 H×W in [0, 1]."""
    n = len(roots)
    out = np.zeros((H, W), np.float32)
    if n == 0:
        return out
    lengths = length * rng.lognormal(0.0, 0.35, n)
    start = roots - directions * (rng.uniform(*inward, n) * length)[:, None] if inward[1] > 0 else roots
    angle0 = np.arctan2(directions[:, 1], directions[:, 0]) + rng.normal(0, spread, n)
    # a gentle droop (gravity) plus a per-hair curl
    curl = rng.normal(0, 0.25, n)
    droop = 0.12
    steps = np.arange(segments, dtype=np.float32)
    ang = angle0[:, None] + curl[:, None] * steps[None, :]
    ang = ang + droop * steps[None, :] * np.sign(np.cos(ang))
    seg = (lengths / segments)[:, None]
    dx, dy = np.cos(ang) * seg, np.sin(ang) * seg
    xs = np.concatenate([start[:, :1], start[:, :1] + np.cumsum(dx, 1)], 1)
    ys = np.concatenate([start[:, 1:], start[:, 1:] + np.cumsum(dy, 1)], 1)
    poly = np.round(np.stack([xs, ys], 2) * 8).astype(np.int32)  # shift=3
    op = rng.uniform(*opacity, n)
    bins = np.linspace(opacity[0], opacity[1], 5)
    which = np.clip(np.digitize(op, bins) - 1, 0, 3)
    for b in range(4):
        sel = np.nonzero(which == b)[0]
        if len(sel) == 0:
            continue
        layer = np.zeros((H, W), np.uint8)
        value = int(round(255 * (bins[b] + bins[b + 1]) / 2))
        cv2.polylines(layer, list(poly[sel]), False, value, 1, cv2.LINE_AA, 3)
        out = 1 - (1 - out) * (1 - layer.astype(np.float32) / 255.0)
    return out


def _translucent(rng, H, W, cx, cy, rx, ry, facing, alpha_range, s):
    """A translucent wing / fin / veil attached behind the body (alpha in ``alpha_range``)."""
    kind = str(rng.choice(["wing", "fin", "veil"]))
    canvas = np.zeros((H, W), np.uint8)
    if kind == "wing":
        ax, ay = cx - facing * rx * 0.1, cy - ry * 0.6
        poly = _blob(rng, ax - facing * rx * 0.45, ay - ry * 0.9, rx * 0.85, ry * 0.55, -facing * 0.5, wobble=0.1)
    elif kind == "fin":
        ax, ay = cx, cy - ry * 0.8
        poly = np.array([(ax - rx * 0.7, ay + ry * 0.3), (ax - facing * rx * 0.3, ay - ry * rng.uniform(0.9, 1.5)),
                         (ax + rx * 0.6, ay + ry * 0.3)])
    else:
        poly = _blob(rng, cx - facing * rx * 1.1, cy + ry * 0.1, rx * 0.55, ry * 0.9, 0.3 * facing, wobble=0.15)
    _fill(canvas, poly)
    level = rng.uniform(*alpha_range)
    base = canvas.astype(np.float32) / 255.0
    # veins: slightly more opaque lines radiating from the attachment
    veins = np.zeros((H, W), np.uint8)
    c = poly.mean(0)
    for p in poly[rng.choice(len(poly), size=min(len(poly), 7), replace=False)]:
        _thick_line(veins, (c[0] * 0.5 + p[0] * 0.5, c[1] * 0.5 + p[1] * 0.5), p, 1.0 * s)
    vary = 1 + 0.15 * fractal_noise(rng, H, W, cells=4, octaves=2)
    a = np.clip(base * level * vary + base * (veins.astype(np.float32) / 255.0) * 0.15, 0, 0.85)
    colour = np.asarray(TRANSLUCENT_COLOURS[int(rng.integers(len(TRANSLUCENT_COLOURS)))], np.float32)
    colour = colour * np.float32(rng.uniform(0.85, 1.0))
    return a.astype(np.float32), colour, kind


def _whiskers(rng, H, W, origin, facing, hr, s) -> np.ndarray:
    n = int(rng.integers(3, 7))
    roots = np.tile(np.asarray(origin, np.float32), (2 * n, 1)) + rng.normal(0, hr * 0.06, (2 * n, 2)).astype(np.float32)
    ang = np.concatenate([rng.uniform(-0.5, 0.4, n), np.pi + rng.uniform(-0.4, 0.5, n)])
    dirs = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    return _strands(rng, roots, dirs, hr * rng.uniform(1.0, 1.6), H, W, inward=(0, 0), spread=0.05,
                    opacity=(0.55, 0.95), segments=6)


def _area(x: np.ndarray, width: int, height: int) -> np.ndarray:
    if x.shape[:2] == (height, width):
        return x.astype(np.float32)
    return cv2.resize(x.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def _layers_to_fg(parts, height, width) -> tuple[np.ndarray, np.ndarray]:
    H, W = parts[0][0].shape
    alpha = np.zeros((H, W), np.float32)
    premult = np.zeros((H, W, 3), np.float32)
    for mask, colour in parts:  # later parts in front
        a = mask.astype(np.float32) / 255.0
        premult = np.asarray(colour, np.float32) * a[..., None] + premult * (1 - a)[..., None]
        alpha = a + alpha * (1 - a)
    alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_AREA)
    premult = cv2.resize(premult, (width, height), interpolation=cv2.INTER_AREA)
    fg = premult / np.maximum(alpha, 1e-6)[..., None]
    alpha[alpha < 1.0 / 512] = 0.0
    return np.clip(fg, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32)
