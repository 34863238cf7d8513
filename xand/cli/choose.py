"""``python -m xand choose-method``: each head's default attribution method, from its stored sanity and
faithfulness results (``xand.explain.selection``)."""

from __future__ import annotations

import argparse

NAME = "choose-method"
HELP = ("choose each head's default attribution method: passes the randomisation check, most faithful "
        "(reads the results of 'xand sanity' and 'xand faithfulness' on one dataset and split)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="training run folder")
    p.add_argument("--data", required=True, help="the PTB-XL-layout folder both checks ran on")
    p.add_argument("--split", default="val", choices=["train", "val", "test"],
                   help="the split both checks ran on (validation: the choice must not look at test)")


def run(args: argparse.Namespace) -> int:
    import json

    from xand.data.prepare import content_key
    from xand.errors import DataError
    from xand.explain.faithfulness import faithfulness_path
    from xand.explain.sanity import load_sanity, sanity_path
    from xand.explain.selection import choose_methods, save_choice

    key = content_key(args.data)
    sp, fp = sanity_path(args.run, key, args.split), faithfulness_path(args.run, key, args.split)
    san = load_sanity(sp)
    if san is None:
        raise DataError(sp, "no sanity-check result", f"python -m xand sanity --run {args.run} --data {args.data} "
                                                      f"--split {args.split}")
    if not fp.is_file():
        raise DataError(fp, "no faithfulness result", f"python -m xand faithfulness --run {args.run} --data "
                                                      f"{args.data} --split {args.split}")
    faith = json.loads(fp.read_text())
    choice = choose_methods(san.rows, faith["rows"])
    path = save_choice(args.run, choice, {"sanity": str(sp), "faithfulness": str(fp), "split": args.split,
                                          "data": str(args.data), "dataset_key": key})
    for head, c in choice.items():
        print(f"{head}: {c['method']} - {c['why']}")
    print(f"stored in {path}")
    return 0
