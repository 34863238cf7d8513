"""What every upload format shares: limits (``UploadConfig``), the parsed result (``UploadedECG``), file
name and type checks, lead names, the rate, and the checks every signal passes (``_finish``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.errors import DataError, UnknownNameError

#: What the reviewer may upload, for messages.
ACCEPTED = ("a WFDB .hea + .dat pair, a CinC .hea + .mat pair, or a CSV/NPY array of 12 leads "
            "with its sampling rate and units")


#: Units an array upload may be stated in, as a factor to mV.
UNITS: dict[str, float] = {"mV": 1.0, "µV": 1e-3, "uV": 1e-3}


#: Physical units a WFDB/CinC header may give, as a factor to mV (lower-case keys).
_HEADER_UNITS: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


#: File signatures of common non-ECG files, for a message that says what the file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office/.npz file)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BM", "a BMP image"),
    (b"\x89HDF", "an HDF5 file (MATLAB v7.3 is not supported: save with -v4 or -v7)"),
)


#: Signatures long enough to test on binary signal files too (a short one could be sample values).
_LONG_MAGIC = {b"\x89PNG\r\n\x1a\n", b"%PDF-", b"\x89HDF"}


#: CSV header names of a leading column that is not a lead (dropped).
_INDEX_COLUMNS = {"", "time", "t", "time_s", "times", "seconds", "s", "ms", "sample", "samples", "index",
                  "unnamed: 0"}


@dataclass
class UploadConfig:
    """Limits of an upload (serialisable with ``dataclasses.asdict``).

    Attributes
    ----------
    max_bytes : total size of the uploaded files (20 MB of 2**20 bytes, Streamlit's MB: about 29 min of
        12-lead 500 Hz WFDB format 16, or 7 min as CSV text with 4 decimals)
    min_fs, max_fs : accepted sampling rates (Hz); below 100 Hz a QRS complex (80-120 ms) spans too few
        samples, above 10 kHz the value is a typo more likely than a recording
    min_seconds, max_seconds : accepted record duration (s); the model reads its first 10 s
    max_abs_mV : largest plausible deviation from a lead's median (mV); surface ECG waves are a few mV
        (Kligfield et al. 2007), so more means wrong units or not an ECG
    min_range_mV : smallest plausible peak-to-peak range of the largest lead (mV)
    """

    max_bytes: int = 20 * 1024 * 1024
    min_fs: float = 100.0
    max_fs: float = 10_000.0
    min_seconds: float = 2.0
    max_seconds: float = 600.0
    max_abs_mV: float = 30.0
    min_range_mV: float = 0.02


@dataclass
class UploadedECG:
    """One uploaded ECG, validated.

    Attributes
    ----------
    name : record name (file stem)
    signal : ``(12, T)`` float32 mV in ``LEADS`` order at ``fs`` Hz (the whole upload)
    fs : sampling rate (Hz)
    format : ``"wfdb"``, ``"cinc"``, ``"csv"`` or ``"npy"`` (a key of ``UPLOAD_FORMATS``)
    files : names of the uploaded files
    meta : what the files said besides the signal (units, header comments, CinC ``snomed``/``age``/``sex``)
    """

    name: str
    signal: np.ndarray
    fs: float
    format: str
    files: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def seconds(self) -> float:
        return self.n_samples / self.fs

    @property
    def digest(self) -> str:
        """The identity of this ECG for caches (:func:`signal_digest`)."""
        return signal_digest(self.signal, self.fs)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description (no samples)."""
        return {"name": self.name, "format": self.format, "files": list(self.files), "fs": self.fs,
                "n_samples": self.n_samples, "seconds": self.seconds, "digest": self.digest,
                "meta": self.meta}


def signal_digest(ecg: np.ndarray, fs: float) -> str:
    """SHA-256 of ``ecg (12, T)`` as float32 and its rate ``fs`` (Hz): the same ECG, the same key."""
    x = np.ascontiguousarray(ecg, dtype=np.float32)
    h = hashlib.sha256(x.tobytes())
    h.update(repr((x.shape, float(fs))).encode())
    return h.hexdigest()


def _suffix(name: str) -> str:
    return Path(name).suffix.lower().lstrip(".")


MAX_NAME_BYTES = 200  # well under the 255-byte limit of a file name on every common file system


def _basename(name: str) -> str:
    """The file name alone: a browser sends a name, but never trust it to be free of folders, control
    characters (a NUL makes every file call fail) or a length the file system refuses."""
    base = Path(str(name).replace("\\", "/")).name
    shown = "".join(ch if ch.isprintable() else "?" for ch in base)[:80]
    if not base or any(not ch.isprintable() for ch in base):
        raise DataError(shown or "(no name)", "file name is empty or holds control characters",
                        "a plain file name such as 00001_hr.hea")
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        raise DataError(shown + "…", f"file name of {len(base.encode('utf-8'))} bytes",
                        f"at most {MAX_NAME_BYTES} bytes")
    return base


def _sniff(name: str, data: bytes) -> None:
    """Refuse files that are plainly something else (an image, a PDF, an archive), whatever their name."""
    binary_signal = _suffix(name) in ("dat", "mat")
    for magic, what in _MAGIC:
        if binary_signal and magic not in _LONG_MAGIC:
            continue
        if data.startswith(magic):
            if magic == b"BM" and _suffix(name) in ("csv", "txt", "hea"):
                continue  # "BM..." is a plausible first word of a text file; only refuse it elsewhere
            raise DataError(name, f"is {what}, not ECG data", ACCEPTED)


def _text(name: str, data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise DataError(name, "is a binary file, not text", "a text file (CSV or WFDB header)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lead_key(name: str) -> str:
    key = re.sub(r"^(lead)[\s_-]*", "", str(name).strip(), flags=re.IGNORECASE)
    return key.lower()


def _lead_order(where: str, names: Sequence[str]) -> list[int]:
    """Positions of ``LEADS`` in ``names`` (case-insensitive, an optional "lead " prefix ignored)."""
    keys = [_lead_key(n) for n in names]
    want = [lead.lower() for lead in LEADS]
    if sorted(keys) != sorted(want):
        unknown = [n for n, k in zip(names, keys) if k not in want]
        missing = [lead for lead in LEADS if lead.lower() not in keys]
        detail = (f" (unknown: {unknown})" if unknown else "") + (f" (missing: {missing})" if missing else "")
        raise DataError(where, f"lead names {list(names)}{detail}", f"the 12 standard leads {', '.join(LEADS)}")
    return [keys.index(k) for k in want]


def _check_rate(where: str, fs: Any, cfg: UploadConfig) -> float:
    try:
        value = float(fs)
    except (TypeError, ValueError):
        value = float("nan")
    if fs is None or not np.isfinite(value):
        raise DataError(where, "no sampling rate given", "the sampling rate in Hz (e.g. 500)")
    if not cfg.min_fs <= value <= cfg.max_fs:
        raise DataError(where, f"sampling rate {value:g} Hz", f"{cfg.min_fs:g} to {cfg.max_fs:g} Hz")
    return value


def _finish(where: str, name: str, signal: np.ndarray, fs: float, fmt: str, files: tuple[str, ...],
            meta: dict[str, Any], cfg: UploadConfig) -> UploadedECG:
    """The checks every format shares, on ``signal (12, T)`` mV in ``LEADS`` order."""
    bad = ~np.isfinite(signal)  # before the float32 cast, which would turn a huge value into inf
    sig = np.asarray(signal, dtype=np.float32)  # the checks in float32: half the memory of float64 copies
    if bad.any():
        lead = LEADS[int(np.argmax(bad.any(axis=1)))]
        first = int(np.argmax(bad.any(axis=0)))
        raise DataError(where, f"{int(bad.sum())} NaN/missing samples (first in lead {lead} at sample {first})",
                        "a finite value for every lead and sample")
    seconds = sig.shape[1] / fs
    if seconds < cfg.min_seconds:
        raise DataError(where, f"lasts {seconds:.2f} s ({sig.shape[1]} samples at {fs:g} Hz)",
                        f"at least {cfg.min_seconds:g} s: is the sampling rate right?")
    if seconds > cfg.max_seconds:
        raise DataError(where, f"lasts {seconds:.0f} s ({sig.shape[1]} samples at {fs:g} Hz)",
                        f"at most {cfg.max_seconds:g} s")
    dev = sig - np.median(sig, axis=1, keepdims=True)
    np.abs(dev, out=dev)
    amp = float(np.quantile(dev, 0.999, overwrite_input=True))
    if amp > cfg.max_abs_mV:
        raise DataError(where, f"amplitude of {amp:.4g} mV is implausible for a surface ECG",
                        f"at most {cfg.max_abs_mV:g} mV: are the values in µV rather than mV?")
    span = float(np.ptp(sig, axis=1).max())
    if span < cfg.min_range_mV:
        raise DataError(where, f"largest lead spans only {span:.3g} mV (flat or wrongly scaled)",
                        f"an ECG of at least {cfg.min_range_mV:g} mV peak to peak: "
                        "are the values in mV rather than µV?")
    return UploadedECG(name=name, signal=np.ascontiguousarray(sig), fs=float(fs), format=fmt,
                       files=files, meta=meta)


def _to_leads(where: str, arr: np.ndarray) -> np.ndarray:
    """A 2-D array with one axis of 12 leads -> ``(12, T)``."""
    if arr.ndim != 2:
        raise DataError(where, f"array has {arr.ndim} dimension(s), shape {arr.shape}",
                        f"a 2-D array of {N_LEADS} leads: ({N_LEADS}, T) or (T, {N_LEADS})")
    if arr.shape[0] == N_LEADS and arr.shape[1] != N_LEADS:
        return arr
    if arr.shape[1] == N_LEADS:
        return arr.T
    raise DataError(where, f"array of shape {arr.shape} has {min(arr.shape)} leads",
                    f"{N_LEADS} leads ({', '.join(LEADS)}): shape ({N_LEADS}, T) or (T, {N_LEADS})")


def _units(units: str) -> float:
    if units not in UNITS:
        raise UnknownNameError("unit", units, tuple(UNITS))
    return UNITS[units]


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
