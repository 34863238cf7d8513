"""Evaluate: a run on the whole cohort of a split (curves, threshold, calibration, XAI table, runs compared)."""

from __future__ import annotations

import streamlit as st

from pages.common import (
    page_selection,
    run_stamp, ensure_probabilities, get_predictor, list_runs, predictor_for,
    records_table,
)
from pages.common.evaluate_xai import downloads, safe, xai_section
from pages.common.views import PLOT_CONFIG, sanity_section, wait_for_probabilities
from xand.errors import XandError
from xand.figures.evaluation import (
    calibration_figure, confusion_figure, pr_figure, roc_figure, runs_figure, score_distribution_figure,
)
from xand.evaluation import (calibration_long, evaluate_predictions, metrics_table, runs_comparison, runs_wide,
                             score_table)

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
    xai_section(sel, predictor, split, stem)

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
