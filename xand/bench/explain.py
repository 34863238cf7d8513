"""``python -m xand bench explain``: explanation latency against Captum's default Integrated Gradients."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from xand.constants import N_LEADS
from xand.explain.attribution import IGConfig, attribute, lead_drop, lead_importance


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float, Any]:
    """Median wall, min wall and median process CPU seconds of ``repeats`` calls after one warm-up call,
    and the last result. CPU time (summed over torch's threads) does not grow when other processes
    share the cores, so it is the load-robust figure; on an idle machine wall ~ CPU / threads."""
    fn()  # warm-up: allocator, oneDNN primitives, the cached BN-folded copy
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), min(times), statistics.median(cpu), out


def _bench_inputs(args: Any, n: int, fs: int = 100) -> tuple[list[np.ndarray], str]:
    """``n`` ECGs in mV at ``fs``: from ``args.data`` when given, else a small synthetic set."""
    import tempfile
    from pathlib import Path

    from xand.data.ptbxl import PTBXL

    data = getattr(args, "data", None)
    with tempfile.TemporaryDirectory(prefix="xand_bench_") as tmp:
        if data is None:
            from xand.data.synth import SynthConfig, synthesize

            data = synthesize(Path(tmp) / "synth", SynthConfig(n_records=max(n, 8), seed=0), progress=False)
            source = f"synthetic ({max(n, 8)} records, seed 0)"
        else:
            source = str(data)
        ds = PTBXL(data)
        ecgs = [ds.load(int(i), fs=fs) for i in list(ds.meta.index)[:n]]
    return ecgs, source


def _bench_configs(cfg: IGConfig) -> dict[str, dict | None]:
    """Configurations compared by ``benchmark``; None = Captum called directly with its defaults."""
    gl = "gausslegendre"
    return {
        "captum default (50 GL steps, 1 batch)": None,
        f"project ({cfg.n_steps} GL steps, 1 batch, BN folded)": {},
        f"{cfg.n_steps} GL steps, BN not folded": dict(fuse_bn=False),
        "16 GL steps, BN folded": dict(n_steps=16, quadrature=gl, internal_batch_size=None),
        "24 GL steps, BN folded": dict(n_steps=24, quadrature=gl, internal_batch_size=None),
        "50 GL steps, BN folded": dict(n_steps=50, quadrature=gl, internal_batch_size=None),
        f"{cfg.n_steps} GL steps, batches of 4 ECG-steps": dict(internal_batch_size=4),
        f"{cfg.n_steps} Riemann-trapezoid steps": dict(quadrature="riemann_trapezoid"),
    }


def benchmark(args: Any) -> dict:
    """``python -m xand bench explain``: IG latency and |delta|, Captum default vs project configuration.

    Side by side in one run on the default lead-wise model: Captum's default IG (50 Gauss-Legendre
    steps, one batch, called directly), the project configuration (``IGConfig``) and alternatives, each
    timed per ECG as the median of ``repeats`` calls (median over ECGs reported), with the median and
    max ``|delta|`` over the ECGs; on CUDA too when available. Also the batch-validation throughput
    (ECG/s) of the per-ECG XAI work (IG + GradientShap + perturbation + lead drop + scores, given a mask).
    Uses the trained run in ``args.run`` when given (first head), else a randomly initialised model
    (fine for latency; the figures say which). ``args.n``: number of ECGs (default 3).
    """
    import json
    import os

    from captum.attr import IntegratedGradients

    from xand.data.preprocess import normalize

    dev_name = getattr(args, "device", "auto") or "auto"
    devices = ["cpu"] + (["cuda"] if dev_name in ("auto", "cuda") and torch.cuda.is_available() else [])
    n_ecg = int(getattr(args, "n", None) or 3)
    repeats = 3
    run = getattr(args, "run", None)
    ecgs, source = _bench_inputs(args, n_ecg)
    if run:
        from xand.training.predictor import load_run

        pred = load_run(run)
        head = pred.heads[0]
        model_cpu, target = pred.model(head).cpu(), pred.target(head)
        xs = [pred.prepare_input(e, 100).cpu() for e in ecgs]
        model_desc = f"trained run {run}, head {head}"
    else:
        from xand.models.networks import create_model

        torch.manual_seed(0)
        model_cpu, target = create_model("leadwise").eval(), 0
        xs = [torch.as_tensor(normalize(e[None].astype(np.float32))) for e in ecgs]
        model_desc = "create_model('leadwise'), randomly initialised (latency only; deltas of an untrained net)"
    cfg = IGConfig()
    rows = []
    for dev in devices:
        model = model_cpu.to(dev)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        for name, kw in _bench_configs(cfg).items():
            med, best, cpu, deltas = [], [], [], []
            for x in xs:
                xd = x.to(dev)
                if kw is None:
                    ig = IntegratedGradients(model)

                    def call(xd=xd, ig=ig):
                        _, d = ig.attribute(xd, baselines=torch.zeros_like(xd), target=target,
                                            return_convergence_delta=True)
                        sync()
                        return float(d.reshape(-1)[0])
                else:
                    def call(xd=xd, kw=kw):
                        a = attribute(model, xd, target, "ig", **kw)
                        sync()
                        return a.delta
                t_med, t_min, t_cpu, d = _median_time(call, repeats)
                med.append(t_med)
                best.append(t_min)
                cpu.append(t_cpu)
                deltas.append(abs(d))
            rows.append({"device": dev, "config": name, "kwargs": kw,
                         "median_ms": 1000 * statistics.median(med), "min_ms": 1000 * min(best),
                         "cpu_ms": 1000 * statistics.median(cpu),
                         "median_abs_delta": statistics.median(deltas), "max_abs_delta": max(deltas)})
        model_cpu = model.to("cpu")
    thr = _throughput(model_cpu, target, xs)
    waves = _wave_rows(model_cpu, target, xs, ecgs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    figures = {"model": model_desc, "inputs": source, "n_ecg": len(xs), "repeats": repeats,
               "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load_avg_1min": load,
               "project_config": asdict(cfg), "ig": rows, "batch_xai_ecg_per_s": thr, "waves": waves}
    if getattr(args, "json", False):
        print(json.dumps(figures, indent=2))
    else:
        print(f"model: {model_desc}\ninputs: {source}; {len(xs)} ECGs x median of {repeats} repeats; "
              f"torch threads {figures['torch_threads']} of {figures['cpu_count']} CPUs; load {load}")
        print(f"{'dev':4s} {'IG configuration':44s} {'median ms':>9s} {'min ms':>7s} {'CPU ms':>7s} "
              f"{'med |delta|':>11s} {'max |delta|':>11s}")
        for r in rows:
            print(f"{r['device']:4s} {r['config']:44s} {r['median_ms']:9.0f} {r['min_ms']:7.0f} {r['cpu_ms']:7.0f} "
                  f"{r['median_abs_delta']:11.2e} {r['max_abs_delta']:11.2e}")
        print("wall ms: median / min over repeats (median over ECGs); CPU ms: process CPU time per call, "
              "summed over threads (robust to other load; idle wall ~ CPU / threads)")
        print(f"batch XAI throughput (IG + GradientShap + perturbation + lead drop + scores, CPU): "
              f"{thr:.2f} ECG/s")
        print("wave-level attribution of one ECG x head (72 lead x wave features + 12 'other', CPU, median "
              "over ECGs), beside Captum's FeatureAblation with one feature per sample block as the default:")
        for r in waves:
            print(f"  {r['config']:58s} {r['median_ms']:7.0f} ms")
    return figures


def _wave_rows(model: nn.Module, target: int, xs: list[Tensor], ecgs: list[np.ndarray]) -> list[dict]:
    """Latency of the wave-level methods per ECG (the bench ECGs delineated at 100 Hz, templates from
    the same ECGs: only the timing is measured), beside Captum's FeatureAblation with its default
    feature mask (every sample its own feature is out of reach: 12,000 forward passes; 10-sample blocks)."""
    from captum.attr import FeatureAblation

    from xand.delineation.methods import delineate
    from xand.explain.waves import segment_labels, templates_from

    labels = [segment_labels(delineate(e, 100.0), x.shape[-1]) for e, x in zip(ecgs, xs)]
    tpl = templates_from(np.stack([x[0].numpy() for x in xs]), np.stack(labels))
    blocks = torch.as_tensor(np.arange(xs[0].shape[1] * xs[0].shape[2]).reshape(xs[0].shape[1:]) // 10)[None]
    configs = {
        "waves (linear removal)": lambda x, lab: attribute(model, x, target, "waves", segments=lab),
        "waves_template, null calibration with 8 nulls (default)":
            lambda x, lab: attribute(model, x, target, "waves_template", segments=lab, references=tpl),
        "waves_template, 4 nulls": lambda x, lab: attribute(model, x, target, "waves_template", segments=lab,
                                                           references=tpl, n_null=4),
        "waves_template, per unit of change (l2)": lambda x, lab: attribute(model, x, target, "waves_template",
                                                                           segments=lab, references=tpl,
                                                                           normalise="l2"),
        "Captum FeatureAblation, 10-sample blocks (1,200 features)":
            lambda x, lab: FeatureAblation(model).attribute(x, target=target, feature_mask=blocks,
                                                            perturbations_per_eval=64),
    }
    out = []
    for name, fn in configs.items():
        times = []
        for x, lab in zip(xs, labels):
            fn(x, lab)  # warm-up (the null networks are built once per architecture)
            t0 = time.perf_counter()
            fn(x, lab)
            times.append(time.perf_counter() - t0)
        out.append({"config": name, "median_ms": 1000 * statistics.median(times)})
    return out


def _throughput(model: nn.Module, target: int, xs: list[Tensor]) -> float:
    """ECG/s of the per-ECG batch-validation work on CPU, given a mask (a fixed stand-in one)."""
    from xand.explain import scores

    mask = np.zeros((N_LEADS, xs[0].shape[-1]), dtype=bool)
    mask[:, ::10] = True  # scoring cost does not depend on the mask's content

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(torch.as_tensor(batch, dtype=torch.float32))[:, target]).numpy()

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for x in xs:
        ig = attribute(model, x, target, "ig")
        gs = attribute(model, x, target, "gradshap")
        for fn in (scores.pointing_game, scores.cas, scores.rank_accuracy):
            fn(ig.map, mask)
        scores.cosine(ig.map, gs.map)
        scores.perturbation_drop(predict, x[0].numpy(), mask, 0.0, rng)
        lead_importance(ig.map)
        lead_drop(model, x, target)
    return len(xs) / (time.perf_counter() - t0)
