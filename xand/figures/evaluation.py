"""Plotly figures of the Evaluate page: ROC and precision-recall curves with the operating point at the
validation-tuned threshold, confusion matrices, a reliability diagram, score distributions per head and
runs side by side. Pure plotly (no streamlit); the data come from ``xand.evaluation``
(``evaluate_predictions``, ``runs_comparison``), so a figure shows exactly what the tables say.

Style as ``xand.figures.printout``: figures are built from plain dicts in one ``go.Figure`` call, SVG traces only
(a page holds several figures; WebGL contexts run out). Trace names are for the reader's legend; each
trace's ``meta`` says what it is, so that tests and callers can find it: ``roc:<HEAD>``, ``pr:<HEAD>``,
``op:<HEAD>`` (operating point), ``chance``, ``prevalence:<HEAD>``, ``cm:<HEAD>``, ``cal:<HEAD>``, ``ideal``,
``hist:<HEAD>:neg|pos``, ``run:<name>:<value>``.

References
----------
Fawcett T., An introduction to ROC analysis, Pattern Recognition Letters 27(8) 2006.
Saito T., Rehmsmeier M., The precision-recall plot is more informative than the ROC plot when evaluating
binary classifiers on imbalanced datasets, PLoS ONE 10(3) 2015 (the PR baseline is the prevalence).
Niculescu-Mizil A., Caruana R., Predicting good probabilities with supervised learning, ICML 2005
(reliability diagrams).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

#: One colour per head, the same in every figure of the page.
HEAD_COLORS: dict[str, str] = {"MI": "#d62728", "STTC": "#1f77b4", "CD": "#2ca02c", "HYP": "#9467bd"}
_FALLBACK = ("#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
POS_COLOR, NEG_COLOR = "#d7191c", "#2c7bb6"
_AXIS = dict(gridcolor="#eee", zerolinecolor="#ccc", linecolor="#999")


def head_color(head: str, k: int = 0) -> str:
    return HEAD_COLORS.get(head, _FALLBACK[k % len(_FALLBACK)])


def _layout(title: str, height: int, legend_below: bool = True, **kw: Any) -> dict:
    out = dict(title=dict(text=title, font=dict(size=14)), height=height, plot_bgcolor="#ffffff",
               margin=dict(l=55, r=15, t=45, b=45), **kw)
    if legend_below:  # under the x-axis title, in a margin of its own (plotly does not reserve one)
        out["height"] = height + 100
        out["margin"]["b"] = 150  # room for three rows of legend in a half-width column
        out["legend"] = dict(orientation="h", x=0, y=0, xref="container", yref="container", yanchor="bottom")
    return out


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "undefined" if v is None or not np.isfinite(v) else format(v, fmt)


def roc_figure(evals: dict[str, dict[str, Any]], title: str = "ROC curves", height: int = 420) -> go.Figure:
    """ROC curve of every head, each with its operating point at the validation-tuned threshold.

    Parameters
    ----------
    evals : ``xand.evaluation.evaluate_predictions`` output (``curves``, ``metrics``, ``operating_point``)
    """
    data: list[dict] = [dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name="chance", meta="chance",
                             line=dict(color="#999", dash="dot", width=1), hoverinfo="skip")]
    for k, (head, e) in enumerate(evals.items()):
        c, m, op = e["curves"], e["metrics"], e["operating_point"]
        if c["fpr"] is None:
            continue
        ci = m.get("auc_ci")
        label = f"{head} AUC {_f(m['auc'])}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        data.append(dict(type="scatter", x=c["fpr"], y=c["tpr"], mode="lines", name=label, meta=f"roc:{head}",
                         legendgroup=head, line=dict(color=head_color(head, k), width=2),
                         customdata=c["roc_thresholds"],
                         hovertemplate=f"{head}<br>1 - specificity %{{x:.3f}}<br>sensitivity %{{y:.3f}}"
                                       "<br>threshold %{customdata:.3f}<extra></extra>"))
        if op["fpr"] is not None and op["tpr"] is not None:
            data.append(dict(type="scatter", x=[op["fpr"]], y=[op["tpr"]], mode="markers",
                             name=f"{head} at threshold", meta=f"op:{head}", legendgroup=head, showlegend=False,
                             marker=dict(color=head_color(head, k), size=10, symbol="circle-open",
                                         line=dict(width=2.5)),
                             hovertemplate=f"{head} at threshold {m['threshold']:.3f}<br>sensitivity "
                                           "%{y:.3f}, specificity " + _f(m["specificity"]) + "<extra></extra>"))
    layout = _layout(title, height, xaxis=dict(title="1 − specificity (false-positive rate)", range=[0, 1], **_AXIS),
                     yaxis=dict(title="sensitivity (true-positive rate)", range=[0, 1.02], **_AXIS))
    return go.Figure(dict(data=data, layout=layout))


def pr_figure(evals: dict[str, dict[str, Any]], title: str = "Precision-recall curves",
              height: int = 420) -> go.Figure:
    """Precision-recall curve of every head with its operating point and its prevalence (the PR curve of
    a classifier without skill, Saito & Rehmsmeier 2015)."""
    data: list[dict] = []
    for k, (head, e) in enumerate(evals.items()):
        c, m, op = e["curves"], e["metrics"], e["operating_point"]
        if c["precision"] is None:
            continue
        col = head_color(head, k)
        data.append(dict(type="scatter", x=c["recall"], y=c["precision"], mode="lines",
                         name=f"{head} AP {_f(m['pr_auc'])}", meta=f"pr:{head}", legendgroup=head,
                         line=dict(color=col, width=2, shape="hv"),
                         hovertemplate=f"{head}<br>recall %{{x:.3f}}<br>precision %{{y:.3f}}<extra></extra>"))
        data.append(dict(type="scatter", x=[0, 1], y=[c["prevalence"]] * 2, mode="lines", meta=f"prevalence:{head}",
                         name=f"{head} prevalence {c['prevalence']:.2f}", legendgroup=head, showlegend=False,
                         line=dict(color=col, dash="dot", width=1), hoverinfo="skip"))
        if op["precision"] is not None and op["recall"] is not None:
            data.append(dict(type="scatter", x=[op["recall"]], y=[op["precision"]], mode="markers",
                             meta=f"op:{head}", name=f"{head} at threshold", legendgroup=head, showlegend=False,
                             marker=dict(color=col, size=10, symbol="circle-open", line=dict(width=2.5)),
                             hovertemplate=f"{head} at threshold {m['threshold']:.3f}<br>recall %{{x:.3f}}, "
                                           "precision %{y:.3f}<extra></extra>"))
    layout = _layout(title, height, xaxis=dict(title="recall (sensitivity)", range=[0, 1], **_AXIS),
                     yaxis=dict(title="precision (PPV)", range=[0, 1.02], **_AXIS))
    return go.Figure(dict(data=data, layout=layout))


def confusion_figure(evals: dict[str, dict[str, Any]], title: str = "Confusion matrices at the "
                     "validation-tuned threshold", height: int = 300) -> go.Figure:
    """One 2 x 2 confusion matrix per head (rows: true label, columns: decision), counts and row shares."""
    heads = list(evals)
    n = max(len(heads), 1)
    gap = 0.06
    width = (1 - gap * (n - 1)) / n
    data: list[dict] = []
    layout = _layout(title, height, legend_below=False)
    layout["margin"] = dict(l=70, r=15, t=70, b=40)
    annotations = []
    for k, head in enumerate(heads):
        c, m = evals[head]["metrics"]["confusion"], evals[head]["metrics"]
        z = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=float)
        rows = z.sum(axis=1, keepdims=True)
        share = np.divide(z, rows, out=np.zeros_like(z), where=rows > 0)
        text = [[f"{int(z[i, j])}<br>({share[i, j]:.0%})" for j in range(2)] for i in range(2)]
        ax = "" if k == 0 else str(k + 1)
        data.append(dict(type="heatmap", z=share, x=["negative", "positive"], y=["negative", "positive"],
                         text=text, texttemplate="%{text}", name=head, meta=f"cm:{head}", zmin=0, zmax=1,
                         showscale=False,
                         colorscale=[[0, "#f7fbff"], [1, "#08519c"]], xaxis=f"x{ax}", yaxis=f"y{ax}",
                         customdata=z, hovertemplate="true %{y}, decided %{x}: %{customdata:.0f}<extra></extra>"))
        x0 = k * (width + gap)
        layout[f"xaxis{ax}"] = dict(domain=[x0, x0 + width], title="decision", side="bottom", anchor=f"y{ax}")
        layout[f"yaxis{ax}"] = dict(domain=[0, 1], title="true label" if k == 0 else None, anchor=f"x{ax}",
                                    autorange="reversed", showticklabels=k == 0)
        annotations.append(dict(text=f"<b>{head}</b> sens {_f(m['sensitivity'], '.2f')} · spec "
                                     f"{_f(m['specificity'], '.2f')} · thr {m['threshold']:.2f}",
                                x=x0 + width / 2, y=1.02, xref="paper", yref="paper", showarrow=False,
                                xanchor="center", yanchor="bottom", font=dict(size=11)))
    layout["annotations"] = annotations
    return go.Figure(dict(data=data, layout=layout))


def calibration_figure(evals: dict[str, dict[str, Any]], title: str = "Calibration (reliability diagram)",
                       height: int = 420) -> go.Figure:
    """Observed fraction of positives against mean predicted probability per bin, every head (marker
    size grows with the bin's record count), with the diagonal of perfect calibration."""
    data: list[dict] = [dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name="ideal", meta="ideal",
                             line=dict(color="#999", dash="dot", width=1), hoverinfo="skip")]
    for k, (head, e) in enumerate(evals.items()):
        cal = e["calibration"]
        if not len(cal):
            continue
        n = cal["n"].to_numpy(dtype=float)
        size = 6 + 14 * np.sqrt(n / n.max())
        brier, ece = cal.attrs.get("brier"), cal.attrs.get("ece")
        data.append(dict(type="scatter", x=cal["p_mean"].to_numpy(), y=cal["frac_pos"].to_numpy(),
                         mode="lines+markers", name=f"{head} (Brier {_f(brier)}, ECE {_f(ece)})", meta=f"cal:{head}",
                         line=dict(color=head_color(head, k), width=1.5),
                         marker=dict(size=size.tolist(), color=head_color(head, k)), customdata=n,
                         hovertemplate=f"{head}<br>mean predicted %{{x:.3f}}<br>observed %{{y:.3f}}"
                                       "<br>n = %{customdata:.0f}<extra></extra>"))
    layout = _layout(title, height, xaxis=dict(title="mean predicted probability", range=[0, 1], **_AXIS),
                     yaxis=dict(title="observed fraction of positives", range=[0, 1.02], **_AXIS))
    return go.Figure(dict(data=data, layout=layout))


def score_distribution_figure(evals: dict[str, dict[str, Any]], bins: int = 20, title: str =
                              "Score distributions (share of each class per probability bin)",
                              height: int = 320) -> go.Figure:
    """Histograms of the probabilities per head, negatives and positives apart (each normalised to its
    class, so a rare class stays visible), with the head's threshold as a vertical line."""
    heads = list(evals)
    n = max(len(heads), 1)
    gap = 0.05
    width = (1 - gap * (n - 1)) / n
    data: list[dict] = []
    layout = _layout(title, height, barmode="overlay", bargap=0.02)
    shapes, annotations = [], []
    edges = np.linspace(0, 1, bins + 1)
    for k, head in enumerate(heads):
        e = evals[head]
        y, p, thr = e["y"], e["p"], e["metrics"]["threshold"]
        ax = "" if k == 0 else str(k + 1)
        for cls, label, color in ((0, "neg", NEG_COLOR), (1, "pos", POS_COLOR)):
            vals = p[y == cls]
            counts = np.histogram(vals, bins=edges)[0]
            share = counts / max(len(vals), 1)
            data.append(dict(type="bar", x=(edges[:-1] + edges[1:]) / 2, y=share, width=1 / bins,
                             name=f"{'negative' if cls == 0 else 'positive'} ({len(vals)})",
                             meta=f"hist:{head}:{label}", legendgroup=label, showlegend=k == 0,
                             marker=dict(color=color, opacity=0.55), customdata=counts, xaxis=f"x{ax}",
                             yaxis=f"y{ax}",
                             hovertemplate=f"{head} {label}<br>p %{{x:.2f}}: %{{customdata}} records "
                                           "(%{y:.0%})<extra></extra>"))
        x0 = k * (width + gap)
        layout[f"xaxis{ax}"] = dict(domain=[x0, x0 + width], range=[0, 1], title="probability", anchor=f"y{ax}",
                                    **_AXIS)
        layout[f"yaxis{ax}"] = dict(domain=[0, 1], anchor=f"x{ax}", tickformat=".0%",
                                    title="share of class" if k == 0 else None, **_AXIS)
        shapes.append(dict(type="line", x0=thr, x1=thr, y0=0, y1=1, xref=f"x{ax}", yref=f"y{ax} domain",
                           line=dict(color="#333", dash="dash", width=1)))
        annotations.append(dict(text=f"<b>{head}</b> (thr {thr:.2f})", x=x0 + width / 2, y=1.02, xref="paper",
                                yref="paper", showarrow=False, xanchor="center", yanchor="bottom",
                                font=dict(size=11)))
    layout["shapes"], layout["annotations"] = shapes, annotations
    return go.Figure(dict(data=data, layout=layout))


def runs_figure(long: "Any", values: tuple[str, ...] = ("val_auc", "test_dagger"),
                title: str = "Runs side by side", height: int = 360) -> go.Figure:
    """Grouped bars of ``values`` per head, one colour per run (``xand.evaluation.runs_comparison``)."""
    from xand.constants import HEADS

    df = long.dropna(subset=["head"])
    heads = [h for h in HEADS if h in set(df["head"])] + sorted(set(df["head"]) - set(HEADS))
    label = {"val_auc": "Val AUC", "test_dagger": "Test†"}
    palette = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
    data = []
    for k, run in enumerate(dict.fromkeys(df["run"])):
        sub = df[df["run"] == run].set_index("head")
        for j, v in enumerate(values):
            yv = [sub[v].get(h) if h in sub.index else None for h in heads]
            yv = [None if y is None or not np.isfinite(float(y)) else float(y) for y in yv]
            data.append(dict(type="bar", x=heads, y=yv, name=f"{run} · {label.get(v, v)}", meta=f"run:{run}:{v}",
                             offsetgroup=f"{k}-{j}",  # one bar per (run, value) in each head's group
                             marker=dict(color=palette[k % len(palette)], opacity=1.0 if j == 0 else 0.55,
                                         pattern=dict(shape="" if j == 0 else "/")),
                             hovertemplate=f"{run}<br>%{{x}} {label.get(v, v)} %{{y:.3f}}<extra></extra>"))
    layout = _layout(title, height, barmode="group",
                     yaxis=dict(title="AUC", range=[0, 1.0], **_AXIS), xaxis=dict(title="head", **_AXIS))
    return go.Figure(dict(data=data, layout=layout))


__all__ = ["HEAD_COLORS", "head_color", "roc_figure", "pr_figure", "confusion_figure", "calibration_figure",
           "score_distribution_figure", "runs_figure"]
