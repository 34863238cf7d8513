"""xand.data.ptbxl: PTB-XL reader, pure labels, patient splits and every kind of bad input."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from xand.constants import EXCLUDED, HEADS, LEADS, NEGATIVE, POSITIVE
from xand.data.ptbxl import PTBXL, check_patient_splits, load_record, pure_labels, read_wfdb, summarize
from xand.errors import DataError, SplitLeakError

WFDB_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # PTB-XL spelling

STATEMENTS = pd.DataFrame(
    {"description": ["normal", "inferior MI", "anterior MI", "non-diag T", "LAFB", "LVH", "sinus rhythm"],
     "diagnostic": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.nan],
     "diagnostic_class": ["NORM", "MI", "MI", "STTC", "CD", "HYP", np.nan]},
    index=pd.Index(["NORM", "IMI", "AMI", "NDT", "LAFB", "LVH", "SR"]))
CODE_TO_CLASS = {"NORM": "NORM", "IMI": "MI", "AMI": "MI", "NDT": "STTC", "LAFB": "CD", "LVH": "HYP"}

#: (patient_id, strat_fold, scp_codes) per record of the small hand-made folder
ROWS = [
    (1, 1, {"NORM": 100.0, "SR": 0.0}),
    (1, 2, {"IMI": 100.0, "NDT": 50.0}),
    (2, 9, {"AMI": 35.0, "LVH": 100.0}),
    (3, 10, {"LAFB": 100.0, "IMI": 0.0, "AMI": 100.0}),
    (4, 5, {"NDT": 100.0}),
    (5, 10, {"LVH": 80.0, "SR": 0.0}),
]


def ecg(seed: int, fs: int = 100, n_leads: int = 12) -> np.ndarray:
    """A deterministic ``(T, n_leads)`` mV test signal (10 s)."""
    t = np.arange(10 * fs) / fs
    rng = np.random.default_rng(seed)
    base = np.sin(2 * np.pi * 1.2 * t)[:, None] * rng.uniform(0.2, 1.5, n_leads)
    return base + rng.normal(0, 0.02, (len(t), n_leads))


def write_record(path_base: Path, fs: int = 100, seed: int = 0, sig: np.ndarray | None = None,
                 names: list[str] | None = None) -> None:
    """Write one WFDB record (format 16) at ``path_base`` (no extension)."""
    path_base.parent.mkdir(parents=True, exist_ok=True)
    sig = ecg(seed, fs) if sig is None else sig
    n = sig.shape[1]
    wfdb.wrsamp(path_base.name, fs, ["mV"] * n, names or WFDB_LEADS[:n], p_signal=sig, fmt=["16"] * n,
                adc_gain=[1000.0] * n, baseline=[0] * n, write_dir=str(path_base.parent))


def make_ptbxl(root: Path, rows=ROWS, rates=(100, 500)) -> Path:
    """A small PTB-XL folder in ``root``: csvs exactly as PhysioNet's (subset of columns) + WFDB records."""
    recs = []
    for i, (pid, fold, codes) in enumerate(rows, start=1):
        lr, hr = f"records100/00000/{i:05d}_lr", f"records500/00000/{i:05d}_hr"
        for fs, rel in ((100, lr), (500, hr)):
            if fs in rates:
                write_record(root / rel, fs, seed=i)
        recs.append({"ecg_id": i, "patient_id": float(pid), "age": 40.0 + i, "sex": i % 2,
                     "device": ["CS-12   E", "AT-6 C 5.5"][i % 2], "report": f"report {i}",
                     "scp_codes": repr(codes), "strat_fold": fold, "filename_lr": lr, "filename_hr": hr})
    pd.DataFrame(recs).to_csv(root / "ptbxl_database.csv", index=False)
    STATEMENTS.to_csv(root / "scp_statements.csv")
    return root


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    return make_ptbxl(tmp_path_factory.mktemp("template") / "ptbxl")


@pytest.fixture
def small(_template, tmp_path) -> Path:
    """A fresh copy of the small folder (tests damage it)."""
    return Path(shutil.copytree(_template, tmp_path / "ptbxl"))


# ---------------------------------------------------------------------------------------------- labels

@pytest.mark.parametrize("codes, expected", [
    ({"NORM": 100.0}, {"MI": NEGATIVE, "STTC": NEGATIVE, "CD": NEGATIVE, "HYP": NEGATIVE}),
    ({"IMI": 100.0, "NDT": 50.0}, {"MI": POSITIVE, "STTC": EXCLUDED, "CD": NEGATIVE, "HYP": NEGATIVE}),
    ({"IMI": 0.0, "AMI": 100.0}, {"MI": POSITIVE, "STTC": NEGATIVE, "CD": NEGATIVE, "HYP": NEGATIVE}),
    ({"IMI": 0.0, "AMI": 99.0}, {"MI": EXCLUDED, "STTC": NEGATIVE, "CD": NEGATIVE, "HYP": NEGATIVE}),
    # an uncertain MI statement must not touch the other heads, a certain LVH must not rescue MI
    ({"AMI": 35.0, "LVH": 100.0}, {"MI": EXCLUDED, "STTC": NEGATIVE, "CD": NEGATIVE, "HYP": POSITIVE}),
    ({"SR": 0.0, "UNKNOWN": 100.0}, {h: NEGATIVE for h in HEADS}),
    ({}, {h: NEGATIVE for h in HEADS}),
])
def test_pure_labels_policy(codes, expected):
    assert pure_labels(codes, CODE_TO_CLASS) == expected


def test_labels_table_of_small_folder(small):
    lab = PTBXL(small).labels()
    assert list(lab.loc[2, list(HEADS)]) == [POSITIVE, EXCLUDED, NEGATIVE, NEGATIVE]
    assert list(lab.loc[3, list(HEADS)]) == [EXCLUDED, NEGATIVE, NEGATIVE, POSITIVE]
    assert list(lab.loc[3, ["sc_NORM", "sc_MI", "sc_HYP"]]) == [0, 1, 1]
    assert list(lab["split"]) == ["train", "train", "val", "test", "train", "test"]
    assert lab.loc[1, "sex"] == 1 and lab.loc[1, "age"] == 41.0 and lab.loc[1, "report"] == "report 1"
    ptb = PTBXL(small)
    assert [ptb.devices[c] for c in lab["device_code"]] == list(lab["device"])
    counts = ptb.label_counts()
    assert counts.loc[("MI", "train")].to_dict() == {"pos": 1, "neg": 2, "excluded": 0}
    assert counts.loc[("HYP", "test")].to_dict() == {"pos": 0, "neg": 1, "excluded": 1}
    assert counts.loc[("MI", "all")].sum() == len(lab)


def _independent_counts(data_dir: Path) -> pd.DataFrame:
    """Pure-label counts recomputed from the csvs with plain pandas (no xand code)."""
    db = pd.read_csv(data_dir / "ptbxl_database.csv", index_col="ecg_id")
    st = pd.read_csv(data_dir / "scp_statements.csv", index_col=0)
    st = st[st.diagnostic == 1]
    long = [(e, c, lik) for e, s in db.scp_codes.items() for c, lik in ast.literal_eval(s).items()]
    df = pd.DataFrame(long, columns=["ecg_id", "code", "lik"])
    df["cls"] = df.code.map(st.diagnostic_class)
    best = df.dropna(subset=["cls"]).groupby(["ecg_id", "cls"]).lik.max().unstack()
    best = best.reindex(db.index)
    fold = db.strat_fold
    split = np.where(fold <= 8, "train", np.where(fold == 9, "val", "test"))
    rows = {}
    for head in HEADS:
        lik = best[head] if head in best else pd.Series(np.nan, index=db.index)
        for s in ("train", "val", "test"):
            m = split == s
            rows[(head, s)] = {"pos": int((lik[m] == 100).sum()), "neg": int(lik[m].isna().sum()),
                               "excluded": int(((lik[m] >= 0) & (lik[m] < 100)).sum())}
    return pd.DataFrame(rows).T


def test_counts_on_real_excerpt_match_independent_pandas(ptbxl_dir):
    ptb = PTBXL(ptbxl_dir)
    ours = ptb.label_counts()
    ref = _independent_counts(ptbxl_dir)
    for (head, split), row in ref.iterrows():
        assert ours.loc[(head, split)].to_dict() == row.to_dict(), (head, split)
    assert ours.xs("all", level="split").sum(axis=1).eq(len(ptb)).all()


def test_summary_on_real_excerpt(ptbxl_dir):
    info = summarize(ptbxl_dir)
    assert info["records"] == 1000 and info["rates"] == [100, 500]
    assert info["record_files"] == {"100": 1000, "500": 200}
    assert info["patient_leak_check"]["ok"]
    assert sum(v["records"] for v in info["splits"].values()) == 1000
    assert sum(info["devices"].values()) == 1000
    mi = info["label_counts"]["MI"]["all"]
    assert mi["pos"] + mi["neg"] + mi["excluded"] == 1000


# ---------------------------------------------------------------------------------------------- splits

def test_patient_split_leak_is_named():
    df = pd.DataFrame({"patient_id": [7, 7, 8, 9], "split": ["train", "test", "val", "val"],
                       "strat_fold": [3, 10, 9, 9]})
    with pytest.raises(SplitLeakError) as ei:
        check_patient_splits(df)
    msg = str(ei.value)
    assert "patient 7" in msg and "fold 3" in msg and "fold 10" in msg and "patient 8" not in msg
    assert check_patient_splits(df[df.patient_id != 7]) == {"patients": 2, "records": 2}


def test_leaking_folder_fails_loudly(tmp_path):
    rows = [(1, 1, {"NORM": 100.0}), (1, 9, {"NORM": 100.0})]  # same patient in train and val
    root = make_ptbxl(tmp_path / "leak", rows, rates=(100,))
    with pytest.raises(SplitLeakError, match="patient 1"):
        PTBXL(root).labels()
    assert summarize(root)["patient_leak_check"]["ok"] is False
    from xand.cli import main

    assert main(["info", str(root), "--json"]) == 2  # the summary is printed, and the exit code says no


def test_real_excerpt_has_no_patient_leak(ptbxl_dir):
    lab = PTBXL(ptbxl_dir).labels()
    assert check_patient_splits(lab)["records"] == 1000


# --------------------------------------------------------------------------------------------- signals

def test_load_matches_rdsamp_and_rates(small):
    ptb = PTBXL(small)
    assert ptb.rates == (100, 500)
    x = ptb.load(1)
    ref, _ = wfdb.rdsamp(str(small / "records100/00000/00001_lr"))
    assert x.shape == (12, 1000) and x.dtype == np.float32
    np.testing.assert_allclose(x, ref.T, atol=1e-6)
    assert ptb.load(1, fs=500).shape == (12, 5000)


def test_only_500hz_is_resampled(small):
    shutil.rmtree(small / "records100")
    root = small
    ptb = PTBXL(root)
    assert ptb.rates == (500,)
    x = ptb.load(2)
    hr = ptb.load(2, fs=500)
    assert x.shape == (12, 1000)
    # the 1.2 Hz content survives the anti-aliasing filter; only the white noise above 50 Hz differs
    dec = hr[:, ::5]
    assert np.corrcoef(x.ravel(), dec.ravel())[0, 1] > 0.99
    assert np.abs(x[:, 50:-50] - dec[:, 50:-50]).max() < 0.15


def test_upsampling_is_refused(small):
    shutil.rmtree(small / "records500")
    with pytest.raises(DataError, match="00001_hr.hea"):
        PTBXL(small).load(1, fs=500)


def test_lead_names_case_and_order_are_normalised(tmp_path):
    sig = ecg(3)
    perm = list(range(12))[::-1]
    write_record(tmp_path / "r", sig=sig[:, perm], names=[LEADS[i].lower() for i in perm])
    x, fs = read_wfdb(tmp_path / "r")
    assert fs == 100
    np.testing.assert_allclose(x, sig.T, atol=1e-3)


def test_other_wfdb_formats_go_through_wfdb(tmp_path):
    sig = ecg(8)
    wfdb.wrsamp("r212", 100, ["mV"] * 12, WFDB_LEADS, p_signal=sig, fmt=["212"] * 12, adc_gain=[200.0] * 12,
                baseline=[0] * 12, write_dir=str(tmp_path))
    x, fs = read_wfdb(tmp_path / "r212.hea")
    ref, _ = wfdb.rdsamp(str(tmp_path / "r212"))
    assert fs == 100 and x.shape == (12, 1000)
    np.testing.assert_allclose(x, ref.T, atol=1e-6)
    dat = tmp_path / "r212.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    _raises_naming(lambda: read_wfdb(tmp_path / "r212"), tmp_path / "r212.hea", "unreadable WFDB record")


def test_resample_500_to_100_matches_records100(ptbxl_dir):
    ptb = PTBXL(ptbxl_dir)
    ids = np.random.default_rng(0).choice(np.arange(1, 201), size=60, replace=False)
    corr = []
    for e in ids:
        down = load_record({500: ptb.paths(e)[500]}, 100)
        corr.append(np.corrcoef(down.ravel(), ptb.load(e).ravel())[0, 1])
    corr = np.array(corr)
    # PTB-XL's own 100 Hz files were derived with another filter; noisy records differ a little more
    assert np.median(corr) > 0.98 and (corr > 0.95).mean() >= 0.9 and corr.min() > 0.85


# ------------------------------------------------------------------------------------------- bad input

def _raises_naming(fn, path: Path, *words: str) -> DataError:
    with pytest.raises(DataError) as ei:
        fn()
    msg = str(ei.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return ei.value


def test_missing_folder(tmp_path):
    _raises_naming(lambda: PTBXL(tmp_path / "nope"), tmp_path / "nope", "not found")


@pytest.mark.parametrize("name", ["ptbxl_database.csv", "scp_statements.csv"])
def test_missing_csv(small, name):
    (small / name).unlink()
    _raises_naming(lambda: PTBXL(small), small / name, "not found")


def test_missing_record_folders(small):
    shutil.rmtree(small / "records100")
    shutil.rmtree(small / "records500")
    _raises_naming(lambda: PTBXL(small), small, "records100")


def test_missing_record_files(small):
    (small / "records100/00000/00002_lr.dat").unlink()
    (small / "records500/00000/00002_hr.hea").unlink()
    ptb = PTBXL(small)
    _raises_naming(lambda: ptb.load(2), small / "records100/00000/00002_lr.dat", "signal file not found")
    _raises_naming(lambda: ptb.load(2, fs=500), small / "records500/00000/00002_hr.hea", "not found")


def test_corrupt_header(small):
    hea = small / "records100/00000/00003_lr.hea"
    hea.write_text("00003_lr twelve hundred\n" + "\n".join(hea.read_text().splitlines()[1:]))
    _raises_naming(lambda: PTBXL(small).load(3), hea, "unreadable record line")


def test_truncated_header(small):
    hea = small / "records100/00000/00003_lr.hea"
    hea.write_text("\n".join(hea.read_text().splitlines()[:6]))
    _raises_naming(lambda: PTBXL(small).load(3), hea, "truncated", "5 signal lines")


def test_empty_header(small):
    hea = small / "records100/00000/00003_lr.hea"
    hea.write_text("")
    _raises_naming(lambda: PTBXL(small).load(3), hea, "empty")


def test_truncated_dat(small):
    dat = small / "records100/00000/00004_lr.dat"
    dat.write_bytes(dat.read_bytes()[:10_000])
    _raises_naming(lambda: PTBXL(small).load(4), dat, "10000 bytes", "24000 bytes")


def test_corrupt_dat_fails_checksum(small):
    dat = small / "records100/00000/00004_lr.dat"
    raw = bytearray(dat.read_bytes())
    raw[100:110] = b"\x7f" * 10
    dat.write_bytes(bytes(raw))
    _raises_naming(lambda: PTBXL(small).load(4), dat, "checksum")


def test_wrong_lead_count(small):
    base = small / "records100/00000/00001_lr"
    write_record(base, sig=ecg(1, n_leads=11))
    _raises_naming(lambda: PTBXL(small).load(1), base.with_suffix(".hea"), "11 leads", "12 leads")


def test_wrong_lead_names(small):
    base = small / "records100/00000/00001_lr"
    write_record(base, names=WFDB_LEADS[:11] + ["V7"])
    _raises_naming(lambda: PTBXL(small).load(1), base.with_suffix(".hea"), "V7")


def test_nan_samples(small):
    base = small / "records100/00000/00005_lr"
    sig = ecg(5)
    sig[100:110, 7] = np.nan
    write_record(base, sig=sig)
    _raises_naming(lambda: PTBXL(small).load(5), base.with_suffix(".dat"), "10 NaN", "lead V2")


def test_unknown_sampling_rate(small):
    base = small / "records100/00000/00006_lr"
    write_record(base, fs=250)
    _raises_naming(lambda: PTBXL(small).load(6), base.with_suffix(".hea"), "250 Hz", "100 or 500")


def test_rate_that_does_not_match_folder(small):
    base = small / "records100/00000/00006_lr"
    write_record(base, fs=500)
    _raises_naming(lambda: PTBXL(small).load(6), base.with_suffix(".hea"), "500 Hz", "100 Hz")


def test_wrong_length(small):
    base = small / "records100/00000/00006_lr"
    write_record(base, sig=ecg(6)[:900])
    _raises_naming(lambda: PTBXL(small).load(6), base.with_suffix(".hea"), "900 samples")


@pytest.mark.parametrize("bad", ["{'NORM': 100.0", "{'NORM': 'high'}", "['NORM']", "{'NORM': 150}",
                                 "__import__('os')"])
def test_malformed_scp_codes(small, bad):
    csv = small / "ptbxl_database.csv"
    db = pd.read_csv(csv)
    db.loc[2, "scp_codes"] = bad
    db.to_csv(csv, index=False)
    _raises_naming(lambda: PTBXL(small), csv, "ecg_id 3", "malformed scp_codes", repr(bad))


def test_unknown_scp_code_is_named(small):
    csv = small / "ptbxl_database.csv"
    db = pd.read_csv(csv)
    db.loc[1, "scp_codes"] = "{'IMI ': 100.0, 'NORM': 0.0}"  # a typo would silently make an MI negative
    db.to_csv(csv, index=False)
    _raises_naming(lambda: PTBXL(small), csv, "ecg_id 2", "'IMI '", "scp_statements.csv")


def test_duplicate_ids(small):
    csv = small / "ptbxl_database.csv"
    db = pd.read_csv(csv)
    pd.concat([db, db.iloc[[1]]]).to_csv(csv, index=False)
    _raises_naming(lambda: PTBXL(small), csv, "duplicate ecg_id [2]")


def test_bad_strat_fold(small):
    csv = small / "ptbxl_database.csv"
    db = pd.read_csv(csv)
    db.loc[0, "strat_fold"] = 11
    db.to_csv(csv, index=False)
    _raises_naming(lambda: PTBXL(small), csv, "strat_fold")


@pytest.mark.parametrize("value", ["inf", "", "x"])
def test_a_patient_id_that_is_not_a_finite_number_is_named(small, value):
    """Found by fuzzing ptbxl_database.csv rows: "inf" passed the NaN check and crashed the int cast."""
    csv = small / "ptbxl_database.csv"
    db = pd.read_csv(csv, dtype={"patient_id": str})
    db.loc[1, "patient_id"] = value
    db.to_csv(csv, index=False)
    _raises_naming(lambda: PTBXL(small), csv, "ecg_id 2", "patient_id")


def test_unknown_ecg_id(small):
    _raises_naming(lambda: PTBXL(small).load(99), small / "ptbxl_database.csv", "no ecg_id 99")


def test_info_cli_json(ptbxl_dir, capsys):
    from xand.cli import main

    assert main(["info", str(ptbxl_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = _independent_counts(ptbxl_dir)
    for head in HEADS:
        for split in ("train", "val", "test"):
            assert info["label_counts"][head][split] == ref.loc[(head, split)].to_dict()
    assert main(["info", str(ptbxl_dir)]) == 0
    assert "patient leak check: ok" in capsys.readouterr().out


def test_info_cli_reports_bad_folder(tmp_path, capsys):
    from xand.cli import main

    assert main(["info", str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err


def test_info_cli_fails_on_records_without_files(small, capsys):
    """The hardening issue's probe: ``info`` did not check that the listed records have files (rc 0)."""
    from xand.cli import main

    assert main(["info", str(small)]) == 0
    for f in (small / "records100").rglob("00002_lr.*"):
        f.unlink()
    for f in (small / "records500").rglob("00002_hr.*") if (small / "records500").is_dir() else ():
        f.unlink()
    assert main(["info", str(small)]) == 2
    out = capsys.readouterr().out
    assert "record files: FAILED: 1 record(s)" in out and "ecg_id 2" in out
    assert main(["info", str(small), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["missing_records"] == [2]
