"""Array uploads: NPY (header checked against the bytes before numpy allocates) and CSV/TXT (size judged
from the bytes, then numpy's C reader into float32; a slow path names the first bad cell)."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.data.upload.common import (
    _INDEX_COLUMNS,
    UploadConfig,
    UploadedECG,
    _check_rate,
    _finish,
    _is_number,
    _lead_order,
    _text,
    _to_leads,
    _units,
)
from xand.errors import DataError


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
    while len(head) < len(data) and sum(1 for ln in head.splitlines()[:-1]
                                        if ln.strip() and not ln.lstrip().startswith(b"#")) < 2:
        # a first line longer than the limit (one lead per line): read on to the end of the next line,
        # never judge a line cut in the middle of a number (a cut after "-" or "e" reads as a header)
        end = data.find(b"\n", len(head))
        head = data[: len(data) if end < 0 else end + 1]
    if len(head) < len(data):
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
    if b"\r" in data[:65536] and b"\n" not in data[:65536]:
        data = data.replace(b"\r", b"\n")  # classic Mac line endings: numpy's reader splits on \n only
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
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "loadtxt: input contained no data")  # said below
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
    if arr.size == 0:
        raise DataError(name, "has a header but no rows of values" if has_header else "has no rows of values",
                        "rows of 12 lead values")
    if names is not None and usecols is None and arr.shape[1] == N_LEADS + 1:
        arr = arr[:, 1:]  # 12 names over 13 values: an unnamed index column first (as pandas reads it)
    if names is not None and arr.shape[1] != len(names):
        raise DataError(name, f"has {len(names)} column names but {arr.shape[1]} values per row",
                        f"one value per lead column ({', '.join(LEADS)})")
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
