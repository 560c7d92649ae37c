"""Inference speed of GFM at 800 x 800 on the CPU (Table 7's setting): baseline vs optimised.

Baseline: the eval-mode model run as the official code runs it (NCHW, float32,
``torch.no_grad``, batch norms as separate layers). Optimised: :func:`gfm.model.optimise_for_inference`
(batch norms folded into the convolutions, channels-last, ``torch.inference_mode``), in fp32
and in bf16 autocast. Prints wall-clock and process-CPU times (median of ``--reps``), the
speed-ups against the baseline measured in the same run, and how far the outputs move.

Weights are PyTorch's random initialisation (no checkpoint is needed for timing). With random
weights the glance classes are close to tied, so the fused matte is compared only where the
glance top-2 margin exceeds ``--margin`` (elsewhere an arg-max may flip under any rounding);
the number of such pixels is printed.

    PYTHONPATH=. python benchmarks/bench_inference.py --backbone r34 --rosta TT --size 800
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gfm.complexity import count_macs
from gfm.model import build_gfm, optimise_for_inference


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="r34")
    parser.add_argument("--rosta", default="TT")
    parser.add_argument("--size", type=int, default=800, help="input height and width (multiple of 32)")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per variant (after one warm-up)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--margin", type=float, default=1e-4, help="glance top-2 margin for the fusion comparison")
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time optimised fp32 with torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = build_gfm(args.backbone, args.rosta).eval()
    x = torch.rand(1, 3, args.size, args.size) * 255.0
    macs = count_macs(model, (args.size, args.size))
    print(f"GFM({args.backbone})-{args.rosta} at {args.size}x{args.size}: {macs / 1e9:.2f} GMac, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")

    def baseline(inp):
        with torch.no_grad():
            return model(inp)

    variants = [("baseline NCHW fp32", baseline), ("optimised fp32", optimise_for_inference(model, "cpu", "fp32"))]
    if args.compile:
        variants.append(("optimised fp32 compile", optimise_for_inference(model, "cpu", "fp32", compile=True)))
    if not args.skip_bf16:
        variants.append(("optimised bf16", optimise_for_inference(model, "cpu", "bf16")))

    reference, base_wall, base_cpu = None, None, None
    print(f"{'variant':22s} {'wall s':>8s} {'cpu s':>8s} {'speed-up':>9s} {'GMac/s':>7s}  output differences")
    for name, run in variants:
        w0 = time.perf_counter()
        out = run(x)  # warm-up (oneDNN primitive creation; compilation)
        warm = time.perf_counter() - w0
        walls, cpus = [], []
        for _ in range(args.reps):
            c0, w0 = time.process_time(), time.perf_counter()
            out = run(x)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        if reference is None:
            reference, base_wall, base_cpu = out, wall, cpu
            note = "(reference)"
        else:
            note = _differences(out, reference, args.margin)
        print(f"{name:22s} {wall:8.3f} {cpu:8.3f} {base_wall / wall:8.2f}x {macs / 1e9 / wall:7.1f}  {note}; "
              f"first call {warm:.1f} s", flush=True)


def _differences(out: dict, ref: dict, margin: float) -> str:
    top2 = ref["glance"].topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > margin).unsqueeze(1)
    fusion = (out["fusion"] - ref["fusion"]).abs()[clear]
    return (f"max|d glance| {(out['glance'] - ref['glance']).abs().max():.2e}, "
            f"max|d focus| {(out['focus'] - ref['focus']).abs().max():.2e}, "
            f"max|d fusion| {fusion.max() if fusion.numel() else 0:.2e} "
            f"({int((~clear).sum())} ambiguous glance pixels excluded)")


if __name__ == "__main__":
    main()
