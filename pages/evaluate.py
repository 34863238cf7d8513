"""Evaluate: a run on the whole cohort of a split (curves, threshold, calibration, XAI table, runs compared)."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import (
    page_selection,
    run_stamp, ensure_probabilities, get_predictor, get_prepared, list_runs, predictor_for,
    records_table,
)
from pages.common.views import PLOT_CONFIG, sanity_section, wait_for_probabilities
from xand.errors import XandError
from xand.figures.evaluation import (
    calibration_figure, confusion_figure, pr_figure, roc_figure, runs_figure, score_distribution_figure,
)
from xand.evaluation import (
    calibration_long, evaluate_predictions, load_xai_summary, metrics_table, runs_comparison, runs_wide,
    score_table, xai_out_dir, xai_table,
)

SPLITS = ("test", "val", "train", "all")


@st.cache_data(show_spinner=False, max_entries=32)
def cohort_evaluation(data_dir: str, cache_dir: str, run_dir: str, stamp: float, split: str, n_boot: int,
                      n_bins: int, strategy: str) -> dict:
    """``xand.evaluation.evaluate_predictions`` of the run's probabilities (computed once per run and
    dataset by ``ensure_probabilities``) with the run's validation-tuned thresholds."""
    table = records_table(data_dir, cache_dir, run_dir, stamp, True)
    pred = get_predictor(run_dir, stamp)
    thresholds = {h: pred.threshold(h) for h in pred.heads}
    return evaluate_predictions(table, pred.heads, thresholds, split, n_boot, 0, n_bins, strategy)


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


sel = page_selection()
st.title("Evaluate on the cohort")
predictor = predictor_for(sel)
if predictor is None:
    st.info("Evaluating needs a trained run: choose one in the sidebar (or train one, see the sidebar).")
    st.stop()
run_name = st.session_state.get("run") or sel.run_dir.name
stamp = run_stamp(sel.run_dir)

c1, c2, c3, c4 = st.columns(4)
split = c1.selectbox("Split", SPLITS, key="ev_split",
                     help="PTB-XL folds: 1-8 train, 9 validation (thresholds were tuned there), 10 test")
n_boot = int(c2.number_input("Bootstrap resamples (AUC CI)", 0, 5000, 1000, step=100, key="ev_boot",
                             help="Percentile bootstrap over records, seeded (Efron & Tibshirani 1993)"))
n_bins = int(c3.slider("Calibration bins", 5, 20, 10, key="ev_bins"))
strategy = c4.selectbox("Binning", ("uniform", "quantile"), key="ev_binning",
                        help="uniform: equal-width probability bins; quantile: equal numbers of records")

if not ensure_probabilities(sel):
    st.info("The model's probabilities for the cohort are being computed once for this run and dataset.")
    wait_for_probabilities(sel)
    st.stop()

try:
    with st.spinner(f"Evaluating {run_name} on {split} …"):
        evals = cohort_evaluation(str(sel.data_dir), str(sel.cfg.cache_dir), str(sel.run_dir), stamp, split,
                                  n_boot, n_bins, strategy)
except XandError as exc:
    st.error(f"Cannot evaluate the run: {exc}")
    st.stop()
metrics = metrics_table(evals, predictor.summary)
stem = f"{safe(run_name)}_{split}"
if metrics.empty or (metrics["n"] == 0).all():
    st.warning(f"No labelled records of the run's heads in the {split} split.")
    st.stop()
st.caption(f"Run **{run_name}** · {predictor.config['model']['name']} · dataset `{sel.data_dir}` · "
           f"split **{split}** · {int(metrics['n'].max())} labelled records per head at most "
           "(pure labels; excluded records left out)")

tab_disc, tab_thr, tab_cal, tab_xai, tab_sanity, tab_runs = st.tabs(
    ["Discrimination", "Threshold", "Calibration & scores", "Explanations (XAI)", "Sanity checks",
     "Runs side by side"])

with tab_disc:
    shown = metrics[["head", "n", "n_pos", "auc", "auc_ci_low", "auc_ci_high", "pr_auc", "val_auc", "test_dagger",
                     "test_dagger_ci_low", "test_dagger_ci_high"]].rename(columns={
        "auc": f"AUC ({split})", "auc_ci_low": "CI low", "auc_ci_high": "CI high", "pr_auc": "PR-AUC",
        "val_auc": "Val AUC", "test_dagger": "Test†", "test_dagger_ci_low": "Test† CI low",
        "test_dagger_ci_high": "Test† CI high"})
    st.dataframe(shown, hide_index=True, key="ev_metrics",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in shown.columns
                                if c not in ("head", "n", "n_pos")})
    st.caption(f"AUC ({split}) with its {n_boot}-resample bootstrap 95% CI and PR-AUC (average precision), "
               "computed here. **Val AUC** and **Test†** as in the run's summary.json: Test† is the test AUC of "
               "the checkpoint chosen on validation, reported once and never used for a choice.")
    downloads(metrics, f"{stem}_metrics", "dl_metrics")
    left, right = st.columns(2)
    left.plotly_chart(roc_figure(evals, title=f"ROC curves · {split}"), theme=None, config=PLOT_CONFIG,
                      key="ev_roc")
    right.plotly_chart(pr_figure(evals, title=f"Precision-recall curves · {split}"), theme=None,
                       config=PLOT_CONFIG, key="ev_pr")
    st.caption("Circles: the operating point at the validation-tuned threshold. Dotted: chance (ROC) and "
               "each head's prevalence (PR, the curve of a classifier without skill).")

with tab_thr:
    st.plotly_chart(confusion_figure(evals), theme=None, config=PLOT_CONFIG, key="ev_confusion")
    thr = metrics[["head", "threshold", "sensitivity", "specificity", "ppv", "npv", "f1", "tn", "fp", "fn", "tp"]]
    st.dataframe(thr, hide_index=True, key="ev_threshold",
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("threshold", "sensitivity", "specificity", "ppv", "npv", "f1")})
    st.caption("Decisions at each head's threshold tuned on the validation split (Youden's J unless the run "
               "was trained with another rule), never on the split evaluated here.")
    downloads(thr, f"{stem}_threshold", "dl_threshold")

with tab_cal:
    left, right = st.columns([1, 1])
    left.plotly_chart(calibration_figure(evals, title=f"Calibration · {split} ({strategy} bins)"), theme=None,
                      config=PLOT_CONFIG, key="ev_calibration")
    cal = calibration_long(evals)
    with right:
        st.dataframe(cal, hide_index=True, key="ev_calibration_table", height=320,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("bin_low", "bin_high", "p_mean", "frac_pos")})
        st.caption("Per bin: mean predicted probability against the observed fraction of positives "
                   "(Niculescu-Mizil & Caruana 2005). Brier score (Brier 1950) and expected calibration error "
                   "(ECE, Naeini et al. 2015) are in the legend and in the metrics download.")
        downloads(cal, f"{stem}_calibration", "dl_calibration")
    from xand.evaluation import calibration_summary

    temp = calibration_summary(predictor)
    st.markdown("**Temperature scaling** (Guo et al. 2017): each head's probability is `sigmoid(logit / T)` with "
                "`T` fitted on the validation split; decisions and AUC do not change, only what a probability "
                "means. ECE and Brier before → after, as the fit measured them:")
    st.dataframe(temp, hide_index=True, key="ev_temperature",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in temp.columns
                                if c not in ("head", "source")})
    st.plotly_chart(score_distribution_figure(evals), theme=None, config=PLOT_CONFIG, key="ev_scores")
    st.caption("Probabilities of the negatives (blue) and positives (red) of each head, each as a share of its "
               "class; dashed: the validation-tuned threshold.")
    downloads(score_table(evals), f"{stem}_scores", "dl_scores")

with tab_xai:
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

with tab_sanity:
    sanity_section(sel)

with tab_runs:
    runs = list_runs(sel.cfg)
    names = list(runs)
    default = [run_name] if run_name in names else names[:1]
    chosen = st.multiselect("Runs", names, default=default, key="ev_runs",
                            help="Figures from each run's summary.json: nothing is recomputed")
    if chosen:
        try:
            long = runs_comparison({n: runs[n] for n in chosen})
        except XandError as exc:
            st.error(f"Cannot read a run's summary: {exc}")
            long = None
        if long is not None:
            wide = runs_wide(long)
            st.dataframe(wide, hide_index=True, key="ev_runs_table",
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in wide.columns if c not in ("run", "model")})
            st.caption("Val AUC: validation AUC of the best checkpoint; Test†: test AUC of that checkpoint "
                       "(reported, never used for a choice).")
            downloads(wide, "runs_side_by_side", "dl_runs")
            with st.expander("All summary figures per run and head"):
                st.dataframe(long, hide_index=True, key="ev_runs_long")
                downloads(long, "runs_side_by_side_long", "dl_runs_long")
            st.plotly_chart(runs_figure(long), theme=None, config=PLOT_CONFIG, key="ev_runs_figure")
    else:
        st.info("Choose one or more runs.")
