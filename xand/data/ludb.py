"""LUDB reader: records with their cardiologists' per-lead delineation (validation: ``xand.delineation.validation``).

LUDB (Kalyakulina et al. 2020, "LUDB: a new open-access validation tool for electrocardiogram
delineation algorithms", IEEE Access 8:186181) holds 10 s, 500 Hz 12-lead ECGs in which cardiologists
marked, on every lead separately, the onset ``(``, peak (``p`` P wave, ``N`` QRS, ``t`` T wave) and
offset ``)`` of each wave. Only the central part of a record is annotated (the first and last beat or
two are not), so a record carries the annotated span of every lead and the validation scores detections
inside it only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.errors import DataError
from xand.fiducials import Fiducials, kind_index

#: Annotation file extension of every lead, in LEADS order.
LUDB_EXTENSIONS: tuple[str, ...] = (
    "i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6",
)

#: LUDB peak symbol -> the (onset, peak, offset) fiducial kinds it stands for.
WAVE_KINDS: dict[str, tuple[str, str, str]] = {
    "p": ("P_on", "P_peak", "P_off"),
    "N": ("QRS_on", "R_peak", "QRS_off"),
    "t": ("T_on", "T_peak", "T_off"),
}

_DIAGNOSIS_COLUMNS = (
    "Rhythms", "Electric axis of the heart", "Conduction abnormalities", "Extrasystolies",
    "Hypertrophies", "Cardiac pacing", "Ischemia", "Non-specific repolarization abnormalities",
    "Other states",
)


@dataclass
class LudbRecord:
    """One LUDB record.

    Attributes
    ----------
    record : record number (1-200)
    signal : ``(12, T)`` float32 mV at ``fs`` (LEADS order)
    fs : 500.0 Hz
    fiducials : the cardiologists' points per lead and beat (``source="ludb"``); beats are grouped by
        QRS; a P or T wave that belongs to no annotated QRS is kept as a row of its own (other kinds NaN)
    spans : ``(12, 2)`` first and last annotated sample per lead (NaN for a lead without annotations)
    diagnosis : the diagnoses of ``ludb.csv`` (or the header comments), ``"; "``-separated
    n_dropped : per lead, annotation marks that formed no typed wave (e.g. ``()`` without a peak symbol)
    """

    record: int
    signal: np.ndarray
    fs: float
    fiducials: Fiducials
    spans: np.ndarray
    diagnosis: str = ""
    n_dropped: np.ndarray = field(default_factory=lambda: np.zeros(N_LEADS, dtype=int))

    @property
    def annotated_span(self) -> tuple[float, float]:
        """First and last annotated sample over all leads."""
        return float(np.nanmin(self.spans[:, 0])), float(np.nanmax(self.spans[:, 1]))


def _data_folder(ludb_dir: str | Path) -> Path:
    root = Path(ludb_dir)
    if not root.is_dir():
        raise DataError(root, "is not a folder", "a LUDB folder (with data/*.hea or *.hea)")
    return root / "data" if (root / "data").is_dir() else root


def list_ludb(ludb_dir: str | Path) -> list[int]:
    """Record numbers present in a LUDB folder (``RECORDS`` when present, else ``data/*.hea``), sorted."""
    root = Path(ludb_dir)
    data = _data_folder(root)
    names: list[str] = []
    if (root / "RECORDS").is_file():
        names = [ln.strip().split("/")[-1] for ln in (root / "RECORDS").read_text().splitlines() if ln.strip()]
        names = [n for n in names if (data / f"{n}.hea").is_file()]
    if not names:
        names = [p.stem for p in data.glob("*.hea")]
    out = sorted(int(n) for n in names if n.isdigit())
    if not out:
        raise DataError(root, "holds no LUDB record", "RECORDS or data/<n>.hea files")
    return out


def _parse_waves(symbols: list[str], samples: np.ndarray) -> tuple[list[tuple[str, float, float, float]], int]:
    """Waves ``(symbol, onset, peak, offset)`` from one lead's marks; marks that form no typed wave are
    counted as dropped. A peak without a bracket keeps NaN on that side (nothing is guessed)."""
    waves: list[tuple[str, float, float, float]] = []
    dropped = 0
    cur: dict | None = None

    def close(off: float = np.nan) -> None:
        nonlocal cur, dropped
        if cur is not None:
            if cur["sym"] is None:
                dropped += 1
            else:
                waves.append((cur["sym"], cur["on"], cur["peak"], off))
        cur = None

    for sym, s in zip(symbols, samples.astype(float)):
        if sym == "(":
            close()
            cur = {"sym": None, "on": s, "peak": np.nan}
        elif sym in WAVE_KINDS:
            if cur is None or cur["sym"] is not None:
                close()
                cur = {"sym": sym, "on": np.nan, "peak": s}
            else:
                cur["sym"], cur["peak"] = sym, s
        elif sym == ")":
            if cur is None:
                dropped += 1
            else:
                close(s)
        else:
            dropped += 1
    close()
    return waves, dropped


def _group_beats(waves: list[tuple[str, float, float, float]]) -> np.ndarray:
    """Beats ``(n, len(FIDUCIAL_KINDS))`` grouped by QRS: the last P wave before a QRS (after the previous
    QRS) and the first T wave after it (before the next QRS) join that QRS; other waves get own rows."""
    qrs = sorted((w for w in waves if w[0] == "N"), key=lambda w: w[2])
    r = np.array([w[2] for w in qrs])
    rows = [np.full(len(FIDUCIAL_KINDS), np.nan) for _ in qrs]
    for row, w in zip(rows, qrs):
        row[[kind_index(k) for k in WAVE_KINDS["N"]]] = w[1:]
    extra = []
    taken: set[tuple[int, str]] = set()
    # P: iterate latest first so the P closest to its QRS wins; T: earliest first.
    for sym, order in (("p", -1), ("t", 1)):
        ws = sorted((w for w in waves if w[0] == sym), key=lambda w: w[2])[::order]
        for w in ws:
            pos = w[2]
            if sym == "p":
                k = int(np.searchsorted(r, pos, side="right"))  # next QRS
                ok = k < len(r)
            else:
                k = int(np.searchsorted(r, pos, side="left")) - 1  # previous QRS
                ok = k >= 0
            row = np.full(len(FIDUCIAL_KINDS), np.nan)
            row[[kind_index(x) for x in WAVE_KINDS[sym]]] = w[1:]
            if ok and (k, sym) not in taken:
                taken.add((k, sym))
                idx = [kind_index(x) for x in WAVE_KINDS[sym]]
                rows[k][idx] = w[1:]
            else:
                extra.append(row)
    allrows = rows + extra
    if not allrows:
        return np.empty((0, len(FIDUCIAL_KINDS)))
    arr = np.vstack(allrows)
    ref = arr[:, kind_index("R_peak")].copy()
    missing = np.isnan(ref)
    ref[missing] = np.nanmin(arr[missing], axis=1) if missing.any() else ref[missing]
    return arr[np.argsort(ref, kind="stable")]


def _diagnosis(root: Path, record: int, comments: list[str]) -> str:
    table = root / "ludb.csv"
    if table.is_file():
        with table.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if str(row.get("ID", "")).strip() == str(record):
                    parts = []
                    for col in _DIAGNOSIS_COLUMNS:
                        parts += [p.strip() for p in (row.get(col) or "").splitlines() if p.strip()]
                    return "; ".join(parts)
    keep = [c.strip().rstrip(".").strip() for c in comments if not c.strip().startswith("<")]
    return "; ".join(k for k in keep if k)


def read_ludb(ludb_dir: str | Path, record: int | str) -> LudbRecord:
    """Read one LUDB record with its per-lead expert annotations.

    Parameters
    ----------
    ludb_dir : LUDB folder (the one holding ``data/`` and ``ludb.csv``, or ``data/`` itself)
    record : record number

    Returns
    -------
    LudbRecord with ``signal (12, T) float32 mV`` at 500 Hz and ``fiducials`` at the same rate.

    Raises
    ------
    DataError : missing or unreadable header, signal or annotation file, wrong leads or non-finite samples
    """
    import wfdb

    root = Path(ludb_dir)
    data = _data_folder(root)
    rec = int(record)
    base = data / str(rec)
    for ext in ("hea", "dat"):
        if not base.with_suffix(f".{ext}").is_file():
            raise DataError(base.with_suffix(f".{ext}"), "is missing", "a LUDB WFDB record")
    try:
        sig, info = wfdb.rdsamp(str(base))
    except Exception as exc:  # wfdb raises assorted errors for truncated/corrupt files
        raise DataError(base.with_suffix(".hea"), f"cannot be read ({exc})", "a valid WFDB record") from exc
    names = [n.lower() for n in info["sig_name"]]
    if sorted(names) != sorted(LUDB_EXTENSIONS):
        raise DataError(base.with_suffix(".hea"), f"has leads {names}", f"the 12 leads {list(LUDB_EXTENSIONS)}")
    signal = sig[:, [names.index(e) for e in LUDB_EXTENSIONS]].T.astype(np.float32)
    if not np.isfinite(signal).all():
        raise DataError(base.with_suffix(".dat"), "holds non-finite samples", "finite mV values")
    fs = float(info["fs"])
    beats, spans, dropped = [], np.full((N_LEADS, 2), np.nan), np.zeros(N_LEADS, dtype=int)
    for i, ext in enumerate(LUDB_EXTENSIONS):
        path = base.with_suffix(f".{ext}")
        if not path.is_file():
            raise DataError(path, "is missing", f"the annotation file of lead {LEADS[i]}")
        try:
            ann = wfdb.rdann(str(base), ext)
        except Exception as exc:
            raise DataError(path, f"cannot be read ({exc})", "a WFDB annotation file") from exc
        samples = np.asarray(ann.sample, dtype=np.int64)
        if len(samples):
            spans[i] = samples.min(), samples.max()
        waves, dropped[i] = _parse_waves(list(ann.symbol), samples)
        beats.append(_group_beats(waves))
    fid = Fiducials(fs, signal.shape[1], beats, np.ones(N_LEADS, dtype=bool), "ludb")
    return LudbRecord(rec, signal, fs, fid, spans, _diagnosis(root, rec, info.get("comments") or []), dropped)


__all__ = ["LUDB_EXTENSIONS", "LudbRecord", "WAVE_KINDS", "list_ludb", "read_ludb"]
