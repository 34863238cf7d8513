"""xand.data.upload: good WFDB / CinC / CSV / NPY uploads round-trip to (12, T) mV in LEADS order, and every bad
upload (wrong lead count, no or unknown rate, non-numeric or NaN data, not an ECG, mismatched pair, too
large, ...) is one DataError naming the file, with nothing left on disk."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from xand.constants import LEADS
from xand.errors import DataError, UnknownNameError
from xand.data.upload import (
    UPLOAD_FORMATS, UploadConfig, UploadedECG, input_seconds, model_window, parse_upload, predict_upload,
    save_upload, signal_digest,
)

FS = 500
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + bytes(64)


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def ecg(synth_dir) -> np.ndarray:
    """A realistic 10 s 12-lead ECG at 500 Hz in mV (a synthetic PTB-XL record)."""
    from xand.data.ptbxl import read_wfdb

    sig, fs = read_wfdb(synth_dir / "records500" / "00000" / "00001_hr")
    assert fs == FS
    return sig


def wfdb_files(folder: Path, ecg: np.ndarray, name: str = "rec", fs: float = FS, leads=LEADS,
               order: list[int] | None = None) -> dict[str, bytes]:
    """A WFDB record written by ``wfdb.wrsamp`` (format 16), as uploaded bytes."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    order = order or list(range(ecg.shape[0]))
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(order), sig_name=[leads[i] for i in order],
                p_signal=np.asarray(ecg[order], dtype=np.float64).T, fmt=["16"] * len(order),
                adc_gain=[1000.0] * len(order), baseline=[0] * len(order), write_dir=str(folder))
    return {f"{name}.hea": (folder / f"{name}.hea").read_bytes(), f"{name}.dat": (folder / f"{name}.dat").read_bytes()}


def cinc_files(folder: Path, ecg: np.ndarray, name: str = "E00001", fs: int = FS, order: list[int] | None = None,
               dx: str = "164873001,426783006", checksums: bool = True) -> dict[str, bytes]:
    """A CinC Challenge record: a header as the Challenge writes them + ``val`` in a MATLAB v4 file."""
    folder.mkdir(parents=True, exist_ok=True)
    order = order or list(range(12))
    val = np.rint(np.asarray(ecg)[order] * 1000).astype(np.int16)
    lines = [f"{name} 12 {fs} {val.shape[1]}"]
    for k, i in enumerate(order):
        cs = int(val[k].astype(np.int64).sum()) % 65536 if checksums else 0
        lines.append(f"{name}.mat 16+24 1000/mV 16 0 {int(val[k, 0])} {cs} 0 {LEADS[i]}")
    lines += ["# Age: 63", "# Sex: Female", f"# Dx: {dx}", "# Rx: Unknown"]
    scipy.io.savemat(folder / f"{name}.mat", {"val": val}, format="4")
    return {f"{name}.hea": ("\n".join(lines) + "\n").encode(), f"{name}.mat": (folder / f"{name}.mat").read_bytes()}


def csv_bytes(arr: np.ndarray, header=None, sep: str = ",", index: bool = False) -> bytes:
    return pd.DataFrame(arr, columns=header).to_csv(index=index, header=header is not None, sep=sep).encode()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ good round trips

def test_wfdb_pair_round_trip(ecg, tmp_path):
    rec = parse_upload(wfdb_files(tmp_path, ecg))
    assert rec.format == "wfdb" and rec.name == "rec" and rec.fs == FS
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-3)  # 1 µV quantisation
    assert rec.seconds == pytest.approx(10.0) and rec.files == ("rec.hea", "rec.dat")
    json.dumps(rec.summary())


def test_wfdb_leads_are_reordered_by_name(ecg, tmp_path):
    order = list(range(12))[::-1]
    rec = parse_upload(wfdb_files(tmp_path, ecg, order=order))
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-3)


def test_wfdb_at_another_rate_and_list_input(ecg, tmp_path):
    from xand.data.preprocess import resample

    x250 = resample(ecg, FS, 250)
    files = wfdb_files(tmp_path, x250, fs=250)
    rec = parse_upload(list(files.items()))  # (name, bytes) pairs as a browser sends them
    assert rec.fs == 250 and rec.signal.shape == (12, 2500)


def test_cinc_pair_round_trip_with_labels(ecg, tmp_path):
    files = cinc_files(tmp_path, ecg, order=[3, 0, 1, 2, 4, 5, 11, 10, 9, 8, 7, 6])
    rec = parse_upload(files)
    assert rec.format == "cinc" and rec.name == "E00001" and rec.fs == FS
    np.testing.assert_allclose(rec.signal, np.rint(ecg * 1000) / 1000, atol=1e-6)
    assert rec.meta["snomed"] == [164873001, 426783006]
    assert rec.meta["age"] == 63 and rec.meta["sex"] == "Female"


@pytest.mark.parametrize("layout", ["header", "header_shuffled", "rows", "columns", "semicolon", "index"])
def test_csv_round_trip(ecg, layout):
    if layout == "header":
        data = csv_bytes(ecg.T, header=list(LEADS))
    elif layout == "header_shuffled":
        perm = np.random.default_rng(0).permutation(12)
        data = csv_bytes(ecg[perm].T, header=[f"Lead {LEADS[i].upper()}" for i in perm])
    elif layout == "rows":
        data = csv_bytes(ecg)  # (12, T): one lead per row
    elif layout == "columns":
        data = csv_bytes(ecg.T)  # (T, 12), no header
    elif layout == "semicolon":
        data = csv_bytes(ecg.T, header=list(LEADS), sep=";")
    else:  # pandas' to_csv with its index column
        data = csv_bytes(ecg.T, header=list(LEADS), index=True)
    rec = parse_upload({"my ecg.csv": data}, fs=FS, units="mV")
    assert rec.format == "csv" and rec.name == "my ecg" and rec.fs == FS
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-5)


def test_csv_in_microvolts_and_txt(ecg):
    rec = parse_upload({"a.txt": csv_bytes(ecg.T * 1000, sep=" ")}, fs=FS, units="µV")
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-4)
    assert rec.meta["units"] == "µV"


@pytest.mark.parametrize("transpose", [False, True])
def test_npy_round_trip(ecg, transpose):
    arr = (ecg.T if transpose else ecg).astype(np.float64)
    rec = parse_upload({"x.npy": npy_bytes(arr)}, fs=FS)
    assert rec.format == "npy"
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-6)
    rec_uv = parse_upload({"x.npy": npy_bytes(np.rint(ecg * 1000).astype(np.int32))}, fs=FS, units="uV")
    np.testing.assert_allclose(rec_uv.signal, np.rint(ecg * 1000) / 1000, atol=1e-6)


def test_nothing_is_left_on_disk(ecg, tmp_path, monkeypatch):
    src = wfdb_files(tmp_path / "src", ecg)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    parse_upload(src)
    parse_upload(cinc_files(tmp_path / "cinc", ecg))
    with pytest.raises(DataError):
        parse_upload({"rec.hea": src["rec.hea"], "rec.dat": src["rec.dat"][:-10]})
    assert list(scratch.iterdir()) == []


def test_registry_lists_every_format():
    assert set(UPLOAD_FORMATS) == {"wfdb", "cinc", "csv", "txt", "npy"}
    assert all(f.needs_rate == (f.name in ("csv", "txt", "npy")) for f in UPLOAD_FORMATS.values())


# ------------------------------------------------------------------------------------------ bad uploads

def _bad_cases(ecg: np.ndarray, tmp: Path) -> dict[str, tuple[dict, dict, str, str]]:
    """id -> (files, parse kwargs, file named in the message, words of the message)."""
    good = wfdb_files(tmp / "good", ecg)
    other = wfdb_files(tmp / "other", np.roll(ecg, 1, axis=0))  # same name, size and header layout
    nan_csv = ecg.T.copy()
    nan_csv[100, 4] = np.nan
    nan_npy = ecg.copy()
    nan_npy[2, 7] = np.nan
    short = ecg[:, :FS]  # 1 s
    hea_norate = good["rec.hea"].decode().splitlines()
    hea_norate[0] = "rec 12"
    hea_50 = good["rec.hea"].decode().replace("rec 12 500 5000", "rec 12 50 5000", 1)
    wfdb_nan = ecg.copy()
    wfdb_nan[0, 10] = np.nan
    cinc = cinc_files(tmp / "cinc", ecg)
    cinc_other = cinc_files(tmp / "cinc_other", np.roll(ecg, 1, axis=0))
    cinc_short = cinc_files(tmp / "cinc_short", ecg[:, :4000])
    return {
        # wrong lead count
        "csv_11_leads": ({"a.csv": csv_bytes(ecg[:11].T)}, {"fs": FS}, "a.csv", "11 leads"),
        "npy_11_leads": ({"a.npy": npy_bytes(ecg[:11])}, {"fs": FS}, "a.npy", "11 leads"),
        "npy_1d": ({"a.npy": npy_bytes(ecg[0])}, {"fs": FS}, "a.npy", "1 dimension"),
        "wfdb_11_leads": (wfdb_files(tmp / "w11", ecg[:11]), {}, "rec.hea", "11 leads"),
        "csv_unknown_lead": ({"a.csv": csv_bytes(ecg.T, header=[*LEADS[:11], "V7"])}, {"fs": FS}, "a.csv",
                             "unknown: ['V7']"),
        # absent / unknown rate
        "csv_no_rate": ({"a.csv": csv_bytes(ecg.T)}, {"fs": None}, "a.csv", "no sampling rate"),
        "npy_nan_rate": ({"a.npy": npy_bytes(ecg)}, {"fs": float("nan")}, "a.npy", "no sampling rate"),
        "csv_rate_too_low": ({"a.csv": csv_bytes(ecg.T)}, {"fs": 20}, "a.csv", "sampling rate 20 Hz"),
        "wfdb_no_rate": ({"rec.hea": ("\n".join(hea_norate) + "\n").encode(), "rec.dat": good["rec.dat"]}, {},
                         "rec.hea", "no sampling rate"),
        "wfdb_rate_50": ({"rec.hea": hea_50.encode(), "rec.dat": good["rec.dat"]}, {}, "rec.hea",
                         "sampling rate 50 Hz"),
        # non-numeric / NaN
        "csv_text_cell": ({"a.csv": csv_bytes(ecg.T, header=list(LEADS)).replace(b"\n", b"\nabc", 1)},
                          {"fs": FS}, "a.csv", "non-numeric value"),
        "csv_nan_cell": ({"a.csv": csv_bytes(nan_csv, header=list(LEADS))}, {"fs": FS}, "a.csv",
                         "NaN/missing samples (first in lead aVL"),
        "csv_nan_text": ({"a.csv": csv_bytes(nan_csv).replace(b",,", b",nan,")}, {"fs": FS}, "a.csv",
                         "NaN/missing samples (first in lead aVL"),
        "csv_ragged": ({"a.csv": csv_bytes(ecg.T).replace(b"\n", b"\n1,", 1)}, {"fs": FS}, "a.csv",
                       "not a readable table"),
        "npy_nan": ({"a.npy": npy_bytes(nan_npy)}, {"fs": FS}, "a.npy", "NaN/missing samples (first in lead III"),
        "npy_strings": ({"a.npy": npy_bytes(np.full((12, 1000), "x"))}, {"fs": FS}, "a.npy", "dtype"),
        "wfdb_nan": (wfdb_files(tmp / "wnan", wfdb_nan), {}, "rec.dat", "NaN/missing samples (first in lead I "),
        # not an ECG
        "png_as_csv": ({"a.csv": PNG}, {"fs": FS}, "a.csv", "is a PNG image, not ECG data"),
        "png_as_npy": ({"a.npy": PNG}, {"fs": FS}, "a.npy", "is a PNG image"),
        "png_as_dat": ({"rec.hea": good["rec.hea"], "rec.dat": PNG}, {}, "rec.dat", "is a PNG image"),
        "pdf_as_hea": ({"rec.hea": b"%PDF-1.4\n...", "rec.dat": good["rec.dat"]}, {}, "rec.hea", "PDF"),
        "text_as_hea": ({"rec.hea": b"hello world\n", "rec.dat": good["rec.dat"]}, {}, "rec.hea",
                        "not a WFDB header"),
        "binary_as_csv": ({"a.csv": bytes(range(256)) * 8}, {"fs": FS}, "a.csv", "binary file"),
        "text_as_npy": ({"a.npy": b"I, II, III\n1, 2, 3\n"}, {"fs": FS}, "a.npy", "not a NumPy .npy array"),
        "zip_as_npy": ({"a.npy": b"PK\x03\x04" + bytes(40)}, {"fs": FS}, "a.npy", "ZIP archive"),
        "text_as_mat": ({"E00001.hea": cinc["E00001.hea"], "E00001.mat": b"not a matlab file at all " * 10}, {},
                        "E00001.mat", "unreadable MATLAB file"),
        "microvolts_as_mV": ({"a.csv": csv_bytes(ecg.T * 1000)}, {"fs": FS, "units": "mV"}, "a.csv",
                             "in µV rather than mV"),
        "millivolts_as_uV": ({"a.csv": csv_bytes(ecg.T)}, {"fs": FS, "units": "µV"}, "a.csv",
                             "in mV rather than µV"),
        "flat": ({"a.npy": npy_bytes(np.zeros((12, 5000)))}, {"fs": FS}, "a.npy", "flat"),
        "too_short": ({"a.npy": npy_bytes(short)}, {"fs": FS}, "a.npy", "lasts 1.00 s"),
        # mismatched pair
        "different_stems": ({"rec.hea": good["rec.hea"], "other.dat": good["rec.dat"]}, {}, "rec.hea + other.dat",
                            "different record names"),
        "header_names_other_file": ({"x.hea": good["rec.hea"], "x.dat": good["rec.dat"]}, {}, "x.hea",
                                    "names the signal file(s) ['rec.dat'] but x.dat was uploaded"),
        "dat_of_other_record": ({"rec.hea": good["rec.hea"], "rec.dat": other["rec.dat"]}, {}, "rec.dat",
                                "does not belong to this header"),
        "dat_truncated": ({"rec.hea": good["rec.hea"], "rec.dat": good["rec.dat"][:-1000]}, {}, "rec.dat",
                          "the files do not belong together, or the file is truncated"),
        "mat_of_other_record": ({"E00001.hea": cinc["E00001.hea"], "E00001.mat": cinc_other["E00001.mat"]}, {},
                                "E00001.mat", "does not belong to this header"),
        "mat_other_length": ({"E00001.hea": cinc["E00001.hea"], "E00001.mat": cinc_short["E00001.mat"]}, {},
                             "E00001.mat", "'val' has shape (12, 4000)"),
        "hea_with_mat_of_wfdb": ({"rec.hea": good["rec.hea"], "rec.mat": cinc["E00001.mat"]}, {}, "rec.hea",
                                 "names the signal file(s) ['rec.dat'] but rec.mat was uploaded"),
        # what makes a record
        "header_alone": ({"rec.hea": good["rec.hea"]}, {}, "rec.hea", "header without its signal file"),
        "signal_alone": ({"rec.dat": good["rec.dat"]}, {}, "rec.dat", "signal file without its header"),
        "two_records": ({**good, "E00001.hea": cinc["E00001.hea"], "E00001.mat": cinc["E00001.mat"]}, {},
                        "rec.hea, rec.dat, E00001.hea, E00001.mat", "one record at a time"),
        "csv_and_npy": ({"a.csv": csv_bytes(ecg.T), "a.npy": npy_bytes(ecg)}, {"fs": FS}, "a.csv, a.npy",
                        "not a combination that makes one record"),
        "unsupported_type": ({"ecg.xml": b"<AnnotatedECG/>"}, {}, "ecg.xml", "unsupported file type '.xml'"),
        "empty_file": ({"a.csv": b""}, {"fs": FS}, "a.csv", "is empty"),
        "nothing": ({}, {}, "", "no file uploaded"),
        "too_large": ({"a.npy": npy_bytes(ecg)}, {"fs": FS, "cfg": UploadConfig(max_bytes=100_000)}, "a.npy",
                      "MB uploaded"),
    }


BAD_IDS = ["csv_11_leads", "npy_11_leads", "npy_1d", "wfdb_11_leads", "csv_unknown_lead", "csv_no_rate",
           "npy_nan_rate", "csv_rate_too_low", "wfdb_no_rate", "wfdb_rate_50", "csv_text_cell", "csv_nan_cell",
           "csv_nan_text", "csv_ragged", "npy_nan", "npy_strings", "wfdb_nan", "png_as_csv", "png_as_npy", "png_as_dat",
           "pdf_as_hea", "text_as_hea", "binary_as_csv", "text_as_npy", "zip_as_npy", "text_as_mat",
           "microvolts_as_mV", "millivolts_as_uV", "flat", "too_short", "different_stems",
           "header_names_other_file", "dat_of_other_record", "dat_truncated", "mat_of_other_record",
           "mat_other_length", "hea_with_mat_of_wfdb", "header_alone", "signal_alone", "two_records",
           "csv_and_npy", "unsupported_type", "empty_file", "nothing", "too_large"]


@pytest.fixture(scope="module")
def bad_cases(ecg, tmp_path_factory):
    return _bad_cases(ecg, tmp_path_factory.mktemp("bad_uploads"))


def test_every_bad_case_is_listed(bad_cases):
    assert sorted(bad_cases) == sorted(BAD_IDS)


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_upload_is_one_clear_message(bad_cases, case):
    files, kwargs, where, words = bad_cases[case]
    with pytest.raises(DataError) as info:
        parse_upload(files, **kwargs)
    msg = str(info.value)
    assert words in msg, msg
    assert "\n" not in msg  # one message, one line
    if where:
        assert msg.startswith(f"{where}: "), msg
    assert info.value.expected  # and it says what was expected


def test_unknown_units_is_a_registry_error(ecg):
    with pytest.raises(UnknownNameError, match="unknown unit 'V'"):
        parse_upload({"a.npy": npy_bytes(ecg)}, fs=FS, units="V")


def test_a_path_in_the_file_name_is_ignored(ecg, tmp_path):
    files = wfdb_files(tmp_path, ecg)
    rec = parse_upload({f"../../{k}": v for k, v in files.items()})
    assert rec.files == ("rec.hea", "rec.dat")


# ------------------------------------------------------------------------------- model window and save

def test_model_window_cuts_or_notes(ecg):
    win, note = model_window(ecg, FS, 10.0)
    assert win.shape == (12, 5000) and note is None
    long = np.concatenate([ecg, ecg], axis=1)
    win, note = model_window(long, FS, 10.0)
    assert win.shape == (12, 5000) and "first 10 s" in note
    np.testing.assert_array_equal(win, ecg)
    win, note = model_window(ecg[:, :2000], FS, 10.0)
    assert win.shape == (12, 2000) and "zero-padded" in note


class _StandIn:
    """What ``predict_upload`` uses of ``xand.training.trainer.Predictor``."""

    fs, n_samples = 100, 1000
    heads = ("MI", "CD")

    def __init__(self):
        self.seen = None

    def predict_proba(self, ecg, fs):
        self.seen = (np.asarray(ecg).shape, fs)
        return {"MI": np.array([0.25]), "CD": np.array([0.75])}


def test_predict_upload_gives_the_model_its_window(ecg):
    rec = UploadedECG("r", np.concatenate([ecg, ecg], axis=1), FS, "npy", ("r.npy",))
    pred = _StandIn()
    assert input_seconds(pred) == 10.0
    assert predict_upload(pred, rec) == {"MI": 0.25, "CD": 0.75}
    assert pred.seen == ((1, 12, 5000), FS)


def test_digest_identifies_signal_and_rate(ecg):
    assert signal_digest(ecg, FS) == signal_digest(ecg.copy(), FS)
    assert signal_digest(ecg, FS) != signal_digest(ecg, 250)
    assert UploadedECG("a", ecg, FS, "npy", ()).digest == signal_digest(ecg, FS)


def test_save_upload_keeps_files_and_what_was_parsed(ecg, tmp_path):
    files = wfdb_files(tmp_path / "src", ecg)
    rec = parse_upload(files)
    dest = save_upload(files, tmp_path / "uploads", rec)
    assert dest.parent == tmp_path / "uploads" and dest.name.endswith("-rec")
    assert sorted(p.name for p in dest.iterdir()) == ["rec.dat", "rec.hea", "upload.json"]
    assert (dest / "rec.dat").read_bytes() == files["rec.dat"]
    meta = json.loads((dest / "upload.json").read_text())
    assert meta["fs"] == FS and meta["format"] == "wfdb" and meta["digest"] == rec.digest
    again = save_upload(files, tmp_path / "uploads", rec)  # a second save never overwrites the first
    assert again != dest and again.is_dir()


@pytest.mark.parametrize("rate", ["-500", "-1", "0", "abc"])
def test_a_rate_that_is_not_a_positive_number_is_refused(ecg, tmp_path, rate):
    """The hardening issue's probe: ``rec 12 -500 5000`` was read as 250 Hz (the heart rate halved)."""
    from xand.data.cinc import read_cinc_header

    files = wfdb_files(tmp_path / "w", ecg)
    hea = files["rec.hea"].decode().splitlines()
    name, n, _fs, *rest = hea[0].split()
    files["rec.hea"] = "\n".join([" ".join([name, n, rate, *rest]), *hea[1:]]).encode()
    with pytest.raises(DataError, match="sampling rate"):
        parse_upload(files)
    cinc = cinc_files(tmp_path / "c", ecg)
    folder = tmp_path / "c2"
    folder.mkdir()
    for fname, data in cinc.items():
        if fname.endswith(".hea"):
            lines = data.decode().splitlines()
            first = lines[0].split()
            first[2] = rate
            data = "\n".join([" ".join(first), *lines[1:]]).encode()
        (folder / fname).write_bytes(data)
    with pytest.raises(DataError, match="sampling rate"):
        read_cinc_header(folder / "E00001.hea")


@pytest.mark.parametrize("gain", ["-1000", "nan"])
def test_a_negative_or_nan_gain_is_refused_naming_the_lead(ecg, tmp_path, gain):
    """The hardening issue's probe: a negative gain silently inverted the lead, ``nan`` gave a garbled message."""
    files = wfdb_files(tmp_path / "w", ecg)
    lines = files["rec.hea"].decode().splitlines()
    tok = lines[3].split()  # the third signal line: lead III
    tok[2] = tok[2].replace("1000", gain, 1)
    lines[3] = " ".join(tok)
    files["rec.hea"] = "\n".join(lines).encode()
    with pytest.raises(DataError, match=r"ADC gain .* for lead III"):
        parse_upload(files)


@pytest.mark.parametrize("name", ["rec\x00.hea", "a" * 300 + ".hea", "x\n.hea", ""])
def test_a_file_name_with_control_characters_or_too_long_is_refused(ecg, tmp_path, name):
    """The hardening issue's probe: a NUL or 300 characters in a name escaped as ValueError / OSError."""
    files = wfdb_files(tmp_path / "w", ecg)
    with pytest.raises(DataError) as exc:
        parse_upload({name: files["rec.hea"], "rec.dat": files["rec.dat"]})
    assert "\x00" not in str(exc.value) and len(str(exc.value)) < 400


def _mat4_header_only(rows: int, cols: int, payload: int = 700_000) -> bytes:
    """A MATLAB v4 file whose 'val' header declares an int16 rows x cols matrix, with only ``payload`` bytes."""
    import struct

    return struct.pack("<5i", 30, rows, cols, 0, 4) + b"val\x00" + bytes(payload)


def test_a_small_mat_declaring_a_huge_matrix_is_refused_before_allocating(ecg, tmp_path):
    """The hardening issue's probe: 0.70 MB of zeros declaring 12 x 30M int16 took +3.5 GB, then MemoryError."""
    import tracemalloc

    from xand.data.cinc import read_cinc

    cinc = cinc_files(tmp_path / "c", ecg)
    tracemalloc.start()
    with pytest.raises(DataError, match=r"'val' has shape \(12, 30000000\)"):
        parse_upload({"E00001.hea": cinc["E00001.hea"], "E00001.mat": _mat4_header_only(12, 30_000_000)})
    # the same in a CinC folder
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "E00001.hea").write_bytes(cinc["E00001.hea"])
    (folder / "E00001.mat").write_bytes(_mat4_header_only(12, 30_000_000))
    with pytest.raises(DataError, match="'val' has shape"):
        read_cinc(folder / "E00001")
    # a header that itself declares 30M samples is refused from the header alone
    lines = cinc["E00001.hea"].decode().splitlines()
    first = lines[0].split()
    first[3] = "30000000"
    hea = "\n".join([" ".join(first), *lines[1:]]).encode()
    with pytest.raises(DataError, match="declares 30000000 samples"):
        parse_upload({"E00001.hea": hea, "E00001.mat": _mat4_header_only(12, 30_000_000)})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20  # the goal: a rejected input costs at most 64 MB


def test_mat_tricks_are_refused_before_the_matrix_is_read(ecg, tmp_path):
    """Review findings: a second, huge 'val' behind a small one; a cell 'val'; a compressed v5 'val' that
    inflates far beyond the upload limit."""
    import tracemalloc

    from xand.data.matfile import load_val

    cinc = cinc_files(tmp_path / "c", ecg)
    n = int(cinc["E00001.hea"].decode().split()[3])
    good = io.BytesIO()
    scipy.io.savemat(good, {"val": np.zeros((12, n), np.int16)}, format="4")
    twice = good.getvalue() + _mat4_header_only(12, 30_000_000, payload=0)
    with pytest.raises(DataError, match="2 variables named 'val'"):
        load_val(twice, "x.mat", (12, n))
    cell = io.BytesIO()
    cells = np.empty((12, 10), dtype=object)
    for i in np.ndindex(cells.shape):
        cells[i] = np.zeros(3)  # each element could be any size
    scipy.io.savemat(cell, {"val": cells})
    with pytest.raises(DataError, match="'val' is a MATLAB cell"):
        load_val(cell.getvalue(), "x.mat", (12, 10))
    # a v5 file whose compressed 'val' declares 12 x 3M int16 (72 MB) from a few hundred kB
    big = io.BytesIO()
    scipy.io.savemat(big, {"val": np.zeros((12, 3_000_000), np.int16)}, do_compression=True)
    assert len(big.getvalue()) < 2**20
    tracemalloc.start()
    with pytest.raises(DataError, match="MB once decompressed"):
        load_val(big.getvalue(), "x.mat", (12, 3_000_000), max_bytes=20 * 2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20


def test_a_wide_csv_is_judged_by_its_shape_before_any_cell_is_parsed():
    """The hardening probe: 12 x 200k columns (9 MB) took 9.4 s and 370 MB before the refusal."""
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(12, 200_000)) * 0.5).round(3)
    text = "\n".join(",".join(map(str, r)) for r in a).encode()
    with pytest.raises(DataError, match=r"about 200000 samples per lead \(800 s at 250 Hz\)"):
        parse_upload([("wide.csv", text)], fs=250)
    u = parse_upload([("wide.csv", text)], fs=500)  # 400 s: accepted, one lead per row
    assert u.signal.shape == (12, 200_000)
    np.testing.assert_allclose(u.signal, a.astype(np.float32), atol=1e-6)


def test_an_npy_header_declaring_more_than_the_file_holds_is_refused_before_allocation():
    import io

    h = np.lib.format.header_data_from_array_1_0(np.zeros((12, 10), np.float32))
    h["shape"] = (12, 50_000_000)  # 2.4 GB declared in a 4.9 kB file
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, h)
    buf.write(b"\0" * 4800)
    with pytest.raises(DataError, match=r"declares shape \(12, 50000000\).*holds 4800"):
        parse_upload([("a.npy", buf.getvalue())], fs=500)


def test_a_long_comment_or_an_index_column_does_not_make_a_csv_look_too_long():
    rng = np.random.default_rng(1)
    a = (rng.normal(size=(500 * 100, 12)) * 0.5).round(3)  # 100 s at 500 Hz
    body = "\n".join(f"{i}," + ",".join(map(str, r)) for i, r in enumerate(a))
    text = ("# " + " ".join(["word"] * 60) + "\n" + "index," + ",".join(LEADS) + "\n" + body).encode()
    u = parse_upload([("ecg.csv", text)], fs=500)
    assert u.signal.shape == (12, 500 * 100)


@pytest.mark.parametrize("header", [False, True])
def test_an_accepted_csv_peaks_under_ten_times_the_signal_it_yields(header):
    """The hardening goal for accepted input (was 18.5x: the decoded text and pandas' float64 frame).
    tracemalloc sees numpy's allocations; ``python -m xand bench upload`` measures the resident set."""
    import tracemalloc

    from xand.bench.upload import _csv, _signal

    data = _csv(_signal(30_000), header=header)  # 60 s at 500 Hz, about 2.6 MB of text
    tracemalloc.start()
    u = parse_upload([("ecg.csv", data)], fs=500)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert u.signal.shape == (12, 30_000) and u.signal.dtype == np.float32
    np.testing.assert_allclose(u.signal, _signal(30_000) / 1000.0, atol=1e-4)
    assert peak < 10 * u.signal.nbytes, f"peak {peak / 2**20:.1f} MB for a {u.signal.nbytes / 2**20:.1f} MB signal"


def test_csv_cells_a_number_reader_would_misread_still_get_their_message():
    """The fast numpy path falls back to the cell-locating one: one message naming row and column."""
    body = "\n".join(",".join([f"{np.sin(i / 50):.3f}"] * 12) for i in range(1500))
    rows = body.split("\n")
    rows[1] = "0.1,abc," + ",".join(["0.1"] * 10)  # data row 2 = file row 3 under the header, column 2
    with pytest.raises(DataError, match=r"non-numeric value 'abc' in row 3, column 2"):
        parse_upload([("e.csv", ("I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6\n" + "\n".join(rows)).encode())], fs=500)
    holes = body.replace("0.000,", ",", 1).encode()  # an empty cell: a NaN, named by the shared check
    with pytest.raises(DataError, match=r"1 NaN/missing samples \(first in lead I at sample 0\)"):
        parse_upload([("e.csv", holes)], fs=500)
    latin = ("# Gerät: München\n" + body).encode("latin-1")
    assert parse_upload([("e.csv", latin)], fs=500).signal.shape == (12, 1500)


def test_the_upload_memory_benchmark_measures_a_case_in_a_fresh_process():
    """``python -m xand bench upload``, one accepted and one hostile case (the full run is a command)."""
    from xand.bench.upload import build_case, run_case

    ok = run_case("csv_header", 20.0)
    assert ok["accepted"] and ok["signal_mb"] == pytest.approx(12 * 10_000 * 4 / 2**20)
    assert ok["peak_mb"] is None or ok["peak_mb"] >= 0
    bad = run_case("hostile_npy", 20.0)
    assert not bad["accepted"] and "declares shape (12, 50000000)" in bad["refused"]
    files, fs = build_case("wfdb", 10.0)
    assert parse_upload(files, fs=fs).signal.shape == (12, 5000)


def _rows(n: int = 1500, cols: int = 12) -> list[str]:
    return [",".join(f"{np.sin(i / 30 + j):.3f}" for j in range(cols)) for i in range(n)]


HEADER_12 = "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6"


def test_twelve_names_over_thirteen_values_drop_the_unnamed_index_column_not_v6():
    """Review finding: the new reader named the time column lead I and dropped V6, silently."""
    rows = _rows()
    text = "\n".join([HEADER_12] + [f"{i / 500:.3f}," + r for i, r in enumerate(rows)])
    u = parse_upload([("a.csv", text.encode())], fs=500)
    np.testing.assert_allclose(u.signal[0], [float(r.split(",")[0]) for r in rows], atol=1e-6)
    np.testing.assert_allclose(u.signal[11], [float(r.split(",")[11]) for r in rows], atol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("\n".join([HEADER_12] + [",".join(r.split(",")[:11]) for r in _rows()]), "12 column names but 11 values"),
    (HEADER_12 + "\n", "has a header but no rows of values"),
    (HEADER_12 + "\n# nothing recorded\n\n", "has a header but no rows of values"),
])
def test_a_table_whose_rows_do_not_fit_its_header_gets_one_clear_error(text, message):
    """Review findings: these escaped as a raw IndexError from the new reader."""
    with pytest.raises(DataError, match=message):
        parse_upload([("a.csv", text.encode())], fs=500)


def test_classic_mac_line_endings_are_read():
    u = parse_upload([("a.csv", "\r".join([HEADER_12] + _rows()).encode())], fs=500)
    assert u.signal.shape == (12, 1500)


def test_a_first_line_longer_than_the_sniffing_window_is_judged_whole():
    """One lead per line at 1 kHz x 20 s: a 64 kB cut after a "-" read as a header (Review finding)."""
    a = np.round(np.random.default_rng(0).normal(size=(12, 20_000)) * 0.5, 3)
    text = "\n".join(",".join(map(str, r)) for r in a).encode()
    assert text.index(b"\n") > 65536
    u = parse_upload([("w.csv", text)], fs=1000)
    np.testing.assert_allclose(u.signal, a.astype(np.float32), atol=1e-6)
