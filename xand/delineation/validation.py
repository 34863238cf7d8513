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

import numpy as np
import pandas as pd

from xand.constants import N_LEADS
from xand.data.ludb import LudbRecord, list_ludb, read_ludb
from xand.delineation.neurokit import (
    CSE_TOLERANCE_MS, SCORED_KINDS, DelineationCache, DelineationConfig, delineate,
)
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
                       cfg: DelineationConfig | None = None) -> pd.DataFrame:
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
        scores.append(score_fiducials(truth, delineate(ecg, info["fs"], cfg), tolerance_ms=tolerance_ms))
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


def _validate_one(job: tuple) -> tuple[int, dict | None, str | None]:
    ludb_dir, rec, cfg_dict, tolerance_ms, cache_dir = job
    try:
        r = read_ludb(ludb_dir, rec)
        cfg = DelineationConfig(**cfg_dict)
        if cache_dir is not None:
            det = DelineationCache(cache_dir).delineate(r.signal, r.fs, cfg)
        else:
            det = delineate(r.signal, r.fs, cfg)
        scores = score_fiducials(r.fiducials, det, tolerance_ms=tolerance_ms, spans=r.spans)
        scores["_masks"] = _mask_overlap(r, det)
        return rec, scores, None
    except DataError as exc:
        return rec, None, str(exc)
    except Exception as exc:  # a batch reports and skips a record that breaks the delineator
        return rec, None, f"{type(exc).__name__}: {exc}"


def validate_ludb(
    ludb_dir: str | Path,
    records: list[int] | None = None,
    tolerance_ms: float = 150.0,
    cfg: DelineationConfig | None = None,
    workers: int | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Score ``delineate`` against LUDB's per-lead expert annotations.

    Every expert point is matched one-to-one to the nearest detected point of the same kind and lead
    within ``tolerance_ms``; detected points outside the lead's annotated span are not scored.
    Errors (detected minus expert, ms) are pooled over leads and records. The SD of the error is set
    next to the CSE tolerances (2 sigma; CSE Working Party 1985, as used by Martinez et al. 2004).

    Parameters
    ----------
    ludb_dir : LUDB folder
    records : record numbers (default: all in the folder)
    tolerance_ms : matching window (either side)
    cfg : delineation configuration (default ``DelineationConfig()``)
    workers : processes (default: CPU count, at most the number of records)
    progress : show a tqdm bar
    cache_dir : reuse/keep delineations in a ``DelineationCache`` there

    Returns
    -------
    DataFrame indexed by fiducial kind: ``n_ref, n_det, tp, sensitivity, ppv, mean_ms, sd_ms,
    median_abs_ms, cse_sd_ms, pass`` with ``attrs["records"]`` (scored), ``attrs["skipped"]``
    ({record: reason}) and ``attrs["mask_iou"]`` ({head: intersection over union, pooled over leads and records, of the
    clinical masks built from the expert and from the detected fiducials, inside the annotated span}).
    """
    import os

    cfg = cfg or DelineationConfig()
    recs = list(records) if records is not None else list_ludb(ludb_dir)
    jobs = [(str(ludb_dir), int(r), asdict(cfg), tolerance_ms, None if cache_dir is None else str(cache_dir))
            for r in recs]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="LUDB", unit="rec")
    if n_workers == 1:
        it = map(_validate_one, jobs)
        for res in it:
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
    scores = [s for _, s, err in results if err is None]
    overlaps = [s.pop("_masks") for s in scores]
    table = summarize_scores(scores)
    table.attrs["mask_iou"] = {
        head: (sum(o[head][0] for o in overlaps) / max(1, sum(o[head][1] for o in overlaps)))
        if overlaps else float("nan") for head in (overlaps[0] if overlaps else {})}
    table.attrs["records"] = [r for r, _, err in results if err is None]
    table.attrs["skipped"] = {r: err for r, _, err in results if err is not None}
    table.attrs["tolerance_ms"] = tolerance_ms
    table.attrs["config"] = asdict(cfg)
    return table


