"""Saliency: the absolute input gradient (Simonyan et al., ICLR workshop 2014)."""

from __future__ import annotations

from torch import Tensor, nn

from xand.explain.methods.base import gradient_model, register_method


@register_method("saliency")
def _saliency(model: nn.Module, x: Tensor, target: int, *, abs: bool = True,  # noqa: A002
              fuse_bn: bool = True) -> tuple:
    from captum.attr import Saliency

    attr = Saliency(gradient_model(model, fuse_bn)).attribute(x.detach().requires_grad_(True), target=target,
                                                              abs=abs)
    return attr, None, {"abs": abs, "fuse_bn": fuse_bn}, None
