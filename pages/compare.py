"""Compare heads on one ECG: same ECG, different questions."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import (
    current_record,
    fmt_score,
    get_prepared,
    page_selection,
    predictor_for,
    record_header,
    set_url,
    status_of,
    table_for,
    view_for,
)
from pages.common.views import PLOT_CONFIG
from xand.errors import XandError
from xand.explain.scores import cosine
from xand.figures.printout import ecg_figure, wave_heatmap_figure

sel = page_selection()
st.title("Compare heads")
predictor = predictor_for(sel)
table = table_for(sel, with_probabilities=False)
if predictor is None:
    st.info("Comparing heads needs a trained run: choose one in the sidebar.")
    st.stop()
ecg_id = current_record(sel, table)
ids = [int(i) for i in table["ecg_id"]]
ecg_id = st.selectbox("Record", ids, index=ids.index(ecg_id), key="cmp_record")
st.session_state["record"] = ecg_id
set_url(record=ecg_id)
row = table.loc[table["ecg_id"] == ecg_id].iloc[0]
st.markdown(record_header(row))

heads_avail = list(predictor.heads)
default = st.session_state.get("cmp_heads_last") or heads_avail[:4]
heads = st.multiselect("Heads (2-4)", heads_avail, default=[h for h in default if h in heads_avail],
                       max_selections=4, key="cmp_heads")
st.session_state["cmp_heads_last"] = heads
if len(heads) < 2:
    st.info("Choose at least two heads.")
    st.stop()

prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
ecg = prep.record(ecg_id)
try:
    with st.spinner(f"Explaining with {sel.method} for {', '.join(heads)} …"):
        views = {h: view_for(sel, ecg_id, h) for h in heads}
except XandError as exc:
    st.error(f"Cannot explain record {ecg_id}: {exc}")
    st.stop()
fs = float(prep.fs)
work_fs = next(iter(views.values())).fs
if work_fs != fs:  # maps live on the model's working grid
    from xand.data.preprocess import resample

    ecg, fs = resample(ecg, fs, work_fs), work_fs
n = min([ecg.shape[1]] + [v.attribution.shape[1] for v in views.values()])

rows = []
for h, v in views.items():
    rows.append({
        "head": h,
        "probability": v.probability,
        "decision": v.decision,
        "pure label": status_of(row, h),
        "Pointing Game": fmt_score(v.pg),
        "CAS": fmt_score(v.cas),
        "IG δ": v.delta,
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_scores",
             column_config={"probability": st.column_config.NumberColumn(format="%.3f"),
                            "IG δ": st.column_config.NumberColumn(format="%.2e")})

# One printout per head, the same one Review draws (ECG paper, 3 x 4 + rhythm, CLIN/ATTR strips under
# every lead): morphology stays readable and the strips line up with the trace they explain.
for h, v in views.items():
    fig = ecg_figure(ecg[:, :n], fs, v.attribution[:, :n], v.mask[:, :n], paper_grid=sel.paper_grid,
                     title=f"ecg_id {ecg_id} · head {h} · {sel.method} · p = {v.probability:.3f} ({v.decision})"
                           f" · PG {fmt_score(v.pg)} · CAS {fmt_score(v.cas)}")
    st.plotly_chart(fig, theme=None, config=PLOT_CONFIG, key=f"compare_figure_{h}")
    if v.waves is not None and np.isfinite(v.waves).any():  # wave-level attribution: this head's table
        st.plotly_chart(wave_heatmap_figure(v.waves, title=f"{h}: {v.waves_label} when a wave is replaced",
                                            value_label=v.waves_label),
                        theme=None, config=PLOT_CONFIG, key=f"compare_waves_{h}")
st.caption(f"25 mm/s, 10 mm/mV. Per head: **CLIN** its clinical region (blue), **ATTR** its {sel.method} "
           "attribution (white → yellow → orange → red); the trace turns orange/red where attribution is high.")

st.subheader("Cosine similarity between the heads' maps")
cos = pd.DataFrame(index=heads, columns=heads, dtype=float)
for a, b in itertools.product(heads, heads):
    s = cosine(views[a].attribution, views[b].attribution)
    cos.loc[a, b] = s.value
st.dataframe(cos.style.format("{:.2f}", na_rep="undefined"), key="cmp_cosine")
