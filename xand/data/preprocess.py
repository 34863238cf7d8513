"""Signal preprocessing: resampling, optional filtering (prepare time) and normalisation (model input time).

Two stages, kept apart on purpose:

* ``filter_ecg`` / ``resample`` run once in ``xand.data.prepare`` and are part of the prepared fingerprint; the
  prepared array stays in **mV** so that the app can display it.
* ``normalize`` runs at model input time (numpy or torch), so the model always sees normalised input and
  the stored array never changes when the normalisation options do.

Defaults follow the XAND lead-wise setting: a per-sample global z-score over all 12 x T samples followed by
a per-lead z-score, no band-pass and no baseline removal (PTB-XL benchmark models are trained on the raw
100 Hz signals, Strodthoff et al. 2021).

References
----------
Strodthoff N., Wagner P., Schaeffter T., Samek W. Deep learning for ECG analysis: benchmarks and insights
from PTB-XL. IEEE J Biomed Health Inform 25(5):1519-1528 (2021).
de Chazal P., O'Dwyer M., Reilly R.B. Automatic classification of heartbeats using ECG morphology and
heartbeat interval features. IEEE Trans Biomed Eng 51(7):1196-1206 (2004) -- two-stage median baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from xand.constants import DEFAULT_FS
from xand.errors import UnknownNameError

#: Per-lead normalisation modes accepted by ``PreprocessConfig.per_lead``.
PER_LEAD_MODES = ("zscore", "none")
#: working rates that PTB-XL's 100 / 500 Hz records can serve (read natively or downsampled)
FS_RANGE = (50, 500)

#: Fields of ``PreprocessConfig`` applied at prepare time (hence part of the prepared fingerprint).
PREPARE_FIELDS = ("fs", "bandpass", "baseline_removal")


@dataclass
class PreprocessConfig:
    """Preprocessing options.

    Attributes
    ----------
    fs : working sampling rate (Hz); 100 gives 12 x 1000 per PTB-XL record
    bandpass : ``(low, high)`` Hz for a zero-phase Butterworth band-pass (e.g. ``(0.5, 40)``), or None
    baseline_removal : remove baseline wander with a two-stage median filter (de Chazal et al. 2004)
    global_zscore : at model input, subtract one mean / divide by one std over all 12 x T samples
    per_lead : at model input, then ``"zscore"`` each lead separately or ``"none"``
    bandpass_order : Butterworth order of the band-pass (applied forward and backward, so doubled)
    eps : floor (in the signal's units) on standard deviations, so flat leads map to zeros, not NaN
    """

    fs: int = DEFAULT_FS
    bandpass: tuple[float, float] | None = None
    baseline_removal: bool = False
    global_zscore: bool = True
    per_lead: str = "zscore"
    bandpass_order: int = 3
    eps: float = 1e-6

    def __post_init__(self) -> None:
        # checked here, once, so that a bad option is one clear error instead of every record of a
        # prepare run failing (and being skipped) with a confusing per-record message
        lo, hi = FS_RANGE
        if (isinstance(self.fs, bool) or not isinstance(self.fs, (int, float, np.integer, np.floating))
                or not float(self.fs).is_integer() or not lo <= self.fs <= hi):
            raise ValueError(f"working sampling rate fs={self.fs!r} Hz: expected a whole number from {lo} to "
                             f"{hi} (PTB-XL records exist at 100 and 500 Hz; upsampling would invent content)")
        self.fs = int(self.fs)
        if self.bandpass is not None:
            try:
                low, high = (float(v) for v in self.bandpass)
            except (TypeError, ValueError):
                raise ValueError(f"band-pass {self.bandpass!r}: expected two numbers (low, high) in Hz") from None
            if not 0 < low < high < self.fs / 2:
                raise ValueError(f"band-pass ({low:g}, {high:g}) Hz at fs={self.fs} Hz: expected "
                                 f"0 < low < high < {self.fs / 2:g} (the Nyquist frequency)")
            self.bandpass = (low, high)
        if self.per_lead not in PER_LEAD_MODES:
            raise UnknownNameError("per-lead normalisation", self.per_lead, PER_LEAD_MODES)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessConfig":
        """Inverse of ``dataclasses.asdict`` (JSON turns the band-pass tuple into a list)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def prepare_options(self) -> dict[str, Any]:
        """The options that change the prepared array (the rest only affect ``normalize``)."""
        d = asdict(self)
        out = {k: d[k] for k in PREPARE_FIELDS}
        if self.bandpass is not None:
            out["bandpass_order"] = self.bandpass_order
        return out


def resample(ecg: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample along the last axis with a polyphase anti-aliasing FIR (``scipy.signal.resample_poly``).

    Parameters
    ----------
    ecg : ``(..., T)`` signal (e.g. ``(12, T)`` mV) at ``fs_in`` Hz
    fs_in, fs_out : sampling rates (Hz)

    Returns
    -------
    ``(..., round(T * fs_out / fs_in))`` float32 at ``fs_out`` Hz (a float32 copy when the rates are equal)
    """
    from scipy.signal import resample_poly

    x = np.asarray(ecg, dtype=np.float32)
    if fs_in == fs_out:
        return x.copy()
    ratio = Fraction(fs_out).limit_denominator(10_000) / Fraction(fs_in).limit_denominator(10_000)
    y = resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.float32)


def remove_baseline(ecg: np.ndarray, fs: float) -> np.ndarray:
    """Baseline-wander removal by two cascaded median filters (200 ms, then 600 ms), subtracted.

    The 200 ms window removes QRS complexes and P waves, the 600 ms one T waves; what is left is the
    baseline estimate (de Chazal et al. 2004). Unlike a 0.5 Hz high-pass it does not distort the ST segment.

    Parameters
    ----------
    ecg : ``(12, T)`` mV at ``fs`` Hz

    Returns
    -------
    ``(12, T)`` float32 mV
    """
    from scipy.ndimage import median_filter

    x = np.asarray(ecg, dtype=np.float64)
    w1 = int(round(0.2 * fs)) | 1  # odd windows keep the filter centred
    w2 = int(round(0.6 * fs)) | 1
    base = median_filter(x, size=(1, w1), mode="nearest")
    base = median_filter(base, size=(1, w2), mode="nearest")
    return (x - base).astype(np.float32)


def bandpass(ecg: np.ndarray, fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``scipy.signal.sosfiltfilt``) along the last axis.

    Parameters
    ----------
    ecg : ``(..., T)`` mV at ``fs`` Hz
    low, high : cut-off frequencies (Hz), ``0 < low < high < fs / 2``
    order : filter order (the forward-backward pass doubles its attenuation)

    Returns
    -------
    ``(..., T)`` float32 mV
    """
    from scipy.signal import butter, sosfiltfilt

    if not 0 < low < high < fs / 2:
        raise ValueError(f"band-pass ({low}, {high}) Hz is invalid at {fs} Hz (need 0 < low < high < {fs / 2})")
    sos = butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    x = np.asarray(ecg, dtype=np.float64)
    # a long mirror padding keeps the slow high-pass transient of a 10 s record out of the signal
    pad = min(x.shape[-1] - 1, int(round(3 * fs / low)))
    return sosfiltfilt(sos, x, axis=-1, padtype="even", padlen=pad).astype(np.float32)


def filter_ecg(ecg: np.ndarray, fs: float, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Apply the prepare-time filters of ``cfg`` (baseline removal, then band-pass).

    Parameters
    ----------
    ecg : ``(12, T)`` mV at ``fs`` Hz
    fs : sampling rate (Hz)
    cfg : options; None means the defaults (no filtering)

    Returns
    -------
    ``(12, T)`` float32 mV (a copy; unchanged values when no filter is enabled)
    """
    cfg = cfg or PreprocessConfig()
    x = np.asarray(ecg, dtype=np.float32)
    if cfg.baseline_removal:
        x = remove_baseline(x, fs)
    if cfg.bandpass is not None:
        x = bandpass(x, fs, cfg.bandpass[0], cfg.bandpass[1], cfg.bandpass_order)
    return x.copy() if x is ecg else x


def normalize(x: Any, cfg: PreprocessConfig | None = None) -> Any:
    """Model-input normalisation: per-sample global z-score over all 12 x T values, then per-lead z-score.

    Parameters
    ----------
    x : numpy ``(12, T)`` / ``(N, 12, T)`` or torch tensor ``(12, T)`` / ``(B, 12, T)``, in mV
    cfg : options (``global_zscore``, ``per_lead``, ``eps``); None means the XAND defaults

    Returns
    -------
    Same type, shape and (floating) dtype as ``x``, dimensionless. Standard deviations are floored at
    ``cfg.eps`` so that a flat lead becomes zeros instead of NaN.
    """
    cfg = cfg or PreprocessConfig()
    if type(x).__module__.startswith("torch"):
        return _normalize_torch(x, cfg)
    a = np.asarray(x)
    out_dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32
    y = a.astype(np.float64)
    if cfg.global_zscore:
        y = _zscore_np(y, (-2, -1), cfg.eps)
    if cfg.per_lead == "zscore":
        y = _zscore_np(y, (-1,), cfg.eps)
    return y.astype(out_dtype)


def _zscore_np(y: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mu = y.mean(axis=axes, keepdims=True)
    sd = y.std(axis=axes, keepdims=True)
    return (y - mu) / np.maximum(sd, eps)


def _normalize_torch(x: Any, cfg: PreprocessConfig) -> Any:
    import torch

    y = x.to(torch.float64) if x.dtype != torch.float64 else x
    for on, dims in ((cfg.global_zscore, (-2, -1)), (cfg.per_lead == "zscore", (-1,))):
        if on:
            mu = y.mean(dim=dims, keepdim=True)
            sd = y.std(dim=dims, keepdim=True, correction=0)
            y = (y - mu) / sd.clamp_min(cfg.eps)
    return y.to(x.dtype if x.is_floating_point() else torch.float32)
