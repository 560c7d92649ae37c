"""Training GFM (Sect. 5.2 "Implementation details"; losses Eq. 2-8 in :mod:`gfm.train.losses`).

:func:`train` runs one experiment of the grid (one track, backbone, RoSTa and ablation) with one
seed and writes the run folder ``<train.out>/<experiment>/s<seed>/`` (the contract of
:mod:`gfm.model.checkpoint`, which writes and reads every ``.pt`` file):

``checkpoint.pt``       the resumable training state, at an epoch end when ``train.checkpoint_interval``
                        seconds have passed since the last one, and after the last epoch: model,
                        optimiser, scaler, epoch, step, RNG states, config and the loss history so far;
                        ``resume=True`` continues from it and, on CPU with a fixed seed, ends with the
                        same weights as an uninterrupted run (data order and crops depend only on seed
                        and epoch)
``losses.csv``          one row per step (``step, epoch, total, glance, focus_alpha, focus_lap,
                        fusion_alpha, fusion_lap, fusion_comp``), rewritten atomically at each epoch
                        end -- the plot file of the ``train`` stage (``dvc plots``)
``model.pt``            the final weights (with ``train.ema`` > 0 their exponential moving average) and
                        their :class:`gfm.model.checkpoint.ModelSpec`, read back by
                        :func:`gfm.model.checkpoint.load_run` / :func:`gfm.model.infer.load_model`
``train_summary.json``  steps, time, final losses, device, precision, parameter count, config

Every setting comes from ``params.yaml`` through :meth:`TrainConfig.from_params` (the stage entry
is :func:`gfm.train.stage.run`, which trains every seed of ``train.seeds``). The paper trains with
Adam at a fixed learning rate of 1e-5 for 500 epochs (ORI-Track) or 100 (COMP-Track) at 320 x 320
and keeps the last weights. A short run at a rate 100 times larger (the sample profile) ends
wherever the last noisy steps left it; ``train.ema`` > 0 keeps instead an exponential moving
average of the weights and batch-norm statistics (Polyak averaging; decay
``min(ema, (1 + t) / (10 + t))`` after step t), which is what ``model.pt`` then holds.

Devices: ``device="auto"`` picks CUDA, then Apple MPS, then the CPU; ``precision="auto"`` picks
bfloat16 autocast on GPUs that support it (float16 with a gradient scaler otherwise) and on
CPUs with native bfloat16 (AMX or AVX512-BF16), float32 elsewhere. Speed on the CPU
(``benchmarks/bench_train_step.py``): channels-last, Adam's fused kernel, and glibc told to keep
large blocks on the heap (:func:`gfm.model.fuse.keep_large_allocations_on_heap`: without it every
step pays the page faults of its feature maps and of Adam's buffers again).
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

from gfm.core.config import Params
from gfm.core.device import autocast as device_autocast, resolve_device, resolve_precision
from gfm.core.io import clean_stale_staging, write_json, write_text
from gfm.model import checkpoint
from gfm.model.fuse import keep_large_allocations_on_heap
from gfm.model.network import count_parameters
from gfm.train import losses
from gfm.train.dataset import training_dataset

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "run_name",
    "EpochSampler",
    "WeightAverage",
]


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run: one experiment of ``train.experiments`` and one seed.

    Build it with :meth:`from_params`; the knobs and their defaults live in
    :mod:`gfm.core.config` only. ``resume`` and ``progress`` are switches of the call, not
    parameters of the pipeline.
    """

    experiment: str
    track: str
    datasets: str
    composites: str
    out_dir: str
    backbone: str
    rosta: str
    decoder: str
    ppm: str
    bridge: bool
    pretrained: str
    crop_sizes: tuple
    input_size: int
    trimap_kernel: int
    ftbt_kernel: int
    fg_bg: str
    epochs: int
    steps_per_epoch: int | None
    max_steps: int | None
    batch_size: int
    lr: float
    device: str
    precision: str
    channels_last: bool
    seed: int
    workers: int
    cache: bool
    official_loss: bool | tuple
    on_bad_sample: str
    checkpoint_interval: float
    ema: float
    threads: int
    resume: bool = False
    progress: bool = True

    @classmethod
    def from_params(cls, params: Params, experiment: str, seed: int, *, resume: bool = False,
                    progress: bool = True) -> "TrainConfig":
        """The run of ``experiment`` (a name of ``train.experiments``) with ``seed`` (one of ``train.seeds``)."""
        item, train = params.experiment(experiment), params.train
        if seed not in train.seeds:
            raise ValueError(f"{params.path}: train.seeds: seed {seed!r} is not one of {list(train.seeds)}")
        return cls(experiment=experiment, track=item.track, datasets=params.data.datasets,
                   composites=params.compose.out, out_dir=train.out, backbone=item.backbone, rosta=item.rosta,
                   decoder=item.decoder, ppm=item.ppm, bridge=item.bridge,
                   pretrained=train.pretrained if item.pretrained is None else item.pretrained,
                   crop_sizes=tuple(train.crop_sizes), input_size=train.input_size,
                   trimap_kernel=train.trimap_kernel, ftbt_kernel=train.ftbt_kernel, fg_bg=train.fg_bg,
                   epochs=item.epochs, steps_per_epoch=item.steps_per_epoch, max_steps=item.max_steps,
                   batch_size=item.batch_size, lr=train.lr, device=params.device, precision=train.precision,
                   channels_last=train.channels_last, seed=seed, workers=train.workers, cache=train.cache,
                   official_loss=train.official_loss, on_bad_sample=train.on_bad_sample,
                   checkpoint_interval=train.checkpoint_interval, ema=train.ema, threads=train.threads,
                   resume=resume, progress=progress)

    @property
    def run(self) -> str:
        """The run's name in tables and JSON: ``<experiment>-s<seed>``."""
        return run_name(self.experiment, self.seed)

    @property
    def run_dir(self) -> Path:
        """``<out_dir>/<experiment>/s<seed>``."""
        return Path(self.out_dir) / self.experiment / f"s{self.seed}"

    @property
    def spec(self) -> checkpoint.ModelSpec:
        """The network this run trains."""
        return checkpoint.ModelSpec(self.backbone, self.rosta, decoder=self.decoder, ppm=self.ppm, bridge=self.bridge)

    def to_dict(self) -> dict:
        """Plain data (JSON and checkpoint safe): tuples become lists."""
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


def run_name(experiment: str, seed: int) -> str:
    """``<experiment>-s<seed>``: how tables and JSON name one trained model."""
    return f"{experiment}-s{seed}"


def train(config: TrainConfig) -> TrainResult:
    """Train GFM according to ``config`` (module docstring); returns a :class:`TrainResult`.

    With ``config.threads`` > 0 the run computes on that many intra-op CPU threads (the caller's
    count is restored afterwards). Raises ``FloatingPointError`` on a NaN/inf loss, naming the step
    and the batch's samples; the last checkpoint written is kept.
    """
    previous = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(config)
    finally:
        torch.set_num_threads(previous)


def _train(config: TrainConfig) -> TrainResult:
    rank, world = _distributed_init(config.device)
    device = resolve_device(config.device, local_rank=int(os.environ.get("LOCAL_RANK", 0)) if world > 1 else None)
    precision = resolve_precision(config.precision, device)
    run_dir = config.run_dir
    is_main = rank == 0
    if device.type == "cpu":
        keep_large_allocations_on_heap()

    _seed_everything(config.seed)
    model = config.spec.build(pretrained=config.pretrained).to(device)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    unused = set(model.unused_parameter_names())  # e.g. the ImageNet classifier: never gets a gradient
    for name, param in model.named_parameters():
        if name in unused:
            param.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                 fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")

    dataset = training_dataset(config.track, config.datasets, config.composites, fg_bg=config.fg_bg,
                               on_bad_sample=config.on_bad_sample, input_size=config.input_size,
                               crop_sizes=config.crop_sizes, trimap_kernel=config.trimap_kernel,
                               ftbt_kernel=config.ftbt_kernel, seed=config.seed, cache=config.cache)
    sampler = EpochSampler(len(dataset), seed=config.seed, rank=rank, world_size=world)
    if len(sampler) < config.batch_size:
        raise ValueError(f"train.experiments.{config.experiment}.batch_size: {config.batch_size} is larger than "
                         f"the {len(sampler)} training samples per process of track {config.track!r}")
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        num_workers=config.workers, worker_init_fn=_WorkerSeed(config.seed),
                        pin_memory=device.type == "cuda")
    steps_per_epoch = len(loader) if config.steps_per_epoch is None else min(len(loader), config.steps_per_epoch)

    start_epoch, step, rows, elapsed = 0, 0, [], 0.0
    average = WeightAverage(model, config.ema) if config.ema else None
    checkpoint_path = run_dir / checkpoint.CHECKPOINT_FILE
    for name in (checkpoint.CHECKPOINT_FILE, checkpoint.MODEL_FILE, checkpoint.SUMMARY_FILE, checkpoint.LOSSES_FILE):
        clean_stale_staging(run_dir / name)  # staging a killed run left beside its outputs
    if config.resume and checkpoint_path.is_file():
        state = checkpoint.load_training_state(checkpoint_path, map_location=device)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            if average is not None:
                average.load_state_dict(state["ema"])
            start_epoch, step, rows, elapsed = state["epoch"], state["step"], list(state["history"]), state["time"]
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise checkpoint.CheckpointError(
                f"{checkpoint_path}: does not match this run ({config.run}: {config.backbone}, {config.rosta}, "
                f"decoder {config.decoder}, ema {config.ema}): {first}; delete it to train from the start") from None
        checkpoint.set_rng_state(state["rng"])
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    autocast = device_autocast(device, precision)
    progress = _progress(config.progress and is_main, total_steps, step, config.run)
    t_start = time.perf_counter() - elapsed
    last_saved = time.perf_counter()
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
                terms = _train_step(net, optimizer, scaler, batch, config, memory, device, autocast, world)
                step += 1
                if average is not None:
                    average.update(model, step)
                if not all(math.isfinite(v) for v in terms.values()):
                    bad = ", ".join(f"{k}={v}" for k, v in terms.items() if not math.isfinite(v))
                    raise FloatingPointError(
                        f"{config.run}: non-finite loss at step {step} (epoch {epoch + 1}): {bad}; "
                        f"batch samples {list(batch['name'])}. The last good checkpoint is "
                        f"{checkpoint_path if checkpoint_path.is_file() else 'none (none written yet)'}")
                rows.append({"step": step, "epoch": epoch + 1, **terms})
                progress.update(1)
                progress.set_postfix({k: f"{v:.3f}" for k, v in terms.items()
                                      if k in ("total", "glance", "focus_alpha", "fusion_alpha", "fusion_comp")})
            last = epoch + 1 == config.epochs or step >= total_steps
            if is_main:
                if last or time.perf_counter() - last_saved >= config.checkpoint_interval:
                    _save_checkpoint(checkpoint_path, model, optimizer, scaler, average, epoch + 1, step, rows,
                                     config, time.perf_counter() - t_start)
                    last_saved = time.perf_counter()
                _write_losses(run_dir / checkpoint.LOSSES_FILE, rows)
    finally:
        progress.close()
    seconds = time.perf_counter() - t_start
    if average is not None:
        model.load_state_dict(average.state_dict())
    history = pd.DataFrame(rows)
    summary = _summary(config, model, history, step, seconds, device, precision, world, dataset)
    if is_main:
        checkpoint.save_run(run_dir, model, config.spec, extra={"experiment": config.experiment, "track": config.track,
                                                                "seed": config.seed, "run": config.run})
        write_json(run_dir / checkpoint.SUMMARY_FILE, summary)
        _write_losses(run_dir / checkpoint.LOSSES_FILE, rows)
    if world > 1:
        dist.barrier()
    return TrainResult(model.eval(), history, summary, run_dir, run_dir / checkpoint.MODEL_FILE, checkpoint_path,
                       run_dir / checkpoint.LOSSES_FILE, extra={"rank": rank, "world_size": world})


# --------------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------------

class EpochSampler(Sampler):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``; rank ``r`` of ``world_size``
    takes every ``world_size``-th index (the permutation is padded by wrapping to equal shards)."""

    def __init__(self, n: int, *, seed: int, rank: int = 0, world_size: int = 1):
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
# Weight averaging
# --------------------------------------------------------------------------------------------

class WeightAverage:
    """Exponential moving average of a model's floating-point state (weights and batch-norm
    statistics; integer buffers are copied): after step t, ``avg = d avg + (1 - d) w`` with
    ``d = min(decay, (1 + t) / (10 + t))``, so that early steps do not keep the random start."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema: the decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for key, value in model.state_dict().items():
            average = self.state[key]
            if average.is_floating_point():
                average.lerp_(value, 1.0 - d)
            else:
                average.copy_(value)

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.state) ^ set(state)
        if missing:
            raise ValueError(f"weight average: keys differ from the model's: {sorted(missing)[:5]}")
        for key, value in state.items():
            self.state[key].copy_(value)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _train_step(net, optimizer, scaler, batch, config, memory, device, autocast, world) -> dict:
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


def _save_checkpoint(path: Path, model, optimizer, scaler, average, epoch: int, step: int, rows: list,
                     config: TrainConfig, seconds: float) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "epoch": epoch, "step": step, "rng": checkpoint.rng_state(), "config": config.to_dict(),
             "history": list(rows), "time": seconds}
    if average is not None:
        state["ema"] = average.state_dict()
    checkpoint.save_training_state(path, state)


def _write_losses(path: Path, rows: list) -> None:
    columns = ["step", "epoch", *[k for k in (rows[0] if rows else {}) if k not in ("step", "epoch")]]
    frame = pd.DataFrame(rows, columns=columns)
    write_text(path, frame.to_csv(index=False, float_format="%.6g"))


def _summary(config, model, history, step, seconds, device, precision, world, dataset) -> dict:
    last_epoch = history[history["epoch"] == history["epoch"].max()] if len(history) else history
    final = {k: float(last_epoch[k].mean()) for k in history.columns if k not in ("step", "epoch")}
    return {"experiment": config.experiment, "seed": config.seed, "run": config.run, "steps": int(step),
            "epochs": int(history["epoch"].max()) if len(history) else 0,
            "time_s": round(seconds, 2), "seconds_per_step": round(seconds / max(step, 1), 4),
            "final_losses": final, "device": str(device), "precision": precision, "world_size": world,
            "threads": torch.get_num_threads(), "parameters": count_parameters(model),
            "training_samples": len(dataset), "skipped_samples": list(dataset.skipped), "torch": torch.__version__,
            "config": config.to_dict()}


def _distributed_init(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if on_cuda else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()