"""The sidebar's "Train" panel: start a background training job, follow it live, cancel it.

The job is ``python -m train`` in a process of its own (``xand.jobs``), so the app stays responsive and
the job outlives reruns, reloads, other sessions and a restart of the server; its state is read back from
disk on every rerun. One job at a time: while one runs, Start is disabled and the panel shows that job
(whoever started it). Progress updates without a manual refresh through a fragment that polls the job
state (every second while a job runs, every few seconds otherwise to notice a job started elsewhere); when
the job ends the whole app reruns once, so that the new run is listed in the sidebar's run selector.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from xand.constants import HEADS

POLL_RUNNING_S = 1.0
POLL_IDLE_S = 5.0
CANCEL_GRACE_S = 5.0


def job_manager(cfg):
    """The job manager of the app's runs folder (``XAND_TRAIN_LOCK`` shares one lock between folders)."""
    from xand.jobs import JobManager

    return JobManager(cfg.runs_dir, lock_file=os.environ.get("XAND_TRAIN_LOCK") or None)


def train_panel(sel) -> None:
    """The "Train" expander in the sidebar (call once per script run, after ``sidebar``)."""
    mgr = job_manager(sel.cfg)
    ss = st.session_state
    latest = mgr.latest()
    active = latest if latest is not None and latest.active else mgr.current()
    shown = active or (latest if latest is not None and ss.get("_train_dismissed") != latest.id else None)
    # expanded while a job runs, or when one of this session's jobs has just ended
    expanded = active is not None or (shown is not None and shown.id in ss.get("_train_mine", ()))
    with st.sidebar.expander("Train", expanded=expanded, icon=":material/model_training:"):
        st.fragment(_job_status, run_every=POLL_RUNNING_S if active is not None else POLL_IDLE_S)(
            sel, active.id if active is not None else None)
        _start_form(sel, mgr, active)


# ------------------------------------------------------------------------------------- live status

def _job_status(sel, active_id: str | None) -> None:
    """The running (or last) job. Reruns the whole app when a job starts or ends elsewhere in time."""
    ss = st.session_state
    mgr = job_manager(sel.cfg)
    latest = mgr.latest()
    now_active = latest if latest is not None and latest.active else mgr.current()
    now_id = now_active.id if now_active is not None else None
    if now_id != active_id:
        # started or ended since the last full run: the Start button, the polling rate and the run
        # selector (the new run) are outside this fragment
        st.rerun(scope="app")
    if now_active is not None:
        _running_view(mgr, now_active)
    elif latest is not None and ss.get("_train_dismissed") != latest.id:
        _ended_view(sel, latest)


def _running_view(mgr, job) -> None:
    from xand.jobs import read_progress

    p = read_progress(job)
    st.markdown(f"**Training** {job.spec.label}")
    when = time.strftime("%H:%M:%S", time.localtime(job.started or job.created))
    st.caption(f"Job `{job.id}` · started {when} · {_device_text(job.spec.device)}")
    if job.cancel_requested:
        st.warning("Cancelling …")
    if p.phase == "preparing":
        st.progress(0.0, text="Preparing the data and the model …")
        if p.activity:
            st.caption(f"`{p.activity[-120:]}`")
        elapsed = _fmt_s(p.elapsed_s)
        st.caption(f"elapsed {elapsed}")
    else:
        head = f"{p.unit} ({p.unit_index + 1}/{len(p.units)})" if len(p.units) > 1 else p.unit
        text = (f"{head}: epoch {p.epoch}/{p.epochs}" if p.phase == "training"
                else "Computing the final metrics …")
        st.progress(p.fraction, text=text)
        st.markdown(_metrics_line(p))
        curve = _auc_frame(p.history)
        if curve is not None:
            st.line_chart(curve, height=150, x_label="epoch", y_label="val AUC")
    if st.button("Cancel training", key=f"train_cancel_{job.id}", icon=":material/stop_circle:",
                 disabled=job.cancel_requested):
        with st.spinner("Stopping the job …"):
            mgr.cancel(job.id, grace=CANCEL_GRACE_S)
        st.rerun(scope="app")


def _ended_view(sel, job) -> None:
    when = time.strftime("%H:%M", time.localtime(job.finished or job.created))
    st.caption(f"Last job `{job.id}` ({job.spec.label}), ended {when}")
    name = _run_name(sel.cfg, job.run_dir)
    if job.status == "finished":
        aucs = _val_aucs(job.run_dir)
        st.success(f"Finished in {_fmt_s(job.elapsed())}: run `{name or job.run_dir}`"
                   + (f" · val AUC {aucs}" if aucs else ""))
        if name is not None and st.session_state.get("run") != name:
            if st.button("Review with this run", key=f"train_open_{job.id}", icon=":material/monitor_heart:"):
                # This view is a fragment: the run selector is outside it, so the choice is handed to the
                # sidebar of a full rerun (a callback's change to the selector was lost there).
                st.session_state["_pending_run"] = name
                st.rerun(scope="app")
    elif job.status == "cancelled":
        st.info(f"Cancelled after {_fmt_s(job.elapsed())}."
                + (f" The partial run `{job.run_dir.name}` is kept (continue it with "
                   f"`python -m train --data {job.spec.data} --resume {job.run_dir}`)." if job.run_dir else ""))
    else:
        st.error(f"Training failed: {job.reason or 'unknown reason'}")
        tail = job.log_tail(25)
        if tail:
            st.code(tail, language=None)
        st.caption(f"Full log: `{job.log_path}`")
    if job.status != "failed":
        from xand.jobs import read_progress

        curve = _auc_frame(read_progress(job).history)
        if curve is not None:
            st.line_chart(curve, height=150, x_label="epoch", y_label="val AUC")
    st.button("Dismiss", key=f"train_dismiss_{job.id}", on_click=_dismiss, args=(job.id,))


def _dismiss(job_id: str) -> None:
    st.session_state["_train_dismissed"] = job_id


def _metrics_line(p) -> str:
    last = p.last or {}
    parts = []
    if last.get("train_loss") is not None:
        loss = f"loss {last['train_loss']:.3f}"
        if last.get("val_loss") is not None:
            loss += f" (val {last['val_loss']:.3f})"
        parts.append(loss)
    if last.get("val_auc") is not None:
        parts.append(f"val AUC {last['val_auc']:.3f}")
    if p.ecg_per_s:
        parts.append(f"{p.ecg_per_s:,.0f} ECG/s")
    parts.append(f"elapsed {_fmt_s(p.elapsed_s)}")
    if p.eta_s is not None and p.phase == "training":
        parts.append(f"left ≤ {_fmt_s(p.eta_s)}")
    return " · ".join(parts)


def _auc_frame(history: dict[str, list[dict]]) -> pd.DataFrame | None:
    """Validation AUC per epoch, one column per trained unit (head)."""
    cols = {}
    for unit, recs in history.items():
        s = pd.Series({int(r["epoch"]) + 1: r.get("val_auc") for r in recs}, dtype=float)
        if s.notna().any():
            cols[unit] = s
    if not cols:
        return None
    df = pd.DataFrame(cols)
    df.index.name = "epoch"
    return df


def _val_aucs(run_dir: Path | None) -> str:
    try:
        heads = json.loads((Path(run_dir) / "summary.json").read_text())["heads"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return ", ".join(f"{h} {s['val_auc']:.3f}" if s.get("val_auc") is not None else f"{h} undefined"
                     for h, s in heads.items())


def _run_name(cfg, run_dir: Path | None) -> str | None:
    """The name the sidebar's run selector lists ``run_dir`` under (None when it does not list it)."""
    if run_dir is None:
        return None
    from pages.common import list_runs

    for name, path in list_runs(cfg).items():
        if Path(path).resolve() == Path(run_dir).resolve():
            return name
    return None


# ------------------------------------------------------------------------------------------- start

def _start_form(sel, mgr, active) -> None:
    from xand.errors import XandError
    from xand.jobs import JobRunning, TrainJobSpec
    from xand.models.networks import list_models

    ss = st.session_state
    defaults = TrainJobSpec(data=str(sel.data_dir))
    models = list_models()
    for key, value in (("train_model", defaults.model if defaults.model in models else models[0]),
                       ("train_epochs", defaults.epochs), ("train_loss", defaults.loss),
                       ("train_lr", defaults.lr), ("train_augment", defaults.augment),
                       ("train_batch", defaults.batch_size), ("train_patience", defaults.patience)):
        ss.setdefault(key, value)
    if ss.get("train_heads") is None:
        ss["train_heads"] = [sel.head]
    with st.form("train_form", border=False):
        # no key: the field follows the sidebar's dataset until the user edits it
        data = st.text_input("Dataset folder", value=str(sel.data_dir or ""),
                             help="PTB-XL-layout folder; the sidebar's current dataset by default")
        heads = st.multiselect("Heads", HEADS, key="train_heads",
                               help="one binary model per head (the multilabel model trains them together)")
        model = st.selectbox("Architecture", models, key="train_model",
                             help="a registered model of xand.models.networks")
        c1, c2 = st.columns(2)
        epochs = c1.number_input("Epochs", min_value=1, max_value=1000, step=1, key="train_epochs")
        patience = c2.number_input("Patience", min_value=0, max_value=1000, step=1, key="train_patience",
                                   help="early stopping after this many epochs without a better val AUC (0 = off)")
        loss = c1.selectbox("Loss", ("focal", "bce"), key="train_loss",
                            help="focal (Lin et al. 2017, gamma 2) or positive-weighted BCE")
        lr = c2.number_input("Learning rate", min_value=1e-6, max_value=1.0, step=1e-4, format="%.1e",
                             key="train_lr")
        batch = c1.number_input("Batch size", min_value=2, max_value=4096, step=16, key="train_batch")
        augment = st.checkbox("Augment the training ECGs", key="train_augment",
                              help="noise, amplitude scaling, baseline wander and time shift, on the device")
        st.caption(f"Runs on {_device_text('auto')}, in the background; the run is written to "
                   f"`{sel.cfg.runs_dir}`.")
        start = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:",
                                      disabled=active is not None, width="stretch")
    if active is not None:
        st.caption("A training job is running (shown above): one at a time per machine.")
    if not start:
        return
    spec = TrainJobSpec(data=data.strip(), heads=tuple(heads), model=model, epochs=int(epochs), loss=loss,
                        lr=float(lr), batch_size=int(batch), augment=bool(augment), patience=int(patience),
                        cache_dir=str(sel.cfg.cache_dir))
    try:
        with st.spinner("Starting …"):
            job = mgr.start(spec)
    except JobRunning as exc:
        st.warning(str(exc))
        return
    except XandError as exc:
        st.error(f"Cannot start: {exc}")
        return
    ss["_train_mine"] = (*ss.get("_train_mine", ()), job.id)
    st.rerun(scope="app")  # the status fragment polls fast now, and Start is disabled


# ------------------------------------------------------------------------------------------ format

@st.cache_resource(show_spinner=False)
def _cuda_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _device_text(device: str) -> str:
    if device != "auto":
        return device
    gpu = _cuda_name()
    return f"the GPU ({gpu})" if gpu else "the CPU (no GPU here)"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
