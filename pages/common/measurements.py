"""The Review page's measurements panel: rate, intervals, QTc, axes and ST levels of the shown ECG."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from xand.constants import LEADS

#: Shown with the panel: how the default delineator's intervals compare with cardiologists' (README,
#: "Delineation and measurements": python -m xand ludb ../shared/data/ludb --method neurokit --cv 5).
VALIDATION_NOTE = ("Intervals from the app's delineation, corrected for its mean error on LUDB; against "
                   "cardiologists' marks (60 LUDB records, 5-fold CV) the mean absolute error was PR 8.3, "
                   "QRS 8.9, QT 10.4 ms. Research use: check every value on the trace.")


@st.cache_data(show_spinner=False, max_entries=256)
def measurements_of(data_dir: str, cache_dir: str, ecg_id: int) -> dict:
    """``xand.delineation.measure.measure_ecg`` of one record at the highest rate on disk, as a dict."""
    from pathlib import Path

    from xand.delineation.measure import measure_record

    from pages.common import get_dataset

    m = measure_record(get_dataset(data_dir), int(ecg_id), cache_dir=str(Path(cache_dir) / "delineation"))
    return {**m.to_dict(), "fs": m.fs}


def _ms(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f} ms"


def _deg(v) -> str:
    return "—" if v is None else f"{v:+.0f}°"


def measurements_panel(data_dir: str, cache_dir: str, ecg_id: int, key: str = "review") -> None:
    """Lay out the measurements of record ``ecg_id`` (computed once per record, then cached)."""
    from xand.delineation.measure import QTC_FORMULAS

    try:
        m = measurements_of(data_dir, cache_dir, int(ecg_id))
    except Exception as exc:  # noqa: BLE001 - the printout stays usable when measuring fails
        st.warning(f"No measurements for record {ecg_id}: {exc}")
        return
    cols = st.columns(6)
    hr = m.get("heart_rate_bpm")
    cols[0].metric("Heart rate", "—" if hr is None else f"{hr:.0f} bpm",
                   help=None if m.get("sdnn_ms") is None else f"SDNN {m['sdnn_ms']:.0f} ms, "
                   f"RMSSD {m['rmssd_ms']:.0f} ms over {m['n_beats']} beats")
    raw = m.get("raw_intervals_ms") or {}

    def raw_help(k: str) -> str | None:
        return f"Uncorrected (the delineation's own marks): {_ms(raw.get(k))}" if raw else None

    cols[1].metric("PR", _ms(m.get("pr_ms")), help=raw_help("pr_ms"))
    cols[2].metric("QRS", _ms(m.get("qrs_ms")), help=raw_help("qrs_ms"))
    cols[3].metric("QT", _ms(m.get("qt_ms")), help=raw_help("qt_ms"))
    formula = cols[4].selectbox("QTc formula", list(QTC_FORMULAS), key=f"{key}_qtc_formula",
                                format_func=str.capitalize)
    cols[4].metric(f"QTc ({formula.capitalize()})", _ms((m.get("qtc_ms") or {}).get(formula)))
    cols[5].metric("Axes P / QRS / T",
                   " / ".join(_deg(m.get(k)) for k in ("p_axis_deg", "qrs_axis_deg", "t_axis_deg")),
                   help="Frontal plane, from the net areas of each wave in leads I and aVF")
    st_row = m.get("st_j60_mv") or {}
    if any(v is not None for v in st_row.values()):
        df = pd.DataFrame([[st_row.get(lead) for lead in LEADS]], columns=list(LEADS), index=["ST J+60 (mV)"])
        st.dataframe(df.style.format("{:+.2f}", na_rep="—"), width="stretch")
    notes = [n for n in m.get("notes", []) if "corrected for their mean error" not in n]
    shown = VALIDATION_NOTE if raw else VALIDATION_NOTE.replace("corrected for its mean error on LUDB", "uncorrected")
    raw_txt = (" Uncorrected: " + ", ".join(f"{k.split('_')[0].upper()} {_ms(raw.get(k))}"
                                            for k in ("pr_ms", "qrs_ms", "qt_ms")) + ".") if raw else ""
    st.caption(shown + raw_txt + (f" Sampling {m['fs']:.0f} Hz." if m.get("fs") else "")
               + (" " + "; ".join(notes) + "." if notes else ""))
