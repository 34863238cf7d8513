"""A dataset's records table for Browse and Review: probabilities computed in the background and cached
on disk, the cohort filters."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.common.config import STATUS_TEXT, Selection
from pages.common.services import (
    EXPLAIN_LOCK,
    STOPPING,
    get_predictor,
    get_prepared,
    run_stamp,
    start_worker,
    threshold_of,
)
from xand.constants import EXCLUDED, HEADS, POSITIVE
from xand.fileio import atomic_write


def predictions_file(prep, run_dir: Path, stamp: float) -> Path:
    """Where the probabilities of a run on a prepared set are kept (next to the prepared set)."""
    key = hashlib.sha256(f"{Path(run_dir).resolve()}|{stamp}".encode()).hexdigest()[:16]
    return Path(prep.root) / "predictions" / f"{key}.csv"


_PROB_JOBS: dict[str, dict] = {}  # predictions file -> {"done", "total", "error", "thread"}


_PROB_JOBS_LOCK = threading.Lock()


def _compute_probabilities(prep, pred, disk: Path, job: dict, chunk: int) -> None:
    probs: dict[str, list[np.ndarray]] = {}
    for a in range(0, len(prep), chunk):
        if STOPPING.is_set():  # the server is exiting: the next session recomputes
            return
        with EXPLAIN_LOCK:  # one model computation at a time: an explanation waits one chunk at most
            part = pred.predict_proba(np.asarray(prep.signals[a:a + chunk]), prep.fs)
        for h, p in part.items():
            probs.setdefault(h, []).append(np.asarray(p, dtype=np.float64))
        job["done"] = min(a + chunk, len(prep))
    df = pd.DataFrame({f"p_{h}": np.concatenate(v) for h, v in probs.items()},
                      index=pd.Index(prep.index["ecg_id"].astype(int), name="ecg_id"))
    disk.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(disk, df.to_csv)  # readers see the whole file or none


def ensure_probabilities(sel: "Selection", chunk: int = 128) -> bool:
    """Every head's probability for every record, computed once onto disk next to the prepared set.

    Returns True when they are ready. With ``background`` the computation runs in a thread (one per run
    and dataset, whatever the number of sessions) and this returns False until it is done
    (:func:`probability_job` has the progress); without, it computes here with a progress bar.
    """
    if sel.run_dir is None:
        return False
    prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    stamp = run_stamp(sel.run_dir)
    disk = predictions_file(prep, sel.run_dir, stamp)
    if disk.is_file():
        return True
    pred = get_predictor(str(sel.run_dir), stamp)
    if not sel.cfg.background:
        job = {"done": 0, "total": len(prep), "error": None}
        with st.spinner(f"Model probabilities for {len(prep)} records …"):
            _compute_probabilities(prep, pred, disk, job, chunk)
        return True
    with _PROB_JOBS_LOCK:
        job = _PROB_JOBS.get(str(disk))
        if job is None or (not job["thread"].is_alive() and job["error"] is None and not disk.is_file()):
            job = {"done": 0, "total": len(prep), "error": None}

            def work() -> None:
                try:
                    _compute_probabilities(prep, pred, disk, job, chunk)
                except Exception as exc:  # noqa: BLE001 - reported on the page
                    job["error"] = f"{type(exc).__name__}: {exc}"

            job["thread"] = start_worker(work, "xand-probabilities")
            _PROB_JOBS[str(disk)] = job
            job["thread"].start()
    return disk.is_file()


def probability_job(sel: "Selection") -> dict | None:
    """Progress of the background probability computation of the selected run (None when none)."""
    if sel.run_dir is None:
        return None
    prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    return _PROB_JOBS.get(str(predictions_file(prep, sel.run_dir, run_stamp(sel.run_dir))))


@st.cache_data(show_spinner=False, max_entries=16)
def records_table(data_dir: str, cache_dir: str, run_dir: str | None, stamp: float | None,
                  with_probabilities: bool) -> pd.DataFrame:
    """The Browse table: one row per prepared record, with the model's probabilities (``p_<HEAD>``)
    when a run is set and ``with_probabilities`` (computed before by :func:`ensure_probabilities`)."""
    prep = get_prepared(data_dir, cache_dir)
    idx = prep.index
    cols = [c for c in ("ecg_id", "patient_id", "age", "sex", "device", "split", "strat_fold", *HEADS,
                        "report") if c in idx.columns]
    df = idx[cols].copy()
    df["ecg_id"] = df["ecg_id"].astype(int)
    if "sex" in df:
        df["sex"] = df["sex"].map({0: "male", 1: "female"}).fillna("")
    df["labels"] = [label_summary(r) for r in df[list(HEADS)].to_dict("records")]
    if run_dir is not None and with_probabilities:
        disk = predictions_file(prep, Path(run_dir), stamp)
        if disk.is_file():
            df = df.join(pd.read_csv(disk, index_col="ecg_id"), on="ecg_id")
    return df.reset_index(drop=True)


def label_summary(status: dict[str, int]) -> str:
    """``MI+ STTC?`` style summary: + positive (pure label), ? excluded (uncertain), negatives omitted."""
    parts = [f"{h}+" for h in HEADS if status.get(h) == POSITIVE]
    parts += [f"{h}?" for h in HEADS if status.get(h) == EXCLUDED]
    return " ".join(parts) or "none"


@dataclass
class Filters:
    """Browse filters; the same cohort drives Review's previous/next."""

    splits: tuple[str, ...] = ()
    label_head: str = "any"
    status: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    prob_range: tuple[float, float] = (0.0, 1.0)
    disagreements: bool = False


def apply_filters(df: pd.DataFrame, f: Filters, head: str, threshold: float | None) -> pd.DataFrame:
    """Rows of the cohort. ``prob_range`` and ``disagreements`` use the sidebar head's probability.

    Disagreements are records whose pure label (positive/negative, excluded left out) differs from the
    decision at ``threshold``, confident errors first (largest |p - y|).
    """
    out = df
    if f.splits:
        out = out[out["split"].isin(f.splits)]
    if f.label_head in HEADS and f.status:
        codes = [k for k, v in STATUS_TEXT.items() if v in f.status]
        out = out[out[f.label_head].isin(codes)]
    if f.devices and "device" in out:
        out = out[out["device"].isin(f.devices)]
    pcol = f"p_{head}"
    if pcol in out:
        lo, hi = f.prob_range
        if (lo, hi) != (0.0, 1.0):
            out = out[(out[pcol] >= lo) & (out[pcol] <= hi)]
        if f.disagreements and threshold is not None:
            lab = out[head]
            out = out[lab != EXCLUDED]
            y = (out[head] == POSITIVE).astype(float)
            wrong = (out[pcol] >= threshold).astype(float) != y
            out = out[wrong.to_numpy()]
            conf = (out[pcol] - (out[head] == POSITIVE).astype(float)).abs()
            out = out.assign(error=conf).sort_values("error", ascending=False)
    return out


PROBABILITIES_PENDING = "the model's probabilities are still being computed"


def unapplied_filters(f: Filters, table: pd.DataFrame, head: str, threshold: float | None,
                      computing: bool = False) -> str | None:
    """Why :func:`apply_filters` leaves out this filter's probability range / disagreements on ``table``
    (None when it applies every filter that is set). ``computing``: the probabilities are on their way."""
    dropped = []
    pcol = f"p_{head}"
    if tuple(f.prob_range) != (0.0, 1.0) and pcol not in table:
        dropped.append(f"probability range {f.prob_range[0]:.2f}-{f.prob_range[1]:.2f}")
    if f.disagreements and (pcol not in table or threshold is None):
        dropped.append("disagreements")
    if not dropped:
        return None
    if computing:
        why = f"{PROBABILITIES_PENDING}; they apply when done"
    elif threshold is None:
        why = f"no trained run with a {head} head is selected"
    else:
        why = f"no probabilities of the {head} head"
    what = f"the {' and '.join(dropped)} filter{'s' if len(dropped) > 1 else ''}"
    return f"{'Not applied yet' if computing else 'Not applied'}: {what} ({why})."


def current_filters() -> Filters:
    """The Browse filters of this session (none set: the whole dataset)."""
    return st.session_state.get("filters") or Filters()


def table_for(sel: Selection, with_probabilities: bool = False) -> pd.DataFrame:
    """The records table, with the ``p_<HEAD>`` columns when ``with_probabilities`` (and they exist)."""
    run = str(sel.run_dir) if sel.run_dir is not None else None
    stamp = run_stamp(sel.run_dir) if sel.run_dir is not None else None
    return records_table(str(sel.data_dir), str(sel.cfg.cache_dir), run, stamp, with_probabilities)


def current_record(sel: Selection, table: pd.DataFrame) -> int | None:
    """The record in view: the URL's ``record``, else the last one looked at, else the first of the cohort."""
    ss = st.session_state
    ids = set(int(i) for i in table["ecg_id"])
    rec = st.query_params.get("record")
    if rec is not None and str(rec).isdigit() and int(rec) in ids:
        ss["record"] = int(rec)
    if ss.get("record") not in ids:
        ss["record"] = int(table["ecg_id"].iloc[0]) if len(table) else None
    return ss.get("record")


def cohort_ids(sel: Selection, table: pd.DataFrame, predictor) -> tuple[list[int], str | None]:
    """ecg_ids of the current Browse filter, in its order (Review walks it), and a note when part of the
    filter is not applied (:func:`unapplied_filters`: its probability filters while the background
    probabilities are still being computed, or without a model for the head)."""
    f = current_filters()
    thr = threshold_of(predictor, sel.head)
    computing = False
    if f.disagreements or tuple(f.prob_range) != (0.0, 1.0):
        ready = ensure_probabilities(sel)
        computing = sel.run_dir is not None and not ready
        table = table_for(sel, with_probabilities=ready)
    sub = apply_filters(table, f, sel.head, thr)
    return [int(i) for i in sub["ecg_id"]], unapplied_filters(f, table, sel.head, thr, computing)
