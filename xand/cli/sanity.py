"""``python -m xand sanity``: the model-parameter randomisation test of every head x attribution method."""

from __future__ import annotations

import argparse

NAME = "sanity"
HELP = ("sanity check of the explanations (Adebayo et al. 2018): Pointing Game, CAS and rank accuracy of the "
        "trained vs a randomised network, rank correlation of the maps, pass/fail per head x method")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from xand.cli._cohort import add_cohort_arguments
    from xand.explain.sanity import SanityConfig

    d = SanityConfig()
    add_cohort_arguments(p, d, "sanity")
    p.add_argument("--max-blocks", type=int, default=d.max_blocks, help="randomisation blocks")

def run(args: argparse.Namespace) -> int:
    from xand.cli._cohort import cohort_config, run_options
    from xand.explain.sanity import SanityConfig, format_result, sanity_check

    cfg = SanityConfig(**cohort_config(args), max_blocks=args.max_blocks)
    res = sanity_check(args.run, args.data, cfg, **run_options(args))
    if args.json:
        print(res.to_json())
        return 0
    print(f"{res.info['n_ecg']} ECGs in {res.info['seconds']:.1f} s; stored in {res.path}")
    print(format_result(res))
    print("PG, CAS, rank = Pointing Game, clinical alignment score, relevance rank accuracy of the trained / "
          "fully randomised network; rho = median Spearman of |map| trained vs randomised; chance = mask "
          "coverage (of CAS and rank), PG ch. = the Pointing Game's (the share of regions inside the mask for "
          "the wave-level methods). PASS: rho < %.2f, random PG <= PG ch. + %.2f and random CAS <= chance + %.2f."
          % (cfg.spearman_max, cfg.pg_margin, cfg.cas_margin))
    for r in res.rows:
        print(f"{r['head']} {r['method']}: {r['verdict']}")
    if res.info["skipped"]:
        print(f"skipped: {len(res.info['skipped'])} ({'; '.join(list(res.info['skipped'].values())[:3])})")
    return 0
