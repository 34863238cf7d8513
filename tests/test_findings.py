"""Finding masks: each statement's region and leads, built from the same fiducials as the superclass masks."""

from __future__ import annotations

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS, lead_index
from xand.delineation.findings import FINDING_MASKS, finding_mask, finding_table_markdown, findings_with_masks
from xand.delineation.masks import clinical_mask
from xand.errors import UnknownNameError
from xand.fiducials import Fiducials, kind_index

FS, N = 100.0, 1000


def _fid() -> Fiducials:
    rows = []
    for r in range(100, 950, 80):
        row = np.full(len(FIDUCIAL_KINDS), np.nan)
        for kind, off in {"P_on": -20, "P_peak": -16, "P_off": -12, "QRS_on": -5, "R_peak": 0, "QRS_off": 5,
                          "J": 5, "T_on": 15, "T_peak": 22, "T_off": 30}.items():
            row[kind_index(kind)] = r + off
        rows.append(row)
    b = np.array(rows)
    return Fiducials(FS, N, [b.copy() for _ in range(N_LEADS)], np.ones(N_LEADS, bool), "test")


def test_first_degree_av_block_lives_in_the_pr_interval_not_the_qrs():
    fid = _fid()
    m = finding_mask(fid, "1AVB")
    cd = clinical_mask(fid, "CD")
    assert m[:, 80:96].all() and not m[:, 96:106].any()  # P onset .. QRS onset of the first beat
    assert not (m & cd)[:, 80:95].any() and m.any(axis=1).all()


def test_an_inferior_mi_is_read_in_ii_iii_and_avf_only():
    m = finding_mask(_fid(), "IMI")
    has = {LEADS[i] for i in np.flatnonzero(m.any(axis=1))}
    assert has == {"II", "III", "aVF"}
    row = m[lead_index("II")]
    assert row[95:131].all() and not row[80:95].any()  # QRS and ST-T, not the P wave


def test_every_finding_stays_inside_its_leads_and_its_head_exists():
    fid = _fid()
    for code, f in FINDING_MASKS.items():
        m = finding_mask(fid, code)
        allowed = set(range(N_LEADS))
        leads = [leads for _, leads in f.regions]
        if all(x is not None for x in leads):
            allowed = {lead_index(x) for ls in leads for x in ls}
        assert set(np.flatnonzero(m.any(axis=1))) == allowed, code
        assert f.head in ("MI", "STTC", "CD", "HYP")


def test_a_lead_without_quality_or_beats_gets_no_region():
    fid = _fid()
    fid.quality[lead_index("III")] = False
    m = finding_mask(fid, "IMI")
    assert not m[lead_index("III")].any() and m[lead_index("II")].any()
    assert not finding_mask(Fiducials.empty(FS, N), "LVH").any()


def test_findings_of_a_record_by_likelihood_and_head():
    codes = {"IMI": 100.0, "ASMI": 50.0, "NORM": 100.0, "SR": 0.0, "1AVB": 15.0, "LVH": 0.0, "CLBBB": 100.0}
    assert findings_with_masks(codes) == ["CLBBB", "IMI"]  # likelihood 100, as the pure-label positives
    assert findings_with_masks(codes, head="MI") == ["IMI"]
    assert findings_with_masks(codes, min_likelihood=10) == ["CLBBB", "IMI", "ASMI", "1AVB"]


def test_an_unknown_statement_lists_those_with_a_mask():
    with pytest.raises(UnknownNameError) as exc:
        finding_mask(_fid(), "NORM")
    assert "1AVB" in str(exc.value) and "IMI" in str(exc.value)
    assert "| 1AVB | CD |" in finding_table_markdown()


def test_finding_scores_point_into_the_pr_interval(tmp_path):
    from xand.explain.xai import finding_scores

    fid = _fid()
    amap = np.zeros((N_LEADS, N), np.float32)
    amap[lead_index("II"), 88] = 1.0  # inside the first beat's PR interval, outside every QRS
    out = finding_scores(amap, fid, ["1AVB", "CRBBB"])
    assert out["1AVB"]["pointing_game"]["value"] == 1.0 and out["1AVB"]["cas"]["value"] == 1.0
    assert out["CRBBB"]["pointing_game"]["value"] == 0.0
    assert 0 < out["1AVB"]["cas"]["chance"] < 1 and "PR interval" in out["1AVB"]["regions"]
