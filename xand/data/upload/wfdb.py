"""Header uploads: WFDB (``.hea`` + ``.dat``) and CinC (``.hea`` + ``.mat``), the header checked (rate,
length, gains, size of the signal file) before any sample is read, checksums after."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.data.header import check_signal_gains, checked_gains, declared_rate
from xand.data.matfile import load_val
from xand.data.upload.common import (
    _HEADER_UNITS,
    ACCEPTED,
    UploadConfig,
    UploadedECG,
    _check_rate,
    _finish,
    _lead_order,
    _suffix,
    _text,
)
from xand.errors import DataError


@dataclass
class _Header:
    name: str
    fs: float
    n_samples: int
    leads: list[str]
    files: list[str]
    fmt: list[str]
    gain: np.ndarray
    baseline: np.ndarray
    to_mv: np.ndarray
    checksum: list[int | None]
    comments: list[str]
    byte_offset: bool = False


def _read_header(hea_name: str, data: bytes, tmp: Path, cfg: UploadConfig) -> _Header:
    """Validate a WFDB header from bytes (``wfdb.rdheader`` reads it from ``tmp``)."""
    import wfdb

    text = _text(hea_name, data)
    record_line = next((ln.split() for ln in text.splitlines()
                        if ln.strip() and not ln.lstrip().startswith("#")), [])
    if len(record_line) < 2 or not record_line[1].isdigit():
        raise DataError(hea_name, "is not a WFDB header (no '<record> <n_signals> <fs> <n_samples>' line)",
                        ACCEPTED)
    declared_rate(hea_name, record_line)  # wfdb reads a missing or negative rate as 250 Hz
    check_signal_gains(hea_name, text)
    n_sig = int(record_line[1])
    if n_sig != N_LEADS:
        raise DataError(hea_name, f"has {n_sig} leads", f"{N_LEADS} leads ({', '.join(LEADS)})")
    stem = Path(hea_name).stem
    (tmp / f"{stem}.hea").write_text(text)
    try:
        h = wfdb.rdheader(str(tmp / stem))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on malformed lines
        raise DataError(hea_name, f"unreadable WFDB header ({type(exc).__name__}: {exc})", ACCEPTED) from None
    fs = _check_rate(hea_name, h.fs, cfg)
    if not h.sig_len or h.sig_len <= 0:
        raise DataError(hea_name, f"signal length {h.sig_len}", "a positive number of samples per lead")
    seconds = h.sig_len / fs
    if not cfg.min_seconds <= seconds <= cfg.max_seconds:  # from the header, before any signal is read
        raise DataError(hea_name, f"declares {h.sig_len} samples per lead at {fs:g} Hz ({seconds:.1f} s)",
                        f"{cfg.min_seconds:g} to {cfg.max_seconds:g} s")
    leads = list(h.sig_name or [])
    _lead_order(hea_name, leads)
    gain = checked_gains(hea_name, [200.0 if g == 0 else g for g in h.adc_gain], h.sig_name)  # WFDB: 0 means 200
    units = [(u or "mV").strip().lower() for u in (h.units or ["mV"] * N_LEADS)]
    unknown = sorted({u for u in units if u not in _HEADER_UNITS})
    if unknown:
        raise DataError(hea_name, f"units {unknown}", "mV, uV or V")
    return _Header(name=stem, fs=fs, n_samples=int(h.sig_len), leads=leads, files=list(h.file_name or []),
                   fmt=[str(f) for f in (h.fmt or [])], gain=gain,
                   baseline=np.asarray(h.baseline, dtype=np.float64),
                   to_mv=np.array([_HEADER_UNITS[u] for u in units]),
                   checksum=list(h.checksum or [None] * N_LEADS), comments=list(h.comments or []),
                   byte_offset=any(o for o in (h.byte_offset or []) if o))


def _check_pair(hdr: _Header, hea_name: str, signal_name: str, kind: str) -> None:
    named = sorted(set(hdr.files))
    if named != [signal_name]:
        raise DataError(hea_name, f"names the signal file(s) {named} but {signal_name} was uploaded",
                        f"the {kind} file this header belongs to (upload the matching pair)")


def _check_checksums(hdr: _Header, digital: np.ndarray, signal_name: str, hea_name: str) -> None:
    """WFDB checksum: the 16-bit sum of each lead's digital samples (catches a mismatched pair)."""
    sums = digital.astype(np.int64).sum(axis=1)
    for i, (got, want) in enumerate(zip(sums, hdr.checksum)):
        if want is not None and (int(got) - int(want)) % 65536:
            raise DataError(signal_name, f"lead {hdr.leads[i]} checksum {int(got) % 65536}",
                            f"{int(want) % 65536} from {hea_name}: the signal file does not belong to this "
                            "header, or it is corrupt")


#: Bytes per sample of the fixed-size WFDB formats (signal-file size check before reading).
_BYTES_PER_SAMPLE: dict[str, float] = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
                                       "212": 1.5, "310": 4 / 3, "311": 4 / 3}


def _check_size(hdr: _Header, hea_name: str, dat_name: str, size: int) -> None:
    """A signal file of the wrong size belongs to another record or is truncated: say so before reading."""
    fmts = set(hdr.fmt)
    if len(fmts) != 1 or not fmts <= set(_BYTES_PER_SAMPLE) or hdr.byte_offset:
        return  # mixed formats or a byte offset: wfdb's own reading decides
    fmt = fmts.pop()
    want = N_LEADS * hdr.n_samples * _BYTES_PER_SAMPLE[fmt]
    if not int(want) <= size <= int(np.ceil(want)) + 1:  # packed formats may pad the last sample group
        raise DataError(dat_name, f"is {size} bytes",
                        f"{int(np.ceil(want))} bytes ({N_LEADS} leads x {hdr.n_samples} samples in format {fmt}, "
                        f"as {hea_name} says): the files do not belong together, or the file is truncated")


def _physical(hdr: _Header, digital: np.ndarray) -> np.ndarray:
    sig = (digital.astype(np.float64) - hdr.baseline[:, None]) / hdr.gain[:, None] * hdr.to_mv[:, None]
    return sig[_lead_order(hdr.name, hdr.leads)]


def _header_meta(hdr: _Header) -> dict[str, Any]:
    meta: dict[str, Any] = {"units": "from the header", "comments": hdr.comments,
                            "lead_order": "by the header's lead names"}
    for c in hdr.comments:
        key, sep, value = c.partition(":")
        key = key.strip().lstrip("#").strip().lower()
        if not sep:
            continue
        if key == "dx":
            codes = [p.strip() for p in value.split(",") if p.strip().isdigit()]
            meta["snomed"] = [int(p) for p in codes]
        elif key == "age":
            try:
                meta["age"] = float(value)
            except ValueError:
                pass
        elif key == "sex":
            meta["sex"] = value.strip()
    return meta


def _pair(files: dict[str, bytes], signal_ext: str) -> tuple[str, bytes, str, bytes]:
    hea = next(n for n in files if _suffix(n) == "hea")
    sig = next(n for n in files if _suffix(n) == signal_ext)
    return hea, files[hea], sig, files[sig]


def _read_wfdb(files: dict[str, bytes], fs: Any, units: str, cfg: UploadConfig) -> UploadedECG:
    import wfdb

    hea_name, hea_data, dat_name, dat_data = _pair(files, "dat")
    with tempfile.TemporaryDirectory(prefix="xand-upload-") as tmp_s:
        tmp = Path(tmp_s)
        hdr = _read_header(hea_name, hea_data, tmp, cfg)
        _check_pair(hdr, hea_name, dat_name, ".dat")
        _check_size(hdr, hea_name, dat_name, len(dat_data))
        (tmp / dat_name).write_bytes(dat_data)
        try:
            rec = wfdb.rdrecord(str(tmp / hdr.name), physical=False, return_res=64)
        except Exception as exc:  # truncated/foreign signal files raise a zoo of errors in wfdb
            raise DataError(dat_name, f"unreadable with its header {hea_name} ({type(exc).__name__}: {exc})",
                            "the signal file this header describes") from None
        digital = np.asarray(rec.d_signal).T
        if digital.shape != (N_LEADS, hdr.n_samples):
            raise DataError(dat_name, f"holds {digital.shape[1]} samples per lead",
                            f"{hdr.n_samples} from {hea_name}: the files do not belong together")
        _check_checksums(hdr, digital, dat_name, hea_name)
        physical = np.asarray(rec.dac(expanded=False, return_res=64, inplace=False), dtype=np.float64).T
    to_mv = hdr.to_mv[:, None]
    sig = (physical * to_mv)[_lead_order(hea_name, hdr.leads)]
    return _finish(dat_name, hdr.name, sig, hdr.fs, "wfdb", (hea_name, dat_name), _header_meta(hdr), cfg)


def _read_cinc(files: dict[str, bytes], fs: Any, units: str, cfg: UploadConfig) -> UploadedECG:
    hea_name, hea_data, mat_name, mat_data = _pair(files, "mat")
    with tempfile.TemporaryDirectory(prefix="xand-upload-") as tmp_s:
        hdr = _read_header(hea_name, hea_data, Path(tmp_s), cfg)
    _check_pair(hdr, hea_name, mat_name, ".mat")
    val = load_val(mat_data, mat_name, (N_LEADS, hdr.n_samples), max_bytes=cfg.max_bytes)
    if val.dtype.kind not in "iuf":
        raise DataError(mat_name, f"'val' has dtype {val.dtype}", "numeric samples")
    if val.dtype.kind in "iu":
        _check_checksums(hdr, val, mat_name, hea_name)
    return _finish(mat_name, hdr.name, _physical(hdr, val), hdr.fs, "cinc", (hea_name, mat_name),
                   _header_meta(hdr), cfg)
