"""Upload an ECG: the Review view (predictions, attribution, own delineation for CLIN, scores) for an ECG of
the reviewer's own. Files are parsed from memory (``xand.data.upload``) and kept nowhere unless saved."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import (
    EXPLAIN_LOCK, run_stamp, page_selection,
    View, get_predictor, label_summary, method_choice, predictor_for, sanity_for, threshold_of,
)
from pages.common.views import PLOT_CONFIG, provenance_note, lead_charts, score_column
from xand.errors import XandError
from xand.figures.printout import ecg_figure
from xand.data.preprocess import resample
from xand.data.upload import (
    ACCEPTED, UNITS, UPLOAD_EXTENSIONS, UploadConfig, UploadedECG, input_seconds, model_window, parse_upload,
    predict_upload, save_upload, signal_digest,
)

LIMITS = UploadConfig()


@st.cache_data(show_spinner=False, max_entries=32)
def upload_fiducials(digest: str, _ecg: np.ndarray, fs: float):
    """Own delineation of the uploaded window (``xand.delineation.neurokit``), kept in memory only."""
    from xand.delineation.neurokit import delineate

    return delineate(_ecg, fs)


@st.cache_data(show_spinner=False, max_entries=64)
def upload_view(run_dir: str | None, stamp: float | None, digest: str, head: str, method: str, data_dir: str,
                _ecg: np.ndarray, fs: float) -> View:
    """Explain the uploaded window with one head (cached in memory by content, run, head and method)."""
    fid = upload_fiducials(digest, _ecg, fs)
    if run_dir is None:
        from xand.delineation.masks import clinical_mask

        return View(0, head, method, fs, None, None, None,
                    np.asarray(clinical_mask(fid, head, _ecg.shape[1]), dtype=bool), mask_source=fid.source)
    from xand.explain.xai import explain_ecg

    pred = get_predictor(run_dir, stamp)
    with EXPLAIN_LOCK:  # one model computation at a time per process (see pages.common.explain_view)
        e = explain_ecg(pred, _ecg, fs, head, method, fid, reference_data=data_dir)
    return View.from_explanation(e, 0, threshold_of(pred, head), mask_source=fid.source, fiducials=fid)


@st.cache_data(show_spinner=False, max_entries=32)
def upload_probabilities(run_dir: str, stamp: float, digest: str, _rec: UploadedECG) -> dict[str, float]:
    pred = get_predictor(run_dir, stamp)
    with EXPLAIN_LOCK:  # the shared model: not while an explanation has its hooks on it
        return predict_upload(pred, _rec)


def accept(files, fs, units) -> None:
    """Parse the uploaded files into the session (``upload_ecg``) or keep the one error (``upload_error``)."""
    ss = st.session_state
    try:
        rec = parse_upload([(f.name, f.getvalue()) for f in files], fs=fs, units=units, cfg=LIMITS)
    except XandError as exc:
        ss["upload_ecg"], ss["upload_error"] = None, str(exc)
        return
    ss["upload_ecg"], ss["upload_error"] = rec, None


sel = page_selection()
ss = st.session_state
st.title("Upload an ECG")
st.caption(f"Upload {ACCEPTED}. At most {LIMITS.max_bytes // 2**20} MB, {LIMITS.min_fs:g}-{LIMITS.max_fs:g} Hz, "
           f"{LIMITS.min_seconds:g}-{LIMITS.max_seconds:g} s; the model reads the first 10 s. Arrays: rows or "
           "columns in the order I, II, III, aVR, aVL, aVF, V1-V6 unless a CSV header names the leads. The "
           "files are read in memory and kept nowhere unless you save them.")

c1, c2, c3 = st.columns([3, 1, 1])
files = c1.file_uploader("ECG files (one record)", type=list(UPLOAD_EXTENSIONS), accept_multiple_files=True,
                         key="upl_files", max_upload_size=LIMITS.max_bytes // 2**20,
                         help=".hea + .dat (WFDB), .hea + .mat (CinC), or one .csv/.txt/.npy")
fs_in = c2.number_input("Sampling rate (Hz)", min_value=0.0, max_value=LIMITS.max_fs, value=None, step=50.0,
                        key="upl_fs", placeholder="e.g. 500", help="For CSV/NPY arrays (headers give their own)")
units = c3.selectbox("Units", tuple(k for k in UNITS if k != "uV"), key="upl_units",
                     help="For CSV/NPY arrays (headers give their own)")

files_sig = tuple((f.name, f.size, f.file_id) for f in files or [])
sig = (files_sig, fs_in, units)
prev = ss.get("_upl_sig")
if files_sig and sig != prev:
    accept(files, fs_in, units)
elif not files_sig and prev and prev[0]:  # the reviewer removed the files: forget the upload
    ss["upload_ecg"], ss["upload_error"] = None, None
ss["_upl_sig"] = sig

if ss.get("upload_error"):
    st.error(f"Cannot use this upload: {ss['upload_error']}")
    st.stop()
rec: UploadedECG | None = ss.get("upload_ecg")
if rec is None:
    st.info("Upload an ECG to see the model's view of it.")
    st.stop()

predictor = predictor_for(sel)
seconds = input_seconds(predictor) if predictor is not None else 10.0
window, window_note = model_window(rec.signal, rec.fs, seconds)
digest = signal_digest(window, rec.fs)
run = str(sel.run_dir) if predictor is not None else None
stamp = run_stamp(sel.run_dir) if predictor is not None else None

info = [f"**Uploaded ECG `{rec.name}`**", rec.format.upper(), f"{rec.fs:g} Hz", f"{rec.seconds:.1f} s",
        ", ".join(rec.files)]
st.markdown(" · ".join(info))
reference = None
if rec.meta.get("snomed"):
    from xand.data.cinc import cinc_labels

    reference = cinc_labels(rec.meta["snomed"])
    st.caption(f"Labels from the header's SNOMED CT codes (a-priori map, `xand.data.cinc`): {label_summary(reference)}"
               f" · Dx {', '.join(str(c) for c in rec.meta['snomed'])}")
if window_note:
    st.caption(window_note)

if predictor is not None:
    try:
        probs = upload_probabilities(run, stamp, rec.digest, rec)
    except XandError as exc:
        st.error(f"Cannot run the model on this ECG: {exc}")
        st.stop()
    rows = []
    for h, p in probs.items():
        thr = threshold_of(predictor, h)
        # no threshold (the run has none for this head): the probability alone, no decision
        row = {"head": h, "probability": p, "threshold": thr,
               "decision": "—" if thr is None else "positive" if p >= thr else "negative"}
        if reference is not None:
            row["header label"] = {1: "positive", 0: "negative", -1: "excluded"}.get(reference.get(h), "?")
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="upl_predictions",
                 column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                format="%.3f"),
                                "threshold": st.column_config.NumberColumn(format="%.3f"),
                                "decision": st.column_config.TextColumn(
                                    help="At the run's validation-tuned threshold; — where it has none")})

if predictor is not None and sel.head not in predictor.heads:
    st.warning(f"The run `{sel.run_dir.name}` has no {sel.head} head; choose another head or run.")
    st.stop()
try:
    with st.spinner(f"Delineating and explaining with {sel.method} ({sel.head}) …"):
        view = upload_view(run, stamp, digest, sel.head, sel.method, str(sel.data_dir), window, rec.fs)
except XandError as exc:
    st.error(f"Cannot explain this ECG: {exc}")
    st.stop()

ecg = resample(window, rec.fs, view.fs) if view.fs != rec.fs else window
n = min(ecg.shape[1], view.mask.shape[1])  # the model's input may be zero-padded past the record's end
ecg, mask = ecg[:, :n], view.mask[:, :n]
attribution = None if view.attribution is None else view.attribution[:, :n]

left, right = st.columns([4, 1.15], gap="small")
with left:
    fig = ecg_figure(ecg, view.fs, attribution, mask,
                     title=f"upload {rec.name} · head {sel.head} · {sel.method}", paper_grid=sel.paper_grid)
    st.plotly_chart(fig, theme=None, config=PLOT_CONFIG, key="upl_figure")
    st.caption(f"Shown at the model's {view.fs:g} Hz. 25 mm/s, 10 mm/mV; calibration pulse 1 mV. **CLIN**: the "
               f"{sel.head} head's clinical region (blue) from the app's own delineation (NeuroKit2) of this ECG. "
               "**ATTR**: attribution (white → yellow → orange → red, positive evidence).")
with right:
    provenance_note(sel, real=True)  # an uploaded ECG is a real one
    score_column(sel.head, view, sanity=sanity_for(sel, sel.head, sel.method),
                 chosen=method_choice(sel.run_dir, sel.head))

lead_charts(view, "upl")

st.divider()
dest = sel.cfg.home / "uploads"
save = st.button(f"Save this upload to `{dest}`", key="upl_save", disabled=not files,
                 help="Keeps the original files and what was parsed from them (upload.json). Nothing is kept "
                      "otherwise.")
if save and files:
    folder = save_upload([(f.name, f.getvalue()) for f in files], dest, rec)
    st.success(f"Saved to `{folder}`")

started = ss.get("_run_started")
if started is not None:
    st.caption(f"Page computed in {time.perf_counter() - started:.2f} s on the server"
               + (f" (explanation {view.seconds:.2f} s, cached after the first time)" if view.seconds else ""))
