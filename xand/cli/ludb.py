"""``python -m xand ludb LUDB_DIR``: score the delineation against LUDB's cardiologist annotations."""

from __future__ import annotations

import argparse
import json

NAME = "ludb"
HELP = "validate the fiducial delineation on LUDB (sensitivity, PPV, error mean/SD vs CSE tolerances)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ludb_dir", help="LUDB folder (holding data/ and ludb.csv)")
    p.add_argument("--records", type=int, nargs="+", default=None, help="record numbers (default: all)")
    p.add_argument("--tolerance-ms", type=float, default=150.0, help="matching window either side")
    p.add_argument("--method", default="neurokit", help="delineator (xand.delineation.methods.list_delineators())")
    p.add_argument("--nk-method", default=None, help="NeuroKit2 wave delineator of --method neurokit "
                   "(dwt, cwt, peak, prominence)")
    p.add_argument("--marks", default=None, help="ecgdeli: 'lead' (each lead's own points) or 'consensus'")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="remove systematic offsets fitted on K-1 record-level folds, score the held-out fold")
    p.add_argument("--rpeaks", default=None, help="lead combination for R peaks "
                   "(abs_derivative, vector_magnitude, vote)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--cache-dir", default=None, help="keep delineations in this folder")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from xand.delineation.neurokit import DelineationConfig
    from xand.delineation.validation import validate_ludb

    from xand.delineation.methods import DELINEATORS

    DELINEATORS.get(args.method)
    cfg, options = None, {}
    if args.method == "neurokit":
        cfg = DelineationConfig()
        if args.nk_method:
            cfg = replace(cfg, method=args.nk_method)
        if args.rpeaks:
            cfg = replace(cfg, rpeaks=args.rpeaks)
        cfg.validate()
    if args.marks:
        options["marks"] = args.marks
    table = validate_ludb(args.ludb_dir, args.records, args.tolerance_ms, cfg, workers=args.workers,
                          progress=not args.json, cache_dir=args.cache_dir, delineator=args.method,
                          options=options, cv=args.cv)
    import pandas as pd

    intervals = pd.DataFrame.from_dict(table.attrs["intervals"], orient="index").rename_axis("interval")
    if args.json:
        out = {
            "ludb_dir": str(args.ludb_dir), "records": table.attrs["records"],
            "skipped": {str(k): v for k, v in table.attrs["skipped"].items()},
            "tolerance_ms": args.tolerance_ms, "config": table.attrs["config"],
            "mask_iou": table.attrs["mask_iou"], "delineator": args.method, "cv": args.cv,
            "offsets_ms": table.attrs["offsets_ms"], "interval_offsets_ms": table.attrs["interval_offsets_ms"],
            "fold_offsets_ms": table.attrs["fold_offsets_ms"],
            "intervals": json.loads(intervals.reset_index().to_json(orient="records")),
            "table": json.loads(table.reset_index().to_json(orient="records")),
        }
        print(json.dumps(out, indent=2))
    else:
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table.round({"sensitivity": 3, "ppv": 3, "mean_ms": 1, "sd_ms": 1, "median_abs_ms": 1}).to_string())
        print("intervals from the detected vs the experts' points (per record; mae 95 % bootstrap CI):")
        print(intervals.round(1).to_string())
        if args.cv:
            print(f"offsets removed ({args.cv}-fold CV, fitted on the other folds); fitted on all records: "
                  + ", ".join(f"{k} {v:+.1f}" for k, v in table.attrs["offsets_ms"].items()) + " ms")
            folds = table.attrs["fold_offsets_ms"]
            print("range of the per-fold offsets (ms): " + ", ".join(
                f"{k} {min(f[k] for f in folds):+.1f}..{max(f[k] for f in folds):+.1f}" for k in folds[0]))
        print("clinical-mask IoU (expert vs detected fiducials): "
              + ", ".join(f"{h} {v:.3f}" for h, v in table.attrs["mask_iou"].items()))
        print(f"{len(table.attrs['records'])} records scored, {len(table.attrs['skipped'])} skipped; "
              f"tolerance {args.tolerance_ms:g} ms; delineator {args.method}; options {table.attrs['options']}")
        for rec, why in table.attrs["skipped"].items():
            print(f"  skipped {rec}: {why}")
    return 0
