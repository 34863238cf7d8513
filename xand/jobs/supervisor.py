"""The supervisor process of one job (``python -m xand.jobs supervise DIR``): takes the lock, runs
``python -m train``, follows it, records its exit and its run folder."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from xand.fileio import atomic_write_text
from xand.jobs.files import _last_error_line, _owner_file, _read_json, _write_json
from xand.jobs.records import Job
from xand.jobs.spec import LOCK_BUSY, PROJECT, TrainJobSpec


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "supervise":
        return supervise(argv[1])
    print("usage: python -m xand.jobs supervise JOB_DIR  (started by JobManager.start)", file=sys.stderr)
    return 2
