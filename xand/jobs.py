"""Background training jobs: ``python -m train`` in a process of its own, with its state on disk.

A job is started from any process (the Streamlit app, a script) and outlives it: page reloads, other
sessions and a restart of the server all read the same state back from the jobs folder. One training job
runs at a time per lock file (by default one per runs folder, i.e. per app installation).

Layout (``<runs>/.jobs/``)::

    train.lock                  flock held (exclusively) while a job's processes live
    train.lock.owner.json       which job holds it
    start.lock                  serialises start() calls of every process
    <job-id>/job.json           spec, command, creation time, supervisor pid
    <job-id>/started.json       supervisor and train pids, process group, start time
    <job-id>/run.txt            the run folder, once ``python -m train`` created it
    <job-id>/train.log          stderr of ``python -m train`` (errors, tracebacks, progress bars)
    <job-id>/stdout.json        its stdout (the JSON summary naming the run folder)
    <job-id>/supervisor.log     the supervisor's own output
    <job-id>/cancel.json        a cancel request
    <job-id>/exit.json          return code, end time, cancelled flag, run folder

Why a supervisor (``python -m xand.jobs supervise DIR``) rather than ``python -m train`` alone: it takes the
lock with ``flock`` and hands the locked descriptor down to the training process, so the kernel releases
the lock when the last of them dies, whatever the cause (normal end, crash, ``kill -9``): a lock can never
go stale, and no pid has to be trusted (pids are reused). It also writes the exit record, which no process
can write about itself after ``kill -9``; a job whose processes vanished without one is reported as
failed (or cancelled when a cancel was requested), from the lock alone.

Progress comes from the run's ``<unit>/metrics.jsonl`` (one line per epoch, written by
``xand.training.trainer``). The run folder name (UTC time + config hash) is only known once the child created it:
the supervisor finds the one new folder in ``out`` for this model (matching its ``config.json`` when
several appear) and confirms it from the JSON that ``python -m train`` prints at the end.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xand.constants import HEADS
from xand.errors import DataError, UnknownNameError, XandError
from xand.fileio import absolute_path, atomic_write_text

STATUSES = ("starting", "running", "finished", "failed", "cancelled")
ACTIVE = ("starting", "running")
PROJECT = Path(__file__).resolve().parents[1]  # where ``python -m train`` is importable from
START_GRACE_S = 60.0  # a job without started.json older than this is dead (its start() was interrupted)
LOCK_BUSY = "another training job holds the lock"


# ---------------------------------------------------------------------------------------------- spec

@dataclass
class TrainJobSpec:
    """What to train: the options of ``python -m train`` that the app exposes (saved with the job).

    Attributes
    ----------
    data : PTB-XL-layout folder (real or synthetic)
    heads : heads to train (one binary model each; the ``multilabel`` model trains them together)
    model : registered model (``xand.models.networks.list_models()``)
    epochs : epochs per head (early stopping after ``patience`` epochs without a better val AUC; 0 = off)
    loss, lr, batch_size, augment, aux, width, seed, bootstrap : as ``python -m train`` (see TrainConfig)
    cache_dir : prepared-array cache (None: ``$XAND_CACHE`` or ``~/.cache/xand``)
    device : ``"auto"`` = the GPU when there is one, else the CPU
    threads : CPU threads of the training (None = every core)
    nice : niceness added to the training processes, so that an app on the same CPU stays responsive
    """

    data: str
    heads: tuple[str, ...] = HEADS
    model: str = "leadwise"
    epochs: int = 30
    loss: str = "focal"
    lr: float = 1e-3
    batch_size: int = 64
    augment: bool = False
    patience: int = 8
    aux: bool = True
    width: float | None = None
    seed: int = 0
    bootstrap: int = 1000
    cache_dir: str | None = None
    device: str = "auto"
    threads: int | None = None
    nice: int = 10

    def __post_init__(self) -> None:
        # Absolute: the job runs with cwd = the project, not the caller's working directory.
        self.data = str(absolute_path(self.data))
        self.heads = tuple(self.heads)
        if self.cache_dir is not None:
            self.cache_dir = str(absolute_path(self.cache_dir))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainJobSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def validate(self) -> None:
        """Raise ``UnknownNameError`` / ``DataError`` before anything is started."""
        from xand.models.networks import MODELS
        from xand.training.losses import LOSSES

        if not self.heads:
            raise DataError(None, "no head chosen", f"one or more of {', '.join(HEADS)}")
        for h in self.heads:
            if h not in HEADS:
                raise UnknownNameError("head", h, HEADS)
        MODELS.get(self.model)  # an unknown name lists the valid ones
        LOSSES.get(self.loss)
        for name, low in (("epochs", 1), ("batch_size", 2), ("patience", 0), ("bootstrap", 0)):
            if int(getattr(self, name)) < low:
                raise DataError(None, f"{name} = {getattr(self, name)}", f"an integer >= {low}")
        if not float(self.lr) > 0:
            raise DataError(None, f"lr = {self.lr}", "a learning rate > 0")
        if not (Path(self.data) / "ptbxl_database.csv").is_file():
            raise DataError(self.data, "is not a PTB-XL-layout folder",
                            "a folder with ptbxl_database.csv, scp_statements.csv and records100/")

    def argv(self, out_dir: str | Path) -> list[str]:
        """The ``python -m train`` arguments (after ``-m train``) writing the run under ``out_dir``."""
        a = ["--data", self.data, "--heads", *self.heads, "--model", self.model, "--epochs", str(self.epochs),
             "--out", str(out_dir), "--device", self.device, "--loss", self.loss, "--lr", repr(float(self.lr)),
             "--batch-size", str(self.batch_size), "--patience", str(self.patience), "--seed", str(self.seed),
             "--bootstrap", str(self.bootstrap)]
        if self.augment:
            a.append("--augment")
        if not self.aux:
            a.append("--no-aux")
        if self.width is not None:
            a += ["--width", repr(float(self.width))]
        if self.threads:
            a += ["--threads", str(self.threads)]
        if self.cache_dir:
            a += ["--cache-dir", self.cache_dir]
        return a

    @property
    def label(self) -> str:
        return f"{self.model} · {', '.join(self.heads)} · {self.epochs} epoch{'s' * (self.epochs != 1)}"


# ------------------------------------------------------------------------------------------ records

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


# -------------------------------------------------------------------------------------------- manager

class JobManager:
    """Start, list, follow and cancel background training jobs of one runs folder.

    Parameters
    ----------
    runs_dir : where runs are written (``python -m train --out``); jobs live in ``runs_dir/.jobs``
    lock_file : the one-job-at-a-time lock (default ``runs_dir/.jobs/train.lock``); give several runs
        folders the same file to allow one job per machine across them

    Every method re-reads the disk: any number of managers (sessions, processes, a restarted server) over
    the same folder agree.
    """

    def __init__(self, runs_dir: str | Path, lock_file: str | Path | None = None):
        # Absolute: ``--out`` is read by a job whose working directory is the project, not ours.
        self.runs_dir = absolute_path(runs_dir)
        self.jobs_dir = self.runs_dir / ".jobs"
        self.lock_file = absolute_path(lock_file) if lock_file else self.jobs_dir / "train.lock"

    # ---------------------------------------------------------------------------------- queries
    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        if not self.jobs_dir.is_dir():
            return []
        held, owner = self._lock_state()
        out = [self._load(p, held, owner) for p in self.jobs_dir.iterdir() if (p / "job.json").is_file()]
        out = [j for j in out if j is not None]
        return sorted(out, key=lambda j: j.created, reverse=True)

    def latest(self) -> Job | None:
        jobs = self.jobs()
        return jobs[0] if jobs else None

    def get(self, job_id: str) -> Job:
        held, owner = self._lock_state()
        job = self._load(self.jobs_dir / job_id, held, owner)
        if job is None:
            raise UnknownNameError("job", job_id, [j.id for j in self.jobs()])
        return job

    def current(self) -> Job | None:
        """The running job (None when the lock is free)."""
        held, owner = self._lock_state()
        if not held or not owner or not owner.get("job_dir"):
            return None
        job = self._load(Path(owner["job_dir"]), held, owner)
        return job if job is not None and job.active else None

    def progress(self, job: Job | str) -> JobProgress:
        """Progress of ``job`` from its run folder's ``metrics.jsonl`` files."""
        if isinstance(job, str):
            job = self.get(job)
        return read_progress(job)

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 0.2) -> Job:
        """Block until the job ended (or ``timeout`` seconds passed); returns its state."""
        deadline = time.time() + timeout
        while True:
            job = self.get(job_id)
            if not job.active or time.time() > deadline:
                return job
            time.sleep(poll)

    # ---------------------------------------------------------------------------------- actions
    def start(self, spec: TrainJobSpec, timeout: float = 60.0) -> Job:
        """Validate ``spec`` and start its training in the background; returns the running job.

        Raises ``JobRunning`` when a job holds the lock, ``DataError`` / ``UnknownNameError`` for a bad
        spec, ``XandError`` when the supervisor could not start (its log is in the message).
        """
        spec.validate()
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        with _flock(self.jobs_dir / "start.lock", timeout=timeout + 10):
            held, owner = self._lock_state()
            # a supervisor that has recorded its exit still holds the lock until its process is gone
            deadline = time.time() + 10
            while held and time.time() < deadline and not self._holder_is_running(owner):
                time.sleep(0.05)
                held, owner = self._lock_state()
            if held:
                running = self._load(Path(owner["job_dir"]), held, owner) if owner and owner.get("job_dir") else None
                raise JobRunning(running)
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            jdir = self.jobs_dir / job_id
            jdir.mkdir()
            command = [sys.executable, "-m", "train", *spec.argv(self.runs_dir)]
            record = {"id": job_id, "spec": asdict(spec), "command": command, "cwd": str(PROJECT),
                      "out_dir": str(self.runs_dir), "lock_file": str(self.lock_file), "created": time.time()}
            _write_json(jdir / "job.json", record)
            env = {**os.environ, "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join([str(PROJECT), *filter(None, [os.environ.get("PYTHONPATH")])])}
            with open(jdir / "supervisor.log", "wb") as log:
                # a session of its own: the job outlives the server and a cancel signals exactly its group
                proc = subprocess.Popen([sys.executable, "-m", "xand.jobs", "supervise", str(jdir)], cwd=PROJECT,
                                        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            _write_json(jdir / "job.json", {**record, "supervisor_pid": proc.pid})
            deadline = time.time() + timeout
            while not ((jdir / "started.json").is_file() or (jdir / "exit.json").is_file()):
                if proc.poll() is not None and not (jdir / "exit.json").is_file():
                    reason = f"the job supervisor exited with code {proc.returncode}"
                    _write_json(jdir / "exit.json", {"returncode": None, "finished": time.time(), "cancelled": False,
                                                     "reason": reason})
                    break
                if time.time() > deadline:
                    self._signal(proc.pid, signal.SIGKILL)
                    _write_json(jdir / "exit.json", {"returncode": None, "finished": time.time(), "cancelled": False,
                                                     "reason": f"the job did not start within {timeout:.0f} s"})
                    break
                time.sleep(0.05)
            # reap the supervisor when it ends (after the loop: poll() cannot see an exit while wait() runs)
            threading.Thread(target=proc.wait, name=f"xand-job-reaper-{job_id}", daemon=True).start()
        job = self.get(job_id)
        if job.status == "failed" and job.started is None:
            if job.reason == LOCK_BUSY:
                raise JobRunning(self.current())
            raise XandError(f"training job {job_id} could not start: {job.reason}\n{job.log_tail()}")
        return job

    def cancel(self, job_id: str, grace: float = 10.0, wait: bool = True) -> Job:
        """Stop a job: SIGTERM to its process group, SIGKILL after ``grace`` seconds. Status ``cancelled``.

        With ``wait`` this returns once the processes are gone (at most ``grace`` + a few seconds);
        without, it returns at once and the supervisor escalates to SIGKILL after ``grace`` itself. A job
        that already ended is returned unchanged.
        """
        job = self.get(job_id)
        if not job.active:
            return job
        _write_json(job.dir / "cancel.json", {"requested": time.time(), "grace": grace})
        pgid = job.pgid or _read_json(job.dir / "job.json").get("supervisor_pid")
        if pgid:
            self._signal(pgid, signal.SIGTERM, group=True)
        if not wait:
            return self.get(job_id)
        deadline = time.time() + grace + 5
        while time.time() < deadline:
            job = self.get(job_id)
            if not job.active:
                return job
            time.sleep(0.1)
        if pgid:
            self._signal(pgid, signal.SIGKILL, group=True)
        deadline = time.time() + 5
        while time.time() < deadline and self.get(job_id).active:
            time.sleep(0.1)
        return self.get(job_id)

    # --------------------------------------------------------------------------------- internals
    @staticmethod
    def _signal(pid: int, sig: int, group: bool = False) -> None:
        try:
            (os.killpg if group else os.kill)(int(pid), sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _holder_is_running(self, owner: dict | None) -> bool:
        """Whether the lock's owner is a job that has not recorded its exit (False: it is ending)."""
        if not owner or not owner.get("job_dir"):
            return False
        return not (Path(owner["job_dir"]) / "exit.json").is_file()

    def _lock_state(self) -> tuple[bool, dict | None]:
        """(held, owner): whether a job's processes hold the lock, and the owner record.

        Probing takes a *shared* lock without blocking: any number of probes coexist, and only the
        supervisor's exclusive lock makes them fail (the supervisor retries while a probe holds it).
        """
        if not self.lock_file.is_file():
            return False, None
        fd = os.open(self.lock_file, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                return True, _read_json(_owner_file(self.lock_file)) or None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False, None
        finally:
            os.close(fd)

    def _load(self, jdir: Path, held: bool, owner: dict | None) -> Job | None:
        rec = _read_json(jdir / "job.json")
        if not rec:
            return None
        started = _read_json(jdir / "started.json")
        ex = _read_json(jdir / "exit.json")
        cancel = (jdir / "cancel.json").is_file()
        run_txt = _read_text(jdir / "run.txt").strip()
        run_dir = Path(ex["run_dir"]) if ex.get("run_dir") else (Path(run_txt) if run_txt else None)
        job = Job(id=rec["id"], dir=jdir, spec=TrainJobSpec.from_dict(rec["spec"]), command=rec["command"],
                  status="running", created=rec["created"], started=started.get("started"),
                  pid=started.get("pid"), pgid=started.get("pgid"), run_dir=run_dir, cancel_requested=cancel)
        if ex:
            job.finished, job.returncode = ex.get("finished"), ex.get("returncode")
            if ex.get("cancelled"):
                job.status, job.reason = "cancelled", "cancelled on request"
            elif job.returncode == 0:
                job.status = "finished"
            else:
                job.status = "failed"
                job.reason = ex.get("reason") or _failure_reason(job)
            return job
        if held and owner and owner.get("job_id") == job.id:
            return job
        # no exit record and its processes are gone (or never came)
        if cancel:
            job.status, job.reason = "cancelled", "cancelled on request (its processes were killed)"
        elif not started and time.time() - job.created < START_GRACE_S:
            job.status = "starting"
        elif run_dir is not None and (run_dir / "summary.json").is_file():
            job.status = "finished"  # the supervisor was killed but the training ended well
        else:
            job.status = "failed"
            job.reason = ("its processes ended without an exit record (killed, or the machine restarted)"
                          if started else "it never started")
        if not job.active and job.finished is None:
            job.finished = _mtime(job.log_path) or job.started or job.created
        return job


# ------------------------------------------------------------------------------------------ progress

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


# ----------------------------------------------------------------------------------------- supervisor

def supervise(job_dir: str | Path) -> int:
    """Run one job (``python -m xand.jobs supervise JOB_DIR``): lock, launch, follow, record the exit."""
    jdir = Path(job_dir)
    rec = _read_json(jdir / "job.json")
    spec = TrainJobSpec.from_dict(rec["spec"])
    lock_file = Path(rec["lock_file"])
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.time() + 30  # probes hold the shared lock for microseconds: retry through them
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if time.time() > deadline:
                _write_json(jdir / "exit.json", {"returncode": None, "finished": time.time(), "cancelled": False,
                                                 "reason": LOCK_BUSY})
                return 3
            time.sleep(0.05)
    owner = _owner_file(lock_file)
    _write_json(owner, {"job_id": rec["id"], "job_dir": str(jdir), "pid": os.getpid()})

    cancel = {"at": None}

    def on_term(signum, frame):  # the group's SIGTERM (cancel): outlive the child to record its end
        if cancel["at"] is None:
            cancel["at"] = time.time()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if spec.nice:
        os.nice(int(spec.nice))
    out_dir = Path(rec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out_dir.iterdir()}
    with open(jdir / "train.log", "ab") as err, open(jdir / "stdout.json", "wb") as out:
        # pass_fds: the training process holds the lock too, so it stays held as long as it runs, even
        # when this supervisor is killed
        child = subprocess.Popen(rec["command"], cwd=rec.get("cwd") or PROJECT, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, pass_fds=(fd,))
    _write_json(jdir / "started.json", {"supervisor_pid": os.getpid(), "pid": child.pid, "pgid": os.getpgid(0),
                                        "started": time.time()})
    run_dir: Path | None = None
    grace = None
    while child.poll() is None:
        if run_dir is None:
            run_dir = _find_run(out_dir, before, spec)
            if run_dir is not None:
                atomic_write_text(jdir / "run.txt", str(run_dir))
        if cancel["at"] is not None or (jdir / "cancel.json").is_file():
            if cancel["at"] is None:
                cancel["at"] = time.time()
                child.terminate()
            if grace is None:
                grace = float(_read_json(jdir / "cancel.json").get("grace", 10.0))
            if time.time() - cancel["at"] > grace:
                child.kill()
        time.sleep(0.2)
    rc = child.returncode
    reported = _run_from_stdout(jdir / "stdout.json")
    run_dir = reported or run_dir or _find_run(out_dir, before, spec)
    if run_dir is not None:
        atomic_write_text(jdir / "run.txt", str(run_dir))
    cancelled = cancel["at"] is not None or (jdir / "cancel.json").is_file()
    _write_json(jdir / "exit.json", {"returncode": rc, "finished": time.time(),
                                     "cancelled": cancelled and rc != 0,
                                     "run_dir": str(run_dir) if run_dir else None})
    if _read_json(owner).get("job_id") == rec["id"]:
        owner.unlink(missing_ok=True)  # before the lock goes: no stale owner afterwards
    fcntl.flock(fd, fcntl.LOCK_UN)  # now, not at process exit: the next job may start at once
    os.close(fd)
    return 0


def _find_run(out_dir: Path, before: set[str], spec: TrainJobSpec) -> Path | None:
    """The run folder this job's ``python -m train`` created in ``out_dir`` (None while unknown)."""
    from xand.constants import RUN_NAME_PATTERN

    pat = re.compile(RUN_NAME_PATTERN.format(model=re.escape(spec.model)) + r"$")
    try:
        new = [p for p in out_dir.iterdir() if p.name not in before and p.is_dir() and pat.match(p.name)]
    except OSError:
        return None
    if len(new) == 1:
        return new[0]
    # several trainings of this model started meanwhile (e.g. from a shell): match the saved config
    want = {"heads": list(spec.heads), "epochs": spec.epochs, "seed": spec.seed, "lr": float(spec.lr),
            "batch_size": spec.batch_size, "loss": spec.loss}
    for p in new:
        t = _read_json(p / "config.json").get("train", {})
        if t and all(t.get(k) == v for k, v in want.items()):
            return p
    return None


def _run_from_stdout(path: Path) -> Path | None:
    try:
        out = json.loads(path.read_text())
        runs = [Path(v["run"]) for v in out.values() if isinstance(v, dict) and v.get("run")]
        return runs[0] if runs else None
    except (OSError, ValueError, AttributeError):
        return None


def _failure_reason(job: Job) -> str:
    rc = job.returncode
    if rc is not None and rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    line = _last_error_line(job.log_path)
    return f"python -m train exited with code {rc}" + (f": {line}" if line else "")


# ------------------------------------------------------------------------------------------- file io

def _owner_file(lock_file: Path) -> Path:
    return lock_file.with_name(lock_file.name + ".owner.json")


class _flock:
    """Exclusive ``flock`` on ``path`` as a context manager (gives up after ``timeout`` seconds)."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout, self.fd = path, timeout, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.time() > deadline:
                    os.close(self.fd)
                    raise XandError(f"{self.path}: another process is starting a training job") from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
        return obj if isinstance(obj, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    for line in _read_text(path).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # the line being appended right now
    return out


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _tail_lines(path: Path, n_lines: int, max_bytes: int = 64_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # a progress bar redraws itself with "\r": keep the last state of each line
    lines = []
    for seg in raw.split("\n"):
        states = [s for s in seg.split("\r") if s.strip()]
        if states:
            lines.append(states[-1].rstrip())
    return "\n".join(lines[-n_lines:])


def _last_line(path: Path) -> str:
    tail = _tail_lines(path, 1, max_bytes=4_000)
    return tail.strip()


def _last_error_line(path: Path) -> str:
    for ln in reversed(_tail_lines(path, 40).splitlines()):
        if ln.startswith("error:") or re.match(r"^\w*(Error|Exception)\b", ln):
            return ln.strip()
    return ""


# ------------------------------------------------------------------------------------------------ cli

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "supervise":
        return supervise(argv[1])
    print("usage: python -m xand.jobs supervise JOB_DIR  (started by JobManager.start)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
