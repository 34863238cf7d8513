"""A verdict: one reviewer's judgement of one head on one ECG, its vocabularies and limits, and the
normalised reviewer names (NFKC, case-folded, one script) agreement statistics rely on."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

from xand.constants import HEADS, LEADS
from xand.errors import UnknownNameError, XandError

#: Verdict vocabularies (stored as these strings).
PREDICTION_VALUES: tuple[str, ...] = ("agree", "disagree")


PLAUSIBLE_VALUES: tuple[str, ...] = ("yes", "partly", "no")


#: Verdict fields on which agreement is computed, with their categories.
AGREEMENT_FIELDS: dict[str, tuple[str, ...]] = {"prediction": PREDICTION_VALUES, "plausible": PLAUSIBLE_VALUES}


MAX_REVIEWER_CHARS = 100


MAX_NOTE_CHARS = 10_000


#: Columns of the verdict tables returned by the store, in this order.
COLUMNS: tuple[str, ...] = (
    "dataset", "ecg_id", "head", "reviewer", "revision", "prediction", "plausible", "leads", "start_s",
    "end_s", "note", "run_id", "method", "probability", "saved_at",
)


class ReviewError(XandError, ValueError):
    """A verdict is invalid (empty reviewer, bad time span, ...) or the review database cannot be used."""


@dataclass(frozen=True)
class Verdict:
    """One reviewer's verdict on one head of one ECG.

    Attributes
    ----------
    dataset : the dataset's name (e.g. ``"ptbxl"``, ``"demo"``); ``ecg_id`` is unique within it
    ecg_id : the record's id (PTB-XL ``ecg_id``)
    head : pathology head, one of :data:`xand.constants.HEADS`
    reviewer : the reviewer's name (non-empty, surrounding spaces removed)
    prediction : ``"agree"`` or ``"disagree"`` with the model's decision
    plausible : is the attribution clinically plausible: ``"yes"``, ``"partly"`` or ``"no"``
    leads : leads of the region the reviewer would point to (names of :data:`xand.constants.LEADS`,
        any case; stored in storage order), empty for none
    start_s, end_s : time span of that region in seconds from the record's start (both or neither;
        ``end_s > start_s >= 0``)
    note : free text
    run_id, method, probability : context: the model run, attribution method and probability shown
    revision, saved_at : set by the store (1 for the first save of a key; UTC time of the save)
    """

    dataset: str
    ecg_id: int
    head: str
    reviewer: str
    prediction: str
    plausible: str
    leads: tuple[str, ...] = ()
    start_s: float | None = None
    end_s: float | None = None
    note: str = ""
    run_id: str | None = None
    method: str | None = None
    probability: float | None = None
    revision: int | None = None
    saved_at: datetime | None = None

    def validated(self) -> "Verdict":
        """This verdict with normalised fields; raises :class:`ReviewError` / ``UnknownNameError``."""
        dataset = str(self.dataset or "").strip()
        if not dataset:
            raise ReviewError("the dataset name is empty (expected e.g. 'ptbxl' or 'demo')")
        try:
            ecg_id = int(self.ecg_id)
            ok = not isinstance(self.ecg_id, bool) and ecg_id >= 0 and float(self.ecg_id) == ecg_id
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ReviewError(f"ecg_id {self.ecg_id!r} is not a record id (expected a non-negative integer)")
        if self.head not in HEADS:
            raise UnknownNameError("head", str(self.head), HEADS)
        reviewer = canonical_reviewer(self.reviewer)
        if not reviewer:
            raise ReviewError("the reviewer name is empty (expected the name of the person reviewing)")
        if len(reviewer) > MAX_REVIEWER_CHARS:
            raise ReviewError(f"the reviewer name has {len(reviewer)} characters "
                              f"(expected at most {MAX_REVIEWER_CHARS})")
        if self.prediction not in PREDICTION_VALUES:
            raise UnknownNameError("prediction verdict", str(self.prediction), PREDICTION_VALUES)
        if self.plausible not in PLAUSIBLE_VALUES:
            raise UnknownNameError("plausibility verdict", str(self.plausible), PLAUSIBLE_VALUES)
        leads = normalise_leads(self.leads)
        start, end = _span(self.start_s, self.end_s)
        note = str(self.note or "").strip()
        if len(note) > MAX_NOTE_CHARS:
            raise ReviewError(f"the note has {len(note)} characters (expected at most {MAX_NOTE_CHARS})")
        prob = None if self.probability is None else float(self.probability)
        if prob is not None and not (0.0 <= prob <= 1.0):
            raise ReviewError(f"probability {prob} is outside [0, 1]")
        return replace(self, dataset=dataset, ecg_id=ecg_id, reviewer=reviewer, leads=leads, start_s=start,
                       end_s=end, note=note, probability=prob,
                       run_id=_opt_str(self.run_id), method=_opt_str(self.method))


def _scripts(text: str) -> set[str]:
    """The writing systems of the letters of ``text`` (LATIN, CYRILLIC, GREEK, ...)."""
    out = set()
    for ch in text:
        if ch.isalpha():
            try:
                out.add(unicodedata.name(ch).split()[0])
            except ValueError:  # an unnamed code point
                out.add("UNKNOWN")
    return out


def canonical_reviewer(name: object) -> str:
    """A reviewer's name as stored: Unicode NFKC (full-width and compatibility forms folded), whitespace
    collapsed. A name mixing Latin, Cyrillic or Greek letters is refused: "Dr Аlice" with a Cyrillic A
    looks like "Dr Alice" and would file verdicts under a look-alike (Unicode TR 39, mixed-script
    confusables). Letter case is settled by the store (the first spelling of a name is kept)."""
    text = " ".join(unicodedata.normalize("NFKC", str(name or "")).split())
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in text):
        raise ReviewError("the reviewer name holds control or invisible characters (expected a plain name)")
    mixed = _scripts(text) & {"LATIN", "CYRILLIC", "GREEK"}
    if len(mixed) > 1:
        raise ReviewError(f"the reviewer name mixes {' and '.join(sorted(s.title() for s in mixed))} letters "
                          "(a look-alike of another name?); expected one script")
    return text


def normalise_leads(leads: Iterable[str] | str | None) -> tuple[str, ...]:
    """Lead names (any case, a list or a comma-separated string) as canonical names in storage order."""
    if leads is None:
        return ()
    if isinstance(leads, str):
        leads = [p for p in leads.split(",")]
    by_lower = {lead.lower(): lead for lead in LEADS}
    chosen = set()
    for name in leads:
        name = str(name).strip()
        if not name:
            continue
        if name.lower() not in by_lower:
            raise UnknownNameError("lead", name, LEADS)
        chosen.add(by_lower[name.lower()])
    return tuple(lead for lead in LEADS if lead in chosen)


def _span(start, end) -> tuple[float | None, float | None]:
    if start is None and end is None:
        return None, None
    if start is None or end is None:
        raise ReviewError(f"time span has only one end (start={start}, end={end}); "
                          "expected both start and end in seconds, or neither")
    start, end = float(start), float(end)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ReviewError(f"time span {start}-{end} s is not finite")
    if start < 0:
        raise ReviewError(f"time span starts at {start} s (expected >= 0 s from the record's start)")
    if end <= start:
        raise ReviewError(f"time span ends at {end} s, not after its start {start} s "
                          "(expected end > start)")
    return start, end


def _opt_str(v) -> str | None:
    v = None if v is None else str(v).strip()
    return v or None


def verdict_from_row(row: pd.Series | dict) -> Verdict:
    """A :class:`Verdict` from one row of :meth:`ReviewStore.current_verdicts` / ``history``."""
    r = dict(row)

    def opt(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    saved = r.get("saved_at")
    return Verdict(
        dataset=r["dataset"], ecg_id=int(r["ecg_id"]), head=r["head"], reviewer=r["reviewer"],
        prediction=r["prediction"], plausible=r["plausible"],
        leads=tuple(p for p in str(r.get("leads") or "").split(",") if p),
        start_s=opt(r.get("start_s")), end_s=opt(r.get("end_s")), note=r.get("note") or "",
        run_id=opt(r.get("run_id")), method=opt(r.get("method")), probability=opt(r.get("probability")),
        revision=int(r["revision"]), saved_at=None if saved is None else pd.Timestamp(saved).to_pydatetime(),
    )
