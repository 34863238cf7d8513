"""The delineator registry: every method maps ``ecg: (12, T) mV, fs`` to the same ``Fiducials``.

``delineate(ecg, fs, "ecgdeli")`` runs one by name; an unknown name raises ``UnknownNameError``
listing the valid ones. Registered here:

``neurokit``
    the project's own delineation (``xand.delineation.neurokit``): R peaks on a lead combination,
    NeuroKit2's prominence delineator for P and T, slope-threshold QRS bounds, multi-lead harmonising.
``ecgdeli``
    the Python port of KIT's ECGdeli (Pilia et al. 2021, SoftwareX 13:100639), the algorithm behind
    the PTB-XL+ fiducials (Strodthoff et al. 2023, Sci Data 10:279), so any ECG (CinC, uploads)
    gets its points from the same algorithm as PTB-XL+ (``xand.delineation.ecgdeli``).
``unet``
    a small 1-D U-Net trained on LUDB's cardiologists' marks (``xand.delineation.learned``; committed
    weights, reproduced by ``python -m xand train-delineator LUDB_DIR``).

Every method applies the same order rules and quality flag (``xand.delineation.rules``) and never
invents a wave: a point a method did not find stays NaN. ``offsets_ms`` (per kind, ms, subtracted)
removes a systematic bias measured on training folds (``xand.delineation.validation.validate_ludb``
with ``cv``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xand.constants import FIDUCIAL_KINDS
from xand.delineation.neurokit import ALGORITHM_VERSION as NK_ALGORITHM_VERSION
from xand.fiducials import Fiducials, kind_index
from xand.registry import Registry

#: name -> delineator(ecg (12, T) mV, fs Hz, **options) -> Fiducials at ``fs``
DELINEATORS: Registry[Callable[..., Fiducials]] = Registry("delineator", default="neurokit")

#: name -> version string; bumped when a method's output changes (cache keys include it)
_VERSIONS: dict[str, str] = {}


def register_delineator(name: str, version: str = "1") -> Callable:
    """Decorator adding ``fn(ecg, fs, **options) -> Fiducials`` to ``DELINEATORS``."""
    def deco(fn: Callable[..., Fiducials]) -> Callable[..., Fiducials]:
        _VERSIONS[name] = version
        return DELINEATORS.register(name)(fn)
    return deco


def algorithm_version(name: str) -> str:
    """The registered delineator's version (part of every cache key)."""
    DELINEATORS.get(name)
    return _VERSIONS.get(name, "1")


def list_delineators() -> list[str]:
    """Registered delineator names, the default first."""
    return DELINEATORS.names()


def apply_offsets(fid: Fiducials, offsets_ms: dict[str, float] | None) -> Fiducials:
    """The same fiducials with a systematic bias removed: ``offsets_ms[kind]`` (ms, the method's mean
    error, detected minus reference) is subtracted from every point of that kind. Missing points stay
    missing; a point moved outside the record becomes NaN."""
    if not offsets_ms:
        return fid
    beats = [b.copy() for b in fid.beats]
    for kind, off in offsets_ms.items():
        j = kind_index(kind)
        shift = float(off) * fid.fs / 1000.0
        for b in beats:
            b[:, j] -= shift
            b[(b[:, j] < 0) | (b[:, j] > fid.n_samples - 1), j] = np.nan
    return Fiducials(fid.fs, fid.n_samples, beats, fid.quality.copy(), fid.source)


def delineate(ecg: np.ndarray, fs: float, delineator: str = "neurokit",
              offsets_ms: dict[str, float] | None = None, **options: Any) -> Fiducials:
    """Fiducial points of a 12-lead ECG with the registered method ``delineator``.

    Parameters
    ----------
    ecg : ``(12, T)`` mV, LEADS order
    fs : sampling rate, Hz
    delineator : a name of ``DELINEATORS`` (``list_delineators()``)
    offsets_ms : per-kind systematic offsets to remove (see ``apply_offsets``)
    options : passed to the method (``cfg=`` for ``neurokit``, ``marks=`` for ``ecgdeli``)

    Returns
    -------
    Fiducials at ``fs`` with a per-lead quality flag.
    """
    fid = DELINEATORS.create(delineator, ecg, fs, **options)
    return apply_offsets(fid, offsets_ms)


@register_delineator("neurokit", version=NK_ALGORITHM_VERSION)
def _neurokit(ecg: np.ndarray, fs: float, cfg: Any = None) -> Fiducials:
    from xand.delineation.neurokit import delineate as nk_delineate

    return nk_delineate(ecg, fs, cfg)


@register_delineator("ecgdeli", version="1")
def _ecgdeli(ecg: np.ndarray, fs: float, marks: str = "lead") -> Fiducials:
    from xand.delineation.ecgdeli import delineate_ecgdeli

    return delineate_ecgdeli(ecg, fs, marks=marks)


@register_delineator("unet", version="1")
def _unet(ecg: np.ndarray, fs: float, weights: str | None = None) -> Fiducials:
    from xand.delineation.learned import delineate_unet, load_unet

    return delineate_unet(ecg, fs, load_unet(weights))


__all__ = ["DELINEATORS", "FIDUCIAL_KINDS", "algorithm_version", "apply_offsets", "delineate",
           "list_delineators", "register_delineator"]
