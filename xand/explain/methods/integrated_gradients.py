"""Integrated Gradients (Sundararajan et al., ICML 2017), its gradient-only variant (``multiply_by_inputs=False``;
Ancona et al., ICLR 2018) and Expected Gradients (Erion et al., Nat Mach Intell 2021: baselines drawn from
reference ECGs)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from xand.errors import DataError
from xand.explain.methods.base import (
    IGConfig,
    gradient_model,
    make_baseline,
    register_method,
    seeded,
)

_UNSET = object()  # "use IGConfig" (None already means "one batch" for internal_batch_size)


def _integrated_gradients(model: nn.Module, x: Tensor, target: int, multiply_by_inputs: bool, n_steps, quadrature,
                          internal_batch_size, baseline, blur_sigma: float, noise_std: float, seed: int,
                          fuse_bn) -> tuple:
    """Integrated Gradients with ``IGConfig``'s defaults for every unset option; ``(attr, delta, params)``,
    delta None without the input factor (no completeness then)."""
    from captum.attr import IntegratedGradients

    cfg = IGConfig()
    n_steps = cfg.n_steps if n_steps is None else n_steps
    quadrature = cfg.quadrature if quadrature is None else quadrature
    internal_batch_size = cfg.internal_batch_size if internal_batch_size is _UNSET else internal_batch_size
    baseline = cfg.baseline if baseline is None else baseline
    fuse_bn = cfg.fuse_bn if fuse_bn is None else fuse_bn
    base = make_baseline(x, baseline, blur_sigma=blur_sigma, noise_std=noise_std, seed=seed)
    ig = IntegratedGradients(gradient_model(model, fuse_bn), multiply_by_inputs=multiply_by_inputs)
    out = ig.attribute(x, baselines=base, target=target, n_steps=n_steps, method=quadrature,
                       internal_batch_size=internal_batch_size, return_convergence_delta=multiply_by_inputs)
    attr, delta = out if multiply_by_inputs else (out, None)
    params = {"n_steps": n_steps, "quadrature": quadrature, "internal_batch_size": internal_batch_size,
              "baseline": baseline if isinstance(baseline, (str, int, float)) else "tensor", "fuse_bn": fuse_bn}
    if baseline == "blur":
        params["blur_sigma"] = blur_sigma
    if baseline == "noise":
        params.update(noise_std=noise_std, seed=seed)
    return attr, None if delta is None else float(delta.reshape(-1)[0]), params


@register_method("ig")
def _ig(model: nn.Module, x: Tensor, target: int, *, n_steps: int | None = None, quadrature: str | None = None,
        internal_batch_size: int | None | object = _UNSET, baseline: str | float | Tensor | None = None,
        blur_sigma: float = 10.0, noise_std: float = 0.1, seed: int = 0, fuse_bn: bool | None = None) -> tuple:
    attr, delta, params = _integrated_gradients(model, x, target, True, n_steps, quadrature, internal_batch_size,
                                                baseline, blur_sigma, noise_std, seed, fuse_bn)
    return attr, delta, params, None


@register_method("ig_grad")
def _ig_grad(model: nn.Module, x: Tensor, target: int, *, n_steps: int | None = None,
             quadrature: str | None = None, internal_batch_size: int | None | object = _UNSET,
             baseline: str | float | Tensor | None = None, blur_sigma: float = 10.0, noise_std: float = 0.1,
             seed: int = 0, fuse_bn: bool | None = None) -> tuple:
    """Gradient-only Integrated Gradients: the gradient averaged along the path from the baseline,
    *not* multiplied by ``x - baseline`` (Captum ``multiply_by_inputs=False``; the "local" attribution of
    Ancona et al., ICLR 2018). Without the input factor the map no longer follows the ECG's amplitude,
    at the price of completeness (no convergence delta)."""
    attr, _, params = _integrated_gradients(model, x, target, False, n_steps, quadrature, internal_batch_size,
                                            baseline, blur_sigma, noise_std, seed, fuse_bn)
    return attr, None, {**params, "multiply_by_inputs": False}, \
        "path-averaged gradient (not multiplied by the input): no completeness"


@register_method("expected_gradients")
def _expected_gradients(model: nn.Module, x: Tensor, target: int, *, references: Tensor | np.ndarray | None = None,
                        n_samples: int = 32, seed: int = 0, fuse_bn: bool = True) -> tuple:
    """Expected Gradients (Erion et al., Nat Mach Intell 3:620, 2021): IG with the baseline drawn from
    the data's distribution, ``E_{x' ~ D, a ~ U(0,1)}[(x - x') * grad f(x' + a (x - x'))]``, here with
    ``D`` = reference ECGs (training negatives of the head, ``reference_bank``) and ``n_samples`` draws.
    Captum's GradientShap with ``stdevs=0`` computes exactly this estimator."""
    from captum.attr import GradientShap

    if references is None:
        raise DataError(None, "Expected Gradients without reference ECGs",
                        "references = xand.explain.references.reference_bank(predictor, data_dir, head)")
    # a copy: the bank is shared and read-only, and torch refuses to wrap a read-only array
    ref = torch.as_tensor(np.array(references, dtype=np.float32) if isinstance(references, np.ndarray)
                          else references).to(x)
    if ref.ndim != 3 or tuple(ref.shape[1:]) != tuple(x.shape[1:]):
        raise DataError(None, f"references of shape {tuple(ref.shape)}", f"(K, {x.shape[1]}, {x.shape[2]})")
    with seeded(seed, x.device):
        attr, delta = GradientShap(gradient_model(model, fuse_bn)).attribute(
            x, baselines=ref, target=target, n_samples=n_samples, stdevs=0.0, return_convergence_delta=True)
    params = {"n_samples": n_samples, "seed": seed, "references": int(ref.shape[0]), "fuse_bn": fuse_bn}
    return attr, float(delta.abs().mean()), params, None
