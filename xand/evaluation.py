"""Classification metrics of trained runs: on PTB-XL-layout datasets and zero-shot on CinC folders.

The per-head metrics are ``xand.metrics`` (the ones training writes into ``summary.json``: ROC-AUC with
its bootstrap CI, PR-AUC, and sensitivity / specificity / F1 at the validation-tuned threshold), so the
training report and a later ``python -m xand evaluate`` cannot disagree on definitions. This module adds
the run-level views: evaluation on a split or a CinC folder, curves, calibration and tables for the app.

References
----------
Strodthoff N. et al., Deep learning for ECG analysis: benchmarks and insights from PTB-XL, IEEE JBHI 2021
(macro-AUC evaluation on fold 10).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xand.constants import EXCLUDED, POSITIVE
from xand.errors import DataError, UnknownNameError
from xand.metrics import binary_metrics


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
    restored through ``xand.training.predictor.load_run``; nothing is re-tuned on the evaluated data.

    Parameters
    ----------
    run_dir : a ``runs/<run-id>`` folder written by ``xand.training.trainer.train``
    data_dir : PTB-XL-layout folder (evaluated on ``split``: train / val / test / all) or a folder of CinC
        ``.hea`` + ``.mat`` records (every record, labels from the a-priori SNOMED map ``xand.data.cinc``)
    cache_dir : prepared-array cache for PTB-XL data (see ``xand.data.prepare``)

    Returns
    -------
    ``{"run", "data", "format", "split", "heads": {head: binary_metrics(...)}, "skipped": [...]}``
    """
    from xand.training.predictor import load_run

    pred = load_run(run_dir, device=device)
    if is_cinc_folder(data_dir):
        return _evaluate_cinc(pred, run_dir, data_dir, n_boot, seed, batch_size, progress)
    from xand.data.prepare import prepare

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
    from xand.data.cinc import CincFolder, cinc_labels

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


# ------------------------------------------------------------------------------ cohort evaluation (app)
#
# The Evaluate page of the viewer: curves, calibration and score distributions of a run's probabilities on
# a split, read from a table with one row per record (``split``, the per-head pure-label status columns and
# ``p_<HEAD>`` probabilities, as ``pages.common.records_table`` has it). Pure functions of arrays and tables,
# so that the figures in ``xand.figures.evaluation`` and the downloads show exactly what is computed here.
#
# Niculescu-Mizil A., Caruana R., Predicting good probabilities with supervised learning, ICML 2005
# (reliability diagrams). Brier G.W., Verification of forecasts expressed in terms of probability, Monthly
# Weather Review 78(1) 1950. Naeini M.P., Cooper G., Hauskrecht M., Obtaining well calibrated probabilities
# using Bayesian binning, AAAI 2015 (expected calibration error). Saito T., Rehmsmeier M., The
# precision-recall plot is more informative than the ROC plot when evaluating binary classifiers on
# imbalanced datasets, PLoS ONE 10(3) 2015.

def head_arrays(table: "pd.DataFrame", head: str, split: str = "test") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and probabilities of one head on one split, pure-label-excluded records left out.

    Parameters
    ----------
    table : one row per record with ``ecg_id``, ``split``, ``<head>`` (1/0/-1) and ``p_<head>``
    split : "train", "val", "test" or "all"

    Returns
    -------
    ecg_ids ``(M,)`` int64, y ``(M,)`` int64 in {0, 1}, p ``(M,)`` float64
    """
    col = f"p_{head}"
    for c in (head, col, "split", "ecg_id"):
        if c not in table.columns:
            raise DataError(None, f"records table has no column {c!r}", f"columns ecg_id, split, {head}, {col}")
    sub = table if split == "all" else table[table["split"] == split]
    sub = sub[(sub[head] != EXCLUDED) & sub[col].notna()]
    return (sub["ecg_id"].to_numpy(dtype=np.int64), (sub[head] == POSITIVE).to_numpy(dtype=np.int64),
            sub[col].to_numpy(dtype=np.float64))


def roc_pr_curves(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves of scores ``p (N,)`` for labels ``y (N,)`` in {0, 1}.

    Returns
    -------
    ``{"fpr", "tpr", "roc_thresholds", "precision", "recall", "pr_thresholds", "prevalence"}`` (arrays;
    the curves are None when ``y`` has a single class, where they are undefined)
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    out: dict[str, Any] = {"prevalence": float(y.mean()) if y.size else None}
    if y.size == 0 or y.min() == y.max():
        return {**out, "fpr": None, "tpr": None, "roc_thresholds": None, "precision": None, "recall": None,
                "pr_thresholds": None}
    fpr, tpr, rthr = roc_curve(y, p)
    prec, rec, pthr = precision_recall_curve(y, p)
    return {**out, "fpr": fpr, "tpr": tpr, "roc_thresholds": np.minimum(rthr, 1.0), "precision": prec,
            "recall": rec, "pr_thresholds": pthr}


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: str = "uniform") -> "pd.DataFrame":
    """Reliability-diagram data: per probability bin, the mean predicted probability and the observed
    fraction of positives (``sklearn.calibration.calibration_curve``), with the bin's record count.

    Parameters
    ----------
    y, p : labels in {0, 1} and probabilities, ``(N,)``
    n_bins : number of bins on [0, 1]
    strategy : "uniform" (equal-width bins) or "quantile" (equal-count bins)

    Returns
    -------
    DataFrame ``bin_low, bin_high, n, p_mean, frac_pos`` (non-empty bins only); ``attrs`` hold ``brier``
    (Brier 1950) and ``ece``, the count-weighted mean |frac_pos - p_mean| (Naeini et al. 2015).
    """
    import pandas as pd
    from sklearn.calibration import calibration_curve

    if strategy not in ("uniform", "quantile"):
        raise UnknownNameError("calibration binning", strategy, ("uniform", "quantile"))
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    cols = ["bin_low", "bin_high", "n", "p_mean", "frac_pos"]
    if y.size == 0:
        df = pd.DataFrame(columns=cols)
        df.attrs.update(brier=None, ece=None, n_bins=n_bins, strategy=strategy)
        return df
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p)  # exactly calibration_curve's binning, so the counts match
    counts = np.bincount(which, minlength=len(edges) - 1)
    nonempty = counts > 0
    if y.min() == y.max():  # calibration_curve refuses one class; the fractions are still defined
        frac = np.bincount(which, weights=y, minlength=len(edges) - 1)[nonempty] / counts[nonempty]
        mean = np.bincount(which, weights=p, minlength=len(edges) - 1)[nonempty] / counts[nonempty]
    else:
        frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    df = pd.DataFrame({"bin_low": edges[:-1][nonempty], "bin_high": edges[1:][nonempty],
                       "n": counts[nonempty].astype(np.int64), "p_mean": mean, "frac_pos": frac})
    df.attrs.update(brier=float(np.mean((p - y) ** 2)),
                    ece=float(np.sum(df["n"] * np.abs(df["frac_pos"] - df["p_mean"])) / y.size),
                    n_bins=n_bins, strategy=strategy)
    return df


def evaluate_predictions(table: "pd.DataFrame", heads: list[str] | tuple[str, ...], thresholds: dict[str, float],
                         split: str = "test", n_boot: int = 1000, seed: int = 0, n_bins: int = 10,
                         strategy: str = "uniform") -> dict[str, dict[str, Any]]:
    """Everything the Evaluate page shows for each head of a run on one split.

    Parameters
    ----------
    table : one row per record (see ``head_arrays``)
    thresholds : the run's validation-tuned threshold per head (``Predictor.threshold``)
    n_boot, seed : bootstrap of the AUC CI (``bootstrap_auc_ci``)
    n_bins, strategy : calibration bins (``calibration_table``)

    Returns
    -------
    ``{head: {"ecg_id", "y", "p", "metrics": binary_metrics(...), "curves": roc_pr_curves(...),
    "operating_point": {"fpr", "tpr", "precision", "recall"}, "calibration": calibration_table(...)}}``;
    heads without a ``p_<head>`` column are left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for head in heads:
        if f"p_{head}" not in table.columns:
            continue
        ids, y, p = head_arrays(table, head, split)
        thr = float(thresholds.get(head, 0.5))
        m = binary_metrics(y, p, thr, n_boot, seed)
        c = m["confusion"]
        op = {"fpr": (c["fp"] / (c["fp"] + c["tn"])) if c["fp"] + c["tn"] else None,
              "tpr": m["sensitivity"], "precision": m["ppv"], "recall": m["sensitivity"]}
        out[head] = {"ecg_id": ids, "y": y, "p": p, "metrics": m, "curves": roc_pr_curves(y, p),
                     "operating_point": op, "calibration": calibration_table(y, p, n_bins, strategy)}
    return out


def calibration_summary(predictor) -> "pd.DataFrame":
    """Per head: the temperature in use and where it comes from (``calibration.json`` of ``python -m xand
    calibrate``, the training-time fit, or none), with the validation and test ECE and Brier score before
    and after scaling as that fit measured them."""
    import json

    import pandas as pd

    from xand.training.predictor import CALIBRATION_FILE

    path = predictor.run_dir / CALIBRATION_FILE
    posthoc = json.loads(path.read_text()).get("heads", {}) if path.is_file() else {}
    rows = []
    for h in predictor.heads:
        s = predictor._unit_summary.get(predictor._unit(h), {}).get("heads", {}).get(h, {})
        rep = posthoc.get(h) or s.get("calibration") or {}
        source = "python -m xand calibrate" if h in posthoc else "fitted at training" if rep else "none (T = 1)"
        row = {"head": h, "temperature": predictor.temperature(h) if predictor.calibrated else 1.0, "source": source}
        for split in ("val", "test"):
            r = rep.get(split) or {}
            row.update({f"{split}_ece_raw": r.get("ece_raw"), f"{split}_ece": r.get("ece"),
                        f"{split}_brier_raw": r.get("brier_raw"), f"{split}_brier": r.get("brier")})
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(evals: dict[str, dict[str, Any]], summary: dict[str, Any] | None = None) -> "pd.DataFrame":
    """One row per head: the split's metrics from ``evaluate_predictions`` next to the run's own
    ``summary.json`` figures (``val_auc``; ``test_dagger``, the test AUC of the checkpoint chosen on
    validation, and its CI).
    """
    import pandas as pd

    heads_summary = (summary or {}).get("heads", {})
    rows = []
    for head, e in evals.items():
        m, cal = e["metrics"], e["calibration"]
        ci = m.get("auc_ci") or (None, None)
        s = heads_summary.get(head, {})
        sci = s.get("test_auc_ci") or (None, None)
        rows.append({
            "head": head, "n": m["n"], "n_pos": m["n_pos"], "auc": m["auc"], "auc_ci_low": ci[0],
            "auc_ci_high": ci[1], "pr_auc": m["pr_auc"], "threshold": m["threshold"],
            "sensitivity": m["sensitivity"], "specificity": m["specificity"], "ppv": m["ppv"], "npv": m["npv"],
            "f1": m["f1"], **{k: m["confusion"][k] for k in ("tn", "fp", "fn", "tp")},
            "brier": cal.attrs.get("brier"), "ece": cal.attrs.get("ece"),
            "val_auc": s.get("val_auc"), "test_dagger": s.get("test_dagger"),
            "test_dagger_ci_low": sci[0], "test_dagger_ci_high": sci[1],
        })
    return pd.DataFrame(rows)


def calibration_long(evals: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    """The calibration bins of every head in one table (a ``head`` column first), for downloads."""
    import pandas as pd

    parts = [e["calibration"].assign(head=h) for h, e in evals.items() if len(e["calibration"])]
    if not parts:
        return pd.DataFrame(columns=["head", "bin_low", "bin_high", "n", "p_mean", "frac_pos"])
    df = pd.concat(parts, ignore_index=True)
    return df[["head", *[c for c in df.columns if c != "head"]]]


def score_table(evals: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    """Per-record scores of every head (``head, ecg_id, label, probability, decision``), for downloads."""
    import pandas as pd

    parts = [pd.DataFrame({"head": h, "ecg_id": e["ecg_id"], "label": e["y"], "probability": e["p"],
                           "decision": (e["p"] >= e["metrics"]["threshold"]).astype(int)})
             for h, e in evals.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["head", "ecg_id", "label", "probability", "decision"])


def runs_comparison(runs: dict[str, str | Path]) -> "pd.DataFrame":
    """Trained runs side by side from their ``summary.json`` (nothing recomputed).

    Parameters
    ----------
    runs : display name -> run folder

    Returns
    -------
    One row per (run, head): ``run, model, run_id, head, val_auc, test_dagger, test_ci_low, test_ci_high,
    pr_auc, sensitivity, specificity, threshold, n_test, n_test_pos, best_epoch``. A run without a
    ``summary.json`` yet (still training) gets one row with ``head`` None.
    """
    import json

    import pandas as pd

    rows = []
    for name, folder in runs.items():
        folder = Path(folder)
        summ = folder / "summary.json"
        cfg = folder / "config.json"
        try:
            summary = json.loads(summ.read_text()) if summ.is_file() else {}
            config = json.loads(cfg.read_text()) if cfg.is_file() else {}
        except (OSError, ValueError) as exc:
            raise DataError(summ, f"unreadable ({exc})", "a run written by xand.training.trainer.train") from None
        model = summary.get("model") or config.get("model", {}).get("name")
        base = {"run": name, "model": model, "run_id": summary.get("run_id") or config.get("run_id")}
        heads = summary.get("heads") or {}
        if not heads:
            rows.append({**base, "head": None})
        for head, s in heads.items():
            ci = s.get("test_auc_ci") or (None, None)
            rows.append({**base, "head": head, "val_auc": s.get("val_auc"), "test_dagger": s.get("test_dagger"),
                         "test_ci_low": ci[0], "test_ci_high": ci[1], "pr_auc": s.get("pr_auc"),
                         "sensitivity": s.get("sensitivity"), "specificity": s.get("specificity"),
                         "threshold": s.get("threshold"), "n_test": s.get("n_test"),
                         "n_test_pos": s.get("n_test_pos"), "best_epoch": s.get("best_epoch")})
    cols = ["run", "model", "run_id", "head", "val_auc", "test_dagger", "test_ci_low", "test_ci_high", "pr_auc",
            "sensitivity", "specificity", "threshold", "n_test", "n_test_pos", "best_epoch"]
    return pd.DataFrame(rows, columns=cols)


#: Column labels of ``runs_wide`` (the run summary's names as the training report prints them).
RUN_VALUE_LABELS: dict[str, str] = {"val_auc": "Val AUC", "test_dagger": "Test†", "test_ci_low": "Test† CI low",
                                    "test_ci_high": "Test† CI high", "pr_auc": "PR-AUC"}


def runs_wide(long: "pd.DataFrame", values: tuple[str, ...] = ("val_auc", "test_dagger")) -> "pd.DataFrame":
    """``runs_comparison`` as one row per run and one column per (head, value): ``MI Val AUC``,
    ``MI Test†``, ... (labels from ``RUN_VALUE_LABELS``), after a ``model`` column."""
    import pandas as pd

    from xand.constants import HEADS

    df = long.dropna(subset=["head"])
    if df.empty:
        return pd.DataFrame({"run": long["run"].unique()}) if len(long) else pd.DataFrame(columns=["run"])
    wide = df.pivot_table(index="run", columns="head", values=list(values), aggfunc="first", dropna=False)
    heads = [h for h in HEADS if h in set(df["head"])] + sorted(set(df["head"]) - set(HEADS))
    cols = [(v, h) for h in heads for v in values if (v, h) in wide.columns]
    wide = wide[cols]
    wide.columns = [f"{h} {RUN_VALUE_LABELS.get(v, v)}" for v, h in cols]
    order = list(dict.fromkeys(long["run"]))
    wide = wide.reindex([r for r in order if r in wide.index])
    models = long.drop_duplicates("run").set_index("run")["model"]
    wide.insert(0, "model", models.reindex(wide.index))
    return wide.reset_index()


# ------------------------------------------------------------------------ batch XAI results of a run

def xai_out_dir(root: str | Path, data_fingerprint: str | None = None, run_fingerprint: str | None = None,
                max_per_head: int | None = None) -> Path:
    """Where ``xand.explain.xai.xai_batch`` results of a run are kept for the app.

    ``root/`` (normally ``<run>/xai``, where ``python -m xand xai`` writes by default) for the run's own
    dataset and all positives; ``root/<data fingerprint>/`` for another dataset; a ``first<N>`` sub-folder
    for a subset of at most N positives per head, so that a quick look never passes for the full table.
    """
    out = Path(root)
    if data_fingerprint and run_fingerprint and data_fingerprint != run_fingerprint:
        out = out / str(data_fingerprint)
    if max_per_head is not None:
        out = out / f"first{int(max_per_head)}"
    return out


def load_xai_summary(out_dir: str | Path, split: str, method: str) -> "pd.DataFrame | None":
    """The per-head summary ``xai_batch`` wrote into ``out_dir`` for ``split`` and ``method`` (``attrs``:
    its JSON information, ``records_path``), or None when it has not been computed there."""
    import json

    import pandas as pd

    out_dir = Path(out_dir)
    csv, js = out_dir / f"{split}_{method}.csv", out_dir / f"{split}_{method}.json"
    if not csv.is_file():
        return None
    try:
        df = pd.read_csv(csv)
        info = json.loads(js.read_text()) if js.is_file() else {}
    except (OSError, ValueError) as exc:
        raise DataError(csv, f"unreadable ({exc})", "a table written by xand.explain.xai.xai_batch") from None
    info.pop("heads", None)
    df.attrs.update(info, records_path=str(out_dir / f"{split}_{method}_records.csv"), out_dir=str(out_dir))
    return df


#: Columns of the XAI table shown per head: (label, summary column stem).
XAI_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Pointing Game", "pointing_game"), ("CAS", "cas"), ("rank accuracy", "rank_accuracy"),
    ("drop mask", "drop_mask"), ("drop random", "drop_random"), ("drop diff", "drop_diff"),
    ("cosine", "cosine"),
)


def xai_table(summary: "pd.DataFrame") -> "pd.DataFrame":
    """``xai_batch``'s per-head summary as the app shows it: n, undefined/skipped, chance level and per
    score ``mean`` with its 95% CI (``lo``, ``hi``); scores the summary lacks are left out."""
    import pandas as pd

    rows = []
    for _, r in summary.iterrows():
        row: dict[str, Any] = {"head": r["head"], "n": int(r["n"]), "n_positive": int(r.get("n_positive", r["n"])),
                               "skipped": int(r.get("n_skipped", 0)),
                               "PG undefined": int(r.get("pointing_game_undefined", 0)),
                               "chance": r.get("chance_mean"),
                               # the Pointing Game's own chance (regions for a wave-level method)
                               "PG chance": r.get("chance_pg_mean", r.get("chance_mean"))}
        for label, stem in XAI_COLUMNS:
            if f"{stem}_mean" not in r.index:
                continue
            row[label] = r[f"{stem}_mean"]
            row[f"{label} lo"] = r.get(f"{stem}_ci_low")
            row[f"{label} hi"] = r.get(f"{stem}_ci_high")
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["evaluate_run", "is_cinc_folder", "format_table", "head_arrays", "roc_pr_curves",
           "calibration_table", "calibration_summary", "evaluate_predictions", "metrics_table", "calibration_long", "score_table",
           "runs_comparison", "runs_wide", "RUN_VALUE_LABELS", "xai_out_dir", "load_xai_summary", "xai_table",
           "XAI_COLUMNS"]
