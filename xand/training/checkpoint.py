"""Writing and reading a run's files safely: atomic saves, checkpoints loaded with ``weights_only=True``,
every RNG state as plain values (so a resumed run draws the same batches), the code version."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import xand
from xand import fileio
from xand.errors import DataError


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``.

    A reader (or a resume after kill -9) sees either the old complete file or the new complete file.
    """
    fileio.atomic_write(path, lambda fh: torch.save(obj, fh), binary=True, fsync=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text atomically (tmp + fsync + ``os.replace``)."""
    fileio.atomic_write_text(path, text, fsync=True)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def code_version() -> str:
    """``xand.__version__`` plus ``git describe --always --dirty`` of the source tree when available."""
    root = Path(xand.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"{xand.__version__}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return xand.__version__


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint written by this module, loaded with ``weights_only=True``: tensors, numbers, strings,
    lists, tuples and dicts only. A file that would need to run code (a pickled object, e.g. a crafted
    ``best.pt``) is refused with a ``DataError`` naming it; nothing in it is executed."""
    import pickle

    # plain numpy arrays too (the RNG state in a last.pt of an earlier version): rebuilding an array runs no code
    numpy_arrays = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    try:
        with torch.serialization.safe_globals(numpy_arrays):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        raise DataError(Path(path), f"not a plain checkpoint ({str(exc).splitlines()[0][:200]})",
                        "a file written by python -m train (tensors and plain values only)") from None


def rng_state(gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    # numpy's state as plain values (its key array as a tensor): loadable with weights_only=True
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "batch_order": gen.get_state(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _cpu_bytes(t: Tensor) -> Tensor:
    """An RNG state as the CPU ByteTensor the ``set_rng_state`` functions require, wherever it was loaded."""
    return torch.as_tensor(t).detach().to(device="cpu", dtype=torch.uint8)


def set_rng_state(state: dict[str, Any], gen: torch.Generator, device: torch.device) -> None:
    # torch.set_rng_state, Generator.set_state and torch.cuda.set_rng_state all take CPU ByteTensors (a
    # checkpoint loaded with map_location="cuda" would put them on the GPU): always move them back
    torch.set_rng_state(_cpu_bytes(state["torch"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, Tensor) else keys  # an ndarray in checkpoints of earlier versions
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    gen.set_state(_cpu_bytes(state["batch_order"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_cpu_bytes(state["cuda"]), device)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
