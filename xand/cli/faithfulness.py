"""``python -m xand faithfulness``: deletion, insertion, ROAD and faithfulness correlation per head x method."""

from __future__ import annotations

import argparse
import json

NAME = "faithfulness"
HELP = ("faithfulness of the explanations over a split's positives: deletion (vs random order), insertion, "
        "ROAD and faithfulness correlation, with bootstrap 95%% CIs; ECG-appropriate removal (never zeros)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from xand.cli._cohort import add_cohort_arguments
    from xand.explain.faithfulness import FaithfulnessConfig

    d = FaithfulnessConfig()
    add_cohort_arguments(p, d, "faithfulness")
    p.add_argument("--width-ms", type=float, default=d.width_ms, help="patch width (one lead x this many ms)")

def run(args: argparse.Namespace) -> int:
    from xand.cli._cohort import cohort_config, run_options
    from xand.explain.faithfulness import FaithfulnessConfig, faithfulness_check, format_faithfulness

    cfg = FaithfulnessConfig(**cohort_config(args), width_ms=args.width_ms)
    res = faithfulness_check(args.run, args.data, cfg, **run_options(args))
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if k != "records"}, indent=2, default=float))
        return 0
    info = res["info"]
    print(f"{info['n_ecg']} ECGs in {info['seconds']:.1f} s; stored in {res['path']}")
    print(format_faithfulness(res))
    print("areas under the probability curve, mean [bootstrap 95% CI] over ECGs: deletion (most relevant "
          "first; lower = more faithful) vs random order; del<rand = share of ECGs below random; insertion "
          "(higher = more faithful); ROAD gap = LeRF - MoRF area with noisy linear imputation (higher = more "
          "faithful); faith. corr = Bhatt et al. 2020.")
    if info["skipped"]:
        print(f"skipped: {len(info['skipped'])}")
    return 0
