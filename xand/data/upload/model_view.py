"""What the model sees of an upload: its first seconds at the model's rate, and the probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np

from xand.data.upload.common import UploadedECG


def model_window(ecg: np.ndarray, fs: float, seconds: float) -> tuple[np.ndarray, str | None]:
    """The part of an ECG a model reads: its first ``seconds`` (models take a fixed-length input).

    Parameters
    ----------
    ecg : ``(12, T)`` mV at ``fs`` Hz
    seconds : the model's input duration (``Predictor.n_samples / Predictor.fs``)

    Returns
    -------
    ``(12, T')`` mV at ``fs`` and a note for the reader when the record was cut or is shorter (the model
    then sees it zero-padded), else None.
    """
    n = int(round(seconds * fs))
    if ecg.shape[1] > n:
        return np.ascontiguousarray(ecg[:, :n]), (f"The record lasts {ecg.shape[1] / fs:.1f} s: the model reads "
                                                  f"its first {seconds:g} s, shown here.")
    if ecg.shape[1] < n:
        return ecg, (f"The record lasts {ecg.shape[1] / fs:.1f} s, less than the model's {seconds:g} s: "
                     "the model sees it zero-padded at the end.")
    return ecg, None


def input_seconds(predictor: Any) -> float:
    """Input duration (s) of a trained run (``n_samples / fs``; 10 s when it does not say)."""
    fs = float(getattr(predictor, "fs", None) or predictor.preprocess_cfg.fs)
    n = getattr(predictor, "n_samples", None)
    return float(n) / fs if n else 10.0


def predict_upload(predictor: Any, rec: UploadedECG) -> dict[str, float]:
    """Every head's probability for the model window of an uploaded ECG (resampled as in training)."""
    window, _ = model_window(rec.signal, rec.fs, input_seconds(predictor))
    probs = predictor.predict_proba(window[None], rec.fs)
    return {h: float(np.asarray(p).ravel()[0]) for h, p in probs.items()}
