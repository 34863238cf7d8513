"""12-lead delineation with NeuroKit2: R peaks once per ECG on a lead combination, then P/QRS/T per lead.

R peaks are detected once on a signal that combines the leads (so a noisy or flat lead cannot create or
hide a beat), then every lead is delineated around those beats: P and T waves with
``neurokit2.ecg_delineate`` (NeuroKit2: Makowski et al. 2021, Behavior Research Methods 53:1689; its
"prominence" delineator, Emrich et al. 2024, EUSIPCO, measured better on LUDB than the wavelet one of
Martinez et al. 2004, IEEE TBME 51:570, which stays selectable), QRS onset and offset by slope
thresholds (Laguna et al. 1994, Comput Biomed Res 27:45). Each beat's marks are then combined over the
leads that found the wave (multi-lead rule, robust to one lead's error). Points that fall outside
physiological windows around their beat are dropped (NaN), never moved or guessed, and a lead that did
not find a wave never receives one. Scoring against a reference is ``xand.delineation.validation``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.errors import DataError, UnknownNameError
from xand.delineation.rules import enforce_order, lead_quality
from xand.fiducials import Fiducials, kind_index

#: Bumped whenever the algorithm changes, so stale cache entries are not reused.
ALGORITHM_VERSION = "3"

#: NeuroKit2 delineation methods that may be configured (``nk.ecg_delineate(method=...)``).
NK_METHODS: tuple[str, ...] = ("dwt", "cwt", "peak", "prominence")

#: How per-lead marks are combined across leads (see ``DelineationConfig.multilead``).
MULTILEAD_RULES: tuple[str, ...] = ("median", "reject", "none")

#: Marks harmonised across leads; R, Q and S peaks stay lead-specific (they are morphology).
MULTILEAD_KINDS: tuple[str, ...] = ("P_on", "P_peak", "P_off", "QRS_on", "QRS_off", "T_on", "T_peak", "T_off")

#: A beat's QRS envelope peak must exceed this multiple of the envelope's median (the level between
#: QRS complexes); band-passed noise peaks stay around 2-3x, QRS complexes are far above.
QRS_TO_BASELINE = 4.0

#: Fiducial kinds scored against a reference.
SCORED_KINDS: tuple[str, ...] = (
    "P_on", "P_peak", "P_off", "QRS_on", "R_peak", "QRS_off", "T_on", "T_peak", "T_off",
)

#: CSE Working Party tolerances for the SD of the delineation error (2 sigma, ms), as tabulated by
#: Martinez et al. 2004 (Table II; CSE Working Party, "Recommendations for measurement standards in
#: quantitative electrocardiography", Eur Heart J 6:815, 1985).
CSE_TOLERANCE_MS: dict[str, float] = {
    "P_on": 10.2, "P_off": 12.7, "QRS_on": 6.5, "QRS_off": 11.6, "T_off": 30.6,
}

# nk.ecg_delineate key -> fiducial kind
_NK_KEYS: dict[str, str] = {
    "ECG_P_Onsets": "P_on", "ECG_P_Peaks": "P_peak", "ECG_P_Offsets": "P_off",
    "ECG_R_Onsets": "QRS_on", "ECG_Q_Peaks": "Q_peak", "ECG_S_Peaks": "S_peak",
    "ECG_R_Offsets": "QRS_off",
    "ECG_T_Onsets": "T_on", "ECG_T_Peaks": "T_peak", "ECG_T_Offsets": "T_off",
}

#: Where each kind may lie relative to its beat's R peak (ms): a point outside is dropped.
#: Wide enough for a PR of 400 ms, a QRS of 200 ms and a QT of 700 ms.
PLAUSIBLE_WINDOW_MS: dict[str, tuple[float, float]] = {
    "P_on": (-500, -40), "P_peak": (-450, -20), "P_off": (-400, 0),
    "QRS_on": (-160, 0), "Q_peak": (-120, 0), "S_peak": (0, 160), "QRS_off": (0, 220),
    "T_on": (40, 600), "T_peak": (80, 700), "T_off": (120, 800),
}


@dataclass
class DelineationConfig:
    """How ``delineate`` works (serialisable with ``dataclasses.asdict``).

    Attributes
    ----------
    method : NeuroKit2 delineator for P and T waves (and the QRS when ``qrs_bounds="neurokit"``), one
        of ``NK_METHODS``; "prominence" (Emrich et al. 2024) measured best on LUDB (see README)
    rpeaks : lead combination for the single R-peak detection, a key of ``RPEAK_DETECTORS``
    qrs_bounds : ``"slope"`` (slope-threshold QRS onset/offset, Laguna et al. 1994) or ``"neurokit"``
        (those of ``method``)
    multilead : ``"median"`` sets each P/T mark of a beat to the median over the leads that found that
        wave (QRS onset/offset: the ``qrs_percentiles``), ``"reject"`` keeps a lead's own mark only
        within ``reject_ms`` of that median, ``"none"`` keeps every lead's own marks. A lead that did
        not find a wave never receives one.
    qrs_slope : ``(k_first, k_edge)`` thresholds of ``qrs_bounds_slope`` (fractions of the largest slope)
    qrs_percentiles : percentiles over leads for the multi-lead QRS onset and offset (early onset, late
        offset, as the multi-lead CSE convention takes the earliest onset and latest offset)
    reject_ms : distance to the multi-lead median beyond which ``"reject"`` drops a lead's mark
    max_pr_spread_ms : P waves are dropped from the whole ECG when the PR interval (P peak to beat)
        varies more than this (robust 2 sigma, 2 x 1.4826 x MAD over beats): conducted sinus P waves
        keep a constant PR, so a varying PR means the "P waves" are fibrillation/flutter waves or
        noise. None disables the rule (it also drops the P waves of AV dissociation, e.g. third-degree
        AV block). Needs at least 3 beats with a P wave.
    polarity : ``"auto"`` delineates a lead whose QRS is mainly negative on the inverted signal (the
        NeuroKit rules look for an upward R), ``"positive"`` never inverts (better for P and T)
    refine_ms : each lead's R anchor is its own QRS extremum within this distance of the shared beat
    min_rr_ms : refractory period between beats
    flat_mv : a lead whose 1-99 percentile range (after cleaning) is below this is flat
    min_beats : fewer delineated QRS (onset and offset) on a lead -> quality False
    """

    method: str = "prominence"
    rpeaks: str = "abs_derivative"
    qrs_bounds: str = "slope"
    multilead: str = "median"
    qrs_slope: tuple[float, float] = (0.5, 0.1)
    qrs_percentiles: tuple[float, float] = (30.0, 70.0)
    reject_ms: float = 20.0
    max_pr_spread_ms: float | None = 80.0
    polarity: str = "positive"
    refine_ms: float = 60.0
    min_rr_ms: float = 250.0
    flat_mv: float = 0.03
    min_beats: int = 2

    def validate(self) -> None:
        if self.method not in NK_METHODS:
            raise UnknownNameError("delineation method", self.method, NK_METHODS)
        if self.rpeaks not in RPEAK_DETECTORS:
            raise UnknownNameError("R-peak lead combination", self.rpeaks, tuple(RPEAK_DETECTORS))
        if self.polarity not in ("auto", "positive"):
            raise UnknownNameError("polarity", self.polarity, ("auto", "positive"))
        if self.qrs_bounds not in ("slope", "neurokit"):
            raise UnknownNameError("QRS boundary method", self.qrs_bounds, ("slope", "neurokit"))
        if self.multilead not in MULTILEAD_RULES:
            raise UnknownNameError("multi-lead rule", self.multilead, MULTILEAD_RULES)


# --------------------------------------------------------------------------------------------------
# R peaks on a lead combination
# --------------------------------------------------------------------------------------------------

def _bandpass(x: np.ndarray, fs: float, lo: float, hi: float, order: int = 2) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    hi = min(hi, 0.45 * fs)
    sos = butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x, axis=-1)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    n = max(1, int(n))
    return np.convolve(x, np.ones(n) / n, mode="same")


def _pick_beats(env: np.ndarray, fs: float, min_rr_ms: float) -> np.ndarray:
    """Peaks of a non-negative QRS envelope: refractory distance, then a threshold relative to the
    typical beat height (robust to one large artefact, unlike a fraction of the maximum). A QRS must
    stand out of the envelope's median level (``QRS_TO_BASELINE``), so noise alone yields no beat."""
    from scipy.signal import find_peaks

    if not np.any(env > 0):
        return np.empty(0, dtype=int)
    ref = np.percentile(env, 99)
    floor = QRS_TO_BASELINE * np.median(env)
    peaks, props = find_peaks(env, height=max(0.2 * ref, floor),
                              distance=max(1, int(min_rr_ms * fs / 1000)))
    if len(peaks) == 0:
        return peaks
    keep = props["peak_heights"] >= 0.35 * np.median(np.sort(props["peak_heights"])[-max(1, len(peaks) // 2):])
    return peaks[keep]


def _envelope_abs_derivative(ecg: np.ndarray, fs: float) -> np.ndarray:
    y = _bandpass(ecg, fs, 5.0, 30.0)
    d = np.abs(np.diff(y, axis=1, prepend=y[:, :1]))
    scale = np.percentile(d, 99, axis=1, keepdims=True)
    d = d / np.where(scale > 0, scale, 1.0)
    return _smooth(d.sum(0), 0.06 * fs)


def _envelope_vector_magnitude(ecg: np.ndarray, fs: float) -> np.ndarray:
    y = _bandpass(ecg, fs, 5.0, 30.0)
    return _smooth(np.sqrt((y ** 2).sum(0)), 0.04 * fs)


def rpeaks_abs_derivative(ecg: np.ndarray, fs: float, cfg: DelineationConfig) -> np.ndarray:
    """Sum over leads of the absolute band-passed (5-30 Hz) derivative, each lead scaled by its 99th
    percentile so no lead dominates; beats are the peaks of its 60 ms moving average (a multi-lead
    variant of the Pan & Tompkins 1985 energy envelope)."""
    return _pick_beats(_envelope_abs_derivative(ecg, fs), fs, cfg.min_rr_ms)


def rpeaks_vector_magnitude(ecg: np.ndarray, fs: float, cfg: DelineationConfig) -> np.ndarray:
    """Spatial magnitude of the band-passed leads (cf. the vectorcardiographic QRS detector of
    Sornmo & Laguna 2005, Bioelectrical Signal Processing, ch. 7)."""
    return _pick_beats(_envelope_vector_magnitude(ecg, fs), fs, cfg.min_rr_ms)


def rpeaks_vote(ecg: np.ndarray, fs: float, cfg: DelineationConfig) -> np.ndarray:
    """NeuroKit2's detector on every lead; a beat is kept when at least half of the leads found it
    within 80 ms (position: median of the votes)."""
    import neurokit2 as nk

    found = []
    for x in ecg:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, info = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=int(fs)), sampling_rate=int(fs))
            found.append(np.asarray(info["ECG_R_Peaks"], dtype=int))
        except Exception:  # nk raises on degenerate leads; such a lead simply casts no vote
            continue
    if not found:
        return np.empty(0, dtype=int)
    allp = np.sort(np.concatenate(found))
    groups, cur = [], [allp[0]] if len(allp) else []
    for p in allp[1:]:
        if p - cur[0] <= 0.08 * fs:
            cur.append(p)
        else:
            groups.append(cur)
            cur = [p]
    if cur:
        groups.append(cur)
    need = max(1, int(np.ceil(0.5 * len(ecg))))
    return np.array([int(np.median(g)) for g in groups if len(g) >= need], dtype=int)


#: Lead combinations for the single R-peak detection: name -> ``f(ecg (L, T) mV, fs, cfg) -> samples``.
RPEAK_DETECTORS: dict[str, Callable[[np.ndarray, float, DelineationConfig], np.ndarray]] = {
    "abs_derivative": rpeaks_abs_derivative,
    "vector_magnitude": rpeaks_vector_magnitude,
    "vote": rpeaks_vote,
}


def detect_rpeaks(ecg: np.ndarray, fs: float, cfg: DelineationConfig | None = None,
                  leads: np.ndarray | None = None) -> np.ndarray:
    """Beat positions (samples) found once on a combination of ``leads`` (default: all) of
    ``ecg (12, T) mV``."""
    cfg = cfg or DelineationConfig()
    cfg.validate()
    use = np.arange(ecg.shape[0]) if leads is None else np.asarray(leads)
    if len(use) == 0 or ecg.shape[1] < int(0.5 * fs):
        return np.empty(0, dtype=int)
    return np.asarray(RPEAK_DETECTORS[cfg.rpeaks](ecg[use].astype(np.float64), fs, cfg), dtype=int)


# --------------------------------------------------------------------------------------------------
# Per-lead delineation
# --------------------------------------------------------------------------------------------------

def _clean(x: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    return np.asarray(nk.ecg_clean(x, sampling_rate=int(round(fs)), method="neurokit"), dtype=np.float64)


def _is_flat(clean: np.ndarray, cfg: DelineationConfig) -> bool:
    lo, hi = np.percentile(clean, [1, 99])
    return bool(hi - lo < cfg.flat_mv)


def _anchors(clean: np.ndarray, beats: np.ndarray, fs: float, refine_ms: float,
             polarity: str) -> tuple[np.ndarray, int]:
    """This lead's R anchor per beat (its QRS maximum, or with ``polarity="auto"`` its dominant
    extremum, near the shared beat) and the lead's sign."""
    w = int(refine_ms * fs / 1000)
    segs = [(max(0, b - w), min(len(clean), b + w + 1)) for b in beats]
    base = np.median(clean)
    pos = np.array([clean[a:e].max() - base for a, e in segs])
    neg = np.array([base - clean[a:e].min() for a, e in segs])
    sign = -1 if (polarity == "auto" and np.median(neg) > 1.2 * np.median(pos)) else 1
    anchors = np.array([a + int(np.argmax(sign * clean[a:e])) for a, e in segs], dtype=int)
    return anchors, sign


def _assign(values: list, anchors: np.ndarray, kind: str, fs: float) -> np.ndarray:
    """Per-beat positions of one kind from NeuroKit2's list (aligned with the beats when the lengths
    agree; NeuroKit drops non-positive entries, so otherwise each point goes to the beat whose window
    contains it)."""
    out = np.full(len(anchors), np.nan)
    lo, hi = (np.array(PLAUSIBLE_WINDOW_MS[kind]) * fs / 1000.0)
    vals = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    if len(vals) == len(anchors):
        ok = np.isfinite(vals) & (vals - anchors >= lo) & (vals - anchors <= hi)
        out[ok] = vals[ok]
        return out
    for v in vals[np.isfinite(vals)]:
        d = v - anchors
        cand = np.where((d >= lo) & (d <= hi))[0]
        if len(cand):
            k = cand[np.argmin(np.abs(d[cand]))]
            if np.isnan(out[k]):
                out[k] = v
    return out


def qrs_bounds_slope(clean: np.ndarray, anchors: np.ndarray, fs: float, k_first: float = 0.5,
                     k_edge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """QRS onset and offset of one lead by slope thresholds (Laguna et al. 1994, "Automatic detection
    of wave boundaries in multilead ECG signals: validation with the CSE database", Comput Biomed Res
    27:45).

    Before the anchor (120 ms, not beyond the midpoint to the previous beat) the first slope above
    ``k_first`` of the largest one marks the start of the QRS; the onset is where the slope, walking
    back from there, falls below ``k_edge`` of that maximum. The offset mirrors this after the anchor
    (160 ms). Slopes are of the 1-40 Hz band, smoothed over 8 ms.
    """
    y = _bandpass(clean, fs, 1.0, 40.0)
    d = _smooth(np.abs(np.gradient(y)), 0.008 * fs)
    n = len(clean)
    on, off = np.full(len(anchors), np.nan), np.full(len(anchors), np.nan)
    for i, a in enumerate(anchors):
        a = int(a)
        lo, hi = max(0, a - int(0.12 * fs)), min(n - 1, a + int(0.16 * fs))
        if i > 0:
            lo = max(lo, int((anchors[i - 1] + a) / 2))
        if i + 1 < len(anchors):
            hi = min(hi, int((anchors[i + 1] + a) / 2))
        before, after = d[lo:a + 1], d[a:hi + 1]
        if len(before) >= 3 and before.max() > 0:
            m = before.max()
            j = lo + int(np.argmax(before > k_first * m))
            while j > lo and d[j] > k_edge * m:
                j -= 1
            if j > lo:  # reaching the window edge means no quiet baseline was found
                on[i] = j
        if len(after) >= 3 and after.max() > 0:
            m = after.max()
            j = a + len(after) - 1 - int(np.argmax(after[::-1] > k_first * m))
            while j < hi and d[j] > k_edge * m:
                j += 1
            if j < hi:
                off[i] = j
    return on, off


def _harmonise(per_lead: list[np.ndarray], use: np.ndarray, cfg: DelineationConfig, fs: float) -> None:
    """Combine each beat's P/QRS/T marks over the leads in ``use`` (in place, see ``multilead``).
    The multi-lead estimate is robust to one lead's wrong mark (Laguna et al. 1994 multi-lead rules)."""
    if cfg.multilead == "none" or not use.any():
        return
    pct = {"QRS_on": cfg.qrs_percentiles[0], "QRS_off": cfg.qrs_percentiles[1]}
    for kind in MULTILEAD_KINDS:
        j = kind_index(kind)
        m = np.vstack([per_lead[li][:, j] for li in np.where(use)[0]])
        found = np.isfinite(m).any(axis=0)
        ref = np.full(m.shape[1], np.nan)
        if found.any():
            q = pct.get(kind, 50.0) if cfg.multilead == "median" else 50.0
            ref[found] = np.nanpercentile(m[:, found], q, axis=0)
        for li in range(len(per_lead)):
            own = per_lead[li][:, j]
            if cfg.multilead == "median":
                per_lead[li][:, j] = np.where(np.isfinite(own), ref, np.nan)
            else:
                per_lead[li][:, j] = np.where(np.abs(own - ref) <= cfg.reject_ms * fs / 1000, own, np.nan)


def _drop_uncoupled_p(per_lead: list[np.ndarray], beats: np.ndarray, fs: float,
                      cfg: DelineationConfig) -> bool:
    """Drop every P mark when the PR interval is not constant (see ``max_pr_spread_ms``); True when
    dropped."""
    if cfg.max_pr_spread_ms is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN beats
        p = np.nanmedian(np.vstack([b[:, kind_index("P_peak")] for b in per_lead]), axis=0)
    pr = (beats - p)[np.isfinite(p)]
    if len(pr) < 3:
        return False
    spread = 2 * 1.4826 * np.median(np.abs(pr - np.median(pr))) * 1000 / fs
    if spread <= cfg.max_pr_spread_ms:
        return False
    cols = [kind_index(k) for k in ("P_on", "P_peak", "P_off")]
    for b in per_lead:
        b[:, cols] = np.nan
    return True


def _delineate_lead(clean: np.ndarray, beats: np.ndarray, fs: float,
                    cfg: DelineationConfig) -> tuple[np.ndarray, bool]:
    import neurokit2 as nk

    rows = np.full((len(beats), len(FIDUCIAL_KINDS)), np.nan)
    anchors, sign = _anchors(clean, beats, fs, cfg.refine_ms, cfg.polarity)
    # R_peak is the lead's dominant QRS extremum (the nadir in a QS or rS lead such as aVR or V1);
    # the slope rules split the complex there whatever the lead's polarity.
    dominant, _ = _anchors(clean, beats, fs, cfg.refine_ms, "auto")
    rows[:, kind_index("R_peak")] = dominant
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, waves = nk.ecg_delineate(sign * clean, anchors, sampling_rate=int(round(fs)),
                                        method=cfg.method)
    except Exception:  # NeuroKit raises on degenerate input (too few beats, edge effects): keep R only
        return rows, False
    for key, kind in _NK_KEYS.items():
        if key in waves:
            rows[:, kind_index(kind)] = _assign(list(waves[key]), anchors, kind, fs)
    if cfg.qrs_bounds == "slope":
        on, off = qrs_bounds_slope(clean, dominant, fs, *cfg.qrs_slope)
        for kind, v in (("QRS_on", on), ("QRS_off", off)):
            rows[:, kind_index(kind)] = _assign(list(v), dominant, kind, fs)
    return rows, True


def _finish(rows: np.ndarray, fs: float, cfg: DelineationConfig) -> bool:
    """Order checks, J point and the lead's quality flag (in place)."""
    anchors = rows[:, kind_index("R_peak")]
    next_r = np.r_[anchors[1:], np.inf]
    for row, nr in zip(rows, next_r):
        enforce_order(row, nr)
    # The J point is the end of the QRS complex (Hurst 1998, Circulation 98:1937); no source here
    # measures it separately.
    rows[:, kind_index("J")] = rows[:, kind_index("QRS_off")]
    return lead_quality(rows, fs, cfg.min_beats)


def _check_ecg(ecg: np.ndarray, fs: float) -> np.ndarray:
    ecg = np.asarray(ecg)
    if ecg.ndim != 2 or ecg.shape[0] != N_LEADS:
        raise DataError(None, f"ECG has shape {ecg.shape}", f"(12, T) mV")
    if not np.isfinite(ecg).all():
        raise DataError(None, f"ECG holds {int((~np.isfinite(ecg)).sum())} non-finite samples",
                        "finite mV values")
    if not fs or fs <= 0:
        raise DataError(None, f"sampling rate {fs}", "a positive rate in Hz")
    return ecg.astype(np.float64)


def delineate(ecg: np.ndarray, fs: float, cfg: DelineationConfig | None = None) -> Fiducials:
    """Fiducial points of a 12-lead ECG.

    Parameters
    ----------
    ecg : ``(12, T)`` mV, LEADS order (use the 500 Hz version of a record when there is one)
    fs : sampling rate, Hz
    cfg : ``DelineationConfig``

    Returns
    -------
    Fiducials at ``fs`` (``source="neurokit2"``). Every lead has one row per beat found on the lead
    combination (so beat ``k`` is the same heartbeat on every lead); a flat lead keeps all-NaN rows and
    quality False; a point NeuroKit2 did not find, or found outside its physiological window, is NaN.
    No beat found -> ``Fiducials.empty`` (quality all False).

    Raises
    ------
    DataError : wrong shape, non-finite samples, bad ``fs``
    """
    cfg = cfg or DelineationConfig()
    cfg.validate()
    ecg = _check_ecg(ecg, fs)
    n = ecg.shape[1]
    if n < int(fs):  # less than one second cannot hold a delineable beat
        return Fiducials.empty(fs, n, "neurokit2")
    clean = np.vstack([_clean(x, fs) for x in ecg])
    flat = np.array([_is_flat(c, cfg) for c in clean])
    if flat.all():
        return Fiducials.empty(fs, n, "neurokit2")
    beats = detect_rpeaks(clean, fs, cfg, leads=np.where(~flat)[0])
    if len(beats) == 0:
        return Fiducials.empty(fs, n, "neurokit2")
    per_lead, ran = [], np.zeros(N_LEADS, dtype=bool)
    for i, c in enumerate(clean):
        if flat[i]:
            per_lead.append(np.full((len(beats), len(FIDUCIAL_KINDS)), np.nan))
            continue
        rows, ran[i] = _delineate_lead(c, beats, fs, cfg)
        per_lead.append(rows)
    _harmonise(per_lead, ran, cfg, fs)
    _drop_uncoupled_p(per_lead, beats, fs, cfg)
    quality = np.array([ran[i] and _finish(per_lead[i], fs, cfg) for i in range(N_LEADS)])
    return Fiducials(fs, n, per_lead, quality, "neurokit2")
