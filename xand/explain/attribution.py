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
from typing import Any
import numpy as np
import torch
from torch import Tensor, nn
from xand.constants import N_LEADS
from xand.explain import methods as _methods  # noqa: F401 - registers every method
from xand.explain.methods.base import (  # noqa: F401 - re-exported: the public names of attribution
    ATTRIBUTION_METHODS, BASELINES, NEEDS_REFERENCES, NEEDS_SEGMENTS, Attribution, IGConfig, as_input, eval_mode,
    gradient_model, make_baseline, model_device, numpy_map, register_baseline, register_method)
from xand.explain.methods.gradcam import cam_cell_centres, upsample_cells  # noqa: F401 - re-exported


def method_kwargs(method: str, segments: np.ndarray | None, references: np.ndarray | None = None) -> dict[str, Any]:
    """The extra arguments ``method`` needs: the ECG's segments for :data:`NEEDS_SEGMENTS`, reference
    ECGs for :data:`NEEDS_REFERENCES`."""
    kw: dict[str, Any] = {}
    if method in NEEDS_SEGMENTS:
        kw["segments"] = segments
    if method in NEEDS_REFERENCES:
        kw["references"] = references
    return kw


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
    x = as_input(x)
    x = x.to(model_device(model, x.device))
    t0 = time.perf_counter()
    with torch.enable_grad(), eval_mode(model):  # the app may call this from a no_grad context
        m, delta, params, note = ATTRIBUTION_METHODS[method](model, x, int(target), **kw)
    amap = numpy_map(m)
    features = None
    if method in NEEDS_SEGMENTS:  # a region-level map: scored on its regions
        from xand.explain.waves import region_ids

        features = region_ids(np.asarray(kw["segments"]))
    return Attribution(amap, delta, method, params, time.perf_counter() - t0, note, features)


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
    x = as_input(x)
    batch = x.repeat(N_LEADS + 1, 1, 1)
    idx = torch.arange(N_LEADS)
    batch[idx + 1, idx, :] = 0.0
    with torch.no_grad(), eval_mode(model):
        logits = model(batch.to(model_device(model, x.device)))[:, target].double().cpu()
    p = torch.sigmoid(logits / float(temperature)).numpy()
    return p[0] - p[1:]
