"""From a beat model to a record: beat times (RSA, LF), the 500 Hz signal and its fiducials, electrode
noise, decimation to 100 Hz and format-16 digitisation."""

from __future__ import annotations

import numpy as np

from xand.constants import FIDUCIAL_KINDS
from xand.data.synth.beats import BeatModel, _bump, _qrs_wave
from xand.data.synth.findings import build_model
from xand.data.synth.geometry import ADC_GAIN, DEVICE_NOISE, DOWER, LEAD_MATRIX
from xand.data.synth.spec import RecordSpec, SynthConfig


def _beat_times(m: BeatModel, rng: np.random.Generator, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """QRS onset times (s) and the preceding RR (s) of all beats touching [0, duration)."""
    rr0 = 60.0 / m.hr
    phase_r, phase_l = rng.uniform(0, 2 * np.pi, 2)
    t = -rng.uniform(0.3, 1.0) * rr0 - 1.0
    onsets, rrs = [], []
    prev_rr = rr0
    while t < duration + 0.8:
        onsets.append(t)
        rrs.append(prev_rr)
        rr = rr0 * (1 + m.rsa * np.sin(2 * np.pi * m.resp_hz * t + phase_r)
                    + m.lf * np.sin(2 * np.pi * 0.1 * t + phase_l) + 0.008 * rng.standard_normal())
        qt = m.qtc * np.sqrt(prev_rr)
        rr = max(rr, qt + m.pr + 0.04)  # the next P never starts inside this T
        t += rr
        prev_rr = rr
    return np.asarray(onsets), np.asarray(rrs)


def render(m: BeatModel, rng: np.random.Generator, fs: int, n: int):
    """Dipole ``(3, n)`` mV and per-beat fiducials ``(n_beats, 12)`` in samples at ``fs``."""
    onsets, rrs = _beat_times(m, rng, n / fs)
    qrs_on, qrs_off = m.qrs_span()
    centers, sls, srs, vecs, fid = [], [], [], [], []
    idx = {k: i for i, k in enumerate(FIDUCIAL_KINDS)}
    st_rows = []
    for t0, rr in zip(onsets, rrs):
        gain = 1.0 + 0.02 * rng.standard_normal()
        qt = m.qtc * np.sqrt(rr)
        qrsd = qrs_off - qrs_on
        t_dur = m.t_width_frac * qt
        t_on = max(qt - t_dur, qrsd + 0.03)
        t_dur = qt - t_on
        t_peak = t_on + m.t_peak_frac * t_dur
        row = np.full(len(FIDUCIAL_KINDS), np.nan)
        p_on = -m.pr
        for w in m.p_waves:
            centers.append(t0 + p_on + w.c); sls.append(w.sl); srs.append(w.sr); vecs.append(w.v)
        row[idx["P_on"]] = p_on
        row[idx["P_peak"]] = p_on + m.p_waves[0].c if len(m.p_waves) == 1 else p_on + m.p_waves[1].c
        row[idx["P_off"]] = p_on + max(w.c + 3 * w.sr for w in m.p_waves)
        for w in m.qrs:
            centers.append(t0 + w.c); sls.append(w.sl); srs.append(w.sr); vecs.append(w.v * gain)
        row[idx["QRS_on"]] = qrs_on
        for kind, name in (("Q_peak", "q"), ("R_peak", "r"), ("S_peak", "s")):
            w = _qrs_wave(m, name)
            row[idx[kind]] = np.nan if w is None else w.c
        row[idx["QRS_off"]] = qrs_off
        row[idx["J"]] = qrs_off
        sl, sr = m.t_peak_frac * t_dur / 3, (1 - m.t_peak_frac) * t_dur / 3
        centers.append(t0 + t_peak); sls.append(sl); srs.append(sr); vecs.append(m.t_vec * gain)
        row[idx["T_on"]], row[idx["T_peak"]], row[idx["T_off"]] = t_on, t_peak, qt
        st_rows.append((t0 + qrs_off, t0 + t_peak, t0 + qt))
        fid.append(t0 + row)
    c, sl, sr, v = map(np.asarray, (centers, sls, srs, vecs))
    # windowed evaluation of every component, accumulated with bincount (no Python loop per sample)
    start = np.floor((c - 3 * sl) * fs).astype(np.int64)
    width = int(np.ceil(np.max(3 * (sl + sr)) * fs)) + 2
    pos = start[:, None] + np.arange(width)[None]
    tt = pos / fs
    u = np.where(tt < c[:, None], (tt - c[:, None]) / sl[:, None], (tt - c[:, None]) / sr[:, None])
    val = _bump(u)
    ok = (pos >= 0) & (pos < n) & (val > 0)
    p_ok, val_ok = pos[ok], val[ok]
    comp = np.nonzero(ok)[0]
    dip = np.empty((3, n))
    for d in range(3):
        dip[d] = np.bincount(p_ok, weights=val_ok * v[comp, d], minlength=n)
    if np.any(m.st_vec):
        dip += _st_course(np.asarray(st_rows), fs, n)[None] * m.st_vec[:, None]
    fid = np.asarray(fid) * fs
    r = fid[:, idx["R_peak"]] if np.isfinite(fid[:, idx["R_peak"]]).all() else fid[:, idx["QRS_on"]]
    fid = fid[(r >= 0) & (r < n)]
    fid[(fid < 1) | (fid > n - 1)] = np.nan  # sample 0 cannot be stored (see ptbxl_plus)
    return dip, np.rint(fid)


def _st_course(rows: np.ndarray, fs: int, n: int) -> np.ndarray:
    """ST offset time course: rises over 20 ms after J, plateau to T peak, cosine fade to T end."""
    out = np.zeros(n)
    for j, tp, te in rows:
        a, b = max(int(np.ceil(j * fs)), 0), min(int(np.floor(te * fs)) + 1, n)
        if b <= a:
            continue
        t = np.arange(a, b) / fs
        rise = np.clip((t - j) / 0.02, 0.0, 1.0)
        rise = rise * rise * (3 - 2 * rise)
        fade = np.where(t <= tp, 1.0, 0.5 * (1 + np.cos(np.pi * np.clip((t - tp) / (te - tp), 0, 1))))
        out[a:b] += rise * fade
    return out


def _noise(rng: np.random.Generator, spec: RecordSpec, m: BeatModel, cfg: SynthConfig, n: int,
           fs: int) -> np.ndarray:
    """Electrode noise (9, n) mV for RA, LA, LL, C1..C6: baseline wander, mains hum, EMG.

    Each electrode mixes a few shared sources with its own weights and phases (a phase shift of a
    sinusoid is a mix of its sine and cosine), so only 8 sinusoids are evaluated per record.
    """
    t = np.arange(n) / fs
    hum, emg, _ = DEVICE_NOISE[spec.device]
    lvl = spec.noise_level * cfg.noise_scale
    freqs = np.array([m.resp_hz, rng.uniform(0.03, 0.1), rng.uniform(0.1, 0.5), cfg.mains_hz])
    amps = np.array([0.05, 0.08, 0.03, hum]) * lvl
    w = 2 * np.pi * freqs[:, None] * t[None]
    basis = np.concatenate([np.sin(w), np.cos(w)])                       # (8, n)
    phase = rng.uniform(0, 2 * np.pi, (9, 4))
    gain = amps[None] * np.concatenate([rng.uniform(0.2, 1.0, (9, 3)), rng.uniform(0.3, 1.5, (9, 1))], axis=1)
    mix = np.concatenate([gain * np.cos(phase), gain * np.sin(phase)], axis=1)  # (9, 8)
    e = mix @ basis
    white = rng.standard_normal((9, n + 2))
    e += (emg * lvl) * rng.uniform(0.5, 1.5, (9, 1)) * (white[:, 2:] - white[:, :-2]) / 1.4  # EMG
    return e


def _decimator(factor: int, cutoff: float, taps: int = 121) -> np.ndarray:
    """Linear-phase low-pass FIR (Kaiser-windowed sinc, beta 8), cutoff as a fraction of Nyquist."""
    k = np.arange(taps) - (taps - 1) / 2
    h = cutoff / factor * np.sinc(cutoff / factor * k) * np.kaiser(taps, 8.0)
    return h / h.sum()


def decimate(x: np.ndarray, factor: int, h: np.ndarray | None = None) -> np.ndarray:
    """Anti-aliased, zero-phase decimation of ``x (..., n)`` by an integer ``factor``."""
    h = _decimator(factor, 0.84) if h is None else h
    half = (len(h) - 1) // 2
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(xp, len(h), axis=-1)[..., ::factor, :]
    return win @ h[::-1]


def _digitise(x: np.ndarray) -> np.ndarray:
    """Independent leads (8, n) [I, II, V1..V6] mV -> (n, 12) int16 digital, limb leads derived."""
    d8 = np.rint(x * ADC_GAIN).astype(np.int64)
    i, ii = d8[0], d8[1]
    limb = np.vstack([i, ii, ii - i, np.rint(-(i + ii) / 2), np.rint(i - ii / 2), np.rint(ii - i / 2)])
    d = np.vstack([limb, d8[2:]]).astype(np.int64)
    if np.abs(d).max() > 32767:
        raise OverflowError("synthetic signal exceeds the format-16 range")
    return np.ascontiguousarray(d.T.astype("<i2"))


def synth_record(spec: RecordSpec, cfg: SynthConfig):
    """One record: (digital 500 Hz (n,12) int16, digital 100 Hz (n/5,12) int16, fiducials at 500 Hz
    (n_beats, 12), extras dict (heart axis, noise flags))."""
    fs = cfg.fs
    n = int(round(cfg.duration_s * fs))
    m, rng = build_model(spec, cfg.seed)
    dip, fid = render(m, rng, fs, n)
    e = _noise(rng, spec, m, cfg, n, fs)
    wct = e[:3].mean(axis=0)
    indep = DOWER @ dip                                   # (8, n): I, II, V1..V6 from the dipole
    indep[0] += e[1] - e[0]
    indep[1] += e[2] - e[0]
    indep[2:] += e[3:] - wct
    hi = _digitise(indep)
    lo = _digitise(decimate(indep, fs // cfg.fs_low))
    return hi, lo, fid, _extras(m, spec)


def _extras(m: BeatModel, spec: RecordSpec) -> dict:
    area = sum(w.v * (w.sl + w.sr) for w in m.qrs)
    lead_i, lead_avf = LEAD_MATRIX[0] @ area, LEAD_MATRIX[5] @ area
    ang = float(np.degrees(np.arctan2(lead_avf, lead_i)))
    axis = ("ALAD" if ang < -30 else "LAD" if ang < 0 else "MID" if ang <= 90
            else "RAD" if ang <= 120 else "ARAD")
    return {"axis_deg": ang, "heart_axis": axis, "hr": m.hr, "sarrh": m.rsa > 0.04,
            "pr": m.pr, "qtc": m.qtc}
