"""Evaluation metrics and ``evaluate_run`` on PTB-XL-layout and CinC-format data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from xand.errors import UnknownNameError
from xand.evaluation import evaluate_run, is_cinc_folder
from xand.metrics import auc_or_none, binary_metrics, bootstrap_auc_ci, tune_threshold


def _scores(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * y + rng.normal(0, 1, n))))
    return y, p


def test_binary_metrics_confusion_and_rates():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3])
    m = binary_metrics(y, p, threshold=0.5, n_boot=0)
    assert m["confusion"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 2}
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p)) and m["auc_ci"] is None


def test_single_class_gives_none_not_crash():
    y = np.zeros(10, int)
    p = np.linspace(0, 1, 10)
    assert auc_or_none(y, p) is None and bootstrap_auc_ci(y, p) is None
    assert tune_threshold(y, p) == 0.5
    assert binary_metrics(y, p, 0.5)["pr_auc"] is None


def test_youden_threshold_separates_separable_scores():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.8])
    thr = tune_threshold(y, p, "youden")
    assert 0.3 < thr <= 0.6
    assert 0.3 < tune_threshold(y, p, "f1") <= 0.6
    with pytest.raises(UnknownNameError, match="youden"):
        tune_threshold(y, p, "magic")


def test_bootstrap_ci_is_seeded_and_brackets_the_auc():
    y, p = _scores()
    ci1 = bootstrap_auc_ci(y, p, 1000, seed=1)
    assert ci1 == bootstrap_auc_ci(y, p, 1000, seed=1)
    assert ci1 != bootstrap_auc_ci(y, p, 1000, seed=2)
    assert ci1[0] < roc_auc_score(y, p) < ci1[1] and ci1[1] - ci1[0] < 0.2


def test_vectorised_bootstrap_auc_matches_sklearn_with_ties():
    # a resample equal to the data (n_boot=1 with a fixed permutation) must give sklearn's AUC with ties
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.2, 0.2, 0.5, 0.7, 0.5, 0.1])
    from scipy.stats import rankdata

    ranks = rankdata(p)
    auc = (ranks[y == 1].sum() - 3 * 4 / 2) / 9
    assert auc == pytest.approx(roc_auc_score(y, p))


@pytest.fixture(scope="module")
def synth_run(synth_dir, tmp_path_factory):
    from xand.data.prepare import prepare
    from xand.training.config import TrainConfig
    from xand.training.trainer import train

    tmp = tmp_path_factory.mktemp("evalrun")
    prepared = prepare(synth_dir, cache_dir=tmp / "cache", progress=False)
    cfg = TrainConfig(model_kwargs={"width": 0.125, "hidden": 16}, heads=("MI", "CD"), epochs=1, bootstrap=50,
                      num_threads=1)
    return train(prepared, cfg, tmp / "runs"), tmp / "cache"


@pytest.mark.slow
def test_evaluate_run_on_ptbxl_layout_matches_training_summary(synth_run, synth_dir):
    run, cache = synth_run
    assert not is_cinc_folder(synth_dir)
    res = evaluate_run(run, synth_dir, split="test", cache_dir=cache, n_boot=50)
    assert res["format"] == "ptbxl" and set(res["heads"]) == {"MI", "CD"}
    for head in ("MI", "CD"):
        s = json.loads((run / head / "summary.json").read_text())["heads"][head]
        assert res["heads"][head]["auc"] == pytest.approx(s["test_auc_best_checkpoint"], abs=1e-6)
        # probabilities are calibrated (temperature fitted on val): the threshold moves with them and every
        # decision stays the training summary's
        from xand.training.calibration import threshold_after

        t = s["calibration"]["temperature"]
        assert res["heads"][head]["threshold"] == pytest.approx(threshold_after(s["threshold"], t))
        assert res["heads"][head]["sensitivity"] == pytest.approx(s["sensitivity"])
        assert res["heads"][head]["specificity"] == pytest.approx(s["specificity"])
        assert res["heads"][head]["n"] == s["n_test"]


@pytest.mark.slow
def test_evaluate_run_zero_shot_on_cinc(synth_run, cinc_dir):
    run, _ = synth_run
    assert is_cinc_folder(cinc_dir)
    res = evaluate_run(run, cinc_dir, n_boot=20)
    assert res["format"] == "cinc" and res["n_records"] + len(res["skipped"]) >= 1
    for m in res["heads"].values():
        assert m["n"] + m["n_excluded"] == res["n_records"]


@pytest.mark.slow
def test_evaluate_cli_prints_json(synth_run, synth_dir, capsys):
    from xand.cli import main

    run, cache = synth_run
    assert main(["evaluate", "--run", str(run), "--data", str(synth_dir), "--split", "val", "--cache-dir",
                 str(cache), "--bootstrap", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "val" and "MI" in out["heads"]
