"""``python -m xand bench WHAT``: speed figures measured side by side with the obvious alternative."""

from __future__ import annotations

import argparse
import importlib

NAME = "bench"
HELP = "benchmarks: prepare throughput, training/inference ECG/s, explanation latency, delineation time, concurrent review saves, upload peak memory"

#: what -> module whose ``benchmark(args) -> dict`` runs it
BENCHES = {
    "prepare": "xand.bench.prepare",
    "train": "xand.bench.train",
    "explain": "xand.bench.explain",
    "delineate": "xand.bench.delineate",
    "reviews": "xand.bench.reviews",
    "upload": "xand.bench.upload",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=sorted(BENCHES), help="which benchmark")
    p.add_argument("--data", default=None,
                   help="PTB-XL-layout folder (default: a synthetic set written to a temporary folder)")
    p.add_argument("--n", type=int, default=None, help="how many records / batches (benchmark-specific; upload: seconds of the accepted records)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache-dir", default=None, help="where prepared arrays are cached")
    p.add_argument("--run", default=None,
                   help="explain: a trained run (its first head) instead of a randomly initialised model")
    p.add_argument("--saves", type=int, default=None, help="reviews: saves per writer (default 500)")
    p.add_argument("--url", default=None, help="reviews: a PostgreSQL URL (default: pgserver when installed)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    mod = importlib.import_module(BENCHES[args.what])
    mod.benchmark(args)
    return 0
