"""Review one ECG: the clinical 12-lead printout with CLIN/ATTR strips and this ECG's scores."""

from __future__ import annotations

import time

import streamlit as st

from pages.common import (
    page_selection,
    FIDUCIAL_SOURCES, PROBABILITIES_PENDING, cohort_ids, current_record, get_prepared,
    predictor_for, prefetch, method_choice, record_header, sanity_for, set_url, status_of, table_for, view_for,
)
from pages.common.views import PLOT_CONFIG, provenance_note, lead_charts, score_column, wait_for_probabilities
from xand.errors import XandError
from xand.figures.printout import PrintoutStyle, ecg_figure


sel = page_selection()
predictor = predictor_for(sel)
table = table_for(sel, with_probabilities=False)
if not len(table):
    st.warning("The dataset has no records.")
    st.stop()
ecg_id = current_record(sel, table)

# Previous / next walk the Browse filter's cohort (the whole set when the record is outside it).
cohort, cohort_note = cohort_ids(sel, table, predictor)
walk = cohort if ecg_id in cohort else [int(i) for i in table["ecg_id"]]
pos = walk.index(ecg_id)
nav = st.columns([1, 1, 4])
if nav[0].button("◀ Previous", key="prev", disabled=pos == 0, width="stretch"):
    pos -= 1
if nav[1].button("Next ▶", key="next", disabled=pos >= len(walk) - 1, width="stretch"):
    pos += 1
ecg_id = walk[pos]
st.session_state["record"] = ecg_id
set_url(record=ecg_id)
nav[2].caption(f"{pos + 1} of {len(walk)} in {'the current filter' if walk is cohort else 'the dataset'}")
if cohort_note and walk is cohort:
    with nav[2]:
        st.caption(cohort_note)
        if PROBABILITIES_PENDING in cohort_note:
            wait_for_probabilities(sel)  # progress; the page reruns with the whole filter when done

row = table.loc[table["ecg_id"] == ecg_id].iloc[0]
st.markdown(record_header(row))

prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
ecg = prep.record(ecg_id)
if sel.run_dir is not None and sel.head not in getattr(predictor, "heads", ()):
    st.warning(f"The run `{sel.run_dir.name}` has no {sel.head} head; choose another head or run.")
view = None
if sel.run_dir is None or sel.head in predictor.heads:
    try:
        with st.spinner(f"Explaining with {sel.method} ({sel.head}) …"):
            view = view_for(sel, ecg_id)
    except XandError as exc:
        st.error(f"Cannot explain record {ecg_id}: {exc}")

shown_fs = float(prep.fs)
if view is not None and view.fs != shown_fs:  # maps live on the model's working grid
    from xand.data.preprocess import resample

    ecg, shown_fs = resample(ecg, shown_fs, view.fs), view.fs
if view is not None and view.mask is not None and view.mask.shape[1] != ecg.shape[1]:
    n = min(view.mask.shape[1], ecg.shape[1])  # the model's input length may differ from the record's
    ecg = ecg[:, :n]
    view.mask = view.mask[:, :n]
    if view.attribution is not None:
        view.attribution = view.attribution[:, :n]

left, right = st.columns([4, 1.15], gap="small")
with left:
    opts = st.columns([1, 1, 1, 1, 3])
    speed = opts[2].selectbox("Paper speed", (25, 50), key="paper_speed", format_func=lambda v: f"{v} mm/s")
    gain = opts[3].selectbox("Gain", (10, 5, 20), key="paper_gain", format_func=lambda v: f"{v} mm/mV")
    show_marks = opts[0].toggle("Fiducial marks", value=False, key="show_fiducials",
                                help="Ticks at P onset (green), QRS onset (blue), QRS offset / J (purple) and "
                                     "T offset (red) on every lead: the points the clinical region is built from")
    calipers = opts[1].toggle("Calipers", value=False, key="calipers",
                              help="Drag a box on the trace: its width is the time, its height the voltage")
    fig = ecg_figure(ecg, shown_fs, None if view is None else view.attribution,
                     None if view is None else view.mask,
                     title=f"ecg_id {ecg_id} · head {sel.head} · {sel.method}", paper_grid=sel.paper_grid,
                     fiducials=view.fiducials if (show_marks and view is not None) else None,
                     style=PrintoutStyle(speed_mm_per_s=float(speed), gain_mm_per_mV=float(gain)))
    if calipers:
        box = (st.session_state.get("ecg_figure_calipers") or {}).get("selection", {}).get("box") or []
        if box:
            from xand.figures.printout import caliper_reading, march_out

            b = box[-1]
            (x0, x1), (y0, y1) = sorted(b["x"][:2]), sorted(b["y"][:2])
            r = caliper_reading(x0, x1, y0, y1)
            march_out(fig, x0, (x1 - x0))
            opts[4].markdown(f"**Δt {r['dt_ms']:.0f} ms** · {r['rate_bpm']:.0f} bpm if one RR · "
                             f"**Δ {r['dmv']:.2f} mV** · dashed lines: march-out of Δt")
        else:
            opts[4].caption("Drag a box on the trace (box-select) to read Δt, the rate and ΔmV.")
        fig.update_layout(dragmode="select")
        st.plotly_chart(fig, theme=None, config=PLOT_CONFIG, key="ecg_figure_calipers", on_select="rerun",
                        selection_mode="box")
    else:
        st.plotly_chart(fig, theme=None, config=PLOT_CONFIG, key="ecg_figure")
    st.caption(f"{speed} mm/s, {gain} mm/mV; calibration pulse 1 mV. **CLIN**: the {sel.head} head's clinical region "
               f"(blue, from {FIDUCIAL_SOURCES.get(view.mask_source, view.mask_source) if view else '—'} "
               "fiducials). **ATTR**: attribution "
               "(white → yellow → orange → red, positive evidence); the trace turns orange/red where it is high.")

with right:
    provenance_note(sel)
    score_column(sel.head, view, status_of(row, sel.head), sanity_for(sel, sel.head, sel.method),
                 chosen=method_choice(sel.run_dir, sel.head))

with st.expander("Measurements", expanded=True):
    from pages.common.measurements import measurements_panel

    measurements_panel(str(sel.data_dir), str(sel.cfg.cache_dir), ecg_id)

lead_charts(view, "review")

st.subheader("Report")
st.write(str(row.get("report", "")) or "—")

with st.expander("Your verdict", expanded=True):
    from pages.common.reviews_ui import verdict_form

    verdict_form(sel, ecg_id, sel.head, {
        "run_id": None if sel.run_dir is None else sel.run_dir.name, "method": sel.method,
        "probability": None if view is None else view.probability,
        "decision": None if view is None else view.decision, "duration_s": ecg.shape[1] / shown_fs})

started = st.session_state.get("_run_started")
if started is not None:
    st.caption(f"Page computed in {time.perf_counter() - started:.2f} s on the server"
               + (f" (explanation {view.seconds:.2f} s, cached after the first time)" if view and view.seconds else ""))

# the usual next steps: another head on this ECG, or the next ECG of the cohort
if predictor is not None:
    others = [(ecg_id, h) for h in predictor.heads if h != sel.head]
    nxt = [(walk[pos + 1], sel.head)] if pos + 1 < len(walk) else []
    prefetch(sel, nxt[:1] + others)
