"""Scores against hand-computed toy cases: ties, empty masks, all-zero and negative attributions, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from xand.explain.scores import (PerturbationScore, Score, _random_region, cas, cosine, perturbation_drop,
                         pointing_game, rank_accuracy)


def _mask(cells, shape=(12, 10)):
    m = np.zeros(shape, dtype=bool)
    for lead, t in cells:
        m[lead, t] = True
    return m


# ------------------------------------------------------------------------------------ pointing game

def test_pointing_game_hit_and_miss_use_the_argmax_cells_own_lead():
    a = np.zeros((12, 10))
    a[3, 4] = 2.0
    a[0, 0] = 1.0
    hit = pointing_game(a, _mask([(3, 4)]))
    assert hit == Score(1.0, 1 / 120, None)
    # same time, other lead: a miss (the mask of lead 3 decides, not any lead at t=4)
    miss = pointing_game(a, _mask([(5, 4)]))
    assert miss.value == 0.0 and miss.chance == pytest.approx(1 / 120)


def test_pointing_game_tie_counts_as_hit_if_any_tied_cell_inside():
    a = np.zeros((12, 10))
    a[1, 1] = a[7, 8] = 3.0
    assert pointing_game(a, _mask([(7, 8)])).value == 1.0
    assert pointing_game(a, _mask([(7, 7)])).value == 0.0
    # float32 round-off below the tie tolerance still ties
    a[7, 8] = 3.0 * (1 - 1e-8)
    assert pointing_game(a, _mask([(7, 8)])).value == 1.0


def test_pointing_game_ignores_large_negative_attribution():
    a = np.zeros((12, 10))
    a[2, 2] = -10.0  # strongest |a| but evidence against: not where the model points
    a[4, 4] = 0.5
    assert pointing_game(a, _mask([(4, 4)])).value == 1.0
    assert pointing_game(a, _mask([(2, 2)])).value == 0.0


@pytest.mark.parametrize("fill,reason", [(0.0, "all-zero"), (0.7, "constant")])
def test_pointing_game_undefined_for_all_zero_or_constant_maps(fill, reason):
    s = pointing_game(np.full((12, 10), fill), _mask([(0, 0), (1, 1)]))
    assert s.value is None and reason in s.reason and s.chance == pytest.approx(2 / 120)


def test_pointing_game_undefined_without_positive_attribution():
    a = -np.arange(120, dtype=float).reshape(12, 10) - 1
    s = pointing_game(a, _mask([(0, 0)]))
    assert s.value is None and "positive" in s.reason


def test_empty_mask_is_undefined_not_zero_for_every_mask_score():
    a = np.random.default_rng(0).normal(size=(12, 10))
    empty = np.zeros((12, 10), dtype=bool)
    for fn in (pointing_game, cas, rank_accuracy):
        s = fn(a, empty)
        assert s.value is None and "empty mask" in s.reason and s.chance == 0.0


def test_non_finite_attribution_is_undefined():
    a = np.ones((12, 10))
    a[0, 0] = np.nan
    for fn in (pointing_game, cas, rank_accuracy):
        assert "NaN" in fn(a, _mask([(0, 0)])).reason


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        pointing_game(np.zeros((12, 10)), np.zeros((12, 11), dtype=bool))


# ---------------------------------------------------------------------------------------------- CAS

def test_cas_is_share_of_positive_mass_inside_negative_ignored():
    a = np.zeros((12, 10))
    a[0, 0], a[0, 1], a[5, 5], a[6, 6] = 3.0, 1.0, -50.0, 4.0
    s = cas(a, _mask([(0, 0), (0, 1), (5, 5)]))
    assert s.value == pytest.approx(4.0 / 8.0)
    assert s.chance == pytest.approx(3 / 120)


def test_cas_uniform_map_equals_coverage_chance():
    m = np.zeros((12, 10), dtype=bool)
    m[:3, :5] = True  # 15 of 120 cells
    s = cas(np.ones((12, 10)), m)
    assert s.value == pytest.approx(0.125) == s.chance


def test_cas_undefined_without_positive_mass():
    s = cas(-np.ones((12, 10)), _mask([(0, 0)]))
    assert s.value is None and "positive" in s.reason
    assert cas(np.zeros((12, 10)), _mask([(0, 0)])).value is None


# ------------------------------------------------------------------------------------ rank accuracy

def test_rank_accuracy_top_k_with_k_mask_size():
    a = np.zeros((12, 10))
    a[0, :4] = [4, 3, 2, 1]  # top-3 cells: (0,0), (0,1), (0,2)
    s = rank_accuracy(a, _mask([(0, 0), (0, 2), (5, 5)]))
    assert s.value == pytest.approx(2 / 3) and s.chance == pytest.approx(3 / 120)


def test_rank_accuracy_ties_at_the_cut_are_resolved_in_expectation():
    a = np.zeros((12, 10))
    a[0, 0] = 5.0
    a[1, :4] = 2.0  # 4 cells tied for ranks 2..5; K = 3 takes 2 of them
    m = _mask([(0, 0), (1, 0), (9, 9)])  # K = 3; one tied cell inside
    # expected inside = 1 (the top cell) + 2 picks x 1/4 inside share = 1.5 -> 1.5 / 3
    assert rank_accuracy(a, m).value == pytest.approx(0.5)


def test_rank_accuracy_undefined_for_constant_and_zero():
    m = _mask([(0, 0)])
    assert "constant" in rank_accuracy(np.full((12, 10), 2.0), m).reason
    assert "all-zero" in rank_accuracy(np.zeros((12, 10)), m).reason


def test_full_mask_gives_chance_one():
    a = np.random.default_rng(1).normal(size=(12, 10))
    full = np.ones((12, 10), dtype=bool)
    assert rank_accuracy(a, full).value == 1.0 == rank_accuracy(a, full).chance
    assert pointing_game(a, full).value == 1.0


# --------------------------------------------------------------------------------------- perturbation

def _sum_model(weights):
    """A 'probability' that is the weighted sum of the input (linear, so drops are hand-computable)."""
    w = np.asarray(weights, dtype=np.float64)

    def predict(batch):
        return (batch * w).sum(axis=(1, 2))

    return predict


def test_perturbation_drop_mask_vs_random_region_by_hand():
    x = np.ones((12, 20), dtype=np.float32)
    w = np.zeros((12, 20))
    w[2, 5:8] = 0.1  # the model only looks at lead 2, samples 5..7
    m = np.zeros((12, 20), dtype=bool)
    m[2, 5:8] = True
    s = perturbation_drop(_sum_model(w), x, m, baseline=0.0, rng=0)
    assert isinstance(s, PerturbationScore)
    assert s.p == pytest.approx(0.3) and s.value == pytest.approx(0.3)  # all evidence removed
    assert s.chance == pytest.approx(0.0)  # random region outside the mask: nothing removed
    assert s.n_points == s.n_random == 3 and s.reason is None


def test_random_region_keeps_per_lead_counts_runs_and_avoids_mask():
    rng = np.random.default_rng(0)
    m = np.zeros((12, 100), dtype=bool)
    m[0, 10:20] = True
    m[0, 50:53] = True
    m[4, 0:30] = True
    r = _random_region(m, rng)
    assert not (r & m).any()
    assert (r.sum(axis=1) == m.sum(axis=1)).all()
    runs0 = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], r[0].astype(int), [0]]))))[::2]
    assert sorted(runs0.tolist()) in ([3, 10], [13])  # same run lengths (or two adjacent runs)


def test_perturbation_random_region_smaller_than_mask_is_reported():
    x = np.ones((12, 10), dtype=np.float32)
    m = np.zeros((12, 10), dtype=bool)
    m[0, :8] = True  # only 2 free cells on lead 0
    s = perturbation_drop(_sum_model(np.ones((12, 10))), x, m, 0.0, rng=0)
    assert s.n_random == 2 and "smaller" in s.reason
    assert s.value == pytest.approx(8.0) and s.chance == pytest.approx(2.0)


def test_perturbation_full_and_empty_masks():
    x = np.ones((12, 10), dtype=np.float32)
    full = perturbation_drop(_sum_model(np.ones((12, 10))), x, np.ones((12, 10), bool), 0.0, rng=0)
    assert full.value == pytest.approx(120.0) and full.chance is None and "whole ECG" in full.reason
    empty = perturbation_drop(_sum_model(np.ones((12, 10))), x, np.zeros((12, 10), bool), 0.0, rng=0)
    assert empty.value is None and "empty mask" in empty.reason


def test_perturbation_is_seeded():
    x = np.random.default_rng(2).normal(size=(12, 50)).astype(np.float32)
    w = np.random.default_rng(3).normal(size=(12, 50))
    m = np.zeros((12, 50), dtype=bool)
    m[:, 10:15] = True
    a = perturbation_drop(_sum_model(w), x, m, 0.0, rng=7)
    b = perturbation_drop(_sum_model(w), x, m, 0.0, rng=np.random.default_rng(7))
    assert a.chance == b.chance and a.value == b.value


# --------------------------------------------------------------------------------------------- cosine

def test_cosine_by_hand_and_zero_map():
    a = np.zeros((12, 10))
    b = np.zeros((12, 10))
    a[0, 0], a[0, 1] = 1.0, 1.0
    b[0, 0] = 2.0
    assert cosine(a, b).value == pytest.approx(1 / np.sqrt(2))
    assert cosine(a, -a).value == pytest.approx(-1.0)
    s = cosine(a, np.zeros((12, 10)))
    assert s.value is None and "all-zero" in s.reason


def test_the_pointing_game_on_regions_judges_the_top_region_and_its_chance_by_hand():
    """Three regions on one lead of 10 samples: A = 0-3, B = 4-7 (6-9 masked), C = 8-9; -1 elsewhere."""
    feats = np.full((12, 10), -1)
    feats[0, :4], feats[0, 4:8], feats[0, 8:] = 0, 1, 2
    mask = np.zeros((12, 10), bool)
    mask[0, 6:10] = True  # B: 2 of 4 samples inside (not more than half), C: 2 of 2 inside
    a = np.zeros((12, 10))
    a[0, 4:8] = 1.0  # B on top: it touches the mask, but is not inside it
    s = pointing_game(a, mask, feats)
    assert s.value == 0.0 and s.chance == pytest.approx(1 / 3)  # only C of A, B, C is inside
    assert pointing_game(a, mask).value == 1.0  # judged on cells, the edge sample would count as a hit
    a[0, 8:] = 2.0
    assert pointing_game(a, mask, feats).value == 1.0
    a[0, 8:] = 1.0  # B and C tie: a hit, as any tied cell is
    assert pointing_game(a, mask, feats).value == 1.0


def test_region_ids_leave_the_samples_of_no_segment_out():
    from xand.explain.waves import OTHER, region_ids

    lab = np.full((12, 10), OTHER)
    lab[:, 2:5] = 2  # QRS
    ids = region_ids(lab)
    assert (ids[:, :2] == -1).all() and len(np.unique(ids[ids >= 0])) == 12
