"""Batched on-device augmentation of normalised ECGs (noise, amplitude, baseline wander, time shift)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from xand.training.config import TrainConfig


def augment_batch(x: Tensor, cfg: TrainConfig, fs: float) -> Tensor:
    """Random, batched, on-device augmentation of a normalised batch ``x (B, 12, T)``.

    Amplitude scaling per lead, baseline wander (one 0.05-0.5 Hz sinusoid per record, per-lead amplitude),
    Gaussian noise and a circular time shift per record. Uses the global torch RNG of ``x``'s device
    (its state is checkpointed), so a resumed run draws the same augmentations.
    """
    b, leads, t = x.shape
    dev = x.device
    if cfg.aug_scale:
        x = x * (1 + cfg.aug_scale * (2 * torch.rand(b, leads, 1, device=dev) - 1))
    if cfg.aug_wander:
        freq = 0.05 + 0.45 * torch.rand(b, 1, 1, device=dev)
        phase = 2 * math.pi * torch.rand(b, 1, 1, device=dev)
        tt = torch.arange(t, device=dev, dtype=x.dtype).view(1, 1, t) / fs
        amp = cfg.aug_wander * torch.rand(b, leads, 1, device=dev)
        x = x + amp * torch.sin(2 * math.pi * freq * tt + phase)
    if cfg.aug_noise:
        x = x + cfg.aug_noise * torch.randn_like(x)
    if cfg.aug_shift:
        max_shift = int(cfg.aug_shift * t)
        if max_shift > 0:
            shift = torch.randint(-max_shift, max_shift + 1, (b, 1, 1), device=dev)
            idx = (torch.arange(t, device=dev).view(1, 1, t) - shift) % t
            x = torch.gather(x, 2, idx.expand(b, leads, t))
    return x
