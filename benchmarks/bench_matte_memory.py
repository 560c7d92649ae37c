"""Peak memory of ``gfm matte`` per megapixel of input (issue 13: bounded memory for large photos).

Each size runs in a fresh process: build the model, note the peak RSS (``ru_maxrss``), matte one
random-noise JPEG of that size with :func:`gfm.matte.matte_image` (read, hybrid test, RGBA cut-out,
both PNGs written) and note the peak again. The network input is capped at ``--max-side`` on each
side whatever the image size, so the pass costs a constant; what grows with the image is the
full-resolution work (decoded image, up-sampled glance probabilities, focus and fusion maps, the
cut-out, PNG encoding). The slope of a least-squares line through (megapixels, peak increase) is
that cost per megapixel, which :data:`gfm.core.io.BYTES_PER_PIXEL` budgets for.

Measured (2 shared cores, defaults): 1 / 4 / 12 / 24 MP raise the peak by 96 / 218 / 490 / 948 MB,
i.e. 36.8 MB per megapixel (bytes per pixel) + 61 MB; with ``--foreground ml`` 116 bytes per pixel.

    .venv/bin/python benchmarks/bench_matte_memory.py [--sizes 1,4,12,24] [--backbone r18_lite] [--max-side 320]
                                                      [--foreground image|ml|cf]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,12,24", help="image sizes in megapixels, 3:2 (default: %(default)s)")
    parser.add_argument("--backbone", default="r18_lite", help="GFM backbone, random weights (default: %(default)s)")
    parser.add_argument("--max-side", type=int, default=320,
                        help="network input cap; fixes the pass cost across sizes (default: %(default)s)")
    parser.add_argument("--foreground", default="image", choices=("image", "ml", "cf"),
                        help="cut-out colours, as gfm matte --foreground (default: %(default)s)")
    parser.add_argument("--child", metavar="IMAGE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(Path(args.child), args.backbone, args.max_side, args.foreground)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in (float(s) for s in args.sizes.split(",")):
            h = int(round((mp * 1e6 / 1.5) ** 0.5))
            w = int(round(h * 1.5))
            image = Path(tmp) / f"photo_{h}x{w}.jpg"
            noise = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(image), noise, [cv2.IMWRITE_JPEG_QUALITY, 90])
            command = [sys.executable, __file__, "--child", str(image), "--backbone", args.backbone,
                       "--max-side", str(args.max_side), "--foreground", args.foreground]
            out = subprocess.run(command, check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            _report(h, w, rows[-1])
    mp = np.array([r["megapixels"] for r in rows])
    rise = np.array([r["peak_mb"] - r["before_mb"] for r in rows])
    if len(rows) > 1:
        slope, intercept = np.polyfit(mp, rise, 1)
        print(f"least squares: {slope:.1f} MB per megapixel (= bytes per pixel) + {intercept:.1f} MB "
              f"(the capped network pass)")


def _report(h: int, w: int, row: dict) -> None:
    print(f"{h:6d} x {w:6d} = {row['megapixels']:6.2f} MP: model loaded {row['before_mb']:7.1f} MB, "
              f"peak {row['peak_mb']:7.1f} MB, increase {row['peak_mb'] - row['before_mb']:7.1f} MB = "
          f"{(row['peak_mb'] - row['before_mb']) / row['megapixels']:5.1f} MB/MP")


def _measure(image: Path, backbone: str, max_side: int, foreground: str) -> dict:
    import torch

    from gfm.matte import matte_image
    from gfm.model.network import build_gfm

    torch.manual_seed(0)
    model = build_gfm(backbone, "TT").eval()
    with tempfile.TemporaryDirectory() as tmp:
        before = _peak_mb()
        alpha = matte_image(model, image, Path(tmp) / "a_alpha.png", Path(tmp) / "a_cutout.png",
                            foreground=foreground, strategy="hybrid", max_side=max_side, device="cpu")
        return {"megapixels": alpha.size / 1e6, "before_mb": before, "peak_mb": _peak_mb()}


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


if __name__ == "__main__":
    main()
