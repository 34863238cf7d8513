"""``python -m train --data DATASET --heads MI STTC CD HYP --model leadwise --epochs N --out data/runs``.

Prepares the dataset (cached; a no-op when unchanged), trains one binary model per head (or the multi-label
baseline) with a progress bar, and prints a JSON summary at the end. ``--models A B C`` trains several
registered models on the same data in turn (one run folder each) and prints them side by side.
``--resume RUN`` continues an interrupted run from its ``last.pt`` files, with the run's own
preprocessing (its ``config.json``; ``--bandpass`` / ``--baseline-removal`` need not be repeated).
``--preset demo`` trains the committed demo heads (``data/demo_weights``) on the synthetic demo set;
explicit options still override it.
Without ``--out``, runs go to ``data/runs`` of the repository (where the app lists them by default), whatever
the working directory; an explicit ``--out`` is relative to the working directory as usual.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: the repository root: default output folders are inside it whatever the working directory
REPO = Path(__file__).resolve().parents[1]
#: where runs go without ``--out``: the app's default runs folder (``XAND_HOME/runs``, ``data/runs``)
DEFAULT_OUT = REPO / "data" / "runs"

#: named option sets (argparse defaults; explicit flags override them)
PRESETS: dict[str, dict] = {
    # The app's committed demo heads: the default lead-wise model at half width (a quarter of the
    # parameters: 0.64M per head, 3.3 MB) so they stay small in git and explain fast on a 2-core CPU.
    "demo": {"model": "leadwise", "width": 0.5, "epochs": 4, "out": str(REPO / "data" / "demo_weights"),
             "weights_only": True},
}


def build_parser() -> argparse.ArgumentParser:
    from xand.constants import HEADS

    p = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="PTB-XL-layout folder (real or synthetic)")
    p.add_argument("--heads", nargs="+", default=list(HEADS), help="heads to train")
    p.add_argument("--model", default="leadwise", help="registered model (see xand.models.networks.list_models)")
    p.add_argument("--models", nargs="+", default=None, help="train several models in turn (overrides --model)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default=str(DEFAULT_OUT),
                   help="parent folder of run folders (default: %(default)s, the repository's data/runs, "
                        "where the app lists runs unless XAND_RUNS_DIR / XAND_HOME point elsewhere)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue this run folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--amp", default="auto", choices=["auto", "off", "fp16", "bf16"], help="mixed precision")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--loss", default="focal", choices=["focal", "bce"], help="focal (gamma) or positive-weighted BCE")
    p.add_argument("--gamma", type=float, default=2.0, help="focal loss gamma")
    p.add_argument("--patience", type=int, default=8, help="early-stopping patience on val AUC (0 = off)")
    p.add_argument("--augment", action="store_true", help="noise, amplitude scaling, baseline wander, time shift")
    p.add_argument("--no-aux", action="store_true", help="disable the device/sex auxiliary heads")
    p.add_argument("--width", type=float, default=None, help="model width multiplier")
    p.add_argument("--model-kw", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra model options, VALUE as JSON (e.g. stem_stride=1 channels=[16,32,64,128])")
    p.add_argument("--threshold", default="youden", choices=["youden", "f1"], help="validation threshold rule")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the test-AUC CI")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--cache-dir", default=None, help="prepared-array cache (default $XAND_CACHE or ~/.cache/xand)")
    p.add_argument("--bandpass", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="prepare-time band-pass in Hz (e.g. 0.5 40)")
    p.add_argument("--baseline-removal", action="store_true", help="prepare-time baseline-wander removal")
    p.add_argument("--mlflow", action="store_true", help="also log to MLflow (needs the mlflow package)")
    p.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI (default: <out>/mlruns)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="named defaults: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    p.add_argument("--weights-only", action="store_true",
                   help="at the end delete each head's last.pt (optimiser state, 2-3x the model): the run "
                        "can be loaded and evaluated but no longer resumed")
    return p


def _model_kwargs(args: argparse.Namespace) -> dict:
    kw = {}
    for item in args.model_kw:
        key, _, value = item.partition("=")
        try:
            kw[key] = json.loads(value)
        except json.JSONDecodeError:
            kw[key] = value
    if args.width is not None:
        kw["width"] = args.width
    return kw


def _resume_preprocess(args: argparse.Namespace):
    """The preprocessing a run was trained with (its ``config.json``), so ``--resume RUN`` prepares the
    same data without repeating ``--bandpass`` / ``--baseline-removal``; explicit flags that disagree
    with the run are ignored with a note (resuming on other data would fail the fingerprint check)."""
    from xand.errors import DataError
    from xand.data.preprocess import PreprocessConfig

    cfg_path = Path(args.resume) / "config.json"
    try:
        saved = json.loads(cfg_path.read_text())["preprocess"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(cfg_path, "run to resume has no readable config.json with a preprocess section",
                        "a run folder written by train()") from None
    pcfg = PreprocessConfig.from_dict(saved)
    asked = {}
    if args.bandpass is not None:
        asked["bandpass"] = tuple(float(v) for v in args.bandpass)
    if args.baseline_removal:
        asked["baseline_removal"] = True
    ignored = {k: v for k, v in asked.items() if v != getattr(pcfg, k)}
    if ignored:
        print(f"note: --resume uses the run's own preprocessing {pcfg.prepare_options()}; ignoring "
              + ", ".join(f"{k}={v}" for k, v in ignored.items()), file=sys.stderr)
    return pcfg


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset:
        parser.set_defaults(**PRESETS[args.preset])
        args = parser.parse_args(argv)
    from xand.errors import XandError
    from xand.data.prepare import prepare
    from xand.data.preprocess import PreprocessConfig
    from xand.training.config import TrainConfig
    from xand.training.trainer import train

    try:
        if args.resume:
            pcfg = _resume_preprocess(args)
        else:
            pcfg = PreprocessConfig(bandpass=tuple(args.bandpass) if args.bandpass else None,
                                    baseline_removal=args.baseline_removal)
        prepared = prepare(args.data, cache_dir=args.cache_dir, cfg=pcfg, progress=not args.no_progress)
        results = {}
        if args.resume:
            run = train(prepared, None, args.out, resume=args.resume, progress=not args.no_progress)
            results[json.loads((Path(run) / "config.json").read_text())["model"]["name"]] = run
        else:
            for name in args.models or [args.model]:
                cfg = TrainConfig(model=name, model_kwargs=_model_kwargs(args), heads=tuple(args.heads),
                                  epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, loss=args.loss,
                                  focal_gamma=args.gamma, patience=args.patience, aux=not args.no_aux,
                                  augment=args.augment, device=args.device, amp=args.amp, seed=args.seed,
                                  num_threads=args.threads, threshold=args.threshold, bootstrap=args.bootstrap,
                                  mlflow=args.mlflow, mlflow_uri=args.mlflow_uri)
                results[name] = train(prepared, cfg, args.out, progress=not args.no_progress)
    except XandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.weights_only:
        for run in results.values():
            for last in Path(run).glob("*/last.pt"):
                last.unlink()
    out = {}
    for name, run in results.items():
        summ = json.loads((Path(run) / "summary.json").read_text())
        out[name] = {"run": str(run), "n_parameters": summ["n_parameters"],
                     "heads": {h: {k: s[k] for k in ("val_auc", "test_dagger", "test_auc_ci", "pr_auc", "f1",
                                                      "sensitivity", "specificity", "threshold", "best_epoch")}
                               for h, s in summ["heads"].items()},
                     "seconds": sum(u["seconds"] for u in summ["units"].values())}
    _print_table(out)
    print(json.dumps(out, indent=2))
    return 0


def _print_table(out: dict) -> None:
    """Human-readable model x head table on stderr (stdout carries the JSON)."""
    print(f"{'model':12} {'head':5} {'val AUC':>8} {'Test†':>7} {'95% CI':>16}", file=sys.stderr)
    for name, r in out.items():
        for h, s in r["heads"].items():
            ci = s["test_auc_ci"]
            ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
            f = (lambda v: "-" if v is None else f"{v:.3f}")
            print(f"{name:12} {h:5} {f(s['val_auc']):>8} {f(s['test_dagger']):>7} {ci_s:>16}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
