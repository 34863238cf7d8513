"""Re-initialised copies of a trained network: the model-parameter randomisation of Adebayo et al. (NeurIPS
2018), used by the sanity check (``xand.explain.sanity``) and by attribution methods that compare a
network with untrained ones of the same architecture (``waves_template``'s null calibration).

References
----------
Adebayo J. et al., Sanity checks for saliency maps, NeurIPS 2018.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def parameter_blocks(model: nn.Module, x: torch.Tensor, max_blocks: int = 6) -> list[list[str]]:
    """The model's parameterised layers in forward order, grouped into at most ``max_blocks`` contiguous
    blocks, **output side first** (the order of cascading randomisation).

    Parameters
    ----------
    model : any registered model; ``x`` one input ``(1, 12, T)`` to trace the forward order with
    max_blocks : number of groups (every layer is its own block when there are fewer layers)

    Returns
    -------
    ``[[module name, ...], ...]``: block 0 holds the layers next to the output. Layers that the forward
    pass does not reach (e.g. auxiliary heads) are left out: they cannot change the head's output.
    """
    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []
    for mod in model.modules():
        if any(True for _ in mod.parameters(recurse=False)):
            hooks.append(mod.register_forward_hook(
                lambda m, _i, _o: order.append(names[m]) if names[m] not in order else None))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()  # the forward order, not batch statistics
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    layers = order[::-1]  # output first
    k = max(1, min(int(max_blocks), len(layers)))
    bounds = np.linspace(0, len(layers), k + 1).round().astype(int)
    return [layers[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def randomised(model: nn.Module, layers: list[str], seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose named ``layers`` are re-initialised with their own ``reset_parameters``
    (Conv/Linear: PyTorch's Kaiming-uniform default; BatchNorm: unit scale, zero shift, fresh running
    statistics). The original model is untouched; the generator state of the caller is restored."""
    out = copy.deepcopy(model)
    out.__dict__.pop("_xand_gradient_model", None)
    mods = dict(out.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for name in layers:
            mod = mods[name]
            reset = getattr(mod, "reset_parameters", None)
            if callable(reset):
                reset()
            else:  # a layer without its own initialiser: a fresh normal draw at the same scale
                for p in mod.parameters(recurse=False):
                    with torch.no_grad():
                        p.normal_(0.0, float(p.detach().std()) if p.numel() > 1 else 0.02)
            if hasattr(mod, "reset_running_stats"):
                mod.reset_running_stats()
    return out.eval()
