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
    p.add_argument("--method", default=None, help="NeuroKit2 delineator (dwt, cwt, peak, prominence)")
    p.add_argument("--rpeaks", default=None, help="lead combination for R peaks "
                   "(abs_derivative, vector_magnitude, vote)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--cache-dir", default=None, help="keep delineations in this folder")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from xand.delineation.neurokit import DelineationConfig
    from xand.delineation.validation import validate_ludb

    cfg = DelineationConfig()
    if args.method:
        cfg = replace(cfg, method=args.method)
    if args.rpeaks:
        cfg = replace(cfg, rpeaks=args.rpeaks)
    cfg.validate()
    table = validate_ludb(args.ludb_dir, args.records, args.tolerance_ms, cfg, workers=args.workers,
                          progress=not args.json, cache_dir=args.cache_dir)
    if args.json:
        out = {
            "ludb_dir": str(args.ludb_dir), "records": table.attrs["records"],
            "skipped": {str(k): v for k, v in table.attrs["skipped"].items()},
            "tolerance_ms": args.tolerance_ms, "config": table.attrs["config"],
            "mask_iou": table.attrs["mask_iou"],
            "table": json.loads(table.reset_index().to_json(orient="records")),
        }
        print(json.dumps(out, indent=2))
    else:
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table.round({"sensitivity": 3, "ppv": 3, "mean_ms": 1, "sd_ms": 1, "median_abs_ms": 1}).to_string())
        print("clinical-mask IoU (expert vs detected fiducials): "
              + ", ".join(f"{h} {v:.3f}" for h, v in table.attrs["mask_iou"].items()))
        print(f"{len(table.attrs['records'])} records scored, {len(table.attrs['skipped'])} skipped; "
              f"tolerance {args.tolerance_ms:g} ms; config {table.attrs['config']}")
        for rec, why in table.attrs["skipped"].items():
            print(f"  skipped {rec}: {why}")
    return 0
