"""What a WFDB header's record line itself declares, checked before ``wfdb`` interprets it: ``wfdb``
silently reads a missing, zero or negative sampling rate as 250 Hz (a 500 Hz ECG would then show half
its heart rate)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from xand.errors import DataError


def wfdb_checksum(digital: np.ndarray) -> int:
    """The checksum a WFDB header gives for one signal: the 16-bit sum of its digital samples, signed."""
    c = int(np.asarray(digital, dtype=np.int64).sum()) & 0xFFFF
    return c - 0x10000 if c >= 0x8000 else c


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


def checked_gains(where: str | Path, gains, leads) -> np.ndarray:
    """``(n,)`` float64 ADC gains (digital units per physical unit) when every one is a positive finite
    number; else a ``DataError`` naming the first bad lead. A negative gain would silently invert a lead,
    and WFDB's own 0 = "200" is resolved by the caller before this check."""
    g = np.asarray([np.nan if v is None else v for v in gains], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(g) | (g <= 0))
    if bad.size:
        i = int(bad[0])
        name = leads[i] if leads is not None and i < len(leads) else f"signal {i + 1}"
        raise DataError(where, f"ADC gain {g[i]:g} for lead {name}", "a positive number of digital units per mV")
    return g


def check_signal_gains(where: str | Path, text: str) -> None:
    """Check the ADC gain field of every signal line (``<file> <format> <gain>[(<baseline>)][/<units>] ...``)
    before ``wfdb`` reads it: ``wfdb`` cannot parse a gain such as ``nan`` and then splits the line wrongly
    (a garbled lead name instead of a message). A DataError names the signal line (its lead, when given)."""
    import re

    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for k, tok in enumerate(lines[1:], start=1):
        if len(tok) < 3:
            continue  # no gain given: WFDB's default applies
        m = re.match(r"^([^(/]*)", tok[2])
        raw = m.group(1) if m else tok[2]
        try:
            g = float(raw)
        except ValueError:
            g = float("nan")
        name = tok[8] if len(tok) > 8 else f"signal {k}"
        if not math.isfinite(g) or g < 0:  # 0 is WFDB's "200"
            raise DataError(where, f"ADC gain {raw!r} for lead {name}", "a positive number of digital units per mV")
