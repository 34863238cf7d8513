"""``python -m xand download``: fetch PTB-XL / PTB-XL+ from PhysioNet, resumable and checksum-verified."""

from __future__ import annotations

import argparse
import json

NAME = "download"
HELP = ("Download PTB-XL (or PTB-XL+) from PhysioNet into a folder: resumable, every file verified "
        "against the published SHA256SUMS.txt; re-running only fetches what is missing.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xand.data.download import DATASETS

    parser.add_argument("--dataset", default="ptbxl", choices=sorted(DATASETS),
                        help="ptbxl: PTB-XL 1.0.3; ptbxl-plus: PTB-XL+ 1.0.1 (default: ptbxl)")
    parser.add_argument("--out", required=True, help="target folder (created)")
    parser.add_argument("--only", action="append", metavar="GLOB",
                        help="fetch only paths matching GLOB, e.g. 'records100/*' (repeatable; "
                             "top-level metadata files are always fetched)")
    parser.add_argument("--base-url", default=None, help="mirror URL instead of PhysioNet")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (default: 4)")
    parser.add_argument("--retries", type=int, default=4, help="retries per file (default: 4)")
    parser.add_argument("--no-progress", action="store_true", help="no status line")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from xand.data.download import download

    report = download(args.out, dataset=args.dataset, base_url=args.base_url, only=args.only,
                      workers=args.workers, progress=not (args.no_progress or args.json),
                      retries=args.retries)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"{report.dataset}: {report.n_selected} of {report.n_listed} listed files in {report.out_dir}; "
              f"{report.n_present} already verified, {report.n_fetched} fetched "
              f"({report.n_resumed} resumed, {report.bytes_fetched / 1e6:.1f} MB) in {report.seconds:.1f} s")
    return 0
