"""A trained run loaded for inference (``load_run`` -> ``Predictor``), its files verified against the digests
written at training time, probabilities temperature-scaled by the run's calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from xand import fileio
from xand.constants import HEADS, N_LEADS
from xand.data.preprocess import PreprocessConfig, filter_ecg, normalize, resample
from xand.errors import DataError, UnknownNameError
from xand.models.networks import create_model
from xand.training.calibration import (
    apply_temperature,
    calibration_report,
    threshold_after,
)
from xand.training.checkpoint import load_checkpoint
from xand.training.config import TrainConfig
from xand.training.device import resolve_device, signals_to_device


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, rows: np.ndarray | Tensor | None = None, batch_size: int = 256,
                   amp: torch.dtype | None = None) -> Tensor:
    """Logits ``(n, n_outputs)`` float32 on CPU for ``x[rows]`` (``x``: normalised ``(N, 12, T)`` on the
    model's device)."""
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
