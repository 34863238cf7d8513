"""The Evaluate page's data (``xand.evaluation``: curves, calibration, per-head evaluation, runs side by side,
cached XAI tables) and its figures (``xand.figures.evaluation``) on seeded tables whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

from xand.errors import DataError, UnknownNameError
from xand.figures.evaluation import (
    calibration_figure, confusion_figure, pr_figure, roc_figure, runs_figure, score_distribution_figure,
)
from xand.metrics import binary_metrics
from xand.evaluation import (
    calibration_long, calibration_table, evaluate_predictions, head_arrays, load_xai_summary,
    metrics_table, roc_pr_curves, runs_comparison, runs_wide, score_table, xai_out_dir, xai_table,
)

HEADS = ("MI", "CD")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """400 records: MI separable with noise, CD uninformative; ~10% excluded, a few missing scores."""
    rng = np.random.default_rng(0)
    n = 400
    t = pd.DataFrame({"ecg_id": np.arange(1, n + 1), "split": rng.choice(["train", "val", "test"], n)})
    y_mi, y_cd = rng.integers(0, 2, n), (rng.random(n) < 0.2).astype(int)
    t["MI"] = np.where(rng.random(n) < 0.1, -1, y_mi)
    t["CD"] = y_cd
    t["p_MI"] = np.clip(0.35 * y_mi + 0.65 * rng.random(n), 0, 1)
    t["p_CD"] = rng.random(n)
    t.loc[5, "p_CD"] = np.nan  # a record without a score is left out, not counted as 0
    return t


def _fig_metas(fig) -> list[str]:
    return [str(t.meta) for t in fig.data]


# ---------------------------------------------------------------------------------------------- data

def test_head_arrays_filters_split_and_exclusions(table):
    ids, y, p = head_arrays(table, "MI", "test")
    sub = table[(table["split"] == "test") & (table["MI"] != -1)]
    assert list(ids) == list(sub["ecg_id"]) and set(np.unique(y)) <= {0, 1}
    np.testing.assert_array_equal(p, sub["p_MI"].to_numpy())
    ids_all, _, _ = head_arrays(table, "CD", "all")
    assert len(ids_all) == len(table) - 1  # the NaN score
    with pytest.raises(DataError, match="no column 'HYP'"):
        head_arrays(table, "HYP")


def test_roc_pr_curves_match_sklearn_and_single_class_is_none(table):
    _, y, p = head_arrays(table, "MI", "all")
    c = roc_pr_curves(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    np.testing.assert_array_equal(c["fpr"], fpr)
    np.testing.assert_array_equal(c["tpr"], tpr)
    assert c["prevalence"] == pytest.approx(y.mean())
    assert c["recall"][0] == 1.0 and c["recall"][-1] == 0.0 and c["roc_thresholds"].max() <= 1.0
    one = roc_pr_curves(np.zeros(5), np.linspace(0, 1, 5))
    assert one["fpr"] is None and one["precision"] is None and one["prevalence"] == 0.0


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_table_is_calibration_curve_with_counts(table, strategy):
    _, y, p = head_arrays(table, "MI", "all")
    cal = calibration_table(y, p, n_bins=8, strategy=strategy)
    frac, mean = calibration_curve(y, p, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(cal["frac_pos"], frac)
    np.testing.assert_allclose(cal["p_mean"], mean)
    assert cal["n"].sum() == len(y) and (cal["n"] > 0).all()
    assert ((cal["p_mean"] >= cal["bin_low"] - 1e-12) & (cal["p_mean"] <= cal["bin_high"] + 1e-12)).all()
    assert cal.attrs["brier"] == pytest.approx(np.mean((p - y) ** 2))
    ece = float(np.sum(cal["n"] * np.abs(cal["frac_pos"] - cal["p_mean"])) / len(y))
    assert cal.attrs["ece"] == pytest.approx(ece)


def test_calibration_of_a_perfect_forecaster_and_edge_cases():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)  # outcomes drawn with the forecast probability
    cal = calibration_table(y, p, n_bins=10)
    assert cal.attrs["ece"] < 0.02
    one = calibration_table(np.ones(10, int), np.linspace(0.05, 0.95, 10), n_bins=5)
    assert (one["frac_pos"] == 1.0).all() and one["n"].sum() == 10
    empty = calibration_table(np.array([], int), np.array([]))
    assert empty.empty and empty.attrs["brier"] is None
    with pytest.raises(UnknownNameError):
        calibration_table(np.array([0, 1]), np.array([0.2, 0.8]), strategy="isotonic")


def test_evaluate_predictions_and_tables(table):
    thr = {"MI": 0.55, "CD": 0.5}
    ev = evaluate_predictions(table, ("MI", "CD", "HYP"), thr, split="test", n_boot=200, seed=3)
    assert list(ev) == ["MI", "CD"]  # no p_HYP column: left out
    for h in ("MI", "CD"):
        ids, y, p = head_arrays(table, h, "test")
        e = ev[h]
        assert e["metrics"] == binary_metrics(y, p, thr[h], 200, 3)
        assert e["metrics"]["auc"] == pytest.approx(roc_auc_score(y, p))
        op, c = e["operating_point"], e["metrics"]["confusion"]
        assert op["tpr"] == e["metrics"]["sensitivity"] and op["fpr"] == pytest.approx(c["fp"] / (c["fp"] + c["tn"]))
        np.testing.assert_array_equal(e["ecg_id"], ids)
    assert ev["MI"]["metrics"]["auc"] > 0.75 > ev["CD"]["metrics"]["auc"]

    summary = {"heads": {"MI": {"val_auc": 0.9, "test_dagger": 0.8, "test_auc_ci": [0.7, 0.85]}}}
    m = metrics_table(ev, summary).set_index("head")
    assert m.loc["MI", "val_auc"] == 0.9 and m.loc["MI", "test_dagger_ci_high"] == 0.85
    assert m.loc["CD", "val_auc"] is None or pd.isna(m.loc["CD", "val_auc"])
    assert m.loc["MI", "n"] == ev["MI"]["metrics"]["n"] and m.loc["MI", "brier"] == ev["MI"]["calibration"].attrs["brier"]
    cal = calibration_long(ev)
    assert list(cal.columns[:2]) == ["head", "bin_low"] and cal.groupby("head")["n"].sum().to_dict() == {
        h: ev[h]["metrics"]["n"] for h in ("MI", "CD")}
    scores = score_table(ev)
    mi = scores[scores["head"] == "MI"]
    assert (mi["decision"] == (mi["probability"] >= 0.55)).all() and len(mi) == ev["MI"]["metrics"]["n"]


def _write_run(folder, heads: dict, model: str = "cnn1d") -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"run_id": folder.name, "model": {"name": model}}))
    if heads is not None:
        (folder / "summary.json").write_text(json.dumps({"run_id": folder.name, "model": model, "heads": heads}))


def test_runs_comparison_and_wide(tmp_path):
    _write_run(tmp_path / "a", {"MI": {"val_auc": 0.9, "test_dagger": 0.85, "test_auc_ci": [0.8, 0.9]},
                                "CD": {"val_auc": 0.7, "test_dagger": 0.65}})
    _write_run(tmp_path / "b", {"MI": {"val_auc": 0.8, "test_dagger": 0.75}}, model="leadwise")
    _write_run(tmp_path / "training", None)  # no summary yet
    long = runs_comparison({"A": tmp_path / "a", "B": tmp_path / "b", "T": tmp_path / "training"})
    assert len(long) == 4 and long.loc[long["run"] == "T", "head"].isna().all()
    row = long[(long["run"] == "A") & (long["head"] == "MI")].iloc[0]
    assert row["test_ci_low"] == 0.8 and row["model"] == "cnn1d"
    wide = runs_wide(long).set_index("run")
    assert list(wide.index) == ["A", "B"]
    assert list(wide.columns) == ["model", "MI Val AUC", "MI Test†", "CD Val AUC", "CD Test†"]
    assert wide.loc["B", "MI Test†"] == 0.75 and pd.isna(wide.loc["B", "CD Val AUC"])
    assert wide.loc["B", "model"] == "leadwise"
    (tmp_path / "a" / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        runs_comparison({"A": tmp_path / "a"})


def test_xai_out_dir_and_cached_summary(tmp_path):
    root = tmp_path / "run" / "xai"
    assert xai_out_dir(root, "fp1", "fp1") == root  # where `python -m xand xai` writes
    assert xai_out_dir(root, "fp2", "fp1") == root / "fp2"  # another dataset
    assert xai_out_dir(root, "fp1", "fp1", 20) == root / "first20"  # a subset never passes for the whole
    assert load_xai_summary(root, "test", "ig") is None
    root.mkdir(parents=True)
    summary = pd.DataFrame([{"head": "MI", "n": 3, "n_positive": 4, "n_skipped": 1, "pointing_game_mean": 2 / 3,
                             "pointing_game_ci_low": 0.2, "pointing_game_ci_high": 0.94,
                             "pointing_game_undefined": 0, "cas_mean": 0.5, "cas_ci_low": 0.4, "cas_ci_high": 0.6,
                             "chance_mean": 0.3}])
    summary.to_csv(root / "test_ig.csv", index=False)
    (root / "test_ig.json").write_text(json.dumps({"n_ecg": 4, "config": {"max_per_head": None}, "heads": []}))
    got = load_xai_summary(root, "test", "ig")
    assert got.attrs["n_ecg"] == 4 and "heads" not in got.attrs and got.attrs["out_dir"] == str(root)
    shown = xai_table(got).iloc[0]
    assert shown["n"] == 3 and shown["skipped"] == 1 and shown["chance"] == 0.3
    assert shown["Pointing Game"] == pytest.approx(2 / 3) and shown["CAS hi"] == 0.6
    assert "rank accuracy" not in shown.index  # a score the summary lacks is left out, not invented


# ------------------------------------------------------------------------------------------- figures

def test_figures_draw_what_the_data_say(table):
    ev = evaluate_predictions(table, HEADS, {"MI": 0.55, "CD": 0.5}, "all", n_boot=0)
    roc = roc_figure(ev)
    assert _fig_metas(roc) == ["chance", "roc:MI", "op:MI", "roc:CD", "op:CD"]
    tr = {t.meta: t for t in roc.data}
    np.testing.assert_array_equal(tr["roc:MI"].x, ev["MI"]["curves"]["fpr"])
    assert tr["op:MI"].y[0] == ev["MI"]["metrics"]["sensitivity"]
    assert f"AUC {ev['MI']['metrics']['auc']:.3f}" in tr["roc:MI"].name

    pr = pr_figure(ev)
    assert {"pr:MI", "prevalence:MI", "op:MI", "pr:CD"} <= set(_fig_metas(pr))
    prev = next(t for t in pr.data if t.meta == "prevalence:CD")
    assert prev.y[0] == pytest.approx(ev["CD"]["curves"]["prevalence"])

    cm = confusion_figure(ev)
    for t in cm.data:
        c = ev[t.meta.split(":")[1]]["metrics"]["confusion"]
        np.testing.assert_array_equal(np.asarray(t.customdata), [[c["tn"], c["fp"]], [c["fn"], c["tp"]]])

    cal = calibration_figure(ev)
    t = next(t for t in cal.data if t.meta == "cal:MI")
    np.testing.assert_allclose(t.x, ev["MI"]["calibration"]["p_mean"])

    hist = score_distribution_figure(ev, bins=10)
    for t in hist.data:
        _, head, cls = t.meta.split(":")
        y = ev[head]["y"]
        assert int(np.sum(t.customdata)) == int((y == (cls == "pos")).sum())
    assert len(hist.layout.shapes) == 2 and hist.layout.shapes[0].x0 == 0.55


def test_figures_survive_a_head_with_one_class():
    t = pd.DataFrame({"ecg_id": range(6), "split": "test", "MI": [0] * 6, "p_MI": np.linspace(0.1, 0.6, 6)})
    ev = evaluate_predictions(t, ("MI",), {"MI": 0.5}, "test", n_boot=10)
    assert ev["MI"]["metrics"]["auc"] is None
    assert _fig_metas(roc_figure(ev)) == ["chance"] and not pr_figure(ev).data
    assert len(confusion_figure(ev).data) == 1 and len(score_distribution_figure(ev).data) == 2


def test_runs_figure_bars(tmp_path):
    _write_run(tmp_path / "a", {"MI": {"val_auc": 0.9, "test_dagger": 0.85}, "CD": {"val_auc": 0.7,
                                                                                   "test_dagger": None}})
    fig = runs_figure(runs_comparison({"A": tmp_path / "a"}))
    assert _fig_metas(fig) == ["run:A:val_auc", "run:A:test_dagger"]
    assert list(fig.data[0].x) == ["MI", "CD"] and list(fig.data[1].y) == [0.85, None]
