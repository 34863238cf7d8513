"""The Evaluate page's XAI tab: the batch explanation table of a run over a split's positives, computed on
request (one at a time per server process) and cached beside the run."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import get_prepared
from xand.errors import XandError
from xand.evaluation import load_xai_summary, xai_out_dir, xai_table


@st.cache_resource(show_spinner=False)
def xai_lock() -> threading.Lock:
    """One batch XAI computation per server process: it is minutes of CPU on a shared machine."""
    return threading.Lock()


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def downloads(df: pd.DataFrame, stem: str, key: str) -> None:
    """CSV and JSON downloads of a table (no rerun on click)."""
    row = st.container(horizontal=True)
    row.download_button("⬇ CSV", df.to_csv(index=False), f"{stem}.csv", "text/csv", key=f"{key}_csv",
                       on_click="ignore")
    row.download_button("⬇ JSON", df.to_json(orient="records", indent=2), f"{stem}.json", "application/json",
                       key=f"{key}_json", on_click="ignore")


def xai_root(sel, run_dir: Path) -> Path:
    """``<run>/xai`` (where ``python -m xand xai`` writes) for the app's own runs; committed demo runs and
    folders the app may not write to keep their XAI tables in the app's cache instead."""
    own = sel.cfg.runs_dir is not None and Path(sel.cfg.runs_dir).resolve() in run_dir.resolve().parents
    if own and os.access(run_dir, os.W_OK):
        return run_dir / "xai"
    return Path(sel.cfg.cache_dir) / "xai" / safe(run_dir.name)


def xai_section(sel, predictor, split: str, stem: str) -> None:
    """The tab: options, the compute button, the table with its caption and downloads."""
    xai_split = split if split != "all" else "test"
    st.markdown(f"Batch validation of the **{sel.method}** explanations over the truly positive ECGs of each head "
                f"in the **{xai_split}** split (`xand.explain.xai.xai_batch`, the same as `python -m xand xai`).")
    c1, c2 = st.columns([1, 2])
    n_per_head = int(c1.number_input("Positives per head (0 = all)", 0, 100_000, 20, step=10, key="xai_n",
                                     help="The first N positives of each head by ecg_id: a quick look. "
                                          "Subsets are cached apart from the full table."))
    compare = c2.checkbox("Also the cross-method cosine (a second attribution method: twice the time)",
                          value=False, key="xai_compare")
    max_per_head = None if n_per_head == 0 else n_per_head
    prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    run_fp = str(predictor.config.get("data", {}).get("fingerprint", "")) or None
    out_dir = xai_out_dir(xai_root(sel, sel.run_dir), prep.fingerprint, run_fp, max_per_head)
    try:
        summary = load_xai_summary(out_dir, xai_split, sel.method)
    except XandError as exc:
        st.warning(f"The cached XAI table cannot be read and will be recomputed: {exc}")
        summary = None
    label = "Recompute the XAI table" if summary is not None else "Compute the XAI table"
    if st.button(label, key="xai_compute", type="secondary" if summary is not None else "primary"):
        lock = xai_lock()
        if not lock.acquire(blocking=False):
            st.warning("Another XAI table is being computed in this app right now; try again when it is done.")
        else:
            try:
                from xand.explain.xai import has_ptbxl_plus, xai_batch

                plus = sel.plus_dir if sel.plus_dir and has_ptbxl_plus(sel.plus_dir) else None
                fid_source = str(plus) if plus is not None and Path(plus) != Path(sel.data_dir) else "auto"
                bar = st.progress(0.0, "Explaining …")
                t0 = time.perf_counter()

                def on_progress(done: int, total: int) -> None:
                    bar.progress(done / max(total, 1), f"{done} / {total} ECGs · {time.perf_counter() - t0:.0f} s")

                compare_method = ("gradshap" if sel.method != "gradshap" else "ig") if compare else None
                done = xai_batch(sel.run_dir, sel.data_dir, split=xai_split, method=sel.method,
                                 fiducial_source=fid_source, progress=False, compare_method=compare_method,
                                 max_per_head=max_per_head, seed=0, out_dir=out_dir,
                                 cache_dir=Path(sel.cfg.cache_dir) / "delineation", on_progress=on_progress)
                st.session_state["xai_done"] = (f"XAI table computed: {done.attrs.get('n_explanations', '?')} "
                                                f"explanations in {time.perf_counter() - t0:.0f} s")
            except XandError as exc:
                st.error(f"The XAI table could not be computed: {exc}")
            finally:
                lock.release()
            if "xai_done" in st.session_state:
                st.rerun()  # drawn again from the cache, the button now offering to recompute
    if st.session_state.get("xai_done"):
        st.success(st.session_state.pop("xai_done"))
    if summary is None:
        st.info("Not computed yet for this run, dataset, split, method and subset: it takes about a second per "
                "ECG and head on a CPU.")
    else:
        table = xai_table(summary)
        fmt = {c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
               if c not in ("head", "n", "n_positive", "skipped", "PG undefined")}
        st.dataframe(table, hide_index=True, key="xai_table", column_config=fmt)
        info = summary.attrs
        cfg = info.get("config") or {}
        st.caption(
            f"{info.get('n_explanations', '?')} explanations of {info.get('n_ecg', '?')} ECGs"
            + (f" (first {cfg['max_per_head']} positives per head)" if cfg.get("max_per_head") else "")
            + (" (single-pathology positives only, as the synthetic check computes them)"
               if cfg.get("single_pathology") else "")
            + f" · fiducials: {info.get('fiducials', '?')} · {float(info.get('seconds') or 0):.0f} s · "
            f"kept in `{info.get('out_dir')}`. Per score: mean and 95% CI (Wilson for the Pointing Game). "
            "**Pointing Game** (Zhang et al. 2018): is the most attributed point inside the clinical region? "
            "**CAS**: share of positive attribution inside it; **chance**: the region's share of the ECG, what "
            "a random map scores; **rank accuracy**: share of the region among the top-attributed points; "
            "**drop mask / random**: probability drop when the region / a random region of the same size is "
            "removed (surgical perturbation), **drop diff** their difference. Undefined cases are counted, "
            "never averaged in as 0.")
        downloads(table, f"{stem}_xai_{sel.method}", "dl_xai")
        records_path = Path(info.get("records_path", ""))
        if records_path.is_file():
            st.download_button("⬇ Per-ECG scores (CSV)", records_path.read_bytes(),
                               f"{stem}_xai_{sel.method}_records.csv", "text/csv", key="dl_xai_records",
                               on_click="ignore")
