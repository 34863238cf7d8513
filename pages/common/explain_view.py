"""One record's explanation as the pages show it: ``View`` (plain arrays, cacheable), computed by one call
down to ``xand.explain.xai.explain_ecg`` and prefetched for the next records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from pages.common.config import Selection
from pages.common.services import (
    EXPLAIN_LOCK,
    PREFETCH_BUSY,
    STOPPING,
    get_dataset,
    get_predictor,
    get_prepared,
    run_stamp,
    start_worker,
    threshold_of,
)
from xand.errors import XandError


@dataclass
class View:
    """One ECG explained by one head: plain arrays, so it caches and pickles.

    ``attribution`` and ``mask`` are on the model's working grid at ``fs`` Hz; ``scores`` maps a score
    name (``pointing_game``, ``cas``, ``rank_accuracy``, ``perturbation``) to ``{"value", "chance",
    "reason", ...}`` exactly as ``xand.explain.xai.explain_ecg`` computed it.
    """

    ecg_id: int
    head: str
    method: str
    fs: float
    probability: float | None
    threshold: float | None
    attribution: np.ndarray | None  # (12, T)
    mask: np.ndarray | None  # (12, T) bool
    scores: dict = field(default_factory=dict)
    delta: float | None = None
    lead_importance: np.ndarray | None = None
    lead_drop: np.ndarray | None = None
    seconds: float = 0.0
    note: str | None = None
    mask_reason: str | None = None
    mask_source: str = ""
    waves: np.ndarray | None = None  # (12, 6) lead x wave attribution of a wave-level method
    waves_label: str = "logit drop"  # what the values of ``waves`` are (xand.explain.waves.wave_value_label)
    findings: dict = field(default_factory=dict)  # code -> scores against that statement's own mask
    fiducials: object | None = None  # xand.fiducials.Fiducials the mask was built from (any grid)

    @classmethod
    def from_explanation(cls, e, ecg_id: int, threshold: float | None, mask_source: str = "",
                         findings: dict | None = None, fiducials=None) -> "View":
        """The plain-array view of an ``xand.explain.xai.Explanation`` (the one conversion, for every page)."""
        from xand.explain.attribution import NEEDS_SEGMENTS
        from xand.explain.waves import wave_value_label

        return cls(
            ecg_id=int(ecg_id), head=e.head, method=e.method, fs=float(e.fs), probability=float(e.probability),
            threshold=threshold, attribution=np.asarray(e.attribution.map, dtype=np.float32),
            mask=np.asarray(e.mask, dtype=bool), scores={k: asdict(v) for k, v in e.scores.items()},
            delta=_opt_float(e.delta), lead_importance=_opt_array(e.lead_importance),
            lead_drop=_opt_array(e.lead_drop), seconds=float(e.seconds), note=e.attribution.note,
            mask_reason=e.mask_reason, mask_source=mask_source,
            waves=_wave_table(e) if e.method in NEEDS_SEGMENTS else None,
            waves_label=wave_value_label(e.attribution.params), findings=findings or {}, fiducials=fiducials)

    @property
    def pg(self) -> dict | None:
        return self.scores.get("pointing_game")

    @property
    def cas(self) -> dict | None:
        return self.scores.get("cas")

    @property
    def decision(self) -> str | None:
        if self.probability is None or self.threshold is None:
            return None
        return "positive" if self.probability >= self.threshold else "negative"


FIDUCIAL_SOURCES = {"ptbxl+": "PTB-XL+ (ECGdeli)", "neurokit2": "the app's own delineation (NeuroKit2)"}


@st.cache_data(show_spinner=False, max_entries=256)
def explain_view(data_dir: str, cache_dir: str, plus_dir: str | None, run_dir: str | None,
                 stamp: float | None, ecg_id: int, head: str, method: str) -> View:
    """Explain one record with one head (cached per record, head, method and run)."""
    prep = get_prepared(data_dir, cache_dir)
    ecg = prep.record(ecg_id)
    fs = float(prep.fs)
    delineation_cache = Path(cache_dir) / "delineation"
    if run_dir is None:
        from xand.delineation.masks import clinical_mask
        from xand.delineation.sources import record_fiducials

        fid = record_fiducials(ecg, fs, ecg_id, plus_dir, delineation_cache)
        return View(int(ecg_id), head, method, fs, None, None, None,
                    np.asarray(clinical_mask(fid, head, ecg.shape[1]), dtype=bool), mask_source=fid.source,
                    fiducials=fid)
    pred = get_predictor(run_dir, stamp)
    from xand.explain.xai import explain_record

    try:  # the finding scores are extras: a dataset without this record's statements only loses them
        codes = get_dataset(data_dir).meta.loc[int(ecg_id), "scp_codes"]
    except (KeyError, XandError):
        codes = None
    # One explanation at a time per process: Captum's layer methods hook the shared models, and two
    # at once on 2 cores only slow each other down. (No perturbation: Review does not show it.)
    with EXPLAIN_LOCK:
        e = explain_record(pred, ecg, fs, head, method, ecg_id=int(ecg_id), scp_codes=codes, plus_dir=plus_dir,
                           cache_dir=delineation_cache, reference_data=data_dir)
    return View.from_explanation(e, int(ecg_id), threshold_of(pred, head), mask_source=e.fiducials.source,
                                 findings=e.findings, fiducials=e.fiducials)


def _wave_table(e) -> np.ndarray:
    from xand.explain.waves import segment_labels, wave_table

    return wave_table(e.attribution.map, segment_labels(e.fiducials, e.attribution.map.shape[1]))


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def _opt_array(v) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=np.float64)


def prefetch(sel: Selection, jobs: list[tuple[int, str]]) -> None:
    """Explain ``(ecg_id, head)`` pairs in a background thread so that the next clicks hit the cache.

    At most one prefetch thread per process; it yields to the page's own explanations through the
    explanation lock. Failures are ignored here: the page computes (and reports) them when asked.
    """
    if not sel.cfg.background or sel.run_dir is None or not jobs:
        return
    if not PREFETCH_BUSY.acquire(blocking=False):
        return
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    def work() -> None:
        try:
            for ecg_id, head in jobs:
                if STOPPING.is_set():
                    return
                try:
                    view_for(sel, ecg_id, head)
                except Exception:  # noqa: BLE001 - shown by the page if the user goes there
                    pass
        finally:
            PREFETCH_BUSY.release()

    t = start_worker(work, "xand-prefetch")
    add_script_run_ctx(t, get_script_run_ctx())  # cache access without "missing ScriptRunContext" noise
    t.start()


def view_for(sel: Selection, ecg_id: int, head: str | None = None) -> View:
    run = str(sel.run_dir) if sel.run_dir is not None else None
    stamp = run_stamp(sel.run_dir) if sel.run_dir is not None else None
    return explain_view(str(sel.data_dir), str(sel.cfg.cache_dir),
                        str(sel.plus_dir) if sel.plus_dir else None, run, stamp, int(ecg_id),
                        head or sel.head, sel.method)
