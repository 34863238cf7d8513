"""The sidebar's "Train" panel through ``streamlit.testing.v1.AppTest``: it renders without touching the
disk, a bad dataset gets one clear message, Start launches a real background job whose running state is
shown to this and to another session (Start disabled), Cancel stops it, and a finished run is listed in the
run selector at once.

Environment: an app home of its own (``XAND_HOME``) whose demo set is the session's 200-record synthetic
set and whose runs folder starts empty, so that no other test's run list changes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
TIMEOUT = 180


@pytest.fixture()
def home(tmp_path_factory, synth_dir, monkeypatch) -> Path:
    home = tmp_path_factory.getbasetemp() / "xand_train_panel_home"
    home.mkdir(exist_ok=True)
    if not (home / "demo").exists():
        (home / "demo").symlink_to(synth_dir, target_is_directory=True)
    runs = home / f"runs_{time.time_ns()}"  # every test starts with no run and no job
    monkeypatch.setenv("XAND_HOME", str(home))
    monkeypatch.setenv("XAND_RUNS_DIR", str(runs))
    monkeypatch.setenv("XAND_DEMO_WEIGHTS", str(home / "no_demo_weights"))
    monkeypatch.setenv("XAND_BACKGROUND", "0")
    import torch

    monkeypatch.setenv("XAND_TORCH_THREADS", str(torch.get_num_threads()))
    for k in ("XAND_DATA_DIR", "XAND_CACHE", "XAND_PTBXL_PLUS", "XAND_DEMO_N", "XAND_TRAIN_LOCK"):
        monkeypatch.delenv(k, raising=False)
    yield home
    from xand.jobs import JobManager

    mgr = JobManager(runs)
    for job in mgr.jobs():  # never leave a training behind
        if job.active:
            mgr.cancel(job.id, grace=2)


def manager():
    import os

    from xand.jobs import JobManager

    return JobManager(os.environ["XAND_RUNS_DIR"])


def app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widget(items, label: str):
    for w in items:
        if w.label == label:
            return w
    raise AssertionError(f"no widget {label!r}; have {[w.label for w in items]}")


def texts(at) -> str:
    parts = [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
    for kind in ("success", "info", "warning", "error"):
        parts += [e.value for e in getattr(at.sidebar, kind)]
    return "\n".join(str(p) for p in parts)


def configure(at, *, epochs: int, patience: int = 0, data: str | None = None):
    """Fill the Train form (cnn1d, head MI) without submitting it."""
    sb = at.sidebar
    widget(sb.multiselect, "Heads").set_value(["MI"])
    widget(sb.selectbox, "Architecture").set_value("cnn1d")
    widget(sb.number_input, "Epochs").set_value(epochs)
    widget(sb.number_input, "Patience").set_value(patience)
    if data is not None:
        widget(sb.text_input, "Dataset folder").input(data)


def start_button(at):
    return widget(at.sidebar.button, "Start training")


# --------------------------------------------------------------------------------------------- tests

def test_panel_renders_without_writing(home):
    at = app()
    from xand.models.networks import list_models

    assert widget(at.sidebar.selectbox, "Architecture").options == list_models()
    assert widget(at.sidebar.multiselect, "Heads").value == [widget(at.sidebar.selectbox, "Head").value]
    assert widget(at.sidebar.text_input, "Dataset folder").value == str(home / "demo")
    assert not start_button(at).disabled
    assert [r.value for r in at.sidebar.radio] == ["Synthetic demo set"]  # the panel adds no radio
    assert at.sidebar.checkbox[0].label == "ECG paper grid"  # nor a checkbox before the sidebar's own
    assert manager().jobs() == [] and not manager().jobs_dir.exists()


def test_bad_dataset_is_one_message(home, tmp_path):
    at = app()
    configure(at, epochs=1, data=str(tmp_path / "nowhere"))
    start_button(at).click().run()
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "Cannot start" in errors[0] and "nowhere" in errors[0]
    assert manager().jobs() == []


@pytest.mark.slow
def test_start_shows_progress_and_cancel(home):
    at = app()
    configure(at, epochs=1000)  # patience 0: runs until cancelled
    start_button(at).click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = manager().current()
    assert job is not None and job.spec.model == "cnn1d" and job.spec.heads == ("MI",)
    assert (job.spec.epochs, job.spec.patience) == (1000, 0)
    assert job.spec.data == str(home / "demo") and job.spec.device == "auto"
    assert "Training" in texts(at) and start_button(at).disabled
    assert widget(at.sidebar.button, "Cancel training")

    other = app()  # another user's session sees the same job, and cannot start a second one
    assert start_button(other).disabled and job.id in texts(other)

    from test_jobs import until

    until(lambda: manager().progress(job.id).epoch >= 1)
    at.run()
    assert "ECG/s" in texts(at)
    assert any("MI: epoch" in p.proto.text for p in at.sidebar.get("progress"))
    widget(at.sidebar.button, "Cancel training").click().run()
    assert manager().get(job.id).status == "cancelled"
    assert "Cancelled" in texts(at) and not start_button(at).disabled


@pytest.mark.slow
def test_finished_run_is_listed_at_once(home):
    at = app()
    assert any("No trained run" in w.value for w in at.sidebar.warning)
    configure(at, epochs=1)
    start_button(at).click().run()
    job = manager().current()
    assert job is not None
    done = manager().wait(job.id, timeout=TIMEOUT)
    assert done.status == "finished", done.log_tail()
    at.run()
    runs = widget(at.sidebar.selectbox, "Trained run")
    assert done.run_dir.name in runs.options
    assert "Finished" in texts(at) and "val AUC" in texts(at)
    assert not start_button(at).disabled


@pytest.mark.slow
def test_failed_job_shows_its_log(home, tmp_path):
    bad = tmp_path / "bad_set"
    bad.mkdir()
    (bad / "ptbxl_database.csv").write_text("not,a,ptbxl\n")
    at = app()
    configure(at, epochs=1, data=str(bad))
    start_button(at).click().run()
    job = manager().latest()
    assert job is not None and manager().wait(job.id, timeout=TIMEOUT).status == "failed"
    at.run()
    assert any("Training failed" in e.value for e in at.sidebar.error)
    assert any(str(bad) in c.value for c in at.sidebar.code)
    widget(at.sidebar.button, "Dismiss").click().run()
    assert not any("Training failed" in e.value for e in at.sidebar.error)
