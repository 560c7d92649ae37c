"""``gfm matte``: alpha mattes and cut-outs of your own images with a trained or released GFM.

    gfm matte IMAGE_OR_DIR [...] --checkpoint PATH --out DIR [--official BACKBONE-ROSTA]
              [--strategy hybrid|resize|rim] [--d1 3] [--d2 2] [--d D] [--max-side 1600]
              [--fusion official|upsampled] [--pre-resize [PIXELS]] [--device auto] [--precision fp32|bf16]
              [--foreground image|ml|cf] [--mask-only | --background COLOR] [--quiet]

For every image (a folder contributes the images directly inside it) it writes into ``--out``
``<stem>_alpha.png`` (8-bit grey alpha matte, the input's size) and ``<stem>_cutout.png`` (RGBA:
the image's colours, or an estimated foreground with ``--foreground ml|cf``
(:func:`gfm.compose.foreground.estimate_foreground`), with the matte as alpha); ``--mask-only``
writes the matte alone, ``--background COLOR`` writes ``<stem>_composite.png`` (RGB, the
foreground composited over a solid colour, Eq. 1) instead of the cut-out. An image's files are
written together or not at all. Inference is :func:`gfm.model.infer.predict` (Sect. 5.5,
hybrid-resolution test of Table 6; ``--fusion``: how its two passes are merged, the released
code's by default); ``--pre-resize 1080`` first shrinks an image whose shorter side exceeds
1080 px to 1080 px, as the official ``core/test.py`` does for its samples (the outputs then have
the reduced size; ``--official-resize`` is the same as ``--pre-resize 1080``).

Every argument and the output folder (a folder, creatable, writable) are checked before the
model is loaded. Exit code: 0 when every image was matted, 1 when some failed (each reported on
stderr with its file name and skipped), 2 for a usage error (bad argument, no input found,
unusable output folder or checkpoint), 130 / 143 after SIGINT / SIGTERM, which end the run with
a one-line summary.

Memory is bounded: the network sees at most ``max_side`` x ``max_side`` pixels whatever the image
size (:data:`gfm.model.infer.MAX_SIDE`), and the full-resolution work (decoding, up-sampled glance
probabilities, focus and fusion maps, cut-out, PNG encoding) peaks at about 36 bytes per image
pixel above the loaded model, 116 with ``--foreground ml`` (measured on 1-12 megapixel images by
``benchmarks/bench_matte_memory.py``). The image readers refuse, before decoding, images larger
than physical memory / 128 bytes (:func:`gfm.core.io.max_image_pixels`; ``GFM_MAX_PIXELS``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from gfm.core.io import IMAGE_SUFFIXES, ImageError, list_images, read_alpha, read_image, write_image

__all__ = ["add_matte_parser", "run_matte", "matte_image", "collect_inputs", "parse_colour", "official_resize",
           "plot_cutouts"]

FOREGROUNDS = ("image", "ml", "cf")
#: Shorter-side limit of the official sample test (``SHORTER_PATH_LIMITATION`` in core/config.py).
OFFICIAL_SHORTER_SIDE = 1080
#: --fusion choices and default: gfm.model.infer.FUSIONS, not imported here (no torch for ``gfm --help``; tested equal).
FUSIONS = ("official", "upsampled")
EXIT_OK, EXIT_SOME_FAILED = 0, 1
#: --max-side default: gfm.model.infer.MAX_SIDE, not imported here so that ``gfm --help`` needs no torch (tested equal).
MAX_SIDE = 1600


def add_matte_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``matte`` sub-command to an ``argparse`` sub-parsers object (``run`` = :func:`run_matte`)."""
    parser = subparsers.add_parser(
        "matte", help="alpha mattes and RGBA cut-outs of images with GFM",
        description="Alpha mattes and RGBA cut-outs of your own images with a trained or released GFM.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    parser.set_defaults(run=run_matte)
    return parser


def run_matte(args: argparse.Namespace) -> int:
    """Run ``gfm matte`` for parsed ``args`` -> exit code (module docstring).

    Raises ValueError / FileNotFoundError for usage errors, all found before the model is loaded
    except a strategy the loaded model cannot run (``rim`` needs a GFM-RIM).
    """
    if args.mask_only and args.background is not None:
        raise ValueError("--mask-only and --background exclude each other (a matte alone has no background)")
    if args.mask_only and args.foreground != "image":
        raise ValueError("--foreground has no use with --mask-only (no colours are written)")
    from gfm.core.device import resolve_device

    device = resolve_device(args.device)
    inputs, missing = collect_inputs(args.inputs)
    for path in missing:
        print(f"gfm matte: {path}: no such file or folder, skipped", file=sys.stderr)
    if not inputs:
        raise FileNotFoundError(f"no input images found in {', '.join(map(str, args.inputs))}")
    out = _check_out_folder(Path(args.out))
    options = dict(strategy=args.strategy, d=args.d, d1=args.d1, d2=args.d2, max_side=args.max_side,
                   fusion=args.fusion, device=device, precision=args.precision)
    with _Interrupts() as stopped:
        try:
            failed = len(missing) + _matte_all(args, inputs, out, options, stopped)
        except KeyboardInterrupt:
            name = signal.Signals(stopped.signum).name if stopped.signum else "SIGINT"
            print(f"gfm matte: interrupted by {name}: {stopped.done} of {len(inputs)} image(s) matted into {out}",
                  file=sys.stderr)
            return 128 + (stopped.signum or signal.SIGINT)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def matte_image(model, image_path: str | Path, alpha_path: str | Path, cutout_path: str | Path | None = None, *,
                foreground: str = "image", background: tuple[int, int, int] | None = None,
                shorter_side: int | None = None, **options) -> np.ndarray:
    """Matte one image file and write its outputs together (both or neither); returns the uint8 matte.

    ``cutout_path``: the RGBA cut-out, or with ``background`` an RGB composite over that colour
    (Eq. 1: ``alpha * F + (1 - alpha) * background``); None writes the matte alone.
    ``foreground``: ``"image"`` uses the image's colours as F, ``"ml"`` / ``"cf"`` estimate F
    (Germer et al. / Levin et al., :mod:`gfm.compose.foreground`). ``shorter_side``: shrink the
    image first when its shorter side is longer (:func:`official_resize`). ``options`` go to
    :func:`gfm.model.infer.predict`.
    """
    from gfm.model.infer import predict

    if foreground not in FOREGROUNDS:
        raise ValueError(f"foreground must be one of {FOREGROUNDS}, got {foreground!r}")
    image = read_image(image_path)
    if shorter_side is not None:
        image = official_resize(image, shorter_side)
    alpha = predict(model, image, **options)["fusion"]
    alpha8 = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    outputs = {Path(alpha_path): alpha8}
    if cutout_path is not None:
        colours = image
        if foreground != "image":
            from gfm.compose.foreground import estimate_foreground

            colours = np.clip(np.rint(estimate_foreground(image, alpha, method=foreground) * 255.0), 0, 255)
            colours = colours.astype(np.uint8)
        if background is None:
            outputs[Path(cutout_path)] = np.dstack([colours, alpha8])
        else:
            a = alpha[..., None]
            composite = a * colours + (1.0 - a) * np.asarray(background, np.float32)
            outputs[Path(cutout_path)] = np.clip(np.rint(composite), 0, 255).astype(np.uint8)
    _write_together(outputs)
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


def parse_colour(text: str) -> tuple[int, int, int]:
    """A colour as 0-255 RGB: ``"R,G,B"`` (0-255 each), ``"#RRGGBB"`` / ``"#RGB"`` or a CSS/X11
    name (``white``, ``green``, ...; :func:`matplotlib.colors.to_rgb`). ValueError otherwise."""
    import matplotlib.colors

    text = str(text).strip()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
            raise ValueError(f"{text!r} is not R,G,B with three whole numbers from 0 to 255")
        return tuple(int(p) for p in parts)
    try:
        rgb = matplotlib.colors.to_rgb(text.lower())
    except ValueError:
        raise ValueError(f"{text!r} is not a colour (a name such as white, #RRGGBB, or R,G,B)") from None
    return tuple(int(round(c * 255)) for c in rgb)


def official_resize(image: np.ndarray, shorter_side: int = OFFICIAL_SHORTER_SIDE) -> np.ndarray:
    """Shrink ``image`` so its shorter side is ``shorter_side`` when it is longer, as the official
    sample test does (bilinear, the longer side ``int(shorter_side * long / short)``); else unchanged."""
    h, w = image.shape[:2]
    if min(h, w) <= shorter_side:
        return image
    if h >= w:
        size = (shorter_side, int(shorter_side * h / w))
    else:
        size = (int(shorter_side * w / h), shorter_side)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def plot_cutouts(image_paths, out_dir: str | Path, *, checker: int = 16):
    """Image | predicted alpha | RGBA cut-out over a checkerboard, one row per image -> Figure.

    Reads the ``<stem>_alpha.png`` files :func:`run_matte` wrote to ``out_dir``.
    """
    import matplotlib.pyplot as plt

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


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_EPILOG = """\
outputs, per input image, in --out:
  <stem>_alpha.png      8-bit grey alpha matte, the input's size
  <stem>_cutout.png     RGBA cut-out (not with --mask-only or --background)
  <stem>_composite.png  RGB composite over --background COLOR
  An image's files are written together or not at all.

exit codes: 0 every image matted, 1 some images failed (each named on stderr),
2 usage error (nothing is matted), 130/143 interrupted by SIGINT/SIGTERM.

examples:
  gfm matte photos/ --checkpoint artifacts/models/ori-tt --out mattes/
  gfm matte cat.jpg --checkpoint gfm_r34_tt.pth --official r34-tt --background white --out mattes/
"""


def _matte_all(args, inputs: list[Path], out: Path, options: dict, stopped: "_Interrupts") -> int:
    """Load the model and matte every input -> how many failed; ``stopped.done`` counts the others."""
    from tqdm.auto import tqdm

    from gfm.model.infer import load_model

    model, meta = load_model(args.checkpoint, official=args.official, device=options["device"])
    if args.strategy == "rim" and meta["rosta"] != "RIM":
        raise ValueError(f"--strategy rim needs a GFM-RIM model; {args.checkpoint} is rosta {meta['rosta']}")
    suffix = None if args.mask_only else ("composite" if args.background is not None else "cutout")
    done, used = 0, set()
    progress = tqdm(inputs, desc="matte", unit="image", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    try:
        for path in progress:
            stem = _unique_stem(path, used)
            try:
                matte_image(model, path, out / f"{stem}_alpha.png", suffix and out / f"{stem}_{suffix}.png",
                            foreground=args.foreground, background=args.background, shorter_side=args.pre_resize,
                            **options)
                done += 1
                stopped.done = done
            except (ImageError, ValueError, OSError, RuntimeError, MemoryError) as error:
                message = str(error) if str(path) in str(error) else f"{path}: {error}"
                progress.write(f"gfm matte: {message}; skipped", file=sys.stderr)
    finally:
        progress.close()
    failed = len(inputs) - done
    if not args.quiet:
        print(f"gfm matte: {done} of {len(inputs)} image(s) matted with {meta.get('experiment')} "
              f"({meta['backbone']}-{meta['rosta']}) into {out}" + (f"; {failed} failed" if failed else ""),
              file=sys.stderr)
    return failed


class _Interrupts:
    """Context in which SIGINT and SIGTERM raise KeyboardInterrupt; records the signal and the
    images done, for the summary line. Handlers are restored on exit (main thread only)."""

    def __init__(self):
        self.signum, self.done, self._previous = None, 0, None

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for s in self._previous:
                signal.signal(s, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in (self._previous or {}).items():
            signal.signal(s, handler)

    def _raise(self, signum, frame):
        self.signum = signum
        raise KeyboardInterrupt


def _check_out_folder(out: Path) -> Path:
    """``out`` as a writable folder (created if needed), or ValueError saying why not."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(f"--out {out}: not a writable folder ({error.strerror or error})") from None
    return out


def _write_together(outputs: dict[Path, np.ndarray]) -> None:
    """Write every image of ``outputs`` or none: each first to a hidden file beside its destination
    (:func:`gfm.core.io.write_image`, itself atomic), then all renamed into place. On any failure --
    a full disk while writing the second file, an interrupt between the renames -- the hidden files
    and the outputs already renamed are removed."""
    staged, placed = [], []
    try:
        for path, image in outputs.items():
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
            staged.append(tmp)
            write_image(tmp, image)
        for tmp, path in zip(staged, outputs):
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                        help=f"image files, or folders whose images ({' '.join(IMAGE_SUFFIXES)}) are all matted")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="training run folder, its model.pt or checkpoint.pt; or a released GFM checkpoint "
                             "with --official (required)")
    parser.add_argument("--official", metavar="BACKBONE-ROSTA", default=None, type=_official,
                        help="read --checkpoint as a released GFM checkpoint of this network, e.g. r34-tt, d121-tt, "
                             "r34_2b-rim (default: none, --checkpoint is a training run)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder, created if needed (required)")
    parser.add_argument("--strategy", choices=("hybrid", "resize", "rim"), default="hybrid",
                        help="test strategy: hybrid = glance at 1/d1 and focus at 1/d2 (Table 6), resize = one "
                             "pass at 1/d, rim = one pass at 1/d for GFM-RIM (default: %(default)s)")
    parser.add_argument("--d1", type=_positive_float, default=3.0, metavar="D1",
                        help="hybrid: the glance pass sees the image shrunk by D1 (default: %(default)s, the paper's)")
    parser.add_argument("--d2", type=_positive_float, default=2.0, metavar="D2",
                        help="hybrid: the focus pass sees the image shrunk by D2 (default: %(default)s, the paper's)")
    parser.add_argument("--d", type=_positive_float, default=None, metavar="D",
                        help="resize and rim: the pass sees the image shrunk by D (default: 2 for resize, "
                             "3 for rim, as the official test)")
    parser.add_argument("--max-side", type=_max_side, default=MAX_SIDE, metavar="PIXELS",
                        help="cap on each side of a network input, at least 32 (default: %(default)s, the "
                             "official test's)")
    parser.add_argument("--fusion", choices=FUSIONS, default=FUSIONS[0],
                        help="hybrid: how the glance and focus passes are merged; official = the released test "
                             "code's (the glance class map resized), upsampled = the glance probabilities resized "
                             "before the arg-max (default: %(default)s)")
    parser.add_argument("--pre-resize", type=_max_side, nargs="?", const=OFFICIAL_SHORTER_SIDE, default=None,
                        metavar="PIXELS",
                        help=f"first shrink images whose shorter side exceeds PIXELS (alone: "
                             f"{OFFICIAL_SHORTER_SIDE}, the official test's) to PIXELS, keeping the aspect ratio, as "
                             f"the official sample test does; the outputs get that size (default: off, full size)")
    parser.add_argument("--official-resize", dest="pre_resize", action="store_const", const=OFFICIAL_SHORTER_SIDE,
                        help=f"the same as --pre-resize {OFFICIAL_SHORTER_SIDE} (default: off)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="forward-pass precision; bf16 pays off on GPUs and CPUs with native bfloat16 "
                             "(default: %(default)s)")
    parser.add_argument("--foreground", choices=FOREGROUNDS, default="image",
                        help="colours of the cut-out: the image's, or an estimated foreground (ml: fast, "
                             "cf: closed-form, Levin et al.) (default: %(default)s)")
    parser.add_argument("--mask-only", action="store_true",
                        help="write only the alpha matte (default: off, also a cut-out)")
    parser.add_argument("--background", type=_colour, default=None, metavar="COLOR",
                        help="write an RGB composite over this colour instead of the RGBA cut-out: a name "
                             "(white), #RRGGBB or R,G,B (default: none, transparent cut-out)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or summary; errors are still printed (default: off)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _max_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 32, got {text!r}") from None
    if value < 32:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 32, got {text!r}")
    return value


def _official(text: str) -> str:
    from gfm.model.checkpoint import parse_official

    try:
        parse_official(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _colour(text: str) -> tuple[int, int, int]:
    try:
        return parse_colour(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
