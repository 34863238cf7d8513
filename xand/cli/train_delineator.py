"""``python -m xand train-delineator LUDB_DIR [--cv K]``: train the U-Net delineator, or cross-validate it."""

from __future__ import annotations

import argparse
import json
import time

NAME = "train-delineator"
HELP = "train the learned (U-Net) delineator on LUDB, or score it on held-out records (--cv K)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from xand.delineation.learned import DEFAULT_WEIGHTS, UNetConfig

    p.add_argument("ludb_dir", help="LUDB folder")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="record-level folds: each record delineated by a network that never saw it, then scored")
    p.add_argument("--epochs", type=int, default=UNetConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DEFAULT_WEIGHTS), help="where the weights go (without --cv)")


def cross_validate(ludb_dir: str, k: int, cfg, seed: int = 0, progress: bool = False) -> dict:
    """``{record: Fiducials}`` of every record, each from the network of the folds that left it out."""
    from xand.data.ludb import list_ludb, read_ludb
    from xand.delineation.learned import delineate_unet, train_unet
    from xand.delineation.validation import cv_folds

    recs = list_ludb(ludb_dir)
    out = {}
    for i, fold in enumerate(cv_folds(recs, k, seed)):
        train = [r for r in recs if r not in fold]
        if progress:
            print(f"fold {i + 1}/{k}: train on {len(train)} records, test on {fold}", flush=True)
        model = train_unet(ludb_dir, train, cfg)
        for rec in fold:
            r = read_ludb(ludb_dir, rec)
            out[rec] = delineate_unet(r.signal, r.fs, model)
    return out


def run(args: argparse.Namespace) -> int:
    from xand.data.ludb import list_ludb
    from xand.delineation.learned import UNetConfig, save_unet, train_unet

    cfg = UNetConfig(epochs=args.epochs, seed=args.seed)
    t0 = time.perf_counter()
    if args.cv:
        from xand.delineation.validation import validate_ludb

        det = cross_validate(args.ludb_dir, args.cv, cfg, args.seed, progress=True)
        table = validate_ludb(args.ludb_dir, sorted(det), detections=det, workers=1)
        print(table.round(3).to_string())
        print(json.dumps({"intervals": table.attrs["intervals"], "mask_iou": table.attrs["mask_iou"],
                          "seconds": time.perf_counter() - t0}, indent=2, default=float))
        return 0
    recs = list_ludb(args.ludb_dir)
    model = train_unet(args.ludb_dir, recs, cfg, progress=True)
    out = save_unet(model, cfg, args.out, {"records": len(recs), "seconds": time.perf_counter() - t0,
                                          "command": f"python -m xand train-delineator {args.ludb_dir}"})
    print(f"trained on {len(recs)} records in {time.perf_counter() - t0:.0f} s; weights in {out}")
    return 0
