"""Faithfulness of an attribution map: does taking away what the map calls relevant change the output?

Plausibility (Pointing Game, CAS) asks whether the map agrees with a cardiologist's region; faithfulness
asks whether it agrees with the model. Both are needed: a map can be plausible and unfaithful (it follows
the ECG's amplitude), or faithful and implausible (the head reads a confounder).

The map is read in patches of one lead x ``width`` samples (40 ms at 100 Hz by default); a patch's
relevance is the sum of its attribution. Evidence is removed with an ECG-appropriate operator
(``xand.explain.removal``: the straight line between a segment's ends, never zeros).

* **Deletion** (Petsiuk et al. 2018): remove patches most relevant first, in steps of 10 % of the ECG;
  the area under the probability curve, normalised to [0, 1]. Lower is more faithful. At 100 % every
  lead is its mean (a flat line) whatever the order: the end point is the same input for every ordering,
  so it shifts all areas of an ECG alike and the comparison with random order is unaffected. Beside it the same
  area for a **random** order (mean of ``n_random`` orders) and **insertion** (start from everything
  removed, put the most relevant patches back first; higher is more faithful).
* **ROAD** (Rong et al. 2022): the same curves with noisy linear imputation, most relevant first (MoRF)
  and least relevant first (LeRF), at 10-90 %; ``road_gap`` = LeRF area - MoRF area (higher is more
  faithful: removing the least relevant patches should keep the probability, removing the most relevant
  ones should not).
* **Faithfulness correlation** (Bhatt et al. 2020): over ``n_subsets`` random subsets of 10 % of the
  patches, the Pearson correlation between the subset's summed relevance and the probability drop when the
  subset is removed.

References
----------
Petsiuk V. et al., RISE: randomized input sampling for explanation of black-box models, BMVC 2018.
Rong Y. et al., A consistent and efficient evaluation strategy for attribution methods, ICML 2022.
Bhatt U. et al., Evaluating and aggregating feature-based model explanations, IJCAI 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xand.errors import DataError
from xand.explain.removal import remove_samples

#: Fractions of the ECG removed along a deletion / insertion curve.
FRACTIONS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
#: ROAD's fractions (Rong et al. evaluate 10-90 %).
ROAD_FRACTIONS = tuple(np.round(np.linspace(0.1, 0.9, 9), 2))
FAITHFULNESS_KEYS = ("deletion_auc", "random_deletion_auc", "insertion_auc", "road_morf_auc", "road_lerf_auc",
                     "road_gap", "faithfulness_corr")


def patch_labels(shape: tuple[int, int], width: int) -> tuple[np.ndarray, int]:
    """``(12, T)`` int patch index of every sample (one lead x ``width`` samples) and the number of patches."""
    leads, t = shape
    if width < 1:
        raise DataError(None, f"patch width {width}", "at least one sample")
    per_lead = -(-t // width)
    lab = (np.arange(leads)[:, None] * per_lead + np.arange(t)[None, :] // width).astype(np.int64)
    return lab, leads * per_lead


def patch_relevance(attr: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """``(n,)`` summed attribution per patch."""
    return np.bincount(labels.ravel(), weights=np.asarray(attr, np.float64).ravel(), minlength=n)


def _auc(fr: np.ndarray, p: np.ndarray) -> float:
    return float(np.trapezoid(p, fr) / (fr[-1] - fr[0]))


def _masks(order: np.ndarray, labels: np.ndarray, fractions: tuple[float, ...], n: int) -> list[np.ndarray]:
    """The removal masks after removing the first ``round(f n)`` patches of ``order``, per fraction."""
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    r = rank[labels]
    return [r < int(round(f * n)) for f in fractions]


def curve(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, order: np.ndarray, labels: np.ndarray,
          n: int, fractions: tuple[float, ...], how: str = "linear", insertion: bool = False,
          seed: int = 0) -> np.ndarray:
    """Probabilities along one deletion (or insertion) curve, one batched forward pass."""
    rng = np.random.default_rng(seed)
    batch = []
    for m in _masks(order, labels, fractions, n):
        batch.append(remove_samples(x, ~m if insertion else m, how, rng))
    return np.asarray(predict(np.stack(batch)), dtype=np.float64)


def faithfulness_correlation(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel: np.ndarray,
                             labels: np.ndarray, subsets: list[np.ndarray], how: str = "linear",
                             p_full: float | None = None) -> float | None:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020): over the given random subsets ``S`` of patches,
    the Pearson correlation between ``sum_{i in S} rel_i`` and ``f(x) - f(x with S removed)``.

    Parameters
    ----------
    predict : ``(B, 12, T) -> (B,)``; x : ``(12, T)``; rel : ``(n,)`` relevance per patch
    labels : ``(12, T)`` patch index of every sample (``patch_labels``); subsets : arrays of patch indices
    how : removal operator (``xand.explain.removal.REMOVALS``); p_full : ``f(x)`` when already known

    Returns
    -------
    The correlation, or None when the drops or the sums do not vary (undefined).
    """
    x = np.asarray(x, np.float32)
    if p_full is None:
        p_full = float(predict(x[None])[0])
    rng = np.random.default_rng(0)  # only ROAD's noise draws from it; "linear" is deterministic
    batch = [remove_samples(x, np.isin(labels, s), how, rng) for s in subsets]
    drops = p_full - np.asarray(predict(np.stack(batch)), dtype=np.float64)
    sums = np.array([np.asarray(rel)[np.asarray(s)].sum() for s in subsets])
    return None if np.ptp(drops) == 0 or np.ptp(sums) == 0 else float(np.corrcoef(sums, drops)[0, 1])


def faithfulness(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, attr: np.ndarray, width: int = 4,
                 n_random: int = 5, n_subsets: int = 50, subset_fraction: float = 0.1,
                 seed: int = 0) -> dict[str, Any]:
    """Every faithfulness figure of one map (see the module docstring).

    Parameters
    ----------
    predict : ``(B, 12, T) -> (B,)`` probabilities of the head, on the model's input grid
    x : ``(12, T)`` the model's input; ``attr`` its ``(12, T)`` attribution map
    width : patch width in samples; ``n_random``: random orders; ``n_subsets``, ``subset_fraction``:
        faithfulness correlation

    Returns
    -------
    ``{deletion_auc, random_deletion_auc, insertion_auc, road_morf_auc, road_lerf_auc, road_gap,
    faithfulness_corr, p_full, deletion_curve, fractions}``; a constant map makes the orderings and the
    correlation undefined (None).
    """
    x = np.asarray(x, np.float32)
    attr = np.asarray(attr, np.float64)
    if attr.shape != x.shape:
        raise DataError(None, f"attribution {attr.shape} and input {x.shape}", "one (12, T) shape")
    labels, n = patch_labels(x.shape, width)
    rel = patch_relevance(attr, labels, n)
    fr = np.asarray(FRACTIONS)
    rf = np.asarray(ROAD_FRACTIONS)
    rng = np.random.default_rng(seed)
    p_full = float(predict(x[None])[0])
    rnd = [_auc(fr, curve(predict, x, rng.permutation(n), labels, n, FRACTIONS, seed=seed + k))
           for k in range(n_random)]
    out: dict[str, Any] = {"p_full": p_full, "fractions": list(map(float, fr)),
                           "random_deletion_auc": float(np.mean(rnd))}
    if np.ptp(rel) == 0:
        out.update({k: None for k in FAITHFULNESS_KEYS if k != "random_deletion_auc"}, deletion_curve=None)
        return out
    morf = np.argsort(-rel, kind="stable")
    lerf = morf[::-1]
    dele = curve(predict, x, morf, labels, n, FRACTIONS)
    ins = curve(predict, x, morf, labels, n, FRACTIONS, insertion=True)
    road_m = curve(predict, x, morf, labels, n, ROAD_FRACTIONS, how="road", seed=seed)
    road_l = curve(predict, x, lerf, labels, n, ROAD_FRACTIONS, how="road", seed=seed)
    k = max(1, int(round(subset_fraction * n)))
    subsets = [rng.choice(n, size=k, replace=False) for _ in range(n_subsets)]
    corr = faithfulness_correlation(predict, x, rel, labels, subsets, p_full=p_full)
    out.update(deletion_auc=_auc(fr, dele), insertion_auc=_auc(fr, ins), road_morf_auc=_auc(rf, road_m),
               road_lerf_auc=_auc(rf, road_l), faithfulness_corr=corr, deletion_curve=list(map(float, dele)))
    out["road_gap"] = out["road_lerf_auc"] - out["road_morf_auc"]
    return out


# ----------------------------------------------------------------------------------------------- batch

@dataclass
class FaithfulnessConfig:
    """Options of :func:`faithfulness_check` (saved with its result).

    Attributes
    ----------
    methods : attribution methods compared (``"random"`` is always reported beside them, as
        ``random_deletion_auc`` of each method's rows: the same ECGs in random patch order)
    heads, split, n_per_head, single_pathology, fiducial_source : the cohort (``xand.explain.cohort``)
    width_ms : patch width; n_random, n_subsets, seed : see :func:`faithfulness`
    """

    methods: tuple[str, ...] = ("ig", "gradshap", "saliency", "gradcam")
    heads: tuple[str, ...] | None = None
    split: str = "test"
    n_per_head: int | None = 30
    single_pathology: bool = False
    width_ms: float = 40.0
    n_random: int = 5
    n_subsets: int = 50
    seed: int = 0
    fiducial_source: str = "auto"


def _mean_ci(values: list[float | None], n_boot: int = 1000, seed: int = 0) -> tuple[float | None, float | None,
                                                                                   float | None, int]:
    """Mean with a percentile-bootstrap 95 % CI over ECGs (Efron & Tibshirani 1993); None when empty."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return None, None, None, 0
    if v.size == 1:
        return float(v[0]), None, None, 1
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, v.size, (n_boot, v.size))].mean(axis=1)
    return float(v.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)), int(v.size)


def summarise_faithfulness(per_ecg: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (head, method): mean [95 % CI] of every figure and the paired comparisons with random
    order (share of ECGs whose deletion area is below random's, and the mean paired difference)."""
    rows = []
    for head, method in sorted({(r["head"], r["method"]) for r in per_ecg}):
        rs = [r for r in per_ecg if r["head"] == head and r["method"] == method]
        row: dict[str, Any] = {"head": head, "method": method, "n": len(rs)}
        for k in FAITHFULNESS_KEYS:
            m, lo, hi, n = _mean_ci([r[k] for r in rs])
            row.update({k: m, f"{k}_ci_low": lo, f"{k}_ci_high": hi, f"{k}_n": n})
        diff = [r["deletion_auc"] - r["random_deletion_auc"] for r in rs if r["deletion_auc"] is not None]
        m, lo, hi, _ = _mean_ci(diff)
        row.update(deletion_minus_random=m, deletion_minus_random_ci_low=lo, deletion_minus_random_ci_high=hi,
                   deletion_below_random=float(np.mean([d < 0 for d in diff])) if diff else None)
        rows.append(row)
    return rows


def faithfulness_path(run_dir: str | Path, dataset_key: str, split: str) -> Path:
    """``<run>/faithfulness/<dataset key>_<split>.json``."""
    return Path(run_dir) / "faithfulness" / f"{dataset_key}_{split}.json"


def faithfulness_check(run_dir: str | Path, data_dir: str | Path, cfg: FaithfulnessConfig | None = None,
                       cache_dir: str | Path | None = None, out: str | Path | None = None,
                       progress: bool = True) -> dict[str, Any]:
    """Deletion, insertion, ROAD and faithfulness correlation of every head x method over a split's
    positives, stored with the run (:func:`faithfulness_path`).

    Returns
    -------
    ``{"rows": summarise_faithfulness(...), "config", "info", "path"}``; a record that fails is skipped
    and counted in ``info["skipped"]``.
    """
    import json
    import time
    from dataclasses import asdict

    from xand.data.prepare import content_key
    from xand.explain.attribution import ATTRIBUTION_METHODS, NEEDS_REFERENCES, attribute, method_kwargs
    from xand.explain.references import references_for
    from xand.explain.cohort import cases, run_cases
    from xand.explain.xai import _predict_fn
    from xand.fileio import atomic_write_text
    from xand.training.predictor import load_run

    cfg = cfg or FaithfulnessConfig()
    for m in cfg.methods:
        ATTRIBUTION_METHODS.get(m)  # an unknown name lists the valid ones
    pred = load_run(run_dir)
    fs = float(pred.preprocess_cfg.fs)
    width = max(1, int(round(cfg.width_ms * fs / 1000.0)))
    todo = list(cases(pred, data_dir, cfg.split, list(cfg.heads) if cfg.heads else None, cfg.n_per_head,
                      cfg.single_pathology, cfg.fiducial_source, cache_dir))
    per_ecg: list[dict[str, Any]] = []

    def work(case) -> None:
        model, target = pred.model(case.head), int(pred.target(case.head))
        predict = _predict_fn(model, target, next(model.parameters()).device)
        x = case.x[0].detach().cpu().numpy()
        for method in cfg.methods:
            refs = (references_for(method, pred, data_dir, case.head, cfg.fiducial_source, cache_dir)
                    if method in NEEDS_REFERENCES else None)
            amap = attribute(model, case.x, target, method, **method_kwargs(method, case.segments, refs)).map
            f = faithfulness(predict, x, amap, width, cfg.n_random, cfg.n_subsets, seed=cfg.seed + case.ecg_id)
            per_ecg.append({"ecg_id": case.ecg_id, "head": case.head, "method": method,
                            **{k: f[k] for k in (*FAITHFULNESS_KEYS, "p_full")}})

    t0 = time.perf_counter()
    skipped = run_cases(todo, work, "faithfulness", progress)
    key = content_key(data_dir)
    result = {"config": asdict(cfg), "rows": summarise_faithfulness(per_ecg) if per_ecg else [],
              "info": {"run": str(run_dir), "data": str(data_dir), "dataset_key": key, "width_samples": width,
                       "n_ecg": len({c.ecg_id for c in todo}), "skipped": skipped,
                       "seconds": time.perf_counter() - t0, "removal": "linear / road (xand.explain.removal)"},
              "records": per_ecg}
    path = Path(out) if out is not None else faithfulness_path(run_dir, key, cfg.split)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2, default=float))
    result["path"] = str(path)
    return result


def format_faithfulness(result: dict[str, Any]) -> str:
    """Text table: per head x method, mean [95 % CI] of deletion (vs random), insertion, ROAD, correlation."""
    def ci(r: dict, k: str) -> str:
        m, lo, hi = r.get(k), r.get(f"{k}_ci_low"), r.get(f"{k}_ci_high")
        if m is None:
            return "—"
        return f"{m:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")

    lines = [f"{'head':5} {'method':9} {'n':>3}  {'deletion':24} {'random':24} {'del<rand':>8}  "
             f"{'insertion':24} {'ROAD gap':24} {'faith. corr':24}"]
    for r in result["rows"]:
        below = r.get("deletion_below_random")
        lines.append(f"{r['head']:5} {r['method']:9} {r['n']:3d}  {ci(r, 'deletion_auc'):24} "
                     f"{ci(r, 'random_deletion_auc'):24} {'—' if below is None else f'{below:.2f}':>8}  "
                     f"{ci(r, 'insertion_auc'):24} {ci(r, 'road_gap'):24} {ci(r, 'faithfulness_corr'):24}")
    return "\n".join(lines)
