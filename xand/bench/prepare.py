"""``python -m xand bench prepare``: prepare throughput against a plain ``wfdb.rdsamp`` loop."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from xand.data.prepare import _used_file, prepare
from xand.data.ptbxl import (
    PTBXL,
)

# ------------------------------------------------------------------------------------------ benchmark

def benchmark(args) -> dict[str, Any]:
    """``python -m xand bench prepare``: prepare throughput vs a plain per-record ``wfdb.rdsamp`` loop.

    Both read the same records at 100 Hz in one run: the baseline calls ``wfdb.rdsamp`` per record in one
    process (the obvious alternative); ``prepare`` uses every core and a fresh cache, and is also timed
    with one worker and as a cached (no-op) re-run. ``args.data`` None writes a synthetic set of
    ``args.n or 500`` records to a temporary folder.

    Returns
    -------
    dict of figures (records, seconds, records/s per method), also printed as a table or JSON.
    """
    import wfdb

    with tempfile.TemporaryDirectory(prefix="xand-bench-") as tmpd:
        tmpd = Path(tmpd)
        if args.data is None:
            try:
                from xand.data.synth import SynthConfig, synthesize
            except ImportError as exc:
                raise SystemExit(f"bench prepare needs xand.data.synth to write a synthetic set ({exc}); "
                                 "pass --data PTBXL_DIR to use a real folder") from None
            data = synthesize(tmpd / "synth", SynthConfig(n_records=args.n or 500), progress=False)
            data = Path(data) if data is not None else tmpd / "synth"
        else:
            data = Path(args.data)
        ptb = PTBXL(data)
        ids = list(ptb.meta.index)[: args.n] if args.n else list(ptb.meta.index)
        bases = [_used_file(ptb.paths(e), 100) for e in ids]
        base_cache = Path(args.cache_dir) if getattr(args, "cache_dir", None) else tmpd
        base_cache.mkdir(parents=True, exist_ok=True)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

        rows = []
        t = time.perf_counter()
        for b in bases:
            if b is not None:
                wfdb.rdsamp(str(b))
        rows.append(("wfdb.rdsamp loop (1 process)", time.perf_counter() - t))
        for w in sorted({1, cpus}):
            cache = Path(tempfile.mkdtemp(prefix="cache-", dir=base_cache))
            t = time.perf_counter()
            prepare(data, cache, workers=w, progress=False, ecg_ids=ids)
            rows.append((f"xand prepare, {w} worker(s), fresh cache", time.perf_counter() - t))
        t = time.perf_counter()
        prepare(data, cache, workers=cpus, progress=False, ecg_ids=ids)
        rows.append(("xand prepare, re-run (cached no-op)", time.perf_counter() - t))
        if base_cache is not tmpd:
            for d in base_cache.glob("cache-*"):
                shutil.rmtree(d, ignore_errors=True)

    base_s = rows[0][1]
    figures = {"records": len(ids), "data": str(args.data or "synthetic"), "cores": cpus,
               "results": [{"method": m, "seconds": round(s, 3), "records_per_s": round(len(ids) / s, 1),
                            "speedup_vs_rdsamp": round(base_s / s, 2)} for m, s in rows]}
    if getattr(args, "json", False):
        print(json.dumps(figures, indent=2))
    else:
        print(f"prepare throughput, {len(ids)} records at 100 Hz ({figures['data']}), {cpus} cores")
        print(f"{'method':<42}{'seconds':>9}{'records/s':>12}{'vs rdsamp':>11}")
        for r in figures["results"]:
            print(f"{r['method']:<42}{r['seconds']:>9.2f}{r['records_per_s']:>12.1f}{r['speedup_vs_rdsamp']:>10.2f}x")
    return figures
