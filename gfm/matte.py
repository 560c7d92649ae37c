"""``gfm matte``: alpha mattes and cut-outs of your own images with a trained or released GFM.

    gfm matte IMAGE_OR_DIR [...] --checkpoint PATH [--official BACKBONE-ROSTA]
              [--strategy hybrid|resize] [--d1 3] [--d2 2] [--d 2] [--device auto]
              [--precision fp32|bf16] [--foreground image|ml|cf] --out DIR

For every image (a folder contributes the images directly inside it) it writes
``<out>/<stem>_alpha.png`` (8-bit grey alpha matte, the input's size) and
``<out>/<stem>_cutout.png`` (RGBA: the image's colours, or an estimated foreground with
``--foreground ml|cf`` (:func:`gfm.compose.foreground.estimate_foreground`), with the matte as alpha).
The checkpoint is a training run folder / ``model.pt`` / ``checkpoint.pt`` of :mod:`gfm.train.loop`,
or a released GFM checkpoint with ``--official r34-tt`` (:func:`gfm.model.infer.load_model`).

An unreadable or corrupt input is reported on stderr with its file name and skipped. Exit code:
0 if at least one image succeeded, 1 if every image failed, 2 for a usage error (bad arguments,
no input found, unusable checkpoint). Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gfm.core.io import IMAGE_SUFFIXES, ImageError, list_images, read_image, write_image

__all__ = ["add_matte_parser", "main_matte", "run_matte", "matte_image", "collect_inputs"]

FOREGROUNDS = ("image", "ml", "cf")


def add_matte_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``matte`` sub-command to an ``argparse`` sub-parsers object (``run`` = :func:`run_matte`)."""
    parser = subparsers.add_parser("matte", help="alpha mattes and RGBA cut-outs of images with GFM",
                                   description=__doc__.splitlines()[0])
    _add_arguments(parser)
    parser.set_defaults(run=run_matte)
    return parser


def main_matte(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: parse ``argv`` and run; returns the exit code."""
    parser = argparse.ArgumentParser(prog="gfm matte", description=__doc__.splitlines()[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_matte(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"gfm matte: error: {error}", file=sys.stderr)
        return 2


def run_matte(args: argparse.Namespace) -> int:
    """Run ``gfm matte`` for parsed ``args``; per-image failures are reported and skipped.

    Raises ValueError / FileNotFoundError for usage errors (no input, unusable checkpoint).
    """
    from tqdm.auto import tqdm

    from gfm.model.infer import load_model

    inputs, missing = collect_inputs(args.inputs)
    for path in missing:
        print(f"gfm matte: {path}: no such file or folder, skipped", file=sys.stderr)
    if not inputs:
        raise FileNotFoundError(f"no input images found in {', '.join(map(str, args.inputs))}")
    model, meta = load_model(args.checkpoint, official=args.official, device=args.device)
    out = Path(args.out)
    options = dict(strategy=args.strategy, d=args.d, d1=args.d1, d2=args.d2, max_side=args.max_side,
                   device=args.device, precision=args.precision)
    done, used = 0, set()
    progress = tqdm(inputs, desc="matte", unit="image", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    for path in progress:
        stem = _unique_stem(path, used)
        try:
            matte_image(model, path, out / f"{stem}_alpha.png", out / f"{stem}_cutout.png",
                        foreground=args.foreground, **options)
            done += 1
        except (ImageError, ValueError, OSError, RuntimeError) as error:
            message = str(error) if str(path) in str(error) else f"{path}: {error}"
            progress.write(f"gfm matte: {message}; skipped", file=sys.stderr)
    failed = len(inputs) - done
    if not args.quiet:
        print(f"gfm matte: {done} image(s) matted with {meta.get('experiment')} "
              f"({meta['backbone']}-{meta['rosta']}) into {out}" + (f", {failed} failed" if failed else ""),
              file=sys.stderr)
    return 0 if done else 1


def matte_image(model, image_path: str | Path, alpha_path: str | Path, cutout_path: str | Path, *,
                foreground: str = "image", **options) -> np.ndarray:
    """Matte one image file: write the alpha PNG and the RGBA cut-out; returns the uint8 matte.

    ``foreground``: ``"image"`` keeps the image's colours in the cut-out, ``"ml"`` / ``"cf"``
    estimate the foreground colours (Germer et al. / Levin et al., :mod:`gfm.compose.foreground`).
    ``options`` go to :func:`gfm.model.infer.predict`.
    """
    from gfm.model.infer import predict

    if foreground not in FOREGROUNDS:
        raise ValueError(f"foreground must be one of {FOREGROUNDS}, got {foreground!r}")
    image = read_image(image_path)
    alpha = predict(model, image, **options)["fusion"]
    alpha8 = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    colours = image
    if foreground != "image":
        from gfm.compose.foreground import estimate_foreground

        fg = estimate_foreground(image, alpha, method=foreground)
        colours = np.clip(np.rint(fg * 255.0), 0, 255).astype(np.uint8)
    write_image(alpha_path, alpha8)
    write_image(cutout_path, np.dstack([colours, alpha8]))
    return alpha8


def collect_inputs(paths) -> tuple[list[Path], list[Path]]:
    """Image files named by ``paths`` (files as given, folders expanded to the images directly
    inside them) and the paths that do not exist."""
    files, missing = [], []
    for path in map(Path, paths):
        if path.is_dir():
            files += list_images(path)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    return list(dict.fromkeys(files)), missing


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                        help=f"image files or folders of images ({', '.join(IMAGE_SUFFIXES)})")
    parser.add_argument("--checkpoint", required=True,
                        help="training run folder, model.pt or checkpoint.pt; or an official .pth with --official")
    parser.add_argument("--official", metavar="BACKBONE-ROSTA", default=None,
                        help="read --checkpoint as a released GFM checkpoint, e.g. r34-tt, d121-tt, r34_2b-rim")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--strategy", choices=("hybrid", "resize", "rim"), default="hybrid",
                        help="test strategy (default hybrid: glance at 1/d1, focus at 1/d2)")
    parser.add_argument("--d1", type=float, default=3.0, help="glance pass ratio 1/d1 of hybrid (paper: 3)")
    parser.add_argument("--d2", type=float, default=2.0, help="focus pass ratio 1/d2 of hybrid (paper: 2)")
    parser.add_argument("--d", type=float, default=None, help="ratio 1/d of resize (default 2) and rim (default 3)")
    parser.add_argument("--max-side", type=int, default=1600,
                        help="cap on each side of a network input (the official test's 1600)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--foreground", choices=FOREGROUNDS, default="image",
                        help="cut-out colours: the image's, or an estimated foreground (ml: fast, cf: Levin et al.)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _unique_stem(path: Path, used: set) -> str:
    stem = path.stem
    if stem in used:
        stem = f"{path.stem}_{path.suffix.lstrip('.') or 'file'}"
    k = 2
    base = stem
    while stem in used:
        stem, k = f"{base}_{k}", k + 1
    used.add(stem)
    return stem


def plot_cutouts(image_paths, out_dir: str | Path, *, checker: int = 16):
    """Image | predicted alpha | RGBA cut-out over a checkerboard, one row per image -> Figure.

    Reads the ``<stem>_alpha.png`` and ``<stem>_cutout.png`` files :func:`run_matte` wrote to ``out_dir``.
    """
    import matplotlib.pyplot as plt

    from gfm.core.io import read_alpha

    image_paths = [Path(p) for p in image_paths]
    if not image_paths:
        raise ValueError("image_paths: nothing to show")
    fig, axes = plt.subplots(len(image_paths), 3, figsize=(9, 2.6 * len(image_paths)), squeeze=False)
    for row, path in enumerate(image_paths):
        image = read_image(path)
        alpha = read_alpha(Path(out_dir) / f"{path.stem}_alpha.png")
        h, w = alpha.shape
        board = ((np.indices((h, w)) // checker).sum(0) % 2 * 60 + 160).astype(np.float32)[..., None]
        a = alpha[..., None] / 255.0
        cutout = (a * image + (1 - a) * board).astype(np.uint8)
        for col, (title, panel) in enumerate((("image", image), ("alpha (fusion)", alpha), ("cut-out", cutout))):
            ax = axes[row, col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(title)
        axes[row, 0].set_ylabel(path.stem)
    fig.tight_layout()
    return fig
