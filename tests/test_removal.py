"""Removal operators: straight lines between a segment's ends by hand, edges, a whole lead, ROAD's noise
at the lead's own level, the input never written, unknown names listed."""

from __future__ import annotations

import numpy as np
import pytest

from xand.errors import DataError, UnknownNameError
from xand.explain.removal import REMOVALS, linear, noise_level, remove_samples, road


def test_linear_by_hand():
    x = np.zeros((12, 8), np.float32)
    x[0] = [0, 1, 9, 9, 9, 5, 6, 7]
    keep = x.copy()
    m = np.zeros_like(x, dtype=bool)
    m[0, 2:5] = True  # between x[1] = 1 and x[5] = 5: 2, 3, 4
    out = linear(x, m)
    np.testing.assert_allclose(out[0], [0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(x, keep)  # never written
    m2 = np.zeros_like(m)
    m2[0, :2] = True  # at the start: continues the first kept sample
    assert list(linear(x, m2)[0, :2]) == [9, 9]
    m3 = np.zeros_like(m)
    m3[0] = True  # a whole lead: its mean (no zeros)
    assert np.allclose(linear(x, m3)[0], x[0].mean())


def test_road_adds_noise_at_the_leads_level_only_where_removed():
    rng = np.random.default_rng(0)
    t = np.arange(2000) / 100.0
    x = (0.5 * np.sin(2 * np.pi * 0.3 * t)[None, :] + rng.standard_normal((12, 2000)) * 0.05).astype(np.float32)
    m = np.zeros_like(x, dtype=bool)
    m[:, 500:1500] = True
    out = road(x, m, np.random.default_rng(1))
    np.testing.assert_array_equal(out[~m], x[~m])
    resid = out - linear(x, m)
    sd = noise_level(x)
    assert np.allclose(resid[m].reshape(12, -1).std(axis=1), sd, rtol=0.1)
    assert np.allclose(sd, 0.05, rtol=0.1)  # the white noise on a smooth wave


def test_registry_and_bad_input():
    assert {"linear", "road"} <= set(REMOVALS)
    with pytest.raises(UnknownNameError, match="linear"):
        remove_samples(np.zeros((12, 4)), np.zeros((12, 4), bool), "zeros")
    with pytest.raises(DataError):
        linear(np.zeros((12, 4)), np.zeros((12, 5), bool))
