"""Composition throughput at 1080p: gfm.compose.rssn.compose vs a reference written the official way.

The reference follows the official code's approach (its ``generate_composite_rssn``): the
background resized by ``skimage.transform.resize`` to the foreground's shape (float64), the
averaging filter on that float64 image, Eq. (1) in float64 per pixel, the composite truncated to
uint8, the float64 noise added to the truncated composite, truncated again. (The official
``np.uint8(x)`` wraps negative values around; the reference clips instead, so that the outputs
can be compared at all.) Both get identical random draws: the same decisions (``rssn.draw``) and
the same Gaussian variates for the noise (gfm draws them with OpenCV's generator seeded from
the numpy one; the reference takes them as float64 like the official ``np.random.normal``).

A second reference, "aligned", keeps the reference's structure and float64 arithmetic but takes
gfm's four documented choices (OpenCV resize, B kept 8-bit after resize and blur, rounding
instead of truncation, noise rounded then clipped): gfm's output must equal it byte for byte,
which shows that all the difference to the official-style reference comes from those choices.

Denoised inputs are given (cached), as in the stage. Run::

    PYTHONPATH=. python benchmarks/bench_composition.py [--n 8] [--height 1080] [--width 1440]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from gfm.compose import rssn


def reference_compose(fg, alpha, bg, fg_dn, bg_dn, config, rng, aligned=False):
    """Pipeline 1 written straightforwardly, the official way (see the module docstring)."""
    from skimage.transform import resize

    record = rssn.draw(config, rng)
    a = np.zeros(fg.shape[:2] + (1,), np.float32)
    a[:, :, 0] = alpha / 255.0
    if record["denoise"]:
        fg, bg = fg_dn, bg_dn
    if aligned:
        bg = rssn.resize_to(bg, fg.shape).astype(np.float64)
    else:
        bg = resize(bg, fg.shape) * 255.0
    if record["blur"]:
        k = record["kernel"]
        bg = cv2.blur(bg.astype(np.uint8) if aligned else bg, (k, k)).astype(np.float64)
    fg = fg.astype(np.float64)
    composite = np.zeros(fg.shape, np.float64)
    for c in range(fg.shape[2]):  # per-pixel Eq. (1), channel by channel
        composite[:, :, c] = a[:, :, 0] * fg[:, :, c] + (1 - a[:, :, 0]) * bg[:, :, c]
    composite = np.rint(composite) if aligned else np.floor(composite)
    if record["noise"]:
        gauss = rssn._noise_field(fg.shape, record["sigma"], rng, np.float32).astype(np.float64)
        if aligned:
            gauss = np.rint(gauss)
        composite = np.floor(np.clip(composite + gauss, 0, 255))
    return np.clip(composite, 0, 255).astype(np.uint8), record


def make_inputs(height, width, bg_shape, seed=0):
    """A textured foreground, a soft matte, a background of ``bg_shape`` and 'denoised' copies."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 60 * np.sin(xx / 37), 100 + 50 * np.cos(yy / 23), 90 + 40 * np.sin((xx + yy) / 51)], 2)
    fg = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    r = np.hypot((yy - height / 2) / height, (xx - width / 2) / width)
    alpha = np.clip((0.35 - r) / 0.1 * 255, 0, 255).astype(np.uint8)
    bh, bw = bg_shape
    bg = rng.integers(0, 256, (bh // 8, bw // 8, 3), dtype=np.uint8)
    bg = np.clip(cv2.resize(bg, (bw, bh), interpolation=cv2.INTER_CUBIC).astype(np.float32)
                 + rng.normal(0, 6, (bh, bw, 3)), 0, 255).astype(np.uint8)
    return fg, alpha, bg, cv2.blur(fg, (3, 3)), cv2.blur(bg, (3, 3))


def run(n, height, width, bg_shape, config):
    fg, alpha, bg, fg_dn, bg_dn = make_inputs(height, width, bg_shape)
    timings, outputs = {}, {}
    variants = {
        "gfm.compose.rssn.compose": lambda s: rssn.compose(fg, alpha, bg, config, np.random.default_rng(s),
                                                   fg_denoised=fg_dn, bg_denoised=bg_dn),
        "reference (official way)": lambda s: reference_compose(fg, alpha, bg, fg_dn, bg_dn, config,
                                                                np.random.default_rng(s)),
        "reference (aligned)": lambda s: reference_compose(fg, alpha, bg, fg_dn, bg_dn, config,
                                                           np.random.default_rng(s), aligned=True),
    }
    for name, function in variants.items():
        start = time.perf_counter()
        outputs[name] = [function(s) for s in range(n)]
        timings[name] = time.perf_counter() - start
    ours = outputs["gfm.compose.rssn.compose"]
    print(f"\n{n} composites of {height}x{width}, background {bg_shape[0]}x{bg_shape[1]}, "
          f"kernels {config.blur_kernels}")
    fired = [r for _, r in ours]
    print("  fired: denoise %d, blur %d, noise %d" % tuple(sum(r[k] for r in fired) for k in ("denoise", "blur", "noise")))
    for name, seconds in timings.items():
        print(f"  {name:26s} {seconds:8.2f} s  {n / seconds:7.2f} composites/s")
    ref = "reference (official way)"
    print(f"  speed-up vs {ref}: {timings[ref] / timings['gfm.compose.rssn.compose']:.1f}x")
    for name in (ref, "reference (aligned)"):
        same_draws = all(a[1]["blur"] == b[1]["blur"] and a[1]["kernel"] == b[1]["kernel"]
                         and a[1]["noise"] == b[1]["noise"] and a[1]["denoise"] == b[1]["denoise"]
                         for a, b in zip(ours, outputs[name]))
        diff = np.stack([np.abs(a[0].astype(int) - b[0].astype(int)) for a, b in zip(ours, outputs[name])])
        print(f"  vs {name:24s} draws identical: {same_draws}; |diff| max {diff.max()}, "
              f"mean {diff.mean():.3f}, pixels differing {100 * (diff > 0).mean():.2f}%")
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="composites per scenario")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # both implementations single-threaded, as in a data-loading worker
    config = rssn.ROUTES["rssn"]
    print("RSSN composition benchmark (paper route, kernels 20..60, p = 0.5, sigma 10)")
    run(args.n, args.height, args.width, (1200, 1800), config)  # B must be resized
    run(args.n, args.height, args.width, (args.height, args.width), config)  # B already at F's size


if __name__ == "__main__":
    main()
