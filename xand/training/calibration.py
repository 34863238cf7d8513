"""Calibrated probabilities: temperature scaling of each head's logit, fitted on the validation split.

``p = sigmoid(logit / T)`` with one scalar ``T > 0`` per head that minimises the validation negative
log-likelihood (Guo et al., "On calibration of modern neural networks", ICML 2017; for one binary output
Platt scaling without its offset). A monotone map: the ranking, every AUC and, with the threshold mapped
the same way, every decision stay as they were; only what "p = 0.8" means changes. Reported next to it:
expected calibration error (10 equal-width bins, Naeini et al. 2015) and Brier score (Brier 1950), raw
and calibrated.
"""

from __future__ import annotations

import math

import numpy as np

from xand.errors import DataError

#: Temperatures at (within 1 % in log space of) either end of this range mean the fit failed (separable or
#: uninformative validation logits): T = 1 is kept instead.
T_RANGE = (0.05, 20.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The ``T`` minimising the mean binary cross-entropy of ``sigmoid(logits / T)`` against ``y`` (0/1).

    One class only, fewer than 2 records, non-finite logits, or an optimum at the end of ``T_RANGE``
    (perfectly separated or uninformative validation logits): 1.0 (nothing trustworthy to fit).
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(z) != len(y):
        raise DataError(None, f"{len(z)} logits for {len(y)} labels", "one label per logit")
    if len(z) < 2 or y.min() == y.max() or not np.isfinite(z).all():
        return 1.0

    def nll(log_t: float) -> float:
        zt = z / math.exp(log_t)
        # log(1 + exp(-|z|)) form: exact for large |z|
        return float(np.mean(np.maximum(zt, 0) - zt * y + np.log1p(np.exp(-np.abs(zt)))))

    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    # the bounded search stops just inside a bound when the optimum lies beyond it (separable or
    # uninformative validation logits): that is a failed fit, not a temperature
    margin = 0.01 * (hi - lo)
    if not res.success or res.x < lo + margin or res.x > hi - margin:
        return 1.0
    return float(math.exp(res.x))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logits / temperature)``."""
    return _sigmoid(np.asarray(logits, dtype=np.float64) / float(temperature))


def threshold_after(threshold: float, temperature: float) -> float:
    """The probability threshold that makes the same decisions after temperature scaling."""
    t = min(max(float(threshold), 1e-12), 1 - 1e-12)
    return float(_sigmoid(np.array(math.log(t / (1 - t)) / float(temperature))))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float | None:
    """Expected calibration error: count-weighted mean |fraction positive - mean p| over equal-width bins."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    if len(y) == 0:
        return None
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    err = 0.0
    for b in np.unique(which):
        m = which == b
        err += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(err / len(y))


def brier(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mean squared difference between probability and outcome."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else None


def calibration_report(logits_val: np.ndarray, y_val: np.ndarray, logits_test: np.ndarray | None = None,
                       y_test: np.ndarray | None = None) -> dict:
    """Fit ``T`` on validation; ECE and Brier raw and calibrated on validation (and test when given)."""
    t = fit_temperature(logits_val, y_val)
    out: dict = {"temperature": t, "method": "temperature scaling (Guo et al. 2017), fitted on val"}
    for split, z, y in (("val", logits_val, y_val), ("test", logits_test, y_test)):
        if z is None or y is None:
            continue
        raw, cal = _sigmoid(np.asarray(z, np.float64)), apply_temperature(z, t)
        out[split] = {"n": int(len(y)), "ece_raw": ece(y, raw), "ece": ece(y, cal),
                      "brier_raw": brier(y, raw), "brier": brier(y, cal)}
    return out
