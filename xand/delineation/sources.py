"""Where a record's fiducial points come from: PTB-XL+ files when the dataset has them (the synthetic set
keeps its ground truth there), else the project's own delineation (cached when a folder is given).

``resolve_fiducial_source(source, data_dir)`` returns ``(description, get)`` with
``get(ecg_id, ecg (12, T) mV, fs, fs_work, n_work) -> Fiducials``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from xand.errors import DataError
from xand.fiducials import Fiducials


def _ptbxl_plus_source(folder: Path) -> Callable[[int, np.ndarray, float, float, int], Fiducials]:
    from xand.data.ptbxl_plus import read_fiducials

    def get(ecg_id: int, ecg: np.ndarray, fs: float, fs_work: float, n_work: int) -> Fiducials:
        return read_fiducials(folder, ecg_id, fs=fs_work, n_samples=n_work)

    return get


def _delineation_source(cache_dir: str | Path | None = None) -> Callable[[int, np.ndarray, float, float, int],
                                                                         Fiducials]:
    from xand.delineation.cache import DelineationCache
    from xand.delineation.methods import delineate

    run = DelineationCache(cache_dir).delineate if cache_dir is not None else delineate

    def get(ecg_id: int, ecg: np.ndarray, fs: float, fs_work: float, n_work: int) -> Fiducials:
        return run(ecg, fs)

    return get


def has_ptbxl_plus(folder: str | Path) -> bool:
    """Whether ``folder`` holds PTB-XL+ ECGdeli fiducials (``fiducial_points/ecgdeli/``)."""
    return (Path(folder) / "fiducial_points" / "ecgdeli").is_dir()


def resolve_fiducial_source(source: str, data_dir: str | Path, cache_dir: str | Path | None = None
                            ) -> tuple[str, Callable[..., Fiducials]]:
    """Resolve ``source`` to ``(description, get(ecg_id, ecg_mV, fs, fs_work, n_work) -> Fiducials)``.

    ``"auto"``: the PTB-XL+ fiducials in ``data_dir`` when present (the synthetic set has its ground truth
    there), else the project's delineation. ``"ptbxl+"``: those in ``data_dir`` (required).
    ``"delineation"``: always the project's delineation (cached in ``cache_dir`` when given). Any other
    value: a PTB-XL+ folder path.
    """
    data_dir = Path(data_dir)
    if source == "auto":
        source = "ptbxl+" if has_ptbxl_plus(data_dir) else "delineation"
    if source == "delineation":
        return "delineation (neurokit2)", _delineation_source(cache_dir)
    folder = data_dir if source == "ptbxl+" else Path(source)
    if not has_ptbxl_plus(folder):
        raise DataError(folder, "no PTB-XL+ fiducials", "a folder with fiducial_points/ecgdeli/")
    return f"PTB-XL+ {folder}", _ptbxl_plus_source(folder)


def record_fiducials(ecg: np.ndarray, fs: float, ecg_id: int, plus_dir: str | Path | None = None,
                     cache_dir: str | Path | None = None) -> Fiducials:
    """One record's points: PTB-XL+ ECGdeli points when ``plus_dir`` has them for this record (missing
    leads tolerated), else the project's delineation of ``ecg (12, T) mV`` at ``fs`` (cached in
    ``cache_dir`` when given)."""
    from xand.data import ptbxl_plus

    if plus_dir and ptbxl_plus.has_fiducials(plus_dir, ecg_id):
        return ptbxl_plus.read_fiducials(plus_dir, ecg_id, fs=fs, n_samples=ecg.shape[1], strict=False)
    return _delineation_source(cache_dir)(ecg_id, ecg, fs, fs, ecg.shape[1])


def plus_folder(source: str, data_dir: str | Path) -> Path | None:
    """The PTB-XL+ folder a fiducial ``source`` (as in :func:`resolve_fiducial_source`) reads per record,
    or None for the project's delineation: ``"auto"`` -> ``data_dir`` when it has PTB-XL+ points,
    ``"ptbxl+"`` -> ``data_dir``, ``"delineation"`` -> None, a path -> that folder."""
    if source == "delineation":
        return None
    if source == "auto":
        return Path(data_dir) if has_ptbxl_plus(data_dir) else None
    return Path(data_dir) if source == "ptbxl+" else Path(source)

