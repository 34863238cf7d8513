"""The default attribution method of each head, chosen by measurement and stored with the run.

Rule (the explanations issue): among the methods that **pass the randomisation check**
(``xand.explain.sanity``) for the head and **delete better than random order** (the bootstrap 95 % CI of
the paired deletion-area difference below 0), the **most faithful** one on the chosen split: the lowest
mean deletion area minus the random-order area (paired per ECG, so that heads with different base
probabilities compare fairly). When no method qualifies, the most faithful method is named anyway and the
choice says why none qualifies: the viewer then shows a warning beside it, never a silent default.
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
                          "beats_random": r.get("deletion_minus_random_ci_high") is not None
                          and r["deletion_minus_random_ci_high"] < 0, "n": r.get("n")})
        cands.sort(key=lambda c: c["deletion_minus_random"])
        # faithful = deletes better than random order, with the bootstrap CI of the paired difference below 0
        ok = [c for c in cands if c["passes_sanity"] is True and c["beats_random"]]
        best = ok[0] if ok else cands[0]
        area = f"deletion area {best['deletion_auc']:.3f} vs {best['random_deletion_auc']:.3f} in random order"
        if ok:
            why = (f"passes the randomisation check and is the most faithful of those that do: {area} "
                   f"(n = {best['n']})")
        elif any(c["passes_sanity"] is True for c in cands):
            why = (f"no method both passes the randomisation check and deletes better than random order for "
                   f"{head}; {best['method']} is the most faithful ({area})")
        else:
            why = f"no method passes the randomisation check for {head}; {best['method']} is the most faithful ({area})"
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
