"""What one trained model covers (a *unit*): one head (binary) or every head (the multi-label model), with
its rows and labels per split; and the auxiliary device / sex targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xand.constants import SUPERCLASSES
from xand.errors import DataError

if TYPE_CHECKING:
    from xand.training.config import TrainConfig


@dataclass
class Unit:
    """What one trained model covers: one head (binary) or all heads (multi-label)."""

    name: str
    heads: tuple[str, ...]
    out_index: dict[str, int]
    train_rows: np.ndarray
    train_y: np.ndarray            # (n, n_outputs) float32
    loss_rows: dict[str, np.ndarray]  # split -> rows used for the split's loss and predictions
    loss_y: dict[str, np.ndarray]
    eval_pos: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # split -> head -> (positions, y)


def make_units(prepared, cfg: TrainConfig, multilabel: bool) -> list[Unit]:
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
        units.append(Unit("multilabel", cfg.heads, {h: SUPERCLASSES.index(h) for h in cfg.heads},
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
        units.append(Unit(h, (h,), {h: 0}, tr, ytr.astype(np.float32)[:, None], loss_rows, loss_y, eval_pos))
    return units


def aux_targets(prepared) -> tuple[np.ndarray, np.ndarray, list[str]]:
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
