"""``python -m xand calibrate --run RUN --data DATASET``: temperature scaling of each head on validation."""

from __future__ import annotations

import argparse
import json

NAME = "calibrate"
HELP = "fit each head's temperature on the validation split (calibrated probabilities), report ECE and Brier"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="training run folder")
    p.add_argument("--data", required=True, help="the PTB-XL-layout folder the run was trained on")
    p.add_argument("--cache-dir", default=None, help="prepared-array cache")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from xand.training.predictor import calibrate_run

    out = calibrate_run(args.run, args.data, "val", args.cache_dir)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"fitted on the val split of {args.data}; written to {args.run}/calibration.json")
    if out.get("dataset_check"):
        print(out["dataset_check"])
    for h, r in out["heads"].items():
        line = f"{h:5} T = {r['temperature']:.3f}"
        for split in ("val", "test"):
            if split in r:
                v = r[split]
                line += (f"  {split} (n {v['n']}): ECE {v['ece_raw']:.3f} -> {v['ece']:.3f}, "
                         f"Brier {v['brier_raw']:.3f} -> {v['brier']:.3f}")
        print(line)
    return 0
