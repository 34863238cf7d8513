"""Review progress and inter-reviewer agreement: Cohen's kappa (Cohen 1960) per head and pair of reviewers
on the records both reviewed, beside the raw percent agreement and the number of shared records.

References
----------
Cohen J. A coefficient of agreement for nominal scales. Educational and Psychological Measurement
20(1):37-46, 1960. doi:10.1177/001316446002000104
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from xand.constants import HEADS
from xand.errors import UnknownNameError
from xand.reviews.verdict import (
    AGREEMENT_FIELDS,
    PLAUSIBLE_VALUES,
    PREDICTION_VALUES,
    ReviewError,
)


def progress_table(current: pd.DataFrame) -> pd.DataFrame:
    """Records reviewed per head and reviewer.

    Parameters
    ----------
    current : current verdicts (:meth:`ReviewStore.current_verdicts`)

    Returns
    -------
    One row per (head, reviewer): ``records`` (distinct records judged), ``agree``, ``disagree``,
    ``plausible_yes``, ``plausible_partly``, ``plausible_no``, ``edited`` (keys saved more than once),
    ``last_saved`` (UTC). Heads in :data:`HEADS` order, reviewers alphabetical.
    """
    cols = ["head", "reviewer", "records", *PREDICTION_VALUES, *[f"plausible_{v}" for v in PLAUSIBLE_VALUES],
            "edited", "last_saved"]
    if current.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (head, reviewer), g in current.groupby(["head", "reviewer"], sort=False):
        row = {"head": head, "reviewer": reviewer, "records": g[["dataset", "ecg_id"]].drop_duplicates().shape[0]}
        row.update({v: int((g["prediction"] == v).sum()) for v in PREDICTION_VALUES})
        row.update({f"plausible_{v}": int((g["plausible"] == v).sum()) for v in PLAUSIBLE_VALUES})
        row["edited"] = int((g["revision"] > 1).sum())
        row["last_saved"] = g["saved_at"].max()
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    order = {h: i for i, h in enumerate(HEADS)}
    return (out.assign(_h=out["head"].map(order)).sort_values(["_h", "reviewer"]).drop(columns="_h")
            .reset_index(drop=True))


@dataclass
class Agreement:
    """Agreement of two reviewers on one head and one verdict field.

    ``kappa`` is Cohen's kappa (Cohen 1960), ``percent`` the raw share of identical verdicts (0-100), both
    on the ``n`` records both reviewed; None with ``reason`` when undefined.
    """

    head: str
    field: str
    reviewer_a: str
    reviewer_b: str
    n: int
    percent: float | None
    kappa: float | None
    reason: str | None = None


def cohen_kappa(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> tuple[float | None, str | None]:
    """Cohen's kappa of two raters' labels of the same items: ``(kappa, None)`` or ``(None, reason)``.

    kappa = (p_o - p_e) / (1 - p_e), p_o observed agreement, p_e agreement expected by chance from each
    rater's marginal frequencies (Cohen 1960; computed by ``sklearn.metrics.cohen_kappa_score``).
    Undefined with fewer than 2 items, or when p_e = 1 (both raters used one and the same category for
    every item, so agreement beyond chance cannot be measured).
    """
    n = len(a)
    if n != len(b):
        raise ReviewError(f"two raters with {n} and {len(b)} labels (expected the same items)")
    if n < 2:
        return None, f"{n} shared record{'s' if n != 1 else ''} (Cohen's kappa needs at least 2)"
    pa = pd.Series(list(a)).value_counts(normalize=True)
    pb = pd.Series(list(b)).value_counts(normalize=True)
    p_e = float(sum(pa.get(c, 0.0) * pb.get(c, 0.0) for c in categories))
    if p_e >= 1.0 - 1e-12:
        return None, f"both reviewers answered '{a[0]}' for all {n} shared records (chance agreement is 1)"
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(list(a), list(b), labels=list(categories))), None


def agreement_table(current: pd.DataFrame, fields: Sequence[str] = tuple(AGREEMENT_FIELDS)) -> pd.DataFrame:
    """Inter-reviewer agreement per head: every pair of reviewers, on the records both reviewed.

    Parameters
    ----------
    current : current verdicts (:meth:`ReviewStore.current_verdicts`); a record is ``(dataset, ecg_id)``
    fields : verdict fields to compare (keys of :data:`AGREEMENT_FIELDS`)

    Returns
    -------
    One row per (head, field, reviewer pair) with columns of :class:`Agreement`: ``n`` shared records,
    ``percent`` raw agreement (0-100), ``kappa`` Cohen's kappa (Cohen 1960), ``reason`` when undefined
    (fewer than 2 shared records, or a single category used throughout).
    """
    cols = list(Agreement.__dataclass_fields__)
    for f in fields:
        if f not in AGREEMENT_FIELDS:
            raise UnknownNameError("agreement field", f, tuple(AGREEMENT_FIELDS))
    if current.empty:
        return pd.DataFrame(columns=cols)
    rows: list[Agreement] = []
    heads = [h for h in HEADS if h in set(current["head"])]
    for head in heads:
        g = current[current["head"] == head]
        by_reviewer = {r: d.set_index(["dataset", "ecg_id"]) for r, d in g.groupby("reviewer")}
        for ra, rb in itertools.combinations(sorted(by_reviewer), 2):
            da, db = by_reviewer[ra], by_reviewer[rb]
            shared = da.index.intersection(db.index).sort_values()
            for f in fields:
                a = da.loc[shared, f].tolist()
                b = db.loc[shared, f].tolist()
                n = len(shared)
                if n < 2:
                    reason = ("no records reviewed by both" if n == 0
                              else "1 shared record (agreement needs at least 2)")
                    rows.append(Agreement(head, f, ra, rb, n, None, None, reason))
                    continue
                pct = 100.0 * sum(x == y for x, y in zip(a, b)) / n
                kappa, reason = cohen_kappa(a, b, AGREEMENT_FIELDS[f])
                rows.append(Agreement(head, f, ra, rb, n, pct, kappa, reason))
    return pd.DataFrame([asdict(r) for r in rows], columns=cols)
