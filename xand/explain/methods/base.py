"""What every attribution method shares: the result (``Attribution``), the registries of methods and IG
baselines, the project's IG configuration and the helpers (seeding, eval mode, BN-fused gradient model).

A method is ``fn(model, x (1, 12, T), target, **kw) -> (map, delta, params, note)``, registered with
``@register_method("name")``; ``xand.explain.attribution.attribute`` is the one call.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from xand.constants import N_LEADS
from xand.errors import DataError
from xand.registry import Registry


@dataclass
class Attribution:
    """One attribution map.

    Attributes
    ----------
    map : ``(12, T)`` float32, on the model input grid; positive = evidence for the target
    delta : convergence (completeness) error in logit units where the method has one, else None
        (IG: ``sum(map) - (f(x) - f(baseline))``; GradientShap: mean ``|delta|`` over its samples)
    method : registry name
    params : the parameters actually used (JSON-serialisable)
    seconds : wall time of the call
    note : caveat to show with the map (e.g. Grad-CAM broadcast over leads), else None
    features : ``(12, T)`` int region ids of a region-level map (lead x wave ablation; -1 outside every
        region), so that scores judge regions, not samples (``xand.explain.scores.pointing_game``); None
        for sample-level maps
    """

    map: np.ndarray
    delta: float | None
    method: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = None
    features: np.ndarray | None = None


@dataclass
class IGConfig:
    """The project's Integrated Gradients configuration (the defaults of ``method="ig"``).

    Chosen by measurement (``python -m xand bench explain``) as the latency/accuracy compromise for live
    use on a 2-core CPU: all steps go through the model in one batch (``internal_batch_size=None``;
    smaller batches were slower), ``fuse_bn`` differentiates an exact eval-time copy of the model with
    BatchNorm folded into the preceding convolutions (see :func:`gradient_model`, ~10-15% less work),
    and 32 Gauss-Legendre steps instead of 50. Caveat (measured on trained lead-wise heads): the models
    are piecewise linear (ReLU, max-pool), so the IG integrand is piecewise constant along the path and
    the quadrature error falls only ~1/n: median |delta| at 32 steps is ~1.5-3x that of Captum's
    50 steps (MI head: 4e-3 logit, ~0.3% of |f(x) - f(0)|). Pass ``n_steps=50`` where Captum-default
    accuracy matters more than latency (batch validation does not need it).
    """

    n_steps: int = 32
    quadrature: str = "gausslegendre"
    internal_batch_size: int | None = None
    baseline: str = "zeros"
    fuse_bn: bool = True


#: name -> function(model, x, target, **kw) -> (map (1,12,T) Tensor|ndarray, delta, params, note)
ATTRIBUTION_METHODS: Registry[Callable[..., tuple]] = Registry("attribution method", default="ig")


#: name -> function(x (1,12,T), **kw) -> baseline tensor (1,12,T)
BASELINES: Registry[Callable[..., Tensor]] = Registry("IG baseline", default="zeros")


def register_method(name: str) -> Callable:
    """Decorator adding an attribution method to ``ATTRIBUTION_METHODS`` under ``name``."""

    return ATTRIBUTION_METHODS.register(name)


def register_baseline(name: str) -> Callable:
    """Decorator adding a named IG baseline to ``BASELINES``."""

    return BASELINES.register(name)


@register_baseline("zeros")
def _zeros(x: Tensor, **_: Any) -> Tensor:
    return torch.zeros_like(x)


@register_baseline("mean")
def _mean(x: Tensor, **_: Any) -> Tensor:
    return x.mean(dim=-1, keepdim=True).expand_as(x).clone()


@register_baseline("blur")
def _blur(x: Tensor, blur_sigma: float = 10.0, **_: Any) -> Tensor:
    # sigma 10 samples = 0.1 s at 100 Hz: wider than a QRS, so the waves' shape is gone
    radius = int(3 * blur_sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / blur_sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1).repeat(x.shape[1], 1, 1)
    padded = torch.nn.functional.pad(x, (radius, radius), mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel, groups=x.shape[1])


@register_baseline("noise")
def _noise(x: Tensor, noise_std: float = 0.1, seed: int = 0, **_: Any) -> Tensor:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return (torch.randn(x.shape, generator=gen, dtype=x.dtype) * noise_std).to(x.device)


def make_baseline(x: Tensor, baseline: str | float | Tensor | np.ndarray = "zeros", **kw: Any) -> Tensor:
    """A baseline tensor shaped like ``x`` from a name in ``BASELINES``, a scalar or an array."""
    if isinstance(baseline, str):
        return BASELINES.create(baseline, x, **kw)
    if isinstance(baseline, (int, float)):
        return torch.full_like(x, float(baseline))
    b = torch.as_tensor(np.asarray(baseline) if isinstance(baseline, np.ndarray) else baseline,
                        dtype=x.dtype, device=x.device)
    return b.reshape(x.shape)


def as_input(x: Tensor | np.ndarray) -> Tensor:
    """``(1,12,T)`` float tensor usable by autograd, whatever the caller's mode (no_grad/inference)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3 or x.shape[0] != 1 or x.shape[1] != N_LEADS:
        raise DataError(None, f"attribution input has shape {tuple(x.shape)}",
                        f"(1, {N_LEADS}, T) normalised ECG")
    if x.is_inference():
        # inference tensors cannot enter autograd; a clone made outside inference mode can
        with torch.inference_mode(False):
            x = x.clone()
    x = x.detach().float()
    if not torch.isfinite(x).all():
        raise DataError(None, "attribution input contains NaN or infinite values", "finite normalised values")
    return x


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Seed the global generators GradientShap draws from, then restore them: numpy's (Captum picks the
    baselines with it), the CPU generator and, for an input on an accelerator, that device's generator
    (Captum draws the noise on the input's device). Only those are touched: ``torch.manual_seed`` would
    also re-seed every CUDA generator without restoring it."""
    device = torch.device(device)
    accel = device.type not in ("cpu", "meta")
    mod = torch.get_device_module(device.type) if accel else None
    index = (device.index if device.index is not None else mod.current_device()) if accel else None
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[index] if accel else [], device_type=device.type if accel else None):
        torch.random.default_generator.manual_seed(seed)
        if accel:
            with (mod.device(index) if hasattr(mod, "device") else nullcontext()):
                mod.manual_seed(seed)  # the current device's generator only
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextmanager
def eval_mode(model: nn.Module):
    """Run ``model`` in eval mode inside the block (BatchNorm on running statistics, dropout off) and put
    every submodule back in its own mode afterwards. Explanations of a training-mode model would
    otherwise depend on the rest of the batch (the IG steps share BatchNorm statistics) and on dropout."""
    modes = [(m, m.training) for m in model.modules()]
    if not any(training for _, training in modes):
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device(default)


def numpy_map(m: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(m, Tensor):
        m = m.detach().cpu().numpy()
    return np.asarray(m, dtype=np.float32).reshape(N_LEADS, -1)


def bn_fusable(model: nn.Module) -> bool:
    return not model.training and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def gradient_model(model: nn.Module, fuse_bn: bool = True) -> nn.Module:
    """The model to differentiate for input-gradient methods (IG, GradientShap, saliency).

    In eval mode BatchNorm is a fixed affine map, so it folds exactly into the preceding convolution
    (``torch.fx.experimental.optimization.fuse``); gradients w.r.t. the input are those of the original
    model up to float rounding, with ~10-15% less work per step (BatchNorm forward and backward are
    memory-bound passes). The folded copy's parameters are frozen (only input gradients are needed) and
    it is cached on the model, rebuilt when a parameter or buffer changes. Falls back to ``model`` in
    training mode, without BatchNorm, or when the model cannot be traced by ``torch.fx``.
    """
    if not fuse_bn or not bn_fusable(model):
        return model
    tensors = [*model.parameters(), *model.buffers()]
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    cached = model.__dict__.get("_xand_gradient_model")
    if cached is not None and cached[0] == key:
        return cached[1]
    model.__dict__.pop("_xand_gradient_model", None)  # keep the old copy out of the deep copy
    try:
        with warnings.catch_warnings():  # that module imports deprecated torch.jit helpers
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.fx.experimental.optimization import fuse

        fused = fuse(model).eval()
    except Exception:  # noqa: BLE001 - any tracing failure means: use the model as it is
        fused = model
    for p in fused.parameters() if fused is not model else ():
        p.requires_grad_(False)
    model.__dict__["_xand_gradient_model"] = (key, fused)
    return fused


#: Methods that need reference ECGs (``references=xand.explain.references.reference_bank(...)``).
NEEDS_REFERENCES = frozenset({"expected_gradients", "waves_template"})


#: Methods that need the ECG's wave segments (``segments=xand.explain.waves.segment_labels(fid, T)``).
NEEDS_SEGMENTS = frozenset({"waves", "waves_template"})
