"""``python -m xand bench train``: training and inference ECG/s and peak memory per model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import xand
from xand.constants import N_LEADS
from xand.models.networks import create_model, list_models, n_parameters
from xand.training.config import TrainConfig
from xand.training.device import amp_dtype, available_cores, resolve_device
from xand.training.trainer import train


def _bench_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh subprocess: speed and peak memory of one model (see ``benchmark``)."""
    device = resolve_device(spec["device"])
    if device.type == "cpu":
        torch.set_num_threads(int(spec.get("threads") or available_cores()))
    else:
        torch.backends.cudnn.benchmark = True
    amp = amp_dtype(device, "auto")
    torch.manual_seed(0)
    bs, t = spec["batch_size"], spec["n_samples"]
    x = torch.randn(bs, N_LEADS, t, device=device)
    base_rss = _vm_hwm_kb()
    model = create_model(spec["model"], **spec["kwargs"]).to(device)
    y = torch.rand(bs, model.n_outputs, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def timed(fn, n_min: int, min_s: float) -> tuple[float, float]:
        fn()  # warm-up (allocations, cuDNN autotuning)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        import resource

        c0 = resource.getrusage(resource.RUSAGE_SELF)
        t0, n = time.perf_counter(), 0
        while n < n_min or time.perf_counter() - t0 < min_s:
            fn()
            n += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        return n * bs / wall, cpu / wall

    model.train()
    train_rate, train_cpu = timed(step, spec["steps"], spec["min_seconds"])

    def infer() -> None:
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=amp or torch.float32,
                                             enabled=amp is not None):
            model(x)

    model.eval()
    infer_rate, _ = timed(infer, spec["steps"], spec["min_seconds"] / 2)
    out = {"model": spec["label"], "params": n_parameters(model), "train_ecg_s": train_rate,
           "infer_ecg_s": infer_rate, "cpu_busy": train_cpu, "device": str(device),
           "threads": torch.get_num_threads(),
           "train_ecg_per_cpu_s": train_rate / max(train_cpu, 1e-9)}
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_mem_mb"] = (_vm_hwm_kb() - base_rss) / 1024
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as fc:
        F.binary_cross_entropy_with_logits(model(x[:1]).float(), y[:1]).backward()
    out["train_gflop_per_ecg"] = fc.get_total_flops() / 1e9
    out["achieved_tflops"] = out["train_gflop_per_ecg"] * train_rate / 1e3
    return out


def _vm_hwm_kb() -> float:
    """Peak resident set size of this process (``VmHWM``, kB); torch allocations are invisible to tracemalloc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


#: Dense peak TFLOPS (fp16/bf16 tensor core, no sparsity) of common cards, for the "fraction of peak" figure.
GPU_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "T4": 65.0,
                   "V100": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0}


def _gpu_peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key, val in GPU_PEAK_TFLOPS.items():
        if key in name:
            return val
    return None


def _bench_models(device: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = [(name, name, {}) for name in list_models()]
    rows.insert(1, ("leadwise full-res", "leadwise", {"full_resolution": True}))
    return rows


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    code = ("import json,sys; from xand.bench.train import _bench_worker; "
            "print('@@' + json.dumps(_bench_worker(json.loads(sys.argv[1]))))")
    root = str(Path(xand.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise RuntimeError(f"benchmark worker for {spec['label']} failed:\n{proc.stderr[-2000:]}")


def benchmark(args) -> dict[str, Any]:
    """``python -m xand bench train``: per registered model, training and inference ECG/s, peak memory,
    and the leadwise default against the same model at full resolution (speed and AUC) in one run.

    ``args``: ``.data`` (PTB-XL folder or None = synthetic), ``.n`` (records of the synthetic set,
    default 400), ``.device``, ``.cache_dir``, ``.json`` (optional ``.heads``, default CD -- the head most
    sensitive to time resolution, QRS width -- and ``.epochs``, default 4, for the AUC comparison).
    Speed uses random input, batch 64, each model in its own subprocess so peak memory (``VmHWM`` delta on
    CPU, ``max_memory_allocated`` on GPU) is its own. On a shared CPU the wall-clock rate depends on the
    load, so ``train_ecg_per_cpu_s`` (ECG per CPU-second used) is reported too: times the thread count it
    estimates the rate on an otherwise idle machine.
    """
    import tempfile

    device = resolve_device(getattr(args, "device", "auto") or "auto")
    peak = _gpu_peak_tflops() if device.type == "cuda" else None
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    speed = []
    for label, name, kw in _bench_models(str(device)):
        spec = {"label": label, "model": name, "kwargs": kw, "device": str(device), "batch_size": 64,
                "n_samples": 1000, "steps": 3 if device.type == "cpu" else 20,
                "min_seconds": 6.0 if device.type == "cpu" else 3.0}
        r = _run_worker(spec)
        if peak:
            r["fraction_of_peak"] = r["achieved_tflops"] / peak
        speed.append(r)
        if not getattr(args, "json", False):
            print(_speed_line(r), flush=True)

    # AUC: leadwise default vs the same network at full resolution, same data, same epochs
    with tempfile.TemporaryDirectory(prefix="xand-bench-") as tmp:
        data = getattr(args, "data", None)
        if data is None:
            from xand.data.synth import SynthConfig, synthesize

            data = synthesize(Path(tmp) / "synth", SynthConfig(n_records=int(getattr(args, "n", None) or 400), seed=0),
                              progress=False)
        from xand.data.prepare import prepare

        prepared = prepare(data, cache_dir=getattr(args, "cache_dir", None) or Path(tmp) / "cache", progress=False)
        acc = []
        heads = tuple(getattr(args, "heads", None) or ("CD",))
        epochs = int(getattr(args, "epochs", None) or 4)
        for label, kw in (("leadwise", {}), ("leadwise full-res", {"full_resolution": True})):
            cfg = TrainConfig(model="leadwise", model_kwargs=kw, heads=heads, epochs=epochs, patience=0,
                              device=str(device), bootstrap=200)
            t0 = time.perf_counter()
            run = train(prepared, cfg, Path(tmp) / "runs")
            summ = json.loads((run / "summary.json").read_text())
            acc.append({"model": label, "seconds": time.perf_counter() - t0,
                        **{f"{h}_val_auc": summ["heads"][h]["val_auc"] for h in cfg.heads},
                        **{f"{h}_test_dagger": summ["heads"][h]["test_dagger"] for h in cfg.heads}})
            if not getattr(args, "json", False):
                print("  ".join(f"{k}={_fmtv(v)}" for k, v in acc[-1].items()), flush=True)
    result = {"device": str(device), "threads": torch.get_num_threads() if device.type == "cpu" else None,
              "load_avg_start": load0, "load_avg_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
              "gpu_peak_tflops": peak, "speed": speed, "auc_comparison": acc,
              "data": str(getattr(args, "data", None) or "synthetic")}
    lw = {r["model"]: r for r in speed}
    if "leadwise" in lw and "leadwise full-res" in lw:
        result["leadwise_speedup_vs_full_res"] = lw["leadwise"]["train_ecg_s"] / lw["leadwise full-res"]["train_ecg_s"]
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2))
    else:
        print(f"leadwise speed-up vs full resolution: {result.get('leadwise_speedup_vs_full_res', float('nan')):.1f}x; "
              f"load average {load0} -> {result['load_avg_end']} on {available_cores()} cores")
    return result


def _fmtv(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _speed_line(r: dict[str, Any]) -> str:
    s = (f"{r['model']:18} params={r['params'] / 1e6:6.2f}M train={r['train_ecg_s']:8.1f} ECG/s "
         f"infer={r['infer_ecg_s']:8.1f} ECG/s peak_mem={r['peak_mem_mb']:7.1f} MB "
         f"{r['train_gflop_per_ecg']:.2f} GFLOP/ECG (fwd+bwd) cpu_busy={r['cpu_busy']:.2f} "
         f"train/cpu-s={r['train_ecg_per_cpu_s']:.1f}")
    if "fraction_of_peak" in r:
        s += f" {100 * r['fraction_of_peak']:.1f}% of peak"
    return s
