"""The ECGs a cohort-level explanation check works on: the positives of each head in a split, loaded at
the model's working rate with their clinical mask (shared by ``sanity`` and ``faithfulness``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from xand.constants import HEADS, NEGATIVE, POSITIVE
from xand.errors import UnknownNameError


@dataclass
class Case:
    """One (ECG, head) to explain: the model input ``x (1, 12, T)``, the ``mask (12, T)`` on its grid, or
    the ``error`` that prevented loading it; ``segments`` for wave-level attribution."""

    ecg_id: int
    head: str
    x: Any = None
    mask: np.ndarray | None = None
    error: str | None = None
    segments: np.ndarray | None = None  # (12, T) wave segment of every sample (xand.explain.waves)


def positive_ids(labels, split: str, heads: list[str], n_per_head: int | None,
                 single_pathology: bool = False) -> list[tuple[int, str]]:
    """``(ecg_id, head)`` for the first ``n_per_head`` pure positives of each head in ``split`` (by ecg_id);
    ``single_pathology``: only those whose other heads are all pure negatives."""
    sub = labels[labels["split"] == split]
    out = []
    for h in heads:
        keep = sub[h] == POSITIVE
        if single_pathology:
            keep &= (sub[[o for o in HEADS if o != h]] == NEGATIVE).all(axis=1)
        ids = [int(i) for i in sub.index[keep]]
        out += [(i, h) for i in (ids if n_per_head is None else ids[:n_per_head])]
    return out


def cases(predictor, data_dir: str | Path, split: str, heads: list[str] | None = None,
          n_per_head: int | None = None, single_pathology: bool = False, fiducial_source: str = "auto",
          cache_dir: str | Path | None = None) -> Iterator[Case]:
    """Yield a :class:`Case` per positive (``positive_ids``); a record that cannot be loaded or delineated
    is yielded with its ``error`` (reported and skipped by the caller, never the batch)."""
    from xand.data.ptbxl import PTBXL
    from xand.delineation.masks import clinical_mask
    from xand.explain.waves import segment_labels
    from xand.data.records import load_at_rates
    from xand.delineation.sources import resolve_fiducial_source

    heads = list(heads or predictor.heads)
    for h in heads:
        if h not in predictor.heads:
            raise UnknownNameError("head", h, list(predictor.heads))
    ds = PTBXL(data_dir)
    _, get_fid = resolve_fiducial_source(fiducial_source, data_dir, cache_dir)
    fs_work = int(predictor.preprocess_cfg.fs)
    for ecg_id, head in positive_ids(ds.labels(), split, heads, n_per_head, single_pathology):
        try:
            ecg, ecg_hi, fs_hi = load_at_rates(ds, ecg_id, fs_work)
            x = predictor.prepare_input(ecg, fs_work)
            fid = get_fid(ecg_id, ecg_hi, fs_hi, fs_work, ecg.shape[-1])
            fid = fid if float(fid.fs) == fs_work else fid.resample(fs_work)
            mask = np.asarray(clinical_mask(fid, head, int(x.shape[-1])), dtype=bool)
            segments = segment_labels(fid, int(x.shape[-1]))
        except Exception as exc:  # noqa: BLE001 - one bad record is reported and skipped
            yield Case(ecg_id, head, error=f"{type(exc).__name__}: {exc}")
            continue
        yield Case(ecg_id, head, x, mask, segments=segments)


def run_cases(todo: list[Case], work: Callable[[Case], None], desc: str, progress: bool = True) -> dict[str, str]:
    """Call ``work(case)`` for every case with a tqdm bar; returns ``{"ecg_id/head": reason}`` of the cases
    that could not be loaded or whose ``work`` raised (a bad record is skipped, never the batch)."""
    from tqdm.auto import tqdm

    skipped = {}
    for case in tqdm(todo, desc=desc, unit="ECG", disable=not progress):
        if case.error:
            skipped[f"{case.ecg_id}/{case.head}"] = case.error
            continue
        try:
            work(case)
        except Exception as exc:  # noqa: BLE001 - one bad record is reported and skipped, never the batch
            skipped[f"{case.ecg_id}/{case.head}"] = f"{type(exc).__name__}: {exc}"
    return skipped
