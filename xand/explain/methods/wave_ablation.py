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
