"""``python -m xand fuzz``: property-based fuzzing of every parser of untrusted input (long runs)."""

from __future__ import annotations

import argparse

NAME = "fuzz"
HELP = "fuzz the parsers (uploads, headers, .mat, scp_codes): anything but a clear DataError is a bug"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", type=int, default=2000, help="inputs per parser")
    p.add_argument("--targets", nargs="+", default=None, help="parsers to fuzz (default: all)")
    p.add_argument("--seed", type=int, default=None, help="fix Hypothesis' seed (default: a new run each time)")


def run(args: argparse.Namespace) -> int:
    from xand.fuzzing import fuzz, target_names

    names = args.targets or target_names()
    failed = 0
    for name in names:
        try:
            r = fuzz(name, args.examples, args.seed)
        except Exception as exc:  # noqa: BLE001 - a counter-example: report it and fuzz the others
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            continue
        print(f"ok   {name}: {r['examples']} inputs in {r['seconds']:.1f} s "
              f"({r['parsed']} parsed, {r['refused']} refused with a clear message)")
    return 1 if failed else 0
