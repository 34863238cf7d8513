"""GradientShap (Lundberg & Lee, NeurIPS 2017; Erion et al. 2019): random points between ``x`` (+ noise) and
baselines drawn from a distribution, seeded."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xand.explain.methods.base import (
    gradient_model,
    make_baseline,
    register_method,
    seeded,
)


@register_method("gradshap")
def _gradshap(model: nn.Module, x: Tensor, target: int, *, n_samples: int = 16, stdevs: float = 0.1,
              baselines: tuple[str, ...] | Tensor = ("zeros", "blur", "noise"), seed: int = 0,
              blur_sigma: float = 10.0, noise_std: float = 0.1, fuse_bn: bool = True) -> tuple:
    from captum.attr import GradientShap

    if isinstance(baselines, Tensor):
        dist, names = baselines.to(x), "tensor"
    else:
        dist = torch.cat([make_baseline(x, b, blur_sigma=blur_sigma, noise_std=noise_std, seed=seed)
                          for b in baselines])
        names = list(baselines)
    with seeded(seed, x.device):
        attr, delta = GradientShap(gradient_model(model, fuse_bn)).attribute(
            x, baselines=dist, target=target, n_samples=n_samples, stdevs=stdevs,
            return_convergence_delta=True)
    params = {"n_samples": n_samples, "stdevs": stdevs, "baselines": names, "seed": seed, "fuse_bn": fuse_bn}
    return attr, float(delta.abs().mean()), params, None
