"""``python -m xand prepare DATASET``: build (or reuse) the memory-mapped array of a PTB-XL folder."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "prepare"
MAX_LISTED = 20  # bad records named on the console (all of them are in meta.json)
HELP = "read every record once into one memory-mapped float32 array (cached by fingerprint)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="PTB-XL-layout folder")
    p.add_argument("--cache-dir", default=None, help="where prepared sets live (default $XAND_CACHE or ~/.cache/xand)")
    p.add_argument("--fs", type=int, default=100, help="working sampling rate in Hz (100 or 500; default 100)")
    p.add_argument("--bandpass", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="zero-phase Butterworth band-pass in Hz, e.g. 0.5 40")
    p.add_argument("--baseline", action="store_true", help="remove baseline wander (two-stage median filter)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from xand.data.prepare import prepare
    from xand.data.preprocess import PreprocessConfig

    try:
        cfg = PreprocessConfig(fs=args.fs, bandpass=tuple(args.bandpass) if args.bandpass else None,
                               baseline_removal=args.baseline)
    except ValueError as exc:  # a bad option: one message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = prepare(args.dataset, args.cache_dir, cfg, workers=args.workers, progress=not args.no_progress)
    res = {"signals": str(out.root / "signals.npy"), "index": str(out.root / "index.csv"),
           "shape": list(out.signals.shape), "fs": out.fs, "fingerprint": out.fingerprint,
           "skipped": len(out.skipped), "skipped_records": out.skipped}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"signals: {res['signals']}  shape {tuple(res['shape'])} float32 mV at {out.fs} Hz")
        print(f"index:   {res['index']}")
        print(f"skipped: {res['skipped']} bad record(s)" + (f" (all listed in {out.root / 'meta.json'})"
                                                             if res["skipped"] else ""))
        for s in out.skipped[:MAX_LISTED]:  # the records by name: a count alone sends the user searching
            print(f"  ecg_id {s['ecg_id']}: {s['reason']}")
        if len(out.skipped) > MAX_LISTED:
            print(f"  ... and {len(out.skipped) - MAX_LISTED} more")
    return 0
