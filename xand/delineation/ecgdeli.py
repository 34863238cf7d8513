"""ECGdeli delineation (the algorithm behind PTB-XL+'s fiducials) as a registry delineator.

Wraps the ``ecgdeli`` package (a validated Python port of KIT-IBT's ECGdeli MATLAB toolbox; Pilia N.
et al., "ECGdeli - An open source ECG delineation toolbox for MATLAB", SoftwareX 13:100639, 2021):
its standard filter chain (band-pass 1-40 Hz, notch, isoline correction), then its multi-lead
annotation. ``marks="lead"`` keeps every lead's own points, ``"consensus"`` gives every lead the
beat's cross-lead consensus (the median over the leads that saw it, as PTB-XL+ publishes).
Points on the first or last sample (a wave cut by the record's edge) and points out of a beat's order
are dropped, never moved.
"""

from __future__ import annotations

import warnings

import numpy as np

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.delineation.rules import check_ecg, enforce_order, lead_quality
from xand.errors import UnknownNameError
from xand.fiducials import Fiducials, kind_index

MARKS: tuple[str, ...] = ("lead", "consensus")


def _clean_rows(rows: np.ndarray, n: int) -> np.ndarray:
    rows = rows.copy()
    rows[(rows <= 0) | (rows >= n - 1)] = np.nan
    r = rows[:, kind_index("R_peak")]
    next_r = np.r_[r[1:], np.inf]
    next_r[~np.isfinite(next_r)] = np.inf
    for row, nr in zip(rows, next_r):
        enforce_order(row, nr)
    # a beat without a QRS is no beat: drop its other points rather than keep P/T waves of nothing
    no_qrs = ~(np.isfinite(rows[:, kind_index("QRS_on")]) & np.isfinite(rows[:, kind_index("QRS_off")]))
    rows[no_qrs] = np.nan
    return rows


def delineate_ecgdeli(ecg: np.ndarray, fs: float, marks: str = "lead") -> Fiducials:
    """Fiducials of a 12-lead ECG by ECGdeli.

    Parameters
    ----------
    ecg : ``(12, T)`` mV, LEADS order
    fs : sampling rate, Hz (ECGdeli is tuned for 500 Hz and above; at 100 Hz the notch is skipped
        and the band-pass top lowered below Nyquist)
    marks : ``"lead"`` (each lead's own points) or ``"consensus"`` (the cross-lead consensus on every lead)

    Returns
    -------
    Fiducials at ``fs`` (``source="ecgdeli"``); beat ``k`` is the same heartbeat on every lead (ECGdeli
    aligns the leads' rows to its consensus); a lead that missed a beat keeps NaN there.
    """
    if marks not in MARKS:
        raise UnknownNameError("ECGdeli marks", marks, MARKS)
    x = check_ecg(ecg, fs)
    n = x.shape[1]
    if n < int(2 * fs):
        return Fiducials.empty(fs, n, "ecgdeli")
    import ecgdeli

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            filtered = ecgdeli.filter_ecg(x.T, fs, high=min(40.0, 0.45 * fs),
                                          notch=50.0 if fs > 110 else None)
            ann = ecgdeli.annotate(filtered, fs)
    except Exception:  # ECGdeli raises on degenerate input (flat, too few beats): no beat found
        return Fiducials.empty(fs, n, "ecgdeli")
    k = len(FIDUCIAL_KINDS)
    cons = np.asarray(ann.consensus.samples, dtype=np.float64)[:, :k]
    per_lead = []
    for i in range(N_LEADS):
        rows = cons if marks == "consensus" else np.asarray(ann.leads[i].samples, dtype=np.float64)[:, :k]
        per_lead.append(_clean_rows(rows, n))
    quality = np.array([lead_quality(b, fs) if len(b) else False for b in per_lead])
    return Fiducials(fs, n, per_lead, quality, "ecgdeli")
