"""Clinical masks from hand-built fiducials: exact expected masks per head, fallbacks, empty inputs."""

from __future__ import annotations

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, HEADS, N_LEADS
from xand.errors import UnknownNameError
from xand.fiducials import Fiducials, kind_index
from xand.delineation.masks import (
    MASK_TABLE,
    clinical_mask,
    coverage,
    mask_intervals,
    mask_regions,
    mask_table_markdown,
    resolve_marks,
)

FS = 100.0
T = 200


def beat(**marks: float) -> np.ndarray:
    row = np.full(len(FIDUCIAL_KINDS), np.nan)
    for k, v in marks.items():
        row[kind_index(k)] = v
    return row


FULL = beat(P_on=10, P_peak=14, P_off=18, QRS_on=20, R_peak=24, QRS_off=30, J=30, T_on=40, T_peak=50,
            T_off=60)


def fid(rows_per_lead: dict[int, list[np.ndarray]], quality=None) -> Fiducials:
    beats = [np.array(rows_per_lead.get(i, []), dtype=float).reshape(-1, len(FIDUCIAL_KINDS))
             for i in range(N_LEADS)]
    q = np.ones(N_LEADS, dtype=bool) if quality is None else quality
    return Fiducials(FS, T, beats, q, "test")


def expected(ranges: list[tuple[int, int]], lead: int = 0) -> np.ndarray:
    m = np.zeros((N_LEADS, T), dtype=bool)
    for s, e in ranges:
        m[lead, s:e + 1] = True
    return m


def test_table_covers_every_head_and_markdown_lists_it():
    assert set(MASK_TABLE) == set(HEADS)
    md = mask_table_markdown()
    for head in HEADS:
        assert f"| {head} |" in md
    assert "J := QRS_off" in md


@pytest.mark.parametrize("head, ranges", [
    ("MI", [(20, 30), (30, 40), (40, 60)]),  # QRS, ST J..T_on, T wave
    ("STTC", [(30, 60)]),
    ("CD", [(20, 30)]),
    ("HYP", [(20, 30), (30, 60)]),
])
def test_exact_mask_for_one_full_beat(head, ranges):
    f = fid({0: [FULL]})
    np.testing.assert_array_equal(clinical_mask(f, head), expected(ranges))


def test_two_beats_two_leads_and_lead_selection():
    second = FULL.copy()
    second[np.isfinite(second)] += 100
    f = fid({0: [FULL, second], 5: [FULL]})
    m = clinical_mask(f, "CD")
    assert mask_intervals(m[0]) == [(20, 31), (120, 131)]
    assert mask_intervals(m[5]) == [(20, 31)]
    assert not m[[1, 2, 3, 4, 6, 7, 8, 9, 10, 11]].any()
    only = clinical_mask(f, "CD", leads=["aVF"])
    assert not only[0].any() and only[5].any()


def test_fallbacks_j_and_t_on():
    row = beat(QRS_on=20, R_peak=24, QRS_off=30, T_peak=50, T_off=60)  # no J, no T_on
    marks = resolve_marks(row[None], FS)
    assert marks["J"][0] == 30  # J := QRS_off
    assert marks["T_on"][0] == 40  # midpoint of J (30) and T_peak (50)
    m = clinical_mask(fid({0: [row]}), "MI")
    np.testing.assert_array_equal(m, expected([(20, 30), (30, 40), (40, 60)]))


def test_no_fallback_from_nothing():
    row = beat(R_peak=24)  # only an R peak: no region can be delimited
    f = fid({0: [row]})
    for head in HEADS:
        assert not clinical_mask(f, head).any()
    t_only = beat(T_off=60)  # T offset but no J/QRS_off: STTC has no start
    assert not clinical_mask(fid({0: [t_only]}), "STTC").any()


def test_empty_fiducials_and_bad_quality_give_all_false():
    e = Fiducials.empty(FS, T)
    for head in HEADS:
        m = clinical_mask(e, head)
        assert m.shape == (N_LEADS, T) and m.dtype == bool and not m.any()
    q = np.ones(N_LEADS, dtype=bool)
    q[0] = False
    f = fid({0: [FULL]}, quality=q)
    assert not clinical_mask(f, "CD").any()
    assert clinical_mask(f, "CD", require_quality=False)[0].any()


def test_flat_lead_rows_of_nan_give_empty_lead():
    nan_row = np.full(len(FIDUCIAL_KINDS), np.nan)
    f = fid({0: [FULL], 1: [nan_row]})
    m = clinical_mask(f, "STTC")
    assert m[0].any() and not m[1].any()


def test_resampled_grid_and_clipping():
    f = fid({0: [FULL]})
    m = clinical_mask(f, "CD", fs=2 * FS)  # 200 Hz grid: positions doubled
    assert m.shape == (N_LEADS, 2 * T)
    assert mask_intervals(m[0]) == [(40, 61)]
    late = beat(QRS_on=195, QRS_off=210)
    assert mask_intervals(clinical_mask(fid({0: [late]}), "CD")[0]) == [(195, 200)]


def test_mask_regions_labels():
    regions = mask_regions(fid({0: [FULL]}), "MI")
    assert [r[2] for r in regions] == ["QRS (Q wave, QS, R loss)", "ST segment", "T wave"]
    assert regions[0] == (0, 0, "QRS (Q wave, QS, R loss)", 20, 30)


def test_unknown_head():
    with pytest.raises(UnknownNameError):
        clinical_mask(fid({}), "AFIB")


def test_mask_intervals_and_coverage():
    row = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    assert mask_intervals(row) == [(1, 3), (5, 6), (7, 8)]
    assert mask_intervals(np.zeros(5, bool)) == []
    assert coverage(row) == pytest.approx(4 / 8)
    m = np.zeros((2, 4), bool)
    m[0, :2] = True
    np.testing.assert_allclose(coverage(m, axis=-1), [0.5, 0.0])
    assert np.isnan(coverage(np.zeros((0,), bool)))
