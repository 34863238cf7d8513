"""Any ECG source as one stream of ``(record id, ecg (12, T) mV, fs)``: a record file or a folder.

``iter_records(path)`` recognises a PTB-XL folder (``ptbxl_database.csv``; records at the highest rate
on disk), a LUDB folder (``ludb.csv`` or ``data/*.hea`` with LUDB's per-lead annotation files), a
folder of CinC Challenge records (``*.hea`` + ``*.mat``), any folder of WFDB records, or one record
(``.hea`` or its base path). A record that cannot be read is yielded with its reason, never raised,
so a batch over a cohort reports it and goes on. Nothing is ever written to the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xand.errors import DataError


@dataclass
class RecordItem:
    """One record of a source: ``ecg`` ``(12, T)`` float32 mV at ``fs`` Hz, or ``error`` (why it was skipped)."""

    record: str
    ecg: np.ndarray | None
    fs: float
    error: str | None = None


#: What a malformed record may raise: reported per record, never out of a batch.
_BAD = (DataError, OSError, ValueError, KeyError)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"


def source_kind(path: str | Path) -> str:
    """``"ptbxl"``, ``"ludb"``, ``"cinc"``, ``"wfdb"`` (a folder of WFDB records) or ``"record"``."""
    p = Path(path)
    if p.is_dir():
        if (p / "ptbxl_database.csv").is_file():
            return "ptbxl"
        if (p / "ludb.csv").is_file() or ((p / "data").is_dir() and any((p / "data").glob("*.i"))):
            return "ludb"
        if any(p.rglob("*.mat")):
            return "cinc"
        if any(p.rglob("*.hea")):
            return "wfdb"
        raise DataError(p, "holds no ECG records", "a PTB-XL, LUDB or CinC folder, or WFDB .hea records")
    base = p.with_suffix("") if p.suffix in (".hea", ".dat", ".mat") else p
    if base.with_suffix(".hea").is_file():
        return "record"
    raise DataError(p, "is neither a folder nor a record", "a dataset folder or a .hea record")


def _read_one(base: Path) -> tuple[np.ndarray, float]:
    if base.with_suffix(".mat").is_file():
        from xand.data.cinc import read_cinc

        rec = read_cinc(base)
        return rec.signal, float(rec.fs)
    from xand.data.ptbxl import read_wfdb

    return read_wfdb(base, expected_fs=None)


def iter_records(path: str | Path, limit: int | None = None) -> Iterator[RecordItem]:
    """The records of ``path`` (see the module docstring), at most ``limit`` of them."""
    kind = source_kind(path)
    p = Path(path)
    n = 0

    def more() -> bool:
        return limit is None or n < limit

    if kind == "record":
        base = p.with_suffix("") if p.suffix in (".hea", ".dat", ".mat") else p
        try:
            ecg, fs = _read_one(base)
            yield RecordItem(base.name, ecg, fs)
        except _BAD as exc:
            yield RecordItem(base.name, None, 0.0, _reason(exc))
        return
    if kind == "ptbxl":
        from xand.data.ptbxl import PTBXL

        ds = PTBXL(p)
        for eid in ds.meta.index:
            if not more():
                return
            n += 1
            try:
                rates = ds.rates_on_disk(int(eid))
                if not rates:
                    raise DataError(p, f"record {eid} has no files", "records100/ or records500/ files")
                fs = max(rates)
                yield RecordItem(str(eid), ds.load(int(eid), fs=fs), float(fs))
            except _BAD as exc:
                yield RecordItem(str(eid), None, 0.0, _reason(exc))
        return
    if kind == "ludb":
        from xand.data.ludb import list_ludb, read_ludb

        for rec in list_ludb(p):
            if not more():
                return
            n += 1
            try:
                r = read_ludb(p, rec)
                yield RecordItem(str(rec), r.signal, r.fs)
            except _BAD as exc:
                yield RecordItem(str(rec), None, 0.0, _reason(exc))
        return
    for hea in sorted(p.rglob("*.hea")):
        if not more():
            return
        n += 1
        base = hea.with_suffix("")
        try:
            ecg, fs = _read_one(base)
            yield RecordItem(base.name, ecg, fs)
        except _BAD as exc:
            yield RecordItem(base.name, None, 0.0, _reason(exc))


def load_at_rates(ds: Any, ecg_id: int, fs_work: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The record at the working rate (the model input, as in training) and at the highest rate on disk
    (for delineation, which is more precise at 500 Hz)."""
    ecg = ds.load(ecg_id, fs=fs_work)
    hi = max(ds.rates_on_disk(ecg_id), default=fs_work)
    if hi > fs_work:
        return ecg, ds.load(ecg_id, fs=hi), float(hi)
    return ecg, ecg, float(fs_work)
