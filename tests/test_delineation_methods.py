"""Every registered delineator returns the same Fiducials, flags leads, never invents a wave; the
cache keys on the method; offsets fitted on training folds only."""

from __future__ import annotations

import numpy as np
import pytest

from xand.constants import N_LEADS
from xand.delineation.cache import DelineationCache
from xand.delineation.methods import DELINEATORS, apply_offsets, delineate, list_delineators
from xand.delineation.neurokit import DelineationConfig
from xand.errors import DataError, UnknownNameError
from xand.fiducials import kind_index

FS = 500
#: lead gains of a frontal dipole (aVR and V1 negative, III small)
GAINS = np.array([1.0, 1.2, 0.4, -0.9, 0.5, 0.8, -0.6, 0.7, 1.0, 1.3, 1.1, 0.9])


def beat_train(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12-lead train of Gaussian P, Q, R, S, T waves every 0.8 s; returns (ecg mV, R times s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    r_times = np.arange(0.6, seconds - 0.6, 0.8)
    x = np.zeros_like(t)
    for r, (c, a, sd) in ((r, w) for r in r_times for w in ((-0.16, 0.15, 0.012), (-0.025, -0.1, 0.006),
                                                              (0.0, 1.2, 0.010), (0.025, -0.3, 0.006),
                                                              (0.30, 0.35, 0.040))):
        x += a * np.exp(-0.5 * ((t - (r + c)) / sd) ** 2)
    ecg = GAINS[:, None] * x[None, :] + 0.005 * rng.standard_normal((N_LEADS, len(t)))
    return ecg.astype(np.float32), r_times


@pytest.fixture(scope="module")
def train():
    return beat_train(seconds=8.0, seed=5)


@pytest.mark.parametrize("name", list_delineators())
def test_every_delineator_finds_the_beats_of_a_clean_train(name, train):
    ecg, r_times = train
    fid = delineate(ecg, FS, name)
    assert fid.fs == FS and fid.n_samples == ecg.shape[1] and len(fid.beats) == N_LEADS
    assert fid.quality.sum() >= 10
    r = np.array([np.nanmedian([b[k, kind_index("R_peak")] for b in fid.beats if len(b) > k])
                  for k in range(int(np.median(fid.n_beats)))])
    r = r[np.isfinite(r)] / FS
    # every true beat found once, within 20 ms (edge beats may be dropped as cut by the record's edge)
    hits = [np.min(np.abs(r - t)) < 0.02 for t in r_times[1:-1]]
    assert all(hits)
    q = fid.kind("QRS_on")[1], fid.kind("QRS_off")[1]
    ok = np.isfinite(q[0]) & np.isfinite(q[1])
    assert ok.sum() >= len(r_times) - 2 and ((q[1][ok] - q[0][ok]) / FS * 1000 < 200).all()


@pytest.mark.parametrize("name", list_delineators())
def test_no_wave_is_invented_on_a_flat_or_short_ecg(name):
    flat = np.zeros((N_LEADS, int(10 * FS)), dtype=np.float32)
    fid = delineate(flat, FS, name)
    assert not fid.quality.any()
    assert all(np.isnan(b).all() for b in fid.beats)
    short = delineate(np.zeros((N_LEADS, int(0.5 * FS)), np.float32), FS, name)
    assert short.n_beats.sum() == 0


@pytest.mark.parametrize("name", list_delineators())
def test_bad_input_gets_one_clear_error(name):
    with pytest.raises(DataError):
        delineate(np.zeros((3, 1000)), FS, name)
    bad = np.zeros((N_LEADS, 5000))
    bad[0, 10] = np.nan
    with pytest.raises(DataError):
        delineate(bad, FS, name)


def test_an_unknown_delineator_lists_the_valid_ones(train):
    with pytest.raises(UnknownNameError) as exc:
        delineate(train[0], FS, "magic")
    assert all(n in str(exc.value) for n in ("neurokit", "ecgdeli"))
    assert DELINEATORS.default == "neurokit"


def test_ecgdeli_consensus_gives_every_lead_the_same_marks(train):
    fid = delineate(train[0], FS, "ecgdeli", marks="consensus")
    assert fid.source == "ecgdeli"
    a, b = fid.beats[0], fid.beats[7]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)])
    with pytest.raises(UnknownNameError):
        delineate(train[0], FS, "ecgdeli", marks="median")


def test_apply_offsets_moves_each_kind_and_drops_what_leaves_the_record(train):
    fid = delineate(train[0], FS, "neurokit")
    moved = apply_offsets(fid, {"QRS_on": 10.0, "T_off": -20.0})
    j, t = kind_index("QRS_on"), kind_index("T_off")
    np.testing.assert_allclose(moved.beats[1][:, j], fid.beats[1][:, j] - 5.0)  # 10 ms = 5 samples at 500 Hz
    np.testing.assert_allclose(moved.beats[1][:, t], fid.beats[1][:, t] + 10.0)
    np.testing.assert_array_equal(moved.beats[1][:, kind_index("R_peak")], fid.beats[1][:, kind_index("R_peak")])
    edge = apply_offsets(fid, {"R_peak": 1e6})
    assert np.isnan(edge.kind("R_peak")[0]).all()
    assert apply_offsets(fid, None) is fid


def test_the_cache_keys_on_the_delineator_and_keeps_the_old_neurokit_keys(tmp_path, train):
    import hashlib
    import json
    from dataclasses import asdict

    ecg = train[0]
    cache = DelineationCache(tmp_path)
    cfg = DelineationConfig()
    # the key a cache written before the registry used: existing cache folders stay valid
    h = hashlib.sha256()
    arr = np.ascontiguousarray(np.asarray(ecg, dtype=np.float32))
    h.update(repr(arr.shape).encode())
    h.update(arr.tobytes())
    h.update(json.dumps({"fs": float(FS), "cfg": asdict(cfg), "v": "3"}, sort_keys=True).encode())
    assert cache.key(ecg, FS, cfg) == h.hexdigest() == cache.key(ecg, FS)
    assert cache.key(ecg, FS, delineator="ecgdeli") != cache.key(ecg, FS)
    assert cache.key(ecg, FS, delineator="ecgdeli") != cache.key(ecg, FS, delineator="ecgdeli", marks="consensus")
    first = cache.delineate(ecg, FS, delineator="ecgdeli")
    assert first.source == "ecgdeli" and len(list(tmp_path.rglob("*.json"))) == 1
    again = cache.delineate(ecg, FS, delineator="ecgdeli")
    for a, b in zip(first.beats, again.beats):
        np.testing.assert_array_equal(a, b)


def test_cv_folds_are_disjoint_and_cover_every_record():
    from xand.delineation.validation import cv_folds

    folds = cv_folds(list(range(1, 23)), 5, seed=1)
    flat = sorted(r for f in folds for r in f)
    assert flat == list(range(1, 23)) and len(folds) == 5 and all(len(f) in (4, 5) for f in folds)
    with pytest.raises(DataError):
        cv_folds([1, 2], 3)


def test_ludb_cv_corrects_with_other_folds_only(ludb_dir):
    from xand.data.ludb import list_ludb
    from xand.delineation.validation import validate_ludb

    recs = list_ludb(ludb_dir)[:6]
    raw = validate_ludb(ludb_dir, recs, workers=1)
    cv = validate_ludb(ludb_dir, recs, workers=1, cv=3)
    assert raw.attrs["offsets_ms"] == {} and set(cv.attrs["offsets_ms"]) >= {"QRS_on", "T_off"}
    # a constant shift leaves the SD as it was (up to the few matches the shift changes)
    assert abs(cv.loc["QRS_on", "sd_ms"] - raw.loc["QRS_on", "sd_ms"]) < 3.0
    assert abs(cv.loc["T_off", "mean_ms"]) < abs(raw.loc["T_off", "mean_ms"]) + 5.0
    for table in (raw, cv):
        iv = table.attrs["intervals"]
        assert set(iv) == {"p_duration_ms", "pr_ms", "qrs_ms", "qt_ms"}
        assert iv["qrs_ms"]["n"] == 6 and iv["qrs_ms"]["mae_lo"] <= iv["qrs_ms"]["mae_ms"] <= iv["qrs_ms"]["mae_hi"]
