"""``python -m xand xai``: batch validation of explanations (Pointing Game, CAS, ... per head)."""

from __future__ import annotations

import argparse
import json

NAME = "xai"
HELP = ("explanation scores per head over the truly positive ECGs of a split (Pointing Game, CAS, chance, "
        "rank accuracy, perturbation, IG vs GradientShap cosine)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="training run folder (runs/<run-id>)")
    p.add_argument("--data", required=True, help="PTB-XL-layout folder (read only)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--method", default="ig", help="attribution method (ig, gradshap, saliency, gradcam, occlusion)")
    p.add_argument("--compare", default="gradshap",
                   help="second method for the cross-method cosine, or 'none'")
    p.add_argument("--heads", nargs="+", default=None, help="heads to evaluate (default: all of the run)")
    p.add_argument("--fiducials", default="auto",
                   help="auto (PTB-XL+ fiducials in --data when present, else own delineation), ptbxl+, "
                        "delineation, or a PTB-XL+ folder")
    p.add_argument("--max", type=int, default=None, help="at most this many positives per head")
    p.add_argument("--out", default=None, help="output folder (default: RUN/xai)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="delineation cache folder (default: no cache)")
    p.add_argument("--single-pathology", action="store_true",
                   help="only positives whose sole abnormal superclass is the head")
    p.add_argument("--check-synthetic", action="store_true",
                   help="end-to-end sanity check on the synthetic set (implies --single-pathology): fail "
                        "unless every head's Pointing Game is at least 0.9")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the per-head table as JSON")


def run(args: argparse.Namespace) -> int:
    from xand.explain.xai import check_synthetic, format_summary, xai_batch

    summary = xai_batch(args.run, args.data, split=args.split, method=args.method, heads=args.heads,
                        fiducial_source=args.fiducials, progress=not args.no_progress,
                        compare_method=None if args.compare.lower() == "none" else args.compare,
                        max_per_head=args.max, seed=args.seed, out_dir=args.out,
                        cache_dir=args.cache_dir, single_pathology=args.single_pathology or args.check_synthetic)
    info = {k: v for k, v in summary.attrs.items()}
    passed, lines = check_synthetic(summary) if args.check_synthetic else (True, [])
    if args.json:
        out = {**info, "heads": json.loads(summary.to_json(orient="records"))}
        if args.check_synthetic:
            out["synthetic_check"] = {"passed": passed, "lines": lines}
        print(json.dumps(out, indent=2))
    else:
        print(f"fiducials: {info['fiducials']}; {info['n_explanations']} explanations of {info['n_ecg']} ECGs "
              f"in {info['seconds']:.1f} s ({info['explanations_per_s'] or 0:.2f}/s)")
        print(format_summary(summary))
        print("mean [95% CI]; chance = mask coverage; undef = undefined Pointing Game + skipped records "
              f"(reasons in {info['out_dir']})")
        for line in lines:
            print(line)
    return 0 if passed else 1
