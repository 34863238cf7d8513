"""Masks per finding: where the ECG evidence of one SCP statement lies, beside the superclass masks.

The superclass masks (``xand.delineation.masks.MASK_TABLE``) give every CD ECG the QRS, but first-degree
AV block (a CD statement) lives in the PR interval, and an inferior MI in II, III and aVF, not in V2.
``FINDING_MASKS`` maps a PTB-XL diagnostic statement to the intervals and leads its criteria read:

* MI by territory (contiguous lead groups of the Fourth Universal Definition of MI, Thygesen et al. 2018,
  Circulation 138:e618): QRS (Q waves) and ST-T in the territory's leads; injury (INJ*): the ST-T.
* ST-T statements (Rautaharju et al. 2009, Circulation 119:e241): the ST-T, in the territory's leads
  for ischaemia (ISC*), on every lead otherwise; long QT: QRS onset to T offset.
* Conduction (Surawicz et al. 2009, Circulation 119:e235): AV blocks: the P wave and PR interval of each
  conducted beat (a P wave coupled to no QRS, the non-conducted beat of second- and third-degree block, is
  dropped by the delineation's order rules and so is not in the mask: a known gap); right
  bundle branch block: the QRS in V1, V2, I and V6 (rsR', wide S); left: I, aVL, V1, V5, V6;
  fascicular blocks: the limb leads (frontal axis); IVCD: every lead; WPW: P offset to QRS offset (short
  PR, delta wave).
* Hypertrophy (Hancock et al. 2009, Circulation 119:e251): LVH: QRS voltage in I, aVL, V1-V3, V5, V6
  (Sokolow-Lyon, Cornell) and ST-T strain in I, aVL, V5, V6; RVH: QRS in I, V1, V2, V5, V6; atrial
  enlargement: the P wave in II and V1 (left), II, III, aVF and V1 (right).

Every region is built from the same fiducials and rules as the superclass masks (never invented);
``finding_mask`` of a statement without an entry raises ``UnknownNameError`` listing those with one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xand.constants import LEADS, N_LEADS, lead_index
from xand.delineation.masks import MaskInterval, resolve_marks
from xand.errors import UnknownNameError
from xand.fiducials import Fiducials

INFERIOR = ("II", "III", "aVF")
LATERAL = ("I", "aVL", "V5", "V6")
ANTEROSEPTAL = ("V1", "V2", "V3", "V4")
ANTERIOR = ("V2", "V3", "V4")
ANTEROLATERAL = ("I", "aVL", "V3", "V4", "V5", "V6")
POSTERIOR_RECIPROCAL = ("V1", "V2", "V3")  # no posterior leads on a 12-lead: tall R and ST depression here
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")

QRS = MaskInterval("QRS", "QRS_on", "QRS_off")
STT = MaskInterval("ST-T", "J", "T_off")
T_WAVE = MaskInterval("T wave", "T_on", "T_off")
P_WAVE = MaskInterval("P wave", "P_on", "P_off")
PR = MaskInterval("P wave and PR interval", "P_on", "QRS_on")
QT = MaskInterval("QT interval", "QRS_on", "T_off")
PRE_EXCITATION = MaskInterval("PR segment and QRS (delta wave)", "P_off", "QRS_off")


@dataclass(frozen=True)
class FindingMask:
    """Where one statement's evidence lies: ``regions`` pairs an interval with its leads (None: all 12)."""

    code: str
    head: str
    description: str
    regions: tuple[tuple[MaskInterval, tuple[str, ...] | None], ...]


def _mi(code: str, what: str, leads: tuple[str, ...], injury: bool = False) -> FindingMask:
    regions = ((STT, leads),) if injury else ((QRS, leads), (STT, leads))
    return FindingMask(code, "MI", what, regions)


def _table() -> dict[str, FindingMask]:
    rows = [
        _mi("IMI", "inferior MI", INFERIOR),
        _mi("ASMI", "anteroseptal MI", ANTEROSEPTAL),
        _mi("AMI", "anterior MI", ANTERIOR),
        _mi("ALMI", "anterolateral MI", ANTEROLATERAL),
        _mi("LMI", "lateral MI", LATERAL),
        _mi("ILMI", "inferolateral MI", INFERIOR + LATERAL),
        _mi("IPMI", "inferoposterior MI", INFERIOR + POSTERIOR_RECIPROCAL),
        _mi("IPLMI", "inferoposterolateral MI", INFERIOR + POSTERIOR_RECIPROCAL + ("V5", "V6")),
        _mi("PMI", "posterior MI", POSTERIOR_RECIPROCAL),
        _mi("INJAS", "subendocardial injury, anteroseptal", ANTEROSEPTAL, injury=True),
        _mi("INJAL", "subendocardial injury, anterolateral", ANTEROLATERAL, injury=True),
        _mi("INJIN", "subendocardial injury, inferior", INFERIOR, injury=True),
        _mi("INJLA", "subendocardial injury, lateral", LATERAL, injury=True),
        _mi("INJIL", "subendocardial injury, inferolateral", INFERIOR + LATERAL, injury=True),
        FindingMask("ISCAL", "STTC", "ischaemia, anterolateral", ((STT, ANTEROLATERAL),)),
        FindingMask("ISCIN", "STTC", "ischaemia, inferior", ((STT, INFERIOR),)),
        FindingMask("ISCIL", "STTC", "ischaemia, inferolateral", ((STT, INFERIOR + LATERAL),)),
        FindingMask("ISCAS", "STTC", "ischaemia, anteroseptal", ((STT, ANTEROSEPTAL),)),
        FindingMask("ISCLA", "STTC", "ischaemia, lateral", ((STT, LATERAL),)),
        FindingMask("ISCAN", "STTC", "ischaemia, anterior", ((STT, ANTERIOR),)),
        FindingMask("ISC_", "STTC", "ischaemic ST-T changes", ((STT, None),)),
        FindingMask("NST_", "STTC", "non-specific ST changes", ((STT, None),)),
        FindingMask("NDT", "STTC", "non-diagnostic T abnormalities", ((T_WAVE, None),)),
        FindingMask("DIG", "STTC", "digitalis effect", ((STT, None),)),
        FindingMask("EL", "STTC", "electrolyte abnormality (ST-T; U waves are not delineated)", ((STT, None),)),
        FindingMask("ANEUR", "STTC", "ventricular aneurysm (persistent ST elevation)", ((STT, None),)),
        FindingMask("LNGQT", "STTC", "long QT", ((QT, None),)),
        FindingMask("1AVB", "CD", "first-degree AV block", ((PR, None),)),
        FindingMask("2AVB", "CD", "second-degree AV block", ((PR, None),)),
        FindingMask("3AVB", "CD", "third-degree AV block", ((PR, None),)),
        FindingMask("CRBBB", "CD", "complete right bundle branch block", ((QRS, ("I", "V1", "V2", "V6")),)),
        FindingMask("IRBBB", "CD", "incomplete right bundle branch block", ((QRS, ("I", "V1", "V2", "V6")),)),
        FindingMask("CLBBB", "CD", "complete left bundle branch block", ((QRS, ("I", "aVL", "V1", "V5", "V6")),)),
        FindingMask("ILBBB", "CD", "incomplete left bundle branch block", ((QRS, ("I", "aVL", "V1", "V5", "V6")),)),
        FindingMask("LAFB", "CD", "left anterior fascicular block", ((QRS, LIMB),)),
        FindingMask("LPFB", "CD", "left posterior fascicular block", ((QRS, LIMB),)),
        FindingMask("IVCD", "CD", "non-specific intraventricular conduction disturbance", ((QRS, None),)),
        FindingMask("WPW", "CD", "Wolff-Parkinson-White", ((PRE_EXCITATION, None),)),
        FindingMask("LVH", "HYP", "left ventricular hypertrophy",
                    ((QRS, ("I", "aVL", "V1", "V2", "V3", "V5", "V6")), (STT, LATERAL))),
        FindingMask("RVH", "HYP", "right ventricular hypertrophy", ((QRS, ("I", "V1", "V2", "V5", "V6")),)),
        FindingMask("SEHYP", "HYP", "septal hypertrophy", ((QRS, ("V1", "V2", "V5", "V6")),)),
        FindingMask("LAO/LAE", "HYP", "left atrial overload / enlargement", ((P_WAVE, ("II", "V1")),)),
        FindingMask("RAO/RAE", "HYP", "right atrial overload / enlargement", ((P_WAVE, ("II", "III", "aVF", "V1")),)),
    ]
    return {r.code: r for r in rows}


#: SCP statement -> where its evidence lies (see the module docstring).
FINDING_MASKS: dict[str, FindingMask] = _table()


def finding_mask(fiducials: Fiducials, code: str, n_samples: int | None = None, fs: float | None = None,
                 require_quality: bool = True) -> np.ndarray:
    """``(12, T)`` bool mask of statement ``code``'s evidence (same conventions as ``clinical_mask``)."""
    if code not in FINDING_MASKS:
        raise UnknownNameError("SCP statement with a finding mask", code, tuple(FINDING_MASKS))
    if fs is not None and fs != fiducials.fs:
        fiducials = fiducials.resample(fs)
    T = int(fiducials.n_samples if n_samples is None else n_samples)
    mask = np.zeros((N_LEADS, T), dtype=bool)
    for interval, leads in FINDING_MASKS[code].regions:
        rows = range(N_LEADS) if leads is None else [lead_index(x) for x in leads]
        for li in rows:
            beats = fiducials.beats[li]
            if len(beats) == 0 or (require_quality and not fiducials.quality[li]):
                continue
            marks = resolve_marks(beats, fiducials.fs)
            s, e = marks[interval.start], marks[interval.end]
            for b in np.flatnonzero(np.isfinite(s) & np.isfinite(e) & (e >= s)):
                lo, hi = max(int(round(s[b])), 0), min(int(round(e[b])), T - 1)
                if hi >= lo:
                    mask[li, lo:hi + 1] = True
    return mask


def findings_with_masks(scp_codes: dict[str, float], head: str | None = None,
                        min_likelihood: float = 100.0) -> list[str]:
    """The statements of a record that have a finding mask, most likely first: PTB-XL's likelihood
    (0-100) at least ``min_likelihood`` (default 100, the pure-label policy's positives: 0-99 is
    uncertain there); only ``head``'s when given."""
    out = [(c, float(v)) for c, v in scp_codes.items()
           if c in FINDING_MASKS and float(v) >= min_likelihood
           and (head is None or FINDING_MASKS[c].head == head)]
    return [c for c, _ in sorted(out, key=lambda cv: (-cv[1], cv[0]))]


def finding_table_markdown() -> str:
    """``FINDING_MASKS`` as a markdown table (the README's table is generated from this)."""
    lines = ["| statement | head | finding | region: leads |", "| --- | --- | --- | --- |"]
    for f in FINDING_MASKS.values():
        where = "; ".join(f"{iv.label}: {', '.join(leads) if leads else 'all leads'}" for iv, leads in f.regions)
        lines.append(f"| {f.code} | {f.head} | {f.description} | {where} |")
    return "\n".join(lines)


assert all(lead in LEADS for f in FINDING_MASKS.values() for _, leads in f.regions for lead in (leads or ()))
__all__ = ["FINDING_MASKS", "FindingMask", "finding_mask", "finding_table_markdown", "findings_with_masks"]
