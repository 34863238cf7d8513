"""xand.data.prepare: the memory-mapped array, its fingerprint cache, bad-record skipping and atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from test_data import make_ptbxl  # the hand-made WFDB folder builder (tests/ is on sys.path)
from xand.constants import HEADS
from xand.data.ptbxl import PTBXL
from xand.errors import DataError, UnknownNameError
from xand.data.prepare import fingerprint, load_prepared, prepare
from xand.data.preprocess import PreprocessConfig


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    return make_ptbxl(tmp_path_factory.mktemp("template") / "ptbxl")


@pytest.fixture
def small(_template, tmp_path) -> Path:
    return Path(shutil.copytree(_template, tmp_path / "ptbxl"))


def tree_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_matches_loader_and_labels(small, tmp_path):
    before = tree_hash(small)
    out = prepare(small, tmp_path / "cache", workers=1, progress=False)
    assert tree_hash(small) == before  # nothing written into the source folder
    ptb = PTBXL(small)
    assert out.signals.shape == (6, 12, 1000) and out.signals.dtype == np.float32 and out.fs == 100
    assert isinstance(out.signals, np.memmap)
    for row, e in enumerate(out.index["ecg_id"]):
        np.testing.assert_array_equal(out.signals[row], ptb.load(e))
    lab = ptb.labels()
    for col in (*HEADS, "split", "patient_id", "device", "device_code", "sex"):
        assert list(out.index[col]) == list(lab[col]), col
    assert list(out.index["report"]) == list(lab["report"])
    meta = json.loads((out.root / "meta.json").read_text())
    assert meta["n_records"] == 6 and meta["n_skipped"] == 0 and meta["fingerprint"] == out.root.name
    assert meta["label_counts"]["MI"]["train"] == {"pos": 1, "neg": 2, "excluded": 0}
    again = load_prepared(out.root)
    assert again.fingerprint == out.fingerprint and np.array_equal(again.signals, out.signals)


def test_rerun_is_noop_and_options_change_fingerprint(small, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(small, cache, workers=1, progress=False)
    sig = first.root / "signals.npy"
    mtime = sig.stat().st_mtime_ns
    second = prepare(small, cache, workers=1, progress=False)
    assert second.root == first.root and sig.stat().st_mtime_ns == mtime
    assert len([d for d in cache.iterdir()]) == 1

    base = fingerprint(small, PreprocessConfig())
    assert base == first.fingerprint
    # model-input normalisation does not change the prepared array
    assert fingerprint(small, PreprocessConfig(per_lead="none", global_zscore=False)) == base
    changed = {fingerprint(small, PreprocessConfig(bandpass=(0.5, 40))),
               fingerprint(small, PreprocessConfig(bandpass=(0.5, 30))),
               fingerprint(small, PreprocessConfig(baseline_removal=True)),
               fingerprint(small, PreprocessConfig(fs=500)),
               fingerprint(small, ecg_ids=[1, 2, 3])}
    assert base not in changed and len(changed) == 5
    dat = small / "records100/00000/00002_lr.dat"
    os.utime(dat, ns=(mtime, dat.stat().st_mtime_ns + 10**9))
    assert fingerprint(small) != base
    csv = small / "ptbxl_database.csv"
    csv.write_text(csv.read_text().replace("report 1", "report one"))
    third = prepare(small, cache, workers=1, progress=False)
    assert third.root != first.root and third.index.loc[0, "report"] == "report one"


def test_prepare_options_are_applied(small, tmp_path):
    cfg = PreprocessConfig(bandpass=(0.5, 40), baseline_removal=True)
    out = prepare(small, tmp_path / "c", cfg, workers=1, progress=False)
    from xand.data.preprocess import filter_ecg

    np.testing.assert_allclose(out.signals[0], filter_ecg(PTBXL(small).load(1), 100, cfg), atol=1e-6)
    assert out.cfg == cfg and load_prepared(out.root).cfg.bandpass == (0.5, 40.0)
    hr = prepare(small, tmp_path / "c", PreprocessConfig(fs=500), workers=1, progress=False)
    assert hr.signals.shape == (6, 12, 5000) and hr.fs == 500


def test_bad_records_are_skipped_and_counted(small, tmp_path):
    dat = small / "records100/00000/00003_lr.dat"
    dat.write_bytes(dat.read_bytes()[:5000])
    (small / "records500/00000/00003_hr.hea").unlink()  # no fallback to 500 Hz for this one either
    hea = small / "records100/00000/00005_lr.hea"
    hea.write_text("\n".join(hea.read_text().splitlines()[:4]))
    out = prepare(small, tmp_path / "cache", workers=2, progress=False)
    assert len(out) == 4 and list(out.index["ecg_id"]) == [1, 2, 4, 6]
    assert [s["ecg_id"] for s in out.skipped] == [3, 5]
    assert str(dat) in out.skipped[0]["reason"] and "truncated" in out.skipped[1]["reason"]
    assert out.meta["n_skipped"] == 2 and out.meta["n_source_records"] == 6
    ptb = PTBXL(small)
    for row, e in enumerate(out.index["ecg_id"]):
        np.testing.assert_array_equal(out.signals[row], ptb.load(e))


def test_missing_100hz_file_falls_back_to_500(small, tmp_path):
    for ext in (".hea", ".dat"):
        (small / f"records100/00000/00002_lr{ext}").unlink()
    out = prepare(small, tmp_path / "cache", workers=1, progress=False)
    assert len(out) == 6 and not out.skipped
    np.testing.assert_array_equal(out.record(2), PTBXL(small).load(2))


def test_split_indices_and_head_labels(small, tmp_path):
    out = prepare(small, tmp_path / "cache", workers=1, progress=False)
    assert list(out.split_indices("train")) == [0, 1, 4]
    assert list(out.split_indices("test")) == [3, 5] and len(out.split_indices("all")) == 6
    idx, y = out.head_labels("MI", "all")  # ecg 3 (AMI 35) is excluded
    assert list(idx) == [0, 1, 3, 4, 5] and list(y) == [0, 1, 1, 0, 0]
    idx, y = out.head_labels("HYP", "test")
    assert list(idx) == [3] and list(y) == [0]
    with pytest.raises(UnknownNameError):
        out.split_indices("holdout")
    with pytest.raises(UnknownNameError):
        out.head_labels("NORM")
    assert out.row_of(4) == 3
    with pytest.raises(DataError, match="no ecg_id 42"):
        out.row_of(42)


def test_interrupted_prepare_leaves_no_valid_looking_cache(small, tmp_path, monkeypatch):
    import xand.data.prepare as xp

    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f".tmp-deadbeef-999999999-{xp._host_tag()}-abcd1234"  # a killed run's (no such pid)
    stale.mkdir()
    (stale / "signals.npy").write_bytes(b"partial")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(xp, "_fill_all", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare(small, cache, workers=1, progress=False)
    assert list(cache.iterdir()) == []  # stale folder cleaned, own temp folder removed, nothing final
    monkeypatch.undo()
    out = prepare(small, cache, workers=1, progress=False)
    assert [d.name for d in cache.iterdir()] == [out.fingerprint]


def test_incomplete_set_is_rejected(small, tmp_path):
    out = prepare(small, tmp_path / "cache", workers=1, progress=False)
    meta = out.root / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "complete": False}))
    with pytest.raises(DataError, match="incomplete"):
        load_prepared(out.root)
    with pytest.raises(DataError, match="meta.json"):
        load_prepared(tmp_path)


def test_real_excerpt_with_two_workers(ptbxl_dir, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (ptbxl_dir / "records100" / "00000").glob("0000*")}
    out = prepare(ptbxl_dir, tmp_path / "cache", workers=2, progress=False, ecg_ids=range(1, 61))
    ptb = PTBXL(ptbxl_dir)
    assert out.signals.shape == (60, 12, 1000) and not out.skipped
    for row in (0, 17, 59):
        np.testing.assert_array_equal(out.signals[row], ptb.load(row + 1))
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_benchmark_reports_side_by_side(small, tmp_path, capsys):
    from xand.bench.prepare import benchmark

    fig = benchmark(
        Namespace(data=str(small), n=None, json=True, device="auto", cache_dir=str(tmp_path / "b")))
    methods = [r["method"] for r in fig["results"]]
    assert methods[0].startswith("wfdb.rdsamp") and any("fresh cache" in m for m in methods)
    assert fig["records"] == 6 and all(r["records_per_s"] > 0 for r in fig["results"])
    assert json.loads(capsys.readouterr().out)["records"] == 6
    assert list((tmp_path / "b").iterdir()) == []


def test_all_records_bad_is_an_error_and_caches_nothing(small, tmp_path):
    for dat in (small / "records100").rglob("*.dat"):
        dat.write_bytes(b"")
    shutil.rmtree(small / "records500")
    with pytest.raises(DataError, match="all 6 records failed to load"):
        prepare(small, tmp_path / "cache", workers=1, progress=False)
    assert not any((tmp_path / "cache").glob("*/meta.json"))  # no empty set cached for the next run


@pytest.mark.parametrize("kw, words", [
    ({"fs": 1000}, "fs=1000"), ({"fs": 0}, "fs=0"), ({"fs": 99.5}, "fs=99.5"),
    ({"bandpass": (0.5, 60)}, "Nyquist"), ({"bandpass": (40, 0.5)}, "0 < low < high"),
    ({"bandpass": ("a", 1)}, "two numbers"),
])
def test_bad_preprocessing_options_fail_before_any_record(kw, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        PreprocessConfig(**kw)


def test_prepare_cli_bad_option_is_one_message(small, tmp_path, capsys):
    from xand.cli import main

    assert main(["prepare", str(small), "--cache-dir", str(tmp_path / "c"), "--bandpass", "0.5", "60",
                 "--no-progress"]) == 2
    assert "Nyquist" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_prepare_cli(small, tmp_path, capsys):
    from xand.cli import main

    assert main(["prepare", str(small), "--cache-dir", str(tmp_path / "c"), "--bandpass", "0.5", "40",
                 "--baseline", "--workers", "1", "--no-progress", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["shape"] == [6, 12, 1000] and res["skipped"] == 0 and Path(res["signals"]).is_file()
    assert load_prepared(Path(res["signals"]).parent).cfg.baseline_removal is True


def test_cache_inside_source_is_refused(small):
    before = tree_hash(small)
    with pytest.raises(DataError, match="inside the source dataset"):
        prepare(small, small / "cache", workers=1, progress=False)
    assert tree_hash(small) == before and not (small / "cache").exists()


def test_prepare_cli_names_a_skipped_record(small, tmp_path, capsys):
    """The hardening issue's probe: one garbage header was reported as a bare count."""
    from xand.cli import main

    hea = next((small / "records100").rglob("00003_lr.hea"))
    hea.write_text("garbage\n")
    assert main(["prepare", str(small), "--cache-dir", str(tmp_path / "c"), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped: 1 bad record(s)" in out and "ecg_id 3:" in out and "meta.json" in out


def test_a_database_path_outside_the_folder_is_refused_for_that_record_only(small, tmp_path):
    """``filename_lr`` absolute or ``../``: never read; that record is skipped with the reason, the
    rest prepares, and ``info`` names it (exit 2)."""
    import pandas as pd

    from xand.cli import main
    from xand.errors import DataError

    outside = tmp_path / "outside"
    shutil.copytree(small / "records100/00000", outside)  # a readable record elsewhere on the server
    db = pd.read_csv(small / "ptbxl_database.csv")
    db.loc[db["ecg_id"] == 2, "filename_lr"] = str(outside / "00002_lr")
    db.loc[db["ecg_id"] == 4, "filename_lr"] = "../outside/00004_lr"
    db.loc[db["ecg_id"].isin([2, 4]), "filename_hr"] = ""
    db.to_csv(small / "ptbxl_database.csv", index=False)
    shutil.move(str(outside), small.parent / "outside")  # so that the ../ path would resolve
    ptb = PTBXL(small)
    for e in (2, 4):
        with pytest.raises(DataError, match="outside the dataset folder"):
            ptb.load(e)
    ptb.load(1)
    out = prepare(small, tmp_path / "cache", workers=1, progress=False)
    assert list(out.index["ecg_id"]) == [1, 3, 5, 6]
    assert {s["ecg_id"] for s in out.skipped} == {2, 4}
    assert all("outside the dataset folder" in s["reason"] for s in out.skipped)
    assert main(["info", str(small)]) == 2


def test_a_symlinked_records_folder_is_inside_the_dataset(small, tmp_path):
    """records500/ on another disk, linked into the dataset folder, is the usual PTB-XL layout."""
    elsewhere = tmp_path / "disk2" / "records500"
    elsewhere.parent.mkdir()
    shutil.move(str(small / "records500"), elsewhere)
    (small / "records500").symlink_to(elsewhere, target_is_directory=True)
    ptb = PTBXL(small)
    assert ptb.load(1, fs=500).shape == (12, 5000)
