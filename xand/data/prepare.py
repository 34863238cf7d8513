"""``prepare``: read every PTB-XL record once into one contiguous, memory-mapped float32 array.

Layout of a prepared set, ``cache_dir/<fingerprint>/``:

* ``signals.npy`` -- ``(N, 12, T)`` float32 **mV** at ``cfg.fs`` Hz (prepare-time filters applied),
  opened with ``np.load(mmap_mode="r")`` so training and the app never touch WFDB files again;
* ``index.csv`` -- ``ecg_id`` plus the ``PTBXL.labels()`` columns, row ``i`` describing ``signals[i]``;
* ``meta.json`` -- fingerprint, options, source, counts and the skipped records with their reasons.

The fingerprint hashes the two metadata CSVs, the names/sizes/mtimes of the record files used and the
prepare-time options, so an unchanged re-run is a no-op. Workers (processes, both cores by default) write
their slices straight into the pre-allocated ``.npy``; the set is built in a temporary folder and renamed
into place, so a killed run never leaves a half-written set under a valid name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from xand.constants import EXCLUDED, HEADS, LEADS, POSITIVE, RECORD_SECONDS
from xand.data.preprocess import PreprocessConfig, filter_ecg
from xand.data.ptbxl import (
    DATABASE_CSV,
    PTBXL,
    SPLITS,
    STATEMENTS_CSV,
    count_labels,
    load_record,
)
from xand.errors import DataError, UnknownNameError

#: Bumped whenever the on-disk layout or the way records are read/filtered changes.
FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"
_MIN_PER_WORKER = 250  # records per worker below which the default uses fewer processes


def default_cache_dir() -> Path:
    """``$XAND_CACHE`` or ``~/.cache/xand``."""
    return Path(os.environ.get("XAND_CACHE") or Path.home() / ".cache" / "xand")


# ------------------------------------------------------------------------------------------ Prepared

class Prepared:
    """A prepared set on disk (see the module docstring).

    Attributes
    ----------
    root : folder of the set
    signals : ``(N, 12, T)`` float32 mV, read-only memory map
    index : ``(N, ...)`` table, row ``i`` for ``signals[i]``
    fs : sampling rate (Hz) of ``signals``
    fingerprint : hash identifying inputs and options
    cfg : the preprocessing options (``normalize`` options are taken from the caller when it passes one)
    meta : the parsed ``meta.json``
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise DataError(meta_path, "prepared set has no meta.json", "a folder written by xand.data.prepare")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(meta_path, f"unreadable JSON ({exc})") from None
        if not self.meta.get("complete"):
            raise DataError(meta_path, "prepared set is incomplete", "a finished prepare")
        self.signals = np.load(self.root / "signals.npy", mmap_mode="r")
        self.index = pd.read_csv(self.root / "index.csv", keep_default_na=False, na_values=[""],
                                 dtype={"device": str, "report": str})
        self.index["report"] = self.index["report"].fillna("")
        if len(self.index) != self.signals.shape[0]:
            raise DataError(self.root / "index.csv", f"{len(self.index)} rows",
                            f"{self.signals.shape[0]} (rows of signals.npy)")
        self.fs = int(self.meta["fs"])
        self.fingerprint = str(self.meta["fingerprint"])
        self.cfg = PreprocessConfig.from_dict(self.meta["config"])
        self._row = {int(e): i for i, e in enumerate(self.index["ecg_id"])}

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    def __repr__(self) -> str:
        return f"Prepared({str(self.root)!r}, shape={tuple(self.signals.shape)}, fs={self.fs})"

    @property
    def skipped(self) -> list[dict[str, Any]]:
        """Records left out, each ``{"ecg_id", "reason"}``."""
        return list(self.meta.get("skipped", []))

    def row_of(self, ecg_id: int) -> int:
        """Row of ``ecg_id`` in ``signals`` / ``index``."""
        try:
            return self._row[int(ecg_id)]
        except KeyError:
            raise DataError(self.root / "index.csv", f"no ecg_id {ecg_id}", "a prepared record") from None

    def record(self, ecg_id: int) -> np.ndarray:
        """``(12, T)`` float32 mV of one record (a copy, safe to modify)."""
        return np.array(self.signals[self.row_of(ecg_id)])

    def split_indices(self, split: str) -> np.ndarray:
        """Rows of ``split`` ("train", "val", "test" or "all"), ascending int64."""
        if split == "all":
            return np.arange(len(self), dtype=np.int64)
        if split not in SPLITS:
            raise UnknownNameError("split", split, (*SPLITS, "all"))
        return np.flatnonzero(self.index["split"].to_numpy() == split).astype(np.int64)

    def head_labels(self, head: str, split: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """Rows and binary targets of one head in one split, pure-label-excluded records removed.

        Returns
        -------
        idx : ``(M,)`` int64 rows into ``signals``
        y : ``(M,)`` int64, 1 positive / 0 negative
        """
        if head not in HEADS:
            raise UnknownNameError("head", head, HEADS)
        idx = self.split_indices(split)
        status = self.index[head].to_numpy()[idx]
        keep = status != EXCLUDED
        return idx[keep], (status[keep] == POSITIVE).astype(np.int64)


def load_prepared(path: str | Path) -> Prepared:
    """Open a prepared set folder (``cache_dir/<fingerprint>``)."""
    return Prepared(path)


# ---------------------------------------------------------------------------------------- fingerprint

def _used_file(paths: dict[int, Path], fs: int) -> Path | None:
    """The record a load at ``fs`` will read (native rate first, else the next higher one)."""
    for rate in sorted(r for r in paths if r >= fs):
        if paths[rate].with_suffix(".hea").is_file():
            return paths[rate]
    return None


def content_key(data_dir: str | Path) -> str:
    """A dataset's identity from the bytes of ``ptbxl_database.csv`` and ``scp_statements.csv``: 16 hex
    characters, equal on every machine for the same files (unlike :func:`fingerprint`, which also covers
    the record files' times and the options of a prepared array). Results measured on a dataset (e.g. the
    sanity check of a run) are filed under it."""
    root = Path(data_dir)
    h = hashlib.sha256()
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        f = root / name
        if not f.is_file():
            raise DataError(f, "is missing", "a PTB-XL-layout folder")
        h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def fingerprint(data_dir: str | Path, cfg: PreprocessConfig | None = None,
                ecg_ids: Sequence[int] | None = None, ptb: PTBXL | None = None) -> str:
    """Hash of everything a prepared set depends on.

    Covers the bytes of ``ptbxl_database.csv`` and ``scp_statements.csv``, the relative path, size and
    mtime of each record file that will be read, the selected ``ecg_ids``, the prepare-time options of
    ``cfg`` (sampling rate, filters; not the model-input normalisation) and ``FORMAT_VERSION``.

    Returns
    -------
    20 hex characters (SHA-256 prefix)
    """
    cfg = cfg or PreprocessConfig()
    ptb = ptb or PTBXL(data_dir)
    ids = list(ptb.meta.index) if ecg_ids is None else [int(e) for e in ecg_ids]
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "options": cfg.prepare_options()}, sort_keys=True).encode())
    for name in (DATABASE_CSV, STATEMENTS_CSV):
        h.update(name.encode())
        h.update(hashlib.sha256((ptb.data_dir / name).read_bytes()).digest())
    h.update(np.asarray(ids, dtype=np.int64).tobytes())
    for e in ids:
        paths = _task_paths(ptb, e)
        if isinstance(paths, str):  # refused (outside the folder): the database bytes already cover it
            h.update(b"refused")
            continue
        base = _used_file({r: Path(p) for r, p in paths.items()}, cfg.fs)
        if base is None:
            h.update(b"missing")
            continue
        for ext in (".hea", ".dat"):
            f = base.with_suffix(ext)
            try:
                st = f.stat()
                h.update(f"{f.relative_to(ptb.data_dir)}|{st.st_size}|{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{f.name}|missing;".encode())
    return h.hexdigest()[:20]


# -------------------------------------------------------------------------------------------- workers

def _task_paths(ptb: PTBXL, ecg_id: int) -> dict[int, str] | str:
    """A record's paths as strings for a worker, or the reason they were refused."""
    try:
        return {r: str(p) for r, p in ptb.paths(ecg_id).items()}
    except DataError as exc:
        return str(exc)


def _fill(out_path: str, tasks: list[tuple[int, int, dict[int, str] | str]], cfg_dict: dict[str, Any]) -> list:
    """Worker: load, filter and write records into rows of the open ``.npy``; returns ``(row, ecg_id, reason)``."""
    cfg = PreprocessConfig.from_dict(cfg_dict)
    arr = np.load(out_path, mmap_mode="r+")
    done = []
    for row, ecg_id, paths in tasks:
        if isinstance(paths, str):  # the row's paths were refused (e.g. outside the dataset folder)
            done.append((row, ecg_id, paths))
            continue
        try:
            x = load_record({int(r): Path(p) for r, p in paths.items()}, cfg.fs)
            arr[row] = filter_ecg(x, cfg.fs, cfg)
            done.append((row, ecg_id, None))
        except DataError as exc:
            done.append((row, ecg_id, str(exc)))
        except Exception as exc:  # one bad record never stops the batch; the reason keeps the error type
            done.append((row, ecg_id, f"{paths}: {type(exc).__name__}: {exc}"))
    arr.flush()
    del arr
    return done


def _pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing as mp
    import threading

    # fork starts workers in milliseconds and needs no ``if __name__ == "__main__"`` guard in user scripts,
    # but is unsafe when other threads may hold locks (Streamlit, a torch data loader): then forkserver,
    # preloaded so each worker starts with numpy/scipy/wfdb already imported
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["xand.data.prepare"])
    else:
        ctx = mp.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _host_tag() -> str:
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _clean_stale(cache_dir: Path) -> None:
    """Remove temporary folders left by killed runs of this host (their process no longer exists)."""
    host = _host_tag()
    for d in cache_dir.glob(_TMP_PREFIX + "*"):
        try:
            _, _, pid, tag, _ = d.name.split("-")
            if tag != host:  # another machine's run on a shared cache: its pid means nothing here
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


def _compact(tmp: Path, keep: np.ndarray, shape: tuple[int, ...]) -> None:
    """Rewrite ``signals.npy`` without the skipped rows (bounded memory: chunks of rows)."""
    if len(keep) == 0:
        np.save(tmp / "signals.npy", np.zeros((0, *shape[1:]), np.float32))
        return
    src = np.load(tmp / "signals.npy", mmap_mode="r")
    dst = np.lib.format.open_memmap(tmp / "signals.compact.npy", mode="w+", dtype=np.float32,
                                    shape=(len(keep), *shape[1:]))
    for s in range(0, len(keep), 1024):
        dst[s:s + 1024] = src[keep[s:s + 1024]]
    dst.flush()
    del dst, src
    os.replace(tmp / "signals.compact.npy", tmp / "signals.npy")


# -------------------------------------------------------------------------------------------- prepare

def prepare(data_dir: str | Path, cache_dir: str | Path | None = None, cfg: PreprocessConfig | None = None,
            workers: int | None = None, progress: bool = True, ecg_ids: Sequence[int] | None = None) -> Prepared:
    """Prepare (or reuse) the memory-mapped array of a PTB-XL folder.

    Parameters
    ----------
    data_dir : PTB-XL folder (read only; nothing is written there)
    cache_dir : where sets live; default ``$XAND_CACHE`` or ``~/.cache/xand``
    cfg : preprocessing options; ``fs``, ``bandpass`` and ``baseline_removal`` apply here
    workers : processes; default all available cores (fewer for sets under 250 records per core;
        1 reads in this process)
    progress : show a tqdm progress bar
    ecg_ids : subset of records (default all, in ``ecg_id`` order)

    Returns
    -------
    Prepared, whose ``signals`` is ``(N, 12, 10 s x fs)`` float32 mV; N excludes skipped bad records.
    """
    cfg = cfg or PreprocessConfig()
    ptb = PTBXL(data_dir)
    labels = ptb.labels()  # raises SplitLeakError before any work
    ids = list(labels.index) if ecg_ids is None else [int(e) for e in ecg_ids]
    unknown = sorted(set(ids) - set(labels.index))
    if unknown:
        raise DataError(ptb.data_dir / DATABASE_CSV, f"unknown ecg_id {unknown[:10]}", "ids listed there")
    fp = fingerprint(data_dir, cfg, ids, ptb=ptb)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if cache.resolve().is_relative_to(ptb.data_dir.resolve()):
        raise DataError(cache, "cache folder is inside the source dataset", f"a folder outside {ptb.data_dir}")
    final = cache / fp
    if (final / "meta.json").is_file():
        out = Prepared(final)
        out.cfg = cfg
        return out

    cache.mkdir(parents=True, exist_ok=True)
    _clean_stale(cache)
    tmp = cache / f"{_TMP_PREFIX}{fp}-{os.getpid()}-{_host_tag()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        n_t = int(round(RECORD_SECONDS * cfg.fs))
        shape = (len(ids), len(LEADS), n_t)
        skipped, used_workers = _fill_all(ptb, ids, cfg, tmp, shape, workers, progress)
        bad_rows = {row for row, _, _ in skipped}
        if ids and len(bad_rows) == len(ids):  # nothing usable: an error, never an empty cached set
            reasons = "; ".join(sorted({reason for _, _, reason in skipped})[:3])
            raise DataError(ptb.data_dir, f"all {len(ids)} records failed to load (e.g. {reasons})",
                            "at least one readable record")
        keep = np.array([r for r in range(len(ids)) if r not in bad_rows], dtype=np.int64)
        if bad_rows or len(ids) == 0:
            _compact(tmp, keep, shape)
        index = labels.loc[[ids[r] for r in keep]].reset_index()
        index.to_csv(tmp / "index.csv", index=False)
        meta = {
            "complete": True,
            "format_version": FORMAT_VERSION,
            "fingerprint": fp,
            "config": asdict(cfg),
            "fs": cfg.fs,
            "shape": [len(keep), len(LEADS), n_t],
            "units": "mV",
            "leads": list(LEADS),
            "source": str(ptb.data_dir.resolve()),
            "n_source_records": len(ids),
            "n_records": len(keep),
            "n_skipped": len(skipped),
            "skipped": [{"ecg_id": int(e), "reason": reason} for _, e, reason in sorted(skipped)],
            "devices": ptb.devices,
            "label_counts": _nested_counts(count_labels(index)),
            "workers": used_workers,
            "seconds": round(time.perf_counter() - t0, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if final.exists() and not (final / "meta.json").is_file():
            shutil.rmtree(final)  # a damaged set under the final name: never reused, replaced
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():  # not a concurrent twin that finished first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    out = Prepared(final)
    out.cfg = cfg
    return out


def _fill_all(ptb: PTBXL, ids: list[int], cfg: PreprocessConfig, tmp: Path, shape: tuple[int, int, int],
              workers: int | None, progress: bool) -> tuple[list, int]:
    """Allocate ``signals.npy`` and fill it, in this process or in worker processes."""
    out_path = tmp / "signals.npy"
    if shape[0] == 0:
        return [], 0
    np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=shape).flush()
    tasks = [(row, e, _task_paths(ptb, e)) for row, e in enumerate(ids)]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # by default a tiny set is read inline: starting processes would cost more than it saves
    n_workers = max(1, min(workers or min(cpus, len(tasks) // _MIN_PER_WORKER), len(tasks)))
    chunk = max(8, min(256, len(tasks) // (n_workers * 8) or 1))
    chunks = [tasks[i:i + chunk] for i in range(0, len(tasks), chunk)]
    cfg_dict = asdict(cfg)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), unit="rec", desc="prepare", dynamic_ncols=True)
    results: list = []
    try:
        if n_workers == 1:
            for c in chunks:
                results += _fill(str(out_path), c, cfg_dict)
                if bar is not None:
                    bar.update(len(c))
        else:
            with _pool(n_workers) as pool:
                futures = {pool.submit(_fill, str(out_path), c, cfg_dict): len(c) for c in chunks}
                for fut in as_completed(futures):
                    results += fut.result()
                    if bar is not None:
                        bar.update(futures[fut])
    finally:
        if bar is not None:
            bar.close()
    return [r for r in results if r[2] is not None], n_workers


def _nested_counts(counts: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (head, split), row in counts.iterrows():
        out.setdefault(head, {})[split] = {k: int(v) for k, v in row.items()}
    return out
