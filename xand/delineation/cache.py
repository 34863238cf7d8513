"""On-disk cache of delineations, one JSON file per (signal, fs, delineator, options)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xand.delineation import methods
from xand.fileio import atomic_write_text
from xand.fiducials import Fiducials


def _options(delineator: str, cfg: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"v": methods.algorithm_version(delineator)}
    if cfg is not None:
        opts["cfg"] = asdict(cfg) if is_dataclass(cfg) else cfg
    elif delineator == "neurokit":
        from xand.delineation.neurokit import DelineationConfig

        opts["cfg"] = asdict(DelineationConfig())
    if kwargs:
        opts["kw"] = kwargs
    if delineator != "neurokit":  # the neurokit keys predate the registry: keep them valid
        opts["delineator"] = delineator
    return opts


class DelineationCache:
    """``methods.delineate`` results kept in ``cache_dir/<key[:2]>/<key>.json`` (written atomically).

    The key is a SHA-256 of the float32 signal bytes, its shape, ``fs``, the delineator's name, its
    options and its algorithm version, so a changed method never reuses a stale entry.
    """

    def __init__(self, cache_dir: str | Path):
        self.dir = Path(cache_dir)

    @staticmethod
    def key(ecg: np.ndarray, fs: float, cfg: Any = None, delineator: str = "neurokit", **kwargs: Any) -> str:
        h = hashlib.sha256()
        arr = np.ascontiguousarray(np.asarray(ecg, dtype=np.float32))
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
        opts = _options(delineator, cfg, kwargs)
        if delineator == "neurokit":
            h.update(json.dumps({"fs": float(fs), "cfg": opts["cfg"], "v": opts["v"]}, sort_keys=True).encode())
            if "kw" in opts:
                h.update(json.dumps(opts["kw"], sort_keys=True, default=str).encode())
        else:
            h.update(json.dumps({"fs": float(fs), **opts}, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, ecg: np.ndarray, fs: float, cfg: Any = None, delineator: str = "neurokit",
            **kwargs: Any) -> Fiducials | None:
        p = self.path(self.key(ecg, fs, cfg, delineator, **kwargs))
        if not p.is_file():
            return None
        try:
            return Fiducials.from_json(p.read_text())
        except (ValueError, KeyError):  # a truncated or foreign file is recomputed
            return None

    def put(self, ecg: np.ndarray, fs: float, cfg: Any, fid: Fiducials, delineator: str = "neurokit",
            **kwargs: Any) -> Path:
        p = self.path(self.key(ecg, fs, cfg, delineator, **kwargs))
        p.parent.mkdir(parents=True, exist_ok=True)
        # two writers of one key (the page and the prefetch thread, two sessions) get their own
        # temporary files (not mkstemp: its 0600 mode would make a shared cache unreadable to others)
        atomic_write_text(p, fid.to_json())
        return p

    def delineate(self, ecg: np.ndarray, fs: float, cfg: Any = None, delineator: str = "neurokit",
                  **kwargs: Any) -> Fiducials:
        """``methods.delineate`` through the cache."""
        hit = self.get(ecg, fs, cfg, delineator, **kwargs)
        if hit is not None:
            return hit
        extra = {"cfg": cfg} if cfg is not None else {}
        fid = methods.delineate(ecg, fs, delineator, **extra, **kwargs)
        self.put(ecg, fs, cfg, fid, delineator, **kwargs)
        return fid
