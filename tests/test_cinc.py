"""xand.data.cinc: the CinC 2021 reader on the real excerpt, the a-priori SNOMED map and every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from xand.data.cinc import (
    SNOMED_TABLE, SNOMED_TO_HEAD, SNOMED_UNCERTAIN, CincFolder, cinc_labels, read_cinc, resample,
    snomed_table, source_of,
)
from xand.constants import EXCLUDED, HEADS, LEADS, NEGATIVE, POSITIVE
from xand.errors import DataError

EXPECTED_DX = {
    "E07500": [67741000119109, 426177001],
    "HR06002": [426177001, 426783006, 713426002],
    "JS20003": [284470004, 427084000, 55827005, 164934002, 427172004],
}


# ------------------------------------------------------------------ real excerpt

def test_reads_all_15_real_records(cinc_dir):
    names = sorted(p.stem for p in cinc_dir.glob("*.hea"))
    assert len(names) == 15
    for name in names:
        rec = read_cinc(cinc_dir / name)
        assert rec.record_name == name
        assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
        assert rec.fs == 500 and rec.n_samples == 5000 and rec.leads == LEADS
        assert np.all(np.isfinite(rec.signal))
        # mV scale: QRS peaks of a surface ECG are a few tenths to a few mV, never volts or microvolts
        peak = np.abs(rec.signal).max(axis=1)
        assert 0.05 < np.median(peak) < 5 and peak.max() < 10
        assert rec.snomed and all(isinstance(c, int) for c in rec.snomed)
        assert rec.sex in (0, 1) and 0 < rec.age < 110
    for name, dx in EXPECTED_DX.items():
        assert read_cinc(cinc_dir / f"{name}.hea").snomed == dx


def test_physical_units_and_limb_lead_relations(cinc_dir):
    rec = read_cinc(cinc_dir / "HR06000.mat")  # any extension is accepted
    raw = scipy.io.loadmat(cinc_dir / "HR06000.mat")["val"]
    np.testing.assert_allclose(rec.signal, raw / 1000.0, atol=1e-6)  # gain 1000/mV, baseline 0
    s = rec.signal
    i, ii, iii = s[LEADS.index("I")], s[LEADS.index("II")], s[LEADS.index("III")]
    # Einthoven holds to the quantisation of the stored digital values (1 uV)
    assert np.max(np.abs(iii - (ii - i))) < 0.01


def test_leads_are_reordered_by_name(cinc_dir, tmp_path):
    src = cinc_dir / "E07500"
    lines = (cinc_dir / "E07500.hea").read_text().splitlines()
    sig = lines[1:13]
    val = scipy.io.loadmat(f"{src}.mat")["val"]
    perm = list(range(12))[::-1]
    (tmp_path / "E07500.hea").write_text("\n".join([lines[0], *[sig[k] for k in perm], *lines[13:]]) + "\n")
    scipy.io.savemat(tmp_path / "E07500.mat", {"val": val[perm]}, format="4")
    np.testing.assert_array_equal(read_cinc(tmp_path / "E07500").signal, read_cinc(src).signal)


def test_folder_labels_sources_and_load(cinc_dir):
    folder = CincFolder(cinc_dir)
    assert len(folder) == 15 and folder.records == sorted(folder.records)
    df = folder.labels(check_signals=True)
    assert folder.n_skipped == 0 and len(df) == 15
    assert set(df["source"]) == {"Georgia", "PTB-XL", "Ningbo"}  # JS2xxxx lie in the Ningbo range
    assert set(df.columns) >= {*HEADS, "NORM", "age", "sex", "fs", "snomed"}
    assert set(df[list(HEADS)].to_numpy().ravel()) <= {POSITIVE, NEGATIVE, EXCLUDED}
    # PTB-XL records (HR*): the Challenge codes map back to the PTB-XL superclass of their statement
    hr = df.loc[[f"HR0600{k}" for k in range(5)], ["MI", "STTC", "CD", "HYP", "NORM"]]
    assert hr.loc["HR06000"].tolist() == [0, 1, 0, 0, 0]   # T wave abnormal (NDT) + sinus rhythm
    assert hr.loc["HR06001"].tolist() == [0, 1, 0, 0, 0]   # ST changes (NST_)
    assert hr.loc["HR06002"].tolist() == [0, 0, 1, 0, 0]   # incomplete RBBB
    assert hr.loc["HR06003"].tolist() == [0, 0, 0, 0, -1]  # sinus rhythm + tachycardia: no head
    assert hr.loc["HR06004"].tolist() == [0, 0, 0, 0, 1]   # sinus rhythm only -> NORM
    assert df.loc["E07500", "HYP"] == POSITIVE              # left atrial enlargement (LAO/LAE)
    assert df.loc["JS20004", "HYP"] == EXCLUDED             # LV high voltage only (VCLVH, a form statement)
    counts = folder.label_counts()
    assert int(counts[(counts["source"] == "PTB-XL") & (counts["head"] == "STTC")]["pos"].iloc[0]) == 2

    recs = list(folder)
    assert [r.record_name for r in recs] == folder.records
    x = folder.load("HR06000", fs=100)
    assert x.shape == (12, 1000) and x.dtype == np.float32
    full = recs[5].signal
    assert abs(float(x.std()) - float(full.std())) < 0.1 * float(full.std())


def test_resample_rates():
    t = np.arange(5140) / 257.0
    ecg = np.tile(np.sin(2 * np.pi * 1.0 * t), (12, 1)).astype(np.float32)  # INCART rate
    out = resample(ecg, 257, 100)
    assert out.shape == (12, 2000) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 200:1800], np.sin(2 * np.pi * np.arange(200, 1800) / 100.0), atol=0.02)
    assert resample(ecg, 257, 257).shape == ecg.shape


@pytest.mark.parametrize("name,source", [
    ("A0001", "CPSC"), ("Q0001", "CPSC-Extra"), ("I0001", "INCART"), ("S0001", "PTB"),
    ("HR00001", "PTB-XL"), ("E00001", "Georgia"), ("JS00001", "Chapman-Shaoxing"),
    ("JS10646", "Chapman-Shaoxing"), ("JS10647", "Ningbo"), ("X0001", "unknown"), ("weird", "unknown"),
])
def test_source_of(name, source):
    assert source_of(name) == source


# ------------------------------------------------------------------ SNOMED map

def test_snomed_map_is_consistent():
    for code, heads in SNOMED_TO_HEAD.items():
        assert set(heads) <= {*HEADS, "NORM"}
        assert not set(heads) & set(SNOMED_UNCERTAIN.get(code, ())), code
    for heads in SNOMED_UNCERTAIN.values():
        assert set(heads) <= set(HEADS)
    table = snomed_table()
    assert len(table) == len(SNOMED_TABLE) and table["code"].is_unique
    assert (table["name"].str.len() > 0).all() and (table["ptbxl"].str.len() > 0).all()
    # every code either establishes or suggests something
    assert ((table["positive"] != "") | (table["excluded"] != "")).all()


@pytest.mark.parametrize("code,head", [
    (164865005, "MI"), (57054005, "MI"), (54329005, "MI"), (164867002, "MI"),
    (164861001, "STTC"), (413444003, "STTC"), (426434006, "STTC"), (164934002, "STTC"),
    (428750005, "STTC"), (55930002, "STTC"), (111975006, "STTC"),
    (59118001, "CD"), (713427006, "CD"), (713426002, "CD"), (164909002, "CD"), (733534002, "CD"),
    (445118002, "CD"), (270492004, "CD"), (698252002, "CD"), (74390002, "CD"),
    (164873001, "HYP"), (89792004, "HYP"), (67741000119109, "HYP"), (446358003, "HYP"),
])
def test_positive_codes(code, head):
    labels = cinc_labels([code])
    assert labels[head] == POSITIVE
    assert all(v == NEGATIVE for h, v in labels.items() if h not in (head, "NORM"))
    assert labels["NORM"] == NEGATIVE


def test_form_level_codes_exclude_instead_of_labelling():
    assert cinc_labels([164931005]) == {"MI": -1, "STTC": -1, "CD": 0, "HYP": 0, "NORM": -1}  # ST elevation
    assert cinc_labels([429622005])["STTC"] == EXCLUDED      # ST depression (STD_ form)
    assert cinc_labels([59931005])["STTC"] == EXCLUDED       # T inversion (INVT form)
    assert cinc_labels([164917005])["MI"] == EXCLUDED        # Q wave abnormal (QWAVE form)
    assert cinc_labels([55827005])["HYP"] == EXCLUDED        # LV high voltage (VCLVH form)
    assert cinc_labels([164947007])["CD"] == EXCLUDED        # prolonged PR (LPR form)
    # a positive code wins over an uncertain one for the same head
    assert cinc_labels([59931005, 164934002])["STTC"] == POSITIVE
    assert cinc_labels([55827005, 164873001])["HYP"] == POSITIVE


def test_rhythm_and_unmapped_codes_are_negative_and_norm_rules():
    assert cinc_labels([426783006]) == {"MI": 0, "STTC": 0, "CD": 0, "HYP": 0, "NORM": 1}
    assert cinc_labels(["426783006"])["NORM"] == POSITIVE  # codes given as strings work too
    labels = cinc_labels([164889003, 427172004])  # atrial fibrillation, PVC: no head
    assert [labels[h] for h in HEADS] == [0, 0, 0, 0] and labels["NORM"] == EXCLUDED
    assert cinc_labels([10370003])["CD"] == EXCLUDED  # paced QRS hides conduction
    assert cinc_labels([]) == {h: EXCLUDED for h in (*HEADS, "NORM")}
    # the map is conservative: a scored Challenge code of unclear class is not mapped
    for unclear in (39732003, 47665007, 251146004, 164951009, 428417006):  # LAD, RAD, LQRSV, abQRS, ERe
        assert unclear not in SNOMED_TO_HEAD and unclear not in SNOMED_UNCERTAIN


# ------------------------------------------------------------------ bad inputs

@pytest.fixture
def rec_copy(cinc_dir, tmp_path):
    """A writable copy of E07501 (.hea + .mat) in tmp_path; returns the record base path."""
    for ext in (".hea", ".mat"):
        shutil.copy(cinc_dir / f"E07501{ext}", tmp_path / f"E07501{ext}")
        (tmp_path / f"E07501{ext}").chmod(0o644)
    return tmp_path / "E07501"


def _edit_header(base: Path, fn) -> None:
    hea = base.with_suffix(".hea")
    hea.write_text("\n".join(fn(hea.read_text().splitlines())) + "\n")


def test_copy_reads(rec_copy):
    assert read_cinc(rec_copy).signal.shape == (12, 5000)


def test_missing_header(tmp_path):
    with pytest.raises(DataError, match=r"nope\.hea: header file not found"):
        read_cinc(tmp_path / "nope")


def test_missing_mat(rec_copy):
    rec_copy.with_suffix(".mat").unlink()
    with pytest.raises(DataError, match=r"E07501\.mat: signal file not found"):
        read_cinc(rec_copy)


def test_wrong_lead_count(rec_copy):
    _edit_header(rec_copy, lambda ls: [ls[0].replace(" 12 ", " 11 ", 1), *ls[1:12], *ls[13:]])
    val = scipy.io.loadmat(f"{rec_copy}.mat")["val"][:11]
    scipy.io.savemat(f"{rec_copy}.mat", {"val": val}, format="4")
    with pytest.raises(DataError, match=r"E07501\.hea: has 11 leads \(expected 12 leads"):
        read_cinc(rec_copy)


def test_wrong_lead_names(rec_copy):
    _edit_header(rec_copy, lambda ls: [ls[0], *ls[1:12], ls[12].replace(" V6", " V7"), *ls[13:]])
    with pytest.raises(DataError, match=r"lead names .*V7"):
        read_cinc(rec_copy)


def test_nan_samples(rec_copy):
    val = scipy.io.loadmat(f"{rec_copy}.mat")["val"].astype(np.float64)
    val[3, 100:110] = np.nan
    scipy.io.savemat(f"{rec_copy}.mat", {"val": val}, format="4")
    with pytest.raises(DataError, match=r"E07501\.mat: 10 non-finite samples"):
        read_cinc(rec_copy)


def test_shape_mismatch(rec_copy):
    val = scipy.io.loadmat(f"{rec_copy}.mat")["val"][:, :4000]
    scipy.io.savemat(f"{rec_copy}.mat", {"val": val}, format="4")
    with pytest.raises(DataError, match=r"'val' has shape \(12, 4000\) \(expected \(12, 5000\)"):
        read_cinc(rec_copy)


def test_truncated_mat(rec_copy):
    mat = rec_copy.with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[:50_000])
    with pytest.raises(DataError, match=r"E07501\.mat: unreadable MATLAB file"):
        read_cinc(rec_copy)


def test_mat_without_val(rec_copy):
    scipy.io.savemat(f"{rec_copy}.mat", {"x": np.zeros((12, 5000), np.int16)}, format="4")
    with pytest.raises(DataError, match=r"no 'val' matrix"):
        read_cinc(rec_copy)


def test_corrupt_samples_fail_the_checksum(rec_copy):
    val = scipy.io.loadmat(f"{rec_copy}.mat")["val"]
    val[0, 10] += 7
    scipy.io.savemat(f"{rec_copy}.mat", {"val": val}, format="4")
    with pytest.raises(DataError, match=r"lead I checksum"):
        read_cinc(rec_copy)
    assert read_cinc(rec_copy, verify_checksum=False).signal.shape == (12, 5000)


@pytest.mark.parametrize("dx,pattern", [
    ("# Dx: 164934002;abc", r"unparseable Dx '164934002;abc'"),
    ("# Dx:", r"unparseable Dx ''"),
    ("# Rx: Unknown", r"has no '# Dx:' comment"),
])
def test_bad_dx(rec_copy, dx, pattern):
    _edit_header(rec_copy, lambda ls: [dx if ln.startswith("# Dx") else ln for ln in ls])
    with pytest.raises(DataError, match=pattern):
        read_cinc(rec_copy)


def test_unknown_and_missing_rate(rec_copy):
    _edit_header(rec_copy, lambda ls: [ls[0].replace(" 500 ", " 360 "), *ls[1:]])
    with pytest.raises(DataError, match=r"unknown sampling rate 360 Hz"):
        read_cinc(rec_copy)
    _edit_header(rec_copy, lambda ls: ["E07501 12", *ls[1:]])
    with pytest.raises(DataError, match=r"E07501\.hea: record line gives no sampling rate"):
        read_cinc(rec_copy)


def test_bad_units_and_gain(rec_copy):
    _edit_header(rec_copy, lambda ls: [ls[0], ls[1].replace("/mV", "/mmHg"), *ls[2:]])
    with pytest.raises(DataError, match=r"units \['mmhg'\]"):
        read_cinc(rec_copy)


def test_garbage_header(rec_copy):
    rec_copy.with_suffix(".hea").write_text("this is not a header\nat all\n")
    with pytest.raises(DataError, match=r"E07501\.hea"):
        read_cinc(rec_copy)


def test_folder_skips_and_counts_bad_records(cinc_dir, tmp_path):
    for name in ("E07500", "E07501", "HR06000", "JS20001"):
        for ext in (".hea", ".mat"):
            shutil.copy(cinc_dir / f"{name}{ext}", tmp_path / f"{name}{ext}")
            (tmp_path / f"{name}{ext}").chmod(0o644)
    (tmp_path / "E07501.mat").unlink()                                         # missing signal
    hea = tmp_path / "HR06000.hea"
    hea.write_text(hea.read_text().replace("# Dx: 164934002,426783006", "# Dx: T-wave abnormal"))
    mat = tmp_path / "JS20001.mat"
    mat.write_bytes(mat.read_bytes()[:1000])                                    # truncated signal
    sub = tmp_path / "nested"
    sub.mkdir()
    shutil.copy(cinc_dir / "E07500.hea", sub / "E07500.hea")                    # duplicate name

    folder = CincFolder(tmp_path)
    good = [r.record_name for r in folder]
    assert good == ["E07500"]
    reasons = dict(folder.skipped)
    assert folder.n_skipped == 4 == len(reasons)
    assert "duplicate record name" in reasons["E07500"]
    assert "signal file not found" in reasons["E07501"]
    assert "unparseable Dx" in reasons["HR06000"]
    assert "unreadable MATLAB file" in reasons["JS20001"]
    # labels() reads headers only unless asked; with signals checked the truncated one drops out
    assert list(folder.labels().index) == ["E07500", "JS20001"]
    assert list(folder.labels(check_signals=True).index) == ["E07500"]
    assert folder.n_skipped == 4  # the same problems are not counted twice


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        CincFolder(tmp_path / "missing")
    with pytest.raises(DataError, match="contains no .hea records"):
        CincFolder(tmp_path)
