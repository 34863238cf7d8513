"""The ``val`` matrix of a PhysioNet/CinC Challenge ``.mat`` file, read only after its declared name, class,
shape and size have been checked: a small file can declare a matrix of gigabytes, and ``loadmat`` would
allocate it (and its int64/float64 copies) before any check. MATLAB v5 variable headers are read here,
decompressing only the first bytes of a compressed variable (``scipy.io.whosmat`` inflates the whole
variable to read its header); v4 files have no compression and ``whosmat`` reads their headers only."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from xand.errors import DataError

EXPECTED = "a MATLAB v4/v5 file with a 'val' matrix (leads x samples)"


#: MATLAB classes a signal matrix may have (``whosmat``'s class names); a cell or struct could hold anything.
NUMERIC_CLASSES = frozenset({"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                             "int64", "uint64"})
_ITEMSIZE = {"double": 8, "single": 4, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
             "int64": 8, "uint64": 8}


_MX_CLASS = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single", 8: "int8",
             9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64"}
_MI_MATRIX, _MI_COMPRESSED = 14, 15


def _is_v5(data: bytes) -> bool:
    return len(data) >= 128 and data[126:128] in (b"IM", b"MI")


def _tag(buf: bytes, pos: int, e: str) -> tuple[int, int, int]:
    """(type, nbytes, data offset) of the data element at ``pos`` (small-element format included)."""
    word, nbytes = struct.unpack_from(e + "II", buf, pos)
    if word >> 16:  # small data element: type and size in one word, data in the next four bytes
        return word & 0xFFFF, word >> 16, pos + 4
    return word, nbytes, pos + 8


def _matrix_header(buf: bytes, e: str) -> tuple[str, tuple[int, ...], str]:
    """(name, shape, class) of a miMATRIX element that starts at ``buf[0]``."""
    _typ, _n, pos = _tag(buf, 0, e)
    _t, n, at = _tag(buf, pos, e)  # array flags
    cls = _MX_CLASS.get(struct.unpack_from(e + "I", buf, at)[0] & 0xFF, "unknown")
    pos = at + n + (-n % 8)
    _t, n, at = _tag(buf, pos, e)  # dimensions
    dims = struct.unpack_from(e + f"{n // 4}i", buf, at)
    pos = at + n + (-n % 8) if at == pos + 8 else pos + 8
    _t, n, at = _tag(buf, pos, e)  # name
    name = buf[at:at + n].decode("latin-1")
    return name, tuple(int(d) for d in dims), cls


def _v5_variables(data: bytes) -> list[tuple[str, tuple[int, ...], str]]:
    e = "<" if data[126:128] == b"IM" else ">"
    pos, out = 128, []
    while pos + 8 <= len(data):
        typ, nbytes, at = _tag(data, pos, e)
        if typ == _MI_COMPRESSED:  # inflate only the head of the variable
            head = zlib.decompressobj().decompress(data[at:at + nbytes], 4096)
            out.append(_matrix_header(head, e))
            pos = at + nbytes
        elif typ == _MI_MATRIX:
            out.append(_matrix_header(data[pos:pos + 8 + min(nbytes, 4096)], e))
            pos = at + nbytes + (-nbytes % 8)
        else:
            pos = at + nbytes + (-nbytes % 8)
    return out


def load_val(source: str | Path | bytes, where: str | Path, shape: tuple[int, int],
             max_bytes: int | None = None) -> np.ndarray:
    """``val`` of ``source`` (a path, or the file's bytes) when it is declared exactly once, numeric, with
    exactly ``shape`` (from the header) and at most ``max_bytes`` once decompressed; a ``DataError`` naming
    ``where`` otherwise, before the matrix is allocated."""
    import scipy.io

    def fh():
        return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)

    try:
        if isinstance(source, (bytes, bytearray)):
            head = bytes(source[:128])
        else:
            with open(source, "rb") as f:
                head = f.read(128)
        if _is_v5(head):
            data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
            found = _v5_variables(data)
        else:
            found = [(name, tuple(int(n) for n in shp), cls) for name, shp, cls in scipy.io.whosmat(fh())]
    except Exception as exc:  # truncated/corrupt files raise a zoo of scipy/numpy errors
        raise DataError(where, f"unreadable MATLAB file ({type(exc).__name__}: {exc})", EXPECTED) from None
    vals = [f for f in found if f[0] == "val"]
    if not vals:
        raise DataError(where, f"no 'val' matrix (variables {sorted(n for n, _, _ in found)})",
                        "a 'val' matrix (leads x samples)")
    if len(vals) > 1:  # loadmat would read one, the check might see another
        raise DataError(where, f"{len(vals)} variables named 'val'", "exactly one 'val' matrix")
    _, val_shape, cls = vals[0]
    if cls not in NUMERIC_CLASSES:
        raise DataError(where, f"'val' is a MATLAB {cls}", "a numeric matrix (int16 or double samples)")
    if val_shape != tuple(shape):
        raise DataError(where, f"'val' has shape {val_shape} (expected {tuple(shape)} from the header)",
                        "the .mat of this header: the files do not belong together")
    size = int(np.prod(val_shape)) * _ITEMSIZE[cls]
    if max_bytes is not None and size > max_bytes:  # a compressed v5 matrix can inflate 1000-fold
        raise DataError(where, f"'val' holds {size / 2**20:.0f} MB once decompressed",
                        f"at most {max_bytes / 2**20:.0f} MB")
    try:
        content = scipy.io.loadmat(fh(), variable_names=["val"])
    except Exception as exc:  # noqa: BLE001 - the data part may still be truncated
        raise DataError(where, f"unreadable MATLAB file ({type(exc).__name__}: {exc})", EXPECTED) from None
    val = np.asarray(content["val"])
    if val.shape != tuple(shape) or val.dtype.kind not in "iuf":  # what was read is what was checked
        raise DataError(where, f"'val' read as {val.shape} {val.dtype}", f"a numeric {tuple(shape)} matrix")
    return val
