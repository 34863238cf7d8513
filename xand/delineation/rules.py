"""Rules every delineator applies to its marks: the order of a beat's points and a lead's quality flag.

Shared by the delineators of the registry (``xand.delineation.methods``) so that every method drops
the same implausible points and flags leads by the same test; none of them moves or invents a point.
"""

from __future__ import annotations

import numpy as np

from xand.constants import N_LEADS
from xand.errors import DataError
from xand.fiducials import kind_index


def check_ecg(ecg: np.ndarray, fs: float) -> np.ndarray:
    """``ecg`` as ``(12, T)`` float64 mV, or one ``DataError`` (shape, non-finite samples, rate)."""
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != N_LEADS:
        raise DataError(None, f"ECG has shape {x.shape}", "(12, T) mV")
    if not np.isfinite(x).all():
        raise DataError(None, f"ECG holds {int((~np.isfinite(x)).sum())} non-finite samples", "finite mV values")
    if not fs or fs <= 0:
        raise DataError(None, f"sampling rate {fs}", "a positive rate in Hz")
    return x


def enforce_order(row: np.ndarray, next_r: float) -> None:
    """Drop (NaN), in place, the points of one beat's row that contradict the order of a beat
    (P on < P peak < P off <= QRS on; QRS off <= T on < T peak < T off < the next R peak ``next_r``);
    boundaries are dropped before peaks because they are the less reliable estimate."""
    i = kind_index
    for on, pk, off in (("P_on", "P_peak", "P_off"), ("T_on", "T_peak", "T_off")):
        if row[i(on)] >= row[i(pk)]:
            row[i(on)] = np.nan
        if row[i(off)] <= row[i(pk)]:
            row[i(off)] = np.nan
        if row[i(on)] >= row[i(off)]:
            row[i(on)] = row[i(off)] = np.nan
    if row[i("P_off")] > row[i("QRS_on")]:
        row[i("P_off")] = np.nan
    for k in ("P_on", "P_peak"):
        if row[i(k)] >= row[i("QRS_on")]:
            row[i(k)] = np.nan
    if row[i("T_on")] < row[i("QRS_off")]:
        row[i("T_on")] = np.nan
    for k in ("T_peak", "T_off"):
        if row[i(k)] <= row[i("QRS_off")] or row[i(k)] >= next_r:
            row[i(k)] = np.nan
    if row[i("T_on")] >= next_r:
        row[i("T_on")] = np.nan


def lead_quality(rows: np.ndarray, fs: float, min_beats: int = 2) -> bool:
    """Whether one lead's ``(n_beats, n_kinds)`` marks are usable: QRS onset and offset on at least
    ``min_beats`` and half the beats, a median QRS of 40-200 ms and, where T offsets exist, a median QT
    of 200-700 ms (outside these the marks are almost surely wrong, whatever the pathology)."""
    on, off = rows[:, kind_index("QRS_on")], rows[:, kind_index("QRS_off")]
    ok = np.isfinite(on) & np.isfinite(off)
    if ok.sum() < max(min_beats, 0.5 * len(rows)):
        return False
    qrs_ms = np.median(off[ok] - on[ok]) * 1000 / fs
    if not 40 <= qrs_ms <= 200:
        return False
    t_off = rows[:, kind_index("T_off")]
    okt = np.isfinite(on) & np.isfinite(t_off)
    if okt.sum() >= min_beats:
        qt_ms = np.median(t_off[okt] - on[okt]) * 1000 / fs
        if not 200 <= qt_ms <= 700:
            return False
    return True
