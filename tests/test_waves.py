"""Wave-level attribution: segments cut at each lead's own marks (by hand), per-run removal lines, a toy
head that reads only the ST segment of V2 is explained by exactly that wave, missing segments refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.errors import DataError, UnknownNameError
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
    from xand.explain.scores import pointing_game

    st_mask = np.zeros((N_LEADS, T), bool)
    st_mask[LEADS.index("V2"), 55:80] = True  # one of the two ST segments of V2: half the feature
    assert a.features is not None and a.features.shape == (N_LEADS, T)  # a region-level map
    assert pointing_game(a.map, st_mask, a.features).value == 0.0  # not more than half inside
    st_mask[LEADS.index("V2"), 195:210] = True
    assert pointing_game(a.map, st_mask, a.features).value == 1.0
    table = wave_table(a.map, lab)
    assert table.shape == (N_LEADS, len(SEGMENTS))
    st = table[LEADS.index("V2"), SEGMENTS.index("ST")]
    assert st > 0 and np.nanmax(np.abs(np.delete(table.ravel(), LEADS.index("V2") * 6 + 3))) < 0.2 * st
    assert len(np.unique(feature_mask(lab))) <= N_LEADS * (len(SEGMENTS) + 1)


def test_without_segments_is_refused():
    with pytest.raises(DataError, match="segments"):
        attribute(ReadsST(), torch.zeros(1, N_LEADS, T), 0, "waves")


# ------------------------------------------------------------------------------ normal wave templates

def _normal(rng: np.random.Generator | None = None) -> np.ndarray:
    """``(12, T)`` a noiseless 2-beat ECG cut by ``_fid()``: a P bump, a QRS spike, a T bump, each on a
    tilted baseline (so the end-to-end line matters)."""
    t = np.arange(T, dtype=np.float32)
    x = np.tile(0.002 * t, (N_LEADS, 1))
    for i in range(2):
        o = i * 140
        for (a, b), h in (((10, 30), 0.2), ((40, 55), 1.5), ((80, 110), 0.4)):
            x[:, o + a: o + b] += h * np.sin(np.pi * (np.arange(b - a) + 0.5) / (b - a))[None]
    if rng is not None:
        x = x * rng.uniform(0.9, 1.1)
    return x.astype(np.float32)


def test_templates_are_the_waves_without_their_baseline_by_hand():
    from xand.explain.waves import templates_from

    lab = segment_labels(_fid(), T)
    x = np.stack([_normal(), _normal()])
    tpl = templates_from(x, np.stack([lab, lab]), n_points=15)
    q = SEGMENTS.index("QRS")
    assert tpl.count[0, q] == 4 and tpl.duration[0, q] == pytest.approx(15)  # 2 ECGs x 2 beats
    want = _normal()[0, 40:55] - np.linspace(_normal()[0, 39], _normal()[0, 55], 17)[1:-1]
    np.testing.assert_allclose(tpl.shape[0, q], want, atol=1e-5)
    assert tpl.count[0, SEGMENTS.index("TP")] == 2  # one TP per ECG (the last beat has no next P)


def test_filling_a_normal_ecg_with_its_own_templates_changes_nothing_a_line_does():
    from xand.explain.waves import template_fill, templates_from

    lab = segment_labels(_fid(), T)
    x = _normal()
    tpl = templates_from(x[None], lab[None], n_points=64)
    inside = lab[0] != OTHER
    err_template = np.abs(template_fill(x, lab, tpl) - x)[:, inside].max()
    err_line = np.abs(run_lines(x, feature_mask(lab)) - x)[:, inside].max()
    assert err_template < 0.05 and err_line > 1.0  # the QRS taken away by a line, kept by its template


def test_a_wide_wave_is_replaced_by_one_of_normal_duration():
    from xand.explain.waves import template_fill, templates_from

    lab = segment_labels(_fid(), T)
    tpl = templates_from(_normal()[None], lab[None])
    fid = _fid()
    fid.beats[0][:, FIDUCIAL_KINDS.index("QRS_off")] += 10  # a 25-sample QRS on lead I (bundle branch block)
    wide = segment_labels(fid, T)
    out = template_fill(np.zeros((N_LEADS, T), np.float32), wide, tpl)
    bump = out[0, 40:65]
    assert np.argmax(bump) < 10 and np.abs(bump[16:]).max() < 1e-6  # the normal 15-sample QRS, then flat


def test_the_template_removal_credits_the_abnormal_wave_and_not_the_normal_ones():
    """The toy head reads V2's ST (weights by hand): on an ECG with ST elevation only V2 ST matters; the
    normal QRS, taken away by a line, would move a head that reads it even where it is normal."""
    from xand.explain.waves import templates_from

    lab = segment_labels(_fid(), T)
    rng = np.random.default_rng(0)
    tpl = templates_from(np.stack([_normal(rng) for _ in range(6)]), np.stack([lab] * 6))
    x = torch.as_tensor(_normal())[None]
    x[0, LEADS.index("V2"), 55:80] += 0.5  # ST elevation on V2
    x[0, LEADS.index("V2"), 195:220] += 0.5
    raw = attribute(ReadsST(), x, 0, "waves_template", segments=lab, references=tpl, normalise="none")
    assert top_wave(raw.map, lab) == ("V2", "ST")
    table = wave_table(raw.map, lab)
    assert table[LEADS.index("V2"), SEGMENTS.index("ST")] == pytest.approx(0.5 * 50, rel=0.15)
    normal = attribute(ReadsST(), torch.as_tensor(_normal())[None], 0, "waves_template", segments=lab,
                       references=tpl, normalise="none")
    assert np.abs(normal.map).max() < 0.1 * 25  # a normal ST: taking it away changes little
    # per unit of change: the drop over the L2 size of the change (0.5 on 25 samples of each of 2 beats)
    unit = attribute(ReadsST(), x, 0, "waves_template", segments=lab, references=tpl, normalise="l2")
    assert top_wave(unit.map, lab) == ("V2", "ST")
    st = wave_table(unit.map, lab)[LEADS.index("V2"), SEGMENTS.index("ST")]
    assert st == pytest.approx(25 / np.sqrt(50 * 0.5 ** 2), rel=0.15)


def test_the_null_calibration_divides_by_what_untrained_networks_of_the_architecture_do():
    """The default normalisation by hand: each wave's drop over the mean |drop| of the null networks."""
    from xand.explain.methods.wave_ablation import NULL_SEED, null_networks
    from xand.explain.waves import template_fill, templates_from

    lab = segment_labels(_fid(), T)
    tpl = templates_from(np.stack([_normal()] * 3), np.stack([lab] * 3))
    x = torch.as_tensor(_normal())[None]
    x[0, LEADS.index("V2"), 55:80] += 0.5
    x[0, LEADS.index("V2"), 195:220] += 0.5
    model = ReadsST()
    a = attribute(model, x, 0, "waves_template", segments=lab, references=tpl, n_null=3)
    assert top_wave(a.map, lab) == ("V2", "ST") and a.params["null_seed"] == NULL_SEED
    nulls = null_networks(model, x, 3)
    assert len(nulls) == 3 and all(not torch.equal(n.w, model.w) for n in nulls)
    assert null_networks(model, x, 3) is nulls  # built once per model
    base = torch.as_tensor(template_fill(x[0].numpy(), lab, tpl))
    sel = torch.zeros(N_LEADS, T, dtype=torch.bool)
    sel[LEADS.index("V2"), 55:80] = sel[LEADS.index("V2"), 195:220] = True
    delta = torch.where(sel, x[0] - base, torch.zeros(()))  # only V2's ST taken away
    drop = float((model.w.detach() * delta).sum())
    null_drop = np.mean([abs(float((n.w.detach() * delta).sum())) for n in nulls])
    st = wave_table(a.map, lab)[LEADS.index("V2"), SEGMENTS.index("ST")]
    assert st == pytest.approx(drop / null_drop, rel=1e-3)
    with pytest.raises(UnknownNameError, match="l2, none, null"):
        attribute(model, x, 0, "waves_template", segments=lab, references=tpl, normalise="zscore")


def test_per_unit_change_does_not_favour_the_biggest_change_for_a_head_that_weighs_all_alike():
    """A head that sums every sample alike (the stand-in for a network with no preference) credits each
    wave with its change; per unit of change the abnormal, largest change is no longer singled out."""
    from xand.explain.waves import templates_from

    class SumAll(nn.Module):
        def forward(self, x):
            return x.sum(dim=(1, 2))[:, None]

    lab = segment_labels(_fid(), T)
    tpl = templates_from(np.stack([_normal()] * 2), np.stack([lab] * 2))
    x = torch.as_tensor(_normal())[None]
    x[0, 0, 40:55] *= 3.0  # a huge QRS on lead I: the largest change by far
    x[0, 0, 180:195] *= 3.0
    raw = attribute(SumAll(), x, 0, "waves_template", segments=lab, references=tpl, normalise="none")
    unit = attribute(SumAll(), x, 0, "waves_template", segments=lab, references=tpl, normalise="l2")
    q = SEGMENTS.index("QRS")
    raw_t, unit_t = wave_table(raw.map, lab), wave_table(unit.map, lab)
    assert np.nanargmax(raw_t) == q  # lead I QRS
    assert unit_t[0, q] <= np.sqrt(15 * 2) + 1e-3  # at most sqrt(n): |sum(delta)| <= sqrt(n) * ||delta||


def test_template_ablation_without_templates_is_refused():
    lab = segment_labels(_fid(), T)
    with pytest.raises(DataError, match="templates"):
        attribute(ReadsST(), torch.zeros(1, N_LEADS, T), 0, "waves_template", segments=lab)


def test_the_chart_says_what_a_wave_value_is():
    """Found clicking through: the null-calibrated heatmap was labelled "logit drop" (its cells reach
    +-1000, ratios to what untrained networks do)."""
    from xand.explain.waves import wave_value_label

    lab = segment_labels(_fid(), T)
    from xand.explain.waves import templates_from

    tpl = templates_from(np.stack([_normal()] * 2), np.stack([lab] * 2))
    x = torch.as_tensor(_normal())[None]
    a = attribute(ReadsST(), x, 0, "waves_template", segments=lab, references=tpl, n_null=2)
    assert wave_value_label(a.params) == "logit drop / mean drop of untrained networks"
    assert wave_value_label(attribute(ReadsST(), x, 0, "waves", segments=lab).params) == "logit drop"
    assert "per unit of change" in wave_value_label({"normalise": "l2"})
