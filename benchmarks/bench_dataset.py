"""Training-sample throughput: gfm.train.dataset.MattingDataset vs a reference written the official way.

The reference follows the official ``MattingDataset`` / ``MattingTransform`` approach for the
ORI-Track with F and B read from files (``--fg_generate closed_form``): PIL decodes image, mask,
F and B; the trimap (kernel 25), dilation and erosion (kernel 50) are computed on float32
full-resolution masks, as are the two subtraction maps; all nine maps are cropped, flipped and
resized one by one, then converted to float32 tensors. ``skimage.transform.resize`` brings B to
the image size when they differ (the official COMP-Track path; never in the embedded world).
It takes gfm's random draws (``gfm.train.dataset.draw_crop`` on its own trimap) and resizes the label
maps with nearest neighbour like gfm, so that the outputs can be compared.

gfm decodes with OpenCV, computes erosion/dilation on the crop grown by the kernel radius only,
and (``cache=True``) keeps decoded images and trimaps in memory.

Two scales: the embedded world as it is (360 x 480, the sample profile's crops {160, 240, 320},
128 px, kernels 8/16) and the paper's (the world's images up-sampled to 1080 x 1440, crops
{640, 960, 1280}, 320 px, kernels 25/50). "cold" decodes every file each time, "warm" has the
decoded images cached (second and later epochs).

COMP-Track, offline vs online (issue 12): each route of the sample profile (coco, bg20k, rssn;
its knobs, crops, kernels and input size read from ``--params``) is built both ways in a temporary
folder from the embedded world -- composites made once and read back (``compose.mode: offline``,
the baseline) and layers composed afresh per sample (``online``,
``gfm.train.dataset.OnlineCompositeDataset``) -- and the same sample indices are timed, cold and
warm, with the composition alone (``OnlineRoute.composite``) as a separate column. The foreground
and denoising caches of ``--cache`` (the compose stage's) are copied in when present, so the build
is quick. Run::

    PYTHONPATH=. python benchmarks/bench_dataset.py [--datasets data] [--n 16] [--repeat 2] [--route-n 24]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from gfm.compose import build
from gfm.compose.online import OnlineRoute
from gfm.compose.rssn import ROUTE_BACKGROUNDS, route_config
from gfm.core.config import load_params
from gfm.core.layout import COCO, matting_split
from gfm.train import dataset as ds

KEYS = ("image", "alpha", "fg", "bg", "trimap", "erosion", "dilation")


def reference_sample(files: ds.SampleFiles, *, seed, epoch, index, crop_sizes, input_size,
                     trimap_kernel, ftbt_kernel):
    """One training sample produced the official way (module docstring), gfm's draws."""
    from PIL import Image
    from skimage.transform import resize

    ori = np.array(Image.open(files.image))
    mask = np.array(Image.open(files.alpha))
    if mask.ndim > 2:
        mask = mask[:, :, 0]
    fg = np.array(Image.open(files.fg))
    bg = np.array(Image.open(files.bg))
    if bg.shape != fg.shape:
        bg = resize(bg, fg.shape) * 255.0

    def morph(alpha, size, op):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        support = np.not_equal(alpha, 0).astype(np.float32) if op == "dilate" else np.equal(alpha, 255).astype(np.float32)
        return (cv2.dilate if op == "dilate" else cv2.erode)(support, kernel, iterations=1)

    dil_t, ero_t = morph(mask, trimap_kernel, "dilate"), morph(mask, trimap_kernel, "erode")
    trimap = (ero_t * 255 + (dil_t - ero_t) * 128).astype(np.uint8)
    dilation = (morph(mask, ftbt_kernel, "dilate") * 255).astype(np.uint8)
    erosion = (morph(mask, ftbt_kernel, "erode") * 255).astype(np.uint8)
    dilation_subtraction = dilation - mask
    erosion_subtraction = mask - erosion

    rng = np.random.default_rng((seed, epoch, index))
    draw = ds.draw_crop(trimap, rng, crop_sizes=crop_sizes, input_size=input_size)
    maps = {"image": ori, "alpha": mask, "fg": fg, "bg": bg, "trimap": trimap, "dilation": dilation,
            "erosion": erosion, "dilation_subtraction": dilation_subtraction,
            "erosion_subtraction": erosion_subtraction}
    out = {}
    for key, item in maps.items():
        item = item[draw.top: draw.top + draw.size, draw.left: draw.left + draw.size]
        if draw.flip:
            item = cv2.flip(item, 1)
        nearest = key in ("trimap", "dilation", "erosion")
        item = cv2.resize(item, (input_size, input_size),
                          interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
        tensor = torch.from_numpy(item.astype(np.float32))
        out[key] = tensor[None] if item.ndim < 3 else tensor.permute(2, 0, 1)
    return out


def as_reference_layout(sample: dict) -> dict:
    """gfm's sample in the official value ranges (0-255 maps, trimap 0/128/255)."""
    trimap = sample["trimap"].float()
    return {"image": sample["image"], "fg": sample["fg"], "bg": sample["bg"],
            "alpha": (sample["alpha"] * 255).round(), "trimap": torch.where(trimap == 2, 255.0, trimap * 128)[None],
            "erosion": sample["erosion"] * 255, "dilation": sample["dilation"] * 255}


def run(samples, params, n, repeat, label):
    dataset_cold = ds.MattingDataset(samples, seed=0, **params)
    dataset_warm = ds.MattingDataset(samples, seed=0, cache=True, **params)
    for i in range(n):
        dataset_warm[i]                                   # fill the cache (epoch 0)
    times = {"reference": [], "gfm cold": [], "gfm warm": []}
    max_diff = {k: 0.0 for k in KEYS}
    for epoch in range(1, repeat + 1):
        for d in (dataset_cold, dataset_warm):
            d.set_epoch(epoch)
        for i in range(n):
            t = time.perf_counter()
            ref = reference_sample(samples[i], seed=0, epoch=epoch, index=i, **params)
            times["reference"].append(time.perf_counter() - t)
            t = time.perf_counter()
            cold = dataset_cold[i]
            times["gfm cold"].append(time.perf_counter() - t)
            t = time.perf_counter()
            warm = dataset_warm[i]
            times["gfm warm"].append(time.perf_counter() - t)
            ours = as_reference_layout(cold)
            for key in KEYS:
                assert torch.equal(cold[key], warm[key])
                max_diff[key] = max(max_diff[key], float((ours[key] - ref[key]).abs().max()))
    ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    print(f"\n{label}: {n} samples x {repeat} epochs, median ms per sample")
    for key, value in ms.items():
        ratio = ms["reference"] / value
        print(f"  {key:10s} {value:8.2f} ms   x{ratio:5.1f} vs reference")
    print("  max |gfm - reference| (0-255 units): " + ", ".join(f"{k} {v:g}" for k, v in max_diff.items()))
    return ms, max_diff


def upscaled_world(samples, folder: Path, n: int, size=(1440, 1080)):
    """The first ``n`` samples up-sampled to ``size`` (paper resolution), written as the world's files."""
    out = []
    for files in samples[:n]:
        paths = {}
        for key in ("image", "alpha", "fg", "bg"):
            src = getattr(files, key)
            img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
            img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
            dst = folder / key / (files.name + src.suffix)
            dst.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 95] if src.suffix.lower() == ".jpg" else [])
            paths[key] = dst
        out.append(ds.SampleFiles(files.name, **paths))
    return out


def run_routes(params_file: str, datasets: str, bg20k: str, cache: str, n: int, repeat: int):
    """ms per sample of each route of ``params_file``, offline (baseline) vs online, cold and warm."""
    params = load_params(params_file)
    cfg, train = params.compose, params.train
    knobs = dict(k=cfg.k, p_denoise=cfg.p_denoise, p_blur=cfg.p_blur, blur_kernels=cfg.blur_kernels,
                 p_noise=cfg.p_noise, noise_sigma=cfg.noise_sigma, resize_mode=cfg.resize_mode)
    sizes = dict(input_size=train.input_size, crop_sizes=tuple(train.crop_sizes), trimap_kernel=train.trimap_kernel,
                 ftbt_kernel=train.ftbt_kernel)
    split = matting_split(datasets, "train")
    folders = {"coco": Path(datasets) / COCO, "bg20k": Path(bg20k) if Path(bg20k).is_dir() else Path(datasets) / COCO}
    print(f"\nCOMP-Track routes, offline (composites read back) vs online (composed per sample): {params.profile} "
          f"profile (k {cfg.k}, fg {cfg.fg_method}, denoiser {cfg.denoiser}, input {train.input_size}, crops "
          f"{list(train.crop_sizes)}), backgrounds coco={folders['coco']} bg20k={folders['bg20k']}; {n} samples x "
          f"{repeat} epochs, median ms per sample")
    print(f"  {'route':6s} {'offline cold':>12s} {'online cold':>12s} {'ratio':>6s}   {'offline warm':>12s} "
          f"{'online warm':>12s} {'ratio':>6s}   {'compose only':>12s}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if Path(cache).is_dir():
            shutil.copytree(cache, out / "_cache")
        for route in cfg.routes:
            common = dict(config=route_config(route, **knobs), fg_method=cfg.fg_method, denoiser=cfg.denoiser,
                          seed=params.seed, workers=cfg.workers, progress=False)
            backgrounds = folders[ROUTE_BACKGROUNDS[route]]
            build.build_composites(split, backgrounds, out / "offline", route, fg_cache=out / "_cache" / "fg",
                                   denoise_cache=out / "_cache" / "denoised", **common)
            build.build_online_route(split, backgrounds, out / "online", route, inspection=0,
                                     fg_cache=out / "_cache" / "fg", denoise_cache=out / "_cache" / "denoised",
                                     **common)
            sets = {f"{mode} {temp}": ds.training_dataset(route, datasets, out / mode, seed=0, cache=temp == "warm",
                                                          **sizes)
                    for mode in ("offline", "online") for temp in ("cold", "warm")}
            count = min(n, *(len(d) for d in sets.values()))
            for d in sets.values():
                if d.cache:
                    for i in range(count):
                        d[i]                                  # fill the cache (epoch 0)
            composer = OnlineRoute(out / "online" / route, cache=True)
            for i in range(count):
                composer.composite(i, 0, 0)
            times = {key: [] for key in (*sets, "compose only")}
            for epoch in range(1, repeat + 1):
                for d in sets.values():
                    d.set_epoch(epoch)
                for i in range(count):
                    for key, d in sets.items():
                        t = time.perf_counter()
                        d[i]
                        times[key].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    composer.composite(i, epoch, 0)
                    times["compose only"].append(time.perf_counter() - t)
            ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            results[route] = ms
            print(f"  {route:6s} {ms['offline cold']:9.2f} ms {ms['online cold']:9.2f} ms "
                  f"x{ms['online cold'] / ms['offline cold']:4.2f}   {ms['offline warm']:9.2f} ms "
                  f"{ms['online warm']:9.2f} ms x{ms['online warm'] / ms['offline warm']:4.2f}   "
                  f"{ms['compose only']:9.2f} ms")
    print("  ratio: online / offline (the baseline), same cache mode; cold decodes every file, warm keeps decoded "
          "layers (online) or composites (offline) in memory")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="data", help="folder holding am2k/train (default: the embedded world)")
    parser.add_argument("--n", type=int, default=16, help="samples per epoch")
    parser.add_argument("--repeat", type=int, default=2, help="epochs (different draws)")
    parser.add_argument("--paper-n", type=int, default=6, help="samples at paper resolution (0: skip)")
    parser.add_argument("--params", default="params.yaml", help="profile whose routes and sizes are timed")
    parser.add_argument("--bg20k", default="artifacts/bg20k/train", help="BG-20k backgrounds (default: stage 2's; "
                                                                         "else the world's COCO set)")
    parser.add_argument("--cache", default="artifacts/composites/_cache", help="compose caches to copy in")
    parser.add_argument("--route-n", type=int, default=24, help="samples per epoch of each route (0: skip)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    samples = ds.ori_track_samples(args.datasets, fg_bg="files")
    n = min(args.n, len(samples))
    run(samples, dict(crop_sizes=(160, 240, 320), input_size=128, trimap_kernel=8, ftbt_kernel=16), n,
        args.repeat, "embedded world (360 x 480), sample profile")
    if args.paper_n:
        with tempfile.TemporaryDirectory() as tmp:
            big = upscaled_world(samples, Path(tmp), min(args.paper_n, len(samples)))
            run(big, dict(crop_sizes=(640, 960, 1280), input_size=320, trimap_kernel=25, ftbt_kernel=50),
                len(big), args.repeat, "paper resolution (1080 x 1440), paper profile")
    if args.route_n:
        run_routes(args.params, args.datasets, args.bg20k, args.cache, args.route_n, args.repeat)


if __name__ == "__main__":
    main()
