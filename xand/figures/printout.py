"""Plotly figures of the review viewer: the clinical 12-lead printout with CLIN/ATTR strips, lead
importance, lead-drop effects and a head-by-head comparison. Pure plotly (no streamlit), so the same
figures serve the app, notebooks and tests.

The printout follows the standard 12-lead layout (AHA/ACCF/HRS recommendations for the standardization
and interpretation of the ECG, Kligfield et al., Circulation 115:1306, 2007): three rows of four 2.5 s
segments (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6), each column showing its own quarter of the
10 s record, plus a 10 s lead II rhythm strip; paper speed 25 mm/s and gain 10 mm/mV, so one small square
(1 mm) is 0.04 s x 0.1 mV and one large square (5 mm) is 0.2 s x 0.5 mV.

Speed matters in the browser. The printout is one sheet of paper, i.e. one axis pair (rows of leads on
their own baselines), not one subplot per lead: in Chromium on the 2-core review machine the sheet drew
in 380 ms (median) against 1150 ms for the same content as 39 subplots (1,353 against 7,454 DOM nodes).
Every trace is SVG ``scatter`` (WebGL contexts run out when a page holds several figures), every ATTR
strip is one ``heatmap``, a CLIN mask is one filled scatter trace whose polygons are the merged runs of
the mask (never a shape per sample), the paper grid is the axes' own grid lines (major + minor ticks),
and the attribution colouring of the trace is three overlay traces (one per intensity level, all leads).
Arrays are float32, so plotly encodes them as compact base64 typed arrays; figures are built from plain
dicts in one validated ``go.Figure`` call (~10x faster than per-trace objects and ``update_layout``).

Trace names (``trace.name``) let tests and callers find things: ``lead:<L>`` (12), ``rhythm:II``,
``clin:<L>`` / ``clin:rhythm``, ``attr:<L>`` / ``attr:rhythm``, ``hot1``-``hot3`` (the trace recoloured
where attribution is high), ``calibration`` and ``separators``.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go

from xand.constants import LEADS, lead_index

#: The printout grid: rows of (lead, column) in clinical order.
PRINTOUT_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_LEAD = "II"
SEGMENT_S = 2.5

#: Attribution colour scale white -> yellow -> orange -> red (low -> high intensity).
ATTR_COLORSCALE = [[0.0, "#ffffff"], [0.33, "#ffe14d"], [0.66, "#ff8c1a"], [1.0, "#d7191c"]]
#: Colours of the trace overlay for intensity levels 1..3 (yellow-orange, orange, red).
HOT_COLORS = ("#f2b600", "#ff7b00", "#d7191c")
#: Intensity thresholds of those levels.
HOT_LEVELS = (0.35, 0.6, 0.8)
CLIN_COLOR = "rgba(33, 102, 172, 0.75)"
GRID_MAJOR = "#f19c9c"
GRID_MINOR = "#fbdcdc"
TRACE_COLOR = "#111111"

#: Paper constants: 25 mm/s and 10 mm/mV.
MM_PER_S = 25.0
MM_PER_MV = 10.0


@dataclass
class PrintoutStyle:
    """Display options of :func:`ecg_figure` (serialisable with ``dataclasses.asdict``).

    Attributes
    ----------
    paper_grid : draw the ECG-paper grid (1 mm minor / 5 mm major)
    speed_mm_per_s : paper speed, 25 (standard) or 50 mm/s (for fast rates and fine timing)
    gain_mm_per_mV : gain, 10 (standard), 5 (large voltages) or 20 mm/mV (small ones)
    calibration : draw a 1 mV x 0.2 s calibration pulse at the start of every row
    min_span_mV : smallest vertical span of a row of leads (mV); a row grows in 0.5 mV steps when one
        of its leads needs more, so every lead fits its row at the same 10 mm/mV gain
    px_per_mm : pixels per paper millimetre the figure height is sized for. The aspect ratio is locked
        (25 mm/s and 10 mm/mV at any width), so the sheet is drawn at this scale where the page is wide
        enough and scaled down otherwise, leaving room below it; a wider page leaves room to its right.
        3.3 fills Review's chart column in a 1600 px wide browser window (3.2 px/mm measured there)
    strip_mm : height of each CLIN / ATTR strip (paper millimetres)
    attr_mode : "abs" (|attribution|) or "positive" (evidence for the class only) for the colouring
    attr_quantile : intensity 1.0 is this quantile of the map (robust to a few extreme samples)
    """

    paper_grid: bool = True
    speed_mm_per_s: float = MM_PER_S
    gain_mm_per_mV: float = MM_PER_MV
    calibration: bool = True
    min_span_mV: float = 3.0
    px_per_mm: float = 3.3
    strip_mm: float = 3.5
    attr_mode: str = "positive"
    attr_quantile: float = 99.0


def attribution_intensity(attribution: np.ndarray, mode: str = "positive", quantile: float = 99.0) -> np.ndarray:
    """Attribution map scaled to display intensity in [0, 1], one scale for all leads.

    Parameters
    ----------
    attribution : (12, T) float attribution map (any unit, e.g. Integrated Gradients)
    mode : "abs" uses |attribution|; "positive" keeps only evidence for the class (negatives -> 0)
    quantile : percentile of the non-zero intensities mapped to 1.0 (clipped above); one scale for the
        whole map keeps leads comparable, as in the lead-wise saliency displays of Strodthoff et al.,
        IEEE JBHI 25:1519 (2021)

    Returns
    -------
    (12, T) float32 in [0, 1]
    """
    a = np.asarray(attribution, dtype=np.float64)
    if mode == "abs":
        a = np.abs(a)
    elif mode == "positive":
        a = np.clip(a, 0.0, None)
    else:
        from xand.errors import UnknownNameError

        raise UnknownNameError("attribution display mode", mode, ("abs", "positive"))
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    nz = a[a > 0]
    scale = float(np.percentile(nz, quantile)) if nz.size else 0.0
    if scale <= 0:
        return np.zeros(a.shape, dtype=np.float32)
    return np.clip(a / scale, 0.0, 1.0).astype(np.float32)


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """Runs of True in a 1-D boolean mask as ``(n_runs, 2)`` int [start, stop) sample indices."""
    m = np.asarray(mask, dtype=bool).ravel()
    if m.size == 0:
        return np.empty((0, 2), dtype=int)
    d = np.diff(np.concatenate(([0], m.view(np.int8), [0])))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def _rect_polygons(runs: np.ndarray, t0: float, fs: float, y0: float = 0.0,
                   y1: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """x, y (float32) of closed rectangles, one per run of samples [start, stop), each covering its
    samples' full width and followed by a NaN gap, for one ``fill="toself"`` trace."""
    r = np.asarray(runs, dtype=np.float64).reshape(-1, 2)
    xa = t0 + (r[:, 0] - 0.5) / fs
    xb = t0 + (r[:, 1] - 0.5) / fs
    gap = np.full(len(r), np.nan)
    xs = np.stack([xa, xb, xb, xa, xa, gap], axis=1).ravel().astype(np.float32)
    ys = np.tile(np.array([y0, y0, y1, y1, y0, np.nan]), len(r)).astype(np.float32)
    return xs, ys


def _hot_segments(y: np.ndarray, level: np.ndarray, k: int, t0: float, fs: float):
    """x, y of the trace parts whose line segments reach intensity level >= k (NaN-separated runs)."""
    if len(y) < 2:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    seg = np.maximum(level[:-1], level[1:]) >= k  # segment i joins samples i and i+1
    runs = mask_runs(seg)
    if len(runs) == 0:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    idx: list[np.ndarray] = []
    for a, b in runs:
        idx.append(np.arange(a, b + 1))
        idx.append(np.array([-1]))
    ii = np.concatenate(idx)
    xs = np.where(ii >= 0, t0 + ii / fs, np.nan).astype(np.float32)
    ys = np.where(ii >= 0, y[np.clip(ii, 0, None)], np.nan).astype(np.float32)
    return xs, ys


#: ``yaxis.scaleratio`` of the sheet: pixels per mV / pixels per s = (10 mm/mV) / (25 mm/s) = 0.4, i.e.
#: 1 mV spans as many pixels as 0.4 s, so a 0.04 s x 0.1 mV small square is as tall as it is wide.
SHEET_SCALERATIO = MM_PER_MV / MM_PER_S


def _sheet_axes(paper_grid: bool, t_lo: float, t_hi: float, y_lo: float, y_hi: float,
                speed: float = MM_PER_S, gain: float = MM_PER_MV) -> tuple[dict, dict]:
    """Axes of the paper sheet: the grid is the axes' own grid lines (0.2 s / 0.5 mV major, 0.04 s /
    0.1 mV minor), time labels every second.

    The aspect ratio is locked (``yaxis.scaleanchor = "x"``, ``scaleratio`` 0.4): 25 mm/s and 10 mm/mV
    at any page width, the squares square. The sheet takes the largest size that fits the figure
    (``constrain="domain"``: the axis with room to spare gives up part of its domain, towards the top
    left, instead of showing more paper); zooming magnifies a region of the sheet, both axes together.
    """
    mm_s, mm_mv = 1.0 / speed, 1.0 / gain  # one paper millimetre in s and in mV
    major = np.round(np.arange(0.0, t_hi + 1e-9, 5 * mm_s), 6)
    labels = [f"{t:g}" if abs(t - round(t)) < 1e-6 else "" for t in major]
    xa = dict(range=[t_lo, t_hi], zeroline=False, showline=False, ticks="outside", ticklen=3,
              tickfont=dict(size=10, color="#555"), title=dict(text="time (s)", standoff=2, font=dict(size=11)),
              tickmode="array", tickvals=major.tolist(), ticktext=labels, showgrid=False,
              constrain="domain", constraintoward="left")
    # Not fixedrange: a locked axis pair zooms together (with a fixed y, an x zoom would be undone).
    ya = dict(range=[y_lo, y_hi], zeroline=False, showticklabels=False, ticks="", fixedrange=False,
              showgrid=False, scaleanchor="x", scaleratio=gain / speed, constrain="domain",
              constraintoward="top")
    if paper_grid:
        xa.update(showgrid=True, gridcolor=GRID_MAJOR, gridwidth=1,
                  minor=dict(tickmode="linear", tick0=0.0, dtick=mm_s, showgrid=True, gridcolor=GRID_MINOR,
                             gridwidth=0.5, ticks=""))
        ya.update(showgrid=True, tickmode="linear", tick0=0.0, dtick=5 * mm_mv, gridcolor=GRID_MAJOR, gridwidth=1,
                  minor=dict(tickmode="linear", tick0=0.0, dtick=mm_mv, showgrid=True, gridcolor=GRID_MINOR,
                             gridwidth=0.5))
    return xa, ya


def _row_geometry(segments: list[np.ndarray], min_span: float) -> tuple[float, float]:
    """(span, height of the baseline above the band's bottom) in mV for one row of leads.

    Every lead of a row is drawn around one common baseline (its median: the isoelectric level of a
    2.5 s segment), as an electrocardiograph does; the span grows in 0.5 mV steps when a lead needs it.
    """
    up = max((float(np.max(s) - np.median(s)) if s.size else 0.0) for s in segments)
    down = max((float(np.median(s) - np.min(s)) if s.size else 0.0) for s in segments)
    margin = 0.3
    need = up + down + 2 * margin
    span = max(min_span, float(np.ceil(need / 0.5) * 0.5))
    base = margin + down + (span - need) / 2
    return span, base


def ecg_figure(
    ecg: np.ndarray,
    fs: float,
    attribution: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    title: str = "",
    paper_grid: bool = True,
    style: PrintoutStyle | None = None,
    height: int | None = None,
    fiducials: Any = None,
) -> go.Figure:
    """The clinical 12-lead printout with CLIN (clinical mask) and ATTR (attribution) strips per lead.

    One continuous sheet of ECG paper (a single axis pair: x = time in s, y = mV with each row of leads
    on its own baseline): rows I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6, each column showing its own
    2.5 s of the record, then the 10 s lead II rhythm strip. Under every row lie its CLIN and ATTR strips,
    aligned in time with the leads above them. One sheet keeps the browser quick (one set of grid lines,
    no per-lead subplots) and one zoom magnifies the whole sheet; the aspect ratio is locked (see
    ``_sheet_axes``), so a zoom box keeps the paper's proportions and the squares stay square.

    Parameters
    ----------
    ecg : (12, T) float mV, LEADS storage order (I, II, III, aVR, aVL, aVF, V1-V6), 10 s expected
        (shorter records fill the columns they reach)
    fs : sampling rate (Hz)
    attribution : (12, T) attribution map of the head or None; colours the ATTR strips and the trace
    mask : (12, T) bool clinical mask of the head or None; drawn as merged blue bands on the CLIN strips
    title : figure title
    paper_grid : draw the ECG paper (overrides ``style.paper_grid``)
    style : further display options (:class:`PrintoutStyle`)
    height : figure height in pixels (default: derived from the paper scale)
    fiducials : ``xand.fiducials.Fiducials`` of this ECG (any grid) or None; drawn as thin ticks on every
        lead at P on, QRS on, QRS off (J) and T off (trace ``fiducials``; hover names the point)

    Returns
    -------
    plotly Figure: 12 ``lead:<L>`` traces and ``rhythm:II`` (hover: time, mV, attribution), ``clin:<L>``
    / ``clin:rhythm`` (13, when ``mask`` is given) and ``attr:<L>`` / ``attr:rhythm`` heatmaps (13, when
    ``attribution`` is given), ``hot1..3`` (the trace recoloured where attribution is high, all leads in
    one trace per level), ``calibration`` and ``separators``. ``layout.meta["placement"]`` gives each
    lead's row, column, start time and baseline (mV on the sheet).
    """
    sty = replace(style or PrintoutStyle(), paper_grid=paper_grid)
    x = np.asarray(ecg, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(LEADS):
        from xand.errors import DataError

        raise DataError(None, f"ECG array has shape {x.shape}", f"(12, T) in LEADS order {', '.join(LEADS)}")
    n_t = x.shape[1]
    fs = float(fs)
    inten = level = None
    if attribution is not None:
        attribution = np.asarray(attribution)
        if attribution.shape != x.shape:
            from xand.errors import DataError

            raise DataError(None, f"attribution has shape {attribution.shape}", f"the ECG's shape {x.shape}")
        inten = attribution_intensity(attribution, sty.attr_mode, sty.attr_quantile)
        level = np.digitize(inten, HOT_LEVELS).astype(np.int8)  # 0..3
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            from xand.errors import DataError

            raise DataError(None, f"mask has shape {mask.shape}", f"the ECG's shape {x.shape}")

    seg_n = int(round(SEGMENT_S * fs))
    cal_s = 0.3 if sty.calibration else 0.05
    t_lo, t_hi = -cal_s, max(4 * SEGMENT_S, n_t / fs)

    # Panels: (name, lead, samples a..b) per row; the rhythm strip is the last row.
    rows: list[list[tuple[str, str, int, int]]] = []
    for leads in PRINTOUT_ROWS:
        rows.append([(f"lead:{ld}", ld, min(c * seg_n, n_t), min((c + 1) * seg_n, n_t))
                     for c, ld in enumerate(leads)])
    rows.append([(f"rhythm:{RHYTHM_LEAD}", RHYTHM_LEAD, 0, n_t)])

    speed, gain = float(sty.speed_mm_per_s), float(sty.gain_mm_per_mV)
    if speed <= 0 or gain <= 0:
        from xand.errors import DataError

        raise DataError(None, f"paper speed {speed} mm/s, gain {gain} mm/mV", "positive values (25/50, 5/10/20)")
    # strips and gaps keep their size on paper (mm) whatever the gain: in mV they scale with 1 / gain
    strip_h, gap_in, gap_row = sty.strip_mm / gain, 1.0 / gain, 6.0 / gain  # mV
    y = 0.0
    geometry = []
    for panels in rows:
        segs = [x[lead_index(ld), a:b] for _, ld, a, b in panels]
        span, base = _row_geometry(segs, sty.min_span_mV)
        top = y
        bottom = y - span
        clin = (bottom - gap_in - strip_h, bottom - gap_in)
        attr = (clin[0] - gap_in - strip_h, clin[0] - gap_in)
        geometry.append(dict(top=top, bottom=bottom, baseline=bottom + base, span=span, clin=clin, attr=attr))
        y = attr[0] - gap_row
    y_lo, y_hi = y + gap_row - 0.15, 0.15

    traces: list[dict] = []
    annotations: list[dict] = []
    shapes: list[dict] = []
    placement: dict[str, dict] = {}
    hot_x: list[list[np.ndarray]] = [[] for _ in HOT_LEVELS]
    hot_y: list[list[np.ndarray]] = [[] for _ in HOT_LEVELS]
    cal_x: list[float | None] = []
    cal_y: list[float | None] = []
    sep_x: list[float | None] = []
    sep_y: list[float | None] = []
    nan = np.array([np.nan], np.float32)

    for r, panels in enumerate(rows):
        g = geometry[r]
        for c, (name, lead, a, b) in enumerate(panels):
            li = lead_index(lead)
            seg = x[li, a:b]
            t0 = a / fs
            offset = g["baseline"] - (float(np.median(seg)) if seg.size else 0.0)
            ys = (seg + offset).astype(np.float32)
            strip = name.split(":", 1)[1] if name.startswith("lead:") else "rhythm"
            placement[strip] = dict(lead=lead, row=r, col=c, t0=t0, baseline=g["baseline"], offset=offset)
            if inten is not None:
                custom = np.stack([seg, inten[li, a:b]], axis=1).astype(np.float32)
                hover = (f"<b>{lead}</b> %{{x:.2f}} s<br>%{{customdata[0]:.2f}} mV"
                         "<br>attribution %{customdata[1]:.2f}<extra></extra>")
            else:
                custom = seg[:, None].astype(np.float32)
                hover = f"<b>{lead}</b> %{{x:.2f}} s<br>%{{customdata[0]:.2f}} mV<extra></extra>"
            traces.append(dict(type="scatter", x0=t0, dx=1.0 / fs, y=ys, mode="lines", name=name,
                               line=dict(color=TRACE_COLOR, width=1.1), customdata=custom,
                               hovertemplate=hover, showlegend=False))
            if level is not None:
                for k in range(1, len(HOT_LEVELS) + 1):
                    hx, hy = _hot_segments(ys, level[li, a:b], k, t0, fs)
                    if hx.size:
                        hot_x[k - 1] += [hx, nan]
                        hot_y[k - 1] += [hy, nan]
            if mask is not None:
                px_, py_ = _rect_polygons(mask_runs(mask[li, a:b]), t0, fs, *g["clin"])
                traces.append(dict(type="scatter", x=px_, y=py_, mode="lines", fill="toself",
                                   fillcolor=CLIN_COLOR, line=dict(width=0), name=f"clin:{strip}",
                                   hoverinfo="skip", showlegend=False))
            if inten is not None:
                a0, a1 = g["attr"]
                traces.append(dict(type="heatmap", z=inten[li, a:b][None, :], x0=t0, dx=1.0 / fs,
                                   y0=(a0 + a1) / 2, dy=a1 - a0, zmin=0.0, zmax=1.0,
                                   colorscale=ATTR_COLORSCALE, showscale=False, name=f"attr:{strip}",
                                   hovertemplate=f"{lead} %{{x:.2f}} s<br>attribution %{{z:.2f}}<extra></extra>"))
            label_x = t0 + 0.04 if c > 0 or not sty.calibration else 0.04
            annotations.append(dict(text=f"<b>{lead}</b>", x=label_x, y=g["top"] - 0.08, xref="x", yref="y",
                                    xanchor="left", yanchor="top", showarrow=False,
                                    font=dict(size=12, color="#111")))
            if c > 0:  # the short bar an electrocardiograph prints where the lead changes
                sep_x += [t0, t0, None]
                sep_y += [g["baseline"] - 0.25, g["baseline"] + 0.25, None]
        if sty.calibration:
            base = g["baseline"]
            cal_x += [-0.28, -0.24, -0.24, -0.04, -0.04, 0.0, None]
            cal_y += [base, base, base + 1.0, base + 1.0, base, base, None]
        # white ground under the strips (between the paper grid and the traces), with a thin frame
        for (s0, s1), label in ((g["clin"], "CLIN"), (g["attr"], "ATTR")):
            shapes.append(dict(type="rect", xref="x", yref="y", x0=t_lo, x1=t_hi, y0=s0, y1=s1,
                               fillcolor="#ffffff", line=dict(color="#bbbbbb", width=0.5), layer="between"))
            annotations.append(dict(text=label, x=0, xref="paper", y=(s0 + s1) / 2, yref="y", xanchor="right",
                                    yanchor="middle", showarrow=False, xshift=-3,
                                    font=dict(size=8, color="#555")))

    if fiducials is not None:
        traces.append(_fiducial_trace(fiducials, fs, n_t, rows, placement))
    for k in range(len(HOT_LEVELS)):
        if hot_x[k]:
            traces.append(dict(type="scatter", x=np.concatenate(hot_x[k]), y=np.concatenate(hot_y[k]),
                               mode="lines", name=f"hot{k + 1}", hoverinfo="skip", showlegend=False,
                               line=dict(color=HOT_COLORS[k], width=1.3 + 0.4 * (k + 1))))
    if cal_x:
        traces.append(dict(type="scatter", x=cal_x, y=cal_y, mode="lines", name="calibration",
                           line=dict(color=TRACE_COLOR, width=1.1), hoverinfo="skip", showlegend=False))
    if sep_x:
        traces.append(dict(type="scatter", x=sep_x, y=sep_y, mode="lines", name="separators",
                           line=dict(color=TRACE_COLOR, width=1.1), hoverinfo="skip", showlegend=False))

    xa, ya = _sheet_axes(sty.paper_grid, t_lo, t_hi, y_lo, y_hi, speed, gain)
    top_m, bot_m = (40.0 if title else 12.0), 40.0
    # a faster paper makes the sheet wider: the page shrinks it to its width, so the height follows
    fig_h = int(height or round((y_hi - y_lo) * gain * sty.px_per_mm * (MM_PER_S / speed) + top_m + bot_m))
    layout = dict(
        xaxis=xa, yaxis=ya, annotations=annotations, shapes=shapes, height=fig_h,
        margin=dict(l=36, r=8, t=top_m, b=bot_m),
        plot_bgcolor="#fffdfd" if sty.paper_grid else "#ffffff", paper_bgcolor="#ffffff",
        showlegend=False, hovermode="closest", dragmode="zoom",
        meta=dict(kind="ecg_printout", fs=fs, n_samples=n_t, gain_mm_per_mV=gain,
                  speed_mm_per_s=speed, row_spans_mV=[g["span"] for g in geometry],
                  placement=placement),
    )
    if title:
        layout["title"] = dict(text=title, x=0.01, xanchor="left", font=dict(size=14))
    # One validated construction from plain dicts: per-trace objects and update_layout() cost ~10x more.
    return go.Figure(dict(data=traces, layout=layout))


#: The fiducial points drawn on the trace, with their tick colours.
FIDUCIAL_TICKS: dict[str, str] = {"P_on": "#2e7d32", "QRS_on": "#1565c0", "QRS_off": "#6a1b9a", "T_off": "#c62828"}


def _fiducial_trace(fiducials: Any, fs: float, n_t: int, rows: list, placement: dict) -> dict:
    """One scatter of short vertical ticks (0.3 mV) at each lead's marks, inside that lead's panel."""
    from xand.fiducials import kind_index

    fid = fiducials if float(fiducials.fs) == fs else fiducials.resample(fs)
    xs: list[float | None] = []
    ys: list[float | None] = []
    text: list[str | None] = []
    for panels in rows:
        for name, lead, a, b in panels:
            strip = name.split(":", 1)[1] if name.startswith("lead:") else "rhythm"
            pl = placement[strip]
            li = lead_index(lead)
            beats = fid.beats[li]
            if not len(beats) or not fid.quality[li]:
                continue
            for kind in FIDUCIAL_TICKS:
                for pos in beats[:, kind_index(kind)]:
                    if not np.isfinite(pos) or not (a <= pos < b):
                        continue
                    t = float(pos) / fs
                    y0 = pl["baseline"]
                    xs += [t, t, None]
                    ys += [y0 - 0.15, y0 + 0.15, None]
                    text += [f"{lead} {kind} {t:.3f} s", f"{lead} {kind} {t:.3f} s", None]
    return dict(type="scatter", x=xs, y=ys, mode="lines", name="fiducials", text=text,
                hovertemplate="%{text}<extra></extra>", line=dict(color="#555", width=0.8), showlegend=False)


def caliper_reading(x0: float, x1: float, y0: float | None = None, y1: float | None = None) -> dict[str, Any]:
    """What a pair of calipers reads between two points of the printout (x in s, y in mV of the sheet).

    Returns ``{"dt_ms", "rate_bpm", "dmv"}``: the time difference, the rate it implies when it is one
    RR interval (60 000 / dt), and the amplitude difference (None without y). The sheet's y axis is mV at
    10 mm/mV, so a vertical distance on it is a voltage difference on any lead.
    """
    dt = abs(float(x1) - float(x0)) * 1000.0
    return {"dt_ms": dt, "rate_bpm": 60000.0 / dt if dt > 0 else None,
            "dmv": None if y0 is None or y1 is None else abs(float(y1) - float(y0))}


def march_out(fig: go.Figure, start_s: float, interval_s: float, n: int = 12) -> go.Figure:
    """``fig`` with dashed vertical lines at ``start_s + k * interval_s`` across the sheet (march-out of an
    RR interval: a regular rhythm lands every line on an R peak)."""
    if interval_s <= 0:
        return fig
    end = fig.layout.xaxis.range[1] if fig.layout.xaxis.range else start_s + n * interval_s
    k, shapes = 0, list(fig.layout.shapes or ())
    while k <= n and start_s + k * interval_s <= end:
        t = start_s + k * interval_s
        shapes.append(dict(type="line", xref="x", yref="paper", x0=t, x1=t, y0=0, y1=1,
                           line=dict(color="#1565c0", width=1, dash="dash")))
        k += 1
    fig.update_layout(shapes=shapes)
    return fig


def lead_importance_figure(importance: np.ndarray, title: str = "Lead importance",
                           height: int = 300) -> go.Figure:
    """Horizontal bar chart of per-lead importance (e.g. the share of |attribution| per lead).

    Parameters
    ----------
    importance : (12,) float in LEADS storage order
    """
    imp = np.asarray(importance, dtype=float).ravel()
    leads = list(LEADS)
    top = float(np.nanmax(imp)) if imp.size and np.isfinite(imp).any() else 0.0
    # marker colours as a list: plotly.js reads a typed (base64) array here as colour names
    bar = dict(type="bar", x=imp, y=leads, orientation="h", name="importance",
               marker=dict(color=np.nan_to_num(imp).tolist(), colorscale=ATTR_COLORSCALE, cmin=0, cmax=top or 1.0,
                           line=dict(color="#888", width=0.5)),
               hovertemplate="%{y}: %{x:.3f}<extra></extra>")
    layout = dict(title=dict(text=title, font=dict(size=13)), height=height,
                  margin=dict(l=40, r=10, t=34, b=28), yaxis=dict(autorange="reversed"),
                  plot_bgcolor="#ffffff", xaxis=dict(gridcolor="#eee"))
    return go.Figure(dict(data=[bar], layout=layout))


def lead_drop_figure(drop: np.ndarray, title: str = "Lead drop: change in probability",
                     height: int = 300) -> go.Figure:
    """Bar chart of the probability change when each lead is removed (occluded).

    Parameters
    ----------
    drop : (12,) float in LEADS storage order: p(full ECG) - p(ECG without that lead); positive means
        the lead supported the decision (lead occlusion as in Strodthoff et al., IEEE JBHI 2021)
    """
    d = np.asarray(drop, dtype=float).ravel()
    colors = np.where(d >= 0, "#d7191c", "#2c7bb6")
    bar = dict(type="bar", x=d, y=list(LEADS), orientation="h", name="lead_drop",
               marker=dict(color=colors.tolist()), hovertemplate="without %{y}: %{x:+.3f}<extra></extra>")
    layout = dict(title=dict(text=title, font=dict(size=13)), height=height,
                  margin=dict(l=40, r=10, t=34, b=28), yaxis=dict(autorange="reversed"),
                  plot_bgcolor="#ffffff", xaxis=dict(gridcolor="#eee", zerolinecolor="#999"))
    return go.Figure(dict(data=[bar], layout=layout))




def wave_heatmap_figure(table: np.ndarray, title: str = "Attribution per lead and wave",
                        segments: tuple[str, ...] = ("P", "PR", "QRS", "ST", "T", "TP"), height: int = 360,
                        value_label: str = "logit drop") -> go.Figure:
    """The 12-lead x wave table of a wave-level attribution (``xand.explain.waves.wave_table``) as a
    heatmap, leads in storage order top to bottom; empty cells (a lead without that wave) stay blank.

    Parameters
    ----------
    table : (12, len(segments)) float, NaN where undefined
    value_label : what the values are (``xand.explain.waves.wave_value_label``), the colour bar's title
    """
    z = np.asarray(table, dtype=float)
    finite = z[np.isfinite(z)]
    top = float(np.max(np.abs(finite))) if finite.size else 1.0
    hm = dict(type="heatmap", z=z.tolist(), x=list(segments), y=list(LEADS), zmin=-top or -1.0, zmax=top or 1.0,
              colorscale="RdBu", reversescale=True, name="waves", colorbar=dict(title=dict(text=value_label)),
              hovertemplate="%{y} %{x}: %{z:.3f}<extra></extra>")
    layout = dict(title=dict(text=title, font=dict(size=13)), height=height, margin=dict(l=40, r=10, t=34, b=28),
                  yaxis=dict(autorange="reversed"), plot_bgcolor="#ffffff")
    return go.Figure(dict(data=[hm], layout=layout))
