"""Sanity checks of attribution methods: does the explanation depend on what the model learned?

Model-parameter randomisation test (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018):
the weights of the trained head are re-initialised (the architecture's own initialisation) block by
block, *cascading* from the output down to the input, and each block *independently*; the method's map
of the randomised network is compared with the trained one. A method whose map, or whose plausibility
score, survives randomisation describes the input (e.g. its amplitude: zero-baseline Integrated
Gradients is signal x gradient) rather than the model, and its Pointing Game / CAS tell a cardiologist
nothing about the head.

What is measured, per head and method, over ECGs that are positive for the head:

* the Pointing Game, CAS and relevance rank accuracy of the trained and of the fully randomised network,
  side by side with the mask's chance level (``xand.explain.scores``);
* the Spearman rank correlation of ``|map|`` between the trained network and each cascading / independent
  randomisation step (Adebayo et al. report rank correlation of absolute maps; a method that passes falls
  towards 0 as more of the network is randomised).

The verdict (:func:`verdict`) is "passes" only when both hold:

1. **the map changes**: the median Spearman correlation of ``|map|`` between trained and fully randomised
   network is below ``spearman_max`` (default 0.5). Adebayo et al. show methods that fail the test
   (Guided Backprop, Guided Grad-CAM) keeping rank correlations near 1 under full randomisation, while
   gradients fall towards 0; 0.5 is the lower edge of "strong" correlation in the usual reading of
   correlation strength (Evans 1996: 0.4-0.59 moderate, >= 0.6 strong), so a map that still ranks the
   samples like the trained one at that level is "unchanged".
2. **the plausibility score does not survive**: with random weights the Pointing Game is at most
   ``chance + pg_margin`` (0.15) and CAS at most ``chance + cas_margin`` (0.05). A randomly initialised
   network carries no clinical knowledge, so any score it earns above chance is what the score gives for
   free on this input; the margins are those of the explanations issue's goals, and about one binomial
   standard error of a Pointing Game over 12 ECGs at chance 0.3 (0.13).

References
----------
Adebayo J. et al., Sanity checks for saliency maps, NeurIPS 2018.
Evans J.D., Straightforward Statistics for the Behavioral Sciences, Brooks/Cole 1996.
Hedström A. et al., Quantus: an explainable AI toolkit, JMLR 24(34) 2023 (MPRT as a metric).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xand.errors import DataError
from xand.explain.attribution import ATTRIBUTION_METHODS, NEEDS_REFERENCES, attribute, method_kwargs
from xand.explain.scores import cas, pointing_game, rank_accuracy
from xand.models.randomise import parameter_blocks, randomised  # noqa: F401 - part of the sanity API
from xand.fileio import atomic_write_text

SANITY_VERSION = 1
#: Scores compared between the trained and the randomised network.
PLAUSIBILITY = ("pointing_game", "cas", "rank_accuracy")
_SCORES = {"pointing_game": pointing_game, "cas": cas, "rank_accuracy": rank_accuracy}


@dataclass
class SanityConfig:
    """Options of :func:`sanity_check` (saved with its result).

    Attributes
    ----------
    methods : attribution methods to check (``xand.explain.attribution.ATTRIBUTION_METHODS``)
    heads : heads to check (None: every head of the run)
    split : PTB-XL split whose positives are explained
    n_per_head : at most this many positives per head (the first by ecg_id)
    single_pathology : only positives whose sole abnormal superclass is the head (synthetic set: the
        finding's region is then known exactly)
    max_blocks : the network is randomised in at most this many blocks (contiguous groups of its
        parameterised layers in forward order, output side first)
    seed : seed of the re-initialisation
    spearman_max, pg_margin, cas_margin : verdict thresholds (see the module docstring)
    fiducial_source : ``xand.delineation.sources.resolve_fiducial_source``
    """

    methods: tuple[str, ...] = ("ig", "gradshap", "saliency", "gradcam", "occlusion")
    heads: tuple[str, ...] | None = None
    split: str = "test"
    n_per_head: int | None = 12
    single_pathology: bool = False
    max_blocks: int = 6
    seed: int = 0
    spearman_max: float = 0.5
    pg_margin: float = 0.15
    cas_margin: float = 0.05
    fiducial_source: str = "auto"


# --------------------------------------------------------------------------------------- randomisation

def spearman_abs(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of ``|a|`` and ``|b|`` over all (lead, time) samples; None when either
    map is constant (no ranking to compare; see :func:`map_change` for the randomisation test)."""
    from scipy.stats import spearmanr

    a, b = np.abs(np.asarray(a, np.float64)).ravel(), np.abs(np.asarray(b, np.float64)).ravel()
    if a.size != b.size:
        raise DataError(None, f"maps of {a.size} and {b.size} samples", "two maps of one ECG")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def map_change(trained: np.ndarray, random: np.ndarray) -> float | None:
    """The rank correlation between a trained and a randomised map, where a map that *collapses* under
    randomisation (constant, e.g. an all-zero Grad-CAM) counts as rho = 0: it changed completely. None only
    when the trained map itself is constant (nothing to compare)."""
    if np.ptp(np.abs(np.asarray(trained, np.float64))) == 0:
        return None
    if np.ptp(np.abs(np.asarray(random, np.float64))) == 0:
        return 0.0
    return spearman_abs(trained, random)


# ------------------------------------------------------------------------------------------- per ECG

def _scores(amap: np.ndarray, mask: np.ndarray, features: np.ndarray | None = None) -> dict[str, float | None]:
    """Pointing Game (on regions for a region-level map), CAS, rank accuracy; ``chance`` is the cell
    coverage (CAS, rank accuracy), ``chance_pg`` the Pointing Game's own (regions or cells)."""
    out = {}
    for k, fn in _SCORES.items():
        s = fn(amap, mask, features) if k == "pointing_game" else fn(amap, mask)
        out[k] = s.value
        if k == "pointing_game":
            out["chance_pg"] = s.chance
        else:
            out["chance"] = s.chance if s.chance is not None else out.get("chance")
    return out


def randomisation_test(model: nn.Module, x: torch.Tensor, target: int, mask: np.ndarray, method: str,
                       blocks: list[list[str]], seed: int = 0, **method_kw: Any) -> dict[str, Any]:
    """One ECG, one method: trained vs randomised maps (cascading and independent).

    Parameters
    ----------
    model : the trained head; ``x`` its normalised input ``(1, 12, T)``; ``target`` its output index
    mask : ``(12, T)`` bool clinical mask on the model's grid
    method : attribution method; ``blocks`` from :func:`parameter_blocks`

    Returns
    -------
    ``{"trained": scores, "random": scores (every block randomised), "cascade": [Spearman after
    randomising blocks 0..k], "independent": [Spearman with block k alone randomised]}``; scores are
    ``{pointing_game, cas, rank_accuracy, chance}``.
    """
    first = attribute(model, x, target, method, **method_kw)
    trained, features = first.map, first.features
    cascade, independent = [], []
    full = None
    for k in range(len(blocks)):
        m = randomised(model, [n for blk in blocks[:k + 1] for n in blk], seed)
        amap = attribute(m, x, target, method, **method_kw).map
        cascade.append(map_change(trained, amap))
        full = amap
    for k in range(len(blocks)):
        if k == 0 and len(blocks) == 1:
            independent.append(cascade[0])
            continue
        m = randomised(model, blocks[k], seed)
        independent.append(map_change(trained, attribute(m, x, target, method, **method_kw).map))
    return {"trained": _scores(trained, mask, features), "random": _scores(full, mask, features),
            "cascade": cascade, "independent": independent}


# --------------------------------------------------------------------------------------------- verdict

def _nanmean(v: list[float | None]) -> float | None:
    a = np.array([np.nan if x is None else x for x in v], dtype=float)
    return None if a.size == 0 or np.isnan(a).all() else float(np.nanmean(a))


def _nanmedian(v: list[float | None]) -> float | None:
    a = np.array([np.nan if x is None else x for x in v], dtype=float)
    return None if a.size == 0 or np.isnan(a).all() else float(np.nanmedian(a))


def verdict(row: dict[str, Any], cfg: SanityConfig | None = None) -> tuple[bool | None, str]:
    """Pass/fail of one head x method summary row (see the module docstring), with the reason in words.

    None (undecided) when there were no explained ECGs or no rank correlation could be computed, and when
    the check is uninformative: nothing is earned for free, but the trained head's Pointing Game and CAS
    are within the same margins of chance too, so the scores carry no evidence either way."""
    cfg = cfg or SanityConfig()
    rho = row.get("spearman_random_median")
    if not row.get("n") or rho is None:
        return None, "not enough explained ECGs to decide"
    chance = row.get("chance_mean") or 0.0
    # the Pointing Game's own chance (regions for a region-level map); results stored before it: the cells'
    chance_pg = row.get("chance_pg_mean") if row.get("chance_pg_mean") is not None else chance
    fails = []
    if rho >= cfg.spearman_max:
        fails.append(f"the map is nearly unchanged under random weights (rank correlation {rho:.2f})")
    pg_r, cas_r = row.get("pointing_game_random"), row.get("cas_random")
    if pg_r is not None and pg_r > chance_pg + cfg.pg_margin:
        fails.append(f"a random network still earns Pointing Game {pg_r:.2f} (chance {chance_pg:.2f})")
    if cas_r is not None and cas_r > chance + cfg.cas_margin:
        fails.append(f"a random network still earns CAS {cas_r:.2f} (chance {chance:.2f})")
    if fails:
        return False, "fails: " + "; ".join(fails)
    pg_t, cas_t = row.get("pointing_game_trained"), row.get("cas_trained")
    if (pg_t is None or pg_t <= chance_pg + cfg.pg_margin) and (cas_t is None or cas_t <= chance + cfg.cas_margin):
        return None, (f"uninformative: nothing is earned for free, but the trained head scores at chance too "
                      f"(Pointing Game {0 if pg_t is None else pg_t:.2f}, chance {chance_pg:.2f}; "
                      f"CAS {0 if cas_t is None else cas_t:.2f}, chance {chance:.2f})")
    return True, f"passes: the map changes under random weights (rank correlation {rho:.2f}), a random " \
                 "network scores at chance and the trained head above it"


def summarise(per_ecg: list[dict[str, Any]], cfg: SanityConfig) -> list[dict[str, Any]]:
    """One row per (head, method) from :func:`randomisation_test` results tagged with ``head``, ``method``."""
    rows = []
    keys = sorted({(r["head"], r["method"]) for r in per_ecg})
    for head, method in keys:
        rs = [r for r in per_ecg if r["head"] == head and r["method"] == method]
        row: dict[str, Any] = {"head": head, "method": method, "n": len(rs),
                               "chance_mean": _nanmean([r["trained"]["chance"] for r in rs]),
                               "chance_pg_mean": _nanmean([r["trained"].get("chance_pg", r["trained"]["chance"])
                                                           for r in rs])}
        for s in PLAUSIBILITY:
            row[f"{s}_trained"] = _nanmean([r["trained"][s] for r in rs])
            row[f"{s}_random"] = _nanmean([r["random"][s] for r in rs])
        n_blocks = max(len(r["cascade"]) for r in rs)
        row["cascade_spearman"] = [_nanmedian([r["cascade"][k] for r in rs if k < len(r["cascade"])])
                                   for k in range(n_blocks)]
        row["independent_spearman"] = [_nanmedian([r["independent"][k] for r in rs if k < len(r["independent"])])
                                       for k in range(n_blocks)]
        row["spearman_random_median"] = row["cascade_spearman"][-1] if row["cascade_spearman"] else None
        ok, why = verdict(row, cfg)
        row["passed"], row["verdict"] = ok, why
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- batch

@dataclass
class SanityResult:
    """Per head x method rows (:func:`summarise`), the configuration, and where it was stored."""

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def row(self, head: str, method: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["head"] == head and r["method"] == method), None)

    def to_json(self) -> str:
        return json.dumps({"version": SANITY_VERSION, "config": self.config, "info": self.info,
                           "rows": self.rows}, indent=2, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(type(o).__name__)


def sanity_path(run_dir: str | Path, dataset_key: str, split: str) -> Path:
    """Where the result of a run on one dataset and split is stored: ``<run>/sanity/<key>_<split>.json``
    (``key``: ``xand.data.prepare.content_key`` of the dataset, the same on every machine)."""
    return Path(run_dir) / "sanity" / f"{dataset_key}_{split}.json"


def load_sanity(path: str | Path) -> SanityResult | None:
    """A stored :class:`SanityResult`, or None when there is none (a malformed file is a ``DataError``)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
        rows, config = list(d["rows"]), dict(d["config"])
        known = {f.name for f in fields(SanityConfig)}
        cfg = SanityConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in known})
        for r in rows:  # the verdict follows today's rule, from the stored figures
            r["passed"], r["verdict"] = verdict(r, cfg)
        return SanityResult(rows, config, dict(d.get("info") or {}), p)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(p, f"unreadable sanity-check result ({exc})", "a file written by xand.explain.sanity") from None


def find_sanity(run_dir: str | Path, dataset_key: str | None = None) -> SanityResult | None:
    """The stored result of a run: the one measured on ``dataset_key`` when there is one (test before val
    before train), else the newest one on any dataset (its ``info["data"]`` says which), else None."""
    folder = Path(run_dir) / "sanity"
    if not folder.is_dir():
        return None
    if dataset_key is not None:
        for split in ("test", "val", "train"):
            r = load_sanity(sanity_path(run_dir, dataset_key, split))
            if r is not None:
                return r
    files = sorted(folder.glob("*.json"), key=lambda q: q.stat().st_mtime, reverse=True)
    return load_sanity(files[0]) if files else None


def sanity_check(run_dir: str | Path, data_dir: str | Path, cfg: SanityConfig | None = None,
                 cache_dir: str | Path | None = None, out: str | Path | None = None,
                 progress: bool = True, merge: bool = False) -> SanityResult:
    """The model-parameter randomisation test for every head x method of a run, stored with the run.

    Parameters
    ----------
    run_dir : a training run (``xand.training.predictor.load_run``)
    data_dir : PTB-XL-layout folder (read only); its fiducials (PTB-XL+ or own delineation) give the masks
    cfg : :class:`SanityConfig`
    cache_dir : delineation cache (None: none)
    out : where to write the JSON result (default :func:`sanity_path`)
    merge : add these methods' rows to the stored result (same options otherwise, else a ``DataError``):
        a new method is checked without recomputing the others

    Returns
    -------
    :class:`SanityResult`. A record that cannot be loaded or explained is skipped and counted, never a crash.
    """
    from xand.data.prepare import content_key
    from xand.explain.cohort import cases, run_cases
    from xand.training.predictor import load_run

    cfg = cfg or SanityConfig()
    for m in cfg.methods:
        ATTRIBUTION_METHODS.get(m)  # an unknown name lists the valid ones
    pred = load_run(run_dir)
    todo = list(cases(pred, data_dir, cfg.split, list(cfg.heads) if cfg.heads else None, cfg.n_per_head,
                      cfg.single_pathology, cfg.fiducial_source, cache_dir))
    per_ecg: list[dict[str, Any]] = []
    blocks_of: dict[str, list[list[str]]] = {}

    def _references(method: str, head: str):
        if method not in NEEDS_REFERENCES:
            return None
        from xand.explain.references import references_for

        return references_for(method, pred, data_dir, head, cfg.fiducial_source, cache_dir)

    def work(case) -> None:
        model, target = pred.model(case.head), int(pred.target(case.head))
        if case.head not in blocks_of:
            blocks_of[case.head] = parameter_blocks(model, case.x, cfg.max_blocks)
        for method in cfg.methods:
            r = randomisation_test(model, case.x, target, case.mask, method, blocks_of[case.head],
                                   cfg.seed + case.ecg_id,
                                   **method_kwargs(method, case.segments, _references(method, case.head)))
            per_ecg.append({"ecg_id": case.ecg_id, "head": case.head, "method": method, **r})

    t0 = time.perf_counter()
    skipped = run_cases(todo, work, "sanity", progress)
    rows = summarise(per_ecg, cfg) if per_ecg else []
    key = content_key(data_dir)
    result = SanityResult(rows, asdict(cfg), {
        "run": str(run_dir), "data": str(data_dir), "dataset_key": key,
        "blocks": {h: [len(b) for b in bl] for h, bl in blocks_of.items()},
        "n_ecg": len({c.ecg_id for c in todo}), "skipped": skipped, "seconds": time.perf_counter() - t0,
        "references": "Adebayo et al. NeurIPS 2018; thresholds: xand.explain.sanity"})
    path = Path(out) if out is not None else sanity_path(run_dir, key, cfg.split)
    if merge and path.is_file():
        result = merge_results(load_sanity(path), result, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, result.to_json())
    result.path = path
    return result


def merge_results(old: SanityResult, new: SanityResult, where: str | Path) -> SanityResult:
    """``old`` with ``new``'s rows added (a head x method in both: ``new``'s). Both must have been measured
    with the same options apart from the methods, else ``DataError``: rows of two cohorts never mix."""
    def norm(c: dict) -> dict:
        return json.loads(json.dumps({k: v for k, v in c.items() if k != "methods"}, default=_json_default))

    if norm(old.config) != norm(new.config):
        raise DataError(where, "holds a sanity check measured with other options",
                        f"the same options to merge into it ({norm(old.config)}), or another --out")
    keys = {(r["head"], r["method"]) for r in new.rows}
    rows = [r for r in old.rows if (r["head"], r["method"]) not in keys] + new.rows
    methods = list(old.config.get("methods", [])) + [m for m in new.config.get("methods", [])
                                                     if m not in old.config.get("methods", [])]
    info = {**new.info, "merged_into": {k: old.info.get(k) for k in ("n_ecg", "seconds", "skipped", "blocks")}}
    return SanityResult(sorted(rows, key=lambda r: (r["head"], r["method"])), {**new.config, "methods": methods}, info)


def format_result(result: SanityResult) -> str:
    """A text table: per head x method the scores trained vs random, the rank correlation, the verdict."""
    def f(v: Any) -> str:
        return "  -  " if v is None else f"{v:5.2f}"

    lines = [f"{'head':5} {'method':14} {'n':>3} {'chance':>6} {'PG ch.':>6}  {'PG tr/rand':>11}  "
             f"{'CAS tr/rand':>11}  {'rank tr/rand':>12}  {'rho':>5}  verdict"]
    for r in result.rows:
        lines.append(
            f"{r['head']:5} {r['method']:14} {r['n']:3d} {f(r['chance_mean']):>6} "
            f"{f(r.get('chance_pg_mean', r['chance_mean'])):>6}  "
            f"{f(r['pointing_game_trained'])}/{f(r['pointing_game_random'])}  "
            f"{f(r['cas_trained'])}/{f(r['cas_random'])}  "
            f"{f(r['rank_accuracy_trained'])}/{f(r['rank_accuracy_random'])}   "
            f"{f(r['spearman_random_median'])}  "
            f"{'PASS' if r['passed'] else 'FAIL' if r['passed'] is False else 'n/a'}")
    return "\n".join(lines)
