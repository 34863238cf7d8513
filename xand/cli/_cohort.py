"""Options shared by the commands that check explanations over a cohort (``sanity``, ``faithfulness``)."""

from __future__ import annotations

import argparse


def add_cohort_arguments(p: argparse.ArgumentParser, defaults, kind: str) -> None:
    """``--run --data --methods --heads --split --n --single-pathology --seed --fiducials --cache-dir --out
    --no-progress --json`` with the defaults of a ``SanityConfig`` / ``FaithfulnessConfig``."""
    p.add_argument("--run", required=True, help="training run folder")
    p.add_argument("--data", required=True, help="PTB-XL-layout folder (read only)")
    p.add_argument("--methods", nargs="+", default=list(defaults.methods), help="attribution methods")
    p.add_argument("--heads", nargs="+", default=None, help="heads (default: all of the run)")
    p.add_argument("--split", default=defaults.split, choices=["train", "val", "test"])
    p.add_argument("--n", type=int, default=defaults.n_per_head, help="positives per head (0 = all)")
    p.add_argument("--single-pathology", action="store_true",
                   help="only positives whose sole abnormal superclass is the head (the synthetic check)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--fiducials", default=defaults.fiducial_source,
                   help="auto, ptbxl+, delineation or a PTB-XL+ folder (see python -m xand xai)")
    p.add_argument("--cache-dir", default=None, help="delineation cache folder")
    p.add_argument("--out", default=None, help=f"result file (default: RUN/{kind}/<dataset key>_<split>.json)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    if kind == "sanity":
        p.add_argument("--merge", action="store_true",
                       help="add these methods' rows to the stored result (same options otherwise)")


def cohort_config(args: argparse.Namespace) -> dict:
    """The config fields the cohort options set (for ``SanityConfig(**...)`` / ``FaithfulnessConfig(**...)``)."""
    return {"methods": tuple(args.methods), "heads": tuple(args.heads) if args.heads else None,
            "split": args.split, "n_per_head": args.n or None, "single_pathology": args.single_pathology,
            "seed": args.seed, "fiducial_source": args.fiducials}


def run_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``sanity_check`` / ``faithfulness_check`` besides the run, data and config."""
    opts = {"cache_dir": args.cache_dir, "out": args.out, "progress": not args.no_progress}
    if getattr(args, "merge", False):
        opts["merge"] = True
    return opts
