"""Formatting of numbers, scores and record headers for the pages."""

from __future__ import annotations

import pandas as pd

from pages.common.config import STATUS_TEXT


def fmt_num(v) -> str:
    return "—" if v is None else f"{float(v):.2f}"


def fmt_score(s: dict | None, pct: bool = False) -> str:
    """``0.62 (chance 0.18)`` or ``undefined: reason``."""
    if not s:
        return "—"
    if s.get("value") is None:
        return f"undefined ({s.get('reason') or 'no value'})"
    v, c = s["value"], s.get("chance")
    txt = f"{v:.2f}"
    return txt + (f" (chance {c:.2f})" if c is not None else "")


def record_header(row: pd.Series) -> str:
    parts = [f"**Record {int(row['ecg_id'])}**"]
    if "patient_id" in row and pd.notna(row["patient_id"]):
        parts.append(f"patient {int(row['patient_id'])}")
    demo = []
    if "age" in row and pd.notna(row["age"]):
        demo.append(f"{int(row['age'])} y")
    if "sex" in row and row["sex"]:
        demo.append(str(row["sex"]))
    if demo:
        parts.append(", ".join(demo))
    for c in ("device", "split"):
        if c in row and isinstance(row[c], str) and row[c]:
            parts.append(f"{c} {row[c]}")
    if "strat_fold" in row and pd.notna(row["strat_fold"]):
        parts.append(f"fold {int(row['strat_fold'])}")
    return " · ".join(parts)


def status_of(row: pd.Series, head: str) -> str:
    return STATUS_TEXT.get(int(row[head]), "?") if head in row else "?"
