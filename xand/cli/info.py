"""``python -m xand info DATASET``: what a PTB-XL folder holds (records, rates, splits, pure-label counts)."""

from __future__ import annotations

import argparse
import json

NAME = "info"
HELP = "summarise a PTB-XL folder: records, rates, splits, per-head pure-label counts, devices, patient leaks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="PTB-XL-layout folder (ptbxl_database.csv, scp_statements.csv, records100/500)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from xand.data.ptbxl import summarize

    info = summarize(args.dataset)
    # a patient in two splits invalidates every figure computed on the splits: fail loudly (exit 2)
    status = 0 if info["patient_leak_check"]["ok"] else 2
    missing = info["missing_records"]
    if missing:  # a listed record without files would be skipped by every later step: say so now
        status = 2
    if args.json:
        print(json.dumps(info, indent=2))
        return status
    print(f"{info['data_dir']}: {info['records']} records, {info['patients']} patients, "
          f"rates {info['rates']} Hz (files: {info['record_files']})")
    print("splits: " + ", ".join(f"{s} {v['records']} rec / {v['patients']} pat" for s, v in info["splits"].items()))
    leak = info["patient_leak_check"]
    print("patient leak check: " + ("ok" if leak["ok"] else f"FAILED: {leak['error']}"))
    for eid, why in list(info.get("refused_paths", {}).items())[:5]:
        print(f"refused record {eid}: {why}")
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        print(f"record files: FAILED: {len(missing)} record(s) listed in ptbxl_database.csv have no header and "
              f"signal file at any rate: ecg_id {shown}")
    print(f"\n{'head':<6}{'split':<7}{'pos':>7}{'neg':>7}{'excluded':>10}")
    for head, per in info["label_counts"].items():
        for split, c in per.items():
            print(f"{head:<6}{split:<7}{c['pos']:>7}{c['neg']:>7}{c['excluded']:>10}")
    print("\ndevices: " + ", ".join(f"{d!r} {n}" for d, n in info["devices"].items()))
    print(f"sex: {info['sex']}")
    print(f"age: {info['age']}")
    return status
