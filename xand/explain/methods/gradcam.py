"""Grad-CAM (Selvaraju et al., ICCV 2017) on ``model.cam_layer``, upsampled from each cell's measured
receptive-field centre on the input grid (not equal tiles, which would shift the map by up to half a cell)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from xand.constants import N_LEADS
from xand.errors import DataError
from xand.explain.methods.base import register_method


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
