"""What a WFDB header's record line itself declares, checked before ``wfdb`` interprets it: ``wfdb``
silently reads a missing, zero or negative sampling rate as 250 Hz (a 500 Hz ECG would then show half
its heart rate)."""

from __future__ import annotations

import math
from pathlib import Path

from xand.errors import DataError


def declared_rate(where: str | Path, record_line: list[str]) -> float:
    """The sampling rate (Hz) the record line ``<name> <n_signals> <fs>[/<counter>[(<base>)]] ...``
    declares; a ``DataError`` naming ``where`` when it gives none or one that is not a positive number."""
    if len(record_line) < 3:
        raise DataError(where, "record line gives no sampling rate", "'<record> <n_signals> <fs> <n_samples>'")
    token = record_line[2].split("/", 1)[0]
    try:
        fs = float(token)
    except ValueError:
        raise DataError(where, f"sampling rate {record_line[2]!r} in the record line", "a number in Hz") from None
    if not math.isfinite(fs) or fs <= 0:
        raise DataError(where, f"sampling rate {token} Hz in the record line", "a positive rate in Hz")
    return fs
