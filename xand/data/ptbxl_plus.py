"""PTB-XL+ ECGdeli fiducial points: reader and writer.

PTB-XL+ (Strodthoff et al., Sci Data 10:279, 2023) ships the fiducial points found by ECGdeli
(Pilia et al., SoftwareX 13:100639, 2021) as WFDB annotation files::

    fiducial_points/ecgdeli/{bucket:05d}/{ecg_id:05d}_points_lead_{I,II,III,aVR,aVL,aVF,V1..V6}.atr
    fiducial_points/ecgdeli/{bucket:05d}/{ecg_id:05d}_points_global.atr

with ``bucket = ecg_id // 1000 * 1000``, sample numbers on the 500 Hz grid of ``records500`` (the
files state ``## time resolution: 500``), one comment annotation per point and the kind of the point
in its aux note (``AUX_NOTES`` below, ECGdeli's FPT column order). The reader groups the points into
beats (anchored on the R peaks of the global file, or of the lead itself) so that a missing point
becomes NaN instead of shifting the beats, and converts them to the working sampling rate.

The writer produces byte-for-byte what ``wfdb.wrann(..., fs=500)`` writes (checked in the tests) with
a direct encoder of the MIT annotation format, because ``wfdb.wrann`` costs ~5 ms per file and the
synthetic set writes 13 files per record.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.errors import DataError
from xand.fiducials import Fiducials

#: Sampling rate (Hz) of the sample numbers in PTB-XL+ fiducial files.
PTBXL_PLUS_FS = 500

#: ECGdeli aux-note strings as written in PTB-XL+ 1.0.1, mapped to our ``FIDUCIAL_KINDS``.
AUX_NOTES: dict[str, str] = {
    "P_on": "p-wave onset",
    "P_peak": "p-wave peak",
    "P_off": "p-wave offset",
    "QRS_on": "QRS onset",
    "Q_peak": "Q peak",
    "R_peak": "R peak",
    "S_peak": "S peak",
    "QRS_off": "QRS offset",
    "J": "L point (for STEMI)",
    "T_on": "t-wave onset",
    "T_peak": "t-wave peak",
    "T_off": "t-wave offset",
}
_KIND_OF_NOTE = {note.lower(): kind for kind, note in AUX_NOTES.items()}
# Tolerate the short form some re-exports use for the J point.
_KIND_OF_NOTE.setdefault("l point", "J")

#: Lead names as spelled in PTB-XL+ file names (``LEADS`` order).
FILE_LEADS: tuple[str, ...] = LEADS

# Which beat a point belongs to: points before the R peak belong to the next R, points after it to
# the previous one. The windows bound how far a point may lie from its R peak (seconds).
_BEFORE_R = {"P_on", "P_peak", "P_off", "QRS_on", "Q_peak"}
_MAX_BEFORE_S = 0.6
_MAX_AFTER_S = 0.9
_SLACK_S = 0.03

_COMMENT_CODE = 22  # MIT annotation code of '"' (comment), the symbol ECGdeli points carry
_SKIP, _AUX = 59, 63


def bucket_of(ecg_id: int) -> str:
    """PTB-XL folder bucket of a record, e.g. ``1234 -> "01000"``."""
    return f"{int(ecg_id) // 1000 * 1000:05d}"


def fiducial_dir(ptbxl_plus_dir: str | Path, ecg_id: int) -> Path:
    """Folder holding the ECGdeli files of one record."""
    return Path(ptbxl_plus_dir) / "fiducial_points" / "ecgdeli" / bucket_of(ecg_id)


def lead_file(ptbxl_plus_dir: str | Path, ecg_id: int, lead: str) -> Path:
    """Path of a lead's ``.atr`` file (``lead`` in ``FILE_LEADS``)."""
    return fiducial_dir(ptbxl_plus_dir, ecg_id) / f"{int(ecg_id):05d}_points_lead_{lead}.atr"


def global_file(ptbxl_plus_dir: str | Path, ecg_id: int) -> Path:
    """Path of the record's ``_points_global.atr`` file."""
    return fiducial_dir(ptbxl_plus_dir, ecg_id) / f"{int(ecg_id):05d}_points_global.atr"


def has_fiducials(ptbxl_plus_dir: str | Path | None, ecg_id: int) -> bool:
    """Whether all 12 lead files of ``ecg_id`` exist under ``ptbxl_plus_dir``."""
    if ptbxl_plus_dir is None:
        return False
    return all(lead_file(ptbxl_plus_dir, ecg_id, lead).is_file() for lead in FILE_LEADS)


# ----------------------------------------------------------------------------------------------
# reading


def _read_points(path: Path) -> tuple[np.ndarray, list[str], float]:
    """Samples, kinds and time resolution of one ECGdeli file (unknown aux notes are dropped)."""
    import wfdb

    if not path.is_file():
        raise DataError(path, "fiducial file is missing",
                        "a PTB-XL+ ECGdeli annotation file (fiducial_points/ecgdeli/...)")
    raw = path.read_bytes()
    # an MIT annotation file is a sequence of 16-bit words closed by a 0 word; anything else is cut off
    if len(raw) < 2 or len(raw) % 2 or raw[-2:] != b"\x00\x00":
        raise DataError(path, f"is truncated or not an annotation file ({len(raw)} bytes)",
                        "an even-sized MIT-format .atr file ending with the end-of-file word")
    try:
        ann = wfdb.rdann(str(path.with_suffix("")), "atr")
    except Exception as exc:  # wfdb raises many types on a truncated/garbled file
        raise DataError(path, f"cannot be read as a WFDB annotation file ({type(exc).__name__}: {exc})",
                        "a valid MIT-format .atr file") from None
    fs = float(ann.fs) if ann.fs else float(PTBXL_PLUS_FS)
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(path, f"has time resolution {ann.fs}", "a positive sampling rate (500 Hz)")
    notes = ann.aux_note if ann.aux_note is not None else [""] * len(ann.sample)
    samples, kinds = [], []
    for s, note in zip(np.asarray(ann.sample), notes):
        kind = _KIND_OF_NOTE.get(str(note).strip().lower())
        if kind is not None:
            samples.append(int(s))
            kinds.append(kind)
    return np.asarray(samples, dtype=np.int64), kinds, fs


def _anchors(samples: np.ndarray, kinds: list[str]) -> np.ndarray:
    """Beat anchors: the R peaks, plus QRS midpoints for complexes whose R peak is missing."""
    kinds_a = np.asarray(kinds, dtype=object)
    r = np.sort(samples[kinds_a == "R_peak"])
    on = np.sort(samples[kinds_a == "QRS_on"])
    off = np.sort(samples[kinds_a == "QRS_off"])
    extra = []
    for a in on:  # a QRS onset with no R peak within 200 ms after it
        if not np.any((r >= a) & (r <= a + 100)):
            later = off[off > a]
            extra.append(int((a + later[0]) // 2) if len(later) and later[0] - a < 100 else int(a) + 20)
    return np.unique(np.concatenate([r, np.asarray(extra, dtype=np.int64)])).astype(np.int64)


def _group(samples: np.ndarray, kinds: list[str], anchors: np.ndarray, fs: float) -> np.ndarray:
    """Assign points to beats: ``(len(anchors), len(FIDUCIAL_KINDS))`` float, NaN where missing.

    R peaks go to the nearest anchor, points before the R (P wave, QRS onset, Q) to the next anchor,
    points after it to the previous one; when a beat gets two points of one kind the one nearest to
    its anchor wins.
    """
    out = np.full((len(anchors), len(FIDUCIAL_KINDS)), np.nan)
    if len(anchors) == 0 or len(samples) == 0:
        return out
    s = np.asarray(samples, dtype=np.int64)
    kj = np.array([FIDUCIAL_KINDS.index(k) for k in kinds])
    slack = _SLACK_S * fs
    n = len(anchors)
    before = np.isin(kj, [FIDUCIAL_KINDS.index(k) for k in _BEFORE_R])
    is_r = kj == FIDUCIAL_KINDS.index("R_peak")
    nxt = np.searchsorted(anchors, s - slack, side="left")
    prv = np.searchsorted(anchors, s + slack, side="right") - 1
    near = np.clip(np.searchsorted(anchors, s), 1, max(n - 1, 1))
    near = np.where(np.abs(anchors[near - 1] - s) <= np.abs(anchors[np.minimum(near, n - 1)] - s),
                    near - 1, np.minimum(near, n - 1))
    b = np.where(is_r, near, np.where(before, nxt, prv))
    valid = (b >= 0) & (b < n)
    bc = np.clip(b, 0, n - 1)
    gap = anchors[bc] - s
    valid &= np.where(is_r, np.abs(gap) <= slack,
                      np.where(before, gap <= _MAX_BEFORE_S * fs, -gap <= _MAX_AFTER_S * fs))
    b, kj, s, dist = bc[valid], kj[valid], s[valid], np.abs(gap[valid])
    order = np.lexsort((dist, kj, b))
    cell = b[order] * len(FIDUCIAL_KINDS) + kj[order]
    first = np.ones(len(cell), dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    sel = order[first]
    out[b[sel], kj[sel]] = s[sel]
    return out


def read_fiducials(ptbxl_plus_dir: str | Path, ecg_id: int, fs: float = 100,
                   n_samples: int = 1000, strict: bool = True) -> Fiducials:
    """Read the PTB-XL+ ECGdeli fiducial points of one record at the working rate.

    Parameters
    ----------
    ptbxl_plus_dir : PTB-XL+ root (holding ``fiducial_points/ecgdeli``); the synthetic set is its own
    ecg_id : PTB-XL record id
    fs : working sampling rate (Hz) the returned positions refer to
    n_samples : record length at ``fs``; points at or beyond it become NaN
    strict : raise ``DataError`` for a missing lead file (else that lead gets ``quality=False``)

    Returns
    -------
    Fiducials with 12 arrays ``(n_beats, 12)`` of sample positions at ``fs`` (float, NaN = missing).
    When the global file exists its R peaks anchor the beats of every lead, so beat ``i`` is the same
    heartbeat in all leads.
    """
    root = Path(ptbxl_plus_dir)
    if not (root / "fiducial_points" / "ecgdeli").is_dir():
        raise DataError(root, "has no fiducial_points/ecgdeli folder", "a PTB-XL+ folder")
    gpath = global_file(root, ecg_id)
    anchors_global = None
    if gpath.is_file():
        gs, gk, _ = _read_points(gpath)
        anchors_global = _anchors(gs, gk)
    elif not has_fiducials(root, ecg_id):
        raise DataError(fiducial_dir(root, ecg_id), f"has no fiducial points for ecg_id {ecg_id}",
                        f"{int(ecg_id):05d}_points_lead_*.atr and _points_global.atr")
    beats, quality = [], np.zeros(N_LEADS, dtype=bool)
    for i, lead in enumerate(FILE_LEADS):
        path = lead_file(root, ecg_id, lead)
        if not path.is_file() and not strict:
            beats.append(np.full((0 if anchors_global is None else len(anchors_global),
                                  len(FIDUCIAL_KINDS)), np.nan))
            continue
        s, k, file_fs = _read_points(path)
        anchors = anchors_global if anchors_global is not None and len(anchors_global) else _anchors(s, k)
        b = _group(s, k, anchors, file_fs) * (fs / file_fs)
        b[(b < 0) | (b >= n_samples)] = np.nan
        beats.append(b)
        quality[i] = bool(np.isfinite(b).any())
    return Fiducials(fs, int(n_samples), beats, quality, "ptbxl+")


# ----------------------------------------------------------------------------------------------
# writing


def _word(code: int, diff: int) -> bytes:
    return struct.pack("<H", (code << 10) | (diff & 0x3FF))


def _aux(text: str) -> bytes:
    raw = text.encode("ascii")
    return _word(_AUX, len(raw)) + raw + (b"\x00" if len(raw) % 2 else b"")


_AUX_BYTES = {note: _aux(note) for note in AUX_NOTES.values()}
_TYPE_WORDS = [_word(_COMMENT_CODE, d) for d in range(1024)]


def encode_annotations(samples: np.ndarray, notes: list[str], fs: int = PTBXL_PLUS_FS) -> bytes:
    """MIT-format bytes of comment annotations, as ``wfdb.wrann(symbol='"', aux_note=notes, fs=fs)``.

    ``samples`` must be sorted, non-negative integers. Layout (WFDB annotation format, Moody's
    *WFDB Applications Guide*): 16-bit words ``code << 10 | sample_diff``; a diff above 1023 goes into a
    SKIP word with a 32-bit PDP-11-order value; an aux note is an AUX word followed by its bytes,
    padded to even length. wfdb-python stores ``fs`` as a leading ``## time resolution`` note.
    """
    out = bytearray()
    out += _word(_COMMENT_CODE, 0) + _aux(f"## time resolution: {fs:g}")
    out += _word(_SKIP, 0) + b"\xff\xff\xff\xff" + _word(0, 1)  # wfdb-python's rewind to sample 0
    prev = 0
    for s, note in zip(samples, notes):
        diff = int(s) - prev
        if diff < 0:
            raise ValueError("annotation samples must be sorted")
        if diff > 1023:
            out += _word(_SKIP, 0) + struct.pack("<HH", (diff >> 16) & 0xFFFF, diff & 0xFFFF)
            diff = 0
        out += _TYPE_WORDS[diff]
        out += _AUX_BYTES.get(note) or _aux(note)
        prev = int(s)
    out += b"\x00\x00"
    return bytes(out)


def _beats_to_annotations(beats: np.ndarray, scale: float) -> tuple[np.ndarray, list[str]]:
    b = np.asarray(beats, dtype=np.float64) * scale
    rows, cols = np.nonzero(np.isfinite(b))
    samples = np.rint(b[rows, cols]).astype(np.int64)
    keep = samples >= 1  # wfdb.rdann drops annotations at sample 0 (see tests): never write them
    rows, cols, samples = rows[keep], cols[keep], samples[keep]
    order = np.lexsort((cols, rows, samples))  # by time, then beat, then ECGdeli column order
    notes = [AUX_NOTES[FIDUCIAL_KINDS[c]] for c in cols[order]]
    return samples[order], notes


def write_fiducials(ptbxl_plus_dir: str | Path, ecg_id: int, fiducials: Fiducials,
                    global_beats: np.ndarray | None = None) -> list[Path]:
    """Write one record's fiducials in the PTB-XL+ ECGdeli layout (13 ``.atr`` files, 500 Hz grid).

    Parameters
    ----------
    ptbxl_plus_dir : PTB-XL+ root; files go to ``fiducial_points/ecgdeli/{bucket}/``
    ecg_id : record id
    fiducials : per-lead beats at any rate (rescaled to 500 Hz and rounded to whole samples)
    global_beats : ``(n_beats, 12)`` points for ``_points_global.atr`` at ``fiducials.fs``; default the
        per-beat median over leads with a finite value (ECGdeli's global points are lead-synchronised)

    Returns the written paths.
    """
    folder = fiducial_dir(ptbxl_plus_dir, ecg_id)
    folder.mkdir(parents=True, exist_ok=True)
    scale = PTBXL_PLUS_FS / float(fiducials.fs)
    written, encoded = [], {}
    for lead, beats in zip(FILE_LEADS, fiducials.beats):
        path = lead_file(ptbxl_plus_dir, ecg_id, lead)
        key = (beats.shape, beats.tobytes())  # identical leads (synthetic ground truth) encoded once
        if key not in encoded:
            encoded[key] = encode_annotations(*_beats_to_annotations(beats, scale))
        path.write_bytes(encoded[key])
        written.append(path)
    if global_beats is None:
        n = max((len(b) for b in fiducials.beats), default=0)
        stack = np.full((N_LEADS, n, len(FIDUCIAL_KINDS)), np.nan)
        for i, b in enumerate(fiducials.beats):
            stack[i, : len(b)] = b
        with warnings.catch_warnings():  # all-NaN cells (a point no lead has) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            global_beats = np.nanmedian(stack, axis=0) if n else np.empty((0, len(FIDUCIAL_KINDS)))
    path = global_file(ptbxl_plus_dir, ecg_id)
    path.write_bytes(encode_annotations(*_beats_to_annotations(global_beats, scale)))
    written.append(path)
    return written
