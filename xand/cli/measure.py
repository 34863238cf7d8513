"""``python -m xand measure DATASET|RECORD``: heart rate, PR, QRS, QT, QTc, axes and ST levels per ECG."""

from __future__ import annotations

import argparse
import json
import math

NAME = "measure"
HELP = "clinical measurements (rate, PR, QRS, QT, QTc, axes, ST at J+60) of a record or every record of a folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a record (.hea) or a folder: PTB-XL, LUDB, CinC or any WFDB records")
    p.add_argument("--method", default="neurokit", help="delineator (xand.delineation.methods.list_delineators())")
    p.add_argument("--limit", type=int, default=None, help="at most this many records")
    p.add_argument("--raw", action="store_true", help="no calibration of the delineator's systematic errors")
    p.add_argument("--out", default=None, help="write the table as CSV here")
    p.add_argument("--json", action="store_true", help="print JSON (one object per record)")


def run(args: argparse.Namespace) -> int:
    from xand.data.records import source_kind
    from xand.delineation.measure import CALIBRATIONS, measure_records
    from xand.delineation.methods import DELINEATORS
    from xand.fileio import atomic_write_text

    DELINEATORS.get(args.method)
    table = measure_records(args.path, args.method, limit=args.limit, calibrated=not args.raw,
                            progress=not args.json and source_kind(args.path) != "record")
    if args.out:
        atomic_write_text(args.out, table.to_csv())
    n_bad = int(table["error"].notna().sum()) if "error" in table else 0
    if args.json:
        recs = json.loads(table.reset_index().to_json(orient="records"))
        print(json.dumps(recs, indent=2))
        return 0 if n_bad < len(table) else 2
    shown = ["heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms",
             "p_axis_deg", "qrs_axis_deg", "t_axis_deg", "n_beats"]
    ok = table[table["error"].isna()] if "error" in table else table
    if len(ok):
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 60):
            print(ok[[c for c in shown if c in ok]].round(0).to_string())
    if len(table) == 1 and len(ok) == 1:
        row = ok.iloc[0]
        st = {c[3:-3]: row[c] for c in ok.columns if c.startswith("st_") and c.endswith("_mv")}
        print("ST at J+60 ms (mV): " + ", ".join(f"{k} {v:+.2f}" for k, v in st.items() if not math.isnan(v)))
        if row.get("notes"):
            print(f"notes: {row['notes']}")
    for rec, why in (table["error"].dropna().items() if "error" in table else []):
        print(f"  skipped {rec}: {why}")
    print(f"{len(ok)} record(s) measured, {n_bad} skipped; delineator {args.method}"
          + (" (calibrated on the " + CALIBRATIONS[args.method].fitted_on + ")"
             if not args.raw and args.method in CALIBRATIONS else " (uncalibrated)") + (f"; table written to {args.out}" if args.out else ""))
    return 0 if n_bad < len(table) else 2
