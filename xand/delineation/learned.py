"""A learned delineator: a small 1-D U-Net that labels every sample of one lead as none / P / QRS / T.

After Moskalenko et al. ("Deep learning for ECG segmentation", 2019) and Ronneberger et al. (U-Net, 2015):
one lead at 500 Hz in, four classes per sample out; the same network on all 12 leads. Trained on LUDB's
cardiologists' per-lead marks (``python -m xand train-delineator LUDB_DIR [--cv 5]``), with the
loss taken only inside each lead's annotated span, augmented (amplitude, polarity, noise, baseline
wander, random crops). Decoding turns runs of a class into waves (runs shorter than a wave can be are
dropped, never stretched), each QRS into one beat with the P wave before it and the T wave after it, then
applies the shared order and quality rules (``xand.delineation.rules``): no wave is invented.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.delineation.rules import check_ecg, enforce_order, lead_quality
from xand.errors import DataError
from xand.fiducials import Fiducials, kind_index

FS = 500.0
CLASSES = ("none", "P", "QRS", "T")
#: Shortest run of a class that counts as a wave (ms): shorter runs are label noise.
MIN_MS = {1: 30.0, 2: 40.0, 3: 60.0}
#: The committed weights (``python -m xand train-delineator ../shared/data/ludb``).
DEFAULT_WEIGHTS = Path(__file__).with_name("weights") / "unet_ludb.pt"


@dataclass
class UNetConfig:
    """Network and training options (saved with the weights)."""

    widths: tuple[int, ...] = (12, 24, 48, 96)
    kernel: int = 9
    crop: int = 2048
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2


def _torch():
    import torch
    from torch import nn

    return torch, nn


def build_unet(cfg: UNetConfig):
    """The U-Net ``(B, 1, L) -> (B, 4, L)``; ``L`` a multiple of ``2 ** len(widths[1:])``."""
    torch, nn = _torch()
    k = cfg.kernel

    def block(cin: int, cout: int):
        return nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2), nn.BatchNorm1d(cout), nn.ReLU(inplace=True),
                             nn.Conv1d(cout, cout, k, padding=k // 2), nn.BatchNorm1d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            w = cfg.widths
            self.down = nn.ModuleList([block(1, w[0])] + [block(w[i - 1], w[i]) for i in range(1, len(w))])
            self.pool = nn.MaxPool1d(2)
            self.up = nn.ModuleList([nn.ConvTranspose1d(w[i], w[i - 1], 2, stride=2) for i in range(len(w) - 1, 0, -1)])
            self.dec = nn.ModuleList([block(2 * w[i - 1], w[i - 1]) for i in range(len(w) - 1, 0, -1)])
            self.head = nn.Conv1d(w[0], len(CLASSES), 1)

        def forward(self, x):
            skips = []
            for i, d in enumerate(self.down):
                x = d(x if i == 0 else self.pool(x))
                skips.append(x)
            for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1])):
                x = dec(torch.cat([up(x), skip], dim=1))
            return self.head(x)

    return UNet()


def prepare_lead(x: np.ndarray, fs: float) -> np.ndarray:
    """One lead (mV) -> the network's input: band-passed 0.5-40 Hz, robustly scaled (median / IQR)."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(x, dtype=np.float64)
    sos = butter(2, [0.5, 40.0], btype="band", fs=fs, output="sos")
    y = sosfiltfilt(sos, x) if len(x) > 30 else x - np.median(x)
    q75, q25 = np.percentile(y, [75, 25])
    scale = (q75 - q25) or (np.std(y) or 1.0)
    return ((y - np.median(y)) / scale).astype(np.float32)


def labels_of(fid: Fiducials, lead: int, n: int) -> np.ndarray:
    """``(n,)`` int8 class per sample of one lead from its marks (0 outside every wave)."""
    lab = np.zeros(n, dtype=np.int8)
    for b in fid.beats[lead]:
        for c, (on, off) in ((1, ("P_on", "P_off")), (2, ("QRS_on", "QRS_off")), (3, ("T_on", "T_off"))):
            a, e = b[kind_index(on)], b[kind_index(off)]
            if np.isfinite(a) and np.isfinite(e) and e >= a:
                lab[max(int(round(a)), 0):min(int(round(e)) + 1, n)] = c
    return lab


def _records(ludb_dir: str | Path, recs: list[int], min_len: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per (record, lead): input, labels and the annotated mask (records shorter than ``min_len`` left out)."""
    from xand.data.ludb import read_ludb

    out = []
    for rec in recs:
        r = read_ludb(ludb_dir, rec)
        n = r.signal.shape[1]
        if n < min_len:
            continue
        for lead in range(N_LEADS):
            lo, hi = r.spans[lead]
            if not np.isfinite(lo):
                continue
            inside = np.zeros(n, dtype=bool)
            inside[int(lo):int(hi) + 1] = True
            out.append((prepare_lead(r.signal[lead], r.fs), labels_of(r.fiducials, lead, n), inside))
    return out


def train_unet(ludb_dir: str | Path, records: list[int], cfg: UNetConfig | None = None,
               progress: bool = False) -> Any:
    """Train the U-Net on the leads of ``records`` (LUDB record numbers); returns the eval-mode model."""
    torch, nn = _torch()
    cfg = cfg or UNetConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    data = _records(ludb_dir, records, min_len=cfg.crop)
    if not data:
        raise DataError(ludb_dir, "no annotated leads in the training records", "LUDB records with annotations")
    model = build_unet(cfg)
    bs = min(cfg.batch_size, len(data))  # a few records: smaller batches, never zero steps
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, len(data) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(data))
        model.train()
        loss = None
        for bstart in range(0, len(order) - bs + 1, bs):
            xs, ys, ms = [], [], []
            for i in order[bstart:bstart + bs]:
                x, y, m = data[i]
                idx = np.flatnonzero(m)
                last = len(x) - cfg.crop  # _records keeps only leads at least one crop long
                first = min(max(0, idx[0] - cfg.crop // 2), last)
                lo = int(rng.integers(first, max(first, min(last, idx[-1])) + 1))
                xc = x[lo:lo + cfg.crop].copy()
                # augmentation: amplitude, polarity, noise, baseline wander
                xc *= rng.uniform(0.6, 1.6) * (1 if rng.random() < 0.8 else -1)
                xc += rng.normal(0, rng.uniform(0.0, 0.15), xc.shape)
                t = np.arange(cfg.crop) / FS
                xc += rng.uniform(0, 0.5) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
                xs.append(xc)
                ys.append(y[lo:lo + cfg.crop])
                ms.append(m[lo:lo + cfg.crop])
            xb = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32))
            yb = torch.from_numpy(np.stack(ys).astype(np.int64))
            mb = torch.from_numpy(np.stack(ms).astype(np.float32))
            loss = (loss_fn(model(xb), yb) * mb).sum() / mb.sum().clamp(min=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if progress and loss is not None:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {float(loss):.3f} ({time.perf_counter() - t0:.0f} s)")
    model.unet_config = cfg
    return model.eval()


def segment_probabilities(model: Any, ecg: np.ndarray, fs: float) -> np.ndarray:
    """``(12, 4, T)`` class probabilities of every lead (``ecg``: ``(12, T)`` mV, resampled to 500 Hz inside)."""
    torch, _ = _torch()
    x = np.asarray(ecg, dtype=np.float64)
    if fs != FS:
        from xand.data.preprocess import resample

        x = resample(x.astype(np.float32), fs, FS)
    n = x.shape[1]
    cfg = getattr(model, "unet_config", None) or UNetConfig()
    mult = 2 ** (len(cfg.widths) - 1)
    pad = (-n) % mult
    batch = np.stack([np.pad(prepare_lead(lead, FS), (0, pad)) for lead in x])[:, None]
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()[:, :, :n]
    return p


def _runs(lab: np.ndarray, c: int, min_len: int) -> list[tuple[int, int]]:
    d = np.diff(np.r_[0, (lab == c).astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(int(a), int(e)) for a, e in zip(starts, ends) if e - a + 1 >= min_len]


def _peak(x: np.ndarray, a: int, e: int) -> int:
    """The largest deviation strictly inside ``[a, e]`` (a peak on a boundary would break the beat's order)."""
    if e - a < 2:
        return (a + e) // 2
    return a + 1 + int(np.argmax(np.abs(x[a + 1:e])))


def decode_lead(prob: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """One lead's ``(4, T)`` probabilities (at 500 Hz) -> ``(n_beats, len(FIDUCIAL_KINDS))`` marks at 500 Hz."""
    from scipy.ndimage import median_filter

    if fs != FS:
        raise DataError(None, f"decoding at {fs} Hz", f"the network's rate, {FS:g} Hz (resample first)")
    lab = median_filter(prob.argmax(axis=0).astype(np.int8), size=9, mode="nearest")
    runs = {c: _runs(lab, c, int(MIN_MS[c] * FS / 1000)) for c in (1, 2, 3)}
    qrs = runs[2]
    rows = np.full((len(qrs), len(FIDUCIAL_KINDS)), np.nan)
    xc = x - np.median(x)
    for i, (a, e) in enumerate(qrs):
        prev_end = qrs[i - 1][1] if i else -1
        next_start = qrs[i + 1][0] if i + 1 < len(qrs) else len(lab)
        row = rows[i]
        row[kind_index("QRS_on")], row[kind_index("QRS_off")] = a, e
        row[kind_index("J")] = e
        row[kind_index("R_peak")] = _peak(xc, a, e)
        ps = [r for r in runs[1] if prev_end < r[0] and r[1] < a and a - r[1] <= 0.3 * FS]
        if ps:
            pa, pe = ps[-1]
            row[kind_index("P_on")], row[kind_index("P_off")] = pa, pe
            row[kind_index("P_peak")] = _peak(xc, pa, pe)
        ts = [r for r in runs[3] if r[0] > e and r[1] < next_start]
        if ts:
            ta, te = ts[0]
            row[kind_index("T_on")], row[kind_index("T_off")] = ta, te
            row[kind_index("T_peak")] = _peak(xc, ta, te)
    r_next = np.r_[rows[1:, kind_index("R_peak")], np.inf] if len(rows) else np.array([])
    for row, nr in zip(rows, r_next):
        enforce_order(row, nr)
    return rows


_MODEL_CACHE: dict[str, Any] = {}


def load_unet(path: str | Path | None = None) -> Any:
    """The U-Net from ``path`` (default: ``XAND_UNET_WEIGHTS`` or the committed weights), loaded with
    ``weights_only=True`` and cached per path."""
    torch, _ = _torch()
    p = Path(path or os.environ.get("XAND_UNET_WEIGHTS") or DEFAULT_WEIGHTS)
    key = str(p.resolve())
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    if not p.is_file():
        raise DataError(p, "U-Net weights not found",
                        "the committed weights, or python -m xand train-delineator LUDB_DIR")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
        cfg = UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck["config"].items()})
        model = build_unet(cfg)
        model.load_state_dict(ck["state_dict"])
        model.unet_config = cfg
    except Exception as exc:  # noqa: BLE001 - a foreign or damaged file: one clear message
        raise DataError(p, f"not U-Net weights ({type(exc).__name__}: {exc})", "a file written by this module") from None
    _MODEL_CACHE[key] = model.eval()
    return _MODEL_CACHE[key]


def delineate_unet(ecg: np.ndarray, fs: float, model: Any = None) -> Fiducials:
    """Fiducials of a 12-lead ECG by the learned delineator (``source="unet"``), at ``fs``."""
    x = check_ecg(ecg, fs)
    n = x.shape[1]
    if n < int(2 * fs):
        return Fiducials.empty(fs, n, "unet")
    model = model if model is not None else load_unet()
    prob = segment_probabilities(model, x, fs)
    x500 = x
    if fs != FS:
        from xand.data.preprocess import resample

        x500 = resample(x.astype(np.float32), fs, FS).astype(np.float64)
    flat = np.percentile(x500, 99, axis=1) - np.percentile(x500, 1, axis=1) < 0.03
    beats = []
    for lead in range(N_LEADS):
        rows = np.empty((0, len(FIDUCIAL_KINDS))) if flat[lead] else decode_lead(prob[lead], x500[lead], FS)
        scaled = rows * (fs / FS)
        scaled[scaled > n - 1] = n - 1  # the last 500 Hz sample maps just past the record's end
        beats.append(scaled)
    quality = np.array([not flat[i] and len(b) > 0 and lead_quality(b, fs) for i, b in enumerate(beats)])
    return Fiducials(fs, n, beats, quality, "unet")


def save_unet(model: Any, cfg: UNetConfig, path: str | Path, info: dict | None = None) -> Path:
    torch, _ = _torch()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "config": asdict(cfg), "info": info or {}}, tmp)
    os.replace(tmp, p)
    return p
