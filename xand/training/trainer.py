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

import dataclasses
import hashlib
import json
import math
import os
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import xand
from xand import fileio
from xand.constants import HEADS, N_LEADS, SUPERCLASSES
from xand.data.preprocess import PreprocessConfig, filter_ecg, normalize, resample
from xand.errors import DataError, UnknownNameError, XandError
from xand.metrics import auc_or_none, binary_metrics, tune_threshold
from xand.training.calibration import apply_temperature, calibration_report, threshold_after
from xand.models.networks import MODELS, create_model, n_parameters
from xand.registry import Registry

# --------------------------------------------------------------------------------------------- config

@dataclass
class TrainConfig:
    """Training options (all JSON-serialisable; saved in ``config.json``).

    Attributes
    ----------
    model, model_kwargs : registry name (``xand.models.networks.list_models()``) and its options
    heads : heads to train (one binary model each; the multi-label model trains them together)
    epochs, batch_size, eval_batch_size : loop sizes
    lr, weight_decay, warmup_epochs : AdamW with linear warm-up then cosine decay to 0
    loss : ``"focal"`` (Lin et al. 2017) or ``"bce"`` (positive-weighted BCE, weight = n_neg / n_pos)
    focal_gamma, focal_alpha : focal parameters (gamma 0 gives plain BCE; alpha None = no class weight)
    patience : early stopping after this many epochs without a better validation AUC (0 = off)
    aux, aux_weights : device / sex auxiliary heads and their loss weights
    augment, aug_* : batched on-device augmentation in normalised units: Gaussian noise std, amplitude
        scale (+-), baseline wander amplitude (0.05-0.5 Hz sinusoid), circular time shift (fraction of T)
    device : ``"auto"`` (cuda when available, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    amp : ``"auto"`` (bf16 on cuda when supported, else fp16; off on cpu), ``"off"``, ``"fp16"``, ``"bf16"``
    seed, num_threads : reproducibility; CPU threads (None = every available core)
    threshold : validation threshold rule (``"youden"`` or ``"f1"``, see ``xand.metrics``)
    bootstrap : resamples for the test-AUC CI
    mlflow, mlflow_uri : also log to MLflow (local SQLite store ``<out>/mlflow.db`` by default)
    """

    model: str = "leadwise"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    heads: tuple[str, ...] = HEADS
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    loss: str = "focal"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    patience: int = 8
    aux: bool = True
    aux_weights: dict[str, float] = field(default_factory=lambda: {"device": 0.03, "sex": 0.01})
    augment: bool = False
    aug_noise: float = 0.05
    aug_scale: float = 0.2
    aug_wander: float = 0.2
    aug_shift: float = 0.1
    device: str = "auto"
    amp: str = "auto"
    seed: int = 0
    num_threads: int | None = None
    threshold: str = "youden"
    bootstrap: int = 1000
    mlflow: bool = False
    mlflow_uri: str | None = None

    def __post_init__(self) -> None:
        self.heads = tuple(self.heads)
        bad = [h for h in self.heads if h not in HEADS]
        if bad:
            raise UnknownNameError("head", bad[0], HEADS)
        MODELS.get(self.model)  # an unknown name lists the valid ones
        LOSSES.get(self.loss)
        if self.amp not in ("auto", "off", "fp16", "bf16"):
            raise UnknownNameError("amp mode", self.amp, ("auto", "off", "fp16", "bf16"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of ``dataclasses.asdict`` (unknown keys ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------------------------- losses

def focal_loss(logits: Tensor, targets: Tensor, gamma: float = 2.0, alpha: float | None = None,
               pos_weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Binary focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log(p_t)`` on logits.

    ``gamma = 0`` and ``alpha = None`` give exactly ``binary_cross_entropy_with_logits``.

    Parameters
    ----------
    logits, targets : same shape, targets in [0, 1]
    """
    targets = targets.to(device=logits.device, dtype=logits.dtype)
    if pos_weight is not None:
        pos_weight = pos_weight.to(logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=pos_weight)
    if gamma:
        p = torch.sigmoid(logits)
        p_t = p * targets + (1 - p) * (1 - targets)
        bce = (1 - p_t).clamp_min(0).pow(gamma) * bce
    if alpha is not None:
        bce = (alpha * targets + (1 - alpha) * (1 - targets)) * bce
    if reduction == "mean":
        return bce.mean()
    if reduction == "sum":
        return bce.sum()
    return bce


def _focal(cfg: TrainConfig, pos_weight: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda logits, y: focal_loss(logits, y, cfg.focal_gamma, cfg.focal_alpha)


def _weighted_bce(cfg: TrainConfig, pos_weight: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    # pos_weight lives on the training device, but the validation loss is computed on the CPU logits of
    # ``predict_logits``: follow the logits' device (a no-op in the training loop)
    on_device: dict[torch.device, Tensor] = {pos_weight.device: pos_weight}

    def loss(logits: Tensor, y: Tensor) -> Tensor:
        pw = on_device.get(logits.device)
        if pw is None:
            pw = on_device[logits.device] = pos_weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, y.to(device=logits.device, dtype=logits.dtype),
                                                  pos_weight=pw)

    return loss


#: loss name -> factory(cfg, pos_weight (n_outputs,)) -> loss(logits, targets); the loss must work on logits
#: of any device (training: the training device; validation: the CPU logits of ``predict_logits``)
LOSSES: Registry[Callable[[TrainConfig, Tensor], Callable[[Tensor, Tensor], Tensor]]] = Registry("loss", default="focal")
LOSSES.register("focal", _focal)
LOSSES.register("bce", _weighted_bce)


def auc_score(y: np.ndarray, p: np.ndarray) -> float | None:
    """Per-epoch ROC-AUC used for model selection (module-level so tests can script it)."""
    return auc_or_none(y, p)


# ---------------------------------------------------------------------------------------- augmentation

def augment_batch(x: Tensor, cfg: TrainConfig, fs: float) -> Tensor:
    """Random, batched, on-device augmentation of a normalised batch ``x (B, 12, T)``.

    Amplitude scaling per lead, baseline wander (one 0.05-0.5 Hz sinusoid per record, per-lead amplitude),
    Gaussian noise and a circular time shift per record. Uses the global torch RNG of ``x``'s device
    (its state is checkpointed), so a resumed run draws the same augmentations.
    """
    b, leads, t = x.shape
    dev = x.device
    if cfg.aug_scale:
        x = x * (1 + cfg.aug_scale * (2 * torch.rand(b, leads, 1, device=dev) - 1))
    if cfg.aug_wander:
        freq = 0.05 + 0.45 * torch.rand(b, 1, 1, device=dev)
        phase = 2 * math.pi * torch.rand(b, 1, 1, device=dev)
        tt = torch.arange(t, device=dev, dtype=x.dtype).view(1, 1, t) / fs
        amp = cfg.aug_wander * torch.rand(b, leads, 1, device=dev)
        x = x + amp * torch.sin(2 * math.pi * freq * tt + phase)
    if cfg.aug_noise:
        x = x + cfg.aug_noise * torch.randn_like(x)
    if cfg.aug_shift:
        max_shift = int(cfg.aug_shift * t)
        if max_shift > 0:
            shift = torch.randint(-max_shift, max_shift + 1, (b, 1, 1), device=dev)
            idx = (torch.arange(t, device=dev).view(1, 1, t) - shift) % t
            x = torch.gather(x, 2, idx.expand(b, leads, t))
    return x


# ---------------------------------------------------------------------------------------- small utils

def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A reader (or a resume after kill -9) sees either the old complete file or the new complete file.
    """
    fileio.atomic_write(path, lambda fh: torch.save(obj, fh), binary=True, fsync=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text atomically (tmp + fsync + ``os.replace``)."""
    fileio.atomic_write_text(path, text, fsync=True)


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def code_version() -> str:
    """``xand.__version__`` plus ``git describe --always --dirty`` of the source tree when available."""
    root = Path(xand.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"{xand.__version__}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return xand.__version__


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def amp_dtype(device: torch.device, mode: str = "auto") -> torch.dtype | None:
    """Autocast dtype for ``mode`` on ``device`` (None = full fp32). CPU stays fp32 unless asked for bf16."""
    if mode == "off":
        return None
    if device.type == "cuda":
        if mode == "fp16":
            return torch.float16
        if mode == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    return torch.bfloat16 if mode == "bf16" else None


def setup_device(cfg: TrainConfig) -> torch.device:
    """Resolve the device and set threads / cuDNN autotuning for it."""
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(int(cfg.num_threads or available_cores()))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def signals_to_device(signals: np.ndarray, device: torch.device, cfg: PreprocessConfig,
                      chunk: int = 2048) -> Tensor:
    """Copy a ``(N, 12, T)`` mV array to ``device`` once, normalised (chunked to bound float64 temporaries)."""
    n = signals.shape[0]
    out = torch.empty(tuple(signals.shape), dtype=torch.float32, device=device)
    for i in range(0, n, chunk):
        part = torch.from_numpy(np.array(signals[i:i + chunk], dtype=np.float32)).to(device)
        out[i:i + chunk] = normalize(part, cfg)
    return out


# ------------------------------------------------------------------------------------------- trackers

class _NullTracker:
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: Path) -> None: ...
    def close(self) -> None: ...


class _MlflowTracker(_NullTracker):
    """MLflow logging (local file store by default); mlflow is an optional dependency."""

    def __init__(self, uri: str, run_name: str):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("xand")
        self.run = mlflow.start_run(run_name=run_name)

    def log_params(self, params: dict[str, Any]) -> None:
        flat = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in params.items()}
        self.mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None}, step=step)

    def log_artifact(self, path: Path) -> None:
        self.mlflow.log_artifact(str(path))

    def close(self) -> None:
        self.mlflow.end_run()


def default_mlflow_uri(out_dir: str | Path) -> str:
    """The local tracking store next to the runs: ``sqlite:///<out_dir>/mlflow.db`` (MLflow 3 refuses the
    old ``mlruns/`` file store by default). Browse it with ``mlflow ui --backend-store-uri <that uri>``."""
    return f"sqlite:///{(Path(out_dir).resolve() / 'mlflow.db').as_posix()}"


def require_mlflow() -> None:
    """Raise a clear error when MLflow logging is asked for but mlflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise XandError("MLflow logging was requested (--mlflow) but the 'mlflow' package is not installed; "
                        "install it (pip install mlflow) or drop --mlflow") from None


# ------------------------------------------------------------------------------------------- units

@dataclass
class _Unit:
    """What one trained model covers: one head (binary) or all heads (multi-label)."""

    name: str
    heads: tuple[str, ...]
    out_index: dict[str, int]
    train_rows: np.ndarray
    train_y: np.ndarray            # (n, n_outputs) float32
    loss_rows: dict[str, np.ndarray]  # split -> rows used for the split's loss and predictions
    loss_y: dict[str, np.ndarray]
    eval_pos: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # split -> head -> (positions, y)


def _units(prepared, cfg: TrainConfig, multilabel: bool) -> list[_Unit]:
    units = []
    if multilabel:
        cols = [f"sc_{c}" for c in SUPERCLASSES]
        missing = [c for c in cols if c not in prepared.index.columns]
        if missing:
            raise DataError(getattr(prepared, "root", None), f"index lacks {missing}", "sc_NORM ... sc_HYP columns")
        y_all = prepared.index[cols].to_numpy(dtype=np.float32)
        rows = {s: prepared.split_indices(s) for s in ("train", "val", "test")}
        eval_pos: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        for s in ("val", "test"):
            pos_of = {int(r): i for i, r in enumerate(rows[s])}
            eval_pos[s] = {}
            for h in cfg.heads:
                idx, y = prepared.head_labels(h, s)
                eval_pos[s][h] = (np.array([pos_of[int(r)] for r in idx], dtype=np.int64), y)
        units.append(_Unit("multilabel", cfg.heads, {h: SUPERCLASSES.index(h) for h in cfg.heads},
                           rows["train"], y_all[rows["train"]],
                           {s: rows[s] for s in ("val", "test")}, {s: y_all[rows[s]] for s in ("val", "test")},
                           eval_pos))
        return units
    for h in cfg.heads:
        tr, ytr = prepared.head_labels(h, "train")
        loss_rows, loss_y, eval_pos = {}, {}, {}
        for s in ("val", "test"):
            idx, y = prepared.head_labels(h, s)
            loss_rows[s], loss_y[s] = idx, y.astype(np.float32)[:, None]
            eval_pos[s] = {h: (np.arange(len(idx)), y)}
        units.append(_Unit(h, (h,), {h: 0}, tr, ytr.astype(np.float32)[:, None], loss_rows, loss_y, eval_pos))
    return units


def _aux_targets(prepared) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-row device code (-1 unknown) and sex (0/1, -1 unknown), plus the device names."""
    idx = prepared.index
    devices = [str(d) for d in getattr(prepared, "meta", {}).get("devices", [])]
    if not devices and "device" in idx:
        devices = sorted(idx["device"].astype(str).unique())
    if "device_code" in idx:
        dev = idx["device_code"].fillna(-1).to_numpy(dtype=np.int64)
    elif "device" in idx:
        code = {d: i for i, d in enumerate(devices)}
        dev = np.array([code.get(str(d), -1) for d in idx["device"]], dtype=np.int64)
    else:
        dev = np.full(len(idx), -1, dtype=np.int64)
    sex = idx["sex"].fillna(-1).to_numpy(dtype=np.float32) if "sex" in idx else np.full(len(idx), -1, np.float32)
    return dev, sex, devices


# ------------------------------------------------------------------------------------------- train

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


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint written by this module, loaded with ``weights_only=True``: tensors, numbers, strings,
    lists, tuples and dicts only. A file that would need to run code (a pickled object, e.g. a crafted
    ``best.pt``) is refused with a ``DataError`` naming it; nothing in it is executed."""
    import pickle

    # plain numpy arrays too (the RNG state in a last.pt of an earlier version): rebuilding an array runs no code
    numpy_arrays = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    try:
        with torch.serialization.safe_globals(numpy_arrays):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        raise DataError(Path(path), f"not a plain checkpoint ({str(exc).splitlines()[0][:200]})",
                        "a file written by python -m train (tensors and plain values only)") from None


def _rng_state(gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    # numpy's state as plain values (its key array as a tensor): loadable with weights_only=True
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "batch_order": gen.get_state(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _cpu_bytes(t: Tensor) -> Tensor:
    """An RNG state as the CPU ByteTensor the ``set_rng_state`` functions require, wherever it was loaded."""
    return torch.as_tensor(t).detach().to(device="cpu", dtype=torch.uint8)


def _set_rng_state(state: dict[str, Any], gen: torch.Generator, device: torch.device) -> None:
    # torch.set_rng_state, Generator.set_state and torch.cuda.set_rng_state all take CPU ByteTensors (a
    # checkpoint loaded with map_location="cuda" would put them on the GPU): always move them back
    torch.set_rng_state(_cpu_bytes(state["torch"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, Tensor) else keys  # an ndarray in checkpoints of earlier versions
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    gen.set_state(_cpu_bytes(state["batch_order"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_cpu_bytes(state["cuda"]), device)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, rows: np.ndarray | Tensor | None = None, batch_size: int = 256,
                   amp: torch.dtype | None = None) -> Tensor:
    """Logits ``(n, n_outputs)`` float32 on CPU for ``x[rows]`` (``x``: normalised ``(N, 12, T)`` on the model's device)."""
    model.eval()
    dev = x.device
    if rows is None:
        rows_t = torch.arange(x.shape[0], device=dev)
    else:
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=dev)
    outs = []
    for i in range(0, len(rows_t), batch_size):
        with torch.autocast(device_type=dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            outs.append(model(x[rows_t[i:i + batch_size]]).float().cpu())
    n_out = getattr(model, "n_outputs", 1)
    return torch.cat(outs) if outs else torch.zeros(0, n_out)


class _Context:
    """What every unit of one run shares: data on the device, aux targets, device, AMP, tracker."""

    def __init__(self, prepared, cfg: TrainConfig, run_dir: Path, tracker: _NullTracker,
                 progress: bool | Callable[[str, dict[str, Any]], None]):
        self.prepared, self.cfg, self.run_dir, self.tracker, self.progress = prepared, cfg, run_dir, tracker, progress
        self.device = setup_device(cfg)
        self.amp = amp_dtype(self.device, cfg.amp)
        self.fs = float(prepared.fs)
        self.x = signals_to_device(prepared.signals, self.device, prepared.cfg)
        dev, sex, self.devices = _aux_targets(prepared)
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
    _seed_all(cfg.seed)
    tracker: _NullTracker = _NullTracker()
    if cfg.mlflow:
        tracker = _MlflowTracker(cfg.mlflow_uri or default_mlflow_uri(out_dir), run_dir.name)
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
            atomic_write_text(run_dir / "config.json", _json(config))
            tracker.log_params({**asdict(cfg), "fingerprint": prepared.fingerprint})
        del probe
        summaries = {}
        for unit in _units(prepared, cfg, multilabel):
            summaries[unit.name] = _train_unit(ctx, unit, config)
        top = _aggregate(config, summaries)
        atomic_write_text(run_dir / "summary.json", _json(top))
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


def _train_unit(ctx: _Context, unit: _Unit, config: dict[str, Any]) -> dict[str, Any]:
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
        _set_rng_state(ck["rng"], gen, device)
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
                     "scaler": scaler.state_dict(), "rng": _rng_state(gen, device), "epoch": epoch,
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
    atomic_write_text(udir / "summary.json", _json(summary))
    return summary


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _best_payload(cfg: TrainConfig, kwargs: dict[str, Any], unit: _Unit, state: dict[str, Tensor],
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


def _evaluate_epoch(ctx: _Context, model: nn.Module, unit: _Unit, loss_fn) -> dict[str, Any]:
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


def _summarise(ctx: _Context, unit: _Unit, model: nn.Module, records: list[dict[str, Any]], best: dict[str, Any],
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


# ---------------------------------------------------------------------------------------- inference

class Predictor:
    """A trained run loaded for inference, with the exact preprocessing it was trained with.

    Attributes
    ----------
    heads : heads with a trained checkpoint
    preprocess_cfg : ``PreprocessConfig`` of training (filters at ``fs`` + normalisation)
    fs, n_samples : working rate (Hz) and length (samples) the models expect
    summary : the run's top-level ``summary.json`` (empty dict for an unfinished run)
    config : the run's ``config.json``
    calibrated : whether probabilities (and thresholds) are temperature-scaled (``temperature(head)``)
    verified : whether the run's files matched its ``digests.json`` (False: a run written before digests)
    """

    def __init__(self, run_dir: str | Path, device: str = "cpu", calibrated: bool = True):
        self.run_dir = Path(run_dir)
        # before reading anything: a file changed or swapped after training is refused, not loaded
        self.verified = verify_digests(self.run_dir) if self.run_dir.is_dir() else False
        cfg_path = self.run_dir / "config.json"
        if not cfg_path.is_file():
            raise DataError(cfg_path, "run folder has no config.json", "a run written by xand.training.trainer.train")
        self.config = json.loads(cfg_path.read_text())
        self.device = resolve_device(device)
        self.train_cfg = TrainConfig.from_dict(self.config["train"])
        self.preprocess_cfg = PreprocessConfig.from_dict(self.config["preprocess"])
        self.fs = int(self.config["data"]["fs"])
        self.n_samples = int(self.config["data"]["n_samples"])
        top = self.run_dir / "summary.json"
        self.summary: dict[str, Any] = json.loads(top.read_text()) if top.is_file() else {}
        self._unit_of: dict[str, str] = {}
        self._target: dict[str, int] = {}
        self._unit_summary: dict[str, dict[str, Any]] = {}
        self._models: dict[str, nn.Module] = {}
        units = ["multilabel"] if self.config["model"].get("multilabel") else list(self.train_cfg.heads)
        for unit in units:
            ck_path = self.run_dir / unit / "best.pt"
            if not ck_path.is_file():
                continue
            ck = load_checkpoint(ck_path)
            model = create_model(ck["model_name"], **ck["model_kwargs"])
            model.load_state_dict(ck["state_dict"])
            self._models[unit] = model.to(self.device).eval()
            for h, k in ck["out_index"].items():
                self._unit_of[h], self._target[h] = unit, int(k)
            s_path = self.run_dir / unit / "summary.json"
            if s_path.is_file():
                self._unit_summary[unit] = json.loads(s_path.read_text())
        self.heads = tuple(h for h in HEADS if h in self._unit_of)
        if not self.heads:
            raise DataError(self.run_dir, "no trained checkpoint (best.pt) found", "at least one trained head")
        self._temperatures = read_calibration(self.run_dir)
        self.calibrated = calibrated

    def __repr__(self) -> str:
        return f"Predictor({str(self.run_dir)!r}, heads={self.heads}, model={self.config['model']['name']})"

    def model(self, head: str) -> nn.Module:
        """The eval-mode model of ``head`` (the multi-label model is shared by all heads)."""
        return self._models[self._unit(head)]

    def _unit(self, head: str) -> str:
        if head not in self._unit_of:
            raise UnknownNameError("head", head, self.heads)
        return self._unit_of[head]

    def target(self, head: str) -> int:
        """Output index of ``head`` in its model's logits."""
        self._unit(head)
        return self._target[head]

    def threshold(self, head: str) -> float:
        """Validation-tuned decision threshold on the probability (0.5 if the run has no summary yet),
        on the calibrated scale when the head is calibrated (the same decisions either way)."""
        s = self._unit_summary.get(self._unit(head), {}).get("heads", {}).get(head, {})
        t = s.get("threshold")
        t = 0.5 if t is None else float(t)  # also a run whose summary recorded no threshold (null)
        return threshold_after(t, self.temperature(head)) if self.calibrated else t

    def temperature(self, head: str) -> float:
        """The head's temperature (``xand.training.calibration``): ``calibration.json`` of the run when
        present, else the one fitted at training time, else 1 (uncalibrated)."""
        self._unit(head)
        if head in self._temperatures:
            return self._temperatures[head]
        s = self._unit_summary.get(self._unit(head), {}).get("heads", {}).get(head, {})
        t = (s.get("calibration") or {}).get("temperature")
        return float(t) if t is not None and math.isfinite(float(t)) and float(t) > 0 else 1.0

    def probability(self, head: str, logit: np.ndarray | float) -> np.ndarray | float:
        """Probability of ``head`` from its logit(s), calibrated when the predictor is."""
        t = self.temperature(head) if self.calibrated else 1.0
        out = apply_temperature(np.asarray(logit, dtype=np.float64), t)
        return float(out) if np.ndim(out) == 0 else out

    def prepare_batch(self, ecg: np.ndarray, fs: float) -> Tensor:
        """``ecg (N, 12, T) mV`` at ``fs`` Hz -> normalised ``(N, 12, n_samples)`` tensor on the device.

        Resampled to the training rate, filtered with the training filters, cut to the first ``n_samples``,
        normalised exactly as in training, and, when shorter than the training length (e.g. a CinC record
        under 10 s), padded at the end with zeros **in normalised units** (each lead's mean after the
        per-lead z-score: a flat isoelectric line). The normalisation statistics come from the real
        samples only, so a short record is scaled as if it were alone, not diluted by padding.
        """
        x = np.asarray(ecg, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != N_LEADS:
            raise DataError(None, f"ECG batch of shape {x.shape}", f"(N, {N_LEADS}, T) mV")
        if not np.isfinite(x).all():
            raise DataError(None, "ECG contains NaN or infinite values", "finite mV values")
        if float(fs) != float(self.fs):
            x = resample(x, float(fs), float(self.fs))
        x = np.stack([filter_ecg(r, self.fs, self.preprocess_cfg) for r in x]) if len(x) else x
        x = np.ascontiguousarray(x[..., :self.n_samples])
        z = normalize(torch.from_numpy(x), self.preprocess_cfg)
        if z.shape[-1] < self.n_samples:  # pad after normalising: the padding must not enter the statistics
            z = torch.nn.functional.pad(z, (0, self.n_samples - z.shape[-1]), value=0.0)
        return z.to(self.device)

    def prepare_input(self, ecg: np.ndarray, fs: float) -> Tensor:
        """``ecg (12, T) mV`` at ``fs`` Hz -> normalised ``(1, 12, n_samples)`` model input."""
        return self.prepare_batch(np.asarray(ecg)[None], fs)

    @torch.no_grad()
    def predict_tensor(self, x: Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Probabilities per head for an already normalised ``(N, 12, n_samples)`` tensor."""
        x = x.to(self.device)
        out: dict[str, np.ndarray] = {}
        logits_of: dict[str, Tensor] = {}
        for h in self.heads:
            unit = self._unit(h)
            if unit not in logits_of:
                logits_of[unit] = predict_logits(self._models[unit], x, None, batch_size)
            out[h] = np.asarray(self.probability(h, logits_of[unit][:, self._target[h]].double().numpy()),
                                dtype=np.float64)
        return out

    def predict_proba(self, ecg: np.ndarray, fs: float, batch_size: int = 256) -> dict[str, np.ndarray]:
        """``ecg (N, 12, T) mV`` (or ``(12, T)``) at ``fs`` Hz -> ``{head: (N,) probability}``."""
        x = np.asarray(ecg, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        return self.predict_tensor(self.prepare_batch(x, fs), batch_size)

    def predict_prepared(self, signals: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Probabilities for rows of a set prepared with this run's ``preprocess_cfg`` (already filtered,
        at ``fs``): only normalisation is applied."""
        x = signals_to_device(np.asarray(signals, dtype=np.float32), self.device, self.preprocess_cfg)
        return self.predict_tensor(x, batch_size)


def load_run(run_dir: str | Path, device: str = "cpu", calibrated: bool = True) -> Predictor:
    """Load a trained run for inference (models in eval mode + the training preprocessing); probabilities
    are temperature-calibrated unless ``calibrated=False`` (``xand.training.calibration``)."""
    return Predictor(run_dir, device=device, calibrated=calibrated)


CALIBRATION_FILE = "calibration.json"
DIGESTS_FILE = "digests.json"
#: The files a Predictor reads, checked against the digests written when the run was finished.
_DIGESTED = ("config.json", "summary.json", "*/best.pt", "*/summary.json", CALIBRATION_FILE)


def write_digests(run_dir: str | Path) -> Path:
    """Write ``<run>/digests.json``: the SHA-256 of every file a Predictor reads (config, summaries, best
    checkpoints, calibration), so a file changed or swapped after training is noticed before loading."""
    run_dir = Path(run_dir)
    files = sorted({p for pat in _DIGESTED for p in run_dir.glob(pat) if p.is_file()})
    digests = {p.relative_to(run_dir).as_posix(): fileio.sha256_file(p) for p in files}
    out = run_dir / DIGESTS_FILE
    fileio.atomic_write_text(out, json.dumps({"algorithm": "sha256", "files": digests}, indent=2))
    return out


def verify_digests(run_dir: str | Path) -> bool:
    """Check a run's files against ``digests.json``: True when they match, False when the run has no digests
    (written before they existed); a changed, missing or added checkpoint is a ``DataError`` naming it."""
    run_dir = Path(run_dir)
    p = run_dir / DIGESTS_FILE
    if not p.is_file():
        return False
    try:
        want = dict(json.loads(p.read_text())["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(p, f"unreadable digests ({exc})", "a file written by python -m train") from None
    present = {q.relative_to(run_dir).as_posix() for pat in _DIGESTED for q in run_dir.glob(pat) if q.is_file()}
    for rel in sorted(present | set(want)):
        f = run_dir / rel
        if rel not in want:
            raise DataError(f, "is not among the files the run was finished with (digests.json)",
                            "only files written by python -m train / python -m xand calibrate")
        if not f.is_file():
            raise DataError(f, "is missing", "the file listed in digests.json")
        if fileio.sha256_file(f) != want[rel]:
            raise DataError(f, "changed after the run was finished (SHA-256 differs from digests.json)",
                            "the file as training wrote it")
    return True


def read_calibration(run_dir: str | Path) -> dict[str, float]:
    """``{head: temperature}`` of a run's ``calibration.json`` (written by ``calibrate_run``), {} when none.
    A malformed file or a temperature that is not a positive finite number is a ``DataError``."""
    p = Path(run_dir) / CALIBRATION_FILE
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text())
        out = {h: float(v["temperature"]) for h, v in d["heads"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(p, f"unreadable calibration ({exc})", "a file written by python -m xand calibrate") from None
    bad = [h for h, t in out.items() if not (math.isfinite(t) and t > 0) or h not in HEADS]
    if bad:
        raise DataError(p, f"head {bad[0]!r} has temperature {out.get(bad[0])}", "a known head, T > 0")
    return out


def calibrate_run(run_dir: str | Path, data_dir: str | Path, split: str = "val",
                  cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Fit each head's temperature on ``split`` of ``data_dir`` (the run's validation split: the data it
    was trained on) and write ``<run>/calibration.json``; returns what was written. For runs trained before
    calibration existed; newer runs carry the fit in their summary."""
    from xand.data.prepare import content_key, prepare

    if split != "val":
        raise DataError(None, f"calibration on the {split} split", "the validation split (never train or test)")
    pred = Predictor(run_dir, calibrated=False)
    key = content_key(data_dir)
    trained_on = (pred.config.get("dataset") or {}).get("content_key")
    if trained_on and trained_on != key:
        raise DataError(data_dir, f"is dataset {key}, the run was trained on {trained_on}",
                        "the dataset the run was trained on (its validation split)")
    prep = prepare(data_dir, cache_dir=cache_dir, cfg=pred.preprocess_cfg, progress=False)
    idx = prep.index
    out: dict[str, Any] = {"data": str(data_dir), "dataset_key": key, "split": split, "heads": {},
                           "dataset_check": None if trained_on else
                           "the run does not record its dataset's content key: not checked that this is its data"}
    for h in pred.heads:
        rows = {s: np.flatnonzero((idx["split"] == s).to_numpy() & (idx[h] >= 0).to_numpy()) for s in (split, "test")}
        logit = {}
        for s, r in rows.items():
            x = torch.from_numpy(np.ascontiguousarray(prep.signals[r]))
            z = predict_logits(pred.model(h), normalize(x, pred.preprocess_cfg), None, 256)
            logit[s] = z[:, pred.target(h)].double().numpy()
        y = {s: idx[h].to_numpy()[r].astype(np.float64) for s, r in rows.items()}
        rep = calibration_report(logit[split], y[split], logit["test"] if split != "test" else None,
                                 y["test"] if split != "test" else None)
        out["heads"][h] = rep
    fileio.atomic_write_text(Path(run_dir) / CALIBRATION_FILE, json.dumps(out, indent=2))
    if (Path(run_dir) / DIGESTS_FILE).is_file():
        write_digests(run_dir)  # the new file joins the verified set
    return out
