"""The Evaluate and Upload pages through ``streamlit.testing.v1.AppTest``.

Evaluate: curves, threshold and calibration figures for the tiny run of ``test_app`` and metrics equal to
what ``xand`` computes (the test AUC equals the run's own Test†), the XAI table computed on demand on a
tiny subset and then read back from its cache next to the run, runs side by side. Upload: a WFDB pair and a
CSV give the Review view with the scores ``xand`` computes for that ECG; a bad upload gives one error and
nothing else; a parsed upload injected into the session renders the same way; saving keeps the files.

Environment: the app home of ``test_app`` (200-record synthetic set, one-epoch cnn1d run), with the run
copied into a temporary runs folder so that XAI tables and saves never touch the shared one.
"""

from __future__ import annotations

import io
import json
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_app import make_app_home, metric, plotly_specs, printout_spec, run_app, trace_names

pytestmark = pytest.mark.slow  # the shared tiny training run, and one app run per step

HEA = "records500/00000/00001_hr"


@pytest.fixture(scope="session")
def app_home(tmp_path_factory, synth_dir) -> Path:
    return make_app_home(tmp_path_factory.getbasetemp() / "xand_app_home", synth_dir)


@pytest.fixture()
def env(app_home, tmp_path, monkeypatch) -> Path:
    """The app on the shared home, its run copied to ``tmp_path/runs/tiny``, uploads saved under tmp."""
    runs = tmp_path / "runs"
    shutil.copytree(app_home / "runs" / "tiny", runs / "tiny")
    monkeypatch.setenv("XAND_HOME", str(app_home))
    monkeypatch.setenv("XAND_RUNS_DIR", str(runs))
    monkeypatch.setenv("XAND_DEMO_WEIGHTS", str(tmp_path / "no_demo_weights"))
    monkeypatch.setenv("XAND_BACKGROUND", "0")
    import torch

    monkeypatch.setenv("XAND_TORCH_THREADS", str(torch.get_num_threads()))
    for k in ("XAND_DATA_DIR", "XAND_CACHE", "XAND_PTBXL_PLUS", "XAND_DEMO_N"):
        monkeypatch.delenv(k, raising=False)
    return runs / "tiny"


@lru_cache(maxsize=None)
def _predictor(run_dir: str):
    from xand.training.predictor import load_run

    return load_run(run_dir)


def spec_metas(at) -> list[str]:
    return [str(t.get("meta")) for spec in plotly_specs(at) for t in spec["data"]]


def dataframe_with(at, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with a column {column!r}")


def expected_metrics(app_home: Path, run_dir: Path, split: str) -> dict:
    """The run's metrics on ``split`` computed with xand alone (not through the page)."""
    from xand.metrics import binary_metrics
    from xand.data.prepare import prepare

    pred = _predictor(str(run_dir))
    prep = prepare(app_home / "demo", cache_dir=app_home / "cache", workers=1, progress=False)
    probs = pred.predict_proba(np.asarray(prep.signals), prep.fs)
    out = {}
    for h in pred.heads:
        idx, y = prep.head_labels(h, split)
        out[h] = binary_metrics(y, probs[h][idx], pred.threshold(h), n_boot=0)
    return out


# ------------------------------------------------------------------------------------------- Evaluate

def test_evaluate_renders_curves_and_metrics(env, app_home):
    at = run_app(page="pages/evaluate.py")
    heads = _predictor(str(env)).heads
    metas = spec_metas(at)
    for h in heads:
        for kind in ("roc", "pr", "cm", "cal", "hist"):
            assert any(m.startswith(f"{kind}:{h}") for m in metas), (kind, h)
    assert "chance" in metas and "ideal" in metas

    table = dataframe_with(at, "AUC (test)").set_index("head")
    summary = json.loads((env / "summary.json").read_text())["heads"]
    want = expected_metrics(app_home, env, "test")
    for h in heads:
        assert table.loc[h, "n"] == want[h]["n"] and table.loc[h, "n_pos"] == want[h]["n_pos"]
        if want[h]["auc"] is not None:
            assert table.loc[h, "AUC (test)"] == pytest.approx(want[h]["auc"], abs=1e-9)
            # the same checkpoint on the same split: the run's own Test† is reproduced
            assert table.loc[h, "AUC (test)"] == pytest.approx(summary[h]["test_dagger"], abs=1e-6)
        assert table.loc[h, "Test†"] == pytest.approx(summary[h]["test_dagger"])
        assert table.loc[h, "Val AUC"] == pytest.approx(summary[h]["val_auc"])
    thr = dataframe_with(at, "sensitivity").set_index("head")
    for h in heads:
        for k in ("tn", "fp", "fn", "tp"):
            assert thr.loc[h, k] == want[h]["confusion"][k]
        assert thr.loc[h, "threshold"] == pytest.approx(_predictor(str(env)).threshold(h))
    cal = dataframe_with(at, "frac_pos")
    per_head = cal.groupby("head")["n"].sum()  # every labelled record lies in one calibration bin
    assert set(per_head.index) <= set(heads)
    assert all(per_head[h] == table.loc[h, "n"] for h in per_head.index)
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("⬇ CSV") >= 5 and labels.count("⬇ CSV") == labels.count("⬇ JSON")


def test_evaluate_other_split(env, app_home):
    at = run_app(page="pages/evaluate.py")
    at.selectbox(key="ev_split").set_value("val").run()
    assert not at.exception
    table = dataframe_with(at, "AUC (val)").set_index("head")
    want = expected_metrics(app_home, env, "val")
    for h, m in want.items():
        assert table.loc[h, "n"] == m["n"]
        if m["auc"] is not None:
            assert table.loc[h, "AUC (val)"] == pytest.approx(m["auc"], abs=1e-9)


def test_xai_table_on_demand_then_cached(env):
    at = run_app(page="pages/evaluate.py")
    assert any("Not computed yet" in i.value for i in at.info)
    at.number_input(key="xai_n").set_value(1).run()
    at.button(key="xai_compute").click().run()
    assert not at.exception and not at.error
    assert at.button(key="xai_compute").label == "Recompute the XAI table"
    xai = dataframe_with(at, "Pointing Game")
    n_explained = int(xai["n"].sum())
    assert any(f"XAI table computed: {n_explained} explanations" in s.value for s in at.success)
    heads = _predictor(str(env)).heads
    assert list(xai["head"]) == list(heads)
    assert (xai["n"] <= 1).all() and (xai["n"] + xai["skipped"] == xai["n_positive"]).all()
    assert ((xai["chance"] > 0) & (xai["chance"] < 1)).all()
    for col in ("CAS", "rank accuracy", "drop mask", "drop random", "drop diff"):
        assert col in xai.columns
    out = env / "xai" / "first1"
    assert (out / "test_ig.csv").is_file() and (out / "test_ig_records.csv").is_file()
    info = json.loads((out / "test_ig.json").read_text())
    assert info["config"]["max_per_head"] == 1 and info["config"]["split"] == "test"

    again = run_app(page="pages/evaluate.py")  # a new session: read from the cache, nothing recomputed
    again.number_input(key="xai_n").set_value(1).run()
    cached = dataframe_with(again, "Pointing Game")
    pd.testing.assert_frame_equal(cached.reset_index(drop=True), xai.reset_index(drop=True))
    assert again.button(key="xai_compute").label == "Recompute the XAI table"
    assert not again.get("progress")


def test_xai_batch_reports_progress(env, app_home, tmp_path):
    """The page's progress bar is fed by ``xai_batch(on_progress=...)``: 0, 1, ..., total."""
    from xand.explain.xai import xai_batch

    calls: list[tuple[int, int]] = []
    out = xai_batch(env, app_home / "demo", split="val", max_per_head=1, progress=False, compare_method=None,
                    out_dir=tmp_path / "xai", on_progress=lambda done, total: calls.append((done, total)))
    total = out.attrs["n_ecg"]
    assert total >= 1 and calls == [(k, total) for k in range(total + 1)]


def test_runs_side_by_side(env):
    shutil.copytree(env, env.parent / "tiny_copy")
    at = run_app(page="pages/evaluate.py")
    at.multiselect(key="ev_runs").set_value(["tiny", "tiny_copy"]).run()
    assert not at.exception
    wide = dataframe_with(at, "model").set_index("run")
    summary = json.loads((env / "summary.json").read_text())["heads"]
    assert list(wide.index) == ["tiny", "tiny_copy"]
    for h, s in summary.items():
        assert wide.loc["tiny", f"{h} Val AUC"] == pytest.approx(s["val_auc"])
        assert wide.loc["tiny_copy", f"{h} Test†"] == pytest.approx(s["test_dagger"])
    assert "run:tiny_copy:test_dagger" in spec_metas(at)


# --------------------------------------------------------------------------------------------- Upload

@lru_cache(maxsize=8)
def _expected_upload(run_dir: str, files: tuple, head: str, fs=None, units="mV"):
    """Probability and scores ``xand`` computes for an upload (parse, model window, own delineation)."""
    from xand.delineation.neurokit import delineate
    from xand.data.upload import input_seconds, model_window, parse_upload, predict_upload
    from xand.explain.xai import explain_ecg

    pred = _predictor(run_dir)
    rec = parse_upload(list(files), fs=fs, units=units)
    window, _ = model_window(rec.signal, rec.fs, input_seconds(pred))
    e = explain_ecg(pred, window, rec.fs, head, "ig", delineate(window, rec.fs))
    return e, predict_upload(pred, rec)


def wfdb_upload(synth_dir: Path) -> tuple:
    base = synth_dir / HEA
    return ((base.name + ".hea", base.with_suffix(".hea").read_bytes()),
            (base.name + ".dat", base.with_suffix(".dat").read_bytes()))


def assert_review_view(at, head: str, e, probs: dict) -> None:
    names = trace_names(printout_spec(at))
    assert sum(n.startswith("lead:") for n in names) == 12
    assert sum(n.startswith("clin:") for n in names) == 13 and sum(n.startswith("attr:") for n in names) == 13
    assert metric(at, f"Probability {head}") == f"{e.probability:.3f}"
    cas = e.scores["cas"].value
    assert metric(at, "CAS") == ("undefined" if cas is None else f"{cas:.3f}")
    table = dataframe_with(at, "probability").set_index("head")
    for h, p in probs.items():
        assert table.loc[h, "probability"] == pytest.approx(p, abs=1e-9)


def test_upload_wfdb_pair_shows_the_review_view(env, synth_dir):
    files = wfdb_upload(synth_dir)
    head = _predictor(str(env)).heads[0]
    at = run_app({"head": head}, page="pages/upload.py")
    assert any("Upload an ECG" in i.value for i in at.info)
    at.file_uploader(key="upl_files").set_value([(n, b, "application/octet-stream") for n, b in files]).run()
    assert not at.exception and not at.error
    e, probs = _expected_upload(str(env), files, head)
    assert e.mask.any()  # own delineation found the beats: CLIN is not empty
    assert_review_view(at, head, e, probs)
    assert any("00001_hr" in m.value and "500 Hz" in m.value for m in at.markdown)
    at.file_uploader(key="upl_files").set_value(None).run()  # files removed: the view goes with them
    assert not at.exception and not at.get("plotly_chart") and at.session_state["upload_ecg"] is None
    assert any("Upload an ECG" in i.value for i in at.info)


def test_upload_csv_needs_its_rate_then_shows_the_view(env, synth_dir):
    from xand.data.ptbxl import read_wfdb

    ecg, fs = read_wfdb(synth_dir / HEA)
    buf = io.StringIO()
    pd.DataFrame(ecg.T * 1000, columns=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5",
                                        "V6"]).to_csv(buf, index=False)
    data = buf.getvalue().encode()
    head = _predictor(str(env)).heads[-1]
    at = run_app({"head": head}, page="pages/upload.py")
    at.file_uploader(key="upl_files").set_value(("ecg.csv", data, "text/csv")).run()
    assert len(at.error) == 1 and "no sampling rate given" in at.error[0].value
    assert not at.get("plotly_chart") and not at.metric
    at.selectbox(key="upl_units").set_value("µV")
    at.number_input(key="upl_fs").set_value(float(fs)).run()
    assert not at.exception and not at.error
    e, probs = _expected_upload(str(env), (("ecg.csv", data),), head, float(fs), "µV")
    assert_review_view(at, head, e, probs)


@pytest.mark.parametrize("case", ["nan", "png", "mismatched"])
def test_bad_upload_shows_one_error_and_nothing_else(env, synth_dir, case):
    files = wfdb_upload(synth_dir)
    if case == "nan":
        upload = [("ecg.npy", _npy_with_nan(), "application/octet-stream")]
    elif case == "png":
        upload = [("ecg.csv", b"\x89PNG\r\n\x1a\n" + bytes(100), "text/csv")]
    else:
        other = synth_dir / "records500" / "00000" / "00002_hr.dat"
        upload = [(files[0][0], files[0][1], "text/plain"), (files[1][0], other.read_bytes(), "text/plain")]
    at = run_app(page="pages/upload.py")
    at.number_input(key="upl_fs").set_value(500.0).run()
    at.file_uploader(key="upl_files").set_value(upload).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Cannot use this upload: ")
    assert not at.get("plotly_chart") and not at.metric and not at.dataframe
    assert "upload_ecg" in at.session_state and at.session_state["upload_ecg"] is None


def _npy_with_nan() -> bytes:
    x = np.sin(np.linspace(0, 60, 5000))[None].repeat(12, axis=0)
    x[3, 10] = np.nan
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def test_injected_upload_renders(env, synth_dir):
    from xand.data.upload import parse_upload

    files = wfdb_upload(synth_dir)
    head = _predictor(str(env)).heads[1]
    at = run_app({"head": head})
    at.session_state["upload_ecg"] = parse_upload(list(files))
    at.switch_page("pages/upload.py").run()
    assert not at.exception
    e, probs = _expected_upload(str(env), files, head)
    assert_review_view(at, head, e, probs)
    assert at.button(key="upl_save").disabled  # nothing uploaded in this session: nothing to save


def test_save_keeps_the_upload_only_when_asked(env, synth_dir, app_home):
    files = wfdb_upload(synth_dir)
    uploads = app_home / "uploads"
    before = set(uploads.iterdir()) if uploads.is_dir() else set()
    at = run_app(page="pages/upload.py")
    at.file_uploader(key="upl_files").set_value([(n, b, "application/octet-stream") for n, b in files]).run()
    assert not at.error
    assert (set(uploads.iterdir()) if uploads.is_dir() else set()) == before  # not kept by itself
    at.button(key="upl_save").click().run()
    new = set(uploads.iterdir()) - before
    try:
        assert len(new) == 1 and any("Saved to" in s.value for s in at.success)
        folder = new.pop()
        assert sorted(p.name for p in folder.iterdir()) == ["00001_hr.dat", "00001_hr.hea", "upload.json"]
        assert (folder / "00001_hr.dat").read_bytes() == files[1][1]
    finally:
        for p in set(uploads.iterdir()) - before:
            shutil.rmtree(p)


def test_upload_probabilities_hold_the_model_lock(env, synth_dir, monkeypatch):
    """The upload's probabilities run the shared cached model under the explanation lock, like every other
    model call (Grad-CAM puts hooks on that model while it explains)."""
    import pages.common as common
    import xand.data.upload

    real = xand.data.upload.predict_upload
    held: list[bool] = []

    def spy(pred, rec):
        held.append(common.EXPLAIN_LOCK.locked())
        return real(pred, rec)

    monkeypatch.setattr(xand.data.upload, "predict_upload", spy)
    base = synth_dir / "records500" / "00000" / "00002_hr"  # a record no other test uploads: not cached
    files = [(base.name + ext, base.with_suffix(ext).read_bytes(), "application/octet-stream")
             for ext in (".hea", ".dat")]
    at = run_app(page="pages/upload.py")
    at.file_uploader(key="upl_files").set_value(files).run()
    assert not at.exception and not at.error
    assert held == [True]


def test_upload_without_a_threshold_shows_no_decision(env, synth_dir, monkeypatch):
    """A head without a decision threshold shows its probability and no decision (not "negative")."""
    import pages.common as common

    heads = _predictor(str(env)).heads
    real = common.threshold_of
    monkeypatch.setattr(common, "threshold_of", lambda pred, h: None if h == heads[0] else real(pred, h))
    files = wfdb_upload(synth_dir)
    at = run_app({"head": heads[-1]}, page="pages/upload.py")
    at.file_uploader(key="upl_files").set_value([(n, b, "application/octet-stream") for n, b in files]).run()
    assert not at.exception and not at.error
    table = dataframe_with(at, "probability").set_index("head")
    assert table.loc[heads[0], "decision"] == "—" and pd.isna(table.loc[heads[0], "threshold"])
    for h in heads[1:]:
        thr = table.loc[h, "threshold"]
        assert table.loc[h, "decision"] == ("positive" if table.loc[h, "probability"] >= thr else "negative")


def test_upload_without_a_run_shows_the_clinical_region(env, synth_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XAND_RUNS_DIR", str(tmp_path / "empty_runs"))
    files = wfdb_upload(synth_dir)
    at = run_app(page="pages/upload.py")
    at.file_uploader(key="upl_files").set_value([(n, b, "application/octet-stream") for n, b in files]).run()
    assert not at.exception and not at.error
    names = trace_names(printout_spec(at))
    assert sum(n.startswith("clin:") for n in names) == 13 and not any(n.startswith("attr:") for n in names)
    assert any("No trained run" in i.value for i in at.info)
