"""ECGs a reviewer uploads: parsed from memory, validated, and fitted to a trained run's input window.

Accepted uploads (one record at a time):

* a WFDB record: ``<name>.hea`` + the signal file it names (``.dat``, any WFDB format ``wfdb`` reads);
* a PhysioNet/CinC Challenge record: ``<name>.hea`` + ``<name>.mat`` (a ``val`` matrix in digital units,
  gains and units in the header; Reyna et al. 2021);
* a CSV (``.csv``/``.txt``) or NumPy (``.npy``) array of the 12 leads, ``(12, T)`` or ``(T, 12)``, with a
  sampling rate and units (mV or µV) stated by the reviewer. A CSV may carry a header row of lead names
  (then columns are reordered by name); otherwise leads are in storage order I, II, III, aVR, aVL, aVF,
  V1-V6.

Everything is checked before anything is shown, and every problem is one ``DataError`` naming the file,
the value and what was expected: too large, not ECG data at all (an image or archive renamed), a header
without its signal file or a signal file that does not belong to the header (names, sizes, checksums), a
wrong lead count or unknown lead names, no or an implausible sampling rate, non-numeric or NaN samples, an
implausible amplitude (wrong units) or flat leads. Files are parsed from memory; WFDB headers, which the
``wfdb`` reader needs on disk, go to a private temporary folder that is deleted before the call returns.
Nothing is kept unless the caller saves it (:func:`save_upload`).

References
----------
Goldberger A.L. et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220 (2000)
(WFDB format, checksums).
Reyna M.A. et al. Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing in
Cardiology Challenge 2021. Computing in Cardiology 48 (2021) (Challenge ``.hea`` + ``.mat`` records).
Kligfield P. et al. Recommendations for the standardization and interpretation of the electrocardiogram.
Circulation 115:1306-1324 (2007) (surface ECG amplitudes are a few mV at most).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.data.matfile import load_val
from xand.data.header import check_signal_gains, checked_gains, declared_rate
from xand.errors import DataError, UnknownNameError
from xand.registry import Registry

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


# ------------------------------------------------------------------------------------------ helpers

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


# ----------------------------------------------------------------------------------- array formats

def _precheck_npy(name: str, data: bytes) -> None:
    """Check an .npy header's shape and dtype against the bytes that follow it, before numpy allocates
    the array it declares (a 4 kB file may declare 12 x 1e9 float32)."""
    if not data.startswith(b"\x93NUMPY"):
        return  # not an .npy (e.g. an .npz): np.load says what it is
    try:
        buf = io.BytesIO(data)
        version = np.lib.format.read_magic(buf)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(buf) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(buf))
    except Exception as exc:  # a damaged header: np.load would fail the same way
        raise DataError(name, f"is not a NumPy .npy array ({type(exc).__name__}: {exc})",
                        "a file written by numpy.save") from None
    if dtype.hasobject:
        raise DataError(name, f"array of dtype {dtype}", "numeric samples (integers or floats)")
    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if declared != len(data) - buf.tell():
        raise DataError(name, f"declares shape {tuple(shape)} ({declared} bytes) but holds {len(data) - buf.tell()}",
                        "a complete array written by numpy.save")


def _read_npy(files: dict[str, bytes], fs: Any, units: str, cfg: UploadConfig) -> UploadedECG:
    (name, data), = files.items()
    _precheck_npy(name, data)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/UnpicklingError for foreign bytes
        raise DataError(name, f"is not a NumPy .npy array ({type(exc).__name__}: {exc})",
                        "a file written by numpy.save") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        raise DataError(name, "is an .npz archive", "a single array saved with numpy.save")
    if arr.dtype.kind not in "iuf":
        raise DataError(name, f"array of dtype {arr.dtype}", "numeric samples (integers or floats)")
    sig = _to_leads(name, arr).astype(np.float64)
    rate = _check_rate(name, fs, cfg)
    factor = _units(units)
    return _finish(name, Path(name).stem, sig * factor, rate, "npy", (name,),
                   {"units": units, "lead_order": "storage order (no names in the file)"}, cfg)


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


def _precheck_csv_size(name: str, data: bytes, fs: Any, cfg: UploadConfig) -> None:
    """Refuse an over-long CSV from its bytes alone (lines x fields of the first line), before it is
    decoded or split: no copy of a file that is refused anyway."""
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        return  # the rate check after parsing says what is wrong
    if not np.isfinite(rate) or rate <= 0:
        return
    start, span = 0, None
    while start < len(data):  # the first data line (comments and blank lines skipped), by offsets: no copy
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        head = data[start: min(end, start + 256)].lstrip()
        if head and not head.startswith(b"#"):
            span = (start, end)
            break
        start = end + 1
    if span is None:
        return
    seps = max(data.count(sep, *span) for sep in (b",", b";", b"\t"))
    n_fields = seps + 1 if seps else len(data[span[0]: span[1]].split())
    if n_fields == N_LEADS + 1:  # a time or index column the reader drops
        n_fields = N_LEADS
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    n_samples = n_lines * n_fields // N_LEADS
    if n_samples / rate > cfg.max_seconds * 1.05:  # 5 % slack: header and comment lines are counted here
        raise DataError(name, f"holds about {n_samples} samples per lead ({n_samples / rate:.0f} s at {rate:g} Hz)",
                        f"at most {cfg.max_seconds:g} s")


def _head_lines(name: str, data: bytes, limit: int = 65536) -> tuple[list[str], int]:
    """The first two data lines (comments and blank lines skipped) and how many physical lines precede
    the second, from the first ``limit`` bytes only: the sniffing never decodes the whole file."""
    if b"\x00" in data[:4096]:
        raise DataError(name, "is a binary file, not text", "a text file (CSV or WFDB header)")
    head = data[:limit]
    if len(data) > limit:
        head = head[: head.rfind(b"\n") + 1] or head  # whole lines only
    text = _text(name, head)
    found: list[str] = []
    before_second = 0
    for i, ln in enumerate(text.splitlines()):
        if ln.strip() and not ln.lstrip().startswith("#"):
            found.append(ln)
            if len(found) == 2:
                before_second = i
                break
    if len(found) == 1:
        before_second = len(text.splitlines())
    return found, before_second


def _read_csv(files: dict[str, bytes], fs: Any, units: str, cfg: UploadConfig) -> UploadedECG:
    (name, data), = files.items()
    _precheck_csv_size(name, data, fs, cfg)
    lines, header_skip = _head_lines(name, data)
    if not lines:
        raise DataError(name, "is empty", "rows of 12 lead values")
    first = lines[0]
    try:
        delim = csv.Sniffer().sniff("\n".join(lines), ",;\t ").delimiter
    except csv.Error:
        delim = ","
    tokens = [t.strip().strip('"') for t in (first.split() if delim == " " else first.split(delim))]
    has_header = not all(_is_number(t) for t in tokens if t)
    rate = _check_rate(name, fs, cfg)
    names = tokens if has_header else None
    usecols = None
    if names is not None and len(names) == N_LEADS + 1 and (
            names[0].lower() in _INDEX_COLUMNS or names[0].lower().startswith("unnamed")):
        names, usecols = names[1:], range(1, N_LEADS + 1)  # a time or index column (pandas' to_csv) is not a lead
    if names is not None and len(names) != N_LEADS:
        raise DataError(name, f"has {len(names)} columns {names}", f"{N_LEADS} lead columns ({', '.join(LEADS)})")
    arr = None
    for encoding in ("utf-8-sig", "latin-1"):
        try:  # numpy's C reader straight from the bytes into float32: no decoded copy, no float64 frame
            arr = np.loadtxt(io.BytesIO(data), delimiter=None if delim == " " else delim, dtype=np.float32,
                             comments="#", skiprows=header_skip if has_header else 0, usecols=usecols,
                             ndmin=2, encoding=encoding, quotechar='"')
            break
        except UnicodeDecodeError:
            continue
        except ValueError:
            break  # a non-numeric cell, an empty one or a ragged row: the slow path says which
    if arr is None:
        arr = _parse_slowly(name, data, delim, has_header, usecols)
    if names is not None:
        arr = arr[:, _lead_order(name, names)].T
        order = "by the header's lead names"
    else:
        arr = _to_leads(name, arr)
        order = "storage order (no header row)"
    factor = _units(units)
    if factor != 1.0:
        arr = arr * np.float32(factor)
    return _finish(name, Path(name).stem, arr, rate, "csv", (name,), {"units": units, "lead_order": order}, cfg)


def _parse_slowly(name: str, data: bytes, delim: str, has_header: bool, usecols) -> np.ndarray:
    """After the numeric parse failed: a table with NaN where cells are empty, or the message naming the
    first cell that is not a number (the file's size was checked before: this path is bounded too)."""
    import pandas as pd

    text = _text(name, data)
    body = "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    sep = r"\s+" if delim == " " else delim  # space-separated columns may be aligned with several spaces
    exc: Exception = ValueError("unparsed")
    try:
        df = pd.read_csv(io.StringIO(body), sep=sep, header=0 if has_header else None, dtype=np.float64,
                         skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as e:
        exc = e
        df = _locate_bad_cell(name, body, sep, has_header, exc)
    if usecols is not None:
        df = df.iloc[:, list(usecols)]
    return df.to_numpy(dtype=np.float64)


def _locate_bad_cell(name: str, body: str, sep: str, has_header: bool, exc: Exception):
    """Slow path after the numeric parse failed: find the first non-numeric cell for the message."""
    import pandas as pd

    try:
        raw = pd.read_csv(io.StringIO(body), sep=sep, header=0 if has_header else None, dtype=str,
                          keep_default_na=False, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc2:
        raise DataError(name, f"is not a readable table ({' '.join(str(exc2).split())})",
                        "rows of 12 comma-separated numbers") from None
    for j, col in enumerate(raw.columns):
        vals = raw[col].str.strip()
        num = pd.to_numeric(vals, errors="coerce")
        bad = num.isna() & vals.ne("") & ~vals.str.lower().isin(("nan", "na", "null", "none"))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            row = i + (2 if has_header else 1)
            raise DataError(name, f"non-numeric value {vals.iloc[i]!r} in row {row}, column {j + 1}",
                            "numbers only (mV or µV)")
    out = raw.apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    if out.isna().any().any() or not len(out):
        return out  # NaN/empty cells: _finish says where
    raise DataError(name, f"is not a readable table ({' '.join(str(exc).split())})",
                    "rows of 12 comma-separated numbers")


# ------------------------------------------------------------------------------- WFDB header formats

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


# ------------------------------------------------------------------------------------------ registry

@dataclass(frozen=True)
class UploadFormat:
    """One accepted kind of upload: the set of file extensions it consists of and its reader."""

    name: str
    extensions: frozenset[str]
    reader: Callable[[dict[str, bytes], Any, str, UploadConfig], UploadedECG]
    description: str
    needs_rate: bool = False


#: Accepted uploads by name; :func:`parse_upload` picks the one whose extensions match the files.
UPLOAD_FORMATS: Registry[UploadFormat] = Registry("upload format", default="wfdb")
for _fmt in (
    UploadFormat("wfdb", frozenset({"hea", "dat"}), _read_wfdb, "WFDB record (.hea + .dat)"),
    UploadFormat("cinc", frozenset({"hea", "mat"}), _read_cinc, "CinC Challenge record (.hea + .mat)"),
    UploadFormat("csv", frozenset({"csv"}), _read_csv, "CSV array of 12 leads", needs_rate=True),
    UploadFormat("txt", frozenset({"txt"}), _read_csv, "text array of 12 leads", needs_rate=True),
    UploadFormat("npy", frozenset({"npy"}), _read_npy, "NumPy array of 12 leads", needs_rate=True),
):
    UPLOAD_FORMATS.register(_fmt.name, _fmt)
del _fmt

#: File extensions the upload widget should offer.
UPLOAD_EXTENSIONS: tuple[str, ...] = tuple(sorted({e for f in UPLOAD_FORMATS.values() for e in f.extensions}))


def _match_format(names: list[str]) -> UploadFormat:
    exts = [_suffix(n) for n in names]
    unknown = [n for n, e in zip(names, exts) if e not in UPLOAD_EXTENSIONS]
    if unknown:
        raise DataError(unknown[0], f"has an unsupported file type '.{_suffix(unknown[0])}'", ACCEPTED)
    for fmt in UPLOAD_FORMATS.values():
        if sorted(exts) == sorted(fmt.extensions):
            return fmt
    where = ", ".join(names)
    if exts.count("hea") > 1 or len(exts) > 2:
        raise DataError(where, f"{len(names)} files", "one record at a time: " + ACCEPTED)
    if exts == ["hea"]:
        raise DataError(names[0], "is a header without its signal file",
                        "the .dat (WFDB) or .mat (CinC) named in it, uploaded together")
    if exts in (["dat"], ["mat"]):
        raise DataError(names[0], "is a signal file without its header", "the .hea file uploaded with it")
    raise DataError(where, "is not a combination that makes one record", ACCEPTED)


def parse_upload(files: Sequence[tuple[str, bytes]] | dict[str, bytes], fs: float | None = None,
                 units: str = "mV", cfg: UploadConfig | None = None) -> UploadedECG:
    """Parse and validate one uploaded ECG from the files' bytes.

    Parameters
    ----------
    files : ``[(file name, bytes), ...]`` or ``{file name: bytes}``: one ``.hea`` + ``.dat`` (WFDB), one
        ``.hea`` + ``.mat`` (CinC), or one ``.csv``/``.txt``/``.npy`` array
    fs : sampling rate (Hz) of an array upload (headers give their own; ignored for them)
    units : units of an array upload, a key of ``UNITS`` ("mV" or "µV")
    cfg : limits (``UploadConfig``)

    Returns
    -------
    UploadedECG with ``signal (12, T)`` float32 mV in ``LEADS`` order at its own rate.

    Raises
    ------
    DataError : one message naming the file, the problem and what was expected (see the module docstring)
    UnknownNameError : ``units`` is not a key of ``UNITS``
    """
    cfg = cfg or UploadConfig()
    items = list(files.items()) if isinstance(files, dict) else list(files)
    if not items:
        raise DataError(None, "no file uploaded", ACCEPTED)
    named: dict[str, bytes] = {}
    for raw_name, data in items:
        name = _basename(raw_name)
        if name in named:
            raise DataError(name, "uploaded twice", "each file once: remove the older copy")
        named[name] = bytes(data)
    total = sum(len(d) for d in named.values())
    if total > cfg.max_bytes:
        raise DataError(", ".join(named), f"{total / 2**20:.1f} MB uploaded",
                        f"at most {cfg.max_bytes / 2**20:g} MB")
    for name, data in named.items():
        if not data:
            raise DataError(name, "is empty (0 bytes)", ACCEPTED)
        _sniff(name, data)
    fmt = _match_format(list(named))
    if fmt.extensions & {"hea"}:
        stems = {Path(n).stem for n in named}
        if len(stems) > 1:
            hea = next(n for n in named if _suffix(n) == "hea")
            other = next(n for n in named if _suffix(n) != "hea")
            raise DataError(f"{hea} + {other}", "have different record names",
                            "a matching pair <record>.hea + <record>.dat/.mat")
    if units not in UNITS:
        raise UnknownNameError("unit", units, tuple(UNITS))
    return fmt.reader(named, fs, units, cfg)


# --------------------------------------------------------------------------------- the model's view

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


# ---------------------------------------------------------------------------------------------- save

def save_upload(files: Sequence[tuple[str, bytes]] | dict[str, bytes], dest_root: str | Path,
                rec: UploadedECG | None = None) -> Path:
    """Keep an upload (only when the reviewer asks): ``dest_root/<time>-<name>/`` with the original files
    and ``upload.json`` (what was parsed: rate, units, format, digest).

    Returns the new folder.
    """
    items = list(files.items()) if isinstance(files, dict) else list(files)
    stem = rec.name if rec is not None else Path(_basename(items[0][0])).stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80] or "upload"
    dest = Path(dest_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    k = 1
    while dest.exists():
        k += 1
        dest = dest.with_name(f"{dest.name.rsplit('~', 1)[0]}~{k}")
    dest.mkdir(parents=True)
    for name, data in items:
        (dest / _basename(name)).write_bytes(bytes(data))
    info = rec.summary() if rec is not None else {}
    (dest / "upload.json").write_text(json.dumps({**info, "saved": time.strftime("%Y-%m-%dT%H:%M:%S")},
                                                 indent=2, default=str))
    return dest


__all__ = ["ACCEPTED", "UNITS", "UPLOAD_FORMATS", "UPLOAD_EXTENSIONS", "UploadConfig", "UploadFormat",
           "UploadedECG", "parse_upload", "signal_digest", "model_window", "input_seconds", "predict_upload",
           "save_upload"]
