"""Wave-level attribution: segments cut at each lead's own marks (by hand), per-run removal lines, a toy
head that reads only the ST segment of V2 is explained by exactly that wave, missing segments refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.errors import DataError
from xand.explain.attribution import attribute
from xand.explain.waves import OTHER, SEGMENTS, feature_mask, run_lines, segment_labels, top_wave, wave_table
from xand.fiducials import Fiducials

T = 300
MARKS = {"P_on": 10, "P_off": 30, "QRS_on": 40, "QRS_off": 55, "T_on": 80, "T_off": 110}


def _fid(beats: int = 2, period: int = 140) -> Fiducials:
    rows = []
    for i in range(beats):
        r = np.full(len(FIDUCIAL_KINDS), np.nan)
        for k, v in MARKS.items():
            r[FIDUCIAL_KINDS.index(k)] = v + i * period
        rows.append(r)
    return Fiducials(100.0, T, [np.array(rows)] * N_LEADS, source="test")


def test_segments_by_hand():
    lab = segment_labels(_fid(), T)
    row = lab[0]
    assert (row[:10] == OTHER).all()  # before the first P wave: no segment
    assert (row[10:30] == SEGMENTS.index("P")).all() and (row[30:40] == SEGMENTS.index("PR")).all()
    assert (row[40:55] == SEGMENTS.index("QRS")).all() and (row[55:80] == SEGMENTS.index("ST")).all()
    assert (row[80:110] == SEGMENTS.index("T")).all()
    assert (row[110:150] == SEGMENTS.index("TP")).all()  # to the next beat's P onset (10 + 140)
    assert (row[250:] == OTHER).all()  # after the last beat's T wave: no TP without a next beat


def test_a_missing_mark_leaves_its_segments_out_never_guessed():
    fid = _fid()
    fid.beats[3][0, FIDUCIAL_KINDS.index("T_on")] = np.nan
    lab = segment_labels(fid, T)
    assert (lab[3, 55:80] == OTHER).all() and (lab[3, 80:110] == OTHER).all()  # ST and T of beat 1
    assert (lab[3, 195:220] == SEGMENTS.index("ST")).all()  # beat 2 untouched


def test_run_lines_replace_each_run_by_its_own_line():
    x = np.zeros((1, 8), np.float32)
    x[0] = [0, 1, 5, 5, 3, 4, 8, 8]
    groups = np.array([[0, 0, 1, 1, 2, 2, 3, 3]])
    out = run_lines(x, groups)
    np.testing.assert_allclose(out[0, 2:4], [1 + (3 - 1) / 3, 1 + 2 * (3 - 1) / 3])  # between x[1] and x[4]


class ReadsST(nn.Module):
    """logit = sum of lead V2 over the ST segments (samples 55-80 and 195-220): only that wave matters."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(N_LEADS, T))
        with torch.no_grad():
            self.w[LEADS.index("V2"), 55:80] = 1.0
            self.w[LEADS.index("V2"), 195:220] = 1.0

    def forward(self, x):
        return (x * self.w).sum(dim=(1, 2))[:, None]


def test_the_head_that_reads_v2_st_is_explained_by_v2_st():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((1, N_LEADS, T)).astype(np.float32) * 0.1)
    x[0, LEADS.index("V2"), 55:80] += 2.0  # an ST elevation on V2
    x[0, LEADS.index("V2"), 195:220] += 2.0
    lab = segment_labels(_fid(), T)
    a = attribute(ReadsST(), x, 0, "waves", segments=lab)
    assert top_wave(a.map, lab) == ("V2", "ST")
    table = wave_table(a.map, lab)
    assert table.shape == (N_LEADS, len(SEGMENTS))
    st = table[LEADS.index("V2"), SEGMENTS.index("ST")]
    assert st > 0 and np.nanmax(np.abs(np.delete(table.ravel(), LEADS.index("V2") * 6 + 3))) < 0.2 * st
    assert len(np.unique(feature_mask(lab))) <= N_LEADS * (len(SEGMENTS) + 1)


def test_without_segments_is_refused():
    with pytest.raises(DataError, match="segments"):
        attribute(ReadsST(), torch.zeros(1, N_LEADS, T), 0, "waves")
