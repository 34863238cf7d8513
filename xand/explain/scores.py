"""Scores of agreement between an attribution map and a clinical mask: pure functions on numpy arrays.

Every score returns a :class:`Score` with the value, the **chance level** of that ECG (what a random
map would get, so a score is never shown alone) and, when the score is undefined, ``value=None`` and a
``reason`` (never a silent 0). Maps are ``(12, T)`` float (positive = evidence for the prediction), masks
``(12, T)`` bool on the same grid (``xand.delineation.masks.clinical_mask``).

References
----------
- Pointing Game: Zhang J. et al., Top-down neural attention by excitation backprop, IJCV 126 (2018).
- CAS (clinical alignment score): the XAND-ECG definition, the share of positive attribution mass that
  falls inside the clinical region (an energy-based pointing game, cf. Wang H. et al., Score-CAM, 2020).
- Relevance rank accuracy: Arras L. et al., CLEVR-XAI, Information Fusion 81 (2022).
- Perturbation: Samek W. et al., Evaluating the visualization of what a DNN has learned, IEEE TNNLS
  (2017); Hooker S. et al., A benchmark for interpretability methods (ROAR), NeurIPS 2019.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

#: relative tolerance under which two attribution values count as tied (float32 maps)
TIE_RTOL = 1e-6


@dataclass
class Score:
    """A score with its chance level.

    value : the score, or None when undefined
    chance : what a random map would score on this ECG (None when it has no meaning)
    reason : why ``value`` is undefined (None when defined); may also carry a caveat
    """

    value: float | None
    chance: float | None = None
    reason: str | None = None

    @property
    def defined(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict:
        return asdict(self)



@dataclass
class PerturbationScore(Score):
    """Surgical perturbation: ``value`` = drop of probability when the mask region is replaced by the
    baseline, ``chance`` = drop when a random non-mask region of the same size is replaced.

    p, p_mask, p_random : probabilities of the original and the two perturbed inputs
    n_points, n_random : number of replaced samples (mask / random region)
    """

    p: float | None = None
    p_mask: float | None = None
    p_random: float | None = None
    n_points: int = 0
    n_random: int = 0


def _check(attr: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    a = np.asarray(attr, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if a.shape != m.shape:
        raise ValueError(f"attribution shape {a.shape} differs from mask shape {m.shape}")
    if not m.any():
        return a, m, "empty mask: no clinical region on this ECG (e.g. no beats delineated)"
    if not np.isfinite(a).all():
        return a, m, "attribution contains NaN or infinite values"
    return a, m, None


def _coverage(m: np.ndarray) -> float:
    return float(m.mean())


def _constant_reason(a: np.ndarray) -> str | None:
    if not a.any():
        return "all-zero attribution: the map points nowhere"
    if np.ptp(a) == 0:
        return "constant attribution: every point ties"
    return None


def pointing_game(attr: np.ndarray, mask: np.ndarray, features: np.ndarray | None = None) -> Score:
    """Pointing Game hit (Zhang et al. 2018) on the ``(lead, t)`` cell of maximal attribution, or on the
    top *region* of a region-level map.

    The argmax is taken over all leads and times of the signed map; the hit is judged on that cell's own
    lead (the mask of lead ``l`` at time ``t``). Values within ``TIE_RTOL`` of the maximum tie, and a tie
    is a hit when any tied cell is inside the mask.

    With ``features`` (a region-level map such as lead x wave ablation, where every sample of a region
    carries the region's value) the game is played on regions, the level the method works on: the top
    region is a hit when more than half of its samples are inside the mask, and chance is the share of
    regions that are. (Judged on cells, a region that merely touches the mask at one edge sample would
    count as a hit, and the cell coverage would understate what a random ranking of regions earns.)

    Parameters
    ----------
    attr : ``(12, T)`` attribution
    mask : ``(12, T)`` bool clinical mask
    features : ``(12, T)`` int region ids of a region-level map (negative: in no region, not ranked), or
        None for a sample-level map

    Returns
    -------
    Score: value 1.0 (hit) / 0.0 (miss); chance = mask coverage (share of cells inside the mask, the hit
    probability of a random argmax) or the share of regions inside it. Undefined for an empty mask, a
    non-finite, all-zero or constant map, or a map without positive attribution.
    """
    a, m, reason = _check(attr, mask)
    if features is not None and reason is None:
        return _pointing_game_regions(a, m, np.asarray(features))
    chance = _coverage(m)
    reason = reason or _constant_reason(a)
    if reason is None and a.max() <= 0:
        reason = "no positive attribution: the map has no evidence for the prediction to point at"
    if reason:
        return Score(None, chance, reason)
    top = a.max()
    tied = a >= top - TIE_RTOL * abs(top)
    return Score(float(bool((tied & m).any())), chance, None)


def _pointing_game_regions(a: np.ndarray, m: np.ndarray, features: np.ndarray) -> Score:
    if features.shape != a.shape:
        raise ValueError(f"feature ids of shape {features.shape} differ from attribution shape {a.shape}")
    ids = features.ravel()
    keep = ids >= 0
    if not keep.any():
        return Score(None, None, "no region to rank (no wave segment was delineated)")
    uniq, inv = np.unique(ids[keep], return_inverse=True)
    size = np.bincount(inv)
    value = np.bincount(inv, weights=a.ravel()[keep]) / size
    inside = np.bincount(inv, weights=m.ravel()[keep].astype(float)) / size > 0.5
    chance = float(inside.mean())
    if np.ptp(value) == 0:
        return Score(None, chance, "constant attribution: every region ties")
    top = value.max()
    if top <= 0:
        return Score(None, chance, "no positive attribution: the map has no evidence for the prediction to point at")
    tied = value >= top - TIE_RTOL * abs(top)
    return Score(float(bool((tied & inside).any())), chance, None)


def cas(attr: np.ndarray, mask: np.ndarray) -> Score:
    """Clinical alignment score: fraction of positive attribution mass inside the mask.

    ``CAS = sum(max(a, 0) * mask) / sum(max(a, 0))``; negative attribution (evidence against) is left out.

    Returns
    -------
    Score with chance = mask coverage (the CAS of a uniform positive map). Undefined for an empty mask,
    non-finite values or no positive mass.
    """
    a, m, reason = _check(attr, mask)
    chance = _coverage(m)
    if reason:
        return Score(None, chance, reason)
    pos = np.clip(a, 0.0, None)
    total = pos.sum()
    if total <= 0:
        return Score(None, chance, "no positive attribution mass")
    return Score(float(pos[m].sum() / total), chance, None)


def rank_accuracy(attr: np.ndarray, mask: np.ndarray) -> Score:
    """Relevance rank accuracy (Arras et al. 2022): share of the top-K attributed cells inside the mask,
    ``K`` = number of mask cells.

    Ties at the K-th value are resolved in expectation (as a random tie-break would on average), so the
    score does not depend on the order of the cells.

    Returns
    -------
    Score with chance = mask coverage. Undefined for an empty mask, a non-finite, all-zero or constant map.
    """
    a, m, reason = _check(attr, mask)
    chance = _coverage(m)
    reason = reason or _constant_reason(a)
    if reason:
        return Score(None, chance, reason)
    flat, mf = a.ravel(), m.ravel()
    k = int(mf.sum())
    kth = np.partition(flat, flat.size - k)[flat.size - k]  # K-th largest value
    above = flat > kth
    tied = flat == kth
    need = k - int(above.sum())
    inside = float((above & mf).sum()) + need * float((tied & mf).sum()) / float(tied.sum())
    return Score(inside / k, chance, None)


def _random_region(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A region outside ``mask`` with, per lead, the same number of cells and where possible the same
    run lengths (contiguous intervals) as the mask, placed at random."""
    out = np.zeros_like(mask)
    for lead in range(mask.shape[0]):
        m = mask[lead]
        if not m.any():
            continue
        free = ~m
        edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
        runs = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
        left = 0
        for length in sorted(runs, reverse=True):
            ok = np.convolve(free.astype(np.int32), np.ones(length, dtype=np.int32), "valid") == length
            starts = np.flatnonzero(ok)
            if starts.size == 0:
                left += length
                continue
            s = int(rng.choice(starts))
            out[lead, s:s + length] = True
            free[s:s + length] = False
        if left:  # no room for an interval of that length: take the remaining cells scattered
            cand = np.flatnonzero(free)
            pick = rng.choice(cand, size=min(left, cand.size), replace=False) if cand.size else cand
            out[lead, pick] = True
    return out


def perturbation_drop(predict_fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, mask: np.ndarray,
                      baseline: float | np.ndarray = 0.0,
                      rng: np.random.Generator | int | None = None) -> PerturbationScore:
    """Surgical perturbation (Samek et al. 2017; Hooker et al. 2019): replace the mask region with the
    baseline, and, as the control, a random non-mask region of the same size (same cells per lead, same
    interval lengths where they fit); report the drop in probability for each.

    Parameters
    ----------
    predict_fn : ``(N, 12, T) -> (N,)`` probabilities of the head (called once, with N = 3)
    x : ``(12, T)`` input as ``predict_fn`` expects it (normalised for a model)
    mask : ``(12, T)`` bool
    baseline : scalar or ``(12, T)`` replacement values (0 = isoelectric in normalised units)
    rng : numpy Generator or seed for the random region

    Returns
    -------
    PerturbationScore: value = ``p - p_mask``, chance = ``p - p_random`` (None, with a reason, when the
    mask leaves no room outside it). Undefined for an empty mask.
    """
    x = np.asarray(x, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if x.shape != m.shape:
        raise ValueError(f"input shape {x.shape} differs from mask shape {m.shape}")
    if not m.any():
        return PerturbationScore(None, None, "empty mask: no clinical region on this ECG")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    rand = _random_region(m, rng)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    batch = np.stack([x, np.where(m, base, x), np.where(rand, base, x)]).astype(np.float32)
    p, pm, pr = (float(v) for v in np.asarray(predict_fn(batch), dtype=np.float64).reshape(3))
    n, nr = int(m.sum()), int(rand.sum())
    reason = None
    chance: float | None = p - pr
    if nr == 0:
        chance, reason = None, "mask covers the whole ECG: no region outside it to compare with"
    elif nr < n:
        reason = f"random region smaller than the mask ({nr} of {n} cells fit outside it)"
    return PerturbationScore(p - pm, chance, reason, p=p, p_mask=pm, p_random=pr, n_points=n, n_random=nr)


def cosine(a: np.ndarray, b: np.ndarray) -> Score:
    """Cosine similarity between two attribution maps of the same shape (e.g. IG vs GradientShap).

    Returns
    -------
    Score in [-1, 1]; chance None (it depends on the methods' sign conventions). Undefined when either
    map is all zero or non-finite.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps have different sizes {np.shape(a)} and {np.shape(b)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Score(None, None, "a map contains NaN or infinite values")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return Score(None, None, "all-zero map: the angle is undefined")
    return Score(float(np.clip(x @ y / (nx * ny), -1.0, 1.0)), None, None)
