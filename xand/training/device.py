"""The device a run trains on: cores, CUDA / CPU, the autocast dtype, the normalised data copied once."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from xand.data.preprocess import PreprocessConfig, normalize

if TYPE_CHECKING:
    from xand.training.config import TrainConfig


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def amp_dtype(device: torch.device, mode: str = "auto") -> torch.dtype | None:
    """Autocast dtype for ``mode`` on ``device`` (None = full fp32). CPU stays fp32 unless asked for bf16."""
    if mode == "off":
        return None
    if device.type == "cuda":
        if mode == "fp16":
            return torch.float16
        if mode == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    return torch.bfloat16 if mode == "bf16" else None


def setup_device(cfg: TrainConfig) -> torch.device:
    """Resolve the device and set threads / cuDNN autotuning for it."""
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(int(cfg.num_threads or available_cores()))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def signals_to_device(signals: np.ndarray, device: torch.device, cfg: PreprocessConfig,
                      chunk: int = 2048) -> Tensor:
    """Copy a ``(N, 12, T)`` mV array to ``device`` once, normalised (chunked to bound float64 temporaries)."""
    n = signals.shape[0]
    out = torch.empty(tuple(signals.shape), dtype=torch.float32, device=device)
    for i in range(0, n, chunk):
        part = torch.from_numpy(np.array(signals[i:i + chunk], dtype=np.float32)).to(device)
        out[i:i + chunk] = normalize(part, cfg)
    return out
