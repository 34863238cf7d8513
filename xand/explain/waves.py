"""Wave-level attribution: one feature per lead x wave segment, what a cardiologist reads ("the ST
segments of V2-V4 carry the MI decision").

Every lead is cut at its own fiducial points into the segments P (P on -> P off), PR (P off -> QRS on),
QRS (QRS on -> QRS off), ST (J = QRS off -> T on), T (T on -> T off) and TP (T off -> the next beat's P on,
or QRS on without a P wave). A feature is one segment kind on one lead, all beats together: 12 x 6 = 72
features (Captum feature groups, ``feature_mask``). Its attribution is the drop of the head's logit when
that segment is taken away on every beat of the lead (``captum.attr.FeatureAblation``; Zeiler & Fergus
2014 style occlusion, on anatomical instead of square patches), with the ECG-appropriate removal of
``xand.explain.removal``: each run replaced by the straight line between its own ends, never zeros.
Samples that no segment covers (before the first mark, a wave the delineation did not find) are one
extra feature per lead, ablated too but reported apart (``segment = "other"``).

The map returned is on samples (every sample carries its feature's value), so the Pointing Game, CAS,
the ATTR strip and the faithfulness metrics apply unchanged; :func:`wave_table` gives the 12 x 6 table.

References
----------
Captum FeatureAblation (Kokhlikyan et al. 2020, arXiv:2009.07896). Zeiler M.D., Fergus R., Visualizing and
understanding convolutional networks, ECCV 2014.
"""

from __future__ import annotations

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.fiducials import Fiducials

SEGMENTS: tuple[str, ...] = ("P", "PR", "QRS", "ST", "T", "TP")
#: (segment, start mark, end mark); TP ends at the next beat's P on (or QRS on).
_BOUNDS = (("P", "P_on", "P_off"), ("PR", "P_off", "QRS_on"), ("QRS", "QRS_on", "QRS_off"),
           ("ST", "QRS_off", "T_on"), ("T", "T_on", "T_off"))
OTHER = len(SEGMENTS)  # segment index of samples outside every segment


def segment_labels(fid: Fiducials, n_samples: int) -> np.ndarray:
    """``(12, T)`` int: the segment index (0..5, :data:`SEGMENTS`) of every sample, :data:`OTHER` where no
    segment covers it. Uses only marks of the same beat (and the next beat's onset for TP); a segment
    whose marks are missing or out of order is left to OTHER, never guessed."""
    lab = np.full((N_LEADS, int(n_samples)), OTHER, dtype=np.int64)
    for li in range(N_LEADS):
        b = fid.beats[li]
        if b.size == 0 or not fid.quality[li]:
            continue
        col = {k: fid.kind(k)[li] for k in ("P_on", "P_off", "QRS_on", "QRS_off", "T_on", "T_off")}
        n_beats = len(b)
        for i in range(n_beats):
            spans = [(k, col[s][i], col[e][i]) for k, s, e in _BOUNDS]
            if i + 1 < n_beats:
                nxt = col["P_on"][i + 1] if np.isfinite(col["P_on"][i + 1]) else col["QRS_on"][i + 1]
                spans.append(("TP", col["T_off"][i], nxt))
            for k, s, e in spans:
                if not (np.isfinite(s) and np.isfinite(e)) or e <= s:
                    continue
                a, z = int(round(s)), int(round(e))
                a, z = max(a, 0), min(z, int(n_samples))
                if z > a:
                    lab[li, a:z] = SEGMENTS.index(k)
    return lab


def feature_mask(labels: np.ndarray) -> np.ndarray:
    """``(12, T)`` Captum feature ids: ``lead * 7 + segment`` (72 wave features + 12 "other")."""
    return np.arange(N_LEADS)[:, None] * (len(SEGMENTS) + 1) + labels


def run_lines(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``x`` with every run of equal ``groups`` per lead replaced by the straight line between the samples
    just outside it (the removal baseline of each wave, computed on the original signal)."""
    x = np.asarray(x, np.float32)
    out = x.copy()
    t = x.shape[1]
    for li in range(x.shape[0]):
        g = groups[li]
        cut = np.flatnonzero(np.diff(g)) + 1
        starts = np.concatenate([[0], cut])
        stops = np.concatenate([cut, [t]])
        for a, b in zip(starts, stops):
            left = x[li, a - 1] if a > 0 else x[li, b] if b < t else x[li].mean()
            right = x[li, b] if b < t else left
            out[li, a:b] = np.linspace(left, right, b - a + 2, dtype=np.float32)[1:-1]
    return out


def wave_table(attr_map: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(12, 6)`` the attribution of each lead x segment (the value its samples carry; NaN where the lead
    has no such segment)."""
    out = np.full((N_LEADS, len(SEGMENTS)), np.nan)
    for li in range(N_LEADS):
        for k in range(len(SEGMENTS)):
            sel = labels[li] == k
            if sel.any():
                out[li, k] = float(np.asarray(attr_map)[li, sel].mean())
    return out


def top_wave(attr_map: np.ndarray, labels: np.ndarray) -> tuple[str, str] | None:
    """(lead, segment) of the largest wave attribution, None when there is no segment."""
    t = wave_table(attr_map, labels)
    if np.isnan(t).all():
        return None
    li, k = np.unravel_index(np.nanargmax(t), t.shape)
    return LEADS[li], SEGMENTS[k]
