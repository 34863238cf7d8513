"""Leads, devices and territories of the synthetic set: Dower's inverse transform (Dower et al., J
Electrocardiol 13:189, 1980), the header lead names, the ADC gain, device mix and noise, MI territories."""

from __future__ import annotations

import numpy as np

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


def _lead_matrix() -> np.ndarray:
    """(12, 3): dipole -> all 12 leads (limb leads via Einthoven/Goldberger)."""
    i, ii = DOWER[0], DOWER[1]
    return np.vstack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, DOWER[2:]])


LEAD_MATRIX = _lead_matrix()
