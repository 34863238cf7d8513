"""Classification metrics of trained runs: on PTB-XL-layout datasets and zero-shot on CinC folders.

The per-head metrics (``binary_metrics``) are the ones ``xand.training`` writes into ``summary.json``, so
the training report and a later ``python -m xand evaluate`` cannot disagree on definitions:

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

from pathlib import Path
from typing import Any, Callable

import numpy as np

from xand.constants import EXCLUDED, POSITIVE
from xand.errors import DataError, UnknownNameError


# -------------------------------------------------------------------------------------------- metrics

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


# ---------------------------------------------------------------------------------------- evaluate_run

def is_cinc_folder(path: str | Path) -> bool:
    """True when ``path`` holds CinC Challenge records (``.hea`` + ``.mat``) rather than PTB-XL."""
    path = Path(path)
    if (path / "ptbxl_database.csv").is_file():
        return False
    return any(path.rglob("*.mat")) and any(path.rglob("*.hea"))


def evaluate_run(run_dir: str | Path, data_dir: str | Path, split: str = "test", cache_dir: str | Path | None = None,
                 device: str = "cpu", n_boot: int = 1000, seed: int = 0, batch_size: int = 256,
                 progress: bool = False) -> dict[str, Any]:
    """Metrics of a trained run on a PTB-XL-layout dataset or, zero-shot, on a CinC-format folder.

    The run's own preprocessing (sampling rate, filters, normalisation) and validation-tuned thresholds are
    restored through ``xand.training.load_run``; nothing is re-tuned on the evaluated data.

    Parameters
    ----------
    run_dir : a ``runs/<run-id>`` folder written by ``xand.training.train``
    data_dir : PTB-XL-layout folder (evaluated on ``split``: train / val / test / all) or a folder of CinC
        ``.hea`` + ``.mat`` records (every record, labels from the a-priori SNOMED map ``xand.cinc``)
    cache_dir : prepared-array cache for PTB-XL data (see ``xand.prepare``)

    Returns
    -------
    ``{"run", "data", "format", "split", "heads": {head: binary_metrics(...)}, "skipped": [...]}``
    """
    from xand.training import load_run

    pred = load_run(run_dir, device=device)
    if is_cinc_folder(data_dir):
        return _evaluate_cinc(pred, run_dir, data_dir, n_boot, seed, batch_size, progress)
    from xand.prepare import prepare

    prepared = prepare(data_dir, cache_dir=cache_dir, cfg=pred.preprocess_cfg, progress=progress)
    heads: dict[str, Any] = {}
    if prepared.fs != pred.fs or prepared.signals.shape[-1] != pred.n_samples:
        raise DataError(data_dir, f"prepared at {prepared.fs} Hz x {prepared.signals.shape[-1]} samples",
                        f"{pred.fs} Hz x {pred.n_samples} as the run was trained")
    rows = prepared.split_indices(split)
    probs = pred.predict_prepared(np.asarray(prepared.signals[rows]), batch_size=batch_size)
    pos_of = {int(r): i for i, r in enumerate(rows)}
    for head in pred.heads:
        idx, y = prepared.head_labels(head, split)
        p = probs[head][[pos_of[int(r)] for r in idx]]
        heads[head] = binary_metrics(y, p, pred.threshold(head), n_boot, seed)
    return {"run": str(run_dir), "data": str(data_dir), "format": "ptbxl", "split": split,
            "fingerprint": prepared.fingerprint, "heads": heads,
            "skipped": prepared.skipped}


def _evaluate_cinc(pred, run_dir, data_dir, n_boot: int, seed: int, batch_size: int,
                   progress: bool) -> dict[str, Any]:
    from xand.cinc import CincFolder, cinc_labels

    folder = CincFolder(data_dir)
    it = iter(folder)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=len(folder), desc="cinc", unit="rec")
    xs, labels, names = [], [], []
    for rec in it:
        try:
            xs.append(pred.prepare_batch(rec.signal[None], rec.fs)[0])
        except (DataError, ValueError) as exc:
            folder._skip(rec.record_name, str(exc))
            continue
        labels.append(cinc_labels(rec.snomed))
        names.append(rec.record_name)
    heads: dict[str, Any] = {}
    if xs:
        import torch

        probs = pred.predict_tensor(torch.stack(xs), batch_size=batch_size)
        for head in pred.heads:
            status = np.array([lab.get(head, EXCLUDED) for lab in labels])
            keep = status != EXCLUDED
            y = (status[keep] == POSITIVE).astype(np.int64)
            heads[head] = binary_metrics(y, probs[head][keep], pred.threshold(head), n_boot, seed)
            heads[head]["n_excluded"] = int((~keep).sum())
    return {"run": str(run_dir), "data": str(data_dir), "format": "cinc", "split": "all",
            "n_records": len(names), "heads": heads,
            "skipped": [{"record": n, "reason": r} for n, r in folder.skipped]}


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of ``evaluate_run`` output (one line per head)."""
    lines = [f"{result['format']} {result['data']} split={result['split']}",
             f"{'head':6} {'n':>6} {'pos':>5} {'AUC':>6} {'95% CI':>15} {'PR-AUC':>7} {'sens':>6} {'spec':>6} {'F1':>6}"]

    def f(v: Any) -> str:
        return "   -  " if v is None else f"{v:6.3f}"

    for head, m in result["heads"].items():
        ci = m.get("auc_ci")
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        lines.append(f"{head:6} {m['n']:>6} {m['n_pos']:>5} {f(m['auc'])} {ci_s:>15} {f(m['pr_auc']):>7} "
                     f"{f(m['sensitivity'])} {f(m['specificity'])} {f(m['f1'])}")
    if result.get("skipped"):
        lines.append(f"skipped records: {len(result['skipped'])}")
    return "\n".join(lines)


__all__ = ["auc_or_none", "tune_threshold", "bootstrap_auc_ci", "binary_metrics", "evaluate_run",
           "is_cinc_folder", "format_table", "THRESHOLD_METHODS"]
