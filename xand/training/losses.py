"""Losses of the training loop, one registry (``LOSSES``): focal (Lin et al., ICCV 2017) and positive-weighted BCE.

A factory takes ``(cfg, pos_weight (n_outputs,))`` and returns ``loss(logits, targets)``; ``cfg`` is the
run's ``xand.training.config.TrainConfig`` (not imported here: the config validates loss names against
this registry).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from xand.registry import Registry


def focal_loss(logits: Tensor, targets: Tensor, gamma: float = 2.0, alpha: float | None = None,
               pos_weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Binary focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log(p_t)`` on logits.

    ``gamma = 0`` and ``alpha = None`` give exactly ``binary_cross_entropy_with_logits``.

    Parameters
    ----------
    logits, targets : same shape, targets in [0, 1]
    """
    targets = targets.to(device=logits.device, dtype=logits.dtype)
    if pos_weight is not None:
        pos_weight = pos_weight.to(logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=pos_weight)
    if gamma:
        p = torch.sigmoid(logits)
        p_t = p * targets + (1 - p) * (1 - targets)
        bce = (1 - p_t).clamp_min(0).pow(gamma) * bce
    if alpha is not None:
        bce = (alpha * targets + (1 - alpha) * (1 - targets)) * bce
    if reduction == "mean":
        return bce.mean()
    if reduction == "sum":
        return bce.sum()
    return bce


def _focal(cfg: Any, pos_weight: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda logits, y: focal_loss(logits, y, cfg.focal_gamma, cfg.focal_alpha)


def _weighted_bce(cfg: Any, pos_weight: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    # pos_weight lives on the training device, but the validation loss is computed on the CPU logits of
    # ``predict_logits``: follow the logits' device (a no-op in the training loop)
    on_device: dict[torch.device, Tensor] = {pos_weight.device: pos_weight}

    def loss(logits: Tensor, y: Tensor) -> Tensor:
        pw = on_device.get(logits.device)
        if pw is None:
            pw = on_device[logits.device] = pos_weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, y.to(device=logits.device, dtype=logits.dtype),
                                                  pos_weight=pw)

    return loss


#: loss name -> factory(cfg, pos_weight (n_outputs,)) -> loss(logits, targets); the loss must work on logits
#: of any device (training: the training device; validation: the CPU logits of ``predict_logits``)
LOSSES: Registry[Callable[[Any, Tensor], Callable[[Tensor, Tensor], Tensor]]] = Registry("loss", default="focal")


LOSSES.register("focal", _focal)


LOSSES.register("bce", _weighted_bce)
