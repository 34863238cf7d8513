"""Clinical measurements from fiducials: hand-built beats whose intervals, axes and ST levels are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, LEADS, N_LEADS
from xand.delineation.measure import (CALIBRATIONS, QTC_FORMULAS, global_beats, measure, measure_ecg,
                                      measure_records)
from xand.errors import DataError, UnknownNameError
from xand.fiducials import Fiducials, kind_index

FS = 500.0
N = 5000
RR = 400  # samples = 800 ms -> 75 bpm
R0 = 600


def _beat(r: float, p_on=-90, qrs_on=-10, qrs_off=40, t_on=100, t_off=190) -> np.ndarray:
    """One beat's marks (samples) around R peak ``r``: PR 160 ms, QRS 100 ms, QT 400 ms at 500 Hz."""
    row = np.full(len(FIDUCIAL_KINDS), np.nan)
    for kind, off in (("P_on", p_on), ("P_peak", -70), ("P_off", -50), ("QRS_on", qrs_on), ("R_peak", 0),
                      ("QRS_off", qrs_off), ("J", qrs_off), ("T_on", t_on), ("T_peak", 150), ("T_off", t_off)):
        row[kind_index(kind)] = r + off
    return row


def _fiducials(n_beats: int = 10, **kw) -> Fiducials:
    rows = np.array([_beat(R0 + k * RR, **kw) for k in range(n_beats)])
    return Fiducials(FS, N, [rows.copy() for _ in range(N_LEADS)], np.ones(N_LEADS, bool), "test")


def test_rate_intervals_and_every_qtc_formula():
    m = measure(None, FS, _fiducials())
    assert m.n_beats == 10 and m.heart_rate_bpm == pytest.approx(75.0) and m.rr_ms == pytest.approx(800.0)
    assert m.sdnn_ms == pytest.approx(0.0) and m.rmssd_ms == pytest.approx(0.0)
    assert (m.pr_ms, m.qrs_ms, m.qt_ms, m.p_duration_ms) == pytest.approx((160.0, 100.0, 400.0, 80.0))
    rr = 0.8
    assert m.qtc("bazett") == pytest.approx(400 / math.sqrt(rr))
    assert m.qtc("fridericia") == pytest.approx(400 / rr ** (1 / 3))
    assert m.qtc("framingham") == pytest.approx(400 + 154 * (1 - rr))
    assert m.qtc("hodges") == pytest.approx(400 + 1.75 * (75 - 60))
    assert set(m.qtc_ms) == set(QTC_FORMULAS)
    with pytest.raises(UnknownNameError):
        m.qtc("nonsense")
    assert math.isnan(m.qrs_axis_deg) and m.st_j60_mv == {}  # no signal: timing only
    d = m.to_dict()
    assert d["qrs_axis_deg"] is None and "beats" not in d and d["qtc_ms"]["bazett"] == pytest.approx(447.2, abs=0.1)


def test_global_marks_take_the_earliest_onset_and_latest_offset_but_not_a_stray_lead():
    fid = _fiducials(n_beats=4)
    fid.beats[7][:, kind_index("QRS_on")] -= 5  # V2 starts 10 ms earlier: the multi-lead onset follows it
    fid.beats[9][:, kind_index("QRS_off")] += 5  # V4 ends 10 ms later
    fid.beats[11][:, kind_index("QRS_on")] -= 60  # V6 120 ms early: a stray mark, not the onset
    g = global_beats(fid)
    assert len(g) == 4
    assert (g[:, kind_index("QRS_on")] - g[:, kind_index("R_peak")] == -15).all()
    assert (g[:, kind_index("QRS_off")] - g[:, kind_index("R_peak")] == 45).all()
    assert measure(None, FS, fid).qrs_ms == pytest.approx(120.0)


def test_a_wave_no_lead_found_is_not_measured_and_says_why():
    fid = _fiducials(p_on=np.nan)
    for b in fid.beats:
        b[:, [kind_index("P_peak"), kind_index("P_off")]] = np.nan
    m = measure(None, FS, fid)
    assert math.isnan(m.pr_ms) and math.isnan(m.p_duration_ms) and any("no P wave" in n for n in m.notes)
    empty = measure(None, FS, Fiducials.empty(FS, N))
    assert empty.n_beats == 0 and math.isnan(empty.heart_rate_bpm) and empty.notes


def _signal(i_gain: float, avf_gain: float, st_v2: float = 0.0) -> np.ndarray:
    """A QRS of +1 mV (rectangular, QRS on to off) scaled per lead, and an ST plateau in V2."""
    x = np.zeros((N_LEADS, N))
    for k in range(10):
        r = R0 + k * RR
        x[LEADS.index("I"), r - 10:r + 41] = i_gain
        x[LEADS.index("aVF"), r - 10:r + 41] = avf_gain
        x[LEADS.index("V2"), r + 41:r + 100] = st_v2
    return x


@pytest.mark.parametrize("i_gain, avf_gain, axis", [(1.0, 0.0, 0.0), (0.0, 1.0, 90.0), (-1.0, 0.0, 180.0),
                                                    (1.0, math.sqrt(3) / 2, 45.0), (0.0, -1.0, -90.0)])
def test_frontal_qrs_axis_from_leads_i_and_avf(i_gain, avf_gain, axis):
    m = measure(_signal(i_gain, avf_gain), FS, _fiducials())
    assert m.qrs_axis_deg == pytest.approx(axis, abs=1e-6)


def test_st_level_at_j_plus_60_ms_against_the_pr_segment():
    m = measure(_signal(1.0, 0.0, st_v2=0.2), FS, _fiducials())
    assert m.st_j60_mv["V2"] == pytest.approx(0.2) and m.st_j60_mv["V5"] == pytest.approx(0.0)
    assert set(m.st_j60_mv) == set(LEADS)


def test_bad_input_is_refused_with_one_message():
    with pytest.raises(DataError):
        measure(np.zeros((3, N)), FS, _fiducials())
    with pytest.raises(DataError):
        measure(None, 0, _fiducials())
    with pytest.raises(DataError, match="samples"):
        measure(np.zeros((N_LEADS, N // 2)), FS, _fiducials())


def test_measure_ecg_on_synthetic_records_is_close_to_the_ground_truth(synth_dir):
    """Delineated and calibrated measurements against those from the synthetic set's exact fiducials."""
    import pandas as pd
    import wfdb

    from xand.data.ptbxl_plus import read_fiducials

    meta = pd.read_csv(synth_dir / "ptbxl_database.csv", index_col="ecg_id")
    errs = {"qrs_ms": [], "pr_ms": [], "qt_ms": [], "heart_rate_bpm": []}
    for eid in meta.index[:6]:
        sig, info = wfdb.rdsamp(str(synth_dir / meta.loc[eid, "filename_hr"]))
        ecg = sig.T.astype(np.float32)
        truth = measure(ecg, info["fs"], read_fiducials(synth_dir, int(eid), fs=info["fs"], n_samples=ecg.shape[1]))
        ours = measure_ecg(ecg, info["fs"])
        assert any("corrected" in n for n in ours.notes)
        for k in errs:
            errs[k].append(getattr(ours, k) - getattr(truth, k))
    assert np.nanmedian(np.abs(errs["heart_rate_bpm"])) < 1.0
    # loose bounds: the calibration was fitted on LUDB's real ECGs, not on the synthetic waves
    for k, tol in (("qrs_ms", 30), ("pr_ms", 30), ("qt_ms", 40)):
        assert np.nanmedian(np.abs(errs[k])) < tol, (k, errs[k])


def test_measure_records_reports_a_bad_record_and_goes_on(synth_dir, tmp_path):
    import shutil

    folder = tmp_path / "wfdb"
    folder.mkdir()
    for name in ("00001_hr", "00002_hr"):
        for ext in (".hea", ".dat"):
            src = next(synth_dir.rglob(name + ext))
            shutil.copy(src, folder / (name + ext))
    (folder / "broken.hea").write_text("this is not a header\n")
    table = measure_records(str(folder))
    assert list(table.index) == ["00001_hr", "00002_hr", "broken"]
    assert table.loc["broken", "error"] and table.loc[["00001_hr", "00002_hr"], "error"].isna().all()
    assert (table.loc[["00001_hr", "00002_hr"], "heart_rate_bpm"] > 30).all()
    assert {"qtc_bazett_ms", "st_V2_mv", "qrs_axis_deg"} <= set(table.columns)


def test_the_calibration_records_how_it_was_fitted():
    cal = CALIBRATIONS["neurokit"]
    assert set(cal.offsets_ms) <= set(FIDUCIAL_KINDS) and "qrs_ms" in cal.interval_offsets_ms
    assert "python -m xand ludb" in cal.command and "LUDB" in cal.fitted_on


def test_measure_cli_on_one_record(synth_dir, capsys):
    from xand.cli import main

    rec = next(synth_dir.rglob("00001_hr.hea"))
    assert main(["measure", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "heart_rate_bpm" in out and "ST at J+60 ms" in out and "1 record(s) measured" in out


def test_expert_marks_of_ludb_give_plausible_intervals(ludb_dir):
    from xand.data.ludb import list_ludb, read_ludb

    r = read_ludb(ludb_dir, list_ludb(ludb_dir)[0])
    m = measure(r.signal, r.fs, r.fiducials)
    assert 30 < m.heart_rate_bpm < 200 and 60 < m.qrs_ms < 200 and 250 < m.qt_ms < 600
    assert -180 <= m.qrs_axis_deg <= 180


def test_an_rr_across_a_missed_beat_is_left_out():
    fid = _fiducials(n_beats=10)
    for b in fid.beats:  # beat 5 seen by no lead
        b[5] = np.nan
    m = measure(None, FS, fid)
    assert m.heart_rate_bpm == pytest.approx(75.0) and m.sdnn_ms == pytest.approx(0.0)
    assert any("missed beat" in n for n in m.notes)


def test_the_correction_is_applied_at_500_hz_only_and_the_raw_values_kept(synth_dir):
    import wfdb
    import pandas as pd

    from xand.data.preprocess import resample

    meta = pd.read_csv(synth_dir / "ptbxl_database.csv", index_col="ecg_id")
    sig, info = wfdb.rdsamp(str(synth_dir / meta.loc[1, "filename_hr"]))
    ecg = sig.T.astype(np.float32)
    hi = measure_ecg(ecg, info["fs"])
    assert set(hi.raw_intervals_ms) == {"p_duration_ms", "pr_ms", "qrs_ms", "qt_ms"}
    off = CALIBRATIONS["neurokit"].interval_offsets_ms["qrs_ms"]
    assert hi.qrs_ms != pytest.approx(hi.raw_intervals_ms["qrs_ms"])
    assert abs(hi.qrs_ms - hi.raw_intervals_ms["qrs_ms"] + off) < 15  # the interval offset, +- the marks' shift
    lo = measure_ecg(resample(ecg, 500, 100), 100.0)
    assert lo.raw_intervals_ms == {} and any("fitted at 500 Hz" in n for n in lo.notes)
