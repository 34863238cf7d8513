"""A job as read back from its folder (``Job``) and its live progress (``JobProgress``, ``read_progress``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xand.errors import XandError
from xand.jobs.files import _last_line, _read_json, _read_jsonl, _tail_lines
from xand.jobs.spec import ACTIVE, TrainJobSpec


@dataclass
class Job:
    """One training job as recomputed from disk.

    Attributes
    ----------
    id, dir : job id and its folder
    spec, command : what runs (``command`` is the full ``python -m train`` argv)
    status : one of ``STATUSES``
    created, started, finished : UNIX times (None when not reached)
    pid, pgid : the ``python -m train`` process and the job's process group (None before it started)
    returncode : the exit code of ``python -m train`` (None while running or when it is unknown)
    run_dir : the run folder (None until ``python -m train`` created it)
    cancel_requested : a cancel was asked for (the job may still be shutting down)
    reason : why the job failed / was cancelled, in words (None when finished)
    """

    id: str
    dir: Path
    spec: TrainJobSpec
    command: list[str]
    status: str
    created: float
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    pgid: int | None = None
    returncode: int | None = None
    run_dir: Path | None = None
    cancel_requested: bool = False
    reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def log_path(self) -> Path:
        return self.dir / "train.log"

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since start (up to the end for a job that ended)."""
        t0 = self.started or self.created
        t1 = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, t1 - t0)

    def log_tail(self, n_lines: int = 30) -> str:
        """The last ``n_lines`` of the job's log (progress-bar redraws collapsed to their last state)."""
        parts = [_tail_lines(self.log_path, n_lines)]
        if not parts[0].strip():
            parts = [_tail_lines(self.dir / "supervisor.log", n_lines)]
        return parts[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dir"], d["run_dir"] = str(self.dir), str(self.run_dir) if self.run_dir else None
        return d


@dataclass
class JobProgress:
    """Progress of a job's run, read from its ``metrics.jsonl`` files.

    Attributes
    ----------
    phase : ``"preparing"`` (no run folder yet: data preparation, model set-up), ``"training"``,
        ``"summarising"`` (every epoch done, test metrics and bootstrap CI being computed), ``"done"``
    units : trained units in order (the heads, or ``["multilabel"]``); ``unit`` / ``unit_index`` the current
    epoch : epochs done in the current unit; ``epochs`` per unit
    done_epochs, total_epochs, fraction : over the whole job (a unit that stopped early counts as complete)
    last : the current unit's last epoch record (``train_loss``, ``val_loss``, ``val_auc``, ``lr``,
        ``ecg_per_s``, ``elapsed``, ...)
    history : unit -> its epoch records
    ecg_per_s : training throughput of the last epoch
    elapsed_s : since the job started; ``eta_s`` estimated time left (mean epoch time x epochs left;
        an upper bound when early stopping ends a head sooner), None before the first epoch
    activity : the last line of the log (what the job does before its first epoch)
    """

    phase: str
    units: list[str]
    unit: str | None = None
    unit_index: int = 0
    epoch: int = 0
    epochs: int = 0
    done_epochs: int = 0
    total_epochs: int = 0
    fraction: float = 0.0
    last: dict[str, Any] | None = None
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ecg_per_s: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    activity: str = ""


class JobRunning(XandError):
    """A training job is already running (one at a time); ``.job`` is that job (None while it starts)."""

    def __init__(self, job: Job | None):
        self.job = job
        if job is None:
            msg = "a training job is already starting; wait for it or cancel it"
        else:
            when = time.strftime("%H:%M:%S", time.localtime(job.started or job.created))
            msg = f"a training job is already running: {job.id} ({job.spec.label}), started {when}"
        super().__init__(msg)


def read_progress(job: Job, now: float | None = None) -> JobProgress:
    """Progress of ``job`` from its run folder (see ``JobProgress``)."""
    spec = job.spec
    units = ["multilabel"] if spec.model == "multilabel" else list(spec.heads)
    run = job.run_dir
    if run is not None and (run / "config.json").is_file():
        cfg = _read_json(run / "config.json")
        if cfg.get("model", {}).get("multilabel"):
            units = ["multilabel"]
    prog = JobProgress(phase="preparing", units=units, epochs=spec.epochs, total_epochs=spec.epochs * len(units),
                       elapsed_s=job.elapsed(now))
    if run is None or not run.is_dir():
        prog.activity = _last_line(job.log_path)
        if job.status == "finished":
            prog.phase = "done"
        return prog
    prog.phase = "training"
    epoch_secs: list[float] = []
    current = None
    for i, u in enumerate(units):
        recs = _read_jsonl(run / u / "metrics.jsonl")
        prog.history[u] = recs
        epoch_secs += [float(r["epoch_seconds"]) for r in recs if r.get("epoch_seconds") is not None]
        if (run / u / "summary.json").is_file():
            prog.done_epochs += spec.epochs  # stopped early or not, this unit is complete
            continue
        prog.done_epochs += len(recs)
        if current is None:
            current = i
    if current is None:
        prog.unit_index, prog.unit = len(units) - 1, units[-1]
        prog.phase = "done" if (run / "summary.json").is_file() or job.status == "finished" else "summarising"
    else:
        prog.unit_index, prog.unit = current, units[current]
    recs = prog.history.get(prog.unit, [])
    prog.epoch = len(recs)
    prog.last = recs[-1] if recs else next((h[-1] for h in reversed(list(prog.history.values())) if h), None)
    prog.ecg_per_s = prog.last.get("ecg_per_s") if prog.last else None
    prog.fraction = min(1.0, prog.done_epochs / max(prog.total_epochs, 1))
    if prog.phase == "done":
        prog.fraction, prog.eta_s = 1.0, 0.0
    elif epoch_secs:
        prog.eta_s = sum(epoch_secs) / len(epoch_secs) * max(prog.total_epochs - prog.done_epochs, 0)
    if not recs:
        prog.activity = _last_line(job.log_path)
    return prog
