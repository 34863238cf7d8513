"""Training: focal loss, atomic save, checkpoint selection (Test†), resume after kill -9, load_run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from xand.constants import HEADS, SUPERCLASSES
from xand.errors import UnknownNameError, XandError
from xand.training import augment, checkpoint, losses, tracking
from xand.training import trainer as training
from xand.training.checkpoint import atomic_save
from xand.training.config import TrainConfig
from xand.training.losses import focal_loss
from xand.training.predictor import load_run
from xand.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
#: tiny, fast model options for every training test
TINY = {"width": 0.125, "hidden": 16}


def write_fake_prepared(root: Path, n: int = 200, t: int = 1000, seed: int = 0) -> Path:
    """A prepared-set folder in the ``xand.data.prepare`` layout with a learnable signal.

    Positives of head k carry a bump in lead k; splits 70/15/15 %; a few excluded labels.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    x = rng.normal(0, 0.1, size=(n, 12, t)).astype(np.float32)
    labels = (rng.random((n, len(HEADS))) < 0.35).astype(np.int64)
    bump = np.exp(-0.5 * ((np.arange(t) - t / 2) / 15) ** 2).astype(np.float32)
    for k in range(len(HEADS)):
        x[labels[:, k] == 1, k] += 1.5 * bump
    status = labels.copy()
    status[rng.random((n, len(HEADS))) < 0.05] = -1
    split = np.array(["train"] * n, dtype=object)
    split[int(0.7 * n):int(0.85 * n)] = "val"
    split[int(0.85 * n):] = "test"
    index = pd.DataFrame({"ecg_id": np.arange(1, n + 1), **{h: status[:, k] for k, h in enumerate(HEADS)},
                          "sc_NORM": (labels.sum(1) == 0).astype(int),
                          **{f"sc_{h}": labels[:, k] for k, h in enumerate(HEADS)},
                          "patient_id": np.arange(n), "split": split, "strat_fold": 1,
                          "device": np.where(rng.random(n) < 0.5, "A", "B"), "device_code": 0,
                          "sex": rng.integers(0, 2, n), "age": 60, "report": ""})
    index["device_code"] = (index["device"] == "B").astype(int)
    np.save(root / "signals.npy", x)
    index.to_csv(root / "index.csv", index=False)
    meta = {"complete": True, "fs": 100, "fingerprint": f"fake{seed}-{n}", "devices": ["A", "B"],
            "config": {"fs": 100, "bandpass": None, "baseline_removal": False, "global_zscore": True,
                       "per_lead": "zscore"}}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module")
def fake_prepared(tmp_path_factory):
    from xand.data.prepare import Prepared

    return Prepared(write_fake_prepared(tmp_path_factory.mktemp("prep") / "set"))


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(model="leadwise", model_kwargs=dict(TINY), heads=("MI",), epochs=2, batch_size=32,
                bootstrap=50, num_threads=1, patience=0)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------------ loss

def test_focal_loss_matches_hand_computed_value():
    logits = torch.tensor([2.0, -1.0])
    y = torch.tensor([1.0, 1.0])
    p = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    expected = np.mean([-(1 - p[0]) ** 2 * np.log(p[0]), -(1 - p[1]) ** 2 * np.log(p[1])])
    assert float(focal_loss(logits, y, gamma=2.0)) == pytest.approx(expected, rel=1e-6)
    # alpha weights positives by alpha, negatives by 1 - alpha
    neg = focal_loss(torch.tensor([0.0]), torch.tensor([0.0]), gamma=2.0, alpha=0.25)
    assert float(neg) == pytest.approx(0.75 * 0.25 * np.log(2), rel=1e-6)


def test_focal_loss_reduces_to_bce_at_gamma_zero():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 1, generator=g) * 3
    y = (torch.rand(50, 1, generator=g) < 0.3).float()
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), F.binary_cross_entropy_with_logits(logits, y))
    assert float(focal_loss(logits, y, gamma=2.0)) < float(F.binary_cross_entropy_with_logits(logits, y))


def test_config_rejects_unknown_names():
    with pytest.raises(UnknownNameError, match="leadwise"):
        TrainConfig(model="nope")
    with pytest.raises(UnknownNameError, match="focal"):
        TrainConfig(loss="hinge")
    with pytest.raises(UnknownNameError, match="MI"):
        TrainConfig(heads=("AFIB",))


def test_config_round_trips_through_json():
    cfg = tiny_cfg(heads=("MI", "CD"), augment=True)
    again = TrainConfig.from_dict(json.loads(json.dumps(__import__("dataclasses").asdict(cfg))))
    assert again == cfg


# ---------------------------------------------------------------------------------------- augmentation

def test_augmentation_is_batched_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.randn(8, 12, 1000)
    cfg = TrainConfig(augment=True)
    y = augment.augment_batch(x, cfg, fs=100.0)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(x, y)
    only_shift = TrainConfig(augment=True, aug_noise=0, aug_scale=0, aug_wander=0, aug_shift=0.1)
    z = augment.augment_batch(x, only_shift, fs=100.0)
    # a circular shift keeps each lead's values (sorted) unchanged
    assert torch.allclose(z.sort(-1).values, x.sort(-1).values)


# ------------------------------------------------------------------------------------------ atomic save

def test_atomic_save_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)
    assert torch.load(path)["epoch"] == 1

    def boom(obj, fh):  # a crash in the middle of writing
        fh.write(b"partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(training.torch, "save", boom)
    with pytest.raises(RuntimeError):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1  # the old complete file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".pt")] == ["last.pt"]


# ------------------------------------------------------------------------------------------- train

def test_train_writes_run_folder_and_load_run_matches(fake_prepared, tmp_path):
    cfg = tiny_cfg(heads=("MI", "STTC"), epochs=2)
    run = train(fake_prepared, cfg, tmp_path / "runs")
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["fingerprint"] == fake_prepared.fingerprint
    assert config["preprocess"]["per_lead"] == "zscore"
    for head in ("MI", "STTC"):
        lines = [json.loads(line) for line in (run / head / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in lines] == [0, 1]
        assert {"train_loss", "val_loss", "val_auc", "test_auc", "lr", "ecg_per_s", "elapsed"} <= set(lines[0])
        s = json.loads((run / head / "summary.json").read_text())["heads"][head]
        assert 0 <= s["threshold"] <= 1 and set(s["confusion"]) == {"tn", "fp", "fn", "tp"}
        assert s["test_auc_ci"][0] <= s["test_dagger"] <= s["test_auc_ci"][1] or s["test_dagger"] is not None
        assert (run / head / "best.pt").is_file() and (run / head / "last.pt").is_file()
    top = json.loads((run / "summary.json").read_text())
    assert set(top["heads"]) == {"MI", "STTC"} and top["code_version"].startswith("0.")

    pred = load_run(run)
    assert pred.heads == ("MI", "STTC") and pred.target("MI") == 0
    with pytest.raises(UnknownNameError):
        pred.model("HYP")
    rows = fake_prepared.split_indices("test")[:10]
    ecg = np.asarray(fake_prepared.signals[rows])
    probs = pred.predict_proba(ecg, fs=100)
    # the in-memory model from best.pt on training's normalisation gives the same probabilities
    ck = torch.load(run / "MI" / "best.pt", weights_only=True)
    from xand.models.networks import create_model
    from xand.data.preprocess import normalize

    model = create_model(ck["model_name"], **ck["model_kwargs"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    with torch.no_grad():
        logit = model(normalize(torch.from_numpy(ecg), fake_prepared.cfg))[:, 0].double()
    # calibrated by default: the temperature fitted on validation at training time, in the summary
    t = json.loads((run / "MI" / "summary.json").read_text())["heads"]["MI"]["calibration"]["temperature"]
    assert pred.temperature("MI") == t and 0.05 < t < 20
    np.testing.assert_allclose(probs["MI"], torch.sigmoid(logit / t).numpy(), rtol=1e-5, atol=1e-6)
    raw = load_run(run, calibrated=False)
    np.testing.assert_allclose(raw.predict_proba(ecg, fs=100)["MI"], torch.sigmoid(logit).numpy(), rtol=1e-5,
                               atol=1e-6)
    # the decisions do not change: the threshold moves with the probabilities
    thr_raw = raw.threshold("MI")
    assert ((probs["MI"] >= pred.threshold("MI")) == (torch.sigmoid(logit).numpy() >= thr_raw)).all()
    x1 = pred.prepare_input(ecg[0], fs=100)
    assert x1.shape == (1, 12, 1000)
    # a 500 Hz, 12 s input is resampled and cut to the training length
    from xand.data.preprocess import resample

    long = np.concatenate([resample(ecg[:2], 100, 500), np.zeros((2, 12, 1000), np.float32)], axis=-1)
    assert pred.prepare_batch(long, fs=500).shape == (2, 12, 1000)
    assert raw.threshold("MI") == pytest.approx(json.loads((run / "MI" / "summary.json").read_text())
                                                 ["heads"]["MI"]["threshold"])


def test_multilabel_baseline_trains_one_model_for_all_heads(fake_prepared, tmp_path):
    cfg = tiny_cfg(model="multilabel", heads=HEADS, epochs=1)
    run = train(fake_prepared, cfg, tmp_path / "runs")
    summ = json.loads((run / "multilabel" / "summary.json").read_text())
    assert set(summ["heads"]) == set(HEADS)
    pred = load_run(run)
    assert pred.model("MI") is pred.model("HYP")
    assert pred.target("MI") == SUPERCLASSES.index("MI")
    rec = json.loads((run / "multilabel" / "metrics.jsonl").read_text().splitlines()[0])
    assert set(rec["val_auc_heads"]) == set(HEADS)


def test_test_dagger_is_test_auc_at_best_validation_epoch(fake_prepared, tmp_path, monkeypatch):
    # scripted AUC sequence: per epoch val then test; best val at epoch 1, best test at epoch 3
    val = [0.60, 0.90, 0.70, 0.80]
    test = [0.55, 0.65, 0.75, 0.95]
    calls = iter([v for pair in zip(val, test) for v in pair])
    monkeypatch.setattr(training, "auc_score", lambda y, p: next(calls))
    run = train(fake_prepared, tiny_cfg(epochs=4), tmp_path / "runs")
    s = json.loads((run / "MI" / "summary.json").read_text())
    assert s["best_epoch"] == 1
    assert s["heads"]["MI"]["val_auc"] == 0.90
    assert s["heads"]["MI"]["test_dagger"] == 0.65  # not the best test AUC (0.95) nor the last one
    assert torch.load(run / "MI" / "best.pt", weights_only=True)["epoch"] == 1


def test_early_stopping_on_validation_auc(fake_prepared, tmp_path, monkeypatch):
    vals = iter([0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5] * 2)
    monkeypatch.setattr(training, "auc_score", lambda y, p: next(vals))
    run = train(fake_prepared, tiny_cfg(epochs=8, patience=2), tmp_path / "runs")
    s = json.loads((run / "MI" / "summary.json").read_text())
    assert s["stopped_early"] and s["epochs_run"] == 3 and s["best_epoch"] == 0


def test_mlflow_requested_but_missing_gives_clear_error(fake_prepared, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *a, **kw):
        if name == "mlflow":
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(XandError, match="mlflow"):
        train(fake_prepared, tiny_cfg(mlflow=True), tmp_path / "runs")


def test_mlflow_logs_params_metrics_and_summary_to_a_local_store(fake_prepared, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    run = train(fake_prepared, tiny_cfg(epochs=2, mlflow=True), tmp_path / "runs")
    client = mlflow.MlflowClient(tracking_uri=tracking.default_mlflow_uri(tmp_path / "runs"))
    exp = client.get_experiment_by_name("xand")
    found = client.search_runs([exp.experiment_id])
    assert [r.info.run_name for r in found] == [run.name] and found[0].info.status == "FINISHED"
    logged = found[0]
    assert logged.data.params["model"] == "leadwise" and logged.data.params["fingerprint"] == fake_prepared.fingerprint
    history = client.get_metric_history(logged.info.run_id, next(k for k in logged.data.metrics if "val_auc" in k))
    assert len(history) == 2  # one point per epoch
    saved = json.loads((run / "MI" / "metrics.jsonl").read_text().splitlines()[-1])
    assert history[-1].value == pytest.approx(saved["val_auc"])


_KILL_SCRIPT = """
import sys, time
from xand.data.prepare import Prepared
from xand.training.config import TrainConfig
from xand.training.trainer import train
cfg = TrainConfig(**__import__("json").loads(sys.argv[3]))
def slow(unit, rec):
    time.sleep(1.0)  # leave time for the parent to kill us between epochs
train(Prepared(sys.argv[1]), cfg, sys.argv[2], progress=slow)
"""


@pytest.mark.slow
def test_resume_after_kill_continues_and_matches_uninterrupted(fake_prepared, tmp_path):
    import dataclasses

    cfg = tiny_cfg(epochs=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(fake_prepared.root), str(tmp_path / "runs"),
                             json.dumps(dataclasses.asdict(cfg))], env=env)
    deadline = time.time() + 120
    last = None
    while time.time() < deadline and last is None:
        found = list((tmp_path / "runs").glob("*/MI/last.pt"))
        last = found[0] if found else None
        time.sleep(0.02)
    assert last is not None, "training subprocess never wrote last.pt"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = last.parents[1]
    done_before = torch.load(last, weights_only=True)["epoch"]
    assert done_before < cfg.epochs - 1, "killed too late to test resuming"
    assert not (run / "MI" / "summary.json").exists()

    train(fake_prepared, resume=run)
    lines = [json.loads(line) for line in (run / "MI" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(cfg.epochs))
    assert (run / "summary.json").is_file()

    ref = train(fake_prepared, cfg, tmp_path / "ref")
    a = torch.load(run / "MI" / "last.pt", weights_only=True)
    b = torch.load(ref / "MI" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == cfg.epochs - 1
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5)
    ref_lines = [json.loads(line) for line in (ref / "MI" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_auc"] for r in lines] == pytest.approx([r["val_auc"] for r in ref_lines], abs=1e-6)


def test_resume_rejects_other_data(fake_prepared, tmp_path):
    from xand.errors import DataError
    from xand.data.prepare import Prepared

    run = train(fake_prepared, tiny_cfg(epochs=1), tmp_path / "runs")
    other = Prepared(write_fake_prepared(tmp_path / "other", n=60, seed=1))
    with pytest.raises(DataError, match="trained on data"):
        train(other, resume=run)


@pytest.mark.slow
def test_end_to_end_on_synthetic_set_learns(synth_dir, tmp_path):
    from xand.data.prepare import prepare

    prepared = prepare(synth_dir, cache_dir=tmp_path / "cache", progress=False)
    cfg = TrainConfig(model_kwargs={"width": 0.25}, heads=("CD",), epochs=3, bootstrap=100, patience=0)
    run = train(prepared, cfg, tmp_path / "runs")
    s = json.loads((run / "summary.json").read_text())["heads"]["CD"]
    assert s["val_auc"] is not None and s["test_dagger"] is not None
    assert s["n_train"] > 50


def test_benchmark_worker_reports_speed_and_memory():
    from xand.bench.train import _bench_worker

    r = _bench_worker({"label": "cnn1d", "model": "cnn1d", "kwargs": {}, "device": "cpu",
                                "batch_size": 8, "n_samples": 1000, "steps": 1, "min_seconds": 0.0,
                                "threads": 1})
    assert r["train_ecg_s"] > 0 and r["infer_ecg_s"] > 0 and r["train_gflop_per_ecg"] > 0
    assert r["peak_mem_mb"] >= 0


def test_head_without_validation_auc_is_selected_by_validation_loss(fake_prepared, tmp_path, monkeypatch):
    # a rare head whose validation split holds one class: AUC undefined every epoch -> lowest val loss
    monkeypatch.setattr(training, "auc_score", lambda y, p: None)
    run = train(fake_prepared, tiny_cfg(epochs=3), tmp_path / "runs")
    s = json.loads((run / "MI" / "summary.json").read_text())
    losses = [json.loads(line)["val_loss"] for line in (run / "MI" / "metrics.jsonl").read_text().splitlines()]
    assert s["selected_by"] == "val_loss" and s["val_auc"] is None
    assert s["best_epoch"] == int(np.argmin(losses))
    assert torch.load(run / "MI" / "best.pt", weights_only=True)["epoch"] == s["best_epoch"]
    assert "MI" in load_run(run).heads


def test_an_epoch_with_validation_auc_outranks_loss_selected_ones():
    best = {"epoch": 0, "val_auc": None, "test_auc": None, "val_loss": 0.1, "criterion": "val_loss"}
    assert training._improves({"val_auc": 0.51, "val_loss": 0.9}, best)
    best = {"epoch": 1, "val_auc": 0.8, "test_auc": 0.7, "val_loss": 0.3, "criterion": "val_auc"}
    assert not training._improves({"val_auc": None, "val_loss": 0.01}, best)
    assert not training._improves({"val_auc": 0.79, "val_loss": 0.01}, best)
    assert training._improves({"val_auc": 0.81, "val_loss": 0.9}, best)


# ------------------------------------------------------------------- devices: resume, bce, inference

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class _Interrupt(Exception):
    pass


def _interrupted_run(prepared, cfg, out: Path) -> Path:
    """A run stopped right after its first epoch (last.pt written, no summary), as after a kill."""
    def stop(unit, rec):
        raise _Interrupt

    with pytest.raises(_Interrupt):
        train(prepared, cfg, out, progress=stop)
    (run,) = [p.parent.parent for p in out.glob("*/*/last.pt")]
    assert not (run / "summary.json").exists()
    return run


@pytest.mark.parametrize("device", DEVICES)
def test_rng_states_from_a_checkpoint_loaded_on_any_device_restore(tmp_path, device):
    # last.pt loaded with map_location=<training device> puts the RNG ByteTensors there; torch.set_rng_state,
    # Generator.set_state and torch.cuda.set_rng_state only take CPU ByteTensors
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(3)
    atomic_save({"rng": checkpoint.rng_state(gen, dev)}, tmp_path / "last.pt")
    expect = (torch.rand(3), torch.randperm(10, generator=gen), np.random.rand())
    ck = torch.load(tmp_path / "last.pt", map_location=dev, weights_only=True)
    moved = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in ck["rng"].items()}
    gen2 = torch.Generator()
    checkpoint.set_rng_state(moved, gen2, dev)
    got = (torch.rand(3), torch.randperm(10, generator=gen2), np.random.rand())
    torch.testing.assert_close(got[0], expect[0])
    assert torch.equal(got[1], expect[1]) and got[2] == expect[2]


@pytest.mark.parametrize("device", DEVICES)
def test_resume_from_last_checkpoint_on_each_device(fake_prepared, tmp_path, monkeypatch, device):
    cfg = tiny_cfg(epochs=2, device=device)
    run = _interrupted_run(fake_prepared, cfg, tmp_path / "runs")
    loads = []
    real_load = torch.load

    def spy(f, *a, **kw):
        loads.append((Path(f).name, kw.get("map_location")))
        return real_load(f, *a, **kw)

    monkeypatch.setattr(torch, "load", spy)
    train(fake_prepared, resume=run)
    # the checkpoint is read onto the CPU whatever the training device (load_state_dict moves the tensors)
    assert ("last.pt", "cpu") in loads
    lines = [json.loads(line) for line in (run / "MI" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and (run / "summary.json").is_file()


def test_bce_loss_follows_the_logits_device():
    # pos_weight lives on the training device; the validation loss sees CPU logits. "meta" stands in for
    # "another device" on a machine without a GPU.
    cfg = tiny_cfg(loss="bce")
    loss_fn = losses.LOSSES["bce"](cfg, torch.tensor([3.0]))
    logits, y = torch.randn(5, 1, device="meta"), torch.ones(5, 1, device="meta")
    assert loss_fn(logits, y).device.type == "meta"
    assert focal_loss(logits, y, pos_weight=torch.tensor([3.0])).device.type == "meta"
    lc, yc = torch.tensor([[0.3], [-1.0]]), torch.tensor([[1.0], [0.0]])
    ref = F.binary_cross_entropy_with_logits(lc, yc, pos_weight=torch.tensor([3.0]))
    assert float(loss_fn(lc, yc)) == pytest.approx(float(ref))


def test_bce_training_end_to_end_on_the_synthetic_set(synth_dir, tmp_path):
    from xand.data.prepare import prepare

    prepared = prepare(synth_dir, cache_dir=tmp_path / "cache", progress=False)
    cfg = TrainConfig(model="cnn1d", model_kwargs={"width": 0.25}, heads=("CD",), epochs=2, loss="bce",
                      bootstrap=50, num_threads=1, patience=0, device="cpu")
    run = train(prepared, cfg, tmp_path / "runs")
    recs = [json.loads(line) for line in (run / "CD" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and all(np.isfinite(r["val_loss"]) and np.isfinite(r["train_loss"]) for r in recs)
    assert json.loads((run / "summary.json").read_text())["heads"]["CD"]["best_epoch"] >= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bce_training_on_cuda_validates(fake_prepared, tmp_path):
    run = train(fake_prepared, tiny_cfg(loss="bce", epochs=1, device="cuda"), tmp_path / "runs")
    rec = json.loads((run / "MI" / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(rec["val_loss"])


def _hand_made_run(root: Path, pcfg) -> Path:
    """A run folder for ``Predictor`` without training: config.json + one head's best.pt."""
    import dataclasses

    from xand.models.networks import create_model

    torch.manual_seed(0)
    kwargs = {"width": 0.125, "hidden": 16, "aux": False}
    model = create_model("leadwise", **kwargs)
    (root / "MI").mkdir(parents=True)
    cfg = tiny_cfg()
    (root / "config.json").write_text(json.dumps({
        "run_id": root.name, "train": dataclasses.asdict(cfg), "preprocess": dataclasses.asdict(pcfg),
        "model": {"name": "leadwise", "kwargs": kwargs, "multilabel": False, "leadwise": True},
        "data": {"fs": 100, "n_samples": 1000, "fingerprint": "hand"}}))
    torch.save({"model_name": "leadwise", "model_kwargs": kwargs, "state_dict": model.state_dict(),
                "out_index": {"MI": 0}}, root / "MI" / "best.pt")
    return root


def test_short_record_is_normalised_on_its_real_samples_then_padded(tmp_path):
    from xand.data.preprocess import PreprocessConfig, filter_ecg, normalize

    pcfg = PreprocessConfig(bandpass=(0.5, 40.0))
    pred = load_run(_hand_made_run(tmp_path / "run", pcfg))
    rng = np.random.default_rng(0)
    ecg7 = (np.sin(2 * np.pi * 1.2 * np.arange(700) / 100)[None] * rng.uniform(0.5, 2, (12, 1))
            + 0.3 + 0.05 * rng.normal(size=(12, 700))).astype(np.float32)  # 7 s, with a DC offset
    x = pred.prepare_input(ecg7, fs=100)[0].numpy()
    assert x.shape == (12, 1000)
    alone = normalize(filter_ecg(ecg7, 100, pcfg)[None].astype(np.float32), pcfg)[0]
    np.testing.assert_allclose(x[:, :700], alone, rtol=1e-4, atol=1e-5)
    assert np.all(x[:, 700:] == 0.0)  # padding: 0 in normalised units (each lead's mean)
    np.testing.assert_allclose(x[:, :700].std(axis=1), 1.0, rtol=1e-4)  # z-scored like a full record
    # a full-length record is unchanged by the padding rule
    ecg10 = np.tile(ecg7, (1, 2))[:, :1000]
    full = normalize(filter_ecg(ecg10, 100, pcfg)[None].astype(np.float32), pcfg)[0]
    np.testing.assert_allclose(pred.prepare_input(ecg10, fs=100)[0].numpy(), full, rtol=1e-4, atol=1e-5)


def test_cli_resume_uses_the_runs_own_preprocessing(synth_dir, tmp_path, capsys):
    from train.__main__ import main as train_main
    from xand.data.prepare import prepare
    from xand.data.preprocess import PreprocessConfig

    cache = tmp_path / "cache"
    pcfg = PreprocessConfig(bandpass=(0.5, 40.0), baseline_removal=True)
    prepared = prepare(synth_dir, cache_dir=cache, cfg=pcfg, progress=False)
    run = _interrupted_run(prepared, TrainConfig(model="cnn1d", model_kwargs={"width": 0.25}, heads=("CD",),
                                                 epochs=2, bootstrap=50, num_threads=1, patience=0,
                                                 device="cpu"), tmp_path / "runs")
    # no --bandpass / --baseline-removal repeated: the run's config.json supplies them
    rc = train_main(["--data", str(synth_dir), "--resume", str(run), "--cache-dir", str(cache),
                     "--no-progress", "--out", str(tmp_path / "unused")])
    assert rc == 0, capsys.readouterr().err
    assert (run / "summary.json").is_file()
    lines = (run / "CD" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    # contradicting flags are ignored with a note, not a fingerprint error
    capsys.readouterr()
    rc = train_main(["--data", str(synth_dir), "--resume", str(run), "--cache-dir", str(cache),
                     "--no-progress", "--bandpass", "1", "30", "--out", str(tmp_path / "unused")])
    assert rc == 0 and "ignoring bandpass" in capsys.readouterr().err


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(fake_prepared, tmp_path):
    """The hardening issue's probe: a best.pt whose pickle calls os.system inside load_run."""
    import os
    import pickle

    from xand.errors import DataError

    run = train(fake_prepared, tiny_cfg(epochs=1), tmp_path / "runs")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(run / "MI" / "best.pt", "wb") as fh:
        pickle.dump({"state_dict": Evil()}, fh)
    with pytest.raises(DataError, match="best.pt"):
        load_run(run).model("MI")
    assert not marker.exists()
    (run / "digests.json").unlink()  # a run from before digests: the weights_only load refuses it too
    with pytest.raises(DataError, match="not a plain checkpoint"):
        load_run(run).model("MI")
    assert not marker.exists()


def test_a_runs_files_are_checked_against_their_digests_before_loading(fake_prepared, tmp_path):
    import shutil

    from xand.errors import DataError

    run = train(fake_prepared, tiny_cfg(epochs=1), tmp_path / "runs")
    assert load_run(run).verified
    other = train(fake_prepared, tiny_cfg(epochs=1, seed=5), tmp_path / "other")
    shutil.copy(other / "MI" / "best.pt", run / "MI" / "best.pt")  # a valid checkpoint, but not this run's
    with pytest.raises(DataError, match=r"MI/best.pt: changed after the run was finished"):
        load_run(run)
    shutil.copy(other / "MI" / "best.pt", run / "MI" / "best.pt")
    (run / "digests.json").unlink()
    assert load_run(run).verified is False  # no digests (an earlier run): loads, unverified

def test_a_checkpoint_of_the_earlier_format_still_loads(tmp_path):
    """last.pt of earlier versions held numpy's RNG state as an array: still loadable, and restorable."""
    from xand.training.checkpoint import load_checkpoint, set_rng_state

    np.random.seed(7)
    import random

    old = {"rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                   "batch_order": torch.Generator().get_state()}}
    torch.save(old, tmp_path / "last.pt")
    ck = load_checkpoint(tmp_path / "last.pt")
    want = np.random.rand()
    np.random.seed(0)
    set_rng_state(ck["rng"], torch.Generator(), torch.device("cpu"))
    assert np.random.rand() == want
