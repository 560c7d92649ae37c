"""Inference speed of GFM at 800 x 800 on the CPU (Table 7's setting): baseline vs optimised.

Variants (``--variants``):

``official``       the eval-mode model run as the official code runs it: NCHW float32 under
                   ``torch.no_grad``, batch norms as separate layers, default allocator. The
                   baseline of every ratio.
``official+heap``  the same with glibc keeping large blocks on the heap
                   (:func:`gfm.model.fuse.keep_large_allocations_on_heap`): how much of the gain is the
                   allocator alone.
``fp32``           :func:`gfm.model.network.optimise_for_inference` (BN folded, channels-last, oneDNN
                   convolutions with fused ReLU / residual add / concatenation, heap allocator).
``fp32-compile``   the same folded model under ``torch.compile`` (first call compiles).
``bf16``           the folded model under bfloat16 autocast.

This machine's timings vary by tens of percent from one process to the next (a shared VM), so
each variant runs in its own process, the variants take turns for ``--rounds`` rounds, and a
variant's speed-up is the median over rounds of (baseline time / variant time) in the same round.
Outputs of every variant are compared with the baseline's. Weights are PyTorch's random
initialisation; with random weights the glance classes are close to tied, so the fused matte is
compared only where the glance top-2 margin exceeds ``--margin`` (elsewhere any rounding may flip
the arg-max); the number of such pixels is printed.

``--checkpoint`` and ``--validation`` also score a trained model on a validation split in fp32 and
in bf16 (:func:`gfm.evaluate.run.evaluate_model`) and print the change in SAD that bf16 causes::

    PYTHONPATH=. python benchmarks/bench_inference.py --backbone r34 --rosta TT --size 800 \\
        --checkpoint artifacts/models/ori-tt/checkpoint.pt --validation artifacts/datasets
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("official", "official+heap", "fp32", "fp32-compile", "bf16")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="r34")
    parser.add_argument("--rosta", default="TT")
    parser.add_argument("--size", type=int, default=800, help="input height and width (multiple of 32)")
    parser.add_argument("--variants", default="official,official+heap,fp32,bf16",
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=3, help="processes per variant, taking turns")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per process (after one warm-up)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--margin", type=float, default=1e-4, help="glance top-2 margin for the fusion comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", help="a trained gfm checkpoint for the bf16 SAD comparison")
    parser.add_argument("--validation", help="validation split (or datasets folder) for --checkpoint")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or variants[0] != "official":
        parser.error(f"--variants must start with 'official' and use only {VARIANTS}; got {variants}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in variants:
                out = Path(tmp) / f"{v}-{r}"
                cmd = [sys.executable, __file__, "--worker", v, "--out", str(out), "--backbone", args.backbone,
                       "--rosta", args.rosta, "--size", str(args.size), "--reps", str(args.reps),
                       "--threads", str(args.threads), "--seed", str(args.seed)]
                subprocess.run(cmd, check=True)
                runs[v].append(json.loads(out.with_suffix(".json").read_text()))
                print(f"round {r + 1}/{args.rounds} {v:14s} {statistics.median(runs[v][-1]['walls']):7.3f} s",
                      flush=True)
        _report(args, variants, runs, Path(tmp))
    if args.checkpoint:
        _bf16_sad(args)


def _report(args, variants, runs, tmp: Path) -> None:
    import torch

    first = runs["official"][0]
    print(f"\nGFM({args.backbone})-{args.rosta} at {args.size}x{args.size}: {first['gmac']:.2f} GMac, "
          f"{first['threads']} threads, CPU capability {first['capability']}, bf16 native: {first['bf16_native']}; "
          f"{args.rounds} rounds x {args.reps} runs, a fresh process per round")
    print(f"{'variant':14s} {'median s':>9s} {'min s':>7s} {'speed-up':>9s} {'GMac/s':>7s} {'first call':>10s}  "
          f"outputs vs official")
    reference = torch.load(tmp / "official-0.pt", weights_only=True)
    for v in variants:
        walls = [w for run in runs[v] for w in run["walls"]]
        ratios = [statistics.median(b["walls"]) / statistics.median(x["walls"]) for b, x in zip(runs["official"], runs[v])]
        note = "(reference)" if v == "official" else _differences(torch.load(tmp / f"{v}-0.pt", weights_only=True),
                                                                  reference, args.margin)
        print(f"{v:14s} {statistics.median(walls):9.3f} {min(walls):7.3f} {statistics.median(ratios):8.2f}x "
              f"{first['gmac'] / statistics.median(walls):7.1f} {statistics.median(r['first'] for r in runs[v]):9.1f}s  "
              f"{note}")


def _worker(args) -> None:
    import torch

    from gfm.model.complexity import count_macs
    from gfm.model.fuse import keep_large_allocations_on_heap
    from gfm.model.network import build_gfm, optimise_for_inference
    from gfm.core.device import cpu_has_native_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_gfm(args.backbone, args.rosta).eval()
    x = torch.rand(1, 3, args.size, args.size) * 255.0
    gmac = count_macs(model, (args.size, args.size)) / 1e9
    v = args.worker
    if v.startswith("official"):
        if v == "official+heap":
            keep_large_allocations_on_heap()

        def run(inp):
            with torch.no_grad():
                return model(inp)
    else:
        run = optimise_for_inference(model, "cpu", "bf16" if v == "bf16" else "fp32", compile=v == "fp32-compile")
    start = time.perf_counter()
    run(x)  # warm-up: oneDNN primitive creation; compilation
    first = time.perf_counter() - start
    walls = []
    for _ in range(args.reps):
        start = time.perf_counter()
        out = run(x)
        walls.append(time.perf_counter() - start)
    Path(args.out).with_suffix(".json").write_text(json.dumps({
        "walls": walls, "first": first, "gmac": gmac, "threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": cpu_has_native_bf16()}))
    if args.out.endswith("-0"):
        torch.save({k: out[k].float().contiguous() for k in ("glance", "focus", "fusion")}, args.out + ".pt")


def _differences(out: dict, ref: dict, margin: float) -> str:
    top2 = ref["glance"].topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > margin).unsqueeze(1)
    fusion = (out["fusion"] - ref["fusion"]).abs()[clear]
    return (f"max|d glance| {(out['glance'] - ref['glance']).abs().max():.1e}, "
            f"max|d focus| {(out['focus'] - ref['focus']).abs().max():.1e}, "
            f"max|d fusion| {fusion.max() if fusion.numel() else 0:.1e} "
            f"({int((~clear).sum())} ambiguous glance pixels excluded)")


def _bf16_sad(args) -> None:
    from gfm.evaluate.run import evaluate_model
    from gfm.model.infer import load_model

    if not args.validation:
        raise SystemExit("--checkpoint needs --validation")
    model, _ = load_model(args.checkpoint)
    scores = {}
    for precision in ("fp32", "bf16"):
        start = time.perf_counter()
        frame = evaluate_model(model, args.validation, device="cpu", precision=precision, progress=False, workers=0)
        scores[precision] = (frame, time.perf_counter() - start)
    (f32, t32), (b16, t16) = scores["fp32"], scores["bf16"]
    delta = b16["sad"] - f32["sad"]
    print(f"\nbf16 vs fp32 on {len(f32)} validation images with {args.checkpoint}: "
          f"mean SAD {f32['sad'].mean():.3f} -> {b16['sad'].mean():.3f} (change {delta.mean():+.3f}, "
          f"largest per-image |change| {delta.abs().max():.3f}); MSE {f32['mse'].mean():.5f} -> "
          f"{b16['mse'].mean():.5f}; time {t32:.1f} s -> {t16:.1f} s")


if __name__ == "__main__":
    main()
