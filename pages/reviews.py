"""Reviews: progress of the review session, agreement between reviewers, the verdicts, CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from pages.common import list_runs, page_selection, review_query, table_for
from pages.common.reviews_ui import dataset_name, review_store, verdict_text
from xand.constants import HEADS
from xand.reviews.store import PLAUSIBLE_VALUES, PREDICTION_VALUES, progress_table, to_csv, verdict_from_row

sel = page_selection()
st.title("Reviews")
store = review_store(sel)
if store is None:
    st.stop()

here = dataset_name(sel)
names = sorted(set(store.datasets()) | {here})
with st.expander("Filters", expanded=True):
    c1, c2, c3, c4, c5 = st.columns(5)
    dataset = c1.selectbox("Dataset", names, index=names.index(here), key="rv_dataset",
                           help=f"Verdicts are filed per dataset; the sidebar's dataset is '{here}'")
    who = store.reviewers(dataset)
    if "rv_reviewers" in st.session_state:  # keep only names of this dataset when the dataset changes
        st.session_state["rv_reviewers"] = [r for r in st.session_state["rv_reviewers"] if r in who]
    reviewers = c2.multiselect("Reviewers", who, key="rv_reviewers", placeholder="all")
    heads = c3.multiselect("Heads", HEADS, key="rv_heads", placeholder="all")
    predictions = c4.multiselect("Prediction verdict", PREDICTION_VALUES, key="rv_pred", placeholder="all")
    plausible = c5.multiselect("Attribution plausible", PLAUSIBLE_VALUES, key="rv_plaus", placeholder="all")
scope = dict(dataset=dataset, reviewer=reviewers or None, head=heads or None)
current = store.current_verdicts(**scope, prediction=predictions or None, plausible=plausible or None)
history = store.history(dataset=dataset, reviewer=reviewers or None, head=heads or None)

if history.empty:
    st.info(f"No verdicts yet in '{dataset}'. Open a record in Review and fill in **Your verdict** under "
            "the ECG; every save appears here.")

m = st.columns(4)
m[0].metric("Verdicts", len(current), help="Current verdicts (the latest save per record, head and reviewer)")
m[1].metric("Records reviewed", current[["ecg_id"]].drop_duplicates().shape[0])
m[2].metric("Reviewers", current["reviewer"].nunique())
m[3].metric("Edits kept", len(history) - len(store.current_verdicts(**scope)),
            help="Earlier versions of verdicts, kept in the history")

# ----------------------------------------------------------------------------------------- progress
st.subheader("Progress")
if current.empty:
    st.caption("No verdict matches the filters.")
else:
    n_records = len(table_for(sel)) if dataset == here else None
    per = (current.groupby(["reviewer", "head"])["ecg_id"].nunique().unstack("head")
           .reindex(columns=[h for h in HEADS if h in set(current["head"])]).fillna(0).astype(int))
    st.caption("Records reviewed per reviewer and head"
               + (f" (of {n_records} records in '{dataset}')" if n_records else ""))
    st.dataframe(per, width="content")
    prog = progress_table(current)
    if n_records:
        prog.insert(3, "done %", (100.0 * prog["records"] / n_records).round(1))
    st.dataframe(prog, hide_index=True,
                 column_config={"last_saved": st.column_config.DatetimeColumn("last saved (UTC)",
                                                                              format="YYYY-MM-DD HH:mm")})

# ---------------------------------------------------------------------------------------- agreement
st.subheader("Agreement between reviewers")
agreement = store.agreement(**scope)  # on every current verdict of the scope, not only the filtered values
if agreement.empty:
    st.caption("Agreement needs verdicts of at least two reviewers on the same head.")
else:
    st.caption("Per head and pair of reviewers, on the records both reviewed: raw agreement and Cohen's "
               "kappa (Cohen 1960; 1 = perfect, 0 = chance level), undefined with fewer than 2 shared "
               "records or when both answered one value throughout.")
    shown = agreement.rename(columns={"percent": "agreement %", "n": "shared records"})
    shown["reason"] = shown["reason"].fillna("")
    st.dataframe(shown, hide_index=True,
                 column_config={"agreement %": st.column_config.NumberColumn(format="%.1f"),
                                "kappa": st.column_config.NumberColumn(format="%.3f")})

# ----------------------------------------------------------------------------------------- verdicts
st.subheader("Verdicts")
runs = list_runs(sel.cfg)


def open_link(row: pd.Series) -> str | None:
    """``review?record=..&head=..`` (+ the run and method judged, when this app has them)."""
    if row["dataset"] != here:
        return None  # Review opens records of the sidebar's dataset only
    run = row["run_id"]
    listed = next((n for n in (run, f"demo/{run}") if run and n in runs), None)
    q = review_query(sel, int(row["ecg_id"]), head=row["head"], method=row["method"] or None, run=listed)
    if listed is None:
        q.pop("run", None)  # the run judged is not here: the new tab opens with its default run
    return "review?" + urlencode(q)  # relative: also right when the app is served under a base path


if not current.empty:
    table = current.assign(open=current.apply(open_link, axis=1))
    cols = ["open", "ecg_id", "head", "reviewer", "prediction", "plausible", "leads", "start_s", "end_s",
            "note", "revision", "saved_at", "run_id", "method", "probability"]
    event = st.dataframe(
        table[cols], hide_index=True, key="rv_verdicts", on_select="rerun", selection_mode="single-row",
        column_config={
            "open": st.column_config.LinkColumn("open", display_text="Review ↗",
                                                help="Open this record and head in Review"),
            "revision": st.column_config.NumberColumn("versions", help="Saves of this verdict (history)"),
            "saved_at": st.column_config.DatetimeColumn("saved (UTC)", format="YYYY-MM-DD HH:mm"),
            "probability": st.column_config.NumberColumn(format="%.3f"),
        })
    st.caption("Select a row to see every saved version of that verdict.")
    # a selection can outlive a change of filters that shortened the table
    rows = [r for r in (event.selection.rows if event is not None else []) if r < len(current)]
    if rows:
        pick = verdict_from_row(current.iloc[rows[0]])
        st.markdown(f"**Record {pick.ecg_id} · {pick.head} · {pick.reviewer}** — now: {verdict_text(pick)}")
        st.dataframe(store.history(dataset, pick.ecg_id, pick.head, pick.reviewer), hide_index=True,
                     key="rv_history")

# ------------------------------------------------------------------------------------------- export
st.subheader("Export")
d1, d2 = st.columns(2)
d1.download_button("Current verdicts (CSV)", data=to_csv(current), file_name=f"xand_verdicts_{dataset}.csv",
                   mime="text/csv", key="rv_dl_current", on_click="ignore", icon=":material/download:",
                   help="The verdicts shown above (all filters)")
d2.download_button("Full history (CSV)", data=to_csv(history), file_name=f"xand_verdict_history_{dataset}.csv",
                   mime="text/csv", key="rv_dl_history", on_click="ignore", icon=":material/history:",
                   help="Every saved version in this dataset (reviewer and head filters)")
st.caption("Times are UTC (ISO 8601). Stored in " + store.url.render_as_string(hide_password=True))
