"""What every page of the viewer shares: configuration, the sidebar, URL state and cached services.

Pages stay thin: they call the functions here, which call ``xand`` for all the work. Heavy objects
(prepared arrays, trained models) are ``st.cache_resource``; tables and explanations (plain numpy /
pandas) are ``st.cache_data``. Choices live in the URL (``?data=demo&record=123&head=MI&method=ig``) so that
a link opens exactly the same view for a colleague.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import atexit
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from xand.constants import EXCLUDED, HEADS, NEGATIVE, POSITIVE
from xand.fileio import absolute_path, atomic_write

PROJECT = Path(__file__).resolve().parents[2]
DISCLAIMER = "Research grade, not a medical device: not for diagnosis or treatment decisions."
STATUS_TEXT = {POSITIVE: "positive", NEGATIVE: "negative", EXCLUDED: "excluded"}
DEMO_LABEL = "Synthetic demo set"
PTBXL_LABEL = "PTB-XL folder"


# ------------------------------------------------------------------------------------ configuration

@dataclass
class AppConfig:
    """Where the app reads and writes; every path can be set by an environment variable.

    Attributes
    ----------
    home : the app's working folder (``XAND_HOME``, default ``<project>/data``)
    data_dir : a PTB-XL folder to open (``XAND_DATA_DIR``); None opens the synthetic demo set
    plus_dir : a PTB-XL+ folder with ECGdeli fiducials (``XAND_PTBXL_PLUS``), optional
    runs_dir : trained runs (``XAND_RUNS_DIR``, default ``home/runs``)
    demo_weights : committed demo heads (``XAND_DEMO_WEIGHTS``, default ``<project>/data/demo_weights``)
    cache_dir : prepared arrays and delineations (``XAND_CACHE``, default ``home/cache``)
    demo_records : size of the synthetic demo set written on first run (``XAND_DEMO_N``; None = the
        synthesizer's default)
    background : work ahead in background threads (``XAND_BACKGROUND=0`` turns it off, e.g. for
        tests): after showing an ECG, explain it for the other heads and the next record of the cohort,
        so that the usual next steps are cache hits; compute the Browse table's probabilities while the
        table is already shown. Off, the same work happens in the page, with a progress bar.
    torch_threads : CPU threads of the app's model computations (``XAND_TORCH_THREADS``, default 1). One
        thread leaves the other core of a 2-core machine to the browser and the server, and avoids
        OpenMP's spin-waiting: measured on the 2-core review machine under load, one IG explanation took
        0.04 s with 1 thread and 1.1 s with 2 (cnn1d), 0.7-0.9 s and 0.8-5.3 s (leadwise).
    """

    home: Path = field(default_factory=lambda: Path(os.environ.get("XAND_HOME") or PROJECT / "data"))
    data_dir: Path | None = None
    plus_dir: Path | None = None
    runs_dir: Path | None = None
    demo_weights: Path | None = None
    cache_dir: Path | None = None
    demo_records: int | None = None
    background: bool | None = None
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        env = os.environ.get
        if self.torch_threads is None:
            self.torch_threads = int(env("XAND_TORCH_THREADS") or 1)
        if self.background is None:
            self.background = env("XAND_BACKGROUND", "1") not in ("0", "false", "no")
        # Every path absolute (``~`` expanded, relative to the server's working directory): the training
        # job runs with the project as its working directory and must write where the app lists runs.
        self.home = absolute_path(self.home)
        if self.data_dir is None and env("XAND_DATA_DIR"):
            self.data_dir = env("XAND_DATA_DIR")
        self.data_dir = absolute_path(self.data_dir) if self.data_dir is not None else None
        if self.plus_dir is None and env("XAND_PTBXL_PLUS"):
            self.plus_dir = env("XAND_PTBXL_PLUS")
        self.plus_dir = absolute_path(self.plus_dir) if self.plus_dir is not None else None
        self.runs_dir = absolute_path(self.runs_dir or env("XAND_RUNS_DIR") or self.home / "runs")
        self.demo_weights = absolute_path(self.demo_weights or env("XAND_DEMO_WEIGHTS") or PROJECT / "data" / "demo_weights")
        self.cache_dir = absolute_path(self.cache_dir or env("XAND_CACHE") or self.home / "cache")
        if self.demo_records is None and env("XAND_DEMO_N"):
            self.demo_records = int(env("XAND_DEMO_N"))

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"


@dataclass
class Selection:
    """The sidebar's choices for this script run."""

    cfg: AppConfig
    data_dir: Path
    plus_dir: Path | None
    is_demo: bool
    run_dir: Path | None
    head: str
    method: str
    paper_grid: bool


# ----------------------------------------------------------------------------------------- services

_EXPLAIN_LOCK = threading.Lock()  # one model computation at a time per process (see explain_view)
_PREFETCH_BUSY = threading.Lock()
# Work-ahead threads stop between two pieces of work when the interpreter exits: a daemon thread still
# inside torch while Python tears down aborts the process ("terminate called without an active exception").
_STOPPING = threading.Event()
_WORKERS: set[threading.Thread] = set()


def _stop_workers(timeout: float = 30.0) -> None:
    _STOPPING.set()
    deadline = time.monotonic() + timeout
    for t in list(_WORKERS):
        t.join(max(0.0, deadline - time.monotonic()))


atexit.register(_stop_workers)


def _start_worker(target, name: str) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            _WORKERS.discard(threading.current_thread())

    t = threading.Thread(target=run, name=name, daemon=True)
    _WORKERS.add(t)
    return t

def list_runs(cfg: AppConfig) -> dict[str, Path]:
    """Trained runs by display name, newest first: ``runs_dir/*`` then ``demo_weights/<run>`` (or
    ``demo_weights`` itself when it is a run). A run is a folder with ``config.json`` and at least one
    trained head (``<HEAD>/best.pt``); a run still before its first checkpoint is not listed yet."""
    def is_run(p: Path) -> bool:
        return (p / "config.json").is_file() and any(p.glob("*/best.pt"))

    found: dict[str, Path] = {}
    for root, tag in ((cfg.runs_dir, ""), (cfg.demo_weights, "demo/")):
        if root is None or not root.is_dir():
            continue
        if is_run(root):
            found[tag.rstrip("/") or root.name] = root
            continue
        for p in sorted(root.iterdir(), key=lambda q: q.stat().st_mtime, reverse=True):
            if p.is_dir() and is_run(p):
                found[f"{tag}{p.name}"] = p
    return found


def is_demo_run(cfg: AppConfig, run_dir: Path) -> bool:
    """Whether ``run_dir`` is the committed demo heads (``demo_weights`` itself or a run inside it)."""
    return cfg.demo_weights is not None and (run_dir == cfg.demo_weights or run_dir.parent == cfg.demo_weights)


def default_run(cfg: AppConfig, runs: dict[str, Path]) -> str:
    """The run a new session opens with: ``XAND_RUN`` (a listed name or a run folder) when set, else the
    committed demo heads, else the oldest listed run (by its ``config.json``). Never "the newest": a training job that finishes
    must not change what other reviewers' new sessions show (they choose a new run themselves)."""
    want = os.environ.get("XAND_RUN")
    if want:
        if want in runs:
            return want
        for name, path in runs.items():
            if path == absolute_path(want):
                return name
    demo = [n for n, p in runs.items() if is_demo_run(cfg, p)]
    if demo:
        return demo[0]
    # config.json is written once, when the run is created (a resume leaves it alone)
    return min(runs, key=lambda n: ((runs[n] / "config.json").stat().st_mtime, n))


def _short(p: Path) -> str:
    """``p`` relative to the project when inside it (commands read better), else absolute."""
    try:
        return str(Path(p).resolve().relative_to(PROJECT))
    except ValueError:
        return str(p)


def train_hint(cfg: AppConfig) -> str:
    """The command that trains heads on the demo set into the folder the app lists runs from."""
    return (f"python -m train --data {_short(cfg.demo_dir)} --out {_short(cfg.runs_dir)} "
            f"--cache-dir {_short(cfg.cache_dir)}")


def set_torch_threads(n: int) -> None:
    """Process-wide torch CPU threads (see ``AppConfig.torch_threads``)."""
    import torch

    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def attribution_methods() -> list[str]:
    from xand.explain.attribution import ATTRIBUTION_METHODS

    names = list(ATTRIBUTION_METHODS)
    return (["ig"] if "ig" in names else []) + [n for n in names if n != "ig"]


@st.cache_resource(show_spinner=False)
def get_prepared(data_dir: str, cache_dir: str):
    """The prepared (memory-mapped, mV) array and index of a PTB-XL-layout folder."""
    from xand.data.prepare import prepare

    # workers=1: process pools started from a Streamlit script re-import the script as __main__.
    return prepare(data_dir, cache_dir=cache_dir, workers=1, progress=False)


@st.cache_resource(show_spinner=False, max_entries=4)
def get_predictor(run_dir: str, stamp: float):
    """A trained run (all its heads), loaded once per process; ``stamp`` reloads a retrained run.

    At most 4 loaded runs (least recently used first out): the key holds the checkpoints' mtime, so
    without a bound every retrain of a run would keep one more copy of its models in memory."""
    from xand.training.predictor import load_run

    return load_run(run_dir, device="cpu")


def _run_stamp(run_dir: Path) -> float:
    # a calibration fitted later changes every probability shown: it is part of the run's stamp
    stamps = [p.stat().st_mtime for p in [*run_dir.glob("*/best.pt"), *run_dir.glob("calibration.json")]]
    return max(stamps) if stamps else (run_dir / "config.json").stat().st_mtime


@st.cache_data(show_spinner=False, ttl=60, max_entries=32)
def _sanity(run_dir: str, data_dir: str, stamp: float) -> dict | None:
    """The run's stored sanity check (``python -m xand sanity``) for this dataset, else its newest one."""
    from xand.data.prepare import content_key
    from xand.errors import XandError
    from xand.explain.sanity import find_sanity

    try:
        key = content_key(data_dir)
        res = find_sanity(run_dir, key)
    except XandError:
        return None
    if res is None:
        return None
    return {"rows": res.rows, "info": res.info, "config": res.config,
            "same_dataset": res.info.get("dataset_key") == key}


def sanity_result(sel: Selection) -> dict | None:
    """The selected run's stored sanity check (cached; re-read when a result file changes), or None."""
    if sel.run_dir is None:
        return None
    sanity_dir = sel.run_dir / "sanity"
    stamp = max((q.stat().st_mtime for q in sanity_dir.glob("*.json")), default=0.0) if sanity_dir.is_dir() else 0.0
    return _sanity(str(sel.run_dir), str(sel.data_dir), stamp)


def sanity_for(sel: Selection, head: str, method: str, found: dict | None | object = ...) -> dict:
    """What the viewer says of ``method`` on ``head`` from the run's sanity check: ``{"passed": True |
    False | None, "label", "detail", "row", ...}`` (``passed`` None: not checked, undecided or
    uninformative). ``found``: :func:`sanity_result` when the caller already has it."""
    if sel.run_dir is None:
        return {"passed": None, "label": "no run", "detail": "", "row": None}
    if found is ...:
        found = sanity_result(sel)
    row = None if found is None else next(
        (r for r in found["rows"] if r["head"] == head and r["method"] == method), None)
    if row is None:
        hint = f"python -m xand sanity --run {_short(sel.run_dir)} --data {_short(sel.data_dir)}"
        return {"passed": None, "label": "not sanity-checked",
                "detail": f"No randomisation check of {method} for {head} in this run yet: `{hint}`.", "row": None}
    cfg, same = found["config"], found["same_dataset"]
    measured_on = Path(str(found["info"].get("data", ""))).name or "another dataset"
    where = measured_on + ("" if same else ", another dataset than the one shown")
    rho, chance = row.get("spearman_random_median"), row.get("chance_mean")
    detail = (f"With random weights the map's rank correlation with the trained one is "
              f"{'—' if rho is None else f'{rho:.2f}'}; a random network scores Pointing Game "
              f"{fmt_num(row.get('pointing_game_random'))} and CAS {fmt_num(row.get('cas_random'))} against the "
              f"trained {fmt_num(row.get('pointing_game_trained'))} / {fmt_num(row.get('cas_trained'))}, chance "
              f"{fmt_num(chance)} (n = {row['n']}, {where}, {cfg.get('split')} split; Adebayo et al. 2018).")
    if row.get("passed") is True:
        label = "passes the randomisation check"
    elif row.get("passed") is False:
        label = ("fails: unchanged under random weights" if rho is not None and rho >= cfg.get("spearman_max", 0.5)
                 else "fails: a random network scores as well")
    elif str(row.get("verdict", "")).startswith("uninformative"):
        label = "randomisation check uninformative: the trained head scores at chance too"
    else:
        label = "randomisation check undecided"
    if not same:
        label += f" (measured on {measured_on})"
    where = f"{where}, {cfg.get('split')} split" + (", single-pathology positives" if cfg.get("single_pathology") else "")
    return {"passed": row.get("passed"), "label": label, "detail": detail, "row": row, "where": where,
            "same_dataset": same}


def fmt_num(v) -> str:
    return "—" if v is None else f"{float(v):.2f}"


def method_choice(run_dir: Path | None, head: str) -> dict | None:
    """The run's measured default method for ``head`` (``python -m xand choose-method``), or None."""
    if run_dir is None:
        return None
    from xand.errors import XandError
    from xand.explain.selection import load_choice

    try:
        choice = load_choice(run_dir)
    except XandError:
        return None
    return None if choice is None else choice.get(head)


def run_provenance(cfg: AppConfig, run_dir: Path | None) -> dict | None:
    """Which data a run learned from: ``{"synthetic": bool, "label": text}`` from its ``config.json``
    (``dataset``), the committed demo heads as the synthetic demo set, else None (unknown)."""
    import json

    if run_dir is None:
        return None
    try:
        ds = json.loads((run_dir / "config.json").read_text()).get("dataset") or {}
    except (OSError, ValueError):
        ds = {}
    if ds:
        synthetic = bool(ds.get("synthetic"))
        label = ("a synthetic set" if synthetic else "PTB-XL-layout folder") + f" `{Path(ds.get('source', '?')).name}`"
        return {"synthetic": synthetic, "label": label + (f" (content key {ds['content_key']})"
                                                          if ds.get("content_key") else "")}
    if is_demo_run(cfg, run_dir):
        return {"synthetic": True, "label": "the synthetic demo set (the committed demo heads)"}
    return None


def predictor_for(sel: Selection):
    """The selected run's Predictor, or None (after saying why) when there is none or it cannot load."""
    from xand.errors import XandError

    if sel.run_dir is None:
        return None
    try:
        return get_predictor(str(sel.run_dir), _run_stamp(sel.run_dir))
    except (XandError, OSError, RuntimeError) as exc:
        st.error(f"Cannot load the run `{sel.run_dir}`: {exc}")
        sel.run_dir = None  # the page goes on without a model
        return None


def predictions_file(prep, run_dir: Path, stamp: float) -> Path:
    """Where the probabilities of a run on a prepared set are kept (next to the prepared set)."""
    key = hashlib.sha256(f"{Path(run_dir).resolve()}|{stamp}".encode()).hexdigest()[:16]
    return Path(prep.root) / "predictions" / f"{key}.csv"


_PROB_JOBS: dict[str, dict] = {}  # predictions file -> {"done", "total", "error", "thread"}
_PROB_JOBS_LOCK = threading.Lock()


def _compute_probabilities(prep, pred, disk: Path, job: dict, chunk: int) -> None:
    probs: dict[str, list[np.ndarray]] = {}
    for a in range(0, len(prep), chunk):
        if _STOPPING.is_set():  # the server is exiting: the next session recomputes
            return
        with _EXPLAIN_LOCK:  # one model computation at a time: an explanation waits one chunk at most
            part = pred.predict_proba(np.asarray(prep.signals[a:a + chunk]), prep.fs)
        for h, p in part.items():
            probs.setdefault(h, []).append(np.asarray(p, dtype=np.float64))
        job["done"] = min(a + chunk, len(prep))
    df = pd.DataFrame({f"p_{h}": np.concatenate(v) for h, v in probs.items()},
                      index=pd.Index(prep.index["ecg_id"].astype(int), name="ecg_id"))
    disk.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(disk, df.to_csv)  # readers see the whole file or none


def ensure_probabilities(sel: "Selection", chunk: int = 128) -> bool:
    """Every head's probability for every record, computed once onto disk next to the prepared set.

    Returns True when they are ready. With ``background`` the computation runs in a thread (one per run
    and dataset, whatever the number of sessions) and this returns False until it is done
    (:func:`probability_job` has the progress); without, it computes here with a progress bar.
    """
    if sel.run_dir is None:
        return False
    prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    stamp = _run_stamp(sel.run_dir)
    disk = predictions_file(prep, sel.run_dir, stamp)
    if disk.is_file():
        return True
    pred = get_predictor(str(sel.run_dir), stamp)
    if not sel.cfg.background:
        job = {"done": 0, "total": len(prep), "error": None}
        with st.spinner(f"Model probabilities for {len(prep)} records …"):
            _compute_probabilities(prep, pred, disk, job, chunk)
        return True
    with _PROB_JOBS_LOCK:
        job = _PROB_JOBS.get(str(disk))
        if job is None or (not job["thread"].is_alive() and job["error"] is None and not disk.is_file()):
            job = {"done": 0, "total": len(prep), "error": None}

            def work() -> None:
                try:
                    _compute_probabilities(prep, pred, disk, job, chunk)
                except Exception as exc:  # noqa: BLE001 - reported on the page
                    job["error"] = f"{type(exc).__name__}: {exc}"

            job["thread"] = _start_worker(work, "xand-probabilities")
            _PROB_JOBS[str(disk)] = job
            job["thread"].start()
    return disk.is_file()


def probability_job(sel: "Selection") -> dict | None:
    """Progress of the background probability computation of the selected run (None when none)."""
    if sel.run_dir is None:
        return None
    prep = get_prepared(str(sel.data_dir), str(sel.cfg.cache_dir))
    return _PROB_JOBS.get(str(predictions_file(prep, sel.run_dir, _run_stamp(sel.run_dir))))


@st.cache_data(show_spinner=False, max_entries=16)
def records_table(data_dir: str, cache_dir: str, run_dir: str | None, stamp: float | None,
                  with_probabilities: bool) -> pd.DataFrame:
    """The Browse table: one row per prepared record, with the model's probabilities (``p_<HEAD>``)
    when a run is set and ``with_probabilities`` (computed before by :func:`ensure_probabilities`)."""
    prep = get_prepared(data_dir, cache_dir)
    idx = prep.index
    cols = [c for c in ("ecg_id", "patient_id", "age", "sex", "device", "split", "strat_fold", *HEADS,
                        "report") if c in idx.columns]
    df = idx[cols].copy()
    df["ecg_id"] = df["ecg_id"].astype(int)
    if "sex" in df:
        df["sex"] = df["sex"].map({0: "male", 1: "female"}).fillna("")
    df["labels"] = [label_summary(r) for r in df[list(HEADS)].to_dict("records")]
    if run_dir is not None and with_probabilities:
        disk = predictions_file(prep, Path(run_dir), stamp)
        if disk.is_file():
            df = df.join(pd.read_csv(disk, index_col="ecg_id"), on="ecg_id")
    return df.reset_index(drop=True)


def label_summary(status: dict[str, int]) -> str:
    """``MI+ STTC?`` style summary: + positive (pure label), ? excluded (uncertain), negatives omitted."""
    parts = [f"{h}+" for h in HEADS if status.get(h) == POSITIVE]
    parts += [f"{h}?" for h in HEADS if status.get(h) == EXCLUDED]
    return " ".join(parts) or "none"


@dataclass
class Filters:
    """Browse filters; the same cohort drives Review's previous/next."""

    splits: tuple[str, ...] = ()
    label_head: str = "any"
    status: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    prob_range: tuple[float, float] = (0.0, 1.0)
    disagreements: bool = False


def apply_filters(df: pd.DataFrame, f: Filters, head: str, threshold: float | None) -> pd.DataFrame:
    """Rows of the cohort. ``prob_range`` and ``disagreements`` use the sidebar head's probability.

    Disagreements are records whose pure label (positive/negative, excluded left out) differs from the
    decision at ``threshold``, confident errors first (largest |p - y|).
    """
    out = df
    if f.splits:
        out = out[out["split"].isin(f.splits)]
    if f.label_head in HEADS and f.status:
        codes = [k for k, v in STATUS_TEXT.items() if v in f.status]
        out = out[out[f.label_head].isin(codes)]
    if f.devices and "device" in out:
        out = out[out["device"].isin(f.devices)]
    pcol = f"p_{head}"
    if pcol in out:
        lo, hi = f.prob_range
        if (lo, hi) != (0.0, 1.0):
            out = out[(out[pcol] >= lo) & (out[pcol] <= hi)]
        if f.disagreements and threshold is not None:
            lab = out[head]
            out = out[lab != EXCLUDED]
            y = (out[head] == POSITIVE).astype(float)
            wrong = (out[pcol] >= threshold).astype(float) != y
            out = out[wrong.to_numpy()]
            conf = (out[pcol] - (out[head] == POSITIVE).astype(float)).abs()
            out = out.assign(error=conf).sort_values("error", ascending=False)
    return out


PROBABILITIES_PENDING = "the model's probabilities are still being computed"


def unapplied_filters(f: Filters, table: pd.DataFrame, head: str, threshold: float | None,
                      computing: bool = False) -> str | None:
    """Why :func:`apply_filters` leaves out this filter's probability range / disagreements on ``table``
    (None when it applies every filter that is set). ``computing``: the probabilities are on their way."""
    dropped = []
    pcol = f"p_{head}"
    if tuple(f.prob_range) != (0.0, 1.0) and pcol not in table:
        dropped.append(f"probability range {f.prob_range[0]:.2f}-{f.prob_range[1]:.2f}")
    if f.disagreements and (pcol not in table or threshold is None):
        dropped.append("disagreements")
    if not dropped:
        return None
    if computing:
        why = f"{PROBABILITIES_PENDING}; they apply when done"
    elif threshold is None:
        why = f"no trained run with a {head} head is selected"
    else:
        why = f"no probabilities of the {head} head"
    what = f"the {' and '.join(dropped)} filter{'s' if len(dropped) > 1 else ''}"
    return f"{'Not applied yet' if computing else 'Not applied'}: {what} ({why})."


def current_filters() -> Filters:
    """The Browse filters of this session (none set: the whole dataset)."""
    return st.session_state.get("filters") or Filters()


def threshold_of(predictor, head: str) -> float | None:
    """The run's validation-tuned decision threshold of ``head`` (None without a model for it)."""
    if predictor is None or head not in getattr(predictor, "heads", ()):
        return None
    return float(predictor.threshold(head))


# ------------------------------------------------------------------------------------- explanations

@dataclass
class View:
    """One ECG explained by one head: plain arrays, so it caches and pickles.

    ``attribution`` and ``mask`` are on the model's working grid at ``fs`` Hz; ``scores`` maps a score
    name (``pointing_game``, ``cas``, ``rank_accuracy``, ``perturbation``) to ``{"value", "chance",
    "reason", ...}`` exactly as ``xand.explain.xai.explain_ecg`` computed it.
    """

    ecg_id: int
    head: str
    method: str
    fs: float
    probability: float | None
    threshold: float | None
    attribution: np.ndarray | None  # (12, T)
    mask: np.ndarray | None  # (12, T) bool
    scores: dict = field(default_factory=dict)
    delta: float | None = None
    lead_importance: np.ndarray | None = None
    lead_drop: np.ndarray | None = None
    seconds: float = 0.0
    note: str | None = None
    mask_reason: str | None = None
    mask_source: str = ""
    waves: np.ndarray | None = None  # (12, 6) lead x wave attribution of a wave-level method
    findings: dict = field(default_factory=dict)  # code -> scores against that statement's own mask
    fiducials: object | None = None  # xand.fiducials.Fiducials the mask was built from (any grid)

    @classmethod
    def from_explanation(cls, e, ecg_id: int, threshold: float | None, mask_source: str = "",
                         findings: dict | None = None, fiducials=None) -> "View":
        """The plain-array view of an ``xand.explain.xai.Explanation`` (the one conversion, for every page)."""
        from xand.explain.attribution import NEEDS_SEGMENTS

        return cls(
            ecg_id=int(ecg_id), head=e.head, method=e.method, fs=float(e.fs), probability=float(e.probability),
            threshold=threshold, attribution=np.asarray(e.attribution.map, dtype=np.float32),
            mask=np.asarray(e.mask, dtype=bool), scores={k: asdict(v) for k, v in e.scores.items()},
            delta=_opt_float(e.delta), lead_importance=_opt_array(e.lead_importance),
            lead_drop=_opt_array(e.lead_drop), seconds=float(e.seconds), note=e.attribution.note,
            mask_reason=e.mask_reason, mask_source=mask_source,
            waves=_wave_table(e) if e.method in NEEDS_SEGMENTS else None,
            findings=findings or {}, fiducials=fiducials)

    @property
    def pg(self) -> dict | None:
        return self.scores.get("pointing_game")

    @property
    def cas(self) -> dict | None:
        return self.scores.get("cas")

    @property
    def decision(self) -> str | None:
        if self.probability is None or self.threshold is None:
            return None
        return "positive" if self.probability >= self.threshold else "negative"


FIDUCIAL_SOURCES = {"ptbxl+": "PTB-XL+ (ECGdeli)", "neurokit2": "the app's own delineation (NeuroKit2)"}


def fiducials_for(ecg: np.ndarray, fs: float, ecg_id: int, plus_dir: str | None, cache_dir: str):
    """PTB-XL+ ECGdeli points when the folder has them for this record, else our own delineation."""
    from xand.data import ptbxl_plus

    if plus_dir and ptbxl_plus.has_fiducials(plus_dir, ecg_id):
        return ptbxl_plus.read_fiducials(plus_dir, ecg_id, fs=fs, n_samples=ecg.shape[1], strict=False)
    from xand.delineation.cache import DelineationCache

    return DelineationCache(Path(cache_dir) / "delineation").delineate(ecg, fs)


@st.cache_data(show_spinner=False, max_entries=256)
def explain_view(data_dir: str, cache_dir: str, plus_dir: str | None, run_dir: str | None,
                 stamp: float | None, ecg_id: int, head: str, method: str) -> View:
    """Explain one record with one head (cached per record, head, method and run)."""
    prep = get_prepared(data_dir, cache_dir)
    ecg = prep.record(ecg_id)
    fs = float(prep.fs)
    fid = fiducials_for(ecg, fs, ecg_id, plus_dir, cache_dir)
    if run_dir is None:
        from xand.delineation.masks import clinical_mask

        return View(int(ecg_id), head, method, fs, None, None, None,
                    np.asarray(clinical_mask(fid, head, ecg.shape[1]), dtype=bool), mask_source=fid.source,
                    fiducials=fid)
    pred = get_predictor(run_dir, stamp)
    from xand.explain.xai import explain_ecg

    # perturbation is not shown on Review; skipping it saves a forward pass per head switch.
    # One explanation at a time per process: Captum's layer methods hook the shared models, and two
    # at once on 2 cores only slow each other down.
    with _EXPLAIN_LOCK:
        e = explain_ecg(pred, ecg, fs, head, method, fid, perturbation=False, reference_data=data_dir)
    return View.from_explanation(e, int(ecg_id), threshold_of(pred, head), mask_source=fid.source,
                                 findings=_finding_scores(data_dir, ecg_id, head, e), fiducials=fid)


@st.cache_resource(show_spinner=False, max_entries=4)
def get_dataset(data_dir: str):
    """The PTB-XL-layout folder (metadata read once per process)."""
    from xand.data.ptbxl import PTBXL

    return PTBXL(data_dir)


def _finding_scores(data_dir: str, ecg_id: int, head: str, e) -> dict:
    from xand.delineation.findings import findings_with_masks
    from xand.errors import XandError
    from xand.explain.xai import finding_scores

    try:
        codes = findings_with_masks(get_dataset(data_dir).meta.loc[int(ecg_id), "scp_codes"], head)
    except (KeyError, XandError):
        return {}
    return finding_scores(e.attribution.map, e.fiducials, codes) if codes else {}


def _wave_table(e) -> np.ndarray:
    from xand.explain.waves import segment_labels, wave_table

    return wave_table(e.attribution.map, segment_labels(e.fiducials, e.attribution.map.shape[1]))


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def _opt_array(v) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=np.float64)


def prefetch(sel: Selection, jobs: list[tuple[int, str]]) -> None:
    """Explain ``(ecg_id, head)`` pairs in a background thread so that the next clicks hit the cache.

    At most one prefetch thread per process; it yields to the page's own explanations through the
    explanation lock. Failures are ignored here: the page computes (and reports) them when asked.
    """
    if not sel.cfg.background or sel.run_dir is None or not jobs:
        return
    if not _PREFETCH_BUSY.acquire(blocking=False):
        return
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    def work() -> None:
        try:
            for ecg_id, head in jobs:
                if _STOPPING.is_set():
                    return
                try:
                    view_for(sel, ecg_id, head)
                except Exception:  # noqa: BLE001 - shown by the page if the user goes there
                    pass
        finally:
            _PREFETCH_BUSY.release()

    t = _start_worker(work, "xand-prefetch")
    add_script_run_ctx(t, get_script_run_ctx())  # cache access without "missing ScriptRunContext" noise
    t.start()


def view_for(sel: Selection, ecg_id: int, head: str | None = None) -> View:
    run = str(sel.run_dir) if sel.run_dir is not None else None
    stamp = _run_stamp(sel.run_dir) if sel.run_dir is not None else None
    return explain_view(str(sel.data_dir), str(sel.cfg.cache_dir),
                        str(sel.plus_dir) if sel.plus_dir else None, run, stamp, int(ecg_id),
                        head or sel.head, sel.method)


def table_for(sel: Selection, with_probabilities: bool = False) -> pd.DataFrame:
    """The records table, with the ``p_<HEAD>`` columns when ``with_probabilities`` (and they exist)."""
    run = str(sel.run_dir) if sel.run_dir is not None else None
    stamp = _run_stamp(sel.run_dir) if sel.run_dir is not None else None
    return records_table(str(sel.data_dir), str(sel.cfg.cache_dir), run, stamp, with_probabilities)


def fmt_score(s: dict | None, pct: bool = False) -> str:
    """``0.62 (chance 0.18)`` or ``undefined: reason``."""
    if not s:
        return "—"
    if s.get("value") is None:
        return f"undefined ({s.get('reason') or 'no value'})"
    v, c = s["value"], s.get("chance")
    txt = f"{v:.2f}"
    return txt + (f" (chance {c:.2f})" if c is not None else "")


# ---------------------------------------------------------------------------------- sidebar and URL

DEMO_TOKEN = "demo"  # the ``data`` URL parameter of the synthetic demo set


def dataset_token(data_dir: Path | None, is_demo: bool) -> str | None:
    """The dataset as the URL's ``data`` parameter: ``demo``, else the folder (relative to the project
    when inside it, so that a link survives another checkout; else absolute); None without a dataset."""
    if is_demo:
        return DEMO_TOKEN
    return None if data_dir is None else _short(data_dir)


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


# The sidebar's widgets. Streamlit drops a widget's value from the session when a page switch
# (``st.switch_page``) reruns the app without it, and the sidebar then fell back to its defaults: a record
# opened from Browse on a PTB-XL folder was shown from the demo set. Each value is therefore kept under a
# shadow key of its own and written back into the widget at the start of every run (see :func:`kept`).


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


def current_record(sel: Selection, table: pd.DataFrame) -> int | None:
    """The record in view: the URL's ``record``, else the last one looked at, else the first of the cohort."""
    ss = st.session_state
    ids = set(int(i) for i in table["ecg_id"])
    rec = st.query_params.get("record")
    if rec is not None and str(rec).isdigit() and int(rec) in ids:
        ss["record"] = int(rec)
    if ss.get("record") not in ids:
        ss["record"] = int(table["ecg_id"].iloc[0]) if len(table) else None
    return ss.get("record")


def cohort_ids(sel: Selection, table: pd.DataFrame, predictor) -> tuple[list[int], str | None]:
    """ecg_ids of the current Browse filter, in its order (Review walks it), and a note when part of the
    filter is not applied (:func:`unapplied_filters`: its probability filters while the background
    probabilities are still being computed, or without a model for the head)."""
    f = current_filters()
    thr = threshold_of(predictor, sel.head)
    computing = False
    if f.disagreements or tuple(f.prob_range) != (0.0, 1.0):
        ready = ensure_probabilities(sel)
        computing = sel.run_dir is not None and not ready
        table = table_for(sel, with_probabilities=ready)
    sub = apply_filters(table, f, sel.head, thr)
    return [int(i) for i in sub["ecg_id"]], unapplied_filters(f, table, sel.head, thr, computing)


def record_header(row: pd.Series) -> str:
    parts = [f"**Record {int(row['ecg_id'])}**"]
    if "patient_id" in row and pd.notna(row["patient_id"]):
        parts.append(f"patient {int(row['patient_id'])}")
    demo = []
    if "age" in row and pd.notna(row["age"]):
        demo.append(f"{int(row['age'])} y")
    if "sex" in row and row["sex"]:
        demo.append(str(row["sex"]))
    if demo:
        parts.append(", ".join(demo))
    for c in ("device", "split"):
        if c in row and isinstance(row[c], str) and row[c]:
            parts.append(f"{c} {row[c]}")
    if "strat_fold" in row and pd.notna(row["strat_fold"]):
        parts.append(f"fold {int(row['strat_fold'])}")
    return " · ".join(parts)


def status_of(row: pd.Series, head: str) -> str:
    return STATUS_TEXT.get(int(row[head]), "?") if head in row else "?"



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
