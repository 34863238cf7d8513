"""``python -m xand evaluate --run RUN --data DATASET [--split test] [--json]``."""

from __future__ import annotations

import argparse
import json

NAME = "evaluate"
HELP = ("metrics of a trained run on a PTB-XL-layout dataset (AUC + 95%% CI, PR-AUC, sens/spec/F1 at the run's "
        "validation threshold) or zero-shot on a CinC .hea/.mat folder")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder written by python -m train (runs/<run-id>)")
    p.add_argument("--data", required=True, help="PTB-XL-layout folder or CinC-format folder (.hea + .mat)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="PTB-XL split to evaluate (CinC folders: every record)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUC CI")
    p.add_argument("--cache-dir", default=None, help="prepared-array cache")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run(args: argparse.Namespace) -> int:
    from xand.evaluation import evaluate_run, format_table

    result = evaluate_run(args.run, args.data, split=args.split, cache_dir=args.cache_dir, device=args.device,
                          n_boot=args.bootstrap, progress=not args.json)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
