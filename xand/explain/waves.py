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

The map returned is on samples (every sample carries its feature's value), so CAS, the ATTR strip and
the faithfulness metrics apply unchanged; the Pointing Game is played on the segments (:func:`region_ids`,
``xand.explain.scores.pointing_game``); :func:`wave_table` gives the 12 x 6 table. The normal wave
templates (:class:`WaveTemplates`, :func:`templates_from`, :func:`template_fill`) are the in-distribution
removal of ``waves_template``.

References
----------
Captum FeatureAblation (Kokhlikyan et al. 2020, arXiv:2009.07896). Zeiler M.D., Fergus R., Visualizing and
understanding convolutional networks, ECCV 2014.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.errors import DataError
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


def region_ids(labels: np.ndarray) -> np.ndarray:
    """``(12, T)`` the region of every sample for scoring (:func:`feature_mask`), -1 where no segment
    covers it: those samples are ablated together but are not a wave a cardiologist would point at."""
    return np.where(labels == OTHER, -1, feature_mask(labels))


def run_lines(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``x`` with every run of equal ``groups`` per lead replaced by the straight line between the samples
    just outside it (the removal baseline of each wave, computed on the original signal)."""
    x = np.asarray(x, np.float32)
    out = x.copy()
    for li in range(x.shape[0]):
        for _, a, b in _runs_of(groups[li]):
            out[li, a:b] = _line(x[li], a, b)
    return out


def wave_value_label(params: dict) -> str:
    """What a wave-level map's values are, in words for a chart (from ``Attribution.params``)."""
    normalise = params.get("normalise")
    if normalise == "null":
        return "logit drop / mean drop of untrained networks"
    if normalise == "l2":
        return "logit drop per unit of change (L2)"
    return "logit drop"


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


# ------------------------------------------------------------------------------ normal wave templates

#: Segment kinds that are intervals (their length is the patient's, the template is stretched to it);
#: the others are waves, placed at their onset with the normal duration (a wide QRS becomes a normal one).
INTERVALS = frozenset({"PR", "ST", "TP"})


@dataclass(frozen=True)
class WaveTemplates:
    """The normal shape of every lead x segment, learned from ECGs without the finding.

    ``shape (12, 6, L)``: the mean deviation of the segment from the straight line between its ends, on
    ``L`` points of normalised time (model-input units); ``duration (12, 6)``: its mean length in samples
    of the model grid; ``count (12, 6)``: how many segments were averaged (0: no template, the segment is
    removed by the straight line alone).
    """

    shape: np.ndarray
    duration: np.ndarray
    count: np.ndarray

    def __hash__(self) -> int:  # arrays are not hashable; a bank is one object per (run, dataset, head)
        return id(self)


def _line(row: np.ndarray, a: int, b: int) -> np.ndarray:
    """The straight line between the samples just outside ``row[a:b]`` (an edge continues its neighbour)."""
    t = len(row)
    left = row[a - 1] if a > 0 else row[b] if b < t else row.mean()
    right = row[b] if b < t else left
    return np.linspace(left, right, b - a + 2, dtype=np.float32)[1:-1]


def _runs_of(labels_row: np.ndarray) -> list[tuple[int, int, int]]:
    """``[(kind, start, stop), ...]`` of the runs of equal labels in one lead."""
    cut = np.flatnonzero(np.diff(labels_row)) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [len(labels_row)]])
    return [(int(labels_row[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def templates_from(x: np.ndarray, labels: np.ndarray, n_points: int = 32) -> WaveTemplates:
    """Average normal wave shapes of ``x (K, 12, T)`` (model inputs of ECGs without the finding) cut at
    ``labels (K, 12, T)`` (:func:`segment_labels` of each): every segment's deviation from its end-to-end
    line, resampled to ``n_points`` and averaged per lead x kind."""
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    if x.ndim != 3 or labels.shape != x.shape:
        raise DataError(None, f"templates from x {x.shape} and labels {labels.shape}", "two (K, 12, T) arrays")
    k_seg = len(SEGMENTS)
    total = np.zeros((N_LEADS, k_seg, n_points), np.float64)
    dur = np.zeros((N_LEADS, k_seg), np.float64)
    count = np.zeros((N_LEADS, k_seg), np.int64)
    grid = np.linspace(0.0, 1.0, n_points)
    for ecg, lab in zip(x, labels):
        for li in range(N_LEADS):
            for kind, a, b in _runs_of(lab[li]):
                if kind == OTHER or b - a < 2 or a == 0 or b >= x.shape[-1]:
                    continue  # a segment cut by the record's edge is not a whole wave
                dev = ecg[li, a:b] - _line(ecg[li], a, b)
                total[li, kind] += np.interp(grid, np.linspace(0.0, 1.0, b - a), dev)
                dur[li, kind] += b - a
                count[li, kind] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        shape = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], 0.0)
        duration = np.where(count > 0, dur / np.maximum(count, 1), 0.0)
    return WaveTemplates(shape.astype(np.float32), duration.astype(np.float32), count)


def template_fill(x: np.ndarray, labels: np.ndarray, templates: WaveTemplates) -> np.ndarray:
    """``x (12, T)`` with every segment run replaced by the lead's normal shape of that segment, riding on
    the straight line between the run's ends: waves (P, QRS, T) at their normal duration from their onset
    (the rest of the run straight), intervals (PR, ST, TP) stretched to the run. Runs without a template
    (``count == 0``, "other" samples) get the straight line alone (:func:`run_lines`)."""
    x = np.asarray(x, np.float32)
    out = x.copy()
    for li in range(x.shape[0]):
        for kind, a, b in _runs_of(labels[li]):
            line = _line(x[li], a, b)
            out[li, a:b] = line
            if kind == OTHER or templates.count[li, kind] == 0:
                continue
            n = b - a
            m = n if SEGMENTS[kind] in INTERVALS else max(1, min(n, int(round(templates.duration[li, kind]))))
            shape = templates.shape[li, kind]
            out[li, a:a + m] += np.interp(np.linspace(0.0, 1.0, m), np.linspace(0.0, 1.0, len(shape)), shape)
    return out
