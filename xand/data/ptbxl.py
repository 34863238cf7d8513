"""PTB-XL reader: metadata, WFDB records, pure per-head labels and patient-level splits.

Reads a PTB-XL folder exactly as published on PhysioNet (Wagner et al. 2020): ``ptbxl_database.csv``,
``scp_statements.csv`` and ``records100/`` and/or ``records500/`` (WFDB, format 16, mV). Records are
returned as ``(12, T)`` float32 mV in ``LEADS`` order; the working rate is 100 Hz (12 x 1000).

Labels follow the diagnostic superclasses of ``scp_statements.csv`` (``diagnostic == 1``,
``diagnostic_class``) with the XAND *pure-label* policy per head (see ``pure_labels``). Splits use the
patient-level ``strat_fold`` recommended by Wagner et al. 2020 and Strodthoff et al. 2021: folds 1-8 train,
9 validation, 10 test.

References
----------
Wagner P., Strodthoff N., Bousseljot R.-D. et al. PTB-XL, a large publicly available electrocardiography
dataset. Scientific Data 7:154 (2020).
Strodthoff N., Wagner P., Schaeffter T., Samek W. Deep learning for ECG analysis: benchmarks and insights
from PTB-XL. IEEE J Biomed Health Inform 25(5):1519-1528 (2021).
"""

from __future__ import annotations

import os

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from xand.constants import EXCLUDED, HEADS, LEADS, NEGATIVE, POSITIVE, RECORD_SECONDS, SPLIT_OF_FOLD, SUPERCLASSES
from xand.errors import DataError, SplitLeakError
from xand.data.preprocess import resample

#: Sampling rates PTB-XL publishes (Hz) and the metadata column naming each rate's record path.
RATE_COLUMNS: dict[int, str] = {100: "filename_lr", 500: "filename_hr"}
DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
REQUIRED_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold")
SPLITS = ("train", "val", "test")
#: Physical units accepted in headers and their factor to mV.
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
_WFDB_NAN_16 = -32768  # WFDB "invalid sample" value in format 16
_LEAD_KEYS = [name.lower() for name in LEADS]
_EXPECTED_LEADS = f"12 leads ({', '.join(LEADS)})"


# ----------------------------------------------------------------------------------------------- WFDB

def read_wfdb(record: str | Path, expected_fs: int | None = None) -> tuple[np.ndarray, int]:
    """Read and validate one 12-lead WFDB record.

    Format-16 single-file records (all of PTB-XL) take a fast path (header parsed here, samples read with
    ``np.fromfile``, checksums verified); anything else is read by ``wfdb.rdrecord``.

    Parameters
    ----------
    record : record path without extension (``.../00001_lr``) or with ``.hea``
    expected_fs : sampling rate (Hz) the record must have, or None for any of 100 / 500 Hz

    Returns
    -------
    signal : ``(12, T)`` float32 mV in ``LEADS`` order, ``T = 10 s x fs``
    fs : sampling rate (Hz)

    Raises
    ------
    DataError naming the file: missing or truncated/corrupt header or signal file, lead count or names,
    unknown sampling rate, wrong length, NaN (invalid) samples, checksum mismatch.
    """
    base = Path(record)
    if base.suffix in (".hea", ".dat"):
        base = base.with_suffix("")
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise DataError(hea, "record header not found", "a WFDB .hea file")
    try:
        text = hea.read_text(encoding="latin-1")
    except OSError as exc:
        raise DataError(hea, f"cannot read header ({exc})") from None
    parsed = _parse_header(hea, text)
    if parsed is None:  # valid WFDB outside the fast path's subset
        sig, fs, names = _read_with_wfdb(base, hea)
        _check_rate(hea, fs, expected_fs)
    else:
        fs, n_samples, names, dat_name, gains, baselines, units, checksums = parsed
        _check_rate(hea, fs, expected_fs)  # before touching the signal file: the clearer error
        sig = _read_fmt16(hea, hea.parent / dat_name, n_samples, gains, baselines, units, checksums)
    order = _lead_order(hea, names)
    expected_len = int(round(RECORD_SECONDS * fs))
    if sig.shape[1] != expected_len:
        raise DataError(hea, f"has {sig.shape[1]} samples per lead",
                        f"{expected_len} ({RECORD_SECONDS:g} s at {fs} Hz)")
    sig = sig[order]
    bad = ~np.isfinite(sig)
    if bad.any():
        lead = LEADS[int(np.argmax(bad.any(axis=1)))]
        raise DataError(base.with_suffix(".dat"), f"{int(bad.sum())} NaN/invalid samples (first in lead {lead})",
                        "finite values in every lead")
    return np.ascontiguousarray(sig, dtype=np.float32), fs


def _check_rate(hea: Path, fs: float, expected_fs: int | None) -> None:
    if fs not in RATE_COLUMNS:
        raise DataError(hea, f"unknown sampling rate {fs:g} Hz", "100 or 500 Hz (PTB-XL)")
    if expected_fs is not None and fs != expected_fs:
        raise DataError(hea, f"sampling rate {fs:g} Hz", f"{expected_fs} Hz for this folder")


def _parse_header(hea: Path, text: str):
    """Parse the PTB-XL subset of the WFDB header format; None when the header needs ``wfdb`` itself."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataError(hea, "header is empty or truncated", "a WFDB record line and 12 signal lines")
    rec = lines[0].split()
    try:
        n_sig = int(rec[1])
        fs_tok = rec[2] if len(rec) > 2 else "250"
        n_samples = int(rec[3]) if len(rec) > 3 else None
    except (IndexError, ValueError):
        raise DataError(hea, f"unreadable record line {lines[0]!r}",
                        "'<name> <n_signals> <fs> <n_samples>'") from None
    if "/" in rec[0] or any(c in fs_tok for c in "/("):
        return None  # multi-segment record or counter frequency
    try:
        fs_val = float(fs_tok)
    except ValueError:
        raise DataError(hea, f"unreadable sampling rate {fs_tok!r}", "a number in Hz") from None
    fs = int(fs_val) if fs_val.is_integer() else fs_val
    if n_sig != len(LEADS):
        raise DataError(hea, f"has {n_sig} leads", _EXPECTED_LEADS)
    if len(lines) - 1 < n_sig:
        raise DataError(hea, f"header is truncated: {len(lines) - 1} signal lines", f"{n_sig} signal lines")
    if n_samples is None:
        return None
    names, files, gains, baselines, units, checksums = [], set(), [], [], [], []
    for ln in lines[1:1 + n_sig]:
        tok = ln.split()
        if len(tok) < 3:
            raise DataError(hea, f"unreadable signal line {ln!r}", "'<file> <format> <gain>(<baseline>)/<units> ...'")
        if tok[1] != "16":
            return None  # other formats, skew or byte offsets: let wfdb handle them
        gain, baseline, unit = _parse_gain(hea, tok[2], tok[4] if len(tok) > 4 else "0")
        files.add(tok[0])
        gains.append(gain)
        baselines.append(baseline)
        units.append(unit)
        checksums.append(int(tok[6]) if len(tok) > 6 and tok[6].lstrip("-").isdigit() else None)
        names.append(" ".join(tok[8:]) if len(tok) > 8 else "")
    if len(files) != 1:
        return None
    return fs, n_samples, names, files.pop(), gains, baselines, units, checksums


def _parse_gain(hea: Path, spec: str, adc_zero: str) -> tuple[float, float, str]:
    unit = "mV"
    if "/" in spec:
        spec, unit = spec.split("/", 1)
    baseline = None
    if "(" in spec:
        spec, rest = spec.split("(", 1)
        baseline = rest.rstrip(")")
    try:
        gain = float(spec) or 200.0  # WFDB: gain 0 means the default 200 adu/unit
        base = float(baseline) if baseline is not None else float(adc_zero)  # WFDB default baseline = ADC zero
    except ValueError:
        raise DataError(hea, f"unreadable gain {spec!r}", "'<gain>(<baseline>)/<units>'") from None
    if unit.lower() not in UNIT_TO_MV:
        raise DataError(hea, f"unknown unit {unit!r}", "mV (or uV, V)")
    return gain, base, unit


def _read_fmt16(hea, dat, n_samples, gains, baselines, units, checksums) -> np.ndarray:
    n_sig = len(gains)
    if not dat.is_file():
        raise DataError(dat, "signal file not found", f"the .dat named in {hea.name}")
    size = dat.stat().st_size
    if size != n_sig * n_samples * 2:
        raise DataError(dat, f"is {size} bytes (truncated or corrupt)",
                        f"{n_sig * n_samples * 2} bytes = {n_sig} leads x {n_samples} samples x 2 (format 16)")
    raw = np.fromfile(dat, dtype="<i2").reshape(n_samples, n_sig)
    sums = raw.sum(axis=0, dtype=np.int64)
    for j, cs in enumerate(checksums):
        if cs is not None and (int(sums[j]) - cs) % 65536:
            raise DataError(dat, f"checksum mismatch in signal {j} (corrupt samples)", f"checksum {cs} from {hea.name}")
    scale = np.array([UNIT_TO_MV[u.lower()] / g for u, g in zip(units, gains)])[:, None]
    sig = (raw.T - np.asarray(baselines)[:, None]) * scale
    sig[raw.T == _WFDB_NAN_16] = np.nan
    return sig


def _read_with_wfdb(base: Path, hea: Path):
    import wfdb

    try:
        rec = wfdb.rdrecord(str(base), physical=True)
    except Exception as exc:  # wfdb raises many types for corrupt files; report them uniformly
        raise DataError(hea, f"unreadable WFDB record ({type(exc).__name__}: {exc})", "a valid WFDB record") from None
    if rec.n_sig != len(LEADS) or rec.p_signal is None:
        raise DataError(hea, f"has {rec.n_sig} leads", _EXPECTED_LEADS)
    factors = np.array([UNIT_TO_MV.get((u or "mV").lower(), np.nan) for u in rec.units])[:, None]
    if np.isnan(factors).any():
        raise DataError(hea, f"unknown units {rec.units}", "mV")
    fs = int(rec.fs) if float(rec.fs).is_integer() else float(rec.fs)
    return rec.p_signal.T * factors, fs, list(rec.sig_name)


def _lead_order(hea: Path, names: list[str]) -> list[int]:
    keys = [n.strip().lower() for n in names]
    if sorted(keys) != sorted(_LEAD_KEYS):
        unknown = [n for n, k in zip(names, keys) if k not in _LEAD_KEYS] or names
        raise DataError(hea, f"lead names {names} (unexpected: {unknown})", _EXPECTED_LEADS)
    return [keys.index(k) for k in _LEAD_KEYS]


def record_paths(data_dir: Path, row: pd.Series | dict) -> dict[int, Path]:
    """Record paths (without extension) per sampling rate for one metadata row, whether or not they exist.

    Raises ``DataError`` for a path that is absolute or leads out of ``data_dir`` (``../``): a database
    row must never make the reader open a file elsewhere on the server.
    """
    out = {}
    for fs, col in RATE_COLUMNS.items():
        rel = row.get(col)
        if isinstance(rel, str) and rel.strip():
            rel = rel.strip()
            # judged on the path as written, not resolved: records500/ may be a symlink to another disk
            norm = os.path.normpath(rel)
            if os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep):
                raise DataError(Path(data_dir) / DATABASE_CSV, f"{col} {rel!r} points outside the dataset folder",
                                f"a path relative to {data_dir} (e.g. records100/00000/00001_lr)")
            out[fs] = Path(data_dir) / rel
    return out


def load_record(paths: dict[int, Path], fs: int = 100) -> np.ndarray:
    """Load a record at ``fs`` Hz from the best available file.

    The file recorded at ``fs`` is read when it exists; otherwise a higher-rate file is read and
    downsampled (anti-aliased polyphase filter). Upsampling is refused: it would invent content.

    Parameters
    ----------
    paths : ``{rate_hz: record path without extension}`` (see ``record_paths``)
    fs : wanted sampling rate (Hz)

    Returns
    -------
    ``(12, 10 s x fs)`` float32 mV
    """
    native = paths.get(fs)
    if native is not None and native.with_suffix(".hea").is_file():
        return read_wfdb(native, expected_fs=fs)[0]
    higher = sorted(r for r, p in paths.items() if r > fs and p.with_suffix(".hea").is_file())
    if higher:
        src = higher[0]
        sig, _ = read_wfdb(paths[src], expected_fs=src)
        return resample(sig, src, fs)
    missing = native if native is not None else next(iter(paths.values()), None)
    where = missing.with_suffix(".hea") if missing is not None else None
    raise DataError(where, "record file not found",
                    f"a {fs} Hz record or a higher-rate one to downsample from")


# ------------------------------------------------------------------------------------------- labels

def diagnostic_classes(statements: pd.DataFrame) -> dict[str, str]:
    """``{scp_code: superclass}`` for the diagnostic statements (``diagnostic == 1``) of ``scp_statements.csv``."""
    diag = statements[pd.to_numeric(statements["diagnostic"], errors="coerce") == 1]
    return {str(code): str(cls) for code, cls in diag["diagnostic_class"].items() if cls in SUPERCLASSES}


def pure_labels(scp_codes: dict[str, float], code_to_class: dict[str, str]) -> dict[str, int]:
    """Pure-label status per head from one record's SCP statements.

    For each head, only the statements of that head's superclass count: ``POSITIVE`` (1) when one of them
    has likelihood 100, ``NEGATIVE`` (0) when none of them is present, ``EXCLUDED`` (-1) when present
    only with likelihood 0-99 (uncertain; dropped from that head's training and evaluation).

    Parameters
    ----------
    scp_codes : ``{scp_code: likelihood in [0, 100]}`` as in ``ptbxl_database.csv``
    code_to_class : ``{scp_code: superclass}`` (``diagnostic_classes``); other codes are ignored

    Returns
    -------
    ``{head: 1 | 0 | -1}`` for every head in ``HEADS``
    """
    best: dict[str, float] = {}
    for code, lik in scp_codes.items():
        cls = code_to_class.get(code)
        if cls is not None:
            best[cls] = max(best.get(cls, -1.0), float(lik))
    return {h: NEGATIVE if h not in best else POSITIVE if best[h] >= 100 else EXCLUDED for h in HEADS}


def check_patient_splits(df: pd.DataFrame) -> dict[str, int]:
    """Verify that no patient appears in two of train / val / test.

    Parameters
    ----------
    df : table with columns ``patient_id``, ``split`` and optionally ``strat_fold`` (one row per record)

    Returns
    -------
    ``{"patients": n, "records": m}`` when the splits are disjoint

    Raises
    ------
    SplitLeakError naming the leaking patients, their splits and folds.
    """
    n_splits = df.groupby("patient_id")["split"].nunique()
    leaking = n_splits[n_splits > 1].index
    if len(leaking):
        parts = []
        for pid in list(leaking)[:10]:
            rows = df[df["patient_id"] == pid]
            where = sorted({f"{r.split} (fold {r.strat_fold})" if "strat_fold" in df else str(r.split)
                            for r in rows.itertuples()})
            parts.append(f"patient {pid:g}: {', '.join(where)}")
        more = f" and {len(leaking) - 10} more" if len(leaking) > 10 else ""
        raise SplitLeakError(None, f"{len(leaking)} patient(s) in more than one split: {'; '.join(parts)}{more}",
                             "each patient in exactly one of train/val/test (strat_fold is patient-level)")
    return {"patients": int(df["patient_id"].nunique()), "records": int(len(df))}


def count_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Pure-label counts: rows ``(head, split)`` including split ``"all"``, columns ``pos, neg, excluded``."""
    rows = []
    for head in HEADS:
        for split in (*SPLITS, "all"):
            s = labels[head] if split == "all" else labels.loc[labels["split"] == split, head]
            rows.append({"head": head, "split": split, "pos": int((s == POSITIVE).sum()),
                         "neg": int((s == NEGATIVE).sum()), "excluded": int((s == EXCLUDED).sum())})
    return pd.DataFrame(rows).set_index(["head", "split"])


# ------------------------------------------------------------------------------------------- folder

class PTBXL:
    """A PTB-XL folder (read-only).

    Parameters
    ----------
    data_dir : folder with ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records100/`` and/or
        ``records500/``

    Attributes
    ----------
    data_dir : Path
    meta : metadata indexed by ``ecg_id`` (int), original columns, ``scp_codes`` parsed to dicts
    statements : ``scp_statements.csv`` indexed by SCP code
    code_to_class : ``{diagnostic scp_code: superclass}``
    rates : sampling rates (Hz) whose record folder exists
    devices : sorted device names; ``labels()["device_code"]`` indexes into it
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DataError(self.data_dir, "dataset folder not found",
                            f"a PTB-XL folder with {DATABASE_CSV}, {STATEMENTS_CSV}, records100/ or records500/")
        self.rates = tuple(fs for fs in RATE_COLUMNS if (self.data_dir / f"records{fs}").is_dir())
        if not self.rates:
            raise DataError(self.data_dir, "has neither records100/ nor records500/", "PTB-XL record folders")
        self.statements = self._read_statements(self.data_dir / STATEMENTS_CSV)
        self.code_to_class = diagnostic_classes(self.statements)
        self.meta = self._read_database(self.data_dir / DATABASE_CSV)
        self.devices = sorted(self.meta["device"].astype(str).unique())
        self._paths: dict[int, dict[int, Path]] | None = None

    def __len__(self) -> int:
        return len(self.meta)

    def __repr__(self) -> str:
        return f"PTBXL({str(self.data_dir)!r}, records={len(self)}, rates={self.rates})"

    @staticmethod
    def _read_csv(path: Path, **kw) -> pd.DataFrame:
        if not path.is_file():
            raise DataError(path, "file not found", "part of the PTB-XL layout")
        try:
            return pd.read_csv(path, **kw)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(path, f"unreadable CSV ({exc})") from None

    def _read_statements(self, path: Path) -> pd.DataFrame:
        st = self._read_csv(path, index_col=0)
        missing = [c for c in ("diagnostic", "diagnostic_class") if c not in st.columns]
        if missing:
            raise DataError(path, f"missing columns {missing}", "diagnostic, diagnostic_class")
        return st

    def _read_database(self, path: Path) -> pd.DataFrame:
        db = self._read_csv(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in db.columns]
        if not any(c in db.columns for c in RATE_COLUMNS.values()):
            missing.append("filename_lr or filename_hr")
        if missing:
            raise DataError(path, f"missing columns {missing}", f"{', '.join(REQUIRED_COLUMNS)}, filename_lr/hr")
        ids = pd.to_numeric(db["ecg_id"], errors="coerce")
        if ids.isna().any() or (ids % 1 != 0).any():
            bad = db.loc[ids.isna() | (ids % 1 != 0), "ecg_id"].head(5).tolist()
            raise DataError(path, f"non-integer ecg_id values {bad}", "integer ecg_id")
        db["ecg_id"] = ids.astype(np.int64)
        dup = db.loc[db["ecg_id"].duplicated(), "ecg_id"].unique()
        if len(dup):
            raise DataError(path, f"duplicate ecg_id {sorted(dup.tolist())[:10]}", "one row per ecg_id")
        folds = pd.to_numeric(db["strat_fold"], errors="coerce")
        bad_fold = ~folds.isin(list(SPLIT_OF_FOLD))
        if bad_fold.any():
            r = db[bad_fold].iloc[0]
            raise DataError(path, f"ecg_id {r.ecg_id}: strat_fold {str(r.strat_fold)!r}", "an integer 1-10")
        db["strat_fold"] = folds.astype(int)
        pid = pd.to_numeric(db["patient_id"], errors="coerce")
        bad_pid = ~np.isfinite(pid.to_numpy(dtype=np.float64, na_value=np.nan))  # "inf" is numeric, not an id
        if bad_pid.any():
            r = db[bad_pid].iloc[0]
            raise DataError(path, f"ecg_id {r.ecg_id}: patient_id {str(r.patient_id)!r}", "a finite number")
        db["patient_id"] = pid.astype(np.int64)
        db["scp_codes"] = [self._parse_codes(path, e, t) for e, t in zip(db["ecg_id"], db["scp_codes"])]
        known = set(map(str, self.statements.index))
        for e, codes in zip(db["ecg_id"], db["scp_codes"]):
            unknown = sorted(set(codes) - known)
            if unknown:  # a typo ('IMI ') would silently turn a positive into a negative
                raise DataError(path, f"ecg_id {e}: SCP code(s) {unknown} not in {STATEMENTS_CSV}",
                                f"codes listed in {self.data_dir / STATEMENTS_CSV}")
        for col, default in (("device", "unknown"), ("sex", np.nan), ("age", np.nan), ("report", "")):
            if col not in db.columns:
                db[col] = default
        db["device"] = db["device"].fillna("unknown").astype(str)
        return db.set_index("ecg_id")

    @staticmethod
    def _parse_codes(path: Path, ecg_id: int, text) -> dict[str, float]:
        expected = "a dict literal of SCP code -> likelihood 0-100, e.g. {'NORM': 100.0}"
        try:
            codes = ast.literal_eval(text) if isinstance(text, str) else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            codes = None
        ok = isinstance(codes, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100
            for k, v in codes.items())
        if not ok:
            raise DataError(path, f"ecg_id {ecg_id}: malformed scp_codes {text!r}", expected)
        return {k: float(v) for k, v in codes.items()}

    def paths(self, ecg_id: int) -> dict[int, Path]:
        """Record paths (no extension) per rate for ``ecg_id``, whether or not the files exist."""
        if self._paths is None:  # built once from the columns: a pandas row lookup per record is slow
            n = len(self.meta)
            cols = [self.meta[c].tolist() if c in self.meta else [None] * n for c in RATE_COLUMNS.values()]
            names = list(RATE_COLUMNS.values())
            self._paths = {}
            for e, *rels in zip(self.meta.index, *cols):
                try:
                    self._paths[int(e)] = record_paths(self.data_dir, dict(zip(names, rels)))
                except DataError as exc:  # raised when that record is used, not for the whole folder
                    self._paths[int(e)] = exc
        try:
            found = self._paths[int(ecg_id)]
        except KeyError:
            self._row(ecg_id)
            raise
        if isinstance(found, DataError):
            raise found
        return dict(found)

    def rates_on_disk(self, ecg_id: int) -> list[int]:
        """The sampling rates (Hz) whose header file exists for ``ecg_id``, ascending."""
        return sorted(r for r, p in self.paths(ecg_id).items() if p.with_suffix(".hea").is_file())

    def _row(self, ecg_id: int) -> pd.Series:
        try:
            return self.meta.loc[int(ecg_id)]
        except KeyError:
            raise DataError(self.data_dir / DATABASE_CSV, f"no ecg_id {ecg_id}", "an ecg_id listed there") from None

    def load(self, ecg_id: int, fs: int = 100) -> np.ndarray:
        """One record as ``(12, 10 s x fs)`` float32 mV in ``LEADS`` order (``fs`` 100 or 500 Hz).

        At 100 Hz the ``records100`` file is read, or the ``records500`` one downsampled when it is the only
        one present. Raises ``DataError`` naming the file for any missing or invalid record.
        """
        if fs not in RATE_COLUMNS:
            raise DataError(None, f"unsupported working rate {fs} Hz", "100 or 500 Hz")
        return load_record(self.paths(ecg_id), fs)

    def labels(self, check_splits: bool = True) -> pd.DataFrame:
        """Per-record targets, indexed by ``ecg_id``.

        Columns: ``MI, STTC, CD, HYP`` (pure-label status 1/0/-1), ``sc_NORM ... sc_HYP`` (0/1: any
        statement of that superclass, any likelihood; for multi-label baselines), ``patient_id``,
        ``split``, ``strat_fold``, ``device``, ``device_code`` (index into ``self.devices``), ``sex``
        (0 male, 1 female as in PTB-XL), ``age`` (years; PTB-XL codes ages over 89 as 300), ``report``.
        Raises ``SplitLeakError`` when ``check_splits`` and a patient is in two splits.
        """
        status = [pure_labels(c, self.code_to_class) for c in self.meta["scp_codes"]]
        out = pd.DataFrame(status, index=self.meta.index, columns=list(HEADS)).astype(np.int8)
        present = [{self.code_to_class.get(k) for k in c} for c in self.meta["scp_codes"]]
        for sc in SUPERCLASSES:
            out[f"sc_{sc}"] = np.array([sc in p for p in present], dtype=np.int8)
        m = self.meta
        out["patient_id"] = m["patient_id"]
        out["strat_fold"] = m["strat_fold"]
        out["split"] = m["strat_fold"].map(SPLIT_OF_FOLD)
        out["device"] = m["device"]
        out["device_code"] = m["device"].map({d: i for i, d in enumerate(self.devices)}).astype(np.int64)
        out["sex"] = pd.to_numeric(m["sex"], errors="coerce")
        out["age"] = pd.to_numeric(m["age"], errors="coerce")
        out["report"] = m["report"].fillna("").astype(str)
        if check_splits:
            check_patient_splits(out)
        return out

    def label_counts(self, labels: pd.DataFrame | None = None) -> pd.DataFrame:
        """Pure-label counts per ``(head, split)`` (splits train/val/test/all), columns ``pos, neg, excluded``."""
        return count_labels(self.labels(check_splits=False) if labels is None else labels)


def summarize(data_dir: str | Path) -> dict:
    """JSON-ready summary of a PTB-XL folder (what ``python -m xand info`` prints).

    Keys: ``data_dir, records, patients, rates, record_files`` (records with a file per rate),
    ``missing_records`` (ecg_ids with no header + signal pair at any rate), ``splits``
    (records/patients per split), ``label_counts`` (head -> split -> pos/neg/excluded), ``devices``,
    ``sex``, ``age`` (years, PTB-XL's 300 = over 89 left out of the statistics) and
    ``patient_leak_check`` (``ok`` or the error).
    """
    ptb = PTBXL(data_dir)
    lab = ptb.labels(check_splits=False)
    try:
        leak = {"ok": True, **check_patient_splits(lab)}
    except SplitLeakError as exc:
        leak = {"ok": False, "error": str(exc)}
    paths, refused = {}, {}
    for e in lab.index:
        try:
            paths[int(e)] = ptb.paths(e)
        except DataError as exc:  # a path outside the folder: reported, and the record counts as missing
            paths[int(e)], refused[int(e)] = {}, str(exc)
    files = {str(fs): int(sum(p[fs].with_suffix(".hea").is_file() for p in paths.values() if fs in p))
             for fs in RATE_COLUMNS}
    # a record counts as present when one of its rates has both files (header and signal)
    missing = sorted(e for e, p in paths.items()
                     if not any(q.with_suffix(".hea").is_file() and q.with_suffix(".dat").is_file() for q in p.values()))
    counts: dict = {}
    for (head, split), row in ptb.label_counts(lab).iterrows():
        counts.setdefault(head, {})[split] = {k: int(v) for k, v in row.items()}
    age = lab["age"].where(lab["age"] < 300)
    sex = lab["sex"].map({0: "male", 1: "female"}).fillna("unknown").value_counts()
    return {
        "data_dir": str(ptb.data_dir),
        "records": len(lab),
        "patients": int(lab["patient_id"].nunique()),
        "rates": list(ptb.rates),
        "record_files": files,
        "missing_records": missing,
        "refused_paths": {str(k): v for k, v in refused.items()},
        "splits": {s: {"records": int((lab["split"] == s).sum()),
                       "patients": int(lab.loc[lab["split"] == s, "patient_id"].nunique())} for s in SPLITS},
        "label_counts": counts,
        "devices": {str(k): int(v) for k, v in lab["device"].value_counts().items()},
        "sex": {str(k): int(v) for k, v in sex.items()},
        "age": {"n": int(age.notna().sum()), "missing": int(age.isna().sum()),
                "min": _num(age.min()), "median": _num(age.median()), "mean": _num(age.mean()),
                "max": _num(age.max())},
        "patient_leak_check": leak,
    }


def _num(v) -> float | None:
    return None if pd.isna(v) else round(float(v), 1)
