"""Clinical measurements of a 12-lead ECG from its fiducial points: rate, intervals, QTc, axes, ST level.

The multi-lead (global) marks follow the CSE convention (CSE Working Party 1985, Eur Heart J 6:815):
a wave's onset is the earliest onset over the leads, its offset the latest offset, so a duration
measured on all 12 leads is never shorter than on one. One lead's stray mark must not set the
global onset, so only the marks within ``outlier_ms`` of the leads' median take part.

Definitions (every value is the median over beats unless said otherwise; NaN when not measurable):

- heart rate: 60 000 / mean RR (ms); RR from the global R peaks, intervals outside 250-2500 ms or over
  1.6 x the median RR (across a missed beat) dropped;
  SDNN (SD of RR) and RMSSD (root mean square of successive RR differences; Task Force of the ESC and
  NASPE 1996, Circulation 93:1043) for the RR variability
- P duration: P off - P on; PR: QRS on - P on; QRS: QRS off - QRS on; QT: T off - QRS on
- QTc with RR in seconds and the mean RR: Bazett QT / RR^0.5 (Bazett 1920), Fridericia QT / RR^(1/3)
  (Fridericia 1920), Framingham QT + 154 (1 - RR) ms (Sagie et al. 1992, Am J Cardiol 70:797),
  Hodges QT + 1.75 (HR - 60) ms (Hodges et al. 1983, J Am Coll Cardiol 1:694)
- frontal axes of P, QRS and T: the direction of the mean vector from the net areas of the wave in
  leads I and aVF, ``atan2(2/sqrt(3) * aVF, I)`` in degrees (Einthoven's triangle: aVF sees the frontal
  vector scaled by sqrt(3)/2), -180..180
- ST level per lead: the signal 60 ms after the global J point (QRS offset) minus the isoelectric level
  of the PR segment (mean over 20 ms ending 5 ms before the QRS onset), mV
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.errors import DataError, UnknownNameError
from xand.fiducials import Fiducials, kind_index

#: QTc formulas by name: f(QT ms, RR s, HR bpm) -> QTc ms
QTC_FORMULAS: dict[str, Any] = {
    "bazett": lambda qt, rr, hr: qt / math.sqrt(rr),
    "fridericia": lambda qt, rr, hr: qt / rr ** (1.0 / 3.0),
    "framingham": lambda qt, rr, hr: qt + 154.0 * (1.0 - rr),
    "hodges": lambda qt, rr, hr: qt + 1.75 * (hr - 60.0),
}

ONSETS = ("P_on", "QRS_on", "T_on")
OFFSETS = ("P_off", "QRS_off", "T_off")

#: Intervals reported, ms.
INTERVALS = ("p_duration_ms", "pr_ms", "qrs_ms", "qt_ms")


@dataclass
class Measurements:
    """What a cardiologist reads first, from one ECG's fiducials (see the module docstring).

    Attributes
    ----------
    heart_rate_bpm, rr_ms, sdnn_ms, rmssd_ms : rate and RR variability
    p_duration_ms, pr_ms, qrs_ms, qt_ms : intervals (median over beats)
    qtc_ms : ``{formula: QTc ms}`` for every formula of ``QTC_FORMULAS``
    p_axis_deg, qrs_axis_deg, t_axis_deg : frontal axes
    st_j60_mv : ``{lead: ST level at J+60 ms, mV}``
    n_beats : global beats found
    beats : ``(n_beats, len(FIDUCIAL_KINDS))`` global marks in samples at ``fs`` (NaN where missing)
    fs : Hz of ``beats``
    notes : why a value is missing, and which correction was applied
    source : the fiducials' source
    raw_intervals_ms : the intervals before the delineator's correction (empty when none was applied)
    """

    heart_rate_bpm: float = float("nan")
    rr_ms: float = float("nan")
    sdnn_ms: float = float("nan")
    rmssd_ms: float = float("nan")
    p_duration_ms: float = float("nan")
    pr_ms: float = float("nan")
    qrs_ms: float = float("nan")
    qt_ms: float = float("nan")
    qtc_ms: dict[str, float] = field(default_factory=dict)
    p_axis_deg: float = float("nan")
    qrs_axis_deg: float = float("nan")
    t_axis_deg: float = float("nan")
    st_j60_mv: dict[str, float] = field(default_factory=dict)
    n_beats: int = 0
    beats: np.ndarray = field(default_factory=lambda: np.empty((0, len(FIDUCIAL_KINDS))))
    fs: float = 500.0
    notes: list[str] = field(default_factory=list)
    source: str = ""
    raw_intervals_ms: dict[str, float] = field(default_factory=dict)

    def qtc(self, formula: str = "bazett") -> float:
        """QTc (ms) by ``formula`` (a key of ``QTC_FORMULAS``)."""
        if formula not in QTC_FORMULAS:
            raise UnknownNameError("QTc formula", formula, tuple(QTC_FORMULAS))
        return self.qtc_ms.get(formula, float("nan"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (NaN as None; ``beats`` left out)."""
        d = asdict(self)
        d.pop("beats")

        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {k: clean(v) for k, v in d.items()}


def _median(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def global_beats(fid: Fiducials, outlier_ms: float = 20.0, min_leads: int = 3,
                 window_ms: float = 100.0) -> np.ndarray:
    """Multi-lead marks per heartbeat: ``(n_beats, len(FIDUCIAL_KINDS))`` samples at ``fid.fs``.

    The leads' beats are grouped by their QRS (the R peak, or the QRS midpoint): marks within
    ``window_ms`` of a group's first are one heartbeat, kept when at least ``min_leads`` usable
    leads (those with ``quality``; all leads when none has it) saw it. Onsets are the earliest and
    offsets the latest of the lead marks within ``outlier_ms`` of their median; peaks and J the median.
    """
    fs = fid.fs
    use = np.flatnonzero(fid.quality) if fid.quality.any() else np.arange(N_LEADS)
    rows, anchors = [], []
    r, on, off = kind_index("R_peak"), kind_index("QRS_on"), kind_index("QRS_off")
    for i in use:
        b = fid.beats[i]
        if not len(b):
            continue
        a = np.where(np.isfinite(b[:, r]), b[:, r], (b[:, on] + b[:, off]) / 2)
        ok = np.isfinite(a)
        rows.append(b[ok])
        anchors.append(a[ok])
    if not rows:
        return np.empty((0, len(FIDUCIAL_KINDS)))
    allrows, alla = np.concatenate(rows), np.concatenate(anchors)
    order = np.argsort(alla, kind="stable")
    allrows, alla = allrows[order], alla[order]
    need = min(min_leads, len(use))
    win, tol = window_ms * fs / 1000.0, outlier_ms * fs / 1000.0
    out = []
    start = 0
    while start < len(alla):
        stop = start
        while stop < len(alla) and alla[stop] - alla[start] <= win:
            stop += 1
        group = allrows[start:stop]
        start = stop
        if len(group) < need:
            continue
        beat = np.full(len(FIDUCIAL_KINDS), np.nan)
        for j, kind in enumerate(FIDUCIAL_KINDS):
            v = group[:, j]
            v = v[np.isfinite(v)]
            if len(v) < min(need, 2):  # a wave one lead alone saw is not a wave of the 12-lead ECG
                continue
            med = float(np.median(v))
            dist = np.abs(v - med)
            close = v[dist <= max(tol, dist.min())]  # never empty (an even count's median lies between)
            if kind in ONSETS:
                beat[j] = close.min()
            elif kind in OFFSETS:
                beat[j] = close.max()
            else:
                beat[j] = med
        out.append(beat)
    return np.array(out) if out else np.empty((0, len(FIDUCIAL_KINDS)))


def _net_area(x: np.ndarray, lo: float, hi: float, level: float) -> float:
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(level)):
        return float("nan")
    a, b = int(math.floor(lo)), int(math.ceil(hi))
    if a < 0 or b >= len(x) or b <= a:
        return float("nan")
    return float(np.sum(x[a:b + 1] - level))


def _isoelectric(x: np.ndarray, qrs_on: float, fs: float) -> float:
    if not math.isfinite(qrs_on):
        return float("nan")
    hi = int(round(qrs_on - 0.005 * fs))
    lo = int(round(qrs_on - 0.025 * fs))
    if lo < 0 or hi <= lo:
        return float("nan")
    return float(np.mean(x[lo:hi]))


def _axis(i_area: float, avf_area: float) -> float:
    if not (math.isfinite(i_area) and math.isfinite(avf_area)) or (i_area == 0 and avf_area == 0):
        return float("nan")
    return float(math.degrees(math.atan2(2.0 / math.sqrt(3.0) * avf_area, i_area)))


def measure(ecg: np.ndarray | None, fs: float, fiducials: Fiducials, outlier_ms: float = 20.0,
            interval_offsets_ms: dict[str, float] | None = None) -> Measurements:
    """Clinical measurements of one ECG.

    Parameters
    ----------
    ecg : ``(12, T)`` float mV at ``fs`` in LEADS order, or None (then only the timing measurements:
        no axes, no ST levels)
    fs : Hz of ``ecg``; the fiducials are resampled to it
    fiducials : the ECG's points (any source: a delineator, PTB-XL+, LUDB's experts)
    outlier_ms : see ``global_beats``
    interval_offsets_ms : a delineator's systematic interval errors (``{"qrs_ms": -23.9, ...}``, ms,
        measured minus expert) subtracted before QTc is computed (see ``CALIBRATIONS``)

    Returns
    -------
    Measurements (NaN and a note where a value cannot be measured)
    """
    if not fs or fs <= 0:
        raise DataError(None, f"sampling rate {fs}", "a positive rate in Hz")
    if ecg is not None:
        ecg = np.asarray(ecg, dtype=np.float64)
        if ecg.ndim != 2 or ecg.shape[0] != N_LEADS:
            raise DataError(None, f"ECG has shape {ecg.shape}", "(12, T) mV")
    fid = fiducials if fiducials.fs == fs else fiducials.resample(fs)
    m = Measurements(fs=fs, source=fid.source)
    g = global_beats(fid, outlier_ms=outlier_ms)
    m.beats, m.n_beats = g, len(g)
    if not len(g):
        m.notes.append("no beat found on enough leads")
        return m
    k = kind_index
    ms = 1000.0 / fs
    r = g[:, k("R_peak")]
    rr = np.diff(r[np.isfinite(r)]) * ms
    rr = rr[(rr >= 250) & (rr <= 2500)]
    if len(rr) >= 3:
        # an RR across a beat that too few leads saw spans two beats: leave it out, never average it in
        gap = rr > 1.6 * np.median(rr)
        if gap.any():
            m.notes.append(f"{int(gap.sum())} RR interval(s) over 1.6 x the median left out (a missed beat?)")
            rr = rr[~gap]
    if len(rr):
        m.rr_ms = float(np.mean(rr))
        m.heart_rate_bpm = 60000.0 / m.rr_ms
        if len(rr) >= 2:
            m.sdnn_ms = float(np.std(rr, ddof=1))
            m.rmssd_ms = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
    else:
        m.notes.append("fewer than two beats: no heart rate")
    m.p_duration_ms = _median(g[:, k("P_off")] - g[:, k("P_on")]) * ms
    m.pr_ms = _median(g[:, k("QRS_on")] - g[:, k("P_on")]) * ms
    m.qrs_ms = _median(g[:, k("QRS_off")] - g[:, k("QRS_on")]) * ms
    m.qt_ms = _median(g[:, k("T_off")] - g[:, k("QRS_on")]) * ms
    for name, off in (interval_offsets_ms or {}).items():
        if name in INTERVALS:
            setattr(m, name, getattr(m, name) - float(off))
    if not math.isfinite(m.pr_ms):
        m.notes.append("no P wave found: no PR or P duration")
    if math.isfinite(m.qt_ms) and math.isfinite(m.rr_ms):
        rr_s = m.rr_ms / 1000.0
        m.qtc_ms = {name: float(f(m.qt_ms, rr_s, m.heart_rate_bpm)) for name, f in QTC_FORMULAS.items()}
    elif not math.isfinite(m.qt_ms):
        m.notes.append("no T offset found: no QT")
    if ecg is None:
        return m
    if ecg.shape[1] != fid.n_samples and abs(ecg.shape[1] - fid.n_samples) > 1:
        raise DataError(None, f"ECG has {ecg.shape[1]} samples, its fiducials {fid.n_samples}",
                        "fiducials of this ECG")
    i_lead, avf = LEADS.index("I"), LEADS.index("aVF")
    areas: dict[str, list[tuple[float, float]]] = {"P": [], "QRS": [], "T": []}
    st = [[] for _ in range(N_LEADS)]
    for beat in g:
        levels = [_isoelectric(ecg[j], beat[k("QRS_on")], fs) for j in range(N_LEADS)]
        t_lo = beat[k("T_on")] if math.isfinite(beat[k("T_on")]) else beat[k("QRS_off")]
        windows = {"P": (beat[k("P_on")], beat[k("P_off")]), "QRS": (beat[k("QRS_on")], beat[k("QRS_off")]),
                   "T": (t_lo, beat[k("T_off")])}
        for wave, (lo, hi) in windows.items():
            areas[wave].append((_net_area(ecg[i_lead], lo, hi, levels[i_lead]),
                                _net_area(ecg[avf], lo, hi, levels[avf])))
        j60 = beat[k("QRS_off")] + 0.060 * fs
        if math.isfinite(j60):
            a, b = int(round(j60 - 0.005 * fs)), int(round(j60 + 0.005 * fs))
            if a >= 0 and b < ecg.shape[1]:
                for j in range(N_LEADS):
                    st[j].append(float(np.mean(ecg[j, a:b + 1])) - levels[j])
    for wave, attr in (("P", "p_axis_deg"), ("QRS", "qrs_axis_deg"), ("T", "t_axis_deg")):
        v = np.array(areas[wave], dtype=float).reshape(-1, 2)
        setattr(m, attr, _axis(_median(v[:, 0]), _median(v[:, 1])))
    m.st_j60_mv = {lead: _median(np.array(st[j], dtype=float)) for j, lead in enumerate(LEADS)}
    return m


@dataclass(frozen=True)
class Calibration:
    """A delineator's systematic errors against cardiologists' marks, removed before measuring.

    ``offsets_ms``: per fiducial kind, mean error (detected minus expert, ms) of the per-lead marks;
    ``interval_offsets_ms``: the intervals' remaining mean error after those offsets.
    """

    offsets_ms: dict[str, float]
    interval_offsets_ms: dict[str, float]
    fitted_on: str
    command: str


#: Per delineator, fitted on every record of the LUDB excerpt (60 records, 12 leads, 500 Hz) by the
#: command named; the same command with ``--cv 5`` reports how well a correction fitted on other records
#: does on held-out ones (README, "Delineation and measurements").
CALIBRATIONS: dict[str, Calibration] = {
    "neurokit": Calibration(
        offsets_ms={"P_on": 0.8, "P_peak": -2.4, "P_off": -3.6, "QRS_on": 5.7, "R_peak": 9.5, "QRS_off": 4.2,
                    "T_on": 3.7, "T_peak": 1.5, "T_off": 13.2},
        interval_offsets_ms={"p_duration_ms": -29.6, "pr_ms": -3.0, "qrs_ms": -23.9, "qt_ms": -25.3},
        fitted_on="LUDB excerpt, 60 records",
        command="python -m xand ludb ../shared/data/ludb --method neurokit --cv 5 --json"),
}


def measure_ecg(ecg: np.ndarray, fs: float, delineator: str = "neurokit", fiducials: Fiducials | None = None,
                calibrated: bool = True, cache_dir: str | None = None) -> Measurements:
    """Delineate (unless ``fiducials`` are given) and measure one ECG.

    Parameters
    ----------
    ecg : ``(12, T)`` mV at ``fs`` (the 500 Hz version of a record when there is one)
    fs : Hz
    delineator : a name of ``xand.delineation.methods.DELINEATORS``
    fiducials : points from elsewhere (PTB-XL+, corrected by a reviewer); measured as they are
    calibrated : remove the delineator's systematic errors of ``CALIBRATIONS`` (when it has one)
    cache_dir : a ``DelineationCache`` folder

    Returns
    -------
    Measurements; ``notes`` says whether a calibration was applied.
    """
    cal = CALIBRATIONS.get(delineator) if calibrated and fiducials is None else None
    skipped_cal = cal is not None and fs < 500
    if skipped_cal:  # fitted at 500 Hz on LUDB: not validated at other rates
        cal = None
    if fiducials is None:
        from xand.delineation.methods import apply_offsets, delineate

        if cache_dir is not None:
            from xand.delineation.cache import DelineationCache

            fiducials = DelineationCache(cache_dir).delineate(ecg, fs, delineator=delineator)
        else:
            fiducials = delineate(ecg, fs, delineator)
        raw_fiducials = fiducials
        if cal is not None:
            fiducials = apply_offsets(fiducials, cal.offsets_ms)
    m = measure(ecg, fs, fiducials, interval_offsets_ms=cal.interval_offsets_ms if cal else None)
    if cal is not None:
        raw = measure(None, fs, raw_fiducials)
        m.raw_intervals_ms = {k: getattr(raw, k) for k in INTERVALS}
        m.notes.append(f"{delineator} marks and intervals corrected for their mean error on the {cal.fitted_on}")
    if skipped_cal:
        m.notes.append(f"not corrected: the correction was fitted at 500 Hz and this ECG is at {fs:g} Hz")
    return m


def measure_record(dataset: Any, ecg_id: int, delineator: str = "neurokit", calibrated: bool = True,
                   cache_dir: str | None = None) -> Measurements:
    """``measure_ecg`` of one record of a PTB-XL-layout folder (a path or an open ``xand.data.ptbxl.PTBXL``),
    at the highest rate on disk (500 Hz when ``records500/`` holds it: five times finer than 100 Hz)."""
    from xand.data.ptbxl import PTBXL

    ds = dataset if isinstance(dataset, PTBXL) else PTBXL(dataset)
    data_dir = ds.data_dir
    rates = ds.rates_on_disk(int(ecg_id))
    if not rates:
        raise DataError(data_dir, f"record {ecg_id} has no signal files", "records100/ or records500/ files")
    fs = max(rates)
    m = measure_ecg(ds.load(int(ecg_id), fs=fs), float(fs), delineator, calibrated=calibrated, cache_dir=cache_dir)
    if fs < 250:
        m.notes.append(f"measured at {fs} Hz: timing resolution {1000 / fs:.0f} ms")
    return m


def measurement_row(m: Measurements) -> dict[str, Any]:
    """One flat table row: rate, intervals, every QTc, axes, ST per lead (``st_<lead>_mv``), notes."""
    row: dict[str, Any] = {k: getattr(m, k) for k in ("heart_rate_bpm", "rr_ms", "sdnn_ms", "rmssd_ms", *INTERVALS)}
    row.update({f"qtc_{k}_ms": m.qtc_ms.get(k, float("nan")) for k in QTC_FORMULAS})
    row.update({"p_axis_deg": m.p_axis_deg, "qrs_axis_deg": m.qrs_axis_deg, "t_axis_deg": m.t_axis_deg})
    row.update({f"st_{lead}_mv": m.st_j60_mv.get(lead, float("nan")) for lead in LEADS})
    row.update({"n_beats": m.n_beats, "notes": "; ".join(m.notes)})
    return row


def measure_records(path: str, delineator: str = "neurokit", limit: int | None = None, calibrated: bool = True,
                    progress: bool = False):
    """Measurements of every record of a source (``xand.data.records.iter_records``) as a DataFrame
    indexed by record, with an ``error`` column for the records that could not be read or measured."""
    import pandas as pd

    from xand.data.records import iter_records

    rows = []
    it = iter_records(path, limit=limit)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="measure", unit="rec")
    for item in it:
        if item.error is not None:
            rows.append({"record": item.record, "error": item.error})
            continue
        try:
            m = measure_ecg(item.ecg, item.fs, delineator, calibrated=calibrated)
            rows.append({"record": item.record, "fs": item.fs, **measurement_row(m), "error": None})
        except Exception as exc:  # noqa: BLE001 - one bad record never stops the batch
            rows.append({"record": item.record, "error": str(exc) if isinstance(exc, DataError)
                         else f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(rows).set_index("record") if rows else pd.DataFrame(columns=["error"])


__all__ = ["CALIBRATIONS", "INTERVALS", "QTC_FORMULAS", "Calibration", "Measurements", "global_beats", "measure",
           "measure_ecg", "measure_record", "measure_records", "measurement_row"]
