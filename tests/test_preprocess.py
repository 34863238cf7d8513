"""xand.data.preprocess: resampling, filters and model-input normalisation (numpy and torch)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from xand.errors import UnknownNameError
from xand.data.preprocess import PreprocessConfig, bandpass, filter_ecg, normalize, remove_baseline, resample

FS = 100


def tone(freq_hz: float, fs: int = FS, seconds: float = 10.0, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return amp * np.sin(2 * np.pi * freq_hz * t)


def ecg(seed: int = 0) -> np.ndarray:
    """``(12, 1000)`` float32 test signal in mV with per-lead offsets and scales."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (12, 1000)) * rng.uniform(0.1, 2.0, (12, 1)) + rng.uniform(-1, 1, (12, 1))
    return x.astype(np.float32)


def test_config_defaults_and_json_roundtrip():
    cfg = PreprocessConfig(bandpass=[0.5, 40])
    assert cfg.bandpass == (0.5, 40.0) and cfg.fs == 100 and cfg.global_zscore and cfg.per_lead == "zscore"
    back = PreprocessConfig.from_dict(json.loads(json.dumps(asdict(cfg))))
    assert back == cfg
    assert set(PreprocessConfig().prepare_options()) == {"fs", "bandpass", "baseline_removal"}
    with pytest.raises(UnknownNameError, match="per-lead"):
        PreprocessConfig(per_lead="minmax")


def test_normalize_numpy_single_and_batch():
    x = ecg(1)
    y = normalize(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=1), 1, atol=1e-4)
    batch = np.stack([x, ecg(2)])
    np.testing.assert_allclose(normalize(batch)[0], y, atol=1e-6)  # per-sample statistics, not per-batch


def test_normalize_global_only():
    x = ecg(3)
    y = normalize(x, PreprocessConfig(per_lead="none"))
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-4
    assert np.ptp(y.mean(axis=1)) > 0.1  # per-lead offsets are kept


def test_normalize_flat_leads_give_zeros_not_nan():
    x = ecg(4)
    x[5] = 0.7
    y = normalize(x)
    assert np.isfinite(y).all() and np.allclose(y[5], 0)
    assert np.isfinite(normalize(np.zeros((12, 1000), np.float32))).all()


def test_normalize_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    batch = np.stack([ecg(5), ecg(6)])
    t = normalize(torch.from_numpy(batch))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == batch.shape
    np.testing.assert_allclose(t.numpy(), normalize(batch), atol=1e-5)
    single = normalize(torch.from_numpy(ecg(5)))
    np.testing.assert_allclose(single.numpy(), normalize(ecg(5)), atol=1e-5)
    cfg = PreprocessConfig(global_zscore=False)
    np.testing.assert_allclose(normalize(torch.from_numpy(batch), cfg).numpy(), normalize(batch, cfg), atol=1e-5)


def test_resample_shapes_and_content():
    x = np.stack([tone(2.0, fs=500)] * 12).astype(np.float32)
    y = resample(x, 500, 100)
    assert y.shape == (12, 1000) and y.dtype == np.float32
    ref = np.stack([tone(2.0, fs=100)] * 12)
    np.testing.assert_allclose(y[:, 20:-20], ref[:, 20:-20], atol=0.01)
    assert resample(y, 100, 100) is not y and resample(y, 100, 250).shape == (12, 2500)


def test_resample_is_anti_aliased():
    # 70 Hz at 500 Hz would alias to 30 Hz under plain decimation; the polyphase filter removes it
    x = tone(70.0, fs=500)[None].astype(np.float32)
    assert np.abs(x[:, ::5]).max() > 0.5
    assert np.abs(resample(x, 500, 100)[:, 50:-50]).max() < 0.05


def test_bandpass_keeps_passband_and_removes_stopband():
    inside = bandpass(tone(10.0)[None], FS, 0.5, 40)[0]
    assert np.allclose(inside[100:-100], tone(10.0)[100:-100], atol=0.02)  # zero phase: no shift
    drift = bandpass((tone(0.05) + 1.0)[None], FS, 0.5, 40)[0]
    assert np.abs(drift[200:-200]).max() < 0.1
    hum = bandpass(tone(48.0)[None], FS, 0.5, 40)[0]
    assert np.abs(hum[100:-100]).max() < 0.1
    with pytest.raises(ValueError, match="invalid"):
        bandpass(tone(1.0)[None], FS, 0.5, 60)


def test_baseline_removal_removes_wander_keeps_spikes():
    t = np.arange(1000) / FS
    wander = 0.8 * np.sin(2 * np.pi * 0.2 * t)
    spikes = np.zeros(1000)
    spikes[::80] = 1.0  # QRS-like narrow deflections
    x = np.stack([wander + spikes] * 12).astype(np.float32)
    y = remove_baseline(x, FS)
    inner = slice(60, -60)  # the median windows are truncated at the record ends
    assert np.abs(y[0, inner][spikes[inner] == 0]).max() < 0.1
    np.testing.assert_allclose(y[0, inner][spikes[inner] == 1], 1.0, atol=0.1)
    assert np.abs(x[0] - spikes).max() > 0.7


def test_filter_ecg_options():
    x = ecg(7)
    same = filter_ecg(x, FS)
    assert np.array_equal(same, x) and same is not x
    both = filter_ecg(x, FS, PreprocessConfig(bandpass=(0.5, 40), baseline_removal=True))
    assert both.shape == x.shape and both.dtype == np.float32 and not np.allclose(both, x)
