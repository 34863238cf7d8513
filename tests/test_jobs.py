"""Background training jobs (``xand.jobs``): the whole lifecycle with real ``python -m train`` processes
(cnn1d at a quarter width on the session's 200-record synthetic set): start, progress from metrics.jsonl,
one job at a time, cancel, finish with a summary, a "server restart" (a fresh manager over the same folder),
a failure with its log tail, and recovery after ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from xand.errors import DataError, UnknownNameError, XandError
from xand.jobs import Job, JobManager, JobRunning, TrainJobSpec, read_progress

TIMEOUT = 180.0


def until(cond, timeout: float = TIMEOUT, poll: float = 0.1):
    """Wait until ``cond()`` is truthy; returns its value (fails the test after ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, synth_dir) -> Path:
    """The synthetic set prepared once, so that every job's own prepare step is a no-op."""
    from xand.data.prepare import prepare

    cache = tmp_path_factory.mktemp("jobs_cache")
    prepare(synth_dir, cache_dir=cache, workers=1, progress=False)
    return cache


def tiny(synth_dir: Path, cache_dir: Path, **kw) -> TrainJobSpec:
    base = dict(data=str(synth_dir), heads=("MI",), model="cnn1d", epochs=1, width=0.25, aux=False, bootstrap=20,
                patience=0, cache_dir=str(cache_dir), threads=1)
    return TrainJobSpec(**{**base, **kw})


@pytest.fixture()
def mgr(tmp_path):
    m = JobManager(tmp_path / "runs")
    yield m
    for job in m.jobs():  # a failing test never leaves a training behind
        if job.active:
            m.cancel(job.id, grace=2)


# ------------------------------------------------------------------------------------------- fast

def test_relative_paths_are_made_absolute(synth_dir, tmp_path, monkeypatch):
    """The job runs with the project as its working directory: a relative ``data``, cache or runs folder
    (e.g. ``XAND_HOME=data``) must name what it names for the caller, not a folder under the project."""
    monkeypatch.chdir(Path(synth_dir).parent)
    spec = TrainJobSpec(data=Path(synth_dir).name, cache_dir="cache")
    assert spec.data == str(Path(synth_dir).resolve())
    assert spec.cache_dir == str((Path(synth_dir).parent / "cache").resolve())
    spec.validate()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert TrainJobSpec(data="~/ptbxl").data == str(tmp_path.resolve() / "ptbxl")
    (tmp_path / "linked").symlink_to(synth_dir, target_is_directory=True)  # a link keeps its name
    assert TrainJobSpec(data=str(tmp_path / "sub" / ".." / "linked")).data == str(tmp_path / "linked")
    monkeypatch.chdir(tmp_path)
    mgr = JobManager("runs", lock_file="locks/train.lock")
    assert mgr.runs_dir == tmp_path.resolve() / "runs" and mgr.jobs_dir == mgr.runs_dir / ".jobs"
    assert mgr.lock_file == tmp_path.resolve() / "locks" / "train.lock"
    argv = spec.argv(mgr.runs_dir)
    for flag in ("--data", "--out", "--cache-dir"):
        assert Path(argv[argv.index(flag) + 1]).is_absolute()
    # a saved spec read back is unchanged
    assert TrainJobSpec.from_dict(json.loads(json.dumps(spec.__dict__))) == spec


def test_train_cli_default_folders_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    import train.__main__ as cli

    root = Path(cli.__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    assert parser.parse_args(["--data", "d"]).out == str(root / "data" / "runs")  # the app's runs folder
    assert "data/runs" in parser.format_help().replace("\n", " ")
    assert parser.parse_args(["--data", "d", "--out", "mine"]).out == "mine"  # explicit: as given
    parser.set_defaults(**cli.PRESETS["demo"])
    assert parser.parse_args(["--data", "d"]).out == str(root / "data" / "demo_weights")


def test_spec_validation_and_command(synth_dir, tmp_path):
    spec = TrainJobSpec(data=str(synth_dir), heads=["MI", "CD"], model="cnn1d", epochs=3, augment=True, aux=False,
                        width=0.5, cache_dir=tmp_path)
    spec.validate()
    argv = spec.argv(tmp_path / "runs")
    assert argv[argv.index("--heads") + 1:argv.index("--heads") + 3] == ["MI", "CD"]
    assert argv[argv.index("--device") + 1] == "auto"  # the GPU when there is one
    assert {"--augment", "--no-aux"} <= set(argv) and argv[argv.index("--out") + 1] == str(tmp_path / "runs")
    assert TrainJobSpec.from_dict(json.loads(json.dumps(spec.__dict__))) == spec
    with pytest.raises(UnknownNameError, match="head"):
        TrainJobSpec(data=str(synth_dir), heads=("XX",)).validate()
    with pytest.raises(UnknownNameError, match="model"):
        TrainJobSpec(data=str(synth_dir), model="nope").validate()
    with pytest.raises(DataError, match="no head"):
        TrainJobSpec(data=str(synth_dir), heads=()).validate()
    with pytest.raises(DataError, match="epochs"):
        TrainJobSpec(data=str(synth_dir), epochs=0).validate()
    with pytest.raises(DataError, match="PTB-XL"):
        TrainJobSpec(data=str(tmp_path / "nowhere")).validate()


def test_nothing_written_before_a_start(tmp_path):
    m = JobManager(tmp_path / "runs")
    assert m.jobs() == [] and m.latest() is None and m.current() is None
    assert not (tmp_path / "runs").exists()  # listing never creates folders


def _fake_job(tmp_path: Path, spec: TrainJobSpec, run: Path) -> Job:
    return Job(id="j", dir=tmp_path / "j", spec=spec, command=[], status="running", created=100.0, started=100.0,
               run_dir=run)


def test_read_progress_from_metrics(tmp_path):
    spec = TrainJobSpec(data="d", heads=("MI", "CD"), model="cnn1d", epochs=4)
    run = tmp_path / "run"
    (run / "MI").mkdir(parents=True)
    (run / "CD").mkdir()
    (run / "config.json").write_text(json.dumps({"model": {"multilabel": False}}))
    rec = lambda e, auc: {"epoch": e, "train_loss": 0.5 - e / 10, "val_loss": 0.4, "val_auc": auc,
                          "ecg_per_s": 1000.0 + e, "epoch_seconds": 2.0}
    # MI stopped early after 2 epochs (summary written); CD has 1 epoch and half a line being appended
    (run / "MI" / "metrics.jsonl").write_text("".join(json.dumps(rec(e, 0.6 + e / 10)) + "\n" for e in range(2)))
    (run / "MI" / "summary.json").write_text("{}")
    (run / "CD" / "metrics.jsonl").write_text(json.dumps(rec(0, None)) + "\n" + '{"epoch": 1, "tr')
    p = read_progress(_fake_job(tmp_path, spec, run), now=130.0)
    assert (p.phase, p.units, p.unit, p.unit_index, p.epoch, p.epochs) == ("training", ["MI", "CD"], "CD", 1, 1, 4)
    assert (p.done_epochs, p.total_epochs) == (5, 8) and p.fraction == pytest.approx(5 / 8)
    assert p.eta_s == pytest.approx(3 * 2.0) and p.elapsed_s == pytest.approx(30.0)
    assert p.ecg_per_s == 1000.0 and [r["val_auc"] for r in p.history["MI"]] == [0.6, 0.7]
    (run / "CD" / "summary.json").write_text("{}")
    p = read_progress(_fake_job(tmp_path, spec, run), now=130.0)
    assert p.phase == "summarising" and p.fraction == 1.0
    (run / "summary.json").write_text("{}")
    assert read_progress(_fake_job(tmp_path, spec, run)).phase == "done"
    before = read_progress(_fake_job(tmp_path, spec, None))
    assert before.phase == "preparing" and before.fraction == 0.0 and before.eta_s is None


def test_supervisor_crash_is_reported(synth_dir, tmp_path):
    """A job whose supervisor dies before starting the training: start() says why, nothing stays active."""
    bad_lock = tmp_path / "a_folder"
    bad_lock.mkdir()  # the lock "file" cannot be opened for writing
    m = JobManager(tmp_path / "runs", lock_file=bad_lock)
    with pytest.raises(XandError, match="could not start") as exc:
        m.start(TrainJobSpec(data=str(synth_dir), model="cnn1d", heads=("MI",)), timeout=30)
    assert "IsADirectoryError" in str(exc.value)  # the supervisor's own traceback, from its log
    (job,) = m.jobs()
    assert job.status == "failed" and "supervisor exited" in job.reason and m.current() is None


# ---------------------------------------------------------------------------------- real processes

@pytest.mark.slow
def test_start_refuse_finish_and_restart(mgr, synth_dir, cache_dir):
    spec = tiny(synth_dir, cache_dir, heads=("MI", "STTC"), epochs=2)
    job = mgr.start(spec)
    assert job.status == "running" and job.pid and job.pgid and job.command[1:3] == ["-m", "train"]
    with pytest.raises(JobRunning) as exc:  # one at a time, from any manager (another session)
        JobManager(mgr.runs_dir).start(spec)
    assert exc.value.job is not None and exc.value.job.id == job.id and job.id in str(exc.value)
    assert mgr.current().id == job.id

    done = mgr.wait(job.id, timeout=TIMEOUT)
    assert done.status == "finished" and done.returncode == 0 and done.reason is None
    assert done.run_dir is not None and done.run_dir.parent == mgr.runs_dir
    summary = json.loads((done.run_dir / "summary.json").read_text())
    assert set(summary["heads"]) == {"MI", "STTC"}
    p = mgr.progress(done)
    assert p.phase == "done" and p.fraction == 1.0 and (p.done_epochs, p.total_epochs) == (4, 4)
    assert [len(p.history[h]) for h in ("MI", "STTC")] == [2, 2]
    assert {"train_loss", "val_loss", "val_auc", "ecg_per_s", "elapsed"} <= set(p.history["MI"][-1])
    assert mgr.current() is None

    # a "server restart": a new manager over the same folder reads the same state back
    again = JobManager(mgr.runs_dir)
    assert again.get(job.id).to_dict() == done.to_dict()
    assert [j.id for j in again.jobs()] == [job.id]
    # the lock is free: the next job starts
    second = again.start(tiny(synth_dir, cache_dir, epochs=1))
    assert again.wait(second.id, timeout=TIMEOUT).status == "finished"
    assert [j.id for j in mgr.jobs()] == [second.id, job.id]


@pytest.mark.slow
def test_progress_then_cancel(mgr, synth_dir, cache_dir):
    job = mgr.start(tiny(synth_dir, cache_dir, epochs=100_000))
    p = until(lambda: (q := mgr.progress(job.id)).epoch >= 2 and q)
    assert p.phase == "training" and p.unit == "MI" and p.epochs == 100_000
    assert p.last["train_loss"] > 0 and p.ecg_per_s > 0 and p.eta_s > 0 and p.elapsed_s > 0
    assert 0 < p.fraction < 1
    assert JobManager(mgr.runs_dir).get(job.id).status == "running"  # another session sees it running

    ended = mgr.cancel(job.id, grace=5)
    assert ended.status == "cancelled" and ended.returncode == -signal.SIGTERM and ended.cancel_requested
    assert mgr.current() is None and not _alive(job.pid)
    assert "cnn1d/MI" in ended.log_tail()  # the training's own progress lines
    assert JobManager(mgr.runs_dir).get(job.id).status == "cancelled"
    assert mgr.cancel(job.id).status == "cancelled"  # cancelling an ended job changes nothing


@pytest.mark.slow
def test_failure_reports_the_log_tail(mgr, synth_dir, cache_dir, tmp_path):
    bad = tmp_path / "bad_set"
    bad.mkdir()
    (bad / "ptbxl_database.csv").write_text("not,a,ptbxl\n")  # passes the quick check, fails in prepare
    job = mgr.start(tiny(synth_dir, cache_dir, data=str(bad)))
    ended = mgr.wait(job.id, timeout=TIMEOUT)
    assert ended.status == "failed" and ended.returncode not in (0, None)
    assert "exited with code" in ended.reason and str(bad) in ended.log_tail()
    assert mgr.current() is None


@pytest.mark.slow
def test_recovers_after_kill9(mgr, synth_dir, cache_dir):
    spec = tiny(synth_dir, cache_dir, epochs=100_000)
    job = mgr.start(spec)
    until(lambda: mgr.progress(job.id).epoch >= 1)
    # the supervisor alone dies: the training still holds the lock, the job is still running
    os.kill(job.pgid, signal.SIGKILL)
    until(lambda: not _alive(job.pgid))
    assert mgr.get(job.id).status == "running"
    with pytest.raises(JobRunning):
        mgr.start(spec)
    # then everything of the job dies without a word: no stale lock, the job reads as failed
    os.killpg(job.pgid, signal.SIGKILL)
    until(lambda: not mgr.get(job.id).active)
    dead = JobManager(mgr.runs_dir).get(job.id)
    assert dead.status == "failed" and "without an exit record" in dead.reason and dead.returncode is None
    nxt = mgr.start(tiny(synth_dir, cache_dir, epochs=1))
    assert mgr.wait(nxt.id, timeout=TIMEOUT).status == "finished"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
