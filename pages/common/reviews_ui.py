"""Reviewers' verdicts in the app: the shared review store and the verdict form of the Review page.

The store is ``xand.reviews.store.ReviewStore`` on ``XAND_REVIEWS_URL`` (any SQLAlchemy URL, e.g. PostgreSQL for
a team) or, by default, the SQLite file ``<XAND_HOME>/reviews.sqlite``. One store (one connection pool)
per URL and server process (``st.cache_resource``): every session shares it, and the database itself
serialises writers, so reviewers saving at the same moment lose nothing.
"""

from __future__ import annotations

import hashlib
import os

import pandas as pd
import streamlit as st

from xand.constants import LEADS
from xand.errors import XandError
from xand.reviews.store import PLAUSIBLE_VALUES, PREDICTION_VALUES, ReviewStore, Verdict, default_url

REVIEWS_URL_ENV = "XAND_REVIEWS_URL"
PREDICTION_TEXT = {"agree": "Agree", "disagree": "Disagree"}
PLAUSIBLE_TEXT = {"yes": "Yes", "partly": "Partly", "no": "No"}


def reviews_url(cfg) -> str:
    """The review database: ``XAND_REVIEWS_URL``, else ``<cfg.home>/reviews.sqlite``."""
    return os.environ.get(REVIEWS_URL_ENV) or default_url(cfg.home)


@st.cache_resource(show_spinner=False)
def get_review_store(url: str) -> ReviewStore:
    """The review store of ``url``, opened (and its schema checked / migrated) once per process."""
    return ReviewStore(url)


def review_store(sel) -> ReviewStore | None:
    """The app's review store, or None after saying why it cannot be opened."""
    from sqlalchemy.exc import SQLAlchemyError

    url = reviews_url(sel.cfg)
    try:
        return get_review_store(url)
    except (XandError, SQLAlchemyError, OSError) as exc:
        shown = url.split("@")[-1] if "@" in url else url  # never show a password
        st.error(f"Cannot open the review database `{shown}`: {exc}")
        return None


def dataset_name(sel) -> str:
    """The name verdicts are filed under: ``demo`` for the synthetic set, else the dataset folder's name
    (so that colleagues with the same PTB-XL download in different places share verdicts)."""
    if sel.is_demo:
        return "demo"
    name = sel.data_dir.name
    # "demo" is the synthetic set's key: a PTB-XL folder that happens to be called so must not share it
    return f"folder:{name}" if name == "demo" else name


def fmt_time(t) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def verdict_text(v: Verdict) -> str:
    """One line: prediction, plausibility, region and note of a saved verdict."""
    parts = [f"prediction **{v.prediction}**", f"attribution plausible **{v.plausible}**"]
    region = []
    if v.leads:
        region.append(", ".join(v.leads))
    if v.start_s is not None:
        region.append(f"{v.start_s:.2f}–{v.end_s:.2f} s")
    if region:
        parts.append("region " + " · ".join(region))
    if v.note:
        parts.append(f"note “{v.note}”")
    return "; ".join(parts)


def _signed_in_name() -> str | None:
    """The signed-in user's name or e-mail when the app has an identity provider (``st.login``), else None."""
    try:
        user = st.user
        if not user.get("is_logged_in"):
            return None
        return str(user.get("email") or user.get("name") or "").strip() or None
    except Exception:  # noqa: BLE001 - no auth configured: typed names
        return None


def _remember_reviewer() -> None:
    st.session_state["reviewer_name"] = " ".join(str(st.session_state.get("reviewer_input", "")).split())


def _show_current(box, current: Verdict | None, ecg_id: int, head: str) -> None:
    with box.container():
        if current is None:
            st.caption(f"No verdict of yours yet for record {ecg_id} · {head}.")
            return
        st.markdown(f"Your current verdict (saved {fmt_time(current.saved_at)}): {verdict_text(current)}")
        n = int(current.revision)
        st.caption(f"History: {n} saved version{'s' if n != 1 else ''} "
                   "(every save is kept; the latest counts)")


def verdict_form(sel, ecg_id: int, head: str, context: dict | None = None) -> Verdict | None:
    """The reviewer's verdict on ``(record, head)``: name, current verdict, history, and a form to save.

    Parameters
    ----------
    sel : the sidebar :class:`pages.common.Selection`
    ecg_id, head : the record and head on screen
    context : what the reviewer is judging: ``run_id``, ``method``, ``probability``, ``decision``
        (``"positive"``/``"negative"``), ``duration_s`` (record length, bounds the time span)

    Returns
    -------
    The verdict saved in this script run, else None.
    """
    ss = st.session_state
    context = context or {}
    dataset = dataset_name(sel)

    # The name lives in a plain session key: a widget's own state is dropped on pages without it.
    ss.setdefault("reviewer_name", "")
    signed_in = _signed_in_name()
    if signed_in:  # the identity provider names the reviewer: nobody types someone else's name
        ss["reviewer_name"] = signed_in
        st.text_input("Reviewer", value=signed_in, disabled=True, key="reviewer_signed_in",
                      help="Your signed-in identity (st.login); verdicts are filed under it.")
    else:
        ss["reviewer_input"] = ss["reviewer_name"]
        st.text_input("Reviewer", key="reviewer_input", on_change=_remember_reviewer, placeholder="Your name",
                      help="Remembered for this session. Verdicts are kept per reviewer, record and head. "
                           "A typed name is not an identity: configure sign-in (README, Serving a team).")
    reviewer = ss["reviewer_name"]
    if not reviewer:
        st.info("Enter your name to record a verdict on this ECG.")
        return None
    probability = context.get("probability")
    if probability is None:
        st.info(f"No model prediction for {head} on this record: a verdict judges a trained run's prediction "
                "and attribution. Choose a run with this head in the sidebar.")
        return None

    store = review_store(sel)  # opened once a reviewer is there: a page view alone writes nothing
    if store is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        reviewer = store.reviewer_name(reviewer)  # "dr alice" reads and writes Dr Alice's verdicts
        current = store.current(dataset, ecg_id, head, reviewer)
    except (XandError, SQLAlchemyError) as exc:
        st.error(f"Cannot read the review database: {exc}")
        return None
    box = st.empty()
    _show_current(box, current, ecg_id, head)
    if current is not None and current.revision > 1 and st.checkbox("Show all versions",
                                                                     key=f"verdict_hist_{ecg_id}_{head}"):
        hist = store.history(dataset, ecg_id, head, reviewer)
        st.dataframe(hist[["revision", "saved_at", "prediction", "plausible", "leads", "start_s", "end_s",
                           "note", "run_id", "method"]], hide_index=True)

    # widget keys per (record, head, reviewer): each verdict opens with its own saved values
    k = f"{ecg_id}_{head}_{hashlib.sha1(reviewer.encode()).hexdigest()[:8]}"
    duration = float(context.get("duration_s") or 10.0)
    decision = context.get("decision")
    said = f"{decision} (p = {probability:.3f})" if decision else f"p = {probability:.3f}"
    with st.form(f"verdict_form_{k}", border=True):
        c1, c2 = st.columns(2)
        pred = c1.radio(f"The model says {head} {said}. Do you agree?", PREDICTION_VALUES,
                        index=None if current is None else PREDICTION_VALUES.index(current.prediction),
                        format_func=PREDICTION_TEXT.get, horizontal=True, key=f"verdict_pred_{k}")
        plaus = c2.radio("Is the attribution clinically plausible?", PLAUSIBLE_VALUES,
                         index=None if current is None else PLAUSIBLE_VALUES.index(current.plausible),
                         format_func=PLAUSIBLE_TEXT.get, horizontal=True, key=f"verdict_plaus_{k}")
        st.caption("Optional: the region you would point to.")
        c3, c4, c5 = st.columns([2, 1, 1])
        leads = c3.multiselect("Leads", LEADS, default=list(current.leads) if current else [],
                               key=f"verdict_leads_{k}")
        start = c4.number_input("From (s)", min_value=0.0, max_value=duration, step=0.1, format="%.2f",
                                value=current.start_s if current else None, key=f"verdict_start_{k}")
        end = c5.number_input("To (s)", min_value=0.0, max_value=duration, step=0.1, format="%.2f",
                              value=current.end_s if current else None, key=f"verdict_end_{k}")
        note = st.text_area("Note", value=current.note if current else "", key=f"verdict_note_{k}",
                            placeholder="What you see, why you agree or not …")
        submitted = st.form_submit_button("Save verdict", type="primary", key=f"verdict_save_{k}")
    if not submitted:
        return None
    if pred is None or plaus is None:
        st.error("Choose whether you agree with the prediction and whether the attribution is plausible.")
        return None
    verdict = Verdict(dataset=dataset, ecg_id=int(ecg_id), head=head, reviewer=reviewer, prediction=pred,
                      plausible=plaus, leads=tuple(leads), start_s=start, end_s=end, note=note,
                      run_id=context.get("run_id"), method=context.get("method"), probability=probability)
    try:
        saved = store.save_verdict(verdict)
    except (XandError, SQLAlchemyError) as exc:
        st.error(f"Not saved: {exc}")
        return None
    _show_current(box, saved, ecg_id, head)
    st.success(f"Saved version {saved.revision} of your verdict on record {ecg_id} · {head} "
               f"at {fmt_time(saved.saved_at)}.", icon=":material/check_circle:")
    return saved
