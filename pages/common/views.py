"""Page fragments shared by Review, Upload, Browse and Evaluate: the score column of one explained ECG,
its lead charts, and the background-probabilities progress."""

from __future__ import annotations

import numpy as np
import streamlit as st

from pages.common import View, ensure_probabilities, fmt_score, probability_job
from xand.figures.printout import lead_drop_figure, lead_importance_figure, wave_heatmap_figure

PLOT_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def sanity_badge(sanity: dict | None) -> None:
    """The shown method's sanity-check verdict in plain words (``pages.common.sanity_for``)."""
    if not sanity:
        return
    # a verdict measured on another dataset is shown, but not in the colours of a verdict on this one
    color = {True: "green", False: "red"}.get(sanity["passed"], "gray") if sanity.get("same_dataset", True) else "gray"
    icon = {True: ":material/verified:", False: ":material/report:"}.get(sanity["passed"], ":material/help:")
    st.badge(sanity["label"], icon=icon, color=color)
    if sanity["detail"]:
        st.caption(sanity["detail"])


def method_note(head: str, method: str, chosen: dict | None) -> None:
    """Say whether ``method`` is the run's measured default for ``head``, and offer it when it is not."""
    if not chosen:
        return
    if chosen["method"] == method:
        st.caption(f"**{method}** is this run's measured default for {head}: {chosen['why']}.")
        if not chosen.get("passes_sanity"):
            st.warning(f"No method passes both checks for {head}: read these scores as unvalidated.",
                       icon=":material/warning:")
        return
    st.caption(f"This run's measured default for {head} is **{chosen['method']}**: {chosen['why']}.")
    if not chosen.get("passes_sanity"):
        st.warning(f"No method passes both checks for {head}: read its scores as unvalidated.",
                   icon=":material/warning:")
    if st.button(f"Use {chosen['method']}", key=f"use_method_{head}"):
        st.session_state["_pending_method"] = chosen["method"]
        st.rerun()


def score_column(head: str, view: View | None, status: str | None = None, sanity: dict | None = None,
                 chosen: dict | None = None) -> None:
    """Probability, decision, pure-label status (when known), Pointing Game and CAS with their chance
    level, the method's convergence delta (IG, GradientShap), rank accuracy and perturbation of one
    explained ECG."""
    st.subheader(head)
    status_help = ("positive: a statement of this superclass with likelihood 100; "
                   "excluded: present only with likelihood < 100")
    if view is None or view.probability is None:
        st.info("No trained run loaded: the ECG and its clinical region only.")
        if status is not None:
            st.metric("Pure label", status, help=status_help)
    else:
        st.metric(f"Probability {head}", f"{view.probability:.3f}", help="Sigmoid output of the head for this ECG")
        st.metric("Decision", view.decision or "—",
                  help=f"At the validation-tuned threshold {view.threshold:.2f}" if view.threshold else None)
        if status is not None:
            st.metric("Pure label", status, help=status_help)
        if view.decision == "negative":
            st.info(f"The model calls this ECG **negative** for {head}: the map shows what raised the "
                    f"probability a little, not where a {head} finding is. Read the scores below with that in mind.",
                    icon=":material/info:")
        sanity_badge(sanity)
        method_note(head, view.method, chosen)
        pg = view.pg or {}
        pg_txt = ("hit" if pg.get("value") == 1.0 else "miss") if pg.get("value") is not None else "undefined"
        st.metric("Pointing Game", pg_txt,
                  help="Is the single most attributed (lead, time) point inside the clinical region? "
                       "(Zhang et al. 2018)")
        st.caption(f"Pointing Game {fmt_score(view.pg)}")
        cas_v = (view.cas or {}).get("value")
        st.metric("CAS", "undefined" if cas_v is None else f"{cas_v:.3f}",
                  help="Share of positive attribution inside the clinical region")
        st.caption(f"CAS {fmt_score(view.cas)}")
        shown = delta_metric(view.method, view.delta)
        if shown is not None:
            st.metric(shown[0], shown[1], help=shown[2])
        ra, pert = view.scores.get("rank_accuracy"), view.scores.get("perturbation")
        if ra:
            st.caption(f"Rank accuracy {fmt_score(ra)}")
        if pert:
            st.caption(f"Probability drop when the clinical region is removed {fmt_score(pert)} "
                       "(chance: a random region of the same size)")
        finding_scores_table(view)
    if view is not None and view.mask_reason:
        st.warning(f"Empty clinical region: {view.mask_reason}")
    if view is not None and view.note:
        st.caption(view.note)


def finding_scores_table(view: View) -> None:
    """The same map scored against the mask of each of the record's own statements of this head
    (``xand.delineation.findings``): first-degree AV block is read in the PR interval, not the QRS."""
    if not getattr(view, "findings", None):
        return
    st.caption("**Per finding** (the record's own statements; the region their criteria read):")
    for code, f in view.findings.items():
        pg, ca = f["pointing_game"], f["cas"]
        pg_txt = "undefined" if pg["value"] is None else ("hit" if pg["value"] == 1.0 else "miss")
        ca_txt = "undefined" if ca["value"] is None else f"{ca['value']:.2f}"
        pg_chance = pg.get("chance")
        st.caption(f"{code} ({f['description']}; {f['regions']}): Pointing Game {pg_txt}"
                   + ("" if pg_chance is None else f" (chance {pg_chance:.2f})")
                   + f", CAS {ca_txt} (chance {ca['chance']:.2f})")


_COMPLETENESS = "sum(attribution) − (f(x) − f(baseline)), in logits"


def delta_metric(method: str, delta: float | None) -> tuple[str, str, str] | None:
    """(label, value, help) of the attribution's convergence delta as its method defines it, or None for
    a method without one (saliency, Grad-CAM, occlusion: nothing is shown)."""
    if method == "ig":
        return ("IG convergence δ", "—" if delta is None else f"{delta:.2e}",
                f"{_COMPLETENESS}; near 0 = converged")
    if method == "expected_gradients":
        return ("Expected Gradients mean |δ|", "—" if delta is None else f"{delta:.2e}",
                f"Mean over the draws of |{_COMPLETENESS}|. Each draw is a one-point estimate, so this does "
                "not go to 0 with more draws; it measures how far single draws are from completeness")
    if method == "gradshap":
        return ("GradientShap mean |δ|", "—" if delta is None else f"{delta:.2e}",
                f"Mean over GradientShap's samples of |{_COMPLETENESS}|. Each sample is a one-point estimate, so "
                "this does not go to 0 with more samples; it measures how far single samples are from completeness")
    if delta is None:
        return None
    return f"{method} convergence δ", f"{delta:.2e}", _COMPLETENESS


def lead_charts(view: View | None, key: str) -> None:
    """Per-lead importance and lead-drop effects side by side (nothing without an attribution)."""
    if view is None or view.attribution is None:
        return
    c1, c2 = st.columns(2)
    imp = view.lead_importance
    if imp is not None and np.isfinite(imp).any():
        c1.plotly_chart(lead_importance_figure(imp, title="Lead importance (share of positive attribution)"),
                        theme=None, config=PLOT_CONFIG, key=f"{key}_importance")
    else:
        c1.info("Lead importance undefined: the map has no positive attribution.")
    if view.lead_drop is not None:
        c2.plotly_chart(lead_drop_figure(view.lead_drop), theme=None, config=PLOT_CONFIG, key=f"{key}_drop")
    if view.waves is not None and np.isfinite(view.waves).any():
        st.plotly_chart(wave_heatmap_figure(view.waves, title=f"{view.head}: {view.waves_label} when a wave is "
                                            "replaced (each lead x wave, all beats)", value_label=view.waves_label),
                        theme=None, config=PLOT_CONFIG, key=f"{key}_waves")
    elif view.waves is not None:
        st.info("No wave to attribute: no P, QRS or T wave was delineated on any lead of this ECG.")


@st.fragment(run_every=1.0)
def wait_for_probabilities(sel, note: str = "") -> None:
    """Progress of the background probabilities; the whole page reruns to show them when ready."""
    if ensure_probabilities(sel):
        st.rerun()
    job = probability_job(sel)
    if job is None:
        return
    if job["error"]:
        st.error(f"Computing the model's probabilities failed: {job['error']}")
        return
    st.progress(job["done"] / max(job["total"], 1), f"Model probabilities: {job['done']} / {job['total']} records{note}")


def sanity_section(sel) -> None:
    """The run's stored sanity check as a table (Evaluate page): every head x method, trained vs random."""
    import pandas as pd

    from pages.common import attribution_methods, sanity_for, sanity_result
    from xand.constants import HEADS

    found = sanity_result(sel)  # read once for the whole table
    checked = {}
    for h in HEADS:
        for m in attribution_methods():
            s = sanity_for(sel, h, m, found)
            if s["row"] is not None:
                checked[(h, m)] = s
    if not checked:
        st.info("This run has no sanity check yet. Compute it with "
                f"`python -m xand sanity --run {sel.run_dir} --data {sel.data_dir}` (a few minutes on 2 cores); "
                "it is stored with the run and shown here and beside every score.")
        return
    rows = []
    for (h, m), s in checked.items():
        r = s["row"]
        rows.append({"head": h, "method": m, "verdict": s["label"], "n": r["n"], "chance": r["chance_mean"],
                     "PG chance": r.get("chance_pg_mean", r["chance_mean"]),
                     "PG trained": r["pointing_game_trained"], "PG random": r["pointing_game_random"],
                     "CAS trained": r["cas_trained"], "CAS random": r["cas_random"],
                     "rank acc. trained": r["rank_accuracy_trained"], "rank acc. random": r["rank_accuracy_random"],
                     "rank corr. (full random)": r["spearman_random_median"],
                     "cascade (output → input)": ", ".join("—" if v is None else f"{v:.2f}"
                                                          for v in r["cascade_spearman"])})
    table = pd.DataFrame(rows)
    st.markdown("**Model-parameter randomisation** (Adebayo et al. 2018): each head's weights re-initialised block "
                "by block from the output down. A method *passes* when its map changes (median Spearman rank "
                "correlation of |map| with the trained one below 0.5) and a random network earns no more than "
                "chance + 0.15 Pointing Game and chance + 0.05 CAS. A score that a random network earns as well "
                "says nothing about what the head learned.")
    st.dataframe(table, hide_index=True, key="sanity_table",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in table.columns
                                if c not in ("head", "method", "verdict", "n", "cascade (output → input)")})
    info = next(iter(checked.values()))["where"]
    st.caption(f"Measured on {info}. Per row: n = explained positive ECGs of that head; chance = the mask's "
               "coverage (of CAS and rank accuracy); PG chance = the Pointing Game's own (for the wave-level "
               "methods the share of wave segments inside the mask, as the game is played on segments); "
               "cascade = the rank correlation after randomising each further block.")


def provenance_note(sel, real: bool | None = None) -> None:
    """Where the shown probabilities come from, and a warning when heads trained on synthetic ECGs are
    applied to real ones (``real``: the ECG shown is real; default: the dataset is not the demo set)."""
    from pages.common import run_provenance

    prov = run_provenance(sel.cfg, sel.run_dir)
    if prov is None:
        if sel.run_dir is not None:
            st.caption(f"Run `{sel.run_dir.name}`: its training data are not recorded (trained before 2026-12-03).")
        return
    st.caption(f"Run `{sel.run_dir.name}`, trained on {prov['label']}.")
    if real is None:
        from xand.data.synth import is_synthetic

        real = not sel.is_demo and not (sel.data_dir is not None and is_synthetic(sel.data_dir))
    if prov["synthetic"] and real:
        st.warning("These heads were trained on **synthetic** ECGs and are applied here to real ones: their "
                   "probabilities and maps describe the synthetic textbook patterns, not this patient. Train "
                   "heads on real data (sidebar, Train) before reading them.", icon=":material/warning:")
