"""Synthetic PTB-XL: a deterministic demo set in the exact PTB-XL layout with ground-truth fiducials.

Signal model
------------
Every beat is a 3-D cardiac dipole (vectorcardiogram) built from Gaussian-like wave components, in
the spirit of ECGSYN (McSharry et al., IEEE TBME 50:289, 2003) and its 3-D dipole extension (Sameni
et al., EURASIP J Adv Signal Process 2007:43407). Each component (P, Q, R, S, R', T, ST offset) has a
centre, a left/right width and a 3-D direction; its time course is a Gaussian truncated at
+-3 widths and shifted to reach exactly zero there, so every wave is exactly confined between its
onset and offset -- which are therefore the ground-truth fiducials, not estimates. The dipole is
projected on the 12 leads with Dower's inverse transform (Dower et al., J Electrocardiol 13:189, 1980).
Noise is added per electrode (RA, LA, LL, C1-C6), then I = LA - RA, II = LL - RA, V_k = C_k - WCT, and the
other limb leads are derived from the digitised I and II, so Einthoven's and Goldberger's relations hold
to the 1 uV format-16 quantisation (III exactly, the augmented leads within half a step).

Rhythm: RR from a per-record rate (50-100 bpm) with respiratory sinus arrhythmia and a 0.1 Hz LF
component; PR 120-200 ms, QRS 80-110 ms, QT from Bazett's formula per beat (QTc ~ 390-440 ms).
Noise: baseline wander (respiration + slow drifts), 50 Hz mains hum, muscle (EMG) noise; levels vary
per record and device.

Pathologies (textbook criteria: Surawicz et al./AHA-ACCF-HRS 2009 recommendations; Sokolow & Lyon
1949) sit in the segment their fiducials delimit and in their lead territory:

- MI (IMI/ILMI inferior, ASMI/AMI anterior, LMI/ALMI lateral; acute / evolving / old): pathological Q
  (initial vector away from the infarct, >= 40 ms) in QRS_on..Q, ST elevation J..T_on, T inversion.
- STTC (ISC_, ISCAL, ISCIN, ISCAS, ISCLA, NST_, NDT, LNGQT): ST depression J..T_on, T inversion or
  flattening T_on..T_off, prolonged QT.
- CD (CRBBB, CLBBB, IRBBB, IVCD, LAFB): QRS_on..QRS_off widened / re-shaped; 1AVB (PR prolonged)
  only alongside one of them.
- HYP (LVH with or without strain, RVH): QRS voltage (Sokolow-Lyon > 3.5 mV) with ST-T strain,
  right-axis RVH; LAO/LAE (broad bifid P) only alongside one of them.

The set is written at 500 Hz and decimated (zero-phase Kaiser-windowed FIR, -3 dB at 40 Hz, -40 dB at 50 Hz) to
100 Hz. Per-record random
streams come from ``numpy.random.SeedSequence(seed, spawn_key=(ecg_id,))``, so the output does not
depend on the number of worker processes, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import json

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS

#: Dower's inverse transform, rows I, II, V1..V6; columns Frank X (left), Y (feet), Z (back).
DOWER = np.array([
    [0.632, -0.235, 0.059],
    [0.235, 1.066, -0.132],
    [-0.515, 0.157, -0.917],
    [0.044, 0.164, -1.387],
    [0.882, 0.098, -1.277],
    [1.213, 0.127, -0.601],
    [1.125, 0.127, -0.086],
    [0.831, 0.076, 0.230],
])

#: Lead names as written in PTB-XL headers (upper-case augmented leads), in ``LEADS`` order.
HEADER_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")

ADC_GAIN = 1000.0  # PTB-XL: 1 uV per step

DEVICES = ("CS-12   E", "AT-6 C 5.5", "AT-6     6", "AT-6 C", "AT-6 C 5.8", "CS-12")
DEVICE_P = (0.34, 0.30, 0.14, 0.11, 0.06, 0.05)
#: device -> (mains hum mV, EMG mV, low-pass corner Hz): gives the auxiliary device head a signature
DEVICE_NOISE = {
    "CS-12   E": (0.012, 0.010, 150.0), "AT-6 C 5.5": (0.004, 0.006, 100.0),
    "AT-6     6": (0.006, 0.008, 100.0), "AT-6 C": (0.008, 0.012, 80.0),
    "AT-6 C 5.8": (0.004, 0.005, 100.0), "CS-12": (0.015, 0.012, 150.0),
}

_E45 = np.exp(-4.5)

# Territory directions in Frank coordinates (x left, y feet, z back): anterior is -z.
def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


TERRITORY = {
    "inferior": _unit([0.0, 1.0, 0.05]),
    "anterior": _unit([0.05, -0.25, -1.0]),  # slightly superior: reciprocal in II, III, aVF
    "anteroseptal": _unit([-0.25, -0.15, -1.0]),
    "lateral": _unit([1.0, -0.45, 0.15]),
    "anterolateral": _unit([0.75, -0.2, -0.65]),
    "inferolateral": _unit([0.7, 0.75, 0.1]),
}

# ----------------------------------------------------------------------------------------------
# statements (hand-written subset of the SCP-ECG statements PTB-XL uses)

_STATEMENT_COLUMNS = ["description", "diagnostic", "form", "rhythm", "diagnostic_class",
                      "diagnostic_subclass", "Statement Category", "SCP-ECG Statement Description",
                      "AHA code", "aECG REFID", "CDISC Code", "DICOM Code"]

# code: (description, kind d/f/r, class, subclass, category, AHA code)
STATEMENTS: dict[str, tuple] = {
    "NORM": ("normal ECG", "d", "NORM", "NORM", "Normal/abnormal", 1),
    "IMI": ("inferior myocardial infarction", "d", "MI", "IMI", "Myocardial Infarction", 161),
    "ILMI": ("inferolateral myocardial infarction", "d", "MI", "IMI", "Myocardial Infarction", None),
    "ASMI": ("anteroseptal myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", 165),
    "AMI": ("anterior myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", 160),
    "ALMI": ("anterolateral myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", None),
    "LMI": ("lateral myocardial infarction", "d", "MI", "LMI", "Myocardial Infarction", 163),
    "ISC_": ("non-specific ischemic", "d", "STTC", "ISC_",
             "Basic roots for coding ST-T changes and abnormalities", 226),
    "ISCAL": ("ischemic in anterolateral leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCAS": ("ischemic in anteroseptal leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCLA": ("ischemic in lateral leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCIN": ("ischemic in inferior leads", "d", "STTC", "ISCI", "ischemic ST-T changes", None),
    "NST_": ("non-specific ST changes", "d", "STTC", "NST_",
             "Basic roots for coding ST-T changes and abnormalities", 145),
    "NDT": ("non-diagnostic T abnormalities", "d", "STTC", "STTC", "other ST-T descriptive statements", None),
    "LNGQT": ("long QT-interval", "d", "STTC", "STTC", "other ST-T descriptive statements", 148),
    "CRBBB": ("complete right bundle branch block", "d", "CD", "CRBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 106),
    "IRBBB": ("incomplete right bundle branch block", "d", "CD", "IRBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 105),
    "CLBBB": ("complete left bundle branch block", "d", "CD", "CLBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 104),
    "IVCD": ("non-specific intraventricular conduction disturbance (block)", "d", "CD", "IVCD",
             "Intraventricular and intra-atrial Conduction disturbances", 107),
    "LAFB": ("left anterior fascicular block", "d", "CD", "LAFB/LPFB",
             "Intraventricular and intra-atrial Conduction disturbances", 101),
    "1AVB": ("first degree AV block", "d", "CD", "_AVB",
             "Sinus node dysfunction, atrial and AV-conduction defects", None),
    "LVH": ("left ventricular hypertrophy", "d", "HYP", "LVH", "Ventricular Hypertrophy", 142),
    "RVH": ("right ventricular hypertrophy", "d", "HYP", "RVH", "Ventricular Hypertrophy", 143),
    "LAO/LAE": ("left atrial overload/enlargement", "d", "HYP", "LAO/LAE", "Atrial statements", 140),
    "ABQRS": ("abnormal QRS", "f", None, None, "Normal/abnormal", None),
    "QWAVE": ("Q waves present", "f", None, None, "Other QRS morphology descriptive statements", None),
    "STD_": ("non-specific ST depression", "f", None, None,
             "Basic roots for coding ST-T changes and abnormalities", 502),
    "STE_": ("non-specific ST elevation", "f", None, None,
             "Basic roots for coding ST-T changes and abnormalities", 501),
    "INVT": ("inverted T-waves", "f", None, None, "other ST-T descriptive statements", 367),
    "LOWT": ("low amplitude T-waves", "f", None, None, "other ST-T descriptive statements", 366),
    "VCLVH": ("voltage criteria (QRS) for left ventricular hypertrophy", "f", None, None,
              "Ventricular Hypertrophy", None),
    "LPR": ("prolonged PR interval", "f", None, None,
            "Statements related to impulse formation (abnormalities)", 82),
    "SR": ("sinus rhythm", "r", None, None, "Statements related to impulse formation (abnormalities)", 20),
    "SBRAD": ("sinus bradycardia", "r", None, None,
              "Statements related to impulse formation (abnormalities)", 22),
    "SARRH": ("sinus arrhythmia", "r", None, None,
              "Statements related to impulse formation (abnormalities)", 23),
}


def statements_frame():
    """``scp_statements.csv`` as a DataFrame (index = statement code, PTB-XL columns)."""
    import pandas as pd

    rows = {}
    for code, (desc, kind, cls, sub, cat, aha) in STATEMENTS.items():
        rows[code] = {
            "description": desc,
            "diagnostic": 1.0 if kind == "d" else np.nan,
            "form": 1.0 if kind == "f" else np.nan,
            "rhythm": 1.0 if kind == "r" else np.nan,
            "diagnostic_class": cls, "diagnostic_subclass": sub, "Statement Category": cat,
            "SCP-ECG Statement Description": desc, "AHA code": "" if aha is None else str(aha),
            "aECG REFID": np.nan, "CDISC Code": np.nan, "DICOM Code": np.nan,
        }
    df = pd.DataFrame.from_dict(rows, orient="index")[_STATEMENT_COLUMNS]
    return df


# ----------------------------------------------------------------------------------------------
# configuration and per-record specification


@dataclass
class SynthConfig:
    """Options of the synthetic PTB-XL generator (all serialisable).

    ``profile_weights`` are the probabilities of the diagnostic profiles a patient is drawn from
    (co-occurrences as in PTB-XL: MI+STTC, MI+CD, HYP+STTC, ...). ``likelihood_weights`` give the
    cardiologist likelihood of each diagnostic statement; below 100 the morphology is milder and
    the pure-label policy excludes the record for that head.
    """

    n_records: int = 2000
    seed: int = 0
    fs: int = 500
    fs_low: int = 100
    duration_s: float = 10.0
    mains_hz: float = 50.0
    noise_scale: float = 1.0
    ecgs_per_patient: tuple[float, ...] = (0.80, 0.13, 0.05, 0.02)
    profile_weights: dict[str, float] = field(default_factory=lambda: {
        "NORM": 0.36, "MI": 0.13, "MI+STTC": 0.05, "MI+CD": 0.04, "MI+HYP": 0.02,
        "STTC": 0.12, "STTC+HYP": 0.05, "CD": 0.13, "CD+HYP": 0.03, "HYP": 0.07,
    })
    likelihood_weights: dict[int, float] = field(default_factory=lambda: {
        100: 0.74, 80: 0.08, 50: 0.07, 35: 0.05, 15: 0.04, 0: 0.02,
    })


_SUBTYPES = {
    "MI": ("IMI", "IMI", "ILMI", "ASMI", "ASMI", "AMI", "ALMI", "LMI"),
    "STTC": ("ISC_", "ISCAL", "ISCIN", "ISCAS", "ISCLA", "NST_", "NDT", "NDT", "LNGQT"),
    "CD": ("CRBBB", "CLBBB", "IRBBB", "IVCD", "LAFB", "LAFB"),
    "HYP": ("LVH", "LVH", "LVH", "RVH"),
}
# Findings whose morphology lies outside their superclass's clinical mask (1AVB: PR segment; LAE: P
# wave) only ever accompany one that has it, so every positive record carries in-mask evidence.
_COMPANIONS = {**{c: ("1AVB", 0.15) for c in ("CRBBB", "CLBBB", "IRBBB", "IVCD", "LAFB")},
               "LVH": ("LAO/LAE", 0.2)}
_STTC_WITH_MI = {
    "IMI": ("ISCAS", "NDT", "LNGQT"), "ILMI": ("ISCAS", "NDT"), "ASMI": ("ISCIN", "NDT", "LNGQT"),
    "AMI": ("ISCIN", "NDT"), "ALMI": ("ISCIN", "NDT"), "LMI": ("ISCAS", "NDT", "LNGQT"),
}
_MI_STAGES = ("acute", "evolving", "old")
_STAGE_TEXT = {"acute": "Stadium I", "evolving": "Stadium II", "old": "Stadium III"}
_SEVERITY_OF_LIKELIHOOD = {100: 1.0, 80: 0.8, 50: 0.6, 35: 0.5, 15: 0.4, 0: 0.35}


@dataclass
class RecordSpec:
    """What the metadata stage decided about one record (labels, patient, device)."""

    ecg_id: int
    patient_id: int
    age: int
    sex: int
    device: str
    date: str
    codes: dict[str, float]          # diagnostic statements -> likelihood
    stage: str | None                # MI stage
    noise_level: float               # 0.3 .. 2 multiplier
    patient_seed: int                # shared by a patient's ECGs: same heart, same axis


# ----------------------------------------------------------------------------------------------
# beat model


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


def _lead_matrix() -> np.ndarray:
    """(12, 3): dipole -> all 12 leads (limb leads via Einthoven/Goldberger)."""
    i, ii = DOWER[0], DOWER[1]
    return np.vstack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, DOWER[2:]])


LEAD_MATRIX = _lead_matrix()


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


# ----------------------------------------------------------------------------------------------
# findings: one function per statement, applied to the record's BeatModel (registry, no if-chains)


def _invert_t(m: BeatModel, u: np.ndarray, depth: float) -> None:
    """Turn the T vector away from territory ``u`` (negative T there)."""
    along = float(m.t_vec @ u)
    m.t_vec = m.t_vec - (along + depth) * u


def _mi(territory: str):
    def apply(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
        u = TERRITORY[territory]
        rmag = float(np.linalg.norm(_qrs_wave(m, "r").v))
        if stage in ("evolving", "old"):
            q = _qrs_wave(m, "q")
            # pathological Q: initial forces point away from the dead wall, >= 40 ms wide
            qrsd = m.qrs_span()[1] - m.qrs_span()[0]
            q.sl = q.sr = max(0.0075, 0.11 * qrsd) * (0.8 + 0.2 * sev)
            q.c = 3 * q.sl
            q.v = -u * rmag * rng.uniform(0.35, 0.5) * sev + 0.3 * q.v
            r = _qrs_wave(m, "r")
            r.c = max(r.c, q.c + 2.2 * q.sr)
            r.v = r.v - 0.7 * sev * max(float(r.v @ u), 0.0) * u
            _scale_qrs(m, qrsd + 0.006)
        if stage in ("acute", "evolving"):
            m.st_vec = m.st_vec + u * rng.uniform(0.22, 0.4) * sev
        if stage == "acute":
            m.t_vec = m.t_vec + u * rng.uniform(0.2, 0.35) * sev  # hyperacute T
        else:
            _invert_t(m, u, rng.uniform(0.12, 0.3) * sev)
    return apply


def _ischemia(territory: str, st: tuple[float, float], t_depth: tuple[float, float]):
    def apply(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
        u = TERRITORY[territory]
        m.st_vec = m.st_vec - u * rng.uniform(*st) * sev
        if t_depth[1] > 0:
            _invert_t(m, u, rng.uniform(*t_depth) * sev)
    return apply


def _flat_t(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    m.t_vec = m.t_vec * (1.0 - sev * rng.uniform(0.75, 0.95))
    m.st_vec = m.st_vec - 0.04 * sev * _unit(m.t_vec + 1e-9)


def _long_qt(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    m.qtc = m.qtc + sev * rng.uniform(0.075, 0.11)
    m.hr = min(m.hr, 78.0)


def _rbbb(complete: bool):
    def apply(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
        rmag = float(np.linalg.norm(_qrs_wave(m, "r").v))
        qrsd = rng.uniform(0.125, 0.15) if complete else rng.uniform(0.1, 0.115)
        q, r, s = (_qrs_wave(m, n) for n in "qrs")
        q.c, q.sl, q.sr = 0.1, 0.033, 0.033
        r.c, r.sl, r.sr = 0.3, 0.08, 0.08
        s.c, s.sl, s.sr = 0.56, 0.09, 0.09
        s.v = rmag * rng.uniform(0.45, 0.6) * _unit([-1.0, -0.1, 0.35])  # wide S in I, V6
        amp = (rng.uniform(0.55, 0.85) if complete else rng.uniform(0.2, 0.35)) * sev
        m.qrs.append(Wave("r2", 0.82, 0.06, 0.06, rmag * amp * _unit([-0.55, 0.05, -0.85])))
        _scale_qrs(m, qrsd)
        if complete:  # secondary ST-T changes discordant to R' (V1-V3)
            _invert_t(m, TERRITORY["anteroseptal"], 0.12 * sev)
    return apply


def _lbbb(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    rmag = float(np.linalg.norm(_qrs_wave(m, "r").v)) * rng.uniform(1.1, 1.35)
    d = _unit([0.8, rng.uniform(-0.2, 0.3), 0.65])
    # no septal q (septum activated from the left), broad notched R, no S in lateral leads
    m.qrs = [Wave("r1", 0.33, 0.11, 0.11, 0.8 * rmag * d),
             Wave("r", 0.62, 0.12, 0.12, rmag * _unit(d + np.array([0.1, -0.1, 0.25])))]
    _scale_qrs(m, rng.uniform(0.13, 0.165) * (0.85 + 0.15 * sev))
    m.st_vec = m.st_vec - 0.12 * sev * rmag / 1.5 * d     # discordant ST
    m.t_vec = -rng.uniform(0.22, 0.34) * rmag * _unit(d + np.array([0.0, 0.2, -0.2]))


def _ivcd(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    for w in m.qrs:
        w.sl *= 1.15
        w.sr *= 1.15
    _scale_qrs(m, rng.uniform(0.122, 0.14) * (0.9 + 0.1 * sev))


def _lafb(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    r = _qrs_wave(m, "r")
    mag = float(np.linalg.norm(r.v))
    ang = np.deg2rad(rng.uniform(-75, -48))
    r.v = mag * _unit([np.cos(ang), np.sin(ang), 0.35])
    q = _qrs_wave(m, "q")
    q.v = float(np.linalg.norm(q.v)) * _unit([0.2, 1.0, -0.3])   # small r in II/III/aVF, q in I/aVL
    s = _qrs_wave(m, "s")
    s.v = 0.5 * s.v + 0.1 * mag * _unit([0.3, -1.0, 0.3])
    _scale_qrs(m, rng.uniform(0.1, 0.115))
    m.t_vec = float(np.linalg.norm(m.t_vec)) * _unit([0.9, 0.25, -0.4])


def _avb1(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    m.pr = rng.uniform(0.22, 0.32) * (0.8 + 0.2 * sev) + 0.02
    m.hr = min(m.hr, 80.0)


def _lvh(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    r, s = _qrs_wave(m, "r"), _qrs_wave(m, "s")
    r.v = float(np.linalg.norm(r.v)) * _unit(_unit(r.v) + np.array([0.15, -0.1, 0.35]))
    if s is not None:  # (absent in LBBB)
        s.v = s.v * 0.6
    hi, lo = qrs_extremes(m)
    sokolow = -lo[LEADS.index("V1")] + max(hi[LEADS.index("V5")], hi[LEADS.index("V6")])
    target = rng.uniform(3.8, 5.0) * (0.55 + 0.45 * sev)  # Sokolow-Lyon index (mV)
    for w in m.qrs:
        w.v = w.v * (target / sokolow)
    _scale_qrs(m, (m.qrs_span()[1] - m.qrs_span()[0]) + 0.008)
    has_mi = any(STATEMENTS[c][2] == "MI" for c in m.codes)
    if not has_mi and rng.random() < 0.75:  # strain: ST depression + T inversion in lateral leads
        _ischemia("lateral", (0.08, 0.16), (0.15, 0.3))(m, sev, rng, stage)
    m.p_waves[0].v = m.p_waves[0].v * 1.1


def _rvh(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    r, s = _qrs_wave(m, "r"), _qrs_wave(m, "s")
    mag = float(np.linalg.norm(r.v))
    ang = np.deg2rad(rng.uniform(100, 130))
    r.v = mag * rng.uniform(0.9, 1.1) * _unit([np.cos(ang), np.sin(ang), -0.9 * sev])  # R > S in V1
    s.v = mag * rng.uniform(0.5, 0.7) * _unit([-1.0, -0.2, 0.0])                      # deep S in V5/V6
    _invert_t(m, TERRITORY["anteroseptal"], 0.2 * sev)                                 # RV strain
    m.st_vec = m.st_vec - 0.06 * sev * TERRITORY["anteroseptal"]
    m.p_waves[0].v = m.p_waves[0].v * 1.35


def _lae(m: BeatModel, sev: float, rng: np.random.Generator, stage: str) -> None:
    p = m.p_waves[0]
    dur = rng.uniform(0.12, 0.14)
    amp = float(np.linalg.norm(p.v))
    m.p_waves = [Wave("p", dur * 0.33, dur / 6 * 0.65, dur / 6 * 0.65, amp * 0.85 * _unit([0.3, 0.9, -0.3])),
                 Wave("p2", dur * 0.67, dur / 6 * 0.65, dur / 6 * 0.65, amp * _unit([0.7, 0.5, 0.8]))]
    m.pr = max(m.pr, dur + 0.04)


FINDINGS = {
    "IMI": _mi("inferior"), "ILMI": _mi("inferolateral"), "ASMI": _mi("anteroseptal"),
    "AMI": _mi("anterior"), "ALMI": _mi("anterolateral"), "LMI": _mi("lateral"),
    "ISC_": _ischemia("inferolateral", (0.1, 0.18), (0.15, 0.3)),
    "ISCAL": _ischemia("anterolateral", (0.1, 0.2), (0.15, 0.3)),
    "ISCIN": _ischemia("inferior", (0.1, 0.2), (0.15, 0.3)),
    "ISCAS": _ischemia("anteroseptal", (0.1, 0.2), (0.15, 0.3)),
    "ISCLA": _ischemia("lateral", (0.1, 0.2), (0.15, 0.3)),
    "NST_": _ischemia("inferolateral", (0.07, 0.12), (0.0, 0.0)),
    "NDT": _flat_t, "LNGQT": _long_qt,
    "CRBBB": _rbbb(True), "IRBBB": _rbbb(False), "CLBBB": _lbbb, "IVCD": _ivcd, "LAFB": _lafb,
    "1AVB": _avb1, "LVH": _lvh, "RVH": _rvh, "LAO/LAE": _lae,
}
# QRS-shaping findings first, then voltage, then injury/ischaemia on top
_ORDER = ("CRBBB", "IRBBB", "CLBBB", "IVCD", "LAFB", "1AVB", "LVH", "RVH", "LAO/LAE",
          "IMI", "ILMI", "ASMI", "AMI", "ALMI", "LMI",
          "ISC_", "ISCAL", "ISCIN", "ISCAS", "ISCLA", "NST_", "NDT", "LNGQT")


def build_model(spec: RecordSpec, seed: int) -> tuple[BeatModel, np.random.Generator]:
    """The record's beat template with its findings applied, and its random stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, spec.ecg_id)))
    prng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, spec.patient_seed)))
    m = _base_model(rng, prng, spec)
    m.codes = frozenset(spec.codes)
    for code in _ORDER:
        if code in spec.codes:
            sev = _SEVERITY_OF_LIKELIHOOD[int(spec.codes[code])] * rng.uniform(0.9, 1.15)
            FINDINGS[code](m, sev, rng, spec.stage or "old")
    return m, rng


# ----------------------------------------------------------------------------------------------
# rendering


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


# ----------------------------------------------------------------------------------------------
# WFDB writing (byte-identical to wfdb.wrsamp; see tests)


def _write_wfdb(folder: Path, name: str, d: np.ndarray, fs: int) -> None:
    """Header + format-16 .dat exactly as ``wfdb.wrsamp(d_signal=..., fmt='16', adc_gain=1000)``."""
    n = d.shape[0]
    init = d[0].astype(np.int64) if n else np.zeros(d.shape[1], dtype=np.int64)
    checksum = d.astype(np.int64).sum(axis=0) % 65536
    lines = [f"{name} {d.shape[1]} {fs} {n}"]
    for j, lead in enumerate(HEADER_LEADS):
        lines.append(f"{name}.dat 16 {ADC_GAIN:.1f}(0)/mV 16 0 {init[j]} {checksum[j]} 0 {lead}")
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    (folder / f"{name}.dat").write_bytes(d.tobytes())


def _work(args) -> list[tuple[int, dict | None, str | None]]:
    """Worker: synthesise and write a chunk of records; returns (ecg_id, extras, error)."""
    from xand.fiducials import Fiducials
    from xand.data.ptbxl_plus import bucket_of, write_fiducials

    out_dir, specs, cfg = args
    out_dir = Path(out_dir)
    results = []
    for spec in specs:
        try:
            hi, lo, fid, extras = synth_record(spec, cfg)
            b = bucket_of(spec.ecg_id)
            _write_wfdb(out_dir / "records500" / b, f"{spec.ecg_id:05d}_hr", hi, cfg.fs)
            _write_wfdb(out_dir / "records100" / b, f"{spec.ecg_id:05d}_lr", lo, cfg.fs_low)
            fids = Fiducials(cfg.fs, hi.shape[0], [fid] * N_LEADS, source="synthetic")
            write_fiducials(out_dir, spec.ecg_id, fids, global_beats=fid)
            results.append((spec.ecg_id, extras, None))
        except Exception as exc:  # a bad record is reported and skipped, never crashes the batch
            results.append((spec.ecg_id, None, f"{type(exc).__name__}: {exc}"))
    return results


# ----------------------------------------------------------------------------------------------
# metadata


def _choice(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _profile_codes(profile: str, rng: np.random.Generator, cfg: SynthConfig) -> tuple[dict, str | None]:
    codes: dict[str, float] = {}
    stage = None
    for cls in profile.split("+"):
        if cls == "NORM":
            codes["NORM"] = 100.0 if rng.random() < 0.85 else 80.0
            continue
        options = _SUBTYPES[cls]
        if cls == "CD" and "MI" in profile:
            options = ("LAFB", "CRBBB", "IVCD")   # no MI+LBBB (Sgarbossa territory)
        if cls == "STTC" and "HYP" in profile:
            options = ("ISC_", "NDT", "NST_", "ISCLA")
        if cls == "STTC" and "MI" in profile:  # ischaemia away from the infarct, never cancelling it
            options = _STTC_WITH_MI[next(c for c in codes if STATEMENTS[c][2] == "MI")]
        if cls == "HYP" and "CLBBB" in codes:
            options = ("LVH",)
        code = options[int(rng.integers(len(options)))]
        codes[code] = float(_choice(rng, cfg.likelihood_weights))
        extra, p = _COMPANIONS.get(code, (None, 0.0))
        if extra and rng.random() < p:  # never more certain than the finding it accompanies
            codes[extra] = min(codes[code], float(_choice(rng, cfg.likelihood_weights)))
        if cls == "MI":
            stage = _MI_STAGES[int(rng.choice(3, p=[0.2, 0.3, 0.5]))]
    return codes, stage


def build_specs(cfg: SynthConfig) -> list[RecordSpec]:
    """Patients, their ECGs, labels, devices and dates, sorted by date (ecg_id order)."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(0,)))
    base = np.datetime64("1989-10-01T08:00:00")
    span_s = int(6.7 * 365 * 86400)
    drafts = []
    pid_pool = rng.permutation(np.arange(1000, 1000 + 10 * cfg.n_records + 100))
    k = 0
    while len(drafts) < cfg.n_records:
        pid = int(pid_pool[k])
        n_ecg = 1 + int(rng.choice(len(cfg.ecgs_per_patient), p=np.asarray(cfg.ecgs_per_patient)))
        sex = int(rng.random() < 0.48)
        age0 = int(np.clip(rng.normal(60, 16), 18, 89))
        profile = _choice(rng, cfg.profile_weights)
        codes, stage = _profile_codes(profile, rng, cfg)
        noise = float(np.clip(rng.lognormal(0.0, 0.45), 0.3, 2.5))
        device = _choice(rng, dict(zip(DEVICES, DEVICE_P)))
        t0 = int(rng.integers(0, span_s // 2))
        for j in range(n_ecg):
            if len(drafts) >= cfg.n_records:
                break
            t = t0 + j * int(rng.integers(3600, 400 * 86400))
            rec_codes, rec_stage = dict(codes), stage
            if j and stage is not None:   # a later ECG of an infarct patient shows a later stage
                rec_stage = _MI_STAGES[min(_MI_STAGES.index(stage) + 1, 2)]
            if j and rng.random() < 0.3:  # the reader's certainty differs between ECGs
                for c in rec_codes:
                    if c != "NORM":
                        rec_codes[c] = float(_choice(rng, cfg.likelihood_weights))
            drafts.append((t, pid, j, age0 + t // (365 * 86400) - t0 // (365 * 86400), sex,
                           device if rng.random() < 0.8 else _choice(rng, dict(zip(DEVICES, DEVICE_P))),
                           rec_codes, rec_stage, noise * float(rng.uniform(0.8, 1.25))))
        k += 1
    drafts.sort(key=lambda d: (d[0], d[1], d[2]))
    specs = []
    for i, (t, pid, j, age, sex, device, codes, stage, noise) in enumerate(drafts, start=1):
        date = str(base + np.timedelta64(int(t), "s")).replace("T", " ")
        specs.append(RecordSpec(i, pid, int(min(age, 95)), sex, device, date, codes, stage, noise, pid))
    return specs


_REPORT = {
    "NORM": "normales ekg", "IMI": "inferiorer infarkt", "ILMI": "inferolateraler infarkt",
    "ASMI": "anteroseptaler infarkt", "AMI": "anteriorer infarkt", "ALMI": "anterolateraler infarkt",
    "LMI": "lateraler infarkt", "ISC_": "st-t-veraenderungen wie bei ischaemie",
    "ISCAL": "ischaemie anterolateral", "ISCIN": "ischaemie inferior", "ISCAS": "ischaemie anteroseptal",
    "ISCLA": "ischaemie lateral", "NST_": "unspezifische st-veraenderungen",
    "NDT": "unspezifische t-abflachung", "LNGQT": "qt-verlaengerung",
    "CRBBB": "kompletter rechtsschenkelblock", "IRBBB": "inkompletter rechtsschenkelblock",
    "CLBBB": "kompletter linksschenkelblock", "IVCD": "intraventrikulaere leitungsstoerung",
    "LAFB": "linksanteriorer hemiblock", "1AVB": "av-block i. grades",
    "LVH": "linksventrikulaere hypertrophie", "RVH": "rechtsventrikulaere hypertrophie",
    "LAO/LAE": "p-sinistroatriale",
}
_CERTAINTY = {100: "", 80: "wahrscheinlich ", 50: "moeglicherweise ", 35: "vereinbar mit ",
              15: "nicht auszuschliessen ", 0: "fraglich "}
_AXIS_WORD = {"ALAD": "ueberdrehter linkstyp", "LAD": "linkstyp", "MID": "steiltyp",
              "RAD": "rechtstyp", "ARAD": "ueberdrehter rechtstyp"}
_STAGE_WORD = {"acute": "frisch", "evolving": "im zwischenstadium", "old": "alter unbest."}


def _row(spec: RecordSpec, extras: dict, cfg: SynthConfig, rng: np.random.Generator) -> dict:
    """One ``ptbxl_database.csv`` row, consistent with the signal (axis, rhythm, noise)."""
    codes = dict(spec.codes)
    form = {}
    if any(STATEMENTS[c][2] == "MI" for c in codes) and spec.stage != "acute":
        form["QWAVE" if rng.random() < 0.4 else "ABQRS"] = 0.0
    if any(c in codes for c in ("ISC_", "ISCAL", "ISCIN", "ISCAS", "ISCLA")) and rng.random() < 0.4:
        form["STD_" if rng.random() < 0.5 else "INVT"] = 0.0
    if "NDT" in codes and rng.random() < 0.5:
        form["LOWT"] = 0.0
    if "LVH" in codes and rng.random() < 0.4:
        form["VCLVH"] = 0.0
    if "1AVB" in codes and rng.random() < 0.3:
        form["LPR"] = 0.0
    if spec.stage == "acute" and rng.random() < 0.3:
        form["STE_"] = 0.0
    rhythm = "SBRAD" if extras["hr"] < 58 else "SARRH" if extras["sarrh"] else "SR"
    scp = {**codes, **form, rhythm: 0.0}
    words = [{"SR": "sinusrhythmus", "SBRAD": "sinusbradykardie", "SARRH": "sinusarrhythmie"}[rhythm]]
    if rng.random() < 0.6:
        words.append(_AXIS_WORD[extras["heart_axis"]])
    for c, lk in codes.items():
        text = _CERTAINTY[int(lk)] + _REPORT[c]
        if c == "NORM" and rhythm != "SR":
            text = "sonst " + text
        if STATEMENTS[c][2] == "MI":
            text += " " + _STAGE_WORD[spec.stage or "old"]
        words.append(text)
    hum, emg, _ = DEVICE_NOISE[spec.device]
    noisy = spec.noise_level * cfg.noise_scale
    return {
        "ecg_id": spec.ecg_id, "patient_id": float(spec.patient_id), "age": float(spec.age),
        "sex": spec.sex,
        "height": float(np.round(rng.normal(176 if spec.sex == 0 else 164, 7))) if rng.random() < 0.5 else np.nan,
        "weight": float(np.round(rng.normal(82 if spec.sex == 0 else 68, 12))) if rng.random() < 0.8 else np.nan,
        "nurse": float(rng.integers(0, 11)) if rng.random() < 0.88 else np.nan,
        "site": float(rng.integers(0, 4)), "device": spec.device, "recording_date": spec.date,
        "report": " ".join(words), "scp_codes": str(scp),
        "heart_axis": extras["heart_axis"] if rng.random() < 0.4 else np.nan,
        "infarction_stadium1": _STAGE_TEXT.get(spec.stage, np.nan) if spec.stage and any(
            STATEMENTS[c][2] == "MI" for c in codes) else np.nan,
        "infarction_stadium2": np.nan,
        "validated_by": float(rng.integers(0, 12)) if rng.random() < 0.6 else np.nan,
        "second_opinion": bool(rng.random() < 0.08), "initial_autogenerated_report": False,
        "validated_by_human": True,
        "baseline_drift": " , II,III,AVF" if noisy > 1.4 else np.nan,
        "static_noise": " , I-AVF,  " if noisy * (hum + emg) > 0.03 else np.nan,
        "burst_noise": np.nan, "electrodes_problems": np.nan, "extra_beats": np.nan, "pacemaker": np.nan,
        "strat_fold": 0,
        "filename_lr": f"records100/{spec.ecg_id // 1000 * 1000:05d}/{spec.ecg_id:05d}_lr",
        "filename_hr": f"records500/{spec.ecg_id // 1000 * 1000:05d}/{spec.ecg_id:05d}_hr",
    }


# ----------------------------------------------------------------------------------------------
# entry point


def synthesize(out_dir: str | Path, cfg: SynthConfig | None = None, workers: int | None = None,
               progress: bool = True) -> Path:
    """Write a synthetic PTB-XL folder (+ its PTB-XL+ ECGdeli fiducials) to ``out_dir``.

    Parameters
    ----------
    out_dir : target folder (created; existing files of the same names are overwritten)
    cfg : SynthConfig (default: 2,000 records, seed 0)
    workers : processes (default: all cores, at most 8); 1 runs in this process
    progress : show a progress bar on stderr

    Returns
    -------
    ``out_dir`` as a Path. Layout: ``ptbxl_database.csv``, ``scp_statements.csv``,
    ``records100/{bucket}/{id}_lr.{hea,dat}``, ``records500/{bucket}/{id}_hr.{hea,dat}``,
    ``fiducial_points/ecgdeli/{bucket}/{id}_points_{lead_*,global}.atr``. The same config gives
    byte-identical files whatever ``workers`` is.
    """
    import pandas as pd

    cfg = cfg or SynthConfig()
    if cfg.n_records < 1:
        raise ValueError(f"n_records must be >= 1, got {cfg.n_records}")
    out = Path(out_dir)
    specs = build_specs(cfg)
    buckets = sorted({s.ecg_id // 1000 * 1000 for s in specs})
    for sub in ("records100", "records500", "fiducial_points/ecgdeli"):
        for b in buckets:
            (out / sub / f"{b:05d}").mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, 8, len(specs)))
    chunk = max(1, min(25, len(specs) // (workers * 4) or 1))
    jobs = [(str(out), specs[i:i + chunk], cfg) for i in range(0, len(specs), chunk)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc="synth", unit="rec", file=sys.stderr)
    results: dict[int, tuple] = {}
    if workers == 1:
        it = map(_work, jobs)
        pool = None
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        pool = ctx.Pool(workers)
        it = pool.imap_unordered(_work, jobs)
    try:
        for res in it:
            for ecg_id, extras, err in res:
                results[ecg_id] = (extras, err)
            if bar is not None:
                bar.update(len(res))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    failed = {i: e for i, (x, e) in results.items() if e is not None}
    if failed:
        print(f"synth: {len(failed)} record(s) skipped: "
              + "; ".join(f"{i}: {e}" for i, e in sorted(failed.items())[:5]), file=sys.stderr)
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(3,)))
    rows = [_row(s, results[s.ecg_id][0], cfg, rng) for s in specs if s.ecg_id not in failed]
    db = pd.DataFrame(rows)
    # strat_fold per patient: shuffled patients dealt round-robin to folds 1..10
    patients = rng.permutation(np.unique(db["patient_id"].to_numpy()))
    fold_of = {p: 1 + i % 10 for i, p in enumerate(patients)}
    db["strat_fold"] = db["patient_id"].map(fold_of).astype(int)
    db.to_csv(out / "ptbxl_database.csv", index=False)
    statements_frame().to_csv(out / "scp_statements.csv")
    (out / SYNTHETIC_MARKER).write_text(json.dumps({"generator": "xand.data.synth", "seed": cfg.seed,
                                                    "n_records": cfg.n_records}) + "\n")
    return out


#: Written into every synthetic set: a model trained on one is recognised as such wherever it is applied.
SYNTHETIC_MARKER = "xand_synthetic.json"


def is_synthetic(folder: str | Path) -> bool:
    """Whether ``folder`` is a synthetic set written by :func:`synthesize` (its marker file is there)."""
    return (Path(folder) / SYNTHETIC_MARKER).is_file()


def config_json(cfg: SynthConfig) -> dict:
    """The config as a JSON-ready dict."""
    d = asdict(cfg)
    d["likelihood_weights"] = {str(k): v for k, v in d["likelihood_weights"].items()}
    return d
