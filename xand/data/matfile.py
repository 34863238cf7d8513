"""The ``val`` matrix of a PhysioNet/CinC Challenge ``.mat`` file, read only after its declared shape has
been checked (``scipy.io.whosmat`` reads the variable headers, not the data): a small file can declare a
matrix of gigabytes, and ``loadmat`` would allocate it (and its int64/float64 copies) before any check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from xand.errors import DataError

EXPECTED = "a MATLAB v4/v5 file with a 'val' matrix (leads x samples)"


def load_val(source: str | Path | bytes, where: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """``val`` of ``source`` (a path, or the file's bytes) when it is declared with exactly ``shape``
    (from the header); a ``DataError`` naming ``where`` otherwise, before the matrix is allocated."""
    import scipy.io

    def fh():
        return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)

    try:
        found = {name: tuple(int(n) for n in shp) for name, shp, _cls in scipy.io.whosmat(fh())}
    except Exception as exc:  # truncated/corrupt files raise a zoo of scipy/numpy errors
        raise DataError(where, f"unreadable MATLAB file ({type(exc).__name__}: {exc})", EXPECTED) from None
    if "val" not in found:
        raise DataError(where, f"no 'val' matrix (variables {sorted(found)})", "a 'val' matrix (leads x samples)")
    if found["val"] != tuple(shape):
        raise DataError(where, f"'val' has shape {found['val']} (expected {tuple(shape)} from the header)",
                        "the .mat of this header: the files do not belong together")
    try:
        content = scipy.io.loadmat(fh(), variable_names=["val"])
    except Exception as exc:  # noqa: BLE001 - the data part may still be truncated
        raise DataError(where, f"unreadable MATLAB file ({type(exc).__name__}: {exc})", EXPECTED) from None
    return np.asarray(content["val"])
