"""``python -m xand bench delineate``: seconds per 12-lead 10 s ECG for every registered delineator,
beside NeuroKit2's own ``ecg_delineate`` run lead by lead (the obvious alternative), in one run."""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any

import numpy as np

from xand.constants import N_LEADS


def _records(args: Any, n: int) -> tuple[list[tuple[np.ndarray, float]], str]:
    from xand.data.records import iter_records

    data = getattr(args, "data", None)
    if data is None:
        import tempfile
        from pathlib import Path

        from xand.data.synth import SynthConfig, synthesize

        with tempfile.TemporaryDirectory(prefix="xand_bench_") as tmp:
            out = synthesize(Path(tmp) / "synth", SynthConfig(n_records=max(n, 4), seed=0), progress=False)
            recs = [(r.ecg, r.fs) for r in iter_records(out, limit=n) if r.error is None]
        return recs, f"synthetic ({max(n, 4)} records, seed 0, 500 Hz)"
    recs = [(r.ecg, r.fs) for r in iter_records(data, limit=n) if r.error is None]
    return recs, str(data)


def _neurokit2_per_lead(ecg: np.ndarray, fs: float) -> None:
    """What a user without this project writes: NeuroKit2's cleaning, peaks and delineation per lead."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lead in range(N_LEADS):
            clean = nk.ecg_clean(ecg[lead], sampling_rate=int(fs))
            try:
                _, info = nk.ecg_peaks(clean, sampling_rate=int(fs))
                nk.ecg_delineate(clean, info["ECG_R_Peaks"], sampling_rate=int(fs), method="dwt")
            except Exception:  # noqa: BLE001 - a lead NeuroKit2 cannot delineate costs its time all the same
                pass


def benchmark(args: Any) -> dict:
    from xand.delineation.methods import delineate, list_delineators

    n = int(getattr(args, "n", None) or 10)
    recs, source = _records(args, n)
    if not recs:
        raise SystemExit("no readable records")
    rows = {}
    candidates = {f"xand {name}": (lambda e, f, name=name: delineate(e, f, name)) for name in list_delineators()}
    candidates["neurokit2 ecg_delineate per lead (dwt)"] = _neurokit2_per_lead
    for label, fn in candidates.items():
        fn(*recs[0])  # warm-up: imports, filter design
        times = []
        for ecg, fs in recs:
            t0 = time.perf_counter()
            fn(ecg, fs)
            times.append(time.perf_counter() - t0)
        rows[label] = {"median_s": statistics.median(times), "mean_s": statistics.fmean(times),
                       "max_s": max(times), "n": len(times)}
    out = {"source": source, "records": len(recs), "fs": sorted({float(f) for _, f in recs}), "results": rows}
    if getattr(args, "json", False):
        import json

        print(json.dumps(out, indent=2))
    else:
        print(f"delineation of {len(recs)} ECG(s) from {source} (12 leads, {out['fs']} Hz), seconds per ECG:")
        for label, r in rows.items():
            print(f"  {label:<42} median {r['median_s']:.3f}  mean {r['mean_s']:.3f}  max {r['max_s']:.3f}")
    return out
