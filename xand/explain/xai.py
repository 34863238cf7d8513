"""Explanations of one ECG (the app's single call) and batch validation over a cohort.

``explain_ecg`` runs the whole chain for one ECG and one head: model input, probability, attribution map,
clinical mask from fiducials, every score next to its chance level, lead importance and lead dropping.
``xai_batch`` runs it over the truly positive ECGs of each head of a trained run and summarises the
scores per head (mean, SD, 95% CI; undefined cases counted with their reasons, never averaged in as 0).

On the synthetic set (``xand.data.synth``), whose pathologies sit in known regions and whose ground-truth
fiducials are stored in PTB-XL+ layout in the same folder, a trained head must point into its region:
``check_synthetic`` (CLI ``python -m xand xai ... --check-synthetic``) is the end-to-end sanity check.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xand.explain.attribution import (NEEDS_REFERENCES, NEEDS_SEGMENTS, Attribution, attribute, eval_mode,
                                     lead_drop, lead_importance, lead_importance_reason)
from xand.constants import HEADS, LEADS, N_LEADS, NEGATIVE, POSITIVE
from xand.errors import DataError, UnknownNameError
from xand.fiducials import Fiducials
from xand.data.records import load_at_rates
from xand.delineation.sources import has_ptbxl_plus, resolve_fiducial_source  # noqa: F401 - part of the xai API
from xand.explain.scores import PerturbationScore, Score, cas, cosine, perturbation_drop, pointing_game, rank_accuracy

#: the minimum Pointing Game a trained head must reach on the synthetic set (issue 4)
SYNTHETIC_POINTING_MIN = 0.9


@dataclass
class Explanation:
    """Everything the app shows for one ECG and one head (all on the model's working grid).

    Attributes
    ----------
    head, method : what was explained and how
    probability : model probability of the head (sigmoid of the logit)
    fs : working sampling rate (Hz) of ``attribution.map``, ``mask`` and ``fiducials``
    attribution : the map ``(12, T)`` and its convergence delta
    mask : ``(12, T)`` bool clinical region of the head (``xand.delineation.masks.clinical_mask``)
    mask_reason : why the mask is empty (None when it is not)
    fiducials : the fiducials the mask was built from, on the working grid
    scores : ``{"pointing_game", "cas", "rank_accuracy", "perturbation"[, "cosine"]}`` -> Score
    lead_importance : ``(12,)`` share of positive attribution per lead (NaN = undefined, see reason)
    lead_importance_reason : why it is undefined, else None
    lead_drop : ``(12,)`` probability drop when each lead is zeroed (None when not computed)
    compare : the second method's attribution when a cross-method cosine was asked for
    seconds : wall time of the whole call
    """

    head: str
    method: str
    probability: float
    fs: float
    attribution: Attribution
    mask: np.ndarray
    mask_reason: str | None
    fiducials: Fiducials
    scores: dict[str, Score]
    lead_importance: np.ndarray
    lead_importance_reason: str | None
    lead_drop: np.ndarray | None
    compare: Attribution | None = None
    seconds: float = 0.0
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)  # SCP code -> scores (finding_scores)

    @property
    def delta(self) -> float | None:
        return self.attribution.delta

    @property
    def chance(self) -> float:
        """Mask coverage: the chance level of CAS and rank accuracy (and of the Pointing Game of a
        sample-level map; a region-level map's is ``chance_pg``)."""
        return float(self.mask.mean())

    @property
    def chance_pg(self) -> float | None:
        """The Pointing Game's own chance: the share of regions inside the mask for a region-level map
        (``xand.explain.scores.pointing_game``), else the mask coverage."""
        pg = self.scores.get("pointing_game")
        return pg.chance if pg is not None and pg.chance is not None else self.chance

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable figures (no maps)."""
        return {
            "head": self.head, "method": self.method, "probability": self.probability, "fs": self.fs,
            "delta": self.delta, "chance": self.chance, "chance_pg": self.chance_pg, "mask_reason": self.mask_reason,
            "note": self.attribution.note, "params": self.attribution.params,
            "scores": {k: asdict(v) for k, v in self.scores.items()},
            "lead_importance": {lead: _f(v) for lead, v in zip(LEADS, self.lead_importance)},
            "lead_importance_reason": self.lead_importance_reason,
            "lead_drop": None if self.lead_drop is None else dict(zip(LEADS, map(float, self.lead_drop))),
            "seconds": self.seconds,
        }


def _f(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _predict_fn(model: Any, target: int, device: Any, temperature: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad(), eval_mode(model):
            logits = model(torch.as_tensor(np.asarray(batch, dtype=np.float32), device=device))
            return torch.sigmoid(logits[:, target].double() / float(temperature)).cpu().numpy()

    return predict


def segment_labels_of(fid: Fiducials, n_samples: int) -> np.ndarray:
    from xand.explain.waves import segment_labels

    return segment_labels(fid, n_samples)


def _mask_reason(mask: np.ndarray, fid: Fiducials, head: str) -> str | None:
    if mask.any():
        return None
    if int(fid.n_beats.sum()) == 0:
        return "no beats delineated on any lead"
    if not fid.quality.any():
        return "no lead passed the delineation quality check"
    return f"no {head} region found in the delineated beats"


def explain_ecg(predictor: Any, ecg: np.ndarray, fs: float, head: str, method: str = "ig",
                fiducials: Fiducials | None = None, *, compare_method: str | None = None,
                lead_dropping: bool = True, perturbation: bool = True, seed: int = 0,
                reference_data: str | Path | None = None, reference_fiducials: str = "auto",
                reference_cache: str | Path | None = None, **method_kw: Any) -> Explanation:
    """Explain one ECG for one head: probability, attribution, clinical mask and every score.

    Parameters
    ----------
    predictor : ``xand.training.predictor.Predictor`` (``.model(head)``, ``.target(head)``, ``.prepare_input``,
        ``.preprocess_cfg``)
    ecg : ``(12, T)`` float32 mV, ``LEADS`` order
    fs : sampling rate of ``ecg`` (Hz)
    head : one of ``predictor.heads``
    method : attribution method (``xand.explain.attribution.ATTRIBUTION_METHODS``)
    fiducials : fiducial points of this ECG on any grid (e.g. PTB-XL+ or 500 Hz delineation); None runs
        the project's own delineation (``xand.delineation.neurokit.delineate``) on ``ecg``
    compare_method : a second method for the cross-method cosine (e.g. ``"gradshap"``), or None
    lead_dropping, perturbation : compute lead dropping / surgical perturbation (1 batched forward each)
    seed : seed of the perturbation's random control region
    reference_data : PTB-XL-layout folder whose training-split negatives are the reference ECGs of the
        methods in ``NEEDS_REFERENCES`` (Expected Gradients, wave templates), unless ``references=`` is passed
    reference_fiducials, reference_cache : where the wave templates' negatives get their fiducials (as
        ``fiducials`` did: ``xand.delineation.sources.plus_folder``) and the delineation cache folder
    **method_kw : parameters of the attribution method

    Returns
    -------
    Explanation. Bad input gives undefined scores with reasons (no beats -> empty mask), never a crash;
    a malformed ``ecg`` raises ``DataError``.
    """
    import torch

    t0 = time.perf_counter()
    if head not in predictor.heads:
        raise UnknownNameError("head", head, list(predictor.heads))
    ecg = np.asarray(ecg, dtype=np.float32)
    if ecg.ndim != 2 or ecg.shape[0] != N_LEADS:
        raise DataError(None, f"ECG has shape {ecg.shape}", f"({N_LEADS}, T) mV in LEADS order")
    if not np.isfinite(ecg).all():
        raise DataError(None, "ECG contains NaN or infinite values", "finite mV values")
    model, target = predictor.model(head), int(predictor.target(head))
    device = next(model.parameters()).device
    x = predictor.prepare_input(ecg, fs).to(device)
    t_work = int(x.shape[-1])
    fs_work = float(predictor.preprocess_cfg.fs)
    with torch.no_grad(), eval_mode(model):  # a training-mode model would use batch statistics / dropout
        logit = float(model(x)[0, target])
    # the probability, the lead drops and the perturbation drop on the one scale the viewer shows
    temp = float(predictor.temperature(head)) if getattr(predictor, "calibrated", False) else 1.0
    prob = 1.0 / (1.0 + math.exp(-logit / temp))
    if fiducials is None:
        from xand.delineation.neurokit import delineate

        fiducials = delineate(ecg, fs)
    fid = fiducials if float(fiducials.fs) == fs_work else fiducials.resample(fs_work)
    if method in NEEDS_SEGMENTS and "segments" not in method_kw:
        method_kw["segments"] = segment_labels_of(fid, t_work)
    given_refs = method_kw.pop("references", None)

    def refs_of(name: str):
        """The references of ``name`` (reference ECGs or wave templates): the ones passed, else the bank."""
        if name not in NEEDS_REFERENCES:
            return None
        if given_refs is not None and name == method:
            return given_refs
        if reference_data is None:
            raise DataError(None, f"{name} without reference ECGs",
                            "reference_data = the dataset whose training negatives serve as references")
        from xand.explain.references import references_for

        return references_for(name, predictor, reference_data, head, reference_fiducials, reference_cache)

    if method in NEEDS_REFERENCES:
        method_kw["references"] = refs_of(method)
    attr = attribute(model, x, target, method, **method_kw)
    from xand.delineation.masks import clinical_mask

    mask = np.asarray(clinical_mask(fid, head, t_work), dtype=bool)
    reason = _mask_reason(mask, fid, head)
    scores: dict[str, Score] = {
        "pointing_game": pointing_game(attr.map, mask, attr.features),
        "cas": cas(attr.map, mask),
        "rank_accuracy": rank_accuracy(attr.map, mask),
    }
    if reason:  # the specific cause beats the generic "empty mask"
        scores = {k: Score(None, s.chance, reason) if s.value is None and not mask.any() else s
                  for k, s in scores.items()}
    x_np = x[0].detach().cpu().numpy()
    if perturbation:
        pert = perturbation_drop(_predict_fn(model, target, device, temp), x_np, mask, 0.0,
                                 np.random.default_rng(seed))
        if reason and pert.value is None:
            pert.reason = reason
        scores["perturbation"] = pert
    compare = None
    if compare_method:
        extra = {"segments": segment_labels_of(fid, t_work)} if compare_method in NEEDS_SEGMENTS else {}
        if compare_method in NEEDS_REFERENCES:
            extra["references"] = refs_of(compare_method)
        compare = attribute(model, x, target, compare_method, **extra)
        scores["cosine"] = cosine(attr.map, compare.map)
    return Explanation(
        head=head, method=method, probability=prob, fs=fs_work, attribution=attr, mask=mask,
        mask_reason=reason, fiducials=fid, scores=scores,
        lead_importance=lead_importance(attr.map), lead_importance_reason=lead_importance_reason(attr.map),
        lead_drop=lead_drop(model, x, target, temp) if lead_dropping else None, compare=compare,
        seconds=time.perf_counter() - t0,
    )


def explain_record(predictor: Any, ecg: np.ndarray, fs: float, head: str, method: str = "ig", *, ecg_id: int,
                   scp_codes: dict[str, float] | None = None, plus_dir: str | Path | None = None,
                   cache_dir: str | Path | None = None, reference_data: str | Path | None = None,
                   perturbation: bool = False) -> Explanation:
    """One dataset record explained in one call, as the Review page shows it: its fiducials (PTB-XL+ for
    this record when ``plus_dir`` has them, else the project's delineation, once), :func:`explain_ecg`,
    and the scores against each of its SCP statements' own masks (``scp_codes``, ``Explanation.findings``).

    Parameters
    ----------
    ecg : ``(12, T)`` float32 mV of record ``ecg_id`` at ``fs`` Hz
    scp_codes : the record's ``{code: likelihood}`` (``PTBXL.meta.scp_codes``), or None for no finding scores
    plus_dir, cache_dir : PTB-XL+ folder and delineation cache folder (``record_fiducials``)
    reference_data : the dataset whose training negatives are the references of ``NEEDS_REFERENCES``
    """
    from xand.delineation.findings import findings_with_masks
    from xand.delineation.sources import record_fiducials

    fid = record_fiducials(ecg, fs, ecg_id, plus_dir, cache_dir)
    e = explain_ecg(predictor, ecg, fs, head, method, fid, perturbation=perturbation,
                    reference_data=reference_data, reference_fiducials=str(plus_dir) if plus_dir else "delineation",
                    reference_cache=cache_dir)
    codes = findings_with_masks(scp_codes, head) if scp_codes else []
    if codes:
        e.findings = finding_scores(e.attribution.map, e.fiducials, codes, features=e.attribution.features)
    return e


# ----------------------------------------------------------------------------------- finding masks

def finding_scores(attr_map: np.ndarray, fiducials: Fiducials, codes: list[str],
                   n_samples: int | None = None, features: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Pointing Game and CAS of one map against the mask of each SCP statement in ``codes``
    (``xand.delineation.findings``), beside the superclass mask's.

    Parameters
    ----------
    attr_map : ``(12, T)`` attribution on the fiducials' grid
    fiducials : the ECG's points on the same grid (resample first)
    codes : statements with a finding mask (``findings_with_masks``)
    features : region ids of a region-level map (``Attribution.features``), or None

    Returns
    -------
    ``{code: {"description", "head", "regions", "pointing_game": {...}, "cas": {...}}}`` (score dicts
    as ``Score``: value, chance, reason)
    """
    from dataclasses import asdict

    from xand.delineation.findings import FINDING_MASKS, finding_mask

    t = int(np.asarray(attr_map).shape[-1] if n_samples is None else n_samples)
    out: dict[str, dict[str, Any]] = {}
    for code in codes:
        f = FINDING_MASKS[code]
        m = finding_mask(fiducials, code, t)
        out[code] = {"description": f.description, "head": f.head,
                     "regions": "; ".join(f"{iv.label} ({', '.join(leads) if leads else 'all leads'})"
                                          for iv, leads in f.regions),
                     "pointing_game": asdict(pointing_game(attr_map, m, features)),
                     "cas": asdict(cas(attr_map, m))}
    return out


# -------------------------------------------------------------------------------------------- batch

@dataclass
class XaiBatchConfig:
    """Options of ``xai_batch`` (stored with its results)."""

    split: str = "test"
    method: str = "ig"
    heads: tuple[str, ...] | None = None
    fiducial_source: str = "auto"
    compare_method: str | None = "gradshap"
    max_per_head: int | None = None
    seed: int = 0
    method_kw: dict = field(default_factory=dict)
    single_pathology: bool = False


_METRICS = ("pointing_game", "cas", "rank_accuracy", "drop_mask", "drop_random", "drop_diff", "cosine")


def _ci(values: np.ndarray, binary: bool) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    m = float(values.mean())
    if binary:  # Wilson score interval: honest near 0 and 1, where the normal one is not
        z = 1.959964
        den = 1 + z * z / n
        c = (m + z * z / (2 * n)) / den
        h = z * math.sqrt(m * (1 - m) / n + z * z / (4 * n * n)) / den
        return (max(c - h, 0.0), min(c + h, 1.0))  # clipped: float rounding gives -1e-17 at m = 0
    if n < 2:
        return (math.nan, math.nan)
    h = 1.959964 * float(values.std(ddof=1)) / math.sqrt(n)
    return (m - h, m + h)


def summarize_records(records: "pd.DataFrame", heads: list[str], n_positive: dict[str, int]) -> "pd.DataFrame":
    """Per-head summary of the per-record table of ``xai_batch``: n, mean, SD, 95% CI per score, the mean
    chance level, and undefined/skipped counts with their reasons."""
    import pandas as pd

    rows = []
    for head in heads:
        r = records[records["head"] == head] if len(records) else records
        ok = r[r["status"] == "ok"] if len(r) else r
        skipped = r[r["status"] != "ok"] if len(r) else r
        row: dict[str, Any] = {"head": head, "n_positive": int(n_positive.get(head, 0)), "n": int(len(ok)),
                               "n_skipped": int(len(skipped)),
                               "skipped_reasons": json.dumps(dict(Counter(skipped["error"]))) if len(skipped) else "{}"}
        for metric in _METRICS:
            vals = ok[metric].dropna().to_numpy(dtype=float) if len(ok) else np.array([])
            lo, hi = _ci(vals, binary=metric == "pointing_game")
            row[f"{metric}_n"] = int(len(vals))
            row[f"{metric}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{metric}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = lo, hi
            rcol = f"{metric}_reason"
            reasons = ok.loc[ok[metric].isna(), rcol].fillna("undefined") if len(ok) and rcol in ok else []
            row[f"{metric}_undefined"] = int(len(reasons))
            row[f"{metric}_undefined_reasons"] = json.dumps(dict(Counter(reasons)))
        chance = ok["chance"].dropna().to_numpy(dtype=float) if len(ok) else np.array([])
        row["chance_mean"] = float(chance.mean()) if len(chance) else math.nan
        col = "chance_pg" if "chance_pg" in ok else "chance"  # tables written before it: the cells'
        chance_pg = ok[col].dropna().to_numpy(dtype=float) if len(ok) else np.array([])
        row["chance_pg_mean"] = float(chance_pg.mean()) if len(chance_pg) else math.nan
        deltas = ok["abs_delta"].dropna().to_numpy(dtype=float) if len(ok) else np.array([])
        row["abs_delta_median"] = float(np.median(deltas)) if len(deltas) else math.nan
        row["probability_mean"] = float(ok["probability"].mean()) if len(ok) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _record_row(ecg_id: int, head: str, ex: Explanation) -> dict[str, Any]:
    s = ex.scores
    row: dict[str, Any] = {"ecg_id": ecg_id, "head": head, "status": "ok", "error": None,
                           "probability": ex.probability, "chance": ex.chance, "chance_pg": ex.chance_pg,
                           "abs_delta": None if ex.delta is None else abs(ex.delta),
                           "mask_reason": ex.mask_reason, "seconds": ex.seconds}
    for k in ("pointing_game", "cas", "rank_accuracy", "cosine"):
        sc = s.get(k)
        if sc is not None:  # a score not computed (e.g. no compare method) is absent, not "undefined"
            row[k], row[f"{k}_reason"] = sc.value, sc.reason
    p = s.get("perturbation")
    if isinstance(p, PerturbationScore):
        row["drop_mask"], row["drop_random"] = p.value, p.chance
        row["drop_diff"] = None if p.value is None or p.chance is None else p.value - p.chance
        for k in ("drop_mask", "drop_random", "drop_diff"):
            row[f"{k}_reason"] = p.reason
    li = ex.lead_importance
    row["top_lead"] = None if not np.isfinite(li).all() else LEADS[int(np.argmax(li))]
    return row


def _check_methods(method: str, compare_method: str | None, method_kw: dict[str, Any]) -> None:
    """Unknown method names or parameters raise here, before the batch: the per-record error handling of
    ``xai_batch`` would otherwise turn one configuration mistake into every record skipped."""
    import inspect

    from xand.explain.attribution import ATTRIBUTION_METHODS

    for name in (method, compare_method):
        if name is not None:
            ATTRIBUTION_METHODS.get(name)  # an unknown name lists the valid ones
    # the parameters after (model, x, target)
    params = list(inspect.signature(ATTRIBUTION_METHODS[method]).parameters.values())[3:]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        valid = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        bad = sorted(set(method_kw) - set(valid))
        if bad:
            raise UnknownNameError(f"parameter of attribution method {method!r}", bad[0], valid)


def _skip_reason(exc: BaseException) -> str:
    """The ``error`` of a skipped record: the project's own errors by their message (they already say what
    was wrong and what was expected), anything else as ``Type: message`` so the cause stays visible."""
    if isinstance(exc, DataError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def xai_batch(run_dir: str | Path, data_dir: str | Path, split: str = "test", method: str = "ig",
              heads: list[str] | tuple[str, ...] | None = None, fiducial_source: str = "auto",
              progress: bool = True, compare_method: str | None = "gradshap", max_per_head: int | None = None,
              seed: int = 0, out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
              on_progress: Callable[[int, int], None] | None = None, single_pathology: bool = False,
              **method_kw: Any) -> "pd.DataFrame":
    """Batch validation of explanations over the truly positive ECGs of each head.

    Parameters
    ----------
    run_dir : a training run (``xand.training.predictor.load_run``)
    data_dir : PTB-XL-layout folder (read only)
    split : "train", "val" or "test" (PTB-XL folds)
    method : attribution method; ``compare_method`` (default GradientShap) gives the cross-method cosine
    heads : heads to evaluate (default: all of the run)
    fiducial_source : "auto" (PTB-XL+ fiducials in ``data_dir`` when present, else own
        delineation), "ptbxl+", "delineation" or a PTB-XL+ folder
    progress : tqdm progress bar on stderr
    max_per_head : evaluate at most this many positives per head (the first by ecg_id), None = all
    out_dir : where to write ``<split>_<method>.csv/.json`` and ``<split>_<method>_records.csv``
        (default ``<run_dir>/xai``)
    cache_dir : delineation cache folder (``xand.delineation.neurokit.DelineationCache``), None = no cache
    single_pathology : only positives whose sole abnormal superclass is the head (pure negative for the
        other heads). The synthetic sanity check uses this: only there does the pathology sit in one known
        region; with a co-occurring finding (HYP voltage beside STTC, say) the model may rightly point at it.
    on_progress : called as ``on_progress(done, total)`` ECGs before each ECG and once at the end (e.g. a
        progress bar in the app), None = not called

    Returns
    -------
    One row per head: n, per score ``*_n, *_mean, *_sd, *_ci_low, *_ci_high, *_undefined`` with reasons,
    ``chance_mean``; ``df.attrs`` holds the per-record table path, throughput and the configuration.
    A bad record is reported, counted and skipped, never a crash: any exception while loading, delineating
    or explaining one record (``DataError``, ``OSError``, but also e.g. a ``RuntimeError`` from torch or
    an ``IndexError`` from the delineator) gives that record ``status="skipped"`` with the error type and
    message in ``error`` (counted in ``n_skipped`` / ``skipped_reasons``) and the batch goes on.
    ``KeyboardInterrupt`` still stops it.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from xand.data.ptbxl import PTBXL
    from xand.training.predictor import load_run

    _check_methods(method, compare_method, method_kw)  # a configuration error fails once, up front
    predictor = load_run(run_dir)
    heads = list(heads or predictor.heads)
    for h in heads:
        if h not in predictor.heads:
            raise UnknownNameError("head", h, list(predictor.heads))
    ds = PTBXL(data_dir)
    labels = ds.labels()
    in_split = labels[labels["split"] == split]
    positives = {}
    for h in heads:
        keep = in_split[h] == POSITIVE
        if single_pathology:
            keep &= (in_split[[o for o in HEADS if o != h]] == NEGATIVE).all(axis=1)
        positives[h] = [int(i) for i in in_split.index[keep]]
    if max_per_head is not None:
        positives = {h: ids[:max_per_head] for h, ids in positives.items()}
    fid_desc, get_fid = resolve_fiducial_source(fiducial_source, data_dir, cache_dir)
    fs_work = int(predictor.preprocess_cfg.fs)
    ids = sorted({i for v in positives.values() for i in v})
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    n_explained = 0
    positive_sets = {h: set(v) for h, v in positives.items()}
    bar = tqdm(ids, desc=f"xai {split} {method}", unit="ECG", disable=not progress)
    for done, ecg_id in enumerate(bar):
        if on_progress is not None:
            on_progress(done, len(ids))
        want = [h for h in heads if ecg_id in positive_sets[h]]
        try:
            ecg, ecg_hi, fs_hi = load_at_rates(ds, ecg_id, fs_work)
            fid = get_fid(ecg_id, ecg_hi, fs_hi, fs_work, ecg.shape[-1])
        except Exception as exc:  # noqa: BLE001 - one bad record is reported and skipped, never the batch
            rows += [{"ecg_id": ecg_id, "head": h, "status": "skipped", "error": _skip_reason(exc)}
                     for h in want]
            continue
        for h in want:
            try:
                ex = explain_ecg(predictor, ecg, fs_work, h, method, fid, compare_method=compare_method,
                                 seed=seed + ecg_id, reference_data=data_dir, reference_fiducials=fiducial_source,
                                 reference_cache=cache_dir, **method_kw)
            except Exception as exc:  # noqa: BLE001 - e.g. a RuntimeError from torch on one record
                rows.append({"ecg_id": ecg_id, "head": h, "status": "skipped", "error": _skip_reason(exc)})
                continue
            rows.append(_record_row(ecg_id, h, ex))
            n_explained += 1
    elapsed = time.perf_counter() - t0
    if on_progress is not None:
        on_progress(len(ids), len(ids))
    records = pd.DataFrame(rows)
    for col in ("status", "error", "head", *_METRICS, "chance", "chance_pg", "abs_delta", "probability"):
        if col not in records:
            records[col] = pd.Series(dtype=object if col in ("status", "error", "head") else float)
    summary = summarize_records(records, heads, {h: len(v) for h, v in positives.items()})

    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "xai"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{split}_{method}"
    summary.to_csv(out / f"{stem}.csv", index=False)
    records.to_csv(out / f"{stem}_records.csv", index=False)
    info = {
        "run": str(run_dir), "data": str(data_dir), "fiducials": fid_desc,
        "config": asdict(XaiBatchConfig(split, method, tuple(heads), fiducial_source, compare_method,
                                        max_per_head, seed, dict(method_kw),
                                        single_pathology=single_pathology)),
        "n_ecg": len(ids), "n_explanations": n_explained, "seconds": elapsed,
        "explanations_per_s": n_explained / elapsed if elapsed > 0 else None,
    }
    (out / f"{stem}.json").write_text(json.dumps(
        {**info, "heads": json.loads(summary.to_json(orient="records"))}, indent=2))
    summary.attrs.update(info, records_path=str(out / f"{stem}_records.csv"), out_dir=str(out))
    return summary


def check_synthetic(summary: "pd.DataFrame", minimum: float = SYNTHETIC_POINTING_MIN) -> tuple[bool, list[str]]:
    """The synthetic sanity check: every head's Pointing Game at least ``minimum`` (with n > 0).

    Returns ``(passed, one line per head)``.
    """
    ok, lines = True, []
    for _, r in summary.iterrows():
        pg, n = r["pointing_game_mean"], int(r["pointing_game_n"])
        good = n > 0 and math.isfinite(pg) and pg >= minimum
        ok &= good
        lines.append(f"{r['head']}: Pointing Game {pg:.3f} over {n} ECGs "
                     f"(chance {r.get('chance_pg_mean', r['chance_mean']):.3f}) -> {'PASS' if good else 'FAIL'} "
                     f"(>= {minimum})")
    return ok, lines


def format_summary(summary: "pd.DataFrame") -> str:
    """A compact text table of ``xai_batch``'s summary: mean [95% CI] and chance per head."""
    def cell(r: Any, m: str) -> str:
        v = r[f"{m}_mean"]
        if not math.isfinite(v):
            return "undefined"
        return f"{v:.2f} [{r[f'{m}_ci_low']:.2f},{r[f'{m}_ci_high']:.2f}]"

    cols = [("PG", "pointing_game"), ("CAS", "cas"), ("rank acc", "rank_accuracy"),
            ("drop mask", "drop_mask"), ("drop random", "drop_random"), ("cosine", "cosine")]
    head = (f"{'head':5s} {'n':>4s} {'undef':>5s} {'chance':>6s} {'PG ch.':>6s} "
            + " ".join(f"{c:>17s}" for c, _ in cols))
    lines = [head]
    for _, r in summary.iterrows():
        undef = int(r["pointing_game_undefined"]) + int(r["n_skipped"])
        lines.append(f"{r['head']:5s} {int(r['n']):4d} {undef:5d} {r['chance_mean']:6.3f} "
                     f"{r.get('chance_pg_mean', r['chance_mean']):6.3f} "
                     + " ".join(f"{cell(r, m):>17s}" for _, m in cols))
    return "\n".join(lines)
