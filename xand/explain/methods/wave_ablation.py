"""Lead x wave-segment ablation (``xand.explain.waves``; Captum FeatureAblation on feature groups): each
segment replaced by the line between its ends (``waves``) or by the lead's normal shape of that segment
from the head's training negatives (``waves_template``)."""

from __future__ import annotations

from typing import Any
import numpy as np
import torch
from torch import Tensor, nn
from xand.errors import DataError
from xand.explain.methods.base import register_method


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
                    references: Any = None, per_unit_change: bool = True, perturbations_per_eval: int = 16) -> tuple:
    """Lead x wave-segment ablation with an in-distribution removal: each segment -> the same lead's
    normal shape of that segment (``references``: ``xand.explain.waves.WaveTemplates`` from the head's
    training negatives), riding on the line between the segment's ends.

    ``per_unit_change``: each segment's logit drop divided by the size of the change that produced it
    (L2 norm over its samples, floored at what the lead's noise alone would give, at least 0.01 input
    units per sample): any network that is
    sensitive to its input, a random one included, moves in proportion to how much the input changed,
    so the raw drop ranks the most abnormal wave first whatever the weights; per unit of change it
    ranks the wave the network is most sensitive to."""
    from captum.attr import FeatureAblation

    from xand.explain.waves import SEGMENTS, WaveTemplates, feature_mask, template_fill

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
    if per_unit_change:
        from xand.explain.removal import noise_level

        x0 = x[0].detach().cpu().numpy()
        delta = (x0 - base[0].detach().cpu().numpy()).astype(np.float64) ** 2
        ids = fm.ravel()
        norm = np.sqrt(np.bincount(ids, weights=delta.ravel(), minlength=int(ids.max()) + 1))
        size = np.bincount(ids, minlength=int(ids.max()) + 1)
        lead_of = np.arange(len(size)) // (len(SEGMENTS) + 1)  # feature id = lead * 7 + segment
        # a change below the lead's noise (or 1 % of a z-scored lead's SD) is no change: not divided up
        floor = np.maximum(noise_level(x0)[lead_of], 0.01) * np.sqrt(np.maximum(size, 1))
        scale = 1.0 / np.maximum(norm, floor)
        attr = attr * torch.as_tensor(scale[fm], dtype=attr.dtype, device=attr.device)[None]
    return attr, None, {"features": "lead x segment (P, PR, QRS, ST, T, TP)", "removal": "normal template",
                        "per_unit_change": bool(per_unit_change),
                        "templates_from": int(references.count.max())}, None
