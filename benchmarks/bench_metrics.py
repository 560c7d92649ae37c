"""Speed and parity of gfm.evaluate.metrics against the official GFM evaluation functions.

Generates realistic 1080×1440 pairs (a smooth matte with a furry, wavy boundary; the prediction is
the ground truth plus structured errors: a smooth bias in the transition band, false-positive
blobs in the background, holes in the foreground, fine noise), then times in the same run

* the official functions as ``core/test.py`` calls them (``--official PATH`` = the ``core/`` folder
  of an official checkout, e.g. ``git -C <mirror> archive HEAD | tar -x -C /tmp/gfm_official``
  then ``--official /tmp/gfm_official/core``; the official code is never copied into this repo),
* :func:`gfm.evaluate.metrics.evaluate` (``convention="gfm"``) and its per-metric parts,

and prints per-metric times, the total speed-up and the largest relative difference per key.
``--closed-form`` also times the closed-form reference matte of the evaluate stage
(:func:`gfm.evaluate.baselines.closed_form_matte`, Levin et al. via pymatting) on an image composed
from the same matte; ``--height 360 --width 480`` is the embedded world's size.

    PYTHONPATH=. python benchmarks/bench_metrics.py --official /tmp/gfm_official/core
    PYTHONPATH=. python benchmarks/bench_metrics.py --height 360 --width 480 --closed-form
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from gfm.core.trimap import trimap as make_trimap
from gfm.evaluate import metrics
from gfm.evaluate.baselines import closed_form_matte


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, default=None, help="folder holding the official evaluate.py")
    parser.add_argument("--pairs", type=int, default=2, help="number of generated pairs")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of ours per pair (best is kept)")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--closed-form", action="store_true", help="also time the closed-form reference matte")
    args = parser.parse_args(argv)

    official = _load_official(args.official)
    if official is None:
        print("official baseline unavailable (pass --official PATH/TO/core); timing ours only")

    ours_parts = {
        "sad/mse/mad": lambda p, g, t: (metrics.sad(p, g), metrics.mse(p, g), metrics.mad(p, g)),
        "grad": lambda p, g, t: metrics.grad(p, g),
        "conn": lambda p, g, t: metrics.conn(p, g),
        "evaluate (all)": lambda p, g, t: metrics.evaluate(p, g, t),
    }
    warm = np.random.default_rng(args.seed).random((64, 64))
    _, first = _timed(metrics.evaluate, warm, warm)  # numba compiles (or loads its disk cache) here
    print(f"first call (kernel compilation or cache load): {1000 * first:.0f} ms, excluded below")
    if args.closed_form:
        _, small_gt, small_tri = synthetic_pair(96, 96, seed=args.seed)
        _, first = _timed(closed_form_matte, synthetic_image(small_gt), small_tri)  # pymatting's numba kernels
        print(f"first closed-form call (import, compilation or cache load): {1000 * first:.0f} ms, excluded below")
    times: dict[str, list[float]] = {}
    worst: dict[str, float] = {}
    for index in range(args.pairs):
        pred, gt, tri = synthetic_pair(args.height, args.width, seed=args.seed + index)
        for name, fn in ours_parts.items():
            best = min(_timed(fn, pred, gt, tri)[1] for _ in range(args.repeat))
            times.setdefault(f"ours {name}", []).append(best)
        ours = metrics.evaluate(pred, gt, tri)
        if args.closed_form:
            image = synthetic_image(gt, seed=args.seed + index)
            matte, seconds = _timed(closed_form_matte, image, tri)
            times.setdefault("closed-form matte (baseline)", []).append(seconds)
            print(f"pair {index}: closed-form SAD {metrics.sad(matte.astype(np.float64), gt):.4g} "
                  f"({np.mean(tri == 128):.1%} unknown pixels)")
        if official is not None:
            reference = {}
            for name, fn in _official_parts(official).items():
                values, seconds = _timed(fn, pred, gt, tri)
                reference.update(values)
                times.setdefault(f"official {name}", []).append(seconds)
            for key, value in reference.items():
                rel = abs(ours[key] - value) / abs(value) if value else abs(ours[key])
                worst[key] = max(worst.get(key, 0.0), rel)
        print(f"pair {index}: " + ", ".join(f"{k}={v:.6g}" for k, v in ours.items()))

    print(f"\nper-metric time, median over {args.pairs} pair(s) of {args.height}×{args.width} [ms]")
    for name, values in times.items():
        print(f"  {name:<28s} {1000 * statistics.median(values):9.1f}")
    if official is not None:
        total_official = sum(statistics.median(v) for k, v in times.items() if k.startswith("official"))
        total_ours = statistics.median(times["ours evaluate (all)"])
        print(f"\nofficial total {1000 * total_official:.1f} ms, ours evaluate() {1000 * total_ours:.1f} ms: "
              f"{total_official / total_ours:.1f}x faster")
        print("max relative difference per key: " + ", ".join(f"{k}={v:.2e}" for k, v in worst.items()))
        print(f"max relative difference overall: {max(worst.values()):.2e}")
    return 0


def synthetic_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred float64, gt float64 in 1/255 steps, trimap uint8) with a furry-boundary subject."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    cy, cx = height * rng.uniform(0.45, 0.55), width * rng.uniform(0.45, 0.55)
    angle = np.arctan2(yy - cy, xx - cx)
    radius = min(height, width) * 0.33 * (1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.05 * np.sin(11 * angle))
    signed = (np.hypot(yy - cy, xx - cx) - radius) / 12.0  # > 0 outside, in transition-band units
    # fur: thin strands along the radial direction, strongest at the boundary
    strands = cv2.GaussianBlur(rng.standard_normal((height, width)), (0, 0), sigmaX=0.7, sigmaY=0.7)
    strands = cv2.blur(strands, (1, 9)) * 6.0
    gt = np.clip(0.5 - signed + strands * np.exp(-(signed**2) / 2.0), 0.0, 1.0)
    gt = np.round(gt * 255.0) / 255.0
    smooth = cv2.GaussianBlur(rng.standard_normal((height, width)), (0, 0), 15)
    smooth /= np.abs(smooth).max()
    band = np.exp(-(signed**2) / 8.0)
    field = cv2.GaussianBlur(rng.random((height, width)), (0, 0), 25)
    blobs = np.clip((field - np.quantile(field, 0.97)) / field.std(), 0.0, 0.7)  # ~3 % of the image
    pred = gt + 0.25 * smooth * band + 0.03 * rng.standard_normal((height, width)) * band
    pred += np.where(signed > 3, blobs, 0.0) - np.where(signed < -3, blobs, 0.0)
    pred = np.clip(pred, 0.0, 1.0)
    return pred, gt, make_trimap(np.round(gt * 255).astype(np.uint8), kernel_size=25)


def synthetic_image(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """An RGB uint8 composite (Eq. 1) of two smooth random textures through ``gt``: the closed-form
    matte's input."""
    rng = np.random.default_rng(seed)
    h, w = gt.shape
    fg, bg = (cv2.GaussianBlur(rng.random((h, w, 3)), (0, 0), 4) for _ in range(2))
    fg = (fg - fg.min()) / np.ptp(fg) * 0.5 + 0.5                     # a bright foreground, a dark background
    bg = (bg - bg.min()) / np.ptp(bg) * 0.5
    alpha = gt[..., None]
    return np.round((alpha * fg + (1 - alpha) * bg) * 255).astype(np.uint8)


def _official_parts(ev) -> dict:
    return {
        "sad/mse/mad": lambda p, g, t: dict(zip(("sad", "mse", "mad"), map(float, ev.calculate_sad_mse_mad_whole_img(p, g)))),
        "sad/mse/mad trans": lambda p, g, t: dict(
            zip(("sad_trans", "mse_trans", "mad_trans"), map(float, ev.calculate_sad_mse_mad(p, g, t)))
        ),
        "sad fg/bg": lambda p, g, t: dict(zip(("sad_fg", "sad_bg"), map(float, ev.calculate_sad_fgbg(p, g, t)))),
        "grad": lambda p, g, t: {"grad": float(ev.compute_gradient_whole_image(p, g))},
        "conn": lambda p, g, t: {"conn": float(ev.compute_connectivity_loss_whole_image(p, g))},
    }


def _timed(fn, *args):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = fn(*args)
    return value, time.perf_counter() - start


def _load_official(folder: Path | None):
    if folder is None:
        return None
    path = Path(folder) / "evaluate.py"
    if not path.is_file():
        sys.exit(f"--official: no evaluate.py in {folder}")
    spec = importlib.util.spec_from_file_location("official_gfm_evaluate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    raise SystemExit(main())
