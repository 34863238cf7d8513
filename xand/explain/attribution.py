"""Attribution maps for one ECG and one head: one registry, one call, Captum's uniform shape.

``attribute(model, x, target, method)`` returns an :class:`Attribution` whose ``map`` is ``(12, T)``
float32 on the model's input grid (normalised units x logit units for the gradient x input methods).
Every method attributes the **logit** of output ``target`` (not the probability): the sigmoid saturates
and would squash the attribution of confident predictions, and the logit is what Captum's convergence
delta is defined for.

Methods (``ATTRIBUTION_METHODS``)
---------------------------------
``"ig"``        Integrated Gradients (Sundararajan et al., ICML 2017). Primary method. Baseline by name
                (``BASELINES``): ``"zeros"`` (default; zero in normalised units is each lead's mean after
                the per-lead z-score, i.e. a flat isoelectric line), ``"mean"`` (each lead's own time
                mean of ``x``: a flat line even when normalisation does not centre), ``"blur"`` (``x``
                low-passed by a Gaussian of ``blur_sigma`` samples: keeps rhythm and baseline wander,
                removes wave morphology; Sturmfels et al., Distill 2020) or ``"noise"`` (seeded Gaussian
                noise of ``noise_std`` around zero; Sturmfels et al. 2020), or a tensor. Returns the
                convergence delta ``sum(map) - (f(x) - f(baseline))``.
``"gradshap"``  GradientShap / expected gradients (Lundberg & Lee, NeurIPS 2017; Erion et al. 2019):
                random points between ``x`` (+ noise ``stdevs``) and baselines drawn from a
                distribution (default: the named baselines zeros, blur and noise), seeded.
``"ig_grad"``   gradient-only IG (``multiply_by_inputs=False``; Ancona et al., ICLR 2018): the path-averaged
                gradient, without the input factor that makes zero-baseline IG follow the amplitude.
``"expected_gradients"`` Expected Gradients (Erion et al., Nat Mach Intell 2021): baselines drawn from
                reference ECGs (the head's training negatives, ``xand.explain.references``), no noise.
``"saliency"``  absolute input gradient (Simonyan et al. 2014).
``"gradcam"``   Grad-CAM (Selvaraju et al., ICCV 2017) on ``model.cam_layer``. For lead-wise models the
                layer sees a batch of ``B*12`` single-lead signals (lead-major), so the CAM is per lead:
                ``(B*12, T') -> (B, 12, T')``, linearly interpolated to ``T`` from each cell's true
                receptive-field centre on the input grid (:func:`cam_cell_centres`; not ``T'`` equal
                tiles, which would shift the map by up to half a cell). For channel models the CAM is
                one ``(T')`` curve, broadcast to all 12 leads (``Attribution.note`` says so): Grad-CAM has
                no lead resolution there.
``"occlusion"`` sliding-window occlusion along time, one lead at a time (Zeiler & Fergus, ECCV 2014).
``"waves"``     lead x wave-segment ablation (``xand.explain.waves``): one feature per lead x P/PR/QRS/ST/T/TP,
                each segment replaced by the straight line between its ends.
``"waves_template"`` the same features, each segment replaced by the lead's *normal* shape of that segment
                (``xand.explain.waves.template_fill``; templates from the head's training negatives,
                ``xand.explain.references.wave_template_bank``): the removal stays in the data's
                distribution, so taking away a normal wave changes little, an abnormal one a lot.

Speed
-----
The app computes IG live. ``IGConfig`` holds the project's configuration, chosen by measurement with
``python -m xand bench explain`` (:func:`benchmark`), which reports it side by side with Captum's default
(50 Gauss-Legendre steps, one batch).
"""

from __future__ import annotations

import time
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
    """

    map: np.ndarray
    delta: float | None
    method: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = None


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


# ---------------------------------------------------------------------------------------------- baselines

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


# ------------------------------------------------------------------------------------------------ helpers

def _as_input(x: Tensor | np.ndarray) -> Tensor:
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
def _seeded(seed: int, device: torch.device | str = "cpu"):
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


def _device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device(default)


def _numpy_map(m: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(m, Tensor):
        m = m.detach().cpu().numpy()
    return np.asarray(m, dtype=np.float32).reshape(N_LEADS, -1)


def _bn_fusable(model: nn.Module) -> bool:
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
    if not fuse_bn or not _bn_fusable(model):
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


# ------------------------------------------------------------------------------------------------ methods

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
    with _seeded(seed, x.device):
        attr, delta = GradientShap(gradient_model(model, fuse_bn)).attribute(
            x, baselines=dist, target=target, n_samples=n_samples, stdevs=stdevs,
            return_convergence_delta=True)
    params = {"n_samples": n_samples, "stdevs": stdevs, "baselines": names, "seed": seed, "fuse_bn": fuse_bn}
    return attr, float(delta.abs().mean()), params, None


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


#: Methods that need reference ECGs (``references=xand.explain.references.reference_bank(...)``).
NEEDS_REFERENCES = frozenset({"expected_gradients", "waves_template"})


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
    with _seeded(seed, x.device):
        attr, delta = GradientShap(gradient_model(model, fuse_bn)).attribute(
            x, baselines=ref, target=target, n_samples=n_samples, stdevs=0.0, return_convergence_delta=True)
    params = {"n_samples": n_samples, "seed": seed, "references": int(ref.shape[0]), "fuse_bn": fuse_bn}
    return attr, float(delta.abs().mean()), params, None


@register_method("saliency")
def _saliency(model: nn.Module, x: Tensor, target: int, *, abs: bool = True,  # noqa: A002
              fuse_bn: bool = True) -> tuple:
    from captum.attr import Saliency

    attr = Saliency(gradient_model(model, fuse_bn)).attribute(x.detach().requires_grad_(True), target=target,
                                                              abs=abs)
    return attr, None, {"abs": abs, "fuse_bn": fuse_bn}, None


@register_method("gradcam")
def _gradcam(model: nn.Module, x: Tensor, target: int, *, relu: bool = True) -> tuple:
    from captum.attr import LayerGradCam

    layer = getattr(model, "cam_layer", None)
    if layer is None:
        raise DataError(None, f"model {type(model).__name__} has no cam_layer", "a model from xand.models.networks")
    cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=relu)
    n, t = x.shape[0], x.shape[-1]
    cam = cam.reshape(cam.shape[0], -1)  # (batch of the layer, T')
    if getattr(model, "leadwise", False) and cam.shape[0] == n * N_LEADS:
        # lead-major: layer batch row b*12 + l is lead l of ECG b
        cam, note = cam.reshape(n, N_LEADS, -1), None
    elif cam.shape[0] == n:
        cam = cam.reshape(n, 1, -1)
        note = ("Grad-CAM of a channel model: one time curve shared by all 12 leads "
                "(the layer has no lead dimension)")
    else:
        raise DataError(None, f"cam_layer output batch {cam.shape[0]} for an input batch of {n}",
                        f"{n} (channel model) or {n * N_LEADS} (lead-wise model)")
    centres, stride, offset = cam_cell_centres(model, t, int(cam.shape[-1]))
    up = upsample_cells(cam, centres, t)
    params = {"relu": relu, "layer_length": int(cam.shape[-1]), "cell_stride": stride, "cell_offset": offset}
    return up.expand(n, N_LEADS, t), None, params, note


class _StopForward(Exception):
    """Raised by a forward hook once the cam layer's output is captured (the rest is not needed)."""


def _geometry_copy(model: nn.Module) -> nn.Module:
    """A float64 CPU eval copy of ``model`` with the same time geometry (kernels, strides, padding) but uniform
    weights: every conv kernel a constant averaging kernel, BatchNorm the identity, max-pooling replaced by
    average pooling of the same window. On a positive input it is linear (ReLUs pass everything), so the
    input gradient of one cam-layer cell is its receptive field weighted symmetrically about its centre."""
    import copy

    caches = ("_xand_gradient_model", "_xand_cam_centres")  # not copied: the BN-folded copy is a whole model
    saved = {k: model.__dict__.pop(k) for k in caches if k in model.__dict__}
    try:
        geo = copy.deepcopy(model)
    finally:
        model.__dict__.update(saved)
    swap: dict[int, nn.Module] = {}
    for parent in list(geo.modules()):
        for name, child in list(parent.named_children()):
            new = swap.get(id(child))
            if new is None:
                if isinstance(child, nn.MaxPool1d) and child.dilation in (1, (1,)):
                    new = nn.AvgPool1d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
                elif isinstance(child, nn.AdaptiveMaxPool1d):
                    new = nn.AdaptiveAvgPool1d(child.output_size)
                else:
                    continue
                swap[id(child)] = new
            setattr(parent, name, new)
    with torch.no_grad():
        for m in geo.modules():
            if isinstance(m, nn.modules.conv._ConvNd):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                if m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
    for q in geo.parameters():
        q.requires_grad_(False)
    # on the CPU whatever the model's device: exact zeros outside a receptive field (no cuDNN FFT/Winograd)
    return geo.to(device="cpu", dtype=torch.float64).eval()


def _probe_centres(geo: nn.Module, t: int, k: int = 3) -> np.ndarray | None:
    """Receptive-field centroids (input samples) of ``k`` neighbouring cam-layer cells in the middle of a
    length-``t`` input of the geometry copy, or None when one of those fields touches an end of the
    input (truncated by the padding: its centroid is not its centre). One forward and one backward:
    the cells' gradients are kept apart by giving each its own independent input -- for a lead-wise
    model the 12 single-lead rows of one ECG, for a channel model ``k`` copies of the ECG."""
    got: list[Tensor] = []

    def hook(_module, _inp, out):
        got.append(out)
        raise _StopForward

    def run(n_copies: int) -> tuple[Tensor, Tensor]:
        x = torch.ones(n_copies, N_LEADS, t, dtype=torch.float64, requires_grad=True)
        got.clear()
        handle = geo.cam_layer.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                geo(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        a = got[0]
        return x, a.reshape(a.shape[0], -1, a.shape[-1]).sum(1)  # (layer batch, T'), channels summed

    x, a = run(1)
    per_lead = a.shape[0] == N_LEADS and k <= N_LEADS  # lead-wise: layer row l is lead l alone
    if not per_lead:
        x, a = run(k)
        if a.shape[0] != k:
            return None
    n = int(a.shape[-1])
    cells = torch.arange(k) + (n // 2 - k // 2)
    if cells[0] < 0 or cells[-1] >= n:
        return None
    (g,) = torch.autograd.grad(a[torch.arange(k), cells].sum(), x)
    g = (g[0, :k] if per_lead else g.sum(1)).numpy()  # (k, t): row i = cell i's receptive field
    mass = g.sum(1)
    if not ((mass > 0) & (g[:, 0] == 0) & (g[:, -1] == 0)).all():
        return None
    c = (g * np.arange(t)).sum(1) / mass
    return np.concatenate([[float(cells[0])], c])  # first cell index, then the centroids


def _n_cells(model: nn.Module, t: int) -> int:
    got: list[int] = []

    def hook(_module, _inp, out):
        got.append(int(out.shape[-1]))
        raise _StopForward

    handle = model.cam_layer.register_forward_hook(hook)
    p = next(model.parameters(), None)
    try:
        with torch.no_grad():
            model(torch.zeros(1, N_LEADS, t, dtype=p.dtype if p is not None else torch.float32,
                              device=p.device if p is not None else "cpu"))
    except _StopForward:
        pass
    finally:
        handle.remove()
    return got[0]


#: (model class, layers' repr, input length, cells) -> cam_cell_centres result, for xand.models.networks classes
_CAM_CENTRES: dict[tuple, tuple[np.ndarray, float | None, float | None]] = {}


def cam_cell_centres(model: nn.Module, t: int, n_cells: int | None = None) -> tuple[np.ndarray, float | None,
                                                                                    float | None]:
    """Where each cell of ``model.cam_layer``'s output sits on the input grid, for input length ``t``.

    A cell ``j`` of a strided conv stack sees input samples ``[S*j - P, S*j - P + R)`` (total stride ``S``,
    receptive field ``R``, accumulated padding ``P``), centred on ``S*j + o`` -- *not* on the centre of
    the j-th of ``T'`` equal tiles of ``[0, T)`` that ``interpolate(align_corners=False)`` assumes. (The
    default lead-wise model: ``S = 64``, ``T' = 16`` for ``T = 1000``, centres ``64j + 1``; equal tiles
    would put them at ``62.5j + 30.75``, up to 30 samples = 300 ms late at 100 Hz.) Measured, not
    parsed from the layers, so any architecture works: on a uniform-weight copy of the model
    (:func:`_geometry_copy`) the input gradient of a cell is its receptive field, symmetric about its
    centre; neighbouring cells in the middle of a longer input (whose fields the padding does not
    truncate) give ``S`` and ``o`` exactly, and the same ``S*j + o`` holds for every cell of any input
    length (a cell's window does not depend on what lies to its right). Cached per architecture and
    ``t`` (models of ``xand.models.networks``: by class and layer configuration, so all heads of a run share one
    measurement; other models: on the instance). The first call costs about one forward and backward
    of the model at twice the length.

    Returns
    -------
    centres ``(T',)`` float64 in input samples, stride ``S`` and offset ``o``; when the geometry cannot
    be measured (e.g. a receptive field longer than the search), the equal-tiles centres and None, None.
    """
    n = _n_cells(model, t) if n_cells is None else int(n_cells)
    if type(model).__module__ == "xand.models.networks":  # geometry fully given by the class and its layers' repr
        cache, key = _CAM_CENTRES, (type(model), repr(model), int(t), n)
    else:
        cache, key = model.__dict__.setdefault("_xand_cam_centres", {}), (int(t), n)
    if key in cache:
        return cache[key]
    out = None
    if n > 1:
        try:
            geo = _geometry_copy(model)
            t_long = 2 * t
            while t_long <= max(1 << 17, 2 * t):
                probe = _probe_centres(geo, t_long)
                if probe is not None:
                    first, c = int(probe[0]), probe[1:]
                    d = np.diff(c)
                    if d.min() > 0 and np.ptp(d) < 1e-6 * d.mean():
                        stride = float(np.round(d.mean(), 6))
                        offset = float(np.round(c[0] - stride * first, 6))
                        out = (stride * np.arange(n) + offset, stride, offset)
                    break
                t_long *= 4
        except Exception:  # noqa: BLE001 - a model the probe cannot run: fall back to equal tiles
            out = None
    if out is None:
        out = ((np.arange(n) + 0.5) * t / n - 0.5, None, None)
    if len(cache) > 64:
        cache.clear()
    cache[key] = out
    return out


def upsample_cells(cam: Tensor, centres: np.ndarray, t: int) -> Tensor:
    """Linear interpolation of ``cam (..., T')`` from its cells' input-grid ``centres`` onto samples
    ``0..t-1`` (``np.interp`` semantics: constant beyond the first and last centre)."""
    n = cam.shape[-1]
    if n == 1:
        return cam.expand(*cam.shape[:-1], t)
    c = np.asarray(centres, dtype=np.float64)
    pos = np.arange(t, dtype=np.float64)
    k = np.clip(np.searchsorted(c, pos, side="right") - 1, 0, n - 2)
    w = np.clip((pos - c[k]) / (c[k + 1] - c[k]), 0.0, 1.0)
    lo = torch.as_tensor(k, device=cam.device)
    w_t = torch.as_tensor(w, dtype=cam.dtype, device=cam.device)
    return cam[..., lo] * (1 - w_t) + cam[..., lo + 1] * w_t


@register_method("occlusion")
def _occlusion(model: nn.Module, x: Tensor, target: int, *, window: int = 20, stride: int = 10,
               baseline: float = 0.0, perturbations_per_eval: int = 64) -> tuple:
    from captum.attr import Occlusion

    window = min(window, x.shape[-1])
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=(1, window), strides=(1, stride), baselines=baseline, target=target,
        perturbations_per_eval=perturbations_per_eval)
    return attr, None, {"window": window, "stride": stride, "baseline": baseline}, None


#: Methods that need the ECG's wave segments (``segments=xand.explain.waves.segment_labels(fid, T)``).
NEEDS_SEGMENTS = frozenset({"waves", "waves_template"})


@register_method("waves")
def _waves(model: nn.Module, x: Tensor, target: int, *, segments: np.ndarray | None = None,
           perturbations_per_eval: int = 16) -> tuple:
    """Lead x wave-segment ablation (``xand.explain.waves``): each segment -> the line between its ends."""
    from captum.attr import FeatureAblation

    from xand.explain.waves import feature_mask, run_lines

    if segments is None:
        raise DataError(None, "wave-level attribution without the ECG's segments",
                        "segments = xand.explain.waves.segment_labels(fiducials, T)")
    lab = np.asarray(segments)
    if lab.shape != tuple(x.shape[1:]):
        raise DataError(None, f"segments of shape {lab.shape}", f"the input's shape {tuple(x.shape[1:])}")
    fm = feature_mask(lab)
    base = torch.as_tensor(run_lines(x[0].detach().cpu().numpy(), fm))[None].to(x.device)
    attr = FeatureAblation(model).attribute(x, baselines=base, target=target,
                                            feature_mask=torch.as_tensor(fm)[None].to(x.device),
                                            perturbations_per_eval=perturbations_per_eval)
    return attr, None, {"features": "lead x segment (P, PR, QRS, ST, T, TP)", "removal": "linear"}, None


@register_method("waves_template")
def _waves_template(model: nn.Module, x: Tensor, target: int, *, segments: np.ndarray | None = None,
                    references: Any = None, perturbations_per_eval: int = 16) -> tuple:
    """Lead x wave-segment ablation with an in-distribution removal: each segment -> the same lead's
    normal shape of that segment (``references``: ``xand.explain.waves.WaveTemplates`` from the head's
    training negatives), riding on the line between the segment's ends."""
    from captum.attr import FeatureAblation

    from xand.explain.waves import WaveTemplates, feature_mask, template_fill

    if segments is None:
        raise DataError(None, "wave-level attribution without the ECG's segments",
                        "segments = xand.explain.waves.segment_labels(fiducials, T)")
    if not isinstance(references, WaveTemplates):
        raise DataError(None, "waves_template without normal wave templates",
                        "references = xand.explain.references.wave_template_bank(predictor, data_dir, head)")
    lab = np.asarray(segments)
    if lab.shape != tuple(x.shape[1:]):
        raise DataError(None, f"segments of shape {lab.shape}", f"the input's shape {tuple(x.shape[1:])}")
    if references.shape.shape[0] != x.shape[1]:
        raise DataError(None, f"templates for {references.shape.shape[0]} leads", f"{x.shape[1]} leads")
    fm = feature_mask(lab)
    base = torch.as_tensor(template_fill(x[0].detach().cpu().numpy(), lab, references))[None].to(x.device)
    attr = FeatureAblation(model).attribute(x, baselines=base, target=target,
                                            feature_mask=torch.as_tensor(fm)[None].to(x.device),
                                            perturbations_per_eval=perturbations_per_eval)
    return attr, None, {"features": "lead x segment (P, PR, QRS, ST, T, TP)", "removal": "normal template",
                        "templates_from": int(references.count.max())}, None


def method_kwargs(method: str, segments: np.ndarray | None, references: np.ndarray | None = None) -> dict[str, Any]:
    """The extra arguments ``method`` needs: the ECG's segments for :data:`NEEDS_SEGMENTS`, reference
    ECGs for :data:`NEEDS_REFERENCES`."""
    kw: dict[str, Any] = {}
    if method in NEEDS_SEGMENTS:
        kw["segments"] = segments
    if method in NEEDS_REFERENCES:
        kw["references"] = references
    return kw


# ----------------------------------------------------------------------------------------------- the call

def attribute(model: nn.Module, x: Tensor | np.ndarray, target: int = 0, method: str = "ig",
              **kw: Any) -> Attribution:
    """Attribution map of output ``target``'s logit for one normalised ECG.

    Parameters
    ----------
    model : module ``(B,12,T) -> (B, n_out)`` logits; it is run in eval mode (a training-mode model is
        switched to eval for the call and restored afterwards, see :func:`eval_mode`)
    x : ``(1, 12, T)`` (or ``(12, T)``) normalised input, as the model sees it
    target : output index (``Predictor.target(head)``; 0 for a binary head)
    method : a name in ``ATTRIBUTION_METHODS``
    **kw : method parameters (see the module docstring), e.g. ``n_steps=50`` for ``"ig"``

    Returns
    -------
    Attribution with ``map (12, T)`` float32
    """
    ATTRIBUTION_METHODS.get(method)  # an unknown name lists the valid ones
    x = _as_input(x)
    x = x.to(_device(model, x.device))
    t0 = time.perf_counter()
    with torch.enable_grad(), eval_mode(model):  # the app may call this from a no_grad context
        m, delta, params, note = ATTRIBUTION_METHODS[method](model, x, int(target), **kw)
    amap = _numpy_map(m)
    return Attribution(amap, delta, method, params, time.perf_counter() - t0, note)


def lead_importance(attr_map: np.ndarray) -> np.ndarray:
    """Share of the positive attribution carried by each lead.

    Parameters
    ----------
    attr_map : ``(12, T)`` attribution

    Returns
    -------
    ``(12,)`` float64 summing to 1; all NaN (undefined, never a silent 0) when the map has no positive
    attribution or non-finite values — :func:`lead_importance_reason` says why.
    """
    a = np.asarray(attr_map, dtype=np.float64).reshape(N_LEADS, -1)
    if lead_importance_reason(a) is not None:
        return np.full(N_LEADS, np.nan)
    pos = np.clip(a, 0.0, None).sum(axis=1)
    return pos / pos.sum()


def lead_importance_reason(attr_map: np.ndarray) -> str | None:
    """Why :func:`lead_importance` is undefined for this map, or None when it is defined."""
    a = np.asarray(attr_map, dtype=np.float64)
    if not np.isfinite(a).all():
        return "attribution contains NaN or infinite values"
    if not (a > 0).any():
        return "no positive attribution on any lead"
    return None


def lead_drop(model: nn.Module, x: Tensor | np.ndarray, target: int = 0, temperature: float = 1.0) -> np.ndarray:
    """Change of probability when each lead is zeroed (lead dropping).

    Zero in normalised units is a flat line at the lead's mean (isoelectric). One batched forward of
    13 inputs: the ECG and the ECG with lead ``i`` zeroed, ``i = 0..11``.

    Parameters
    ----------
    model : module, logits ``(B, n_out)``; probabilities are ``sigmoid`` of the logit; run in eval mode
        (restored afterwards): in training mode BatchNorm would normalise the 13 inputs together
    x : ``(1, 12, T)`` normalised input
    target : output index
    temperature : the head's calibration temperature (probabilities ``sigmoid(logit / T)``, the scale the
        viewer shows); 1 for the raw model

    Returns
    -------
    ``(12,)`` float64 ``p(x) - p(x with lead i zeroed)``: positive when the lead supports the prediction.
    """
    x = _as_input(x)
    batch = x.repeat(N_LEADS + 1, 1, 1)
    idx = torch.arange(N_LEADS)
    batch[idx + 1, idx, :] = 0.0
    with torch.no_grad(), eval_mode(model):
        logits = model(batch.to(_device(model, x.device)))[:, target].double().cpu()
    p = torch.sigmoid(logits / float(temperature)).numpy()
    return p[0] - p[1:]
