"""Devices and numeric precision, decided at run time (never assumed); :mod:`gfm.core.runinfo` records them."""
from __future__ import annotations

import torch

from gfm.core.runinfo import cpu_info

__all__ = ["resolve_device", "resolve_precision", "cpu_has_native_bf16", "autocast"]


def resolve_device(device: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """``"auto"``: CUDA (``cuda:<local_rank>`` under torchrun), then MPS, then CPU; else the device named
    (checked to exist)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device: {device!r} is not a device name (auto, cpu, cuda, cuda:N, mps)") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here")
    if resolved.type == "cuda" and resolved.index is None and local_rank is not None:
        resolved = torch.device("cuda", local_rank)
    return resolved


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"auto"``: bf16 on GPUs with bfloat16 (else fp16) and on CPUs with native bfloat16
    (AMX or AVX512-BF16), fp32 on other CPUs and on MPS; an explicit choice is checked."""
    device = torch.device(device)
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        return "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision='fp16' is not supported on the CPU; use 'bf16' or 'fp32'")
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    return precision


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16): the flags of
    :func:`gfm.core.runinfo.cpu_info`, else (no /proc/cpuinfo) PyTorch's view of the CPU."""
    info = cpu_info()
    if info["cpu_flags"]:
        return info["native_bf16"]
    get = getattr(torch.cpu, "get_capabilities", None)
    caps = get() if get is not None else {}
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved precision (disabled for fp32)."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
