"""The plotly figures: trace inventory, clinical printout order, merged mask rectangles, spec size."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from xand.constants import LEADS, lead_index
from xand.errors import DataError
from xand.figures.printout import (
    MM_PER_MV, MM_PER_S, PRINTOUT_ROWS, PrintoutStyle, attribution_intensity,
    ecg_figure, lead_drop_figure, lead_importance_figure, mask_runs,
)

FS = 100.0
T = 1000


@pytest.fixture(scope="module")
def record():
    rng = np.random.default_rng(0)
    t = np.arange(T) / FS
    beat = np.exp(-(((t % 0.8) - 0.3) / 0.012) ** 2)  # a narrow "QRS" every 0.8 s
    ecg = np.stack([(0.4 + 0.15 * i) * beat + 0.05 * rng.standard_normal(T) for i in range(12)]).astype(np.float32)
    attr = (beat[None, :] * rng.uniform(0.2, 1.0, (12, 1)) + 0.02 * rng.standard_normal((12, T))).astype(np.float32)
    mask = np.zeros((12, T), bool)
    for start in np.arange(25, T, 80):  # QRS-like windows, 13 per lead, some crossing 2.5 s boundaries
        mask[:, start:start + 10] = True
    mask[3, :] = False  # aVR: empty mask
    mask[1, 240:260] = True  # II: a run across the 2.5 s column boundary (clipped in the grid, whole in rhythm)
    return ecg, attr, mask


def by_name(fig: go.Figure) -> dict[str, list]:
    out: dict[str, list] = {}
    for tr in fig.data:
        out.setdefault(tr.name, []).append(tr)
    return out


def names_with(fig: go.Figure, prefix: str) -> list[str]:
    return [tr.name for tr in fig.data if tr.name and tr.name.startswith(prefix)]


def test_trace_inventory(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask, title="t")
    assert sorted(names_with(fig, "lead:")) == sorted(f"lead:{ld}" for ld in LEADS)
    assert names_with(fig, "rhythm:") == ["rhythm:II"]
    assert len(names_with(fig, "clin:")) == 13
    assert len(names_with(fig, "attr:")) == 13
    assert all(tr.type == "heatmap" for tr in fig.data if tr.name.startswith("attr:"))
    # SVG only: WebGL contexts run out when a page holds several figures
    assert {tr.type for tr in fig.data} <= {"scatter", "heatmap"}
    # one sheet: every trace on the same axes, so the browser draws one grid, not 39
    assert {(tr.xaxis or "x", tr.yaxis or "y") for tr in fig.data} == {("x", "y")}
    # the trace is coloured by attribution: a few overlay traces (one per intensity level, all leads)
    hot = names_with(fig, "hot")
    assert 1 <= len(hot) <= 3
    assert len(fig.data) <= 12 + 1 + 13 + 13 + 3 + 2


def test_without_attribution_or_mask(record):
    ecg, _, _ = record
    fig = ecg_figure(ecg, FS, None, None, paper_grid=False)
    assert len(names_with(fig, "lead:")) == 12
    assert not names_with(fig, "attr:") and not names_with(fig, "clin:") and not names_with(fig, "hot")
    assert not fig.layout.xaxis.showgrid


def test_printout_order_and_time_windows(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask)
    traces = by_name(fig)
    place = fig.layout.meta["placement"]
    baselines = {}
    for r, row in enumerate(PRINTOUT_ROWS):
        for c, lead in enumerate(row):
            tr = traces[f"lead:{lead}"][0]
            # each column shows its own quarter of the record, as on paper
            assert tr.x0 == pytest.approx(c * 2.5) and tr.dx == pytest.approx(1 / FS)
            assert len(tr.y) == 250
            seg = ecg[lead_index(lead), c * 250:(c + 1) * 250]
            # the lead's own waveform (only shifted onto its row's baseline), in mV at 10 mm/mV
            np.testing.assert_allclose(np.asarray(tr.y) - place[lead]["offset"], seg, atol=1e-5)
            np.testing.assert_allclose(np.asarray(tr.customdata)[:, 0], seg, atol=1e-6)
            assert (place[lead]["row"], place[lead]["col"]) == (r, c)
            baselines.setdefault(r, set()).add(round(place[lead]["baseline"], 6))
    # one baseline per row, rows top to bottom
    assert all(len(b) == 1 for b in baselines.values())
    tops = [next(iter(baselines[r])) for r in range(3)]
    assert tops == sorted(tops, reverse=True)
    rhythm = traces["rhythm:II"][0]
    assert len(rhythm.y) == T and rhythm.x0 == 0
    assert place["rhythm"]["baseline"] < tops[-1]
    # the rows never overlap: each lead stays inside its row band, above its strips
    ys = {r: (min(np.min(traces[f"lead:{ld}"][0].y) for ld in row), max(np.max(traces[f"lead:{ld}"][0].y)
                                                                       for ld in row))
          for r, row in enumerate(PRINTOUT_ROWS)}
    for r in range(2):
        assert ys[r][0] > ys[r + 1][1]
    # CLIN and ATTR strips lie under their lead, in the same time window
    for lead in ("V2", "III"):
        lo = np.min(traces[f"lead:{lead}"][0].y)
        hm = traces[f"attr:{lead}"][0]
        clin_y = [v for v in traces[f"clin:{lead}"][0].y if np.isfinite(v)]
        assert max(clin_y) < lo and hm.y0 + hm.dy / 2 < min(clin_y) + 1e-9
        assert hm.x0 == traces[f"lead:{lead}"][0].x0


def test_paper_grid_is_axis_gridlines_not_shapes(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask, paper_grid=True)
    xa, ya = fig.layout.xaxis, fig.layout.yaxis
    major = np.diff(np.asarray(xa.tickvals))
    np.testing.assert_allclose(major, 0.2)  # 5 mm at 25 mm/s
    assert xa.minor.dtick == 0.04 and xa.showgrid and xa.minor.showgrid  # 1 mm
    assert (ya.dtick, ya.minor.dtick) == (0.5, 0.1)  # 5 mm / 1 mm at 10 mm/mV
    # labels only at whole seconds
    assert [t for t in xa.ticktext if t][:3] == ["0", "1", "2"]
    # shapes are only the strips' white ground (one per strip row), never grid lines
    assert len(fig.layout.shapes) == 8
    assert all(sh.layer == "between" for sh in fig.layout.shapes)
    flat = ecg_figure(ecg, FS, attr, mask, paper_grid=False)
    assert not flat.layout.xaxis.showgrid and not flat.layout.yaxis.showgrid
    # one gain for the whole sheet: each row's span is a multiple of 0.5 mV and fits its leads
    spans = fig.layout.meta["row_spans_mV"]
    assert len(spans) == 4 and all(sp >= 3.0 and (sp * 2) % 1 == 0 for sp in spans)
    big = ecg.copy()
    big[0] *= 4  # a 4x lead I makes its row taller, not the others
    spans_big = ecg_figure(big, FS).layout.meta["row_spans_mV"]
    assert spans_big[0] > spans[0] and spans_big[1:3] == spans[1:3]


def test_paper_aspect_ratio_is_locked(record):
    """25 mm/s and 10 mm/mV at any page width: y is scale-anchored to x with 1 mV spanning the pixels
    of 0.4 s, so a 0.04 s x 0.1 mV small square is square (measured in Chromium: equal px/mm on both axes
    from 700 to 1700 px wide)."""
    ecg, attr, mask = record
    for grid in (True, False):
        fig = ecg_figure(ecg, FS, attr, mask, paper_grid=grid)
        xa, ya = fig.layout.xaxis, fig.layout.yaxis
        assert ya.scaleanchor == "x"
        # plotly: every y unit spans scaleratio times the pixels of an x unit
        assert ya.scaleratio * MM_PER_S == pytest.approx(MM_PER_MV)  # px/mV = 0.4 px/s
        assert ya.scaleratio * 0.1 / 0.04 == pytest.approx(1.0)  # small square: 0.1 mV tall = 0.04 s wide
        # plotly drops a scale anchor on a fixed-range axis unless it constrains its domain; both axes
        # give up domain (not range) so the sheet never shows paper beyond the record
        assert ya.constrain == "domain" and xa.constrain == "domain"
        assert not ya.fixedrange and not xa.fixedrange
        assert (xa.constraintoward, ya.constraintoward) == ("left", "top")  # the CLIN/ATTR labels stay put
    # the height is sized for the nominal scale: (mV span) x 10 mm/mV x px/mm + margins
    fig = ecg_figure(ecg, FS, attr, mask, style=PrintoutStyle(px_per_mm=5.0))
    y0, y1 = fig.layout.yaxis.range
    assert fig.layout.height == pytest.approx((y1 - y0) * MM_PER_MV * 5.0 + 12 + 40, abs=1)


def test_masks_are_merged_rectangles(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask)
    traces = by_name(fig)
    for r, row in enumerate(PRINTOUT_ROWS):
        for c, lead in enumerate(row):
            tr = traces[f"clin:{lead}"][0]
            assert tr.fill == "toself"
            want = len(mask_runs(mask[lead_index(lead), c * 250:(c + 1) * 250]))
            xs = list(tr.x)
            n_polys = int(np.isnan(np.asarray(xs, dtype=float)).sum())
            assert n_polys == want, lead
            assert len(xs) == 6 * want  # 5 corners (closed) + a gap per rectangle, not one per sample
    rh = traces["clin:rhythm"][0]
    assert int(np.isnan(np.asarray(rh.x, dtype=float)).sum()) == len(mask_runs(mask[lead_index("II")]))
    assert len(traces["clin:aVR"][0].x) == 0


def test_mask_runs():
    m = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    np.testing.assert_array_equal(mask_runs(m), [[1, 3], [4, 5], [7, 10]])
    assert mask_runs(np.zeros(5, bool)).shape == (0, 2)
    assert mask_runs(np.ones(3, bool)).tolist() == [[0, 3]]


def test_attribution_heatmap_values(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask)
    inten = attribution_intensity(attr)
    hm = by_name(fig)["attr:V4"][0]
    np.testing.assert_allclose(np.asarray(hm.z)[0], inten[lead_index("V4"), 750:1000], atol=1e-6)
    assert hm.x0 == pytest.approx(7.5) and hm.dx == pytest.approx(0.01)
    # hover shows time, amplitude and attribution
    lead = by_name(fig)["lead:V4"][0]
    assert "mV" in lead.hovertemplate and "attribution" in lead.hovertemplate
    np.testing.assert_allclose(np.asarray(lead.customdata)[:, 1], inten[lead_index("V4"), 750:1000], atol=1e-6)


def test_hot_overlay_segments():
    from xand.figures.printout import _hot_segments

    y = np.arange(10, dtype=np.float32)
    level = np.array([0, 0, 3, 0, 0, 0, 1, 2, 2, 0], np.int8)
    # a segment (i, i+1) is recoloured at level k when one of its ends reaches k
    x1, y1 = _hot_segments(y, level, 1, t0=1.0, fs=10.0)
    runs = np.split(y1, np.flatnonzero(np.isnan(y1)))
    got = [r[np.isfinite(r)].astype(int).tolist() for r in runs if np.isfinite(r).any()]
    assert got == [[1, 2, 3], [5, 6, 7, 8, 9]]
    np.testing.assert_allclose(x1[np.isfinite(x1)][:3], [1.1, 1.2, 1.3], atol=1e-6)
    _, y3 = _hot_segments(y, level, 3, t0=0.0, fs=10.0)
    assert y3[np.isfinite(y3)].astype(int).tolist() == [1, 2, 3]
    x0, _ = _hot_segments(y, np.zeros(10, np.int8), 1, 0.0, 10.0)
    assert x0.size == 0


def test_attribution_intensity_modes():
    a = np.zeros((12, 10), np.float32)
    a[0, 3] = 2.0
    a[1, 4] = -4.0
    pos = attribution_intensity(a, "positive", quantile=100)
    assert pos[0, 3] == 1.0 and pos[1, 4] == 0.0
    ab = attribution_intensity(a, "abs", quantile=100)
    assert ab[1, 4] == 1.0 and ab[0, 3] == pytest.approx(0.5)
    assert attribution_intensity(np.zeros((12, 5))).max() == 0.0


def test_spec_is_small_and_valid(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask, title="size")
    spec = fig.to_json()
    assert len(spec) < 400_000, len(spec)
    go.Figure(json.loads(spec))  # validates against the plotly schema
    assert len(fig.data) < 120


def test_calibration_and_labels(record):
    ecg, attr, mask = record
    fig = ecg_figure(ecg, FS, attr, mask)
    cal = [tr for tr in fig.data if tr.name == "calibration"]
    assert len(cal) == 1
    ys = [v for v in cal[0].y]
    pulses = [ys[i:i + 6] for i in range(0, len(ys), 7)]  # 6 points + a gap per pulse
    assert len(pulses) == 4  # one per row, 1 mV high, 0.2 s wide
    for pl in pulses:
        assert max(pl) - min(pl) == pytest.approx(1.0)
    xs = [v for v in cal[0].x[:6]]
    assert xs[3] - xs[2] == pytest.approx(0.2)
    texts = {a.text for a in fig.layout.annotations}
    for ld in LEADS:
        assert f"<b>{ld}</b>" in texts
    assert {"CLIN", "ATTR"} <= texts


def test_bad_shapes_raise(record):
    ecg, attr, _ = record
    with pytest.raises(DataError):
        ecg_figure(ecg[:11], FS)
    with pytest.raises(DataError):
        ecg_figure(ecg, FS, attr[:, :500])


def test_500hz_and_short_record():
    rng = np.random.default_rng(1)
    ecg = rng.standard_normal((12, 5000)).astype(np.float32) * 0.2
    fig = ecg_figure(ecg, 500.0, ecg, ecg > 0.3)
    tr = by_name(fig)["lead:V6"][0]
    assert len(tr.y) == 1250 and tr.x0 == pytest.approx(7.5) and tr.dx == pytest.approx(1 / 500)
    short = ecg_figure(ecg[:, :600], 100.0)  # 6 s: the last column is empty, nothing breaks
    assert len(by_name(short)["lead:V4"][0].y) == 0


def test_side_figures(record):
    ecg, attr, mask = record
    imp = lead_importance_figure(np.linspace(0, 1, 12))
    assert imp.data[0].name == "importance" and list(imp.data[0].y) == list(LEADS)
    drop = lead_drop_figure(np.linspace(-0.1, 0.2, 12))
    assert drop.data[0].name == "lead_drop" and len(drop.data[0].x) == 12


def test_fiducial_ticks_sit_on_each_leads_panel_at_the_marks():
    from xand.constants import FIDUCIAL_KINDS
    from xand.fiducials import Fiducials, kind_index
    from xand.figures.printout import FIDUCIAL_TICKS, ecg_figure

    fs, n = 100.0, 1000
    rows = []
    for r in (60, 300, 560, 820):
        row = np.full(len(FIDUCIAL_KINDS), np.nan)
        for k, off in {"P_on": -20, "QRS_on": -5, "R_peak": 0, "QRS_off": 5, "T_off": 30}.items():
            row[kind_index(k)] = r + off
        rows.append(row)
    fid = Fiducials(fs, n, [np.array(rows) for _ in range(12)], np.ones(12, bool), "test")
    ecg = np.zeros((12, n), np.float32)
    fig = ecg_figure(ecg, fs, fiducials=fid)
    tr = next(t for t in fig.data if t.name == "fiducials")
    texts = [t for t in tr.text if t]  # two points (a short vertical tick) per mark
    # a panel shows only the marks inside its own 2.5 s: lead I (0-2.5 s) holds the first beat only
    assert sorted({t for t in texts if t.startswith("I ")}) == ["I P_on 0.400 s", "I QRS_off 0.650 s",
                                                                "I QRS_on 0.550 s", "I T_off 0.900 s"]
    assert sum(t.startswith("I P_on") for t in texts) == 2
    assert {t.split()[1] for t in texts} == set(FIDUCIAL_TICKS)
    assert any(t.startswith("II QRS_on 5.550") for t in texts)  # the rhythm strip's beat at 5.6 s
    assert "fiducials" not in {t.name for t in ecg_figure(ecg, fs).data}


def test_caliper_reading_and_march_out():
    from xand.figures.printout import caliper_reading, ecg_figure, march_out

    r = caliper_reading(1.0, 1.8, -0.2, 1.3)
    assert r["dt_ms"] == pytest.approx(800.0) and r["rate_bpm"] == pytest.approx(75.0) and r["dmv"] == pytest.approx(1.5)
    assert caliper_reading(2.0, 2.0)["rate_bpm"] is None and caliper_reading(1.0, 2.0)["dmv"] is None
    fig = march_out(ecg_figure(np.zeros((12, 1000), np.float32), 100.0), 0.5, 0.8)
    lines = [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dash"]
    assert [round(s.x0, 2) for s in lines][:4] == [0.5, 1.3, 2.1, 2.9] and all(s.x0 <= 10.0 for s in lines)


@pytest.mark.parametrize("speed, gain", [(25.0, 10.0), (50.0, 10.0), (25.0, 20.0), (25.0, 5.0)])
def test_paper_speed_and_gain_keep_the_squares_square(speed, gain):
    from xand.figures.printout import PrintoutStyle, ecg_figure

    fig = ecg_figure(np.zeros((12, 1000), np.float32), 100.0,
                     style=PrintoutStyle(speed_mm_per_s=speed, gain_mm_per_mV=gain))
    xa, ya = fig.layout.xaxis, fig.layout.yaxis
    assert ya.scaleratio == pytest.approx(gain / speed)
    assert xa.minor.dtick == pytest.approx(1 / speed) and ya.minor.dtick == pytest.approx(1 / gain)  # 1 mm
    # a small square: 1 mm tall (1/gain mV) spans as many pixels as 1 mm wide (1/speed s)
    assert ya.scaleratio * (1 / gain) == pytest.approx(1 / speed)
    meta = fig.layout.meta
    assert (meta["speed_mm_per_s"], meta["gain_mm_per_mV"]) == (speed, gain)


def test_a_non_positive_speed_or_gain_is_refused():
    from xand.figures.printout import PrintoutStyle, ecg_figure

    with pytest.raises(DataError, match="paper speed"):
        ecg_figure(np.zeros((12, 1000), np.float32), 100.0, style=PrintoutStyle(gain_mm_per_mV=0))
