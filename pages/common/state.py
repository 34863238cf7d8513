"""URL and sidebar state: the choices live in the URL so that a link opens the same view for a colleague;
the sidebar sets them; the demo set is written on first use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import streamlit as st

from pages.common.config import (
    DEMO_LABEL,
    DISCLAIMER,
    PROJECT,
    PTBXL_LABEL,
    AppConfig,
    Selection,
)
from pages.common.services import (
    attribution_methods,
    default_run,
    get_prepared,
    list_runs,
    method_choice,
    set_torch_threads,
    short_path,
    train_hint,
)
from xand.constants import HEADS
from xand.fileio import absolute_path

DEMO_TOKEN = "demo"  # the ``data`` URL parameter of the synthetic demo set


def dataset_token(data_dir: Path | None, is_demo: bool) -> str | None:
    """The dataset as the URL's ``data`` parameter: ``demo``, else the folder (relative to the project
    when inside it, so that a link survives another checkout; else absolute); None without a dataset."""
    if is_demo:
        return DEMO_TOKEN
    return None if data_dir is None else short_path(data_dir)


def dataset_from_token(token: str) -> tuple[Path | None, str | None]:
    """The PTB-XL folder a ``data`` URL parameter names (None for the demo set) and why it cannot be
    opened here (None when it can)."""
    if token == DEMO_TOKEN:
        return None, None
    problem = "it is not a readable PTB-XL folder on this server"
    try:
        p = Path(token).expanduser()
        p = absolute_path(p if p.is_absolute() else PROJECT / p)
        db = p / "ptbxl_database.csv"
        ok = p.is_dir() and os.access(p, os.R_OK | os.X_OK) and db.is_file() and os.access(db, os.R_OK)
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL byte, "~user" unknown: same answer
        return None, problem
    if not ok:
        # one answer for a missing folder, an unreadable one and a folder that is not PTB-XL: a link must
        # not tell its reader which folders exist on the server
        return p, problem
    return p, None


def inline_code(text: str, limit: int = 160) -> str:
    """``text`` (from a URL or a user) as a Markdown code span that cannot break out of itself: no
    backticks, no line breaks or other control characters, at most ``limit`` characters."""
    clean = "".join(ch for ch in str(text) if ch.isprintable() and ch != "`")
    if len(clean) > limit:
        clean = clean[:limit] + "…"
    return f"`{clean or ' '}`"


def _shadow(key: str) -> str:
    return f"_kept_{key}"


def choose(key: str, value) -> None:
    """Set the sidebar choice ``key`` (the key of a widget drawn with :func:`kept`) for this session's next run.

    Call it from a widget callback or before :func:`sidebar` draws the widget."""
    st.session_state[_shadow(key)] = value
    st.session_state[key] = value


def kept(key: str, default) -> dict:
    """Seed the widget ``key`` from its shadow copy (``default`` the first time) and return the keyword
    arguments that keep the copy up to date: ``sb.radio(..., **kept("source", DEMO_LABEL))``."""
    ss = st.session_state
    shadow = _shadow(key)
    if shadow not in ss:
        ss[shadow] = ss[key] if key in ss else default
    ss[key] = ss[shadow]
    return {"key": key, "on_change": _store, "args": (key,)}


def _store(key: str) -> None:
    st.session_state[_shadow(key)] = st.session_state[key]


def _init_state_from_url(runs: dict[str, Path], methods: list[str]) -> None:
    """On the first run of a session, the URL's choices become the widgets' values.

    The dataset (``data``) is restored first: a record id means nothing without it. A link to a dataset
    that cannot be opened here keeps the configured one and leaves a warning (``_link_data_problem``),
    shown by :func:`sidebar` while that record of the other dataset is in view.
    """
    ss = st.session_state
    if ss.get("_url_loaded"):
        return
    qp = st.query_params
    data = qp.get("data")
    rec = qp.get("record")
    if data:
        folder, problem = dataset_from_token(str(data))
        if problem is None:
            choose("source", DEMO_LABEL if folder is None else PTBXL_LABEL)
            if folder is not None:
                choose("ptbxl_path", str(folder))
        else:
            ss["_link_data_problem"] = {
                "data": str(data), "why": problem,
                "record": int(rec) if rec is not None and str(rec).isdigit() else None}
    head = qp.get("head")
    if head in HEADS:
        choose("head", head)
    method = qp.get("method")
    if method in methods:
        choose("method", method)
    run = qp.get("run")
    if run in runs:
        choose("run", run)
    if qp.get("grid") in ("0", "1"):
        choose("paper_grid", qp.get("grid") == "1")
    if rec is not None and str(rec).isdigit():
        ss["record"] = int(rec)
    ss["_url_loaded"] = True


def _link_data_warning(data_dir: Path | None, is_demo: bool) -> None:
    """Say that a link's dataset could not be opened, while its record id is shown on another dataset."""
    ss = st.session_state
    prob = ss.get("_link_data_problem")
    if not prob:
        return
    shown = dataset_token(data_dir, is_demo)
    prob.setdefault("shown", shown)
    if prob["shown"] != shown or (prob["record"] is not None and ss.get("record") != prob["record"]):
        del ss["_link_data_problem"]  # the reviewer has moved on
        return
    what = "the synthetic demo set" if is_demo else inline_code(data_dir) if data_dir else "no dataset"
    rec = (f" Record {prob['record']} here is probably not the ECG the link was made on."
           if prob["record"] is not None else "")
    st.warning(f"This link was made on the dataset {inline_code(prob['data'])}, which cannot be opened here: "
               f"{prob['why']}. Showing {what} instead.{rec}")


def review_query(sel: Selection, ecg_id: int, head: str | None = None, method: str | None = None,
                 run: str | None = None) -> dict[str, str]:
    """The URL parameters that open ``ecg_id`` in Review exactly as chosen: the dataset first (a record id
    means nothing without it), then the run, head, method and display choices of ``sel``."""
    q = {"record": str(int(ecg_id)), "data": dataset_token(sel.data_dir, sel.is_demo),
         "run": run if run is not None else st.session_state.get(_shadow("run")),
         "head": head or sel.head, "method": method or sel.method, "grid": None if sel.paper_grid else "0"}
    return {k: str(v) for k, v in q.items() if v is not None}


def set_url(**params) -> None:
    """Write choices into the URL, only when they changed (each write is a browser message)."""
    for k, v in params.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
            continue
        if st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


def sidebar(cfg: AppConfig) -> Selection:
    """The sidebar shown on every page; returns the choices."""
    ss = st.session_state
    runs = list_runs(cfg)
    methods = attribution_methods()
    set_torch_threads(cfg.torch_threads)
    _init_state_from_url(runs, methods)
    sb = st.sidebar
    sb.caption(f"XAND review · {DISCLAIMER}")

    sb.subheader("Dataset")
    source = sb.radio("Dataset", (DEMO_LABEL, PTBXL_LABEL), label_visibility="collapsed",
                      **kept("source", PTBXL_LABEL if cfg.data_dir is not None else DEMO_LABEL))
    if source == PTBXL_LABEL:
        data_path = sb.text_input("PTB-XL folder", **kept("ptbxl_path", str(cfg.data_dir or "")),
                                  help="A folder holding ptbxl_database.csv, scp_statements.csv and records100/")
        plus_path = sb.text_input("PTB-XL+ folder (optional)", **kept("plus_path", str(cfg.plus_dir or "")),
                                  help="ECGdeli fiducial points for the clinical masks; without it the app "
                                       "delineates each ECG itself")
        data_dir = absolute_path(data_path) if data_path else None
        plus_dir = absolute_path(plus_path) if plus_path else None
        if plus_dir is None and data_dir is not None and (data_dir / "fiducial_points" / "ecgdeli").is_dir():
            plus_dir = data_dir  # a folder that is its own PTB-XL+ (e.g. a synthetic set)
        is_demo = False
    else:
        data_dir, plus_dir, is_demo = cfg.demo_dir, cfg.demo_dir, True
    _link_data_warning(data_dir, is_demo)

    sb.subheader("Model")
    if runs:
        names = list(runs)
        if ss.get("_pending_run") in names:  # "Review with this run" (train panel), from a fragment
            choose("run", ss.pop("_pending_run"))
        if ss.get(_shadow("run")) not in names:  # first run of the session, or its run was removed
            choose("run", default_run(cfg, runs))
        run = sb.selectbox("Trained run", names, **kept("run", names[0]))
        run_dir = runs[run]
    else:
        sb.warning(f"No trained run under `{cfg.runs_dir}` or `{cfg.demo_weights}`. "
                   f"Train heads on the demo set with `{train_hint(cfg)}`.")
        run, run_dir = None, None
    head = sb.selectbox("Head", HEADS, **kept("head", HEADS[0]))
    if ss.get("_pending_method") in methods:  # "Use <method>" on Review
        choose("method", ss.pop("_pending_method"))
    first = methods[0] if methods else "ig"
    if _shadow("method") not in ss:  # the session's first run: open with the run's measured default
        chosen = method_choice(run_dir, head)
        first = chosen["method"] if chosen and chosen["method"] in methods else first
    method = sb.selectbox("Attribution method", methods, **kept("method", first),
                          help="ig = Integrated Gradients (Sundararajan et al. 2017)")
    sb.subheader("Display")
    paper_grid = sb.checkbox("ECG paper grid", **kept("paper_grid", True))
    set_url(data=dataset_token(data_dir, is_demo), head=head, method=method, run=run,
            grid=None if paper_grid else "0")
    return Selection(cfg, data_dir, plus_dir, is_demo, run_dir, head, method, paper_grid)


def ensure_dataset(sel: Selection) -> bool:
    """First run: write the synthetic demo set and prepare it; a user folder is only validated.

    Returns False (after showing why) when the dataset cannot be opened.
    """
    from xand.errors import XandError

    if sel.data_dir is None:
        st.info("Enter the path of a PTB-XL folder in the sidebar, or choose the synthetic demo set.")
        return False
    if sel.is_demo and not (sel.data_dir / "ptbxl_database.csv").is_file():
        with st.status("First run: writing the synthetic demo set and preparing it", expanded=True) as box:
            write_demo_set(sel.data_dir, sel.cfg.demo_records)
            st.write("Preparing the memory-mapped array …")
            get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
            box.update(label="Demo set ready", state="complete", expanded=False)
    try:
        with st.spinner("Preparing the dataset (first time only) …"):
            get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    except XandError as exc:
        st.error(f"Cannot open the dataset: {exc}")
        return False
    return True


def write_demo_set(out: Path, n_records: int | None) -> None:
    """Write the synthetic demo set with a live progress bar.

    The synthesizer runs as ``python -m xand synth`` in a child process (its worker pool must not
    fork the Streamlit server); progress is the number of records written so far.
    """
    from xand.data.synth import SynthConfig

    scfg = SynthConfig(n_records=n_records) if n_records else SynthConfig()
    st.write(f"Writing {scfg.n_records} synthetic 12-lead ECGs (PTB-XL layout, seed {scfg.seed}) to `{out}` …")
    bar = st.progress(0.0)
    tmp = out.with_name(out.name + ".partial")
    cmd = [sys.executable, "-m", "xand", "synth", "--out", str(tmp), "--n", str(scfg.n_records),
           "--seed", str(scfg.seed)]
    log = tmp.with_suffix(".log")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            done = sum(1 for _ in (tmp / "records100").glob("*/*.hea")) if (tmp / "records100").is_dir() else 0
            bar.progress(min(done / scfg.n_records, 1.0), f"{done} / {scfg.n_records} records")
            time.sleep(0.5)
    if proc.returncode != 0:
        raise RuntimeError(f"writing the demo set failed ({' '.join(cmd)}):\n{log.read_text()[-2000:]}")
    bar.progress(1.0, f"{scfg.n_records} / {scfg.n_records} records")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)  # the set appears complete or not at all
    log.unlink(missing_ok=True)


def page_selection() -> "Selection":
    """The sidebar selection made by ``app.py`` for the page being run.

    Streamlit decides once per server process whether a ``pages/`` folder means its legacy multipage
    mode; until ``st.navigation`` has run once, a deep link such as ``/review?record=12`` on a freshly
    started server executes the page script directly, without ``app.py``. Switching the process to
    ``st.navigation`` mode by running ``app.py`` in place routes the same URL through it instead (legacy
    mode does exactly this for the root URL), in the same script run so no widget state is lost.
    """
    from streamlit.runtime.pages_manager import PagesManager

    # True only while this page runs in legacy mode, i.e. directly and not from app.py's st.navigation
    # (which sets the flag to False before running a page).
    if PagesManager.uses_pages_directory or "_selection" not in st.session_state:
        import runpy

        runpy.run_path(str(PROJECT / "app.py"), run_name="__main__")
        st.stop()
    return st.session_state["_selection"]
