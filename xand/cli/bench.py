"""``python -m xand bench WHAT``: speed figures measured side by side with the obvious alternative."""

from __future__ import annotations

import argparse
import importlib

from xand.registry import Registry

NAME = "bench"
HELP = "benchmarks: prepare throughput, training/inference ECG/s, explanation latency, delineation time, concurrent review saves, upload peak memory"

#: benchmark name -> the module whose ``benchmark(args) -> dict`` runs it (imported only when it runs, so
#: that ``python -m xand`` stays light)
BENCHES: Registry[str] = Registry("benchmark")
for _name in ("prepare", "train", "explain", "delineate", "reviews", "upload"):
    BENCHES.register(_name, f"xand.bench.{_name}")
del _name


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
    mod = importlib.import_module(BENCHES.get(args.what))
    mod.benchmark(args)
    return 0
