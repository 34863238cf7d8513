"""PTB-XL+ ECGdeli fiducial reader/writer: format fidelity, beat grouping with missing points, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, LEADS
from xand.errors import DataError
from xand.fiducials import Fiducials
from xand.data.ptbxl_plus import (AUX_NOTES, encode_annotations, global_file, has_fiducials, lead_file,
                             read_fiducials, write_fiducials)

wfdb = pytest.importorskip("wfdb")
K = {k: i for i, k in enumerate(FIDUCIAL_KINDS)}


def _beats(n_beats: int = 9, start: int = 100, rr: int = 480) -> np.ndarray:
    """Plausible ECGdeli-like beats on the 500 Hz grid (QRS onset at ``start + i * rr``)."""
    rel = np.array([-80, -60, -40, 0, 8, 20, 32, 46, 46, 110, 160, 200], dtype=float)
    return np.stack([start + i * rr + rel for i in range(n_beats)])


def _write_with_wfdb(folder: Path, ecg_id: int, lead: str, beats: np.ndarray) -> None:
    """An ECGdeli-style file written by wfdb itself (independent of our encoder)."""
    rows, cols = np.nonzero(np.isfinite(beats))
    samples = beats[rows, cols].astype(np.int64)
    order = np.lexsort((cols, rows, samples))
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrann(f"{ecg_id:05d}_points_{lead}", "atr", sample=samples[order], symbol=['"'] * len(order),
               aux_note=[AUX_NOTES[FIDUCIAL_KINDS[c]] for c in cols[order]], fs=500, write_dir=str(folder))


def test_encoder_is_byte_identical_to_wfdb_wrann(tmp_path: Path):
    samples = np.array([0, 3, 3, 900, 2100, 2100, 4999])       # zero diffs and SKIPs (> 1023)
    notes = [AUX_NOTES[k] for k in ("P_on", "QRS_off", "J", "R_peak", "T_on", "T_peak", "T_off")]
    wfdb.wrann("ref", "atr", sample=samples, symbol=['"'] * len(samples), aux_note=notes, fs=500,
               write_dir=str(tmp_path))
    assert encode_annotations(samples, notes) == (tmp_path / "ref.atr").read_bytes()
    ann = wfdb.rdann(str(tmp_path / "ref"), "atr")
    # wfdb.rdann drops annotations at sample 0 (it takes them for the time-resolution note)
    assert ann.fs == 500 and list(ann.aux_note) == notes[1:] and list(ann.sample) == list(samples[1:])


def test_write_read_round_trip_with_missing_points(tmp_path: Path):
    base = _beats()
    beats = []
    for i in range(12):
        b = base + i  # leads differ slightly
        b = b.copy()
        if i == 3:
            b[2, K["P_on"]] = np.nan          # a missing P onset
            b[4, K["R_peak"]] = np.nan        # a beat without R peak (anchored by the global file)
        if i == 6:
            b[:, K["Q_peak"]] = np.nan        # no Q waves in V1
        beats.append(b)
    fid = Fiducials(500, 5000, beats, source="test")
    paths = write_fiducials(tmp_path, 1234, fid)
    assert len(paths) == 13 and all(p.is_file() for p in paths)
    assert lead_file(tmp_path, 1234, "aVR").name == "01234_points_lead_aVR.atr"
    assert lead_file(tmp_path, 1234, "aVR").parent.name == "01000"
    back = read_fiducials(tmp_path, 1234, fs=500, n_samples=5000)
    assert back.source == "ptbxl+" and back.quality.all()
    for a, b in zip(beats, back.beats):
        np.testing.assert_array_equal(a, b)
    at100 = read_fiducials(tmp_path, 1234, fs=100, n_samples=1000)
    np.testing.assert_allclose(at100.beats[0], beats[0] / 5)


def test_reads_files_written_by_wfdb_and_groups_by_r_peak(tmp_path: Path):
    folder = tmp_path / "fiducial_points" / "ecgdeli" / "00000"
    beats = _beats(n_beats=8)
    beats[0, : K["QRS_on"]] = np.nan                         # first beat's P wave cut off
    beats[5, K["S_peak"]] = np.nan
    beats[7, K["T_on"]:] = np.nan                            # last T wave beyond the record
    for lead in LEADS:
        _write_with_wfdb(folder, 7, f"lead_{lead}", beats)
    # no global file: every lead is grouped on its own R peaks
    f = read_fiducials(tmp_path, 7, fs=500, n_samples=5000)
    assert (f.n_beats == 8).all()
    np.testing.assert_array_equal(f.beats[5], beats)


def test_points_beyond_the_record_become_nan(tmp_path: Path):
    beats = _beats(n_beats=3, start=4400, rr=300)  # later beats run past 5000 samples
    write_fiducials(tmp_path, 9, Fiducials(500, 6000, [beats] * 12))
    f = read_fiducials(tmp_path, 9, fs=500, n_samples=5000)
    assert np.isnan(f.beats[0][f.beats[0] >= 5000]).all() and np.nanmax(f.beats[0]) < 5000


def test_has_fiducials(tmp_path: Path):
    assert not has_fiducials(tmp_path, 1)
    assert not has_fiducials(None, 1)
    write_fiducials(tmp_path, 1, Fiducials(500, 5000, [_beats()] * 12))
    assert has_fiducials(tmp_path, 1)
    lead_file(tmp_path, 1, "V6").unlink()
    assert not has_fiducials(tmp_path, 1)


def test_clear_errors_for_missing_and_corrupt_files(tmp_path: Path):
    with pytest.raises(DataError, match="fiducial_points/ecgdeli"):
        read_fiducials(tmp_path, 1)
    write_fiducials(tmp_path, 1, Fiducials(500, 5000, [_beats()] * 12))
    with pytest.raises(DataError, match="has no fiducial points for ecg_id 2"):
        read_fiducials(tmp_path, 2)
    lead_file(tmp_path, 1, "V2").unlink()
    with pytest.raises(DataError, match=r"00001_points_lead_V2\.atr.*missing"):
        read_fiducials(tmp_path, 1)
    lenient = read_fiducials(tmp_path, 1, strict=False)
    assert not lenient.quality[LEADS.index("V2")] and lenient.quality.sum() == 11
    raw = lead_file(tmp_path, 1, "V3").read_bytes()
    lead_file(tmp_path, 1, "V3").write_bytes(raw[: len(raw) // 2 + 1])      # truncated
    with pytest.raises(DataError, match=r"00001_points_lead_V3\.atr.*truncated"):
        read_fiducials(tmp_path, 1, strict=False)
    global_file(tmp_path, 1).write_bytes(b"garbage!")
    with pytest.raises(DataError, match="points_global"):
        read_fiducials(tmp_path, 1, strict=False)


def test_synthetic_set_is_its_own_ptbxl_plus_folder(synth_dir: Path):
    f = read_fiducials(synth_dir, 1)
    assert f.fs == 100 and f.n_samples == 1000 and f.quality.all()
    r = f.kind("R_peak")[1]
    assert np.isfinite(r).all() and (np.diff(r) > 40).all()   # RR > 400 ms (HR < 150)
