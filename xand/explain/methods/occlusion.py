"""Sliding-window occlusion along time, one lead at a time (Zeiler & Fergus, ECCV 2014)."""

from __future__ import annotations

from torch import Tensor, nn

from xand.explain.methods.base import register_method


@register_method("occlusion")
def _occlusion(model: nn.Module, x: Tensor, target: int, *, window: int = 20, stride: int = 10,
               baseline: float = 0.0, perturbations_per_eval: int = 64) -> tuple:
    from captum.attr import Occlusion

    window = min(window, x.shape[-1])
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=(1, window), strides=(1, stride), baselines=baseline, target=target,
        perturbations_per_eval=perturbations_per_eval)
    return attr, None, {"window": window, "stride": stride, "baseline": baseline}, None
