"""Delineation scored against a reference: one-to-one matching of fiducial points, error statistics next
to the CSE tolerances, and the validation on LUDB's expert annotations and on the synthetic set's ground
truth.

References
----------
CSE Working Party, Recommendations for measurement standards in quantitative electrocardiography,
Eur Heart J 6:815 (1985). Martinez J.P. et al., A wavelet-based ECG delineator: evaluation on standard
databases, IEEE TBME 51(4) (2004). Kalyakulina A. et al., LUDB, IEEE Access 8 (2020).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xand.constants import N_LEADS
from xand.data.ludb import LudbRecord, list_ludb, read_ludb
from xand.delineation.cache import DelineationCache
from xand.delineation.methods import DELINEATORS, delineate
from xand.delineation.neurokit import CSE_TOLERANCE_MS, SCORED_KINDS, DelineationConfig
from xand.errors import DataError
from xand.fiducials import Fiducials


# --------------------------------------------------------------------------------------------------
# Scoring against a reference
# --------------------------------------------------------------------------------------------------

def match_points(ref: np.ndarray, det: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of reference to detected points, nearest pairs first, within ``tolerance``
    (same unit as the points). Returns the matched indices ``(ref_idx, det_idx)``."""
    ref, det = np.asarray(ref, float), np.asarray(det, float)
    if len(ref) == 0 or len(det) == 0:
        return np.empty(0, int), np.empty(0, int)
    d = np.abs(ref[:, None] - det[None, :])
    ri, di = np.where(d <= tolerance)
    order = np.argsort(d[ri, di], kind="stable")
    used_r, used_d, out_r, out_d = set(), set(), [], []
    for k in order:
        r, q = ri[k], di[k]
        if r not in used_r and q not in used_d:
            used_r.add(r)
            used_d.add(q)
            out_r.append(r)
            out_d.append(q)
    return np.array(out_r, int), np.array(out_d, int)


def score_fiducials(reference: Fiducials, detected: Fiducials, kinds: tuple[str, ...] = SCORED_KINDS,
                    tolerance_ms: float = 150.0, spans: np.ndarray | None = None) -> dict[str, dict]:
    """Match detected to reference points per lead and kind.

    Parameters
    ----------
    reference, detected : Fiducials (``detected`` is rescaled to the reference's rate)
    kinds : kinds to score
    tolerance_ms : matching window either side
    spans : optional ``(12, 2)`` first/last reference sample per lead; an unmatched detection outside
        the span is not counted (the reference is silent there, e.g. LUDB's unannotated edges)

    Returns
    -------
    ``{kind: {"n_ref", "n_det", "tp", "errors_ms" (detected minus reference)}}``
    """
    fs = reference.fs
    if detected.fs != fs:
        detected = detected.resample(fs)
    tol = tolerance_ms * fs / 1000.0
    out = {}
    for kind in kinds:
        n_ref = n_det = tp = 0
        errors: list[float] = []
        for lead, (r, d) in enumerate(zip(reference.kind(kind), detected.kind(kind))):
            r, d = r[np.isfinite(r)], d[np.isfinite(d)]
            ri, di = match_points(r, d, tol)
            unmatched = np.setdiff1d(np.arange(len(d)), di)
            if spans is not None:
                lo, hi = spans[lead]
                inside = np.isfinite(lo) & (d[unmatched] >= lo) & (d[unmatched] <= hi)
                n_fp = int(inside.sum())
            else:
                n_fp = len(unmatched)
            n_ref += len(r)
            tp += len(ri)
            n_det += len(di) + n_fp
            errors += ((d[di] - r[ri]) * 1000.0 / fs).tolist()
        out[kind] = {"n_ref": n_ref, "n_det": n_det, "tp": tp, "errors_ms": errors}
    return out


def summarize_scores(scores: list[dict[str, dict]]) -> pd.DataFrame:
    """Pool per-record ``score_fiducials`` results into one table indexed by kind with ``n_ref, n_det,
    tp, sensitivity, ppv, mean_ms, sd_ms, median_abs_ms, cse_sd_ms, pass`` (pass: SD within the CSE
    2-sigma tolerance; None where CSE gives none). ``median_abs_ms`` shows the typical error next to
    the SD, which a few gross errors inside the matching window inflate."""
    kinds = list(scores[0]) if scores else list(SCORED_KINDS)
    rows = []
    for kind in kinds:
        n_ref = sum(s[kind]["n_ref"] for s in scores)
        n_det = sum(s[kind]["n_det"] for s in scores)
        tp = sum(s[kind]["tp"] for s in scores)
        err = np.concatenate([np.asarray(s[kind]["errors_ms"], float) for s in scores]) if scores else np.empty(0)
        sd = float(np.std(err, ddof=1)) if len(err) > 1 else float("nan")
        cse = CSE_TOLERANCE_MS.get(kind, float("nan"))
        rows.append({
            "fiducial": kind, "n_ref": n_ref, "n_det": n_det, "tp": tp,
            "sensitivity": tp / n_ref if n_ref else float("nan"),
            "ppv": tp / n_det if n_det else float("nan"),
            "mean_ms": float(np.mean(err)) if len(err) else float("nan"),
            "sd_ms": sd, "median_abs_ms": float(np.median(np.abs(err))) if len(err) else float("nan"),
            "cse_sd_ms": cse,
            "pass": (bool(sd <= cse) if np.isfinite(cse) and np.isfinite(sd) else None),
        })
    return pd.DataFrame(rows).set_index("fiducial")


def validate_synthetic(synth_dir: str | Path, ecg_ids: list[int] | None = None, tolerance_ms: float = 150.0,
                       cfg: DelineationConfig | None = None, delineator: str = "neurokit") -> pd.DataFrame:
    """Score ``delineate`` on the synthetic set, whose ground-truth fiducials are exact (written with
    the PTB-XL+ layout, read by ``xand.data.ptbxl_plus.read_fiducials``). Same table as ``validate_ludb``."""
    import wfdb

    from xand.data.ptbxl_plus import read_fiducials

    root = Path(synth_dir)
    db = root / "ptbxl_database.csv"
    if not db.is_file():
        raise DataError(db, "is missing", "a PTB-XL-layout synthetic folder")
    meta = pd.read_csv(db, index_col="ecg_id")
    ids = list(meta.index if ecg_ids is None else ecg_ids)
    scores = []
    for eid in ids:
        sig, info = wfdb.rdsamp(str(root / meta.loc[eid, "filename_hr"]))
        ecg = sig.T.astype(np.float32)
        truth = read_fiducials(root, int(eid), fs=info["fs"], n_samples=ecg.shape[1])
        det = delineate(ecg, info["fs"], delineator, **({"cfg": cfg} if delineator == "neurokit" and cfg else {}))
        scores.append(score_fiducials(truth, det, tolerance_ms=tolerance_ms))
    table = summarize_scores(scores)
    table.attrs["records"] = ids
    return table


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------

def _mask_overlap(r: LudbRecord, det: Fiducials) -> dict[str, tuple[int, int]]:
    """Per head, (intersection, union) in samples of the masks from the expert and the detected
    fiducials, inside each lead's annotated span."""
    from xand.delineation.masks import MASK_TABLE, clinical_mask

    inside = np.zeros((N_LEADS, r.fiducials.n_samples), dtype=bool)
    for i, (lo, hi) in enumerate(r.spans):
        if np.isfinite(lo):
            inside[i, int(lo):int(hi) + 1] = True
    out = {}
    for head in MASK_TABLE:
        a = clinical_mask(r.fiducials, head) & inside
        b = clinical_mask(det, head, n_samples=r.fiducials.n_samples, fs=r.fs) & inside
        out[head] = (int((a & b).sum()), int((a | b).sum()))
    return out


def _validate_one(job: tuple) -> tuple[int, LudbRecord | None, Fiducials | None, str | None]:
    ludb_dir, rec, delineator, options, cache_dir = job
    try:
        r = read_ludb(ludb_dir, rec)
        if cache_dir is not None:
            det = DelineationCache(cache_dir).delineate(r.signal, r.fs, delineator=delineator, **options)
        else:
            det = delineate(r.signal, r.fs, delineator, **options)
        return rec, r, det, None
    except DataError as exc:
        return rec, None, None, str(exc)
    except Exception as exc:  # a batch reports and skips a record that breaks the delineator
        return rec, None, None, f"{type(exc).__name__}: {exc}"


def cv_folds(records: list[int], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` record-level folds (a seeded shuffle dealt round-robin); every record is in exactly one."""
    if k < 2 or k > len(records):
        raise DataError(None, f"{k} folds for {len(records)} records", "2 <= K <= the number of records")
    order = np.random.default_rng(seed).permutation(sorted(records))
    return [sorted(int(r) for r in order[i::k]) for i in range(k)]


def fit_offsets(scores: list[dict[str, dict]]) -> dict[str, float]:
    """Per kind, the mean error (ms, detected minus reference) pooled over ``score_fiducials`` results:
    the systematic offset ``methods.apply_offsets`` removes."""
    out = {}
    for kind in (scores[0] if scores else {}):
        err = np.concatenate([np.asarray(s[kind]["errors_ms"], float) for s in scores])
        if len(err):
            out[kind] = float(np.mean(err))
    return out


#: Goals of the delineation issue for the intervals' mean absolute error against LUDB's experts (ms).
INTERVAL_GOALS_MS: dict[str, float] = {"qrs_ms": 8.0, "pr_ms": 10.0, "qt_ms": 15.0}


def _interval_errors(expert: list, detected: list) -> dict[str, np.ndarray]:
    from xand.delineation.measure import INTERVALS

    return {name: np.array([getattr(d, name) - getattr(e, name) for e, d in zip(expert, detected)], float)
            for name in INTERVALS}


def summarize_intervals(errors: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per interval: records measured by both, mean error, SD, mean absolute error with a bootstrap
    95 % CI over records, the goal and whether the MAE meets it."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, e in errors.items():
        e = e[np.isfinite(e)]
        if len(e):
            boots = np.abs(e[rng.integers(0, len(e), (n_boot, len(e)))]).mean(axis=1)
            lo, hi = np.percentile(boots, [2.5, 97.5])
        else:
            lo = hi = float("nan")
        mae = float(np.mean(np.abs(e))) if len(e) else float("nan")
        goal = INTERVAL_GOALS_MS.get(name, float("nan"))
        rows.append({"interval": name, "n": int(len(e)), "mean_ms": float(np.mean(e)) if len(e) else float("nan"),
                     "sd_ms": float(np.std(e, ddof=1)) if len(e) > 1 else float("nan"), "mae_ms": mae,
                     "mae_lo": float(lo), "mae_hi": float(hi), "goal_ms": goal,
                     "pass": bool(mae <= goal) if np.isfinite(goal) and np.isfinite(mae) else None})
    return pd.DataFrame(rows).set_index("interval")


def validate_ludb(
    ludb_dir: str | Path,
    records: list[int] | None = None,
    tolerance_ms: float = 150.0,
    cfg: DelineationConfig | None = None,
    workers: int | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
    delineator: str = "neurokit",
    options: dict | None = None,
    cv: int | None = None,
    seed: int = 0,
    detections: dict[int, Fiducials] | None = None,
) -> pd.DataFrame:
    """Score a delineator against LUDB's per-lead expert annotations.

    Every expert point is matched one-to-one to the nearest detected point of the same kind and lead
    within ``tolerance_ms``; detected points outside the lead's annotated span are not scored.
    Errors (detected minus expert, ms) are pooled over leads and records. The SD of the error is set
    next to the CSE tolerances (2 sigma; CSE Working Party 1985, as used by Martinez et al. 2004).
    The clinical intervals (``xand.delineation.measure``) from the detected and from the expert points
    are compared too.

    With ``cv = K`` the records are split into K record-level folds; each fold is scored after removing
    the systematic offsets (per kind, ``fit_offsets``) and the intervals' mean errors fitted on the other
    K - 1 folds only, so no record is scored with a correction that saw it.

    Parameters
    ----------
    ludb_dir : LUDB folder
    records : record numbers (default: all in the folder)
    tolerance_ms : matching window (either side)
    cfg : NeuroKit configuration for ``delineator="neurokit"`` (default ``DelineationConfig()``)
    workers : processes (default: CPU count, at most the number of records)
    progress : show a tqdm bar
    cache_dir : reuse/keep delineations in a ``DelineationCache`` there
    delineator : a name of ``xand.delineation.methods.DELINEATORS``
    options : the delineator's options (``cfg`` is passed as ``options["cfg"]`` for neurokit)
    cv : number of folds for the offset correction (None: raw marks, no correction)
    seed : fold assignment
    detections : ``{record: Fiducials}`` computed elsewhere (e.g. a learned delineator's held-out folds),
        scored instead of running ``delineator``

    Returns
    -------
    DataFrame indexed by fiducial kind: ``n_ref, n_det, tp, sensitivity, ppv, mean_ms, sd_ms,
    median_abs_ms, cse_sd_ms, pass`` with ``attrs``: ``records`` (scored), ``skipped`` ({record:
    reason}), ``mask_iou`` ({head: intersection over union, pooled over leads and records, of the
    clinical masks from the expert and from the detected fiducials, inside the annotated span}),
    ``intervals`` (the ``summarize_intervals`` table as ``{interval: {column: value}}``), ``offsets_ms`` and ``interval_offsets_ms`` (fitted on
    every scored record, for use on new ECGs; empty without ``cv``), ``delineator``, ``options``, ``cv``.
    """
    import os

    from xand.delineation.measure import measure
    from xand.delineation.methods import apply_offsets

    DELINEATORS.get(delineator)
    options = dict(options or {})
    if detections is not None:
        delineator = "given detections"
    elif delineator == "neurokit":
        options["cfg"] = cfg or options.get("cfg") or DelineationConfig()
    recs = list(records) if records is not None else list_ludb(ludb_dir)
    jobs = [(str(ludb_dir), int(r), delineator, options, None if cache_dir is None else str(cache_dir))
            for r in recs]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results = []
    bar = None
    if progress and jobs and detections is None:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="LUDB", unit="rec")
    if detections is not None:
        for rec in recs:
            if int(rec) not in detections:
                results.append((int(rec), None, None, "no detection given"))
                continue
            try:
                results.append((int(rec), read_ludb(ludb_dir, int(rec)), detections[int(rec)], None))
            except DataError as exc:  # reported and skipped, as on the delineating path
                results.append((int(rec), None, None, str(exc)))
        jobs = []
    if not jobs:
        pass
    elif n_workers == 1:
        for res in map(_validate_one, jobs):
            results.append(res)
            if bar is not None:
                bar.update()
    else:
        with ProcessPoolExecutor(n_workers) as ex:
            for res in ex.map(_validate_one, jobs):
                results.append(res)
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    ok = [(rec, r, det) for rec, r, det, err in results if err is None]
    by_rec = {rec: (r, det) for rec, r, det in ok}

    def score(r: LudbRecord, det: Fiducials) -> dict:
        return score_fiducials(r.fiducials, det, tolerance_ms=tolerance_ms, spans=r.spans)

    expert_m = {rec: measure(r.signal, r.fs, r.fiducials) for rec, r, _ in ok}
    raw_scores = {rec: score(r, det) for rec, r, det in ok}
    final_det: dict[int, Fiducials] = {}
    det_m: dict[int, Any] = {}
    offsets: dict[str, float] = {}
    interval_offsets: dict[str, float] = {}
    folds = cv_folds([rec for rec, _, _ in ok], cv, seed) if cv else [[rec for rec, _, _ in ok]]
    fold_offsets: list[dict[str, float]] = []
    for fold in folds:
        train = [rec for rec in by_rec if rec not in fold] if cv else []
        off = fit_offsets([raw_scores[rec] for rec in train]) if train else {}
        if train:
            fold_offsets.append(off)
        corrected = {rec: apply_offsets(by_rec[rec][1], off) for rec in by_rec}
        meas = {rec: measure(by_rec[rec][0].signal, by_rec[rec][0].fs, corrected[rec])
                for rec in (train + fold)}
        ioff = {}
        if train:
            errs = _interval_errors([expert_m[r] for r in train], [meas[r] for r in train])
            ioff = {name: float(np.nanmean(e)) for name, e in errs.items() if np.isfinite(e).any()}
        for rec in fold:
            final_det[rec] = corrected[rec]
            for name, o in ioff.items():
                setattr(meas[rec], name, getattr(meas[rec], name) - o)
            det_m[rec] = meas[rec]
    if cv:
        offsets = fit_offsets(list(raw_scores.values()))
        all_corr = {rec: apply_offsets(by_rec[rec][1], offsets) for rec in by_rec}
        errs = _interval_errors([expert_m[r] for r in by_rec],
                                [measure(by_rec[r][0].signal, by_rec[r][0].fs, all_corr[r]) for r in by_rec])
        interval_offsets = {name: float(np.nanmean(e)) for name, e in errs.items() if np.isfinite(e).any()}
    scored = [rec for rec, _, _ in ok]
    scores = [score(by_rec[rec][0], final_det[rec]) for rec in scored]
    overlaps = [_mask_overlap(by_rec[rec][0], final_det[rec]) for rec in scored]
    table = summarize_scores(scores)
    table.attrs["mask_iou"] = {
        head: (sum(o[head][0] for o in overlaps) / max(1, sum(o[head][1] for o in overlaps)))
        if overlaps else float("nan") for head in (overlaps[0] if overlaps else {})}
    # a dict, not a DataFrame: pandas compares attrs on every operation and a frame there breaks that
    table.attrs["intervals"] = summarize_intervals(
        _interval_errors([expert_m[r] for r in scored], [det_m[r] for r in scored])).to_dict(orient="index")
    table.attrs["records"] = scored
    table.attrs["skipped"] = {rec: err for rec, _, _, err in results if err is not None}
    table.attrs["tolerance_ms"] = tolerance_ms
    table.attrs["delineator"] = delineator
    table.attrs["options"] = {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in options.items()}
    table.attrs["config"] = table.attrs["options"].get("cfg", table.attrs["options"])
    table.attrs["cv"] = cv
    table.attrs["offsets_ms"] = offsets
    table.attrs["interval_offsets_ms"] = interval_offsets
    # how much the correction depends on which records it is fitted on (the CV mean error is ~0 by
    # construction with equal folds, so this spread is the informative figure)
    table.attrs["fold_offsets_ms"] = fold_offsets
    return table
