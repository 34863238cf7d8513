"""Cached services of the app: runs, prepared arrays, predictors, stored sanity results and method
choices, background workers. Heavy objects are ``st.cache_resource``; plain results ``st.cache_data``."""

from __future__ import annotations

import atexit
import os
import threading
import time
from pathlib import Path

import streamlit as st

from pages.common.config import PROJECT, AppConfig, Selection
from pages.common.text import fmt_num
from xand.fileio import absolute_path

EXPLAIN_LOCK = threading.Lock()  # one model computation at a time per process (see explain_view)


PREFETCH_BUSY = threading.Lock()


# Work-ahead threads stop between two pieces of work when the interpreter exits: a daemon thread still
# inside torch while Python tears down aborts the process ("terminate called without an active exception").
STOPPING = threading.Event()


WORKERS: set[threading.Thread] = set()


def stop_workers(timeout: float = 30.0) -> None:
    STOPPING.set()
    deadline = time.monotonic() + timeout
    for t in list(WORKERS):
        t.join(max(0.0, deadline - time.monotonic()))


atexit.register(stop_workers)


def start_worker(target, name: str) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            WORKERS.discard(threading.current_thread())

    t = threading.Thread(target=run, name=name, daemon=True)
    WORKERS.add(t)
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


def short_path(p: Path) -> str:
    """``p`` relative to the project when inside it (commands read better), else absolute."""
    try:
        return str(Path(p).resolve().relative_to(PROJECT))
    except ValueError:
        return str(p)


def train_hint(cfg: AppConfig) -> str:
    """The command that trains heads on the demo set into the folder the app lists runs from."""
    return (f"python -m train --data {short_path(cfg.demo_dir)} --out {short_path(cfg.runs_dir)} "
            f"--cache-dir {short_path(cfg.cache_dir)}")


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


def run_stamp(run_dir: Path) -> float:
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
        hint = f"python -m xand sanity --run {short_path(sel.run_dir)} --data {short_path(sel.data_dir)}"
        return {"passed": None, "label": "not sanity-checked",
                "detail": f"No randomisation check of {method} for {head} in this run yet: `{hint}`.", "row": None}
    cfg, same = found["config"], found["same_dataset"]
    measured_on = Path(str(found["info"].get("data", ""))).name or "another dataset"
    where = measured_on + ("" if same else ", another dataset than the one shown")
    rho, chance = row.get("spearman_random_median"), row.get("chance_mean")
    chance_pg = row.get("chance_pg_mean", chance)
    detail = (f"With random weights the map's rank correlation with the trained one is "
              f"{'—' if rho is None else f'{rho:.2f}'}; a random network scores Pointing Game "
              f"{fmt_num(row.get('pointing_game_random'))} and CAS {fmt_num(row.get('cas_random'))} against the "
              f"trained {fmt_num(row.get('pointing_game_trained'))} / {fmt_num(row.get('cas_trained'))}, chance "
              f"{fmt_num(chance_pg)} / {fmt_num(chance)} (n = {row['n']}, {where}, {cfg.get('split')} split; "
              f"Adebayo et al. 2018).")
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
        return get_predictor(str(sel.run_dir), run_stamp(sel.run_dir))
    except (XandError, OSError, RuntimeError) as exc:
        st.error(f"Cannot load the run `{sel.run_dir}`: {exc}")
        sel.run_dir = None  # the page goes on without a model
        return None


@st.cache_resource(show_spinner=False, max_entries=4)
def get_dataset(data_dir: str):
    """The PTB-XL-layout folder (metadata read once per process)."""
    from xand.data.ptbxl import PTBXL

    return PTBXL(data_dir)


def threshold_of(predictor, head: str) -> float | None:
    """The run's validation-tuned decision threshold of ``head`` (None without a model for it)."""
    if predictor is None or head not in getattr(predictor, "heads", ()):
        return None
    return float(predictor.threshold(head))
