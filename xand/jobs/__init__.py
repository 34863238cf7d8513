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

from xand.jobs.manager import JobManager  # noqa: F401 - the package's API
from xand.jobs.records import Job, JobProgress, JobRunning, read_progress  # noqa: F401
from xand.jobs.spec import ACTIVE, LOCK_BUSY, STATUSES, TrainJobSpec  # noqa: F401
