"""``python -m xand synth --out DIR``: write the synthetic PTB-XL demo set (+ PTB-XL+ fiducials)."""

from __future__ import annotations

import argparse
import json

NAME = "synth"
HELP = "write a synthetic PTB-XL folder (WFDB 100/500 Hz + ECGdeli-style ground-truth fiducials)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (PTB-XL layout; also its own PTB-XL+ folder)")
    p.add_argument("--n", type=int, default=2000, help="number of records (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="master seed; same seed -> byte-identical files")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores, max 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from xand.data.synth import SynthConfig, config_json, synthesize

    cfg = SynthConfig(n_records=args.n, seed=args.seed)
    workers = args.workers or min(os.cpu_count() or 1, 8)
    t0 = time.perf_counter()
    out = synthesize(args.out, cfg, workers=workers, progress=not (args.no_progress or args.json))
    dt = time.perf_counter() - t0
    summary = {"out": str(out), "records": cfg.n_records, "seed": cfg.seed, "workers": workers,
               "seconds": round(dt, 2), "records_per_s": round(cfg.n_records / dt, 1),
               "config": config_json(cfg)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {cfg.n_records} records (seed {cfg.seed}) to {out} in {dt:.1f} s "
              f"({cfg.n_records / dt:.0f} records/s, {workers} workers)")
    return 0
