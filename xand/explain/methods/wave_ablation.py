"""Lead x wave-segment ablation (``xand.explain.waves``; Captum FeatureAblation on feature groups): each
segment replaced by the line between its ends (``waves``) or by the lead's normal shape of that segment
from the head's training negatives (``waves_template``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from xand.errors import DataError
from xand.explain.methods.base import register_method


def _segments(segments: np.ndarray | None, x: Tensor) -> np.ndarray:
    """The ECG's ``(12, T)`` segment labels, checked against the input ``x (1, 12, T)``."""
    if segments is None:
        raise DataError(None, "wave-level attribution without the ECG's segments",
                        "segments = xand.explain.waves.segment_labels(fiducials, T)")
    lab = np.asarray(segments)
    if lab.shape != tuple(x.shape[1:]):
        raise DataError(None, f"segments of shape {lab.shape}", f"the input's shape {tuple(x.shape[1:])}")
    return lab


@register_method("waves")
def _waves(model: nn.Module, x: Tensor, target: int, *, segments: np.ndarray | None = None,
           perturbations_per_eval: int = 16) -> tuple:
    """Lead x wave-segment ablation (``xand.explain.waves``): each segment -> the line between its ends."""
    from xand.explain.waves import feature_mask, run_lines

    lab = _segments(segments, x)
    fm = feature_mask(lab)
    base = torch.as_tensor(run_lines(x[0].detach().cpu().numpy(), fm))[None].to(x.device)
    attr = _ablate(model, x, base, target, torch.as_tensor(fm)[None].to(x.device), perturbations_per_eval)
    return attr, None, {"features": "lead x segment (P, PR, QRS, ST, T, TP)", "removal": "linear"}, None


#: Seeds of the null networks: far from the sanity check's (``seed + ecg_id``), so that the network the
#: check randomises is never one of the nulls it is compared against.
NULL_SEED = 1_000_003
_NULLS: "OrderedDict[tuple, list[nn.Module]]" = OrderedDict()
_MAX_ARCHITECTURES = 4


def null_networks(model: nn.Module, x: Tensor, k: int) -> list[nn.Module]:
    """``k`` copies of ``model`` with every layer the forward pass reaches re-initialised (seeds
    ``NULL_SEED + j``; ``xand.models.randomise``): untrained networks of the same architecture, what any
    network would do with the same input. Nothing of the trained weights is left in them, so they are
    cached per architecture (the module tree's repr, parameter names and shapes, input shape, device),
    at most 4. (A layer without its own ``reset_parameters`` is drawn at its trained scale: none in the
    registered models.)"""
    from xand.models.randomise import parameter_blocks, randomised

    # repr: strides, padding and other options that change the function without changing a weight shape
    key = (repr(model), tuple((n, tuple(p.shape)) for n, p in model.named_parameters()),
           tuple(x.shape[1:]), str(x.device), int(k))
    if key not in _NULLS:
        layers = [n for block in parameter_blocks(model, x) for n in block]
        _NULLS[key] = [randomised(model, layers, NULL_SEED + j) for j in range(k)]
        while len(_NULLS) > _MAX_ARCHITECTURES:
            _NULLS.popitem(last=False)
    _NULLS.move_to_end(key)
    return _NULLS[key]


def _ablate(model: nn.Module, x: Tensor, base: Tensor, target: int, fm: Tensor, per_eval: int) -> Tensor:
    from captum.attr import FeatureAblation

    return FeatureAblation(model).attribute(x, baselines=base, target=target, feature_mask=fm,
                                            perturbations_per_eval=per_eval)


@register_method("waves_template")
def _waves_template(model: nn.Module, x: Tensor, target: int, *, segments: np.ndarray | None = None,
                    references: Any = None, normalise: str = "null", n_null: int = 8,
                    perturbations_per_eval: int = 96) -> tuple:
    """Lead x wave-segment ablation with an in-distribution removal: each segment -> the same lead's
    normal shape of that segment (``references``: ``xand.explain.waves.WaveTemplates`` from the head's
    training negatives), riding on the line between the segment's ends.

    ``normalise`` says what each segment's logit drop is read against. Any network that is sensitive to
    its input, an untrained one included, moves most where the input changes most, so the raw drop
    (``"none"``) ranks the most abnormal wave first whatever the weights (the randomisation check
    shows it). ``"null"`` (the default, chosen by that check on the demo heads) divides each drop by
    the mean absolute drop the same removal causes in ``n_null`` untrained networks of the same
    architecture (:func:`null_networks`; floored at 1e-3 of the largest): what is left is how much more
    the trained head depends on the wave than an arbitrary network would. ``"l2"`` divides by the size
    of the change (its L2 norm, floored at the lead's noise), a cheaper proxy that ignores how
    networks weigh smooth and sharp changes.
    """
    from xand.explain.waves import SEGMENTS, WaveTemplates, feature_mask, template_fill

    lab = _segments(segments, x)
    if not isinstance(references, WaveTemplates):
        raise DataError(None, "waves_template without normal wave templates",
                        "references = xand.explain.references.wave_template_bank(predictor, data_dir, head)")
    if normalise not in ("null", "l2", "none"):
        from xand.errors import UnknownNameError

        raise UnknownNameError("waves_template normalisation", normalise, ("null", "l2", "none"))
    if references.shape.shape[0] != x.shape[1]:
        raise DataError(None, f"templates for {references.shape.shape[0]} leads", f"{x.shape[1]} leads")
    fm = feature_mask(lab)
    fm_t = torch.as_tensor(fm)[None].to(x.device)
    x0 = x[0].detach().cpu().numpy()
    base = torch.as_tensor(template_fill(x0, lab, references))[None].to(x.device)
    attr = _ablate(model, x, base, target, fm_t, perturbations_per_eval)
    params: dict[str, Any] = {"features": "lead x segment (P, PR, QRS, ST, T, TP)", "removal": "normal template",
                              "normalise": normalise, "templates_from": int(references.count.max())}
    if normalise == "null":
        nulls = null_networks(model, x, int(n_null))
        ref = torch.stack([_ablate(m, x, base, target, fm_t, perturbations_per_eval).abs() for m in nulls]).mean(0)
        attr = attr / ref.clamp_min(1e-3 * float(ref.max()) + 1e-12)
        params.update(n_null=int(n_null), null_seed=NULL_SEED)
    elif normalise == "l2":
        from xand.explain.removal import noise_level

        delta = (x0 - base[0].detach().cpu().numpy()).astype(np.float64) ** 2
        ids = fm.ravel()
        norm = np.sqrt(np.bincount(ids, weights=delta.ravel(), minlength=int(ids.max()) + 1))
        size = np.bincount(ids, minlength=int(ids.max()) + 1)
        lead_of = np.arange(len(size)) // (len(SEGMENTS) + 1)  # feature id = lead * 7 + segment
        # a change below the lead's noise (or 1 % of a z-scored lead's SD) is no change: not divided up
        floor = np.maximum(noise_level(x0)[lead_of], 0.01) * np.sqrt(np.maximum(size, 1))
        scale = 1.0 / np.maximum(norm, floor)
        attr = attr * torch.as_tensor(scale[fm], dtype=attr.dtype, device=attr.device)[None]
    return attr, None, params, None
