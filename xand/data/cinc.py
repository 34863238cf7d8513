"""PhysioNet/CinC Challenge 2020/2021 records and an a-priori SNOMED CT -> PTB-XL superclass map.

A Challenge record is a WFDB header ``<name>.hea`` plus a MATLAB v4 file ``<name>.mat`` holding one
int16 matrix ``val`` of shape (n_leads, n_samples) in digital units; the header gives per-lead gain,
baseline and units, and the labels as SNOMED CT codes in a ``# Dx: code,code,...`` comment.

The SNOMED map exists for zero-shot external validation of the PTB-XL heads (MI, STTC, CD, HYP) on
Georgia, Chapman-Shaoxing, Ningbo, ... It was fixed from the code meanings alone (the Challenge's
``dx_mapping_scored.csv`` / ``dx_mapping_unscored.csv`` names and the PTB-XL ``scp_statements.csv``
classes), before any model result was looked at, and it must not be tuned on results.

References
----------
Reyna MA et al. Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing in
Cardiology Challenge 2021. Computing in Cardiology 2021;48.
Perez Alday EA et al. Classification of 12-lead ECGs: the PhysioNet/Computing in Cardiology Challenge
2020. Physiol Meas 2020;41:124003.
Wagner P et al. PTB-XL, a large publicly available electrocardiography dataset. Sci Data 2020;7:154.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from xand.constants import EXCLUDED, HEADS, LEADS, NEGATIVE, N_LEADS, POSITIVE
from xand.data.matfile import load_val
from xand.data.header import check_signal_gains, checked_gains, declared_rate
from xand.errors import DataError

#: Largest decompressed 'val' a CinC record may hold (12 leads x 30 min at 1 kHz as int16 is 41 MB).
MAX_VAL_BYTES = 256 * 2**20

#: Sampling rates (Hz) that occur in the Challenge sources: 500 (CPSC, Georgia, Chapman-Shaoxing,
#: Ningbo, PTB-XL), 1000 (PTB), 257 (St Petersburg INCART).
CINC_RATES: tuple[int, ...] = (257, 500, 1000)

#: Physical units accepted in headers, as a factor to millivolts.
_UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}

#: Label column for "sinus rhythm and nothing else" (not a pathology head; see ``cinc_labels``).
NORM = "NORM"


# --------------------------------------------------------------------------------------------------
# SNOMED CT map
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SnomedEntry:
    """One SNOMED CT code of the Challenge label set and what it means for the PTB-XL heads.

    ``heads``: superclasses the code establishes (record positive). ``uncertain``: superclasses the
    code suggests without establishing (record excluded for that head unless another code makes it
    positive). ``ptbxl``: the PTB-XL statement(s) the code corresponds to.
    """

    code: int
    name: str
    abbreviation: str
    heads: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    ptbxl: str = ""


def _e(code: int, name: str, abbr: str, heads: tuple[str, ...] = (), uncertain: tuple[str, ...] = (),
       ptbxl: str = "") -> SnomedEntry:
    return SnomedEntry(code, name, abbr, heads, uncertain, ptbxl)


# Rules used to build the table (decided a priori, before any result):
# - Positive only for codes whose meaning is a PTB-XL *diagnostic* statement of that superclass
#   (scp_statements.csv, diagnostic == 1) or its direct synonym. Ischaemia without infarction is STTC,
#   as PTB-XL's ISC_* statements are.
# - Codes equivalent to PTB-XL *form* statements (STD_, STE_, INVT, QWAVE, VCLVH, LPR) are evidence
#   but not a diagnosis: in PTB-XL they never make a record positive, yet a record carrying them is not
#   a clean negative either. They make the head EXCLUDED, mirroring PTB-XL's pure-label policy
#   (uncertain statements exclude a record rather than count it as negative).
# - Rhythm codes, axis deviations, ectopy and anything of unclear class are left out: they neither
#   establish nor suggest a head, so they leave the head negative.
_TABLE: tuple[SnomedEntry, ...] = (
    # ---- NORM: the only Challenge code for a normal record is sinus rhythm ----
    _e(426783006, "sinus rhythm", "NSR", ("NORM",), ptbxl="SR (rhythm); NORM only when nothing else"),
    # ---- MI ----
    _e(164865005, "myocardial infarction", "MI", ("MI",), ptbxl="IMI, ASMI, ILMI, ALMI, LMI, PMI, ..."),
    _e(57054005, "acute myocardial infarction", "AMI", ("MI",), ptbxl="MI class (acute)"),
    _e(54329005, "anterior myocardial infarction", "AnMI", ("MI",), ptbxl="AMI"),
    _e(164867002, "old myocardial infarction", "OldMI", ("MI",), ptbxl="MI class (old)"),
    _e(164917005, "q wave abnormal", "QAb", uncertain=("MI",), ptbxl="QWAVE (form)"),
    _e(365413008, "poor R wave progression", "PRWP", uncertain=("MI",), ptbxl="none (sign of anterior MI)"),
    _e(164931005, "st elevation", "STE", uncertain=("MI", "STTC"), ptbxl="STE_ (form)"),
    _e(53741008, "coronary heart disease", "CHD", uncertain=("MI", "STTC"), ptbxl="none (clinical)"),
    # ---- STTC ----
    _e(164861001, "myocardial ischemia", "MIs", ("STTC",), ptbxl="ISC_"),
    _e(413444003, "acute myocardial ischemia", "AMIs", ("STTC",), ptbxl="ISC_ (ischaemia is STTC)"),
    _e(413844008, "chronic myocardial ischemia", "CMI", ("STTC",), ptbxl="ISC_"),
    _e(426434006, "anterior ischemia", "AnMIs", ("STTC",), ptbxl="ISCAN, ISCAS, ISCAL"),
    _e(425419005, "inferior ischaemia", "IIs", ("STTC",), ptbxl="ISCIN, ISCIL"),
    _e(425623009, "lateral ischaemia", "LIs", ("STTC",), ptbxl="ISCLA"),
    _e(428750005, "nonspecific st t abnormality", "NSSTTA", ("STTC",), ptbxl="NST_"),
    _e(55930002, "s t changes", "STC", ("STTC",), ptbxl="NST_"),
    _e(164930006, "st interval abnormal", "STIAb", ("STTC",), ptbxl="NST_"),
    _e(164934002, "t wave abnormal", "TAb", ("STTC",), ptbxl="NDT"),
    _e(111975006, "prolonged qt interval", "LQT", ("STTC",), ptbxl="LNGQT"),
    _e(429622005, "st depression", "STD", uncertain=("STTC",), ptbxl="STD_ (form)"),
    _e(704997005, "inferior ST segment depression", "ISTD", uncertain=("STTC",), ptbxl="STD_ (form)"),
    _e(59931005, "t wave inversion", "TInv", uncertain=("STTC",), ptbxl="INVT (form)"),
    _e(418818005, "brugada", "BRU", uncertain=("STTC", "CD"), ptbxl="none"),
    # ---- CD ----
    _e(6374002, "bundle branch block", "BBB", ("CD",), ptbxl="CRBBB/CLBBB/IRBBB/ILBBB"),
    _e(59118001, "right bundle branch block", "RBBB", ("CD",), ptbxl="CRBBB"),
    _e(713427006, "complete right bundle branch block", "CRBBB", ("CD",), ptbxl="CRBBB"),
    _e(713426002, "incomplete right bundle branch block", "IRBBB", ("CD",), ptbxl="IRBBB"),
    _e(164909002, "left bundle branch block", "LBBB", ("CD",), ptbxl="CLBBB"),
    _e(733534002, "complete left bundle branch block", "CLBBB", ("CD",), ptbxl="CLBBB"),
    _e(251120003, "incomplete left bundle branch block", "ILBBB", ("CD",), ptbxl="ILBBB"),
    _e(445118002, "left anterior fascicular block", "LAnFB", ("CD",), ptbxl="LAFB"),
    _e(445211001, "left posterior fascicular block", "LPFB", ("CD",), ptbxl="LPFB"),
    _e(698252002, "nonspecific intraventricular conduction disorder", "NSIVCB", ("CD",), ptbxl="IVCD"),
    _e(82226007, "diffuse intraventricular block", "DIB", ("CD",), ptbxl="IVCD"),
    _e(270492004, "1st degree av block", "IAVB", ("CD",), ptbxl="1AVB"),
    _e(195042002, "2nd degree av block", "IIAVB", ("CD",), ptbxl="2AVB"),
    _e(54016002, "mobitz type i wenckebach atrioventricular block", "MoI", ("CD",), ptbxl="2AVB"),
    _e(426183003, "mobitz type II atrioventricular block", "IIAVBII", ("CD",), ptbxl="2AVB"),
    _e(27885002, "complete heart block", "CHB", ("CD",), ptbxl="3AVB"),
    _e(233917008, "av block", "AVB", ("CD",), ptbxl="1AVB/2AVB/3AVB"),
    _e(204384007, "congenital incomplete atrioventricular heart block", "CIAHB", ("CD",), ptbxl="1AVB/2AVB"),
    _e(74390002, "wolff parkinson white pattern", "WPW", ("CD",), ptbxl="WPW"),
    _e(195060002, "ventricular pre excitation", "VPEx", ("CD",), ptbxl="WPW"),
    _e(164947007, "prolonged pr interval", "LPR", uncertain=("CD",), ptbxl="LPR (form)"),
    _e(10370003, "pacing rhythm", "PR", uncertain=("CD",), ptbxl="PACE (rhythm)"),
    _e(251266004, "ventricular pacing pattern", "VPP", uncertain=("CD",), ptbxl="PACE (rhythm)"),
    # ---- HYP ----
    _e(164873001, "left ventricular hypertrophy", "LVH", ("HYP",), ptbxl="LVH"),
    _e(89792004, "right ventricular hypertrophy", "RVH", ("HYP",), ptbxl="RVH"),
    _e(266249003, "ventricular hypertrophy", "VH", ("HYP",), ptbxl="LVH/RVH/SEHYP"),
    _e(67741000119109, "left atrial enlargement", "LAE", ("HYP",), ptbxl="LAO/LAE"),
    _e(253352002, "left atrial abnormality", "LAA", ("HYP",), ptbxl="LAO/LAE"),
    _e(446813000, "left atrial hypertrophy", "LAH", ("HYP",), ptbxl="LAO/LAE"),
    _e(446358003, "right atrial hypertrophy", "RAH", ("HYP",), ptbxl="RAO/RAE"),
    _e(253339007, "right atrial abnormality", "RAAb", ("HYP",), ptbxl="RAO/RAE"),
    _e(195126007, "atrial hypertrophy", "AH", ("HYP",), ptbxl="LAO/LAE or RAO/RAE"),
    _e(55827005, "left ventricular high voltage", "LVHV", uncertain=("HYP",), ptbxl="VCLVH (form)"),
    _e(370365005, "left ventricular strain", "LVS", uncertain=("HYP", "STTC"), ptbxl="none (LVH + ST-T)"),
    _e(67751000119106, "right atrial high voltage", "RAHV", uncertain=("HYP",), ptbxl="none (RAE criterion)"),
    _e(251223006, "tall p wave", "TPW", uncertain=("HYP",), ptbxl="none (RAE criterion)"),
    _e(251205003, "prolonged P wave", "PPW", uncertain=("HYP",), ptbxl="none (LAE criterion)"),
)

#: Every code of the table, by code.
SNOMED_TABLE: dict[int, SnomedEntry] = {e.code: e for e in _TABLE}

#: SNOMED CT code -> superclasses it establishes (``"NORM"`` for sinus rhythm, see ``cinc_labels``).
SNOMED_TO_HEAD: dict[int, tuple[str, ...]] = {e.code: e.heads for e in _TABLE if e.heads}

#: SNOMED CT code -> heads it suggests without establishing (they make that head EXCLUDED).
SNOMED_UNCERTAIN: dict[int, tuple[str, ...]] = {e.code: e.uncertain for e in _TABLE if e.uncertain}


def snomed_table() -> pd.DataFrame:
    """The SNOMED map as a table (code, name, abbreviation, positive heads, uncertain heads, PTB-XL)."""
    rows = [
        {"code": e.code, "name": e.name, "abbreviation": e.abbreviation,
         "positive": ", ".join(e.heads), "excluded": ", ".join(e.uncertain), "ptbxl": e.ptbxl}
        for e in _TABLE
    ]
    return pd.DataFrame(rows)


def cinc_labels(snomed_codes) -> dict[str, int]:
    """Per-head label status of one record from its SNOMED CT codes.

    Parameters
    ----------
    snomed_codes : iterable of int
        The record's ``# Dx:`` codes.

    Returns
    -------
    dict
        ``{head: status}`` for every head in ``HEADS`` plus ``"NORM"``. A head is POSITIVE (1) when a
        code establishes it (``SNOMED_TO_HEAD``), else EXCLUDED (-1) when a code only suggests it
        (``SNOMED_UNCERTAIN``), else NEGATIVE (0) -- the PTB-XL pure-label semantics.
        NORM is POSITIVE when sinus rhythm is the only code, NEGATIVE when any head is positive and
        EXCLUDED otherwise (the Challenge has no "normal ECG" code, so anything else is undecided).
        A record without codes is EXCLUDED everywhere.
    """
    codes = {int(c) for c in snomed_codes}
    if not codes:
        return {h: EXCLUDED for h in (*HEADS, NORM)}
    out: dict[str, int] = {}
    for head in HEADS:
        if any(head in SNOMED_TO_HEAD.get(c, ()) for c in codes):
            out[head] = POSITIVE
        elif any(head in SNOMED_UNCERTAIN.get(c, ()) for c in codes):
            out[head] = EXCLUDED
        else:
            out[head] = NEGATIVE
    norm_codes = {c for c, heads in SNOMED_TO_HEAD.items() if NORM in heads}
    if any(out[h] == POSITIVE for h in HEADS):
        out[NORM] = NEGATIVE
    elif codes <= norm_codes:
        out[NORM] = POSITIVE
    else:
        out[NORM] = EXCLUDED
    return out


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------

#: Challenge 2021 record-name prefix -> source database. Chapman-Shaoxing and Ningbo share ``JS`` and
#: are told apart by number (JS00001-JS10646 Chapman-Shaoxing, JS10647 onward Ningbo).
SOURCE_OF_PREFIX: dict[str, str] = {
    "A": "CPSC", "Q": "CPSC-Extra", "I": "INCART", "S": "PTB", "HR": "PTB-XL", "E": "Georgia",
    "JS": "Chapman-Shaoxing",
}
_JS_LAST_CHAPMAN = 10646
_NAME_RE = re.compile(r"^([A-Za-z]+)(\d+)$")


def source_of(record_name: str) -> str:
    """Source database of a Challenge record from its name (``"unknown"`` for an unknown prefix)."""
    m = _NAME_RE.match(record_name)
    if not m:
        return "unknown"
    prefix, number = m.group(1).upper(), int(m.group(2))
    source = SOURCE_OF_PREFIX.get(prefix, "unknown")
    if prefix == "JS" and number > _JS_LAST_CHAPMAN:
        return "Ningbo"
    return source


# --------------------------------------------------------------------------------------------------
# Reading one record
# --------------------------------------------------------------------------------------------------

@dataclass
class CincHeader:
    """What a Challenge ``.hea`` says, validated (no signal read)."""

    record_name: str
    header_path: Path
    mat_path: Path
    fs: float
    n_samples: int
    leads: tuple[str, ...]          # as in the file
    gain: np.ndarray                # (n_leads,) digital units per physical unit
    baseline: np.ndarray            # (n_leads,)
    to_mv: np.ndarray               # (n_leads,) physical unit -> mV factor
    checksum: list[int | None]
    snomed: list[int]
    age: float | None
    sex: int | None                 # 0 male, 1 female (PTB-XL convention), None unknown
    comments: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return source_of(self.record_name)


@dataclass
class CincRecord:
    """One Challenge record: ``signal`` (12, T) float32 mV in ``LEADS`` order at ``fs`` Hz."""

    record_name: str
    signal: np.ndarray
    fs: float
    snomed: list[int]
    age: float | None
    sex: int | None
    n_samples: int
    leads: tuple[str, ...] = LEADS
    path: Path | None = None

    @property
    def source(self) -> str:
        return source_of(self.record_name)

    @property
    def labels(self) -> dict[str, int]:
        return cinc_labels(self.snomed)


def _base_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix.lower() in (".hea", ".mat") else p


def _comment_value(comments: list[str], key: str) -> str | None:
    for c in comments:
        name, sep, value = c.partition(":")
        if sep and name.strip().lstrip("#").strip().lower() == key.lower():
            return value.strip()
    return None


def _parse_dx(hea: Path, comments: list[str]) -> list[int]:
    raw = _comment_value(comments, "Dx")
    if raw is None:
        raise DataError(hea, "has no '# Dx:' comment", "a '# Dx: <SNOMED CT code>,...' line")
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise DataError(hea, f"unparseable Dx {raw!r}", "comma-separated SNOMED CT codes (digits)")
    return [int(p) for p in parts]


def _parse_age(raw: str | None) -> float | None:
    try:
        age = float(raw) if raw is not None else None
    except ValueError:
        return None
    return age if age is not None and np.isfinite(age) and age >= 0 else None


def _parse_sex(raw: str | None) -> int | None:
    key = (raw or "").strip().lower()
    return {"male": 0, "m": 0, "female": 1, "f": 1}.get(key)


def read_cinc_header(path: str | Path) -> CincHeader:
    """Read and validate a Challenge header (``<name>.hea``; ``path`` with or without extension).

    Raises
    ------
    DataError
        Missing or unreadable header, missing ``.mat``, not 12 standard leads, unknown sampling rate,
        bad gain or units, missing or unparseable ``Dx``.
    """
    import wfdb

    base = _base_path(path)
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise DataError(hea, "header file not found", "a WFDB header <record>.hea")
    try:
        record_line = next(
            (ln.split() for ln in hea.read_text(errors="replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")), [])
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on malformed lines
        raise DataError(hea, f"unreadable WFDB header ({type(exc).__name__}: {exc})") from exc

    declared_rate(hea, record_line)  # wfdb reads a missing or negative rate as 250 Hz
    check_signal_gains(hea, hea.read_text(errors="replace"))
    fs = float(header.fs)
    if int(round(fs)) not in CINC_RATES or abs(fs - round(fs)) > 1e-6:
        raise DataError(hea, f"unknown sampling rate {fs:g} Hz", f"one of {CINC_RATES} Hz")
    if header.n_sig != N_LEADS:
        raise DataError(hea, f"has {header.n_sig} leads", f"{N_LEADS} leads ({', '.join(LEADS)})")
    leads = tuple(header.sig_name or ())
    if sorted(s.lower() for s in leads) != sorted(s.lower() for s in LEADS):
        raise DataError(hea, f"lead names {list(leads)}", f"the 12 standard leads {', '.join(LEADS)}")
    if not header.sig_len or header.sig_len <= 0:
        raise DataError(hea, f"signal length {header.sig_len}", "a positive number of samples")
    files = set(header.file_name or ())
    if len(files) != 1:
        raise DataError(hea, f"signal files {sorted(files)}", "one <record>.mat for all leads")
    mat = hea.parent / files.pop()
    if mat.suffix.lower() != ".mat":
        raise DataError(hea, f"signal file {mat.name}", "a MATLAB .mat signal file (Challenge format)")
    if not mat.is_file():
        raise DataError(mat, "signal file not found", f"the .mat named in {hea.name}")

    gain = checked_gains(hea, header.adc_gain, header.sig_name)
    units = [(u or "mV").strip().lower() for u in (header.units or ["mV"] * N_LEADS)]
    bad_units = sorted({u for u in units if u not in _UNIT_TO_MV})
    if bad_units:
        raise DataError(hea, f"units {bad_units}", "mV, uV or V")
    comments = list(header.comments or [])
    return CincHeader(
        record_name=header.record_name, header_path=hea, mat_path=mat, fs=fs,
        n_samples=int(header.sig_len), leads=leads, gain=gain,
        baseline=np.asarray(header.baseline, dtype=np.float64),
        to_mv=np.array([_UNIT_TO_MV[u] for u in units]),
        checksum=list(header.checksum or [None] * N_LEADS),
        snomed=_parse_dx(hea, comments), age=_parse_age(_comment_value(comments, "Age")),
        sex=_parse_sex(_comment_value(comments, "Sex")), comments=comments,
    )


def read_cinc(path: str | Path, verify_checksum: bool = True) -> CincRecord:
    """Read one Challenge record as ``(12, T)`` float32 mV in ``LEADS`` order.

    Parameters
    ----------
    path : record path with or without ``.hea`` / ``.mat``
    verify_checksum : compare the per-lead 16-bit sample checksums of the header with the data
        (catches corrupt or mismatched ``.mat`` files)

    Raises
    ------
    DataError
        Anything ``read_cinc_header`` rejects, an unreadable or truncated ``.mat``, a ``val`` of the
        wrong shape, non-finite samples or a checksum mismatch.
    """
    hdr = read_cinc_header(path)
    val = load_val(hdr.mat_path, hdr.mat_path, (N_LEADS, hdr.n_samples), max_bytes=MAX_VAL_BYTES)
    expected = (N_LEADS, hdr.n_samples)
    if val.shape != expected:
        raise DataError(hdr.mat_path, f"'val' has shape {val.shape}",
                        f"{expected} from {hdr.header_path.name}")
    if not np.issubdtype(val.dtype, np.number):
        raise DataError(hdr.mat_path, f"'val' has dtype {val.dtype}", "numeric samples")
    if not np.all(np.isfinite(val)):
        bad = int(np.count_nonzero(~np.isfinite(val)))
        raise DataError(hdr.mat_path, f"{bad} non-finite samples (NaN/inf)", "finite samples")
    if verify_checksum and np.issubdtype(val.dtype, np.integer):
        # WFDB checksum: 16-bit signed sum of the digital samples of each lead.
        sums = ((val.astype(np.int64).sum(axis=1) + 32768) % 65536) - 32768
        for i, (got, want) in enumerate(zip(sums, hdr.checksum)):
            if want is not None and int(got) != int(want):
                raise DataError(hdr.mat_path, f"lead {hdr.leads[i]} checksum {int(got)}",
                                f"{int(want)} from {hdr.header_path.name}: the file is corrupt or mismatched")
    phys = (val.astype(np.float64) - hdr.baseline[:, None]) / hdr.gain[:, None] * hdr.to_mv[:, None]
    order = [[s.lower() for s in hdr.leads].index(lead.lower()) for lead in LEADS]
    signal = np.ascontiguousarray(phys[order], dtype=np.float32)
    return CincRecord(
        record_name=hdr.record_name, signal=signal, fs=hdr.fs, snomed=hdr.snomed, age=hdr.age,
        sex=hdr.sex, n_samples=hdr.n_samples, path=hdr.header_path,
    )


def resample(ecg: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling of ``ecg (12, T) mV`` from ``fs_in`` to ``fs_out`` Hz (float32 out)."""
    from scipy.signal import resample_poly

    if fs_in == fs_out:
        return np.asarray(ecg, dtype=np.float32)
    ratio = Fraction(float(fs_out) / float(fs_in)).limit_denominator(10000)
    out = resample_poly(ecg, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------------

class CincFolder:
    """A folder (searched recursively) of Challenge records, e.g. ``training/georgia``.

    Bad records never stop iteration: they are reported in ``.skipped`` as ``(record, reason)`` and
    counted in ``.n_skipped``. Nothing is ever written into the folder.

    Parameters
    ----------
    data_dir : folder containing ``*.hea`` (+ ``*.mat``) files, at any depth
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DataError(self.data_dir, "folder not found", "a folder of CinC .hea/.mat records")
        self.skipped: list[tuple[str, str]] = []
        self._paths: dict[str, Path] = {}
        for hea in sorted(self.data_dir.rglob("*.hea"), key=lambda p: (p.stem, str(p))):
            name = hea.stem
            if name in self._paths:
                self._skip(name, f"duplicate record name: {hea} and {self._paths[name]}")
                continue
            self._paths[name] = hea
        if not self._paths:
            raise DataError(self.data_dir, "contains no .hea records", "CinC Challenge .hea + .mat files")

    def _skip(self, name: str, reason: str) -> None:
        if (name, reason) not in self.skipped:
            self.skipped.append((name, reason))

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def records(self) -> list[str]:
        """Record names, sorted."""
        return sorted(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, name: str) -> Path:
        if name not in self._paths:
            raise DataError(self.data_dir / name, "no such record in the folder", "one of .records")
        return self._paths[name]

    def read(self, name: str) -> CincRecord:
        """The full record at its native rate (raises ``DataError`` when it is bad)."""
        return read_cinc(self.path(name))

    def __iter__(self) -> Iterator[CincRecord]:
        """Good records in name order; bad ones are added to ``.skipped``."""
        for name in self.records:
            try:
                yield read_cinc(self._paths[name])
            except DataError as exc:
                self._skip(name, str(exc))

    def load(self, name: str, fs: float = 100) -> np.ndarray:
        """Record ``name`` as ``(12, T')`` float32 mV resampled to ``fs`` Hz (polyphase filter)."""
        rec = self.read(name)
        return resample(rec.signal, rec.fs, fs)

    def labels(self, check_signals: bool = False) -> pd.DataFrame:
        """One row per good record, indexed by ``record_name``.

        Columns: ``MI, STTC, CD, HYP, NORM`` (1/0/-1, see ``cinc_labels``), ``source``, ``fs``,
        ``n_samples``, ``age``, ``sex``, ``snomed`` (comma-separated codes). Only headers are read
        unless ``check_signals`` (then every ``.mat`` is read and validated too).
        """
        rows = []
        for name in self.records:
            try:
                hdr = read_cinc_header(self._paths[name])
                if check_signals:
                    read_cinc(self._paths[name])
            except DataError as exc:
                self._skip(name, str(exc))
                continue
            rows.append({"record_name": name, **cinc_labels(hdr.snomed), "source": hdr.source,
                         "fs": hdr.fs, "n_samples": hdr.n_samples, "age": hdr.age, "sex": hdr.sex,
                         "snomed": ",".join(str(c) for c in hdr.snomed)})
        columns = ["record_name", *HEADS, NORM, "source", "fs", "n_samples", "age", "sex", "snomed"]
        return pd.DataFrame(rows, columns=columns).set_index("record_name")

    def label_counts(self) -> pd.DataFrame:
        """Per source and head: number of positive / negative / excluded records."""
        df = self.labels()
        rows = []
        for (source, sub) in df.groupby("source"):
            for head in (*HEADS, NORM):
                rows.append({"source": source, "head": head,
                             "pos": int((sub[head] == POSITIVE).sum()),
                             "neg": int((sub[head] == NEGATIVE).sum()),
                             "excluded": int((sub[head] == EXCLUDED).sum())})
        return pd.DataFrame(rows, columns=["source", "head", "pos", "neg", "excluded"])
