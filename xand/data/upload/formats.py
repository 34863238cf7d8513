"""The upload format registry (``UPLOAD_FORMATS``) and ``parse_upload``: which format a set of files is,
and one call that returns an ``UploadedECG`` or raises one ``DataError``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from xand.data.upload.arrays import _read_csv, _read_npy
from xand.data.upload.common import (
    ACCEPTED,
    UNITS,
    UploadConfig,
    UploadedECG,
    _basename,
    _sniff,
    _suffix,
)
from xand.data.upload.wfdb import _read_cinc, _read_wfdb
from xand.errors import DataError, UnknownNameError
from xand.registry import Registry


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
