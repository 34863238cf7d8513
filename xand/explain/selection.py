"""The default attribution method of each head, chosen by measurement and stored with the run.

Rule (the explanations issue): among the methods that **pass the randomisation check**
(``xand.explain.sanity``) for the head, the **most faithful** one on the chosen split (``xand.explain
.faithfulness``): the lowest mean deletion area minus the random-order deletion area (paired per ECG, so
that heads with different base probabilities compare fairly). When no method passes, the most faithful
method is named anyway and the choice says that none passes: the viewer then shows a warning instead of
a badge, never a silent default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xand.errors import DataError
from xand.fileio import atomic_write_text

CHOICE_FILE = "explain_default.json"


def choose_methods(sanity_rows: list[dict[str, Any]], faith_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per head: ``{"method", "passes_sanity", "why", "candidates": [...]}`` from the two results' rows."""
    out = {}
    heads = sorted({r["head"] for r in faith_rows} | {r["head"] for r in sanity_rows})
    for head in heads:
        passed = {r["method"]: r.get("passed") for r in sanity_rows if r["head"] == head}
        faith = {r["method"]: r for r in faith_rows if r["head"] == head
                 and r.get("deletion_minus_random") is not None}
        if not faith:
            continue
        cands = []
        for m, r in faith.items():
            cands.append({"method": m, "passes_sanity": passed.get(m), "deletion_auc": r.get("deletion_auc"),
                          "random_deletion_auc": r.get("random_deletion_auc"),
                          "deletion_minus_random": r["deletion_minus_random"], "road_gap": r.get("road_gap"),
                          "n": r.get("n")})
        cands.sort(key=lambda c: c["deletion_minus_random"])
        ok = [c for c in cands if c["passes_sanity"] is True]
        best = ok[0] if ok else cands[0]
        if ok:
            why = (f"passes the randomisation check and is the most faithful of those that do: deletion area "
                   f"{best['deletion_auc']:.3f} vs {best['random_deletion_auc']:.3f} in random order (n = {best['n']})")
        else:
            why = (f"no method passes the randomisation check for {head}; {best['method']} is the most faithful "
                   f"(deletion area {best['deletion_auc']:.3f} vs {best['random_deletion_auc']:.3f} in random order)")
        out[head] = {"method": best["method"], "passes_sanity": bool(ok), "why": why, "candidates": cands}
    return out


def save_choice(run_dir: str | Path, choice: dict[str, dict[str, Any]], evidence: dict[str, Any]) -> Path:
    """Write ``<run>/explain_default.json`` (the choice and the files it was made from)."""
    path = Path(run_dir) / CHOICE_FILE
    atomic_write_text(path, json.dumps({"heads": choice, "evidence": evidence}, indent=2, default=float))
    return path


def load_choice(run_dir: str | Path) -> dict[str, dict[str, Any]] | None:
    """The stored choice per head, or None when the run has none."""
    path = Path(run_dir) / CHOICE_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text())["heads"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(path, f"unreadable method choice ({exc})", "a file written by xand.explain.selection") from None
