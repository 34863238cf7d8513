"""Temperature scaling: the fit recovers a known temperature, keeps every decision, lowers the ECE of an
over-confident head; calibrate_run writes a file the Predictor reads and validates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xand.errors import DataError
from xand.training.calibration import (apply_temperature, brier, calibration_report, ece, fit_temperature,
                                       threshold_after)


def _overconfident(n: int = 4000, t_true: float = 2.5, seed: int = 0):
    """Labels drawn from sigmoid(z); the model reports t_true * z (too confident by a factor t_true)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return t_true * z, y


def test_the_fit_recovers_the_temperature_and_lowers_ece_and_brier():
    logits, y = _overconfident()
    t = fit_temperature(logits, y)
    assert t == pytest.approx(2.5, rel=0.1)
    raw, cal = apply_temperature(logits, 1.0), apply_temperature(logits, t)
    assert ece(y, cal) < 0.5 * ece(y, raw) and brier(y, cal) < brier(y, raw)
    rep = calibration_report(logits[:2000], y[:2000], logits[2000:], y[2000:])
    assert rep["test"]["ece"] < rep["test"]["ece_raw"] and rep["val"]["n"] == 2000


def test_decisions_and_ranking_do_not_change():
    logits, _ = _overconfident(500)
    for thr in (0.1, 0.37, 0.5, 0.9):
        t = 2.5
        assert ((apply_temperature(logits, t) >= threshold_after(thr, t)) ==
                (apply_temperature(logits, 1.0) >= thr)).all()
    assert (np.argsort(apply_temperature(logits, 3.0)) == np.argsort(logits)).all()


def test_nothing_to_fit_keeps_t_one():
    assert fit_temperature(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 1.0
    assert fit_temperature(np.array([1.0]), np.array([1.0])) == 1.0
    assert fit_temperature(np.array([np.nan, 1.0]), np.array([0.0, 1.0])) == 1.0
    with pytest.raises(DataError):
        fit_temperature(np.zeros(3), np.zeros(2))


def test_ece_by_hand():
    y = np.array([0, 0, 1, 1], float)
    p = np.array([0.05, 0.05, 0.95, 0.55])  # bins 0, 0, 9, 5
    assert ece(y, p) == pytest.approx((2 * 0.05 + 0.05 + 0.45) / 4)
    assert brier(y, p) == pytest.approx(np.mean((p - y) ** 2))


def test_a_malformed_calibration_file_is_refused(tmp_path):
    from xand.training.predictor import read_calibration

    assert read_calibration(tmp_path) == {}
    (tmp_path / "calibration.json").write_text(json.dumps({"heads": {"MI": {"temperature": 1.7}}}))
    assert read_calibration(tmp_path) == {"MI": 1.7}
    for bad in ({"heads": {"MI": {"temperature": -1}}}, {"heads": {"XX": {"temperature": 1}}}, {"nope": 1}):
        (tmp_path / "calibration.json").write_text(json.dumps(bad))
        with pytest.raises(DataError):
            read_calibration(tmp_path)


def test_calibrate_run_writes_the_file_the_predictor_then_uses(synth_dir, tmp_path):
    import shutil

    from xand.data.prepare import prepare
    from xand.training.config import TrainConfig
    from xand.training.predictor import load_run
    from xand.training.trainer import train

    prep = prepare(synth_dir, cache_dir=tmp_path / "cache", workers=1, progress=False)
    cfg = TrainConfig(model="cnn1d", model_kwargs={"width": 0.5}, heads=("MI",), epochs=1, batch_size=64,
                      aux=False, bootstrap=0, seed=0)
    run = train(prep, cfg, out_dir=tmp_path / "runs")
    summary_t = load_run(run).temperature("MI")  # fitted at training time
    from xand.cli import main

    assert main(["calibrate", "--run", str(run), "--data", str(synth_dir), "--cache-dir", str(tmp_path / "cache")]) == 0
    written = json.loads((run / "calibration.json").read_text())
    t = written["heads"]["MI"]["temperature"]
    assert written["split"] == "val" and {"val", "test"} <= set(written["heads"]["MI"])
    # the same validation split and logits as at training time: the same temperature
    assert t == pytest.approx(summary_t, rel=1e-3)
    pred = load_run(run)
    assert pred.temperature("MI") == t
    assert pred.verified  # calibrate re-signed the run: the new file is part of it
    (run / "calibration.json").write_text(json.dumps({"heads": {"MI": {"temperature": 2.0}}}))
    with pytest.raises(DataError, match="changed after the run was finished"):
        load_run(run)  # a calibration edited by hand is not the one the run was finished with
    from xand.training.predictor import write_digests

    write_digests(run)
    assert load_run(run).temperature("MI") == 2.0  # the file overrides the training-time fit
    shutil.rmtree(tmp_path / "cache")


def test_a_fit_that_runs_into_the_bounds_is_a_failed_fit():
    z = np.r_[-np.linspace(1, 5, 20), np.linspace(1, 5, 20)]  # perfectly separated
    y = np.r_[np.zeros(20), np.ones(20)]
    assert fit_temperature(z, y) == 1.0
    rng = np.random.default_rng(0)
    assert fit_temperature(rng.normal(0, 5, 200), rng.integers(0, 2, 200).astype(float)) == 1.0  # uninformative
