"""Reference ECGs for the methods that integrate from the data's distribution (Expected Gradients).

``reference_bank(predictor, data_dir, head)`` draws ``n`` records of the dataset's training split that
are negative for ``head`` (pure labels: the record has none of the head's statements), seeded, and
prepares them exactly as the model's input. Erion et al. (2021) draw the baselines from the training
distribution; negatives make "what changed relative to ECGs without the finding" the question.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from xand.constants import NEGATIVE
from xand.errors import DataError


@lru_cache(maxsize=4)  # the app keeps at most 4 predictors: no more banks than that
def _bank(predictor, data_dir: str, head: str, n: int, seed: int, split: str) -> np.ndarray:
    from xand.data.ptbxl import PTBXL

    ds = PTBXL(data_dir)
    labels = ds.labels()
    if head not in labels:
        raise DataError(data_dir, f"has no {head} labels", "a PTB-XL-layout folder with the head's statements")
    pool = labels.index[(labels["split"] == split) & (labels[head] == NEGATIVE)]
    if len(pool) < 4:
        raise DataError(data_dir, f"{len(pool)} {split}-split negatives for {head}",
                        "at least 4 reference ECGs for Expected Gradients")
    ids = np.random.default_rng(seed).choice(np.asarray(pool), size=min(n, len(pool)), replace=False)
    fs = int(predictor.preprocess_cfg.fs)
    ecgs = np.stack([ds.load(int(i), fs=fs) for i in sorted(ids)])
    x = predictor.prepare_batch(ecgs, fs).cpu().numpy().astype(np.float32)
    x.setflags(write=False)  # shared between calls: nobody may change it
    return x


def reference_bank(predictor, data_dir: str | Path, head: str, n: int = 32, seed: int = 0,
                   split: str = "train") -> np.ndarray:
    """``(n, 12, T)`` normalised model inputs of ``split``-split negatives for ``head`` (read-only, cached).

    Raises ``DataError`` when the dataset has fewer than 4 such records.
    """
    return _bank(predictor, str(data_dir), head, int(n), int(seed), split)
