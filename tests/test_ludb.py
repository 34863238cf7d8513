"""LUDB reader on the real excerpt, the annotation parser on hand-made mark sequences, and a short
validation run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.errors import DataError
from xand.fiducials import kind_index
from xand.data.ludb import LUDB_EXTENSIONS, _group_beats, _parse_waves, list_ludb, read_ludb
from xand.delineation.validation import validate_ludb


def test_list_ludb(ludb_dir):
    recs = list_ludb(ludb_dir)
    assert recs[:3] == [1, 2, 3] and len(recs) == 60


def test_read_record_1(ludb_dir):
    r = read_ludb(ludb_dir, 1)
    assert r.signal.shape == (N_LEADS, 5000) and r.signal.dtype == np.float32
    assert r.fs == 500 and r.fiducials.fs == 500 and r.fiducials.n_samples == 5000
    assert r.fiducials.source == "ludb"
    assert "Sinus bradycardia" in r.diagnosis and "Left ventricular hypertrophy" in r.diagnosis
    # lead I starts (N)(t)(p)(N)...: first QRS 641/664/690, its T 773/840/887, no P before it
    first = r.fiducials.beats[0][0]
    got = {k: first[kind_index(k)] for k in ("QRS_on", "R_peak", "QRS_off", "T_on", "T_peak", "T_off")}
    assert got == {"QRS_on": 641, "R_peak": 664, "QRS_off": 690, "T_on": 773, "T_peak": 840, "T_off": 887}
    assert np.isnan(first[kind_index("P_on")]) and np.isnan(first[kind_index("J")])
    assert r.spans[0].tolist() == [641, 3996]
    lo, hi = r.annotated_span
    assert 0 < lo < hi < 5000


@pytest.mark.parametrize("record", [1, 7, 34])
def test_wave_counts_match_annotation_symbols(ludb_dir, record):
    import wfdb

    r = read_ludb(ludb_dir, record)
    for lead, ext in enumerate(LUDB_EXTENSIONS):
        ann = wfdb.rdann(str(ludb_dir / "data" / str(record)), ext)
        beats = r.fiducials.beats[lead]
        for sym, kind in (("N", "R_peak"), ("t", "T_peak"), ("p", "P_peak")):
            assert np.isfinite(beats[:, kind_index(kind)]).sum() == ann.symbol.count(sym), (lead, sym)
        # beats are ordered in time and every row has at least one mark
        assert np.isfinite(beats).any(axis=1).all()


def test_parse_irregular_marks():
    # "N)" (peak without onset), "()" (no peak symbol), "N()" (onset after the peak)
    syms = ["N", ")", "(", "t", ")", "(", ")", "N", "(", ")", "(", "p", ")"]
    samp = np.array([10, 20, 40, 60, 80, 90, 95, 110, 112, 130, 150, 160, 170])
    waves, dropped = _parse_waves(syms, samp)
    assert [w[0] for w in waves] == ["N", "t", "N", "p"]
    assert waves[1] == ("t", 40.0, 60.0, 80.0) and waves[3] == ("p", 150.0, 160.0, 170.0)
    assert waves[2][2] == 110.0 and np.isnan(waves[2][1]) and np.isnan(waves[2][3])
    assert waves[0][2:] == (10.0, 20.0) and np.isnan(waves[0][1])
    assert dropped == 2  # the "()" and the "()" after the second N
    beats = _group_beats(waves)
    # two QRS rows and a trailing P (no QRS after it) as its own row
    assert beats.shape == (3, len(FIDUCIAL_KINDS))
    assert beats[0, kind_index("T_peak")] == 60 and beats[1, kind_index("R_peak")] == 110
    assert beats[2, kind_index("P_peak")] == 160 and np.isnan(beats[2, kind_index("R_peak")])


def test_p_before_first_qrs_joins_it():
    waves = [("p", 5.0, 10.0, 15.0), ("p", 25.0, 30.0, 35.0), ("N", 40.0, 50.0, 60.0), ("t", 80.0, 90.0, 100.0)]
    beats = _group_beats(waves)
    # the P closest to the QRS joins it; the earlier one (e.g. a blocked P) keeps a row of its own
    assert beats.shape[0] == 2
    assert beats[1, kind_index("P_peak")] == 30 and beats[1, kind_index("T_peak")] == 90
    assert beats[0, kind_index("P_peak")] == 10 and np.isnan(beats[0, kind_index("R_peak")])


def test_missing_files_raise_data_error(ludb_dir, tmp_path):
    with pytest.raises(DataError):
        read_ludb(ludb_dir, 999)
    with pytest.raises(DataError):
        list_ludb(tmp_path / "nope")
    data = tmp_path / "data"
    data.mkdir()
    for f in (ludb_dir / "data").glob("2.*"):
        if f.suffix != ".v3":
            shutil.copy(f, data / f.name)
    with pytest.raises(DataError, match="v3"):
        read_ludb(tmp_path, 2)
    (data / "2.dat").write_bytes(b"\x00\x01")  # truncated signal
    with pytest.raises(DataError):
        read_ludb(tmp_path, 2)


@pytest.mark.slow
def test_validate_three_records(ludb_dir):
    table = validate_ludb(ludb_dir, records=[1, 2, 3], workers=2)
    assert list(table.columns) == ["n_ref", "n_det", "tp", "sensitivity", "ppv", "mean_ms", "sd_ms",
                                   "median_abs_ms", "cse_sd_ms", "pass"]
    for kind in ("P_on", "P_off", "QRS_on", "QRS_off", "T_off"):
        assert kind in table.index
        assert np.isfinite(table.loc[kind, "cse_sd_ms"])
    assert table.attrs["records"] == [1, 2, 3] and table.attrs["skipped"] == {}
    # every expert QRS of these sinus-rhythm records is found
    assert table.loc["R_peak", "sensitivity"] > 0.95
    assert (table["n_ref"] > 0).all()


def test_validate_skips_bad_record(ludb_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "5.hea").write_text("garbage\n")
    (data / "5.dat").write_bytes(b"")
    table = validate_ludb(tmp_path, records=[5], workers=1)
    assert table.attrs["records"] == [] and 5 in table.attrs["skipped"]
    assert table.loc["QRS_on", "n_ref"] == 0 and np.isnan(table.loc["QRS_on", "sensitivity"])


def test_cli_json(ludb_dir, capsys):
    import json

    from xand.cli import main

    assert main(["ludb", str(ludb_dir), "--records", "2", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["records"] == [2] and out["skipped"] == {}
    kinds = [row["fiducial"] for row in out["table"]]
    assert {"P_on", "P_off", "QRS_on", "QRS_off", "T_off"} <= set(kinds)
    assert {"sensitivity", "ppv", "mean_ms", "sd_ms", "cse_sd_ms", "pass"} <= set(out["table"][0])
    assert set(out["mask_iou"]) == {"MI", "STTC", "CD", "HYP"} and 0 < out["mask_iou"]["CD"] <= 1
