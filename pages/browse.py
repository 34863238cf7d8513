"""Browse: the records table with filters; selecting a row opens it in Review."""

from __future__ import annotations

import streamlit as st

from pages.common import (
    page_selection,
    STATUS_TEXT, Filters, apply_filters, ensure_probabilities, predictor_for, review_query, set_url,
    table_for, threshold_of, unapplied_filters,
)
from pages.common.views import wait_for_probabilities
from xand.constants import EXCLUDED, HEADS, NEGATIVE, POSITIVE

STATUS_SHORT = {POSITIVE: "pos", NEGATIVE: "neg", EXCLUDED: "excl"}

sel = page_selection()
st.title("Browse records")
set_url(record=None)

predictor = predictor_for(sel)
ready = ensure_probabilities(sel)
table = table_for(sel, with_probabilities=ready)
if predictor is not None and not ready:
    wait_for_probabilities(sel, ' (the table is usable meanwhile)')
thr = threshold_of(predictor, sel.head)
pcol = f"p_{sel.head}"

old = st.session_state.get("filters") or Filters()
with st.expander("Filters", expanded=True):
    c1, c2, c3, c4 = st.columns(4)
    split_opts = sorted(table["split"].dropna().unique())
    splits = c1.multiselect("Split", split_opts, default=[s for s in old.splits if s in split_opts],
                            key="f_splits")
    label_head = c2.selectbox("Label of head", ("any", *HEADS), key="f_label_head",
                              index=("any", *HEADS).index(old.label_head))
    status = c2.multiselect("Pure-label status", list(STATUS_TEXT.values()), default=list(old.status),
                            key="f_status", disabled=label_head == "any")
    dev_opts = sorted(table["device"].dropna().astype(str).unique()) if "device" in table else []
    devices = c3.multiselect("Device", dev_opts, default=[d for d in old.devices if d in dev_opts],
                             key="f_devices")
    has_p = pcol in table
    prob_range = c4.slider(f"Probability {sel.head}", 0.0, 1.0, value=tuple(old.prob_range), step=0.01,
                           key="f_prob", disabled=not has_p)
    disagreements = c4.checkbox("Disagreements: confident errors first", value=old.disagreements,
                                key="f_disagree", disabled=not has_p,
                                help=f"Label {sel.head} (pure, excluded left out) differs from the decision "
                                     f"at the validation-tuned threshold; largest |p - label| first")
filters = Filters(tuple(splits), label_head, tuple(status), tuple(devices),
                  (float(prob_range[0]), float(prob_range[1])), bool(disagreements))
st.session_state["filters"] = filters
shown = apply_filters(table, filters, sel.head, thr)
unapplied = unapplied_filters(filters, table, sel.head, thr, computing=predictor is not None and not ready)

st.caption(f"{len(shown)} of {len(table)} records"
           + (f" · decision threshold {sel.head}: {thr:.2f}" if thr is not None else "")
           + " · pure-label status per head: pos, neg, excl (the statement is only uncertain)")
if unapplied:
    st.caption(unapplied)
cols = ["ecg_id", "patient_id", "age", "sex", "device", "split", "strat_fold", "labels", *HEADS,
        *[c for c in shown.columns if c.startswith("p_")], "report"]
if "error" in shown:
    cols.insert(cols.index("report"), "error")
cols = [c for c in cols if c in shown.columns]
config = {
    "ecg_id": st.column_config.NumberColumn("ecg_id", format="%d"),
    "patient_id": st.column_config.NumberColumn("patient", format="%d"),
    "strat_fold": st.column_config.NumberColumn("fold", format="%d", width="small",
                                                help="PTB-XL strat_fold: 1-8 train, 9 validation, 10 test"),
    "labels": st.column_config.TextColumn("labels", help="+ pure positive, ? excluded (uncertain)"),
    "report": st.column_config.TextColumn("report", width="large"),
    **{h: st.column_config.TextColumn(h, help=f"pure-label status of {h}: pos (likelihood 100), neg (absent), "
                                               "excl (present only with likelihood < 100)", width="small")
       for h in HEADS},
    **{c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="%.2f", width="small")
       for c in shown.columns if c.startswith("p_")},
}
view = shown[cols].copy()
for h in HEADS:  # status codes as words for the reader; filters work on the codes
    if h in view:
        view[h] = view[h].map(STATUS_SHORT).fillna("?")
event = st.dataframe(view, hide_index=True, column_config=config, on_select="rerun",
                     selection_mode="single-row", key="browse_table", height=520)
rows = event.selection.rows if event is not None else []


def _open(ecg_id: int) -> None:
    st.session_state["record"] = int(ecg_id)
    st.switch_page("pages/review.py", query_params=review_query(sel, ecg_id))


if rows:
    _open(int(shown.iloc[rows[0]]["ecg_id"]))

c1, c2 = st.columns([1, 3])
ids = [int(i) for i in shown["ecg_id"]]
if ids:
    pick = c1.selectbox("Open record", ids, key="open_pick")
    if c1.button("Open in Review", key="open_btn"):
        _open(pick)
