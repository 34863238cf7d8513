"""Verdict tables as CSV, every cell that a spreadsheet would run as a formula escaped (OWASP CSV injection)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

#: Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(v):
    """``v`` unchanged, except a text that a spreadsheet would run as a formula (``=HYPERLINK(...)``,
    ``+1``, ``@SUM``, ...), which gets a leading apostrophe so it is shown as the text it is."""
    if isinstance(v, str) and v.startswith(FORMULA_PREFIXES):
        return "'" + v
    return v


def to_csv(df: pd.DataFrame, dest: str | Path | io.TextIOBase | None = None) -> str | None:
    """``df`` as CSV (ISO 8601 UTC times); to ``dest`` when given, else returned as text."""
    out = df.copy()
    if "saved_at" in out:
        out["saved_at"] = out["saved_at"].map(lambda t: t.isoformat() if pd.notna(t) else "")
    for col in out.columns:  # free text (notes, names) must not become a formula in a spreadsheet
        if out[col].dtype == object:
            out[col] = out[col].map(csv_safe)
    if dest is None:
        return out.to_csv(index=False)
    out.to_csv(dest, index=False)
    return None
