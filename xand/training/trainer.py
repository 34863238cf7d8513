"""Training: one binary model per head (or the multi-label baseline), checkpointed, resumable, reported.

Design (why it is fast on a 2-core CPU and on a GPU alike):

* the prepared ``(N, 12, T)`` mV array goes to the device **once**, normalised once up front
  (``xand.data.preprocess.normalize``); a batch is an index tensor into it, so the hot loop has no per-item
  Python work, no DataLoader and no workers; augmentation (noise, amplitude scaling, baseline wander,
  time shift) is applied batched on the device;
* CUDA: ``torch.autocast`` (bf16 where supported, else fp16 with ``GradScaler``) and
  ``cudnn.benchmark``; CPU: ``torch.set_num_threads`` = all available cores;
* AdamW (Loshchilov & Hutter 2019) with linear warm-up then cosine decay (Loshchilov & Hutter 2017),
  focal loss (Lin et al. 2017, gamma 2) or positive-weighted BCE, early stopping on validation AUC.

Model selection: the checkpoint is the epoch of best **validation** AUC; test AUC is recorded every epoch
and the one reported, **Test†**, is the test AUC at that epoch (so test data never selects anything).

Run folder ``runs/<run-id>/`` (run-id = UTC timestamp + short hash of the config and data fingerprint)::

    config.json                 train config, model kwargs, preprocess config, data fingerprint, devices
    <HEAD>/metrics.jsonl        one line per epoch (losses, val/test AUC, lr, ECG/s, elapsed)
    <HEAD>/best.pt, last.pt     written atomically (tmp file + os.replace)
    <HEAD>/summary.json         val AUC, Test†, PR-AUC, sens/spec/F1 at the val-tuned threshold, CI, ...
    summary.json                all heads

(the multi-label baseline trains one unit, ``multilabel/``, whose summary holds every head).
``last.pt`` holds model, optimiser, scheduler, scaler, every RNG state, the epoch, the best so far and
all epoch records, so a run killed at any moment resumes (``resume=run_dir``) losing at most one epoch.

References
----------
Lin T.-Y. et al., Focal loss for dense object detection, ICCV 2017.
Loshchilov I., Hutter F., Decoupled weight decay regularization (AdamW), ICLR 2019; SGDR: stochastic
gradient descent with warm restarts (cosine schedule), ICLR 2017.
Strodthoff N. et al., Deep learning for ECG analysis: benchmarks and insights from PTB-XL, IEEE JBHI 2021.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xand.errors import DataError, XandError
from xand.metrics import auc_or_none, binary_metrics, tune_threshold
from xand.models.networks import create_model, n_parameters
from xand.training.augment import augment_batch
from xand.training.calibration import calibration_report
from xand.training.checkpoint import (
    atomic_save,
    atomic_write_text,
    code_version,
    load_checkpoint,
    rng_state,
    seed_all,
    set_rng_state,
    to_json,
)
from xand.training.config import TrainConfig
from xand.training.device import amp_dtype, setup_device, signals_to_device
from xand.training.losses import LOSSES
from xand.training.predictor import predict_logits, write_digests
from xand.training.tracking import (
    MlflowTracker,
    NullTracker,
    default_mlflow_uri,
    require_mlflow,
)
from xand.training.units import Unit, aux_targets, make_units


def auc_score(y: np.ndarray, p: np.ndarray) -> float | None:
    """Per-epoch ROC-AUC used for model selection (module-level so tests can script it)."""
    return auc_or_none(y, p)


def _dataset_identity(prepared) -> dict[str, Any]:
    """Which dataset a run learned from, recorded in its ``config.json``: the source folder, its content key
    (``xand.data.prepare.content_key``) and whether it is a synthetic set; ``{}`` when unknown."""
    from xand.data.prepare import content_key
    from xand.data.synth import is_synthetic

    src = (getattr(prepared, "meta", None) or {}).get("source")
    if not src or not Path(src).is_dir():
        return {}
    try:
        key = content_key(src)
    except XandError:
        key = None
    return {"source": str(src), "content_key": key, "synthetic": is_synthetic(src)}


def _run_id(cfg: TrainConfig, fingerprint: str) -> str:
    h = hashlib.sha1(json.dumps({"cfg": asdict(cfg), "data": fingerprint}, sort_keys=True,
                                default=str).encode()).hexdigest()[:8]
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{cfg.model}-{h}"  # RUN_NAME_PATTERN


def _lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f




class _Context:
    """What every unit of one run shares: data on the device, aux targets, device, AMP, tracker."""

    def __init__(self, prepared, cfg: TrainConfig, run_dir: Path, tracker: NullTracker,
                 progress: bool | Callable[[str, dict[str, Any]], None]):
        self.prepared, self.cfg, self.run_dir, self.tracker, self.progress = prepared, cfg, run_dir, tracker, progress
        self.device = setup_device(cfg)
        self.amp = amp_dtype(self.device, cfg.amp)
        self.fs = float(prepared.fs)
        self.x = signals_to_device(prepared.signals, self.device, prepared.cfg)
        dev, sex, self.devices = aux_targets(prepared)
        self.aux_dev = torch.as_tensor(dev, device=self.device)
        self.aux_sex = torch.as_tensor(sex, device=self.device)


def _model_kwargs(cfg: TrainConfig, n_devices: int) -> dict[str, Any]:
    return {**cfg.model_kwargs, "aux": cfg.aux, "n_devices": max(2, n_devices)}


def train(prepared, cfg: TrainConfig | None = None, out_dir: str | Path = "runs", resume: str | Path | None = None,
          progress: bool | Callable[[str, dict[str, Any]], None] = False, cache_dir: str | Path | None = None) -> Path:
    """Train every head of ``cfg`` on a prepared set and write the run folder.

    Parameters
    ----------
    prepared : ``xand.data.prepare.Prepared`` (or a PTB-XL folder path, prepared with default options)
    cfg : options (ignored when resuming: the run's own ``config.json`` is used)
    out_dir : parent folder of runs (``runs/``)
    resume : an existing run folder to continue (finished heads are kept, interrupted ones continue from
        their ``last.pt``)
    progress : True for tqdm bars, or a callback ``f(unit_name, epoch_record)``

    Returns
    -------
    The run folder ``out_dir/<run-id>``.
    """
    if isinstance(prepared, (str, Path)):
        from xand.data.prepare import prepare

        prepared = prepare(prepared, cache_dir=cache_dir, progress=bool(progress))
    if resume is not None:
        run_dir = Path(resume)
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise DataError(cfg_path, "run to resume has no config.json", "a run folder written by train()")
        saved = json.loads(cfg_path.read_text())
        cfg = TrainConfig.from_dict(saved["train"])
        if saved["data"]["fingerprint"] != prepared.fingerprint:
            raise DataError(run_dir, f"was trained on data {saved['data']['fingerprint']}",
                            f"the same prepared data (got {prepared.fingerprint})")
    else:
        cfg = cfg or TrainConfig()
        run_dir = Path(out_dir) / _run_id(cfg, prepared.fingerprint)
        run_dir.mkdir(parents=True, exist_ok=False)
    if cfg.mlflow:
        require_mlflow()
    seed_all(cfg.seed)
    tracker: NullTracker = NullTracker()
    if cfg.mlflow:
        tracker = MlflowTracker(cfg.mlflow_uri or default_mlflow_uri(out_dir), run_dir.name)
    try:
        ctx = _Context(prepared, cfg, run_dir, tracker, progress)
        probe = create_model(cfg.model, **_model_kwargs(cfg, len(ctx.devices)))
        multilabel = bool(getattr(probe, "multilabel", False))
        config = {
            "run_id": run_dir.name,
            "train": asdict(cfg),
            "model": {"name": cfg.model, "kwargs": _model_kwargs(cfg, len(ctx.devices)),
                      "n_parameters": n_parameters(probe), "multilabel": multilabel,
                      "leadwise": bool(getattr(probe, "leadwise", False))},
            "preprocess": asdict(prepared.cfg),
            "dataset": _dataset_identity(prepared),
            "data": {"fingerprint": prepared.fingerprint, "root": str(getattr(prepared, "root", "")),
                     "fs": int(prepared.fs), "n_samples": int(prepared.signals.shape[-1]),
                     "n_records": int(prepared.signals.shape[0]), "devices": ctx.devices},
            "device": str(ctx.device), "amp": str(ctx.amp).replace("torch.", "") if ctx.amp else None,
            "torch": torch.__version__, "code_version": code_version(),
        }
        if resume is None:
            atomic_write_text(run_dir / "config.json", to_json(config))
            tracker.log_params({**asdict(cfg), "fingerprint": prepared.fingerprint})
        del probe
        summaries = {}
        for unit in make_units(prepared, cfg, multilabel):
            summaries[unit.name] = _train_unit(ctx, unit, config)
        top = _aggregate(config, summaries)
        atomic_write_text(run_dir / "summary.json", to_json(top))
        write_digests(run_dir)
        tracker.log_artifact(run_dir / "summary.json")
    finally:
        tracker.close()
    return run_dir


def _aggregate(config: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    heads = {}
    for unit_summary in summaries.values():
        heads.update(unit_summary["heads"])
    return {"run_id": config["run_id"], "model": config["model"]["name"],
            "n_parameters": config["model"]["n_parameters"], "fingerprint": config["data"]["fingerprint"],
            "code_version": code_version(), "heads": heads,
            "units": {k: {kk: v[kk] for kk in ("best_epoch", "epochs_run", "stopped_early", "val_auc", "test_dagger",
                                               "seconds", "ecg_per_s")} for k, v in summaries.items()}}


def _train_unit(ctx: _Context, unit: Unit, config: dict[str, Any]) -> dict[str, Any]:
    cfg, device = ctx.cfg, ctx.device
    udir = ctx.run_dir / unit.name
    udir.mkdir(parents=True, exist_ok=True)
    if (udir / "summary.json").is_file():
        return json.loads((udir / "summary.json").read_text())
    kwargs = config["model"]["kwargs"]
    model = create_model(cfg.model, **kwargs).to(device)
    n_train = len(unit.train_rows)
    if n_train < 2:
        raise DataError(getattr(ctx.prepared, "root", None), f"{unit.name}: {n_train} training records",
                        "at least 2")
    steps_per_epoch = max(1, n_train // cfg.batch_size + (n_train % cfg.batch_size >= 2))
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(int(cfg.warmup_epochs * steps_per_epoch), total))
    scaler = torch.amp.GradScaler(device.type, enabled=ctx.amp == torch.float16)
    pos = unit.train_y.sum(0)
    pos_weight = torch.as_tensor((n_train - pos) / np.maximum(pos, 1), dtype=torch.float32, device=device)
    loss_fn = LOSSES.create(cfg.loss, cfg, pos_weight)
    gen = torch.Generator().manual_seed(cfg.seed)

    rows_t = torch.as_tensor(unit.train_rows, device=device)
    y_t = torch.as_tensor(unit.train_y, device=device)
    records: list[dict[str, Any]] = []
    best = {"epoch": -1, "val_auc": -math.inf, "test_auc": None}
    start_epoch, elapsed0 = 0, 0.0
    last_path, best_path = udir / "last.pt", udir / "best.pt"
    if last_path.is_file():
        # loaded on the CPU: load_state_dict copies model / optimiser tensors to the device, and the RNG
        # states must stay CPU ByteTensors (torch.set_rng_state & co. reject CUDA tensors)
        ck = load_checkpoint(last_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"], gen, device)
        records, best = ck["records"], ck["best"]
        start_epoch, elapsed0 = ck["epoch"] + 1, ck["elapsed"]
        # last.pt is written before best.pt and metrics.jsonl: repair whichever a kill left behind
        if best["epoch"] == ck["epoch"]:
            on_disk = load_checkpoint(best_path) if best_path.is_file() else None
            if on_disk is None or on_disk["epoch"] != best["epoch"]:
                atomic_save(_best_payload(cfg, kwargs, unit, ck["model"], best), best_path)
        atomic_write_text(udir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    bar = None
    if ctx.progress is True:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"{cfg.model}/{unit.name}", unit="ep", leave=True)
    t_start = time.perf_counter()
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.patience and best["epoch"] >= 0 and epoch - best["epoch"] > cfg.patience:
            stopped_early = True
            break
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=gen).to(device)
        loss_sum, seen = torch.zeros((), device=device), 0  # summed on the device: no per-step host sync
        for s in range(steps_per_epoch):
            pick = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            rows = rows_t[pick]
            xb, yb = ctx.x[rows], y_t[pick]
            if cfg.augment:
                xb = augment_batch(xb, cfg, ctx.fs)
            with torch.autocast(device_type=device.type, dtype=ctx.amp or torch.float32, enabled=ctx.amp is not None):
                if cfg.aux and getattr(model, "aux", False):
                    logits, aux = model.forward_aux(xb)
                else:
                    logits, aux = model(xb), {}
            loss = loss_fn(logits.float(), yb)
            if aux:
                loss = loss + _aux_loss(aux, ctx.aux_dev[rows], ctx.aux_sex[rows], cfg.aux_weights)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            loss_sum += loss.detach() * len(pick)
            seen += len(pick)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_s = time.perf_counter() - t0
        rec = _evaluate_epoch(ctx, model, unit, loss_fn)
        rec = {"epoch": epoch, "train_loss": float(loss_sum) / max(seen, 1), **rec, "lr": opt.param_groups[0]["lr"],
               "ecg_per_s": seen / max(train_s, 1e-9), "train_seconds": train_s,
               "epoch_seconds": time.perf_counter() - t0,
               "elapsed": elapsed0 + time.perf_counter() - t_start}
        improved = _improves(rec, best)
        if improved:
            best = {"epoch": epoch, "val_auc": rec["val_auc"], "test_auc": rec["test_auc"],
                    "val_loss": rec.get("val_loss"), "criterion": "val_auc" if rec["val_auc"] is not None else "val_loss"}
        rec["best_epoch"] = best["epoch"]
        records.append(rec)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        atomic_save({"model": state, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "scaler": scaler.state_dict(), "rng": rng_state(gen, device), "epoch": epoch,
                     "best": best, "records": records, "elapsed": rec["elapsed"],
                     "model_name": cfg.model, "model_kwargs": kwargs, "unit": unit.name}, last_path)
        if improved:
            atomic_save(_best_payload(cfg, kwargs, unit, state, best), best_path)
        with open(udir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        ctx.tracker.log_metrics({f"{unit.name}/{k}": v for k, v in rec.items()
                                 if isinstance(v, (int, float)) and k != "epoch"}, step=epoch)
        if bar is not None:
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val=_fmt(rec["val_auc"]), test=_fmt(rec["test_auc"]),
                            ecg_s=f"{rec['ecg_per_s']:.0f}")
            bar.update(1)
        elif callable(ctx.progress):
            ctx.progress(unit.name, rec)
    if bar is not None:
        bar.close()
    summary = _summarise(ctx, unit, model, records, best, stopped_early, config)
    atomic_write_text(udir / "summary.json", to_json(summary))
    return summary


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _best_payload(cfg: TrainConfig, kwargs: dict[str, Any], unit: Unit, state: dict[str, Tensor],
                  best: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": cfg.model, "model_kwargs": kwargs, "state_dict": state, "epoch": best["epoch"],
            "val_auc": best["val_auc"], "test_auc": best["test_auc"], "unit": unit.name,
            "heads": list(unit.heads), "out_index": unit.out_index}


def _aux_loss(aux: dict[str, Tensor], dev: Tensor, sex: Tensor, weights: dict[str, float]) -> Tensor:
    loss = torch.zeros((), device=dev.device)
    if "device" in aux and weights.get("device"):
        ok = dev >= 0
        if ok.any():
            loss = loss + weights["device"] * F.cross_entropy(aux["device"].float()[ok], dev[ok])
    if "sex" in aux and weights.get("sex"):
        ok = sex >= 0
        if ok.any():
            loss = loss + weights["sex"] * F.binary_cross_entropy_with_logits(aux["sex"].float()[ok, 0], sex[ok])
    return loss


def _evaluate_epoch(ctx: _Context, model: nn.Module, unit: Unit, loss_fn) -> dict[str, Any]:
    """Validation loss and AUC, test AUC (always val before test, per head in unit order)."""
    out: dict[str, Any] = {}
    per_head: dict[str, dict[str, float | None]] = {"val": {}, "test": {}}
    for split in ("val", "test"):
        logits = predict_logits(model, ctx.x, unit.loss_rows[split], ctx.cfg.eval_batch_size, ctx.amp)
        if split == "val":
            y = torch.as_tensor(unit.loss_y[split])
            out["val_loss"] = float(loss_fn(logits, y)) if len(y) else None
        probs = torch.sigmoid(logits).numpy()
        for h in unit.heads:
            posn, y = unit.eval_pos[split][h]
            per_head[split][h] = auc_score(y, probs[posn, unit.out_index[h]])
    for split in ("val", "test"):
        vals = [v for v in per_head[split].values() if v is not None]
        out[f"{split}_auc"] = float(np.mean(vals)) if vals else None
    if len(unit.heads) > 1:
        out["val_auc_heads"], out["test_auc_heads"] = per_head["val"], per_head["test"]
    return out


def _criterion(best: dict[str, Any]) -> str | None:
    if best.get("criterion"):
        return best["criterion"]
    v = best.get("val_auc")
    return "val_auc" if best["epoch"] >= 0 and v is not None and math.isfinite(v) else None


def _improves(rec: dict[str, Any], best: dict[str, Any]) -> bool:
    """Model selection: best validation AUC. When the validation split holds one class only (AUC
    undefined, e.g. a rare head in a small dataset), the lowest validation loss selects instead, so the
    head still gets a ``best.pt``; any epoch with a defined AUC outranks loss-selected ones."""
    crit = _criterion(best)
    if rec["val_auc"] is not None:
        return crit != "val_auc" or rec["val_auc"] > best["val_auc"]
    if crit == "val_auc" or rec.get("val_loss") is None or not math.isfinite(rec["val_loss"]):
        return False
    return crit is None or rec["val_loss"] < best.get("val_loss", math.inf)


def _summarise(ctx: _Context, unit: Unit, model: nn.Module, records: list[dict[str, Any]], best: dict[str, Any],
               stopped_early: bool, config: dict[str, Any]) -> dict[str, Any]:
    cfg = ctx.cfg
    best_path = ctx.run_dir / unit.name / "best.pt"
    if best_path.is_file():
        ck = load_checkpoint(best_path, map_location=ctx.device)
        model.load_state_dict(ck["state_dict"])
    heads: dict[str, Any] = {}
    logits = {s: predict_logits(model, ctx.x, unit.loss_rows[s], cfg.eval_batch_size, ctx.amp).float().numpy()
              for s in ("val", "test")}
    probs = {s: torch.sigmoid(torch.from_numpy(v)).numpy() for s, v in logits.items()}
    best_rec = next((r for r in records if r["epoch"] == best["epoch"]), None)
    for h in unit.heads:
        k = unit.out_index[h]
        vpos, vy = unit.eval_pos["val"][h]
        tpos, ty = unit.eval_pos["test"][h]
        pv, pt = probs["val"][vpos, k], probs["test"][tpos, k]
        thr = tune_threshold(vy, pv, cfg.threshold)
        m = binary_metrics(ty, pt, thr, cfg.bootstrap, cfg.seed)
        if best_rec is not None and "val_auc_heads" in best_rec:
            val_auc, dagger = best_rec["val_auc_heads"].get(h), best_rec["test_auc_heads"].get(h)
        else:
            val_auc, dagger = best["val_auc"], best["test_auc"]
        heads[h] = {"val_auc": val_auc, "test_dagger": dagger, "test_auc_ci": m["auc_ci"], "pr_auc": m["pr_auc"],
                    "threshold": thr, "threshold_method": cfg.threshold, "sensitivity": m["sensitivity"],
                    "specificity": m["specificity"], "ppv": m["ppv"], "f1": m["f1"], "confusion": m["confusion"],
                    "test_auc_best_checkpoint": m["auc"], "n_train": int((unit.train_y[:, k] >= 0).sum()),
                    "n_train_pos": int(unit.train_y[:, k].sum()) if len(unit.heads) == 1 else None,
                    "n_val": int(len(vy)), "n_val_pos": int(vy.sum()), "n_test": int(len(ty)),
                    "n_test_pos": int(ty.sum()), "best_epoch": best["epoch"], "unit": unit.name,
                    "output_index": k,
                    "calibration": calibration_report(logits["val"][vpos, k], vy, logits["test"][tpos, k], ty)}
    return {"unit": unit.name, "model": cfg.model, "heads": heads, "best_epoch": best["epoch"],
            "epochs_run": len(records), "stopped_early": stopped_early,
            "selected_by": _criterion(best),
            "val_auc": best["val_auc"] if best["val_auc"] is not None and math.isfinite(best["val_auc"]) else None,
            "test_dagger": best["test_auc"], "seconds": records[-1]["elapsed"] if records else 0.0,
            "ecg_per_s": float(np.median([r["ecg_per_s"] for r in records])) if records else None,
            "fingerprint": config["data"]["fingerprint"], "code_version": code_version(),
            "device": str(ctx.device), "bootstrap": cfg.bootstrap, "seed": cfg.seed}
