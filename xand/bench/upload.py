"""``python -m xand bench upload``: peak memory and time of every upload reader, accepted and hostile input.

Each case runs in a fresh process: the process builds its input bytes, parses one small valid file of
every format (imports and first-call allocations are not charged to the case), resets its peak resident
set size (``/proc/self/clear_refs``; Linux; glibc's mmap threshold fixed and the heap trimmed first, so
that memory freed while building the input is not silently reused) and parses the case. Reported: the outcome (accepted, or the
``DataError`` message), seconds, peak RSS above the level before the parse (MB) and, for accepted input,
that peak as a multiple of the float32 signal it yields (the hardening issue's goal: <= 10x; a refused
input <= 64 MB). The obvious alternative is measured side by side: ``pandas.read_csv`` of the same CSV
text with its defaults (float64), what a user without this project writes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from xand.constants import LEADS, N_LEADS
from xand.data.header import wfdb_checksum

FS = 500


def _signal(n: int, seed: int = 0) -> np.ndarray:
    """``(12, n)`` int16 ECG-like digital values at 1000/mV."""
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    x = 900 * np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.3, 1.0, (N_LEADS, 1)) + rng.normal(0, 30, (N_LEADS, n))
    return x.astype(np.int16)




def _header(n: int, sig: np.ndarray, file: str, fmt: str, n_declared: int | None = None) -> bytes:
    lines = [f"rec {N_LEADS} {FS} {n if n_declared is None else n_declared}"]
    lines += [f"{file} {fmt} 1000/mV 16 0 {sig[i, 0]} {wfdb_checksum(sig[i])} 0 {lead}" for i, lead in enumerate(LEADS)]
    return ("\n".join(lines) + "\n").encode()


def _mat(val: np.ndarray) -> bytes:
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, {"val": val}, do_compression=True)
    return buf.getvalue()


def _csv(sig: np.ndarray, header: bool) -> bytes:
    mv = sig.T / 1000.0
    buf = io.StringIO()
    if header:
        buf.write(",".join(LEADS) + "\n")
    np.savetxt(buf, mv, fmt="%.4f", delimiter=",")
    return buf.getvalue().encode()


def build_case(case: str, seconds: float) -> tuple[list[tuple[str, bytes]], float | None]:
    """The files of one case and the rate passed with them (None: from the header)."""
    n = int(seconds * FS)
    if case == "wfdb":
        sig = _signal(n)
        return [("rec.hea", _header(n, sig, "rec.dat", "16")), ("rec.dat", sig.T.astype("<i2").tobytes())], None
    if case == "cinc":
        sig = _signal(n)
        return [("rec.hea", _header(n, sig, "rec.mat", "16+24")), ("rec.mat", _mat(sig))], None
    if case in ("csv", "csv_header", "pandas_csv"):
        return [("ecg.csv", _csv(_signal(n), header=case == "csv_header"))], FS
    if case == "npy":
        buf = io.BytesIO()
        np.save(buf, (_signal(n) / 1000.0).astype(np.float32))
        return [("ecg.npy", buf.getvalue())], FS
    if case == "hostile_mat_header":  # the probe: 0.7 MB of zeros declaring 12 x 30M int16, header says so
        zeros = np.zeros((N_LEADS, 30_000_000), np.int16)
        data = _mat(zeros)
        del zeros
        return [("rec.hea", _header(30_000_000, np.zeros((N_LEADS, 1), np.int16), "rec.mat", "16+24")),
                ("rec.mat", data)], None
    if case == "hostile_mat_body":  # the same .mat under a header that declares 5,000 samples
        zeros = np.zeros((N_LEADS, 30_000_000), np.int16)
        data = _mat(zeros)
        del zeros
        return [("rec.hea", _header(5000, np.zeros((N_LEADS, 1), np.int16), "rec.mat", "16+24")),
                ("rec.mat", data)], None
    if case == "hostile_wfdb":  # a header declaring 1e9 samples over a 10 s body
        sig = _signal(5000)
        return [("rec.hea", _header(5000, sig, "rec.dat", "16", n_declared=10 ** 9)),
                ("rec.dat", sig.T.astype("<i2").tobytes())], None
    if case == "hostile_npy":  # a 4.9 kB .npy whose header declares 12 x 50M float32 (2.4 GB)
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                                   "shape": (N_LEADS, 50_000_000)})
        return [("ecg.npy", buf.getvalue() + bytes(4800))], FS
    if case == "hostile_csv":  # 12 x 200,000 values (one lead per line) at 250 Hz: 800 s, over the limit
        rows = _signal(200_000) / 1000.0
        text = "\n".join(",".join(f"{v:.3f}" for v in r) for r in rows)
        return [("ecg.csv", text.encode())], 250
    raise ValueError(case)


CASES = {"accepted": ["wfdb", "cinc", "npy", "csv", "csv_header", "pandas_csv"],
         "hostile": ["hostile_mat_header", "hostile_mat_body", "hostile_wfdb", "hostile_npy", "hostile_csv"]}


def _rss_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise OSError(field)


def _worker(case: str, seconds: float) -> dict[str, Any]:
    """In a fresh process: build the case, warm every reader up, reset the peak RSS, parse, report."""
    import pandas as pd

    from xand.data.upload import parse_upload
    from xand.errors import DataError

    files, fs = build_case(case, seconds)
    for warm in ("wfdb", "cinc", "npy", "csv_header"):
        parse_upload(*build_case(warm, 10.0))
    pd.read_csv(io.BytesIO(build_case("csv", 10.0)[0][0][1]), header=None)
    import gc

    gc.collect()
    try:  # give freed heap back, so that the parse's allocations show as growth of the resident set
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        resettable = True
    except OSError:
        resettable = False
    base = _rss_kb("VmRSS")
    t0 = time.perf_counter()
    out: dict[str, Any] = {"case": case, "input_mb": sum(len(b) for _, b in files) / 2 ** 20}
    try:
        if case == "pandas_csv":
            arr = pd.read_csv(io.BytesIO(files[0][1]), header=None).to_numpy().T
            out["accepted"], out["signal_mb"] = True, arr.size * 4 / 2 ** 20
        else:
            ecg = parse_upload(files, fs=fs)
            out["accepted"], out["signal_mb"] = True, ecg.signal.nbytes / 2 ** 20
    except DataError as exc:
        out["accepted"], out["refused"] = False, str(exc)
    out["seconds"] = time.perf_counter() - t0
    out["peak_mb"] = max(0.0, _rss_kb("VmHWM") - base) / 1024 if resettable else None
    if out.get("signal_mb"):
        out["x_signal"] = out["peak_mb"] / out["signal_mb"] if out["peak_mb"] is not None else None
    return out


def run_case(case: str, seconds: float) -> dict[str, Any]:
    code = f"import json, xand.bench.upload as b; print(json.dumps(b._worker({case!r}, {seconds!r})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1",
                               # a fixed mmap threshold: a large block freed before the parse is returned to
                               # the system instead of being reused unseen by the parse
                               "MALLOC_MMAP_THRESHOLD_": "65536"})
    if proc.returncode != 0:
        return {"case": case, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def benchmark(args: Any) -> dict:
    seconds = float(getattr(args, "n", None) or 120)
    rows = [run_case(c, seconds) for c in CASES["accepted"]] + [run_case(c, seconds) for c in CASES["hostile"]]
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return {"rows": rows}
    print(f"accepted records: {seconds:g} s at {FS} Hz (--n sets the seconds); peak RSS above the level before "
          "the parse, each case in a fresh process")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:20} FAILED: {r['error']}")
            continue
        peak = "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:6.1f} MB"
        ratio = "n/a" if r.get("x_signal") is None else f"{r['x_signal']:.1f}x"
        what = (f"accepted, signal {r['signal_mb']:.1f} MB, peak {ratio}" if r["accepted"]
                else f"refused: {r['refused'][:90]}")
        print(f"{r['case']:20} input {r['input_mb']:6.2f} MB  {r['seconds']:7.3f} s  peak +{peak}  {what}")
    return {"rows": rows}
