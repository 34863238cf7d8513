"""Clinical masks: where, per lead and per beat, each pathology head's ECG evidence lies.

One table (``MASK_TABLE``) maps a head to intervals between fiducial marks. The regions follow the
diagnostic criteria of the ECG statements behind each PTB-XL superclass:

* MI - pathological Q waves, QS complexes and lost or abnormal R waves, and ST-T changes (Thygesen et
  al. 2018, Fourth Universal Definition of Myocardial Infarction, Circulation 138:e618): the whole QRS
  (its Q/R/QS criteria span the complex, not only the Q wave), the ST segment and the T wave.
* STTC - ST deviation and T-wave changes (Rautaharju et al. 2009, AHA/ACCF/HRS recommendations part IV,
  Circulation 119:e241): J point to T offset.
* CD - conduction disturbances widen or reshape the QRS (Surawicz et al. 2009, part III, Circulation
  119:e235): QRS onset to offset.
* HYP - QRS voltage criteria and the ST-T "strain" pattern (Hancock et al. 2009, part V, Circulation
  119:e251): the QRS and J point to T offset.

A mark a source did not deliver may be derived from other marks of the same beat (``FALLBACKS``); a
beat without the marks an interval needs contributes nothing to it, so no region is ever invented from
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from xand.constants import FIDUCIAL_KINDS, HEADS, N_LEADS, lead_index
from xand.errors import UnknownNameError
from xand.fiducials import Fiducials, kind_index

@dataclass(frozen=True)
class MaskInterval:
    """One region of a head's mask: from mark ``start`` to mark ``end`` (inclusive) of each beat.

    Marks are FIDUCIAL_KINDS (a missing one may be derived, see ``FALLBACKS``).
    """

    label: str
    start: str
    end: str


#: head -> intervals (the single definition of the clinical masks; rendered in the README).
MASK_TABLE: dict[str, tuple[MaskInterval, ...]] = {
    "MI": (
        MaskInterval("QRS (Q wave, QS, R loss)", "QRS_on", "QRS_off"),
        MaskInterval("ST segment", "J", "T_on"),
        MaskInterval("T wave", "T_on", "T_off"),
    ),
    "STTC": (MaskInterval("ST-T", "J", "T_off"),),
    "CD": (MaskInterval("QRS", "QRS_on", "QRS_off"),),
    "HYP": (
        MaskInterval("QRS voltage", "QRS_on", "QRS_off"),
        MaskInterval("ST-T strain", "J", "T_off"),
    ),
}


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2.0


#: mark -> (rule text, rule) used when the mark itself is missing; a rule returns NaN when its own
#: inputs are missing in that beat.
FALLBACKS: dict[str, tuple[str, Callable[[Callable[[str], np.ndarray], float], np.ndarray]]] = {
    "J": ("J := QRS_off (the J point is the end of the QRS complex)",
          lambda get, fs: get("QRS_off")),
    "QRS_off": ("QRS_off := J", lambda get, fs: get("J")),
    "T_on": ("T_on := midpoint of J and T_peak", lambda get, fs: _mid(get("J"), get("T_peak"))),
}


def resolve_marks(beats: np.ndarray, fs: float) -> dict[str, np.ndarray]:
    """Every mark a mask may use, per beat, for one lead's ``(n_beats, len(FIDUCIAL_KINDS))`` array:
    the measured value, else its fallback (computed from measured values of the same beat only)."""
    measured = {k: beats[:, kind_index(k)].astype(float) for k in FIDUCIAL_KINDS}
    resolved: dict[str, np.ndarray] = {}

    def get_measured(k: str) -> np.ndarray:
        return measured.get(k, np.full(len(beats), np.nan))

    # Fallback rules read measured marks (and J/QRS_off read each other's measured value), so a
    # chain can never build a mark from another fallback.
    for k in FIDUCIAL_KINDS:
        val = get_measured(k).copy()
        if k in FALLBACKS:
            fb = FALLBACKS[k][1](lambda name: _with_fallback(measured, name), fs)
            val = np.where(np.isfinite(val), val, fb)
        resolved[k] = val
    return resolved


def _with_fallback(measured: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A measured mark, or for J/QRS_off its one-step twin (J and QRS_off are the same instant)."""
    n = len(next(iter(measured.values())))
    val = measured.get(name, np.full(n, np.nan))
    twin = {"J": "QRS_off", "QRS_off": "J"}.get(name)
    if twin is not None:
        val = np.where(np.isfinite(val), val, measured[twin])
    return val


def _lead_rows(leads) -> list[int]:
    if leads is None:
        return list(range(N_LEADS))
    return [lead_index(x) if isinstance(x, str) else int(x) for x in leads]


def mask_regions(fiducials: Fiducials, head: str, leads=None,
                 require_quality: bool = True) -> list[tuple[int, int, str, int, int]]:
    """The regions of ``head``'s mask: ``(lead, beat, label, start, end)`` in samples of the
    fiducials' grid, ``end`` inclusive. Leads with quality False are skipped when ``require_quality``."""
    if head not in MASK_TABLE:
        raise UnknownNameError("head", head, tuple(MASK_TABLE))
    out = []
    for li in _lead_rows(leads):
        beats = fiducials.beats[li]
        if len(beats) == 0 or (require_quality and not fiducials.quality[li]):
            continue
        marks = resolve_marks(beats, fiducials.fs)
        for iv in MASK_TABLE[head]:
            s, e = marks[iv.start], marks[iv.end]
            for b in np.where(np.isfinite(s) & np.isfinite(e) & (e >= s))[0]:
                out.append((li, int(b), iv.label, int(np.round(s[b])), int(np.round(e[b]))))
    return out


def clinical_mask(fiducials: Fiducials, head: str, n_samples: int | None = None, leads=None,
                  fs: float | None = None, require_quality: bool = True) -> np.ndarray:
    """Boolean mask ``(12, T)`` of where ``head``'s evidence lies, per lead and per beat.

    Parameters
    ----------
    fiducials : Fiducials of the ECG
    head : one of ``MASK_TABLE`` (``HEADS``)
    n_samples : mask length T (default: ``fiducials.n_samples`` on the target grid)
    leads : restrict to these leads (names or indices); the others stay False
    fs : grid of the mask (default: the fiducials' rate); positions are rescaled, not rounded first
    require_quality : leave leads with quality False empty

    Returns
    -------
    ``(12, T)`` bool; all False when there is no beat (never a guessed region).
    """
    if fs is not None and fs != fiducials.fs:
        fiducials = fiducials.resample(fs)
    T = int(fiducials.n_samples if n_samples is None else n_samples)
    mask = np.zeros((N_LEADS, T), dtype=bool)
    for li, _, _, s, e in mask_regions(fiducials, head, leads, require_quality):
        s, e = max(s, 0), min(e, T - 1)
        if e >= s:
            mask[li, s:e + 1] = True
    return mask


def mask_intervals(mask_row: np.ndarray) -> list[tuple[int, int]]:
    """Merged runs of True in one lead's mask as half-open ``(start, end)`` sample pairs (for drawing
    rectangles)."""
    m = np.asarray(mask_row, dtype=bool).astype(np.int8)
    d = np.diff(np.r_[0, m, 0])
    return list(zip(np.where(d == 1)[0].tolist(), np.where(d == -1)[0].tolist()))


def coverage(mask: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Fraction of True samples (the chance level of a pointing or mass score); per lead with
    ``axis=-1``. An empty array gives NaN."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return float("nan")
    val = m.mean(axis=axis)
    return float(val) if axis is None else val


def mask_table_markdown() -> str:
    """``MASK_TABLE`` and ``FALLBACKS`` as markdown (the README's table is generated from this)."""
    lines = ["| head | region | from | to |", "| --- | --- | --- | --- |"]
    for head, ivs in MASK_TABLE.items():
        for iv in ivs:
            lines.append(f"| {head} | {iv.label} | {iv.start} | {iv.end} |")
    lines += ["", "Fallbacks when a mark is missing in a beat (from marks of the same beat only):", ""]
    lines += [f"- {text}" for text, _ in FALLBACKS.values()]
    return "\n".join(lines)


assert set(MASK_TABLE) == set(HEADS), "every head needs a mask definition"
__all__ = [
    "FALLBACKS", "MASK_TABLE", "MaskInterval", "clinical_mask", "coverage",
    "mask_intervals", "mask_regions", "mask_table_markdown", "resolve_marks",
]
