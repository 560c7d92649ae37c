"""Training GFM (Sect. 6.1 "Implementation details"; losses Eq. 2-8 in :mod:`gfm.train.losses`).

:func:`train` runs one experiment of the grid (one track, backbone, RoSTa and ablation) and
writes into ``<out_dir>/<experiment>/``:

``checkpoint.pt``       after every epoch (atomic): model, optimiser, scaler, epoch, step, RNG
                        states, config and the loss history so far; ``resume=True`` continues
                        from it and, on CPU with a fixed seed, ends with the same weights as an
                        uninterrupted run (data order and crops depend only on seed and epoch)
``losses.csv``          one row per step (``step, epoch, total, glance, focus_alpha, focus_lap,
                        fusion_alpha, fusion_lap, fusion_comp``), rewritten atomically at each
                        epoch end -- the plot file of the ``train`` stage (``dvc plots``)
``model.pt``            the final weights (state dict), read back by :func:`gfm.model.infer.load_model`
``train_summary.json``  steps, time, final losses, device, precision, parameter count, config

The paper trains with Adam at a fixed learning rate of 1e-5 for 500 epochs (ORI-Track) or
100 (COMP-Track) at 320 x 320; the sample profile trains a few hundred steps of the light
``r18_lite`` backbone at 128 x 128 with lr 1e-3 so that something visible is learnt in about
two minutes on two CPU cores.

Devices: ``device="auto"`` picks CUDA, then Apple MPS, then the CPU; ``precision="auto"`` picks
bfloat16 autocast on GPUs that support it (float16 with a gradient scaler otherwise) and on
CPUs with native bfloat16 (AMX or AVX512-BF16), float32 elsewhere. Models run channels-last.
Launched by ``torchrun`` (``WORLD_SIZE`` > 1) it trains data-parallel with
DistributedDataParallel (NCCL on CUDA, Gloo on CPU); each rank draws its own shard of the
epoch's permutation and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from gfm.train import losses
from gfm.train.dataset import MattingDataset, training_samples
from gfm.core.device import autocast as device_autocast, resolve_device, resolve_precision
from gfm.core.io import atomic_path, write_json, write_text
from gfm.model.network import build_gfm, count_parameters

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "plot_training_curves",
    "plot_predictions",
    "EpochSampler",
]

CHECKPOINT, MODEL, LOSSES, SUMMARY = "checkpoint.pt", "model.pt", "losses.csv", "train_summary.json"


@dataclass
class TrainConfig:
    """Every knob of one training run (defaults: the paper's, GFM(r)-TT on the ORI-Track).

    Lists may be given as comma-separated strings (``crop_sizes="160,240,320"``), as papermill
    passes them.
    """

    experiment: str = "ori-tt"
    track: str = "ori"                       # "ori" or a composition route: coco | bg20k | rssn | ...
    datasets: str = "artifacts/datasets"
    composites: str = "artifacts/composites"
    out_dir: str = "artifacts/models"
    backbone: str = "r34"
    rosta: str = "TT"                        # TT | FT | BT | RIM
    decoder: str = "two"                     # two | single (Table 4 SINGLE)
    ppm: str = "five"                        # five | one | none (Table 4)
    bridge: bool = True                      # False: Table 4 "w/o BB"
    pretrained: bool | str = False           # True: ImageNet weights from the local torch hub cache
    crop_sizes: tuple = (640, 960, 1280)
    input_size: int = 320
    trimap_kernel: int = 25
    ftbt_kernel: int = 50
    fg_bg: str = "auto"                      # auto | files | alpha_blending (ORI-Track F and B)
    epochs: int = 500
    steps_per_epoch: int | None = None       # cap on the steps of an epoch
    max_steps: int | None = None             # stop after this many steps (its epoch then counts as done)
    batch_size: int = 32
    lr: float = 1e-5
    device: str = "auto"                     # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"                  # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    seed: int = 0
    workers: int = 0
    cache: bool = False                      # keep decoded training images in memory
    resume: bool = False
    official_loss: bool | str = False        # True or names from gfm.train.losses.OFFICIAL_DIFFERENCES
    on_bad_sample: str = "fail"              # fail | skip
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.crop_sizes, str):
            self.crop_sizes = tuple(int(c) for c in self.crop_sizes.split(",") if c.strip())
        self.crop_sizes = tuple(int(c) for c in self.crop_sizes)
        if isinstance(self.official_loss, str):
            self.official_loss = sorted(losses.official_flags(self.official_loss)) or False
            if self.official_loss == sorted(losses.OFFICIAL_DIFFERENCES):
                self.official_loss = True
        losses.official_flags(self.official_loss)
        for name in ("epochs", "batch_size", "input_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.rosta not in ("TT", "FT", "BT", "RIM"):
            raise ValueError(f"rosta must be TT, FT, BT or RIM, got {self.rosta!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.experiment

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class TrainResult:
    """What :func:`train` returns: the model, its loss history and where the files are."""

    model: torch.nn.Module
    history: pd.DataFrame
    summary: dict
    run_dir: Path
    model_path: Path
    checkpoint_path: Path
    losses_path: Path
    extra: dict = field(default_factory=dict)


def train(config: TrainConfig) -> TrainResult:
    """Train GFM according to ``config`` (module docstring); returns a :class:`TrainResult`.

    Raises ``FloatingPointError`` on a NaN/inf loss, naming the step and the batch's samples;
    the checkpoint of the last finished epoch is kept.
    """
    rank, world = _distributed_init(config.device)
    device = resolve_device(config.device, local_rank=int(os.environ.get("LOCAL_RANK", 0)) if world > 1 else None)
    precision = resolve_precision(config.precision, device)
    run_dir = config.run_dir
    is_main = rank == 0

    _seed_everything(config.seed)
    model = build_gfm(config.backbone, config.rosta, pretrained=config.pretrained, decoder=config.decoder,
                      ppm=config.ppm, bridge=config.bridge).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    for name, param in model.named_parameters():  # e.g. the ImageNet classifier: never gets a gradient
        if name in set(model.unused_parameter_names()):
            param.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")

    samples = training_samples(config.track, config.datasets, config.composites, fg_bg=config.fg_bg,
                               on_bad_sample=config.on_bad_sample)
    dataset = MattingDataset(samples, input_size=config.input_size, crop_sizes=config.crop_sizes,
                             trimap_kernel=config.trimap_kernel, ftbt_kernel=config.ftbt_kernel,
                             seed=config.seed, on_bad_sample=config.on_bad_sample, cache=config.cache)
    sampler = EpochSampler(len(dataset), seed=config.seed, rank=rank, world_size=world)
    if len(sampler) < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} is larger than the {len(sampler)} training samples "
                         f"per process of track {config.track!r}")
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        num_workers=config.workers, worker_init_fn=_WorkerSeed(config.seed),
                        pin_memory=device.type == "cuda")
    steps_per_epoch = len(loader) if config.steps_per_epoch is None else min(len(loader), config.steps_per_epoch)

    start_epoch, step, rows, elapsed = 0, 0, [], 0.0
    checkpoint_path = run_dir / CHECKPOINT
    if config.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, step, rows, elapsed = state["epoch"], state["step"], state["history"], state.get("time", 0.0)
        _set_rng_states(state["rng"])
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    autocast = device_autocast(device, precision)
    progress = _progress(config.progress and is_main, total_steps, step, config.experiment)
    t_start = time.perf_counter() - elapsed
    model.train()
    try:
        for epoch in range(start_epoch, config.epochs):
            if step >= total_steps:
                break
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            for i, batch in enumerate(loader):
                if i >= steps_per_epoch or step >= total_steps:
                    break
                terms = _train_step(net, optimizer, scaler, batch, config, device, autocast, world)
                step += 1
                if not all(math.isfinite(v) for v in terms.values()):
                    bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
                    raise FloatingPointError(
                        f"{config.experiment}: non-finite loss at step {step} (epoch {epoch + 1}): {bad}; "
                        f"batch samples {list(batch['name'])}. The last good checkpoint is "
                        f"{checkpoint_path if checkpoint_path.is_file() else 'none (first epoch)'}")
                rows.append({"step": step, "epoch": epoch + 1, **terms})
                progress.update(1)
                progress.set_postfix({k: f"{v:.3f}" for k, v in terms.items()
                                      if k in ("total", "glance", "focus_alpha", "fusion_alpha", "fusion_comp")})
            if is_main:
                _save_checkpoint(checkpoint_path, model, optimizer, scaler, epoch + 1, step, rows, config,
                                 time.perf_counter() - t_start)
                _write_losses(run_dir / LOSSES, rows)
    finally:
        progress.close()
    seconds = time.perf_counter() - t_start
    history = pd.DataFrame(rows)
    summary = _summary(config, model, history, step, seconds, device, precision, world, dataset)
    if is_main:
        with atomic_path(run_dir / MODEL) as tmp:
            torch.save(model.state_dict(), tmp)
        write_json(run_dir / SUMMARY, summary)
        _write_losses(run_dir / LOSSES, rows)
    if world > 1:
        dist.barrier()
    return TrainResult(model.eval(), history, summary, run_dir, run_dir / MODEL, checkpoint_path, run_dir / LOSSES,
                       extra={"rank": rank, "world_size": world})


# --------------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------------

class EpochSampler(Sampler):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``; rank ``r`` of ``world_size``
    takes every ``world_size``-th index (the permutation is padded by wrapping to equal shards)."""

    def __init__(self, n: int, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.rank, self.world_size, self.epoch = n, seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> list[int]:
        order = np.random.default_rng((self.seed, self.epoch, 0x5EED)).permutation(self.n)
        per_rank = math.ceil(self.n / self.world_size)
        order = np.resize(order, per_rank * self.world_size)
        return [int(i) for i in order[self.rank::self.world_size]]

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return math.ceil(self.n / self.world_size)


class _WorkerSeed:
    """Seed numpy/random/torch in each data worker from the run seed and torch's per-worker seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, worker_id: int) -> None:
        # gfm.train.dataset draws from (seed, epoch, index) only; this keeps any other use of the
        # global generators in a worker distinct across workers and reproducible across runs
        worker_seed = (self.seed * 1_000_003 + torch.initial_seed()) % 2 ** 32
        np.random.seed(worker_seed)
        random.seed(worker_seed)


# --------------------------------------------------------------------------------------------
# Loading and looking at a trained model
# --------------------------------------------------------------------------------------------

def plot_training_curves(history: pd.DataFrame | str | Path, *, terms=None, smooth: int = 5):
    """Loss terms against the step (log scale; a rolling mean over ``smooth`` steps) -> Figure.

    ``history`` is :attr:`TrainResult.history` or a ``losses.csv`` path.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if not isinstance(history, pd.DataFrame):
        history = pd.read_csv(history)
    if history.empty:
        raise ValueError("history: no training steps to plot")
    terms = list(terms or [c for c in losses.LOSS_TERMS if c in history.columns])
    long = history.melt(id_vars=["step"], value_vars=terms, var_name="term", value_name="loss")
    long["loss"] = long.groupby("term")["loss"].transform(lambda s: s.rolling(smooth, min_periods=1).mean())
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=long, x="step", y="loss", hue="term", ax=ax)
    ax.set_yscale("log")
    ax.set_title(f"training losses (rolling mean over {smooth} steps)")
    fig.tight_layout()
    return fig


def plot_predictions(model: torch.nn.Module, images, *, alphas=None, size: int = 320, titles=None):
    """Glance / focus / fusion panels of ``model`` on a few images -> Figure.

    One row per image: the image, the glance decoder's classes (arg-max: black background,
    grey transition, white foreground; FT/BT: white = class 1), the focus decoder's alpha, the
    collaborative matte and, if ``alphas`` are given, the ground truth.
    """
    import matplotlib.pyplot as plt

    from gfm.model.infer import predict  # inference lives in one place (gfm.model.infer)

    images = list(images)
    if not images:
        raise ValueError("images: nothing to show")
    columns = ["image", "glance", "focus", "fusion"] + (["ground truth"] if alphas is not None else [])
    fig, axes = plt.subplots(len(images), len(columns), figsize=(2.6 * len(columns), 2.3 * len(images)),
                             squeeze=False)
    for row, image in enumerate(images):
        was_training = model.training
        out = predict(model, image, strategy="resize", d=min(image.shape[:2]) / size,
                      device=next(model.parameters()).device)
        model.train(was_training)
        glance = out["glance"] / max(out["glance_probs"].shape[0] - 1, 1)
        panels = [image, glance, out["focus"], out["fusion"]]
        if alphas is not None:
            panels.append(alphas[row])
        for col, (name, panel) in enumerate(zip(columns, panels)):
            ax = axes[row, col]
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=255 if panel.ndim == 3 else (
                255 if panel.dtype == np.uint8 else 1))
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(name)
        if titles is not None:
            axes[row, 0].set_ylabel(titles[row])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _train_step(net, optimizer, scaler, batch, config, device, autocast, world) -> dict:
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    tensors = {k: v.to(device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
    tensors["image"] = tensors["image"].contiguous(memory_format=memory)
    optimizer.zero_grad(set_to_none=True)
    with autocast:
        outputs = net(tensors["image"])
    total, terms = losses.gfm_loss(_float_outputs(outputs), tensors, config.rosta, official=config.official_loss)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
    values = torch.stack([v.float() for v in terms.values()])
    if world > 1:
        dist.all_reduce(values)
        values /= world
    return dict(zip(terms.keys(), values.tolist()))


def _float_outputs(outputs):
    if isinstance(outputs, dict):
        return {k: _float_outputs(v) for k, v in outputs.items()}
    return outputs.float()


def _progress(enabled: bool, total: int, initial: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="step", disable=not enabled, dynamic_ncols=True)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save_checkpoint(path: Path, model, optimizer, scaler, epoch: int, step: int, rows: list, config: TrainConfig,
                     seconds: float) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "epoch": epoch, "step": step, "rng": _rng_states(), "sampler_seed": config.seed,
             "config": config.to_dict(), "history": list(rows), "time": seconds}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _write_losses(path: Path, rows: list) -> None:
    columns = ["step", "epoch", *[k for k in (rows[0] if rows else {}) if k not in ("step", "epoch")]]
    frame = pd.DataFrame(rows, columns=columns)
    write_text(path, frame.to_csv(index=False, float_format="%.6g"))


def _summary(config, model, history, step, seconds, device, precision, world, dataset) -> dict:
    last_epoch = history[history["epoch"] == history["epoch"].max()] if len(history) else history
    final = {k: float(last_epoch[k].mean()) for k in history.columns if k not in ("step", "epoch")}
    return {"experiment": config.experiment, "steps": int(step), "epochs": int(history["epoch"].max()) if len(history) else 0,
            "time_s": round(seconds, 2), "seconds_per_step": round(seconds / max(step, 1), 4),
            "final_losses": final, "device": str(device), "precision": precision, "world_size": world,
            "parameters": count_parameters(model), "training_samples": len(dataset),
            "skipped_samples": list(dataset.skipped), "torch": torch.__version__, "config": config.to_dict()}


def _distributed_init(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if on_cuda else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()
