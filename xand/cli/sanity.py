"""``python -m xand sanity``: the model-parameter randomisation test of every head x attribution method."""

from __future__ import annotations

import argparse
import json

NAME = "sanity"
HELP = ("sanity check of the explanations (Adebayo et al. 2018): Pointing Game, CAS and rank accuracy of the "
        "trained vs a randomised network, rank correlation of the maps, pass/fail per head x method")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from xand.explain.sanity import SanityConfig

    d = SanityConfig()
    p.add_argument("--run", required=True, help="training run folder")
    p.add_argument("--data", required=True, help="PTB-XL-layout folder (read only)")
    p.add_argument("--methods", nargs="+", default=list(d.methods), help="attribution methods")
    p.add_argument("--heads", nargs="+", default=None, help="heads (default: all of the run)")
    p.add_argument("--split", default=d.split, choices=["train", "val", "test"])
    p.add_argument("--n", type=int, default=d.n_per_head, help="positives per head")
    p.add_argument("--single-pathology", action="store_true",
                   help="only positives whose sole abnormal superclass is the head (the synthetic check)")
    p.add_argument("--max-blocks", type=int, default=d.max_blocks, help="randomisation blocks")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fiducials", default=d.fiducial_source,
                   help="auto, ptbxl+, delineation or a PTB-XL+ folder (see python -m xand xai)")
    p.add_argument("--cache-dir", default=None, help="delineation cache folder")
    p.add_argument("--out", default=None, help="result file (default: RUN/sanity/<dataset key>_<split>.json)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from xand.explain.sanity import SanityConfig, format_result, sanity_check

    cfg = SanityConfig(methods=tuple(args.methods), heads=tuple(args.heads) if args.heads else None,
                       split=args.split, n_per_head=args.n, single_pathology=args.single_pathology,
                       max_blocks=args.max_blocks, seed=args.seed, fiducial_source=args.fiducials)
    res = sanity_check(args.run, args.data, cfg, cache_dir=args.cache_dir, out=args.out,
                       progress=not args.no_progress)
    if args.json:
        print(res.to_json())
        return 0
    print(f"{res.info['n_ecg']} ECGs in {res.info['seconds']:.1f} s; stored in {res.path}")
    print(format_result(res))
    print("PG, CAS, rank = Pointing Game, clinical alignment score, relevance rank accuracy of the trained / "
          "fully randomised network; rho = median Spearman of |map| trained vs randomised; chance = mask "
          "coverage. PASS: rho < %.2f, random PG <= chance + %.2f and random CAS <= chance + %.2f."
          % (cfg.spearman_max, cfg.pg_margin, cfg.cas_margin))
    for r in res.rows:
        print(f"{r['head']} {r['method']}: {r['verdict']}")
    if res.info["skipped"]:
        print(f"skipped: {len(res.info['skipped'])} ({'; '.join(list(res.info['skipped'].values())[:3])})")
    return 0
