"""``JobManager``: start, list, follow and cancel jobs; one at a time per folder (a file lock)."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from xand.errors import UnknownNameError, XandError
from xand.fileio import absolute_path
from xand.jobs.files import (
    _flock,
    _mtime,
    _owner_file,
    _read_json,
    _read_text,
    _write_json,
)
from xand.jobs.records import Job, JobProgress, JobRunning, read_progress
from xand.jobs.spec import LOCK_BUSY, PROJECT, START_GRACE_S, TrainJobSpec
from xand.jobs.supervisor import _failure_reason


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
