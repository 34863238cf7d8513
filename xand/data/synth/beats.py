"""The beat model: a 3-D cardiac dipole of confined wave components (ECGSYN style; McSharry et al., IEEE
TBME 2003; Sameni et al. 2007), whose onsets and offsets are the ground-truth fiducials."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xand.data.synth.geometry import _E45, LEAD_MATRIX, _unit
from xand.data.synth.spec import RecordSpec


@dataclass
class Wave:
    """One wave component: centre (s, relative to QRS onset), left/right width (s), 3-D vector (mV)."""

    name: str
    c: float
    sl: float
    sr: float
    v: np.ndarray


@dataclass
class BeatModel:
    """Per-record template: wave components + intervals, from which every beat is built."""

    hr: float
    pr: float                 # P onset -> QRS onset (s)
    p_waves: list[Wave]
    qrs: list[Wave]           # names 'q', 'r', 's', 'r2', 'r1' ...
    qtc: float                # Bazett-corrected QT (s)
    t_vec: np.ndarray         # T-wave vector (mV)
    t_width_frac: float       # T duration / QT
    t_peak_frac: float        # (T peak - T on) / T duration
    st_vec: np.ndarray        # ST offset vector (mV), plateau J..T_peak then fading to T_off
    resp_hz: float
    rsa: float                # relative RR modulation by respiration
    lf: float
    codes: frozenset = frozenset()  # the record's diagnostic statements (findings may interact)

    def qrs_span(self) -> tuple[float, float]:
        on = min(w.c - 3 * w.sl for w in self.qrs)
        off = max(w.c + 3 * w.sr for w in self.qrs)
        return on, off


def _scale_qrs(m: BeatModel, qrsd: float) -> None:
    """Place QRS components (given as fractions) on an absolute QRS duration, onset at 0."""
    on, off = m.qrs_span()
    k = qrsd / (off - on)
    for w in m.qrs:
        w.c = (w.c - on) * k
        w.sl *= k
        w.sr *= k


def _qrs_wave(m: BeatModel, name: str) -> Wave | None:
    return next((w for w in m.qrs if w.name == name), None)


def _bump(u: np.ndarray) -> np.ndarray:
    """Gaussian truncated at |u| = 3 and shifted to end at exactly 0 (peak 1)."""
    return np.where(np.abs(u) < 3.0, (np.exp(-0.5 * u * u) - _E45) / (1.0 - _E45), 0.0)


def qrs_extremes(m: BeatModel, fs: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free max and min of the QRS per lead (12,), mV -- used to set voltage criteria."""
    on, off = m.qrs_span()
    t = np.arange(on, off, 1.0 / fs)
    d = np.zeros((3, len(t)))
    for w in m.qrs:
        u = np.where(t < w.c, (t - w.c) / w.sl, (t - w.c) / w.sr)
        d += w.v[:, None] * _bump(u)[None]
    leads = LEAD_MATRIX @ d
    return leads.max(axis=1), leads.min(axis=1)


def _base_model(rng: np.random.Generator, prng: np.random.Generator, spec: RecordSpec) -> BeatModel:
    """A normal heart: patient-level geometry (prng) + record-level variation (rng)."""
    sex_gain = 1.08 if spec.sex == 0 else 0.92
    age_gain = 1.0 - 0.004 * max(spec.age - 40, 0)
    rmag = prng.uniform(1.05, 1.9) * sex_gain * age_gain * rng.uniform(0.95, 1.05)
    axis = np.deg2rad(np.clip(prng.normal(45, 22), -20, 90))
    r_dir = _unit([np.cos(axis), np.sin(axis), prng.uniform(0.25, 0.6)])
    qrs = [
        Wave("q", 0.20, 0.067, 0.067, rmag * prng.uniform(0.08, 0.14) * _unit([-0.5, 0.15, -0.8])),
        Wave("r", 0.45, 0.11, 0.11, rmag * r_dir),
        Wave("s", 0.72, 0.093, 0.093, rmag * prng.uniform(0.28, 0.45) * _unit([-0.3, -0.6, 0.75])),
    ]
    p_amp = prng.uniform(0.11, 0.22)
    pdur = rng.uniform(0.085, 0.105)
    p = [Wave("p", pdur / 2, pdur / 6, pdur / 6, p_amp * _unit([0.5, 0.8, -0.1]))]
    t_dir = _unit(r_dir * np.array([1.0, 1.0, 0.0]) + np.array([0.0, 0.0, -0.45]))
    m = BeatModel(
        hr=rng.uniform(52, 95), pr=rng.uniform(0.125, 0.19), p_waves=p, qrs=qrs,
        qtc=prng.uniform(0.385, 0.425) + (0.012 if spec.sex == 1 else 0.0) + rng.normal(0, 0.004),
        t_vec=prng.uniform(0.25, 0.38) * rmag * t_dir, t_width_frac=rng.uniform(0.44, 0.5),
        t_peak_frac=rng.uniform(0.58, 0.66), st_vec=np.zeros(3),
        resp_hz=rng.uniform(0.16, 0.33), rsa=rng.uniform(0.01, 0.05), lf=rng.uniform(0.0, 0.02),
    )
    _scale_qrs(m, rng.uniform(0.084, 0.104))
    return m
