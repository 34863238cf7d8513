"""Binary classification metrics, pure functions over ``y`` (0/1) and ``p`` (probabilities).

The ones ``xand.training`` writes into ``summary.json`` and ``xand.evaluation`` reports later, so the training
report and ``python -m xand evaluate`` cannot disagree on definitions:

* ROC-AUC with a percentile bootstrap 95% CI (Efron & Tibshirani 1993; 1000 seeded resamples);
* PR-AUC as average precision;
* sensitivity, specificity, PPV, F1 and the confusion matrix at a threshold tuned on the *validation*
  split, never on the test split: Youden's J (Youden 1950, default) or the F1-maximising threshold.

References
----------
Youden W.J., Index for rating diagnostic tests, Cancer 3(1) 1950.
Efron B., Tibshirani R., An Introduction to the Bootstrap, Chapman & Hall 1993.
Strodthoff N. et al., Deep learning for ECG analysis: benchmarks and insights from PTB-XL, IEEE JBHI 2021
(macro-AUC evaluation on fold 10).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xand.errors import UnknownNameError


def auc_or_none(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC of scores ``p`` for binary labels ``y``; None when ``y`` has a single class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


def _youden(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(thr[best], 1.0))


def _max_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return float(thr[int(np.argmax(f1))])


#: Threshold-tuning rules (applied to validation predictions only).
THRESHOLD_METHODS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "youden": _youden,
    "f1": _max_f1,
}


def tune_threshold(y: np.ndarray, p: np.ndarray, method: str = "youden") -> float:
    """Decision threshold on probabilities from validation labels ``y`` and scores ``p``.

    ``"youden"`` maximises sensitivity + specificity - 1 (Youden 1950); ``"f1"`` maximises F1.
    Falls back to 0.5 when ``y`` has a single class.
    """
    if method not in THRESHOLD_METHODS:
        raise UnknownNameError("threshold method", method, THRESHOLD_METHODS)
    y = np.asarray(y)
    if y.size == 0 or y.min() == y.max():
        return 0.5
    return THRESHOLD_METHODS[method](y, np.asarray(p, dtype=np.float64))


def bootstrap_auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the ROC-AUC (resampling records with replacement, seeded).

    Resamples with a single class are skipped. None when ``y`` has a single class or ``n_boot == 0``.
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    if n_boot <= 0 or y.size == 0 or y.all() or not y.any():
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    yb, pb = y[idx], p[idx]
    # Mann-Whitney form of the AUC, vectorised over resamples (ties get mid-ranks as in roc_auc_score)
    ranks = rankdata(pb, axis=1)
    n_pos = yb.sum(axis=1)
    n_neg = y.size - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    aucs = ((ranks * yb).sum(axis=1)[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2) / (n_pos[ok] * n_neg[ok])
    if aucs.size == 0:
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(aucs, [alpha, 1 - alpha])
    return float(lo), float(hi)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """All per-head metrics of probabilities ``p (N,)`` against labels ``y (N,)`` in {0, 1}.

    Returns
    -------
    dict with ``n, n_pos, auc, auc_ci (lo, hi), pr_auc, threshold, sensitivity, specificity, ppv, npv,
    f1, confusion {tn, fp, fn, tp}`` (None where undefined).
    """
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    pred = p >= threshold
    tp = int(((y == 1) & pred).sum())
    fn = int(((y == 1) & ~pred).sum())
    tn = int(((y == 0) & ~pred).sum())
    fp = int(((y == 0) & pred).sum())

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    sens, ppv = ratio(tp, tp + fn), ratio(tp, tp + fp)
    ci = bootstrap_auc_ci(y, p, n_boot, seed)
    return {
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "auc": auc_or_none(y, p),
        "auc_ci": list(ci) if ci else None,
        "pr_auc": float(average_precision_score(y, p)) if 0 < y.sum() < y.size else None,
        "threshold": float(threshold),
        "sensitivity": sens,
        "specificity": ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": ratio(tn, tn + fn),
        "f1": (2 * sens * ppv / (sens + ppv)) if sens and ppv else (0.0 if sens is not None else None),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


