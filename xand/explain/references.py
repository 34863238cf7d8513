"""Reference ECGs for the methods that integrate from or replace with the data's distribution (Expected
Gradients; the normal wave templates of ``waves_template``).

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


def _negatives(ds, data_dir: str, head: str, split: str, n: int, seed: int) -> list[int]:
    """``n`` seeded ``split``-split records with none of ``head``'s statements, sorted."""
    labels = ds.labels()
    if head not in labels:
        raise DataError(data_dir, f"has no {head} labels", "a PTB-XL-layout folder with the head's statements")
    pool = labels.index[(labels["split"] == split) & (labels[head] == NEGATIVE)]
    if len(pool) < 4:
        raise DataError(data_dir, f"{len(pool)} {split}-split negatives for {head}",
                        "at least 4 reference ECGs (Expected Gradients, wave templates)")
    ids = np.random.default_rng(seed).choice(np.asarray(pool), size=min(n, len(pool)), replace=False)
    return sorted(int(i) for i in ids)


@lru_cache(maxsize=4)  # the app keeps at most 4 predictors: no more banks than that
def _bank(predictor, data_dir: str, head: str, n: int, seed: int, split: str) -> np.ndarray:
    from xand.data.ptbxl import PTBXL

    ds = PTBXL(data_dir)
    ids = _negatives(ds, data_dir, head, split, n, seed)
    fs = int(predictor.preprocess_cfg.fs)
    ecgs = np.stack([ds.load(int(i), fs=fs) for i in ids])
    x = predictor.prepare_batch(ecgs, fs).cpu().numpy().astype(np.float32)
    x.setflags(write=False)  # shared between calls: nobody may change it
    return x


def reference_bank(predictor, data_dir: str | Path, head: str, n: int = 32, seed: int = 0,
                   split: str = "train") -> np.ndarray:
    """``(n, 12, T)`` normalised model inputs of ``split``-split negatives for ``head`` (read-only, cached).

    Raises ``DataError`` when the dataset has fewer than 4 such records.
    """
    return _bank(predictor, str(data_dir), head, int(n), int(seed), split)


@lru_cache(maxsize=4)
def _templates(predictor, data_dir: str, head: str, n: int, seed: int, split: str, plus_dir: str | None,
               cache_dir: str | None):
    from xand.data.ptbxl import PTBXL
    from xand.data.records import load_at_rates
    from xand.delineation.sources import record_fiducials
    from xand.explain.waves import segment_labels, templates_from

    ds = PTBXL(data_dir)
    ids = _negatives(ds, data_dir, head, split, n, seed)
    fs = int(predictor.preprocess_cfg.fs)
    xs, labs = [], []
    for i in ids:
        ecg, ecg_hi, fs_hi = load_at_rates(ds, int(i), fs)
        x = predictor.prepare_input(ecg, fs)[0].cpu().numpy().astype(np.float32)
        fid = record_fiducials(ecg_hi, fs_hi, int(i), plus_dir, cache_dir)
        fid = fid if float(fid.fs) == fs else fid.resample(fs)
        xs.append(x)
        labs.append(segment_labels(fid, x.shape[-1]))
    return templates_from(np.stack(xs), np.stack(labs))


def wave_template_bank(predictor, data_dir: str | Path, head: str, n: int = 32, seed: int = 0,
                       split: str = "train", fiducial_source: str = "auto", cache_dir: str | Path | None = None):
    """:class:`xand.explain.waves.WaveTemplates` of ``split``-split negatives for ``head`` (cached): the
    normal shape of every lead x segment, the in-distribution replacement of ``waves_template``.

    The negatives are cut at their fiducials as the explained records are (``fiducial_source``, as in
    ``xand.delineation.sources.plus_folder``: PTB-XL+ points for a record that has them, else the
    project's delineation, cached in ``cache_dir``), so that a record and its templates share one
    definition of where each wave starts and ends.
    """
    from xand.delineation.sources import plus_folder

    plus = plus_folder(fiducial_source, data_dir)
    return _templates(predictor, str(data_dir), head, int(n), int(seed), split,
                      None if plus is None else str(plus), None if cache_dir is None else str(cache_dir))


def references_for(method: str, predictor, data_dir: str | Path, head: str, fiducial_source: str = "auto",
                   cache_dir: str | Path | None = None):
    """What ``method`` (a name in ``NEEDS_REFERENCES``) integrates or replaces from: wave templates for
    ``waves_template`` (cut at fiducials from ``fiducial_source``, see :func:`wave_template_bank`),
    reference ECGs for the others."""
    if method == "waves_template":
        return wave_template_bank(predictor, data_dir, head, fiducial_source=fiducial_source, cache_dir=cache_dir)
    return reference_bank(predictor, data_dir, head)
