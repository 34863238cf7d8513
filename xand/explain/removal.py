"""Removing part of an ECG without leaving the data's distribution: the operators that faithfulness
metrics use to take evidence away.

Zeros are not a neutral removal on an ECG: a flat line looks like a conduction block or asystole (the CD
head of the PTB-XL excerpt calls a flat ECG CD with p = 0.997), so a zero-filled region measures "looks
abnormal", not "this region mattered". Here a removed segment of a lead is replaced by the straight line
between the samples at its two ends (the local isoelectric trend), which is what a cardiologist's eye
does across an artefact; ``"road"`` adds noise at the lead's own sample-to-sample noise level, so that the
shape of the removed region (perfectly straight pieces) does not itself leak which samples were chosen
(noisy linear imputation, Rong et al. 2022; in one dimension, imputing every removed sample as the mean
of its neighbours, as ROAD does, *is* linear interpolation between the run's ends).

All functions work on the model's input grid: ``x (12, T)`` float (normalised or mV), ``remove (12, T)``
bool, and return a new array; the input is never written.

References
----------
Rong Y. et al., A consistent and efficient evaluation strategy for attribution methods (ROAD), ICML 2022.
Hooker S. et al., A benchmark for interpretability methods in deep neural networks (ROAR), NeurIPS 2019.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from xand.errors import DataError
from xand.registry import Registry

REMOVALS: Registry[Callable[..., np.ndarray]] = Registry("removal", default="linear")


def register_removal(name: str) -> Callable:
    """Register ``fn(x, remove, rng) -> x'`` under ``name`` (see :data:`REMOVALS`)."""
    return REMOVALS.register(name)


def _runs(row: np.ndarray) -> np.ndarray:
    """``(k, 2)`` [start, stop) of the True runs of a 1-D bool array."""
    d = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def _check(x: np.ndarray, remove: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    remove = np.asarray(remove, dtype=bool)
    if x.ndim != 2 or remove.shape != x.shape:
        raise DataError(None, f"ECG {x.shape} and removal mask {remove.shape}", "two (12, T) arrays")
    return x, remove


@register_removal("linear")
def linear(x: np.ndarray, remove: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Each removed run of a lead -> the straight line from the sample before it to the sample after it
    (a run at the record's edge continues the neighbouring sample; a fully removed lead becomes its mean)."""
    x, remove = _check(x, remove)
    out = x.copy()
    t = x.shape[1]
    for lead in np.flatnonzero(remove.any(axis=1)):
        row = out[lead]
        if remove[lead].all():
            row[:] = float(x[lead].mean())
            continue
        for a, b in _runs(remove[lead]):
            left = x[lead, a - 1] if a > 0 else x[lead, b]
            right = x[lead, b] if b < t else x[lead, a - 1]
            row[a:b] = np.linspace(left, right, b - a + 2, dtype=np.float32)[1:-1]
    return out


def noise_level(x: np.ndarray) -> np.ndarray:
    """``(12,)`` robust sample-to-sample noise SD per lead: MAD of the first difference / (0.6745 sqrt 2)."""
    d = np.diff(np.asarray(x, dtype=np.float64), axis=1)
    mad = np.median(np.abs(d - np.median(d, axis=1, keepdims=True)), axis=1)
    return (mad / (0.6745 * np.sqrt(2.0))).astype(np.float32)


@register_removal("road")
def road(x: np.ndarray, remove: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """:func:`linear`, plus Gaussian noise of the lead's own :func:`noise_level` on the removed samples."""
    x, remove = _check(x, remove)
    rng = rng if rng is not None else np.random.default_rng(0)
    out = linear(x, remove)
    sd = noise_level(x)[:, None]
    out[remove] += (rng.standard_normal(x.shape).astype(np.float32) * sd)[remove]
    return out


def remove_samples(x: np.ndarray, remove: np.ndarray, how: str = "linear",
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Remove ``remove``'s samples from ``x`` with the operator ``how`` (a name in :data:`REMOVALS`)."""
    return REMOVALS.create(how, x, remove, rng)
