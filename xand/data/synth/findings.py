"""Pathologies as changes of the beat model, each in the segment its fiducials delimit and in its lead
territory (Surawicz et al./AHA-ACCF-HRS 2009; Sokolow & Lyon 1949)."""

from __future__ import annotations

import numpy as np

from xand.constants import LEADS
from xand.data.synth.beats import (
    BeatModel,
    Wave,
    _base_model,
    _qrs_wave,
    _scale_qrs,
    qrs_extremes,
)
from xand.data.synth.geometry import TERRITORY, _unit
from xand.data.synth.spec import _SEVERITY_OF_LIKELIHOOD, RecordSpec
from xand.data.synth.statements import STATEMENTS


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
