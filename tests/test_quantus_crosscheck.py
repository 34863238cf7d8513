"""Our Pointing Game, relevance rank accuracy and faithfulness correlation against Quantus 0.6.0
(Hedström et al., JMLR 24(34), 2023) on fixed inputs: same definitions, same numbers.

Quantus wants one segmentation channel, so a 12-lead map is given to it as a one-channel 12 x T image
(lead-major, the same flattening as ours)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from xand.explain.faithfulness import faithfulness_correlation, patch_labels
from xand.explain.removal import remove_samples
from xand.explain.scores import pointing_game, rank_accuracy

quantus = pytest.importorskip("quantus", reason="Quantus is a dev dependency (requirements-dev.txt)")

T = 60


def _maps(n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 1, 12, T)).astype(np.float32)
    s = np.zeros_like(a)
    s[:, :, :, 20:35] = 1
    s[:, :, 3, 45:50] = 1
    a[::2, 0, 3, 47] = 10.0  # every other map points into the mask, the others outside it
    a[1::2, 0, 0, 5] = 10.0
    return a, s


def test_pointing_game_and_rank_accuracy_equal_quantus():
    a, s = _maps()
    x = np.zeros_like(a)
    y = np.zeros(len(a), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q_pg = quantus.PointingGame(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s,
                                                           device="cpu")
        q_rra = quantus.RelevanceRankAccuracy(disable_warnings=True)(model=None, x_batch=x, y_batch=y, a_batch=a,
                                                                     s_batch=s, device="cpu")
    ours_pg = [pointing_game(ai[0], si[0].astype(bool)).value for ai, si in zip(a, s)]
    ours_rra = [rank_accuracy(ai[0], si[0].astype(bool)).value for ai, si in zip(a, s)]
    assert [float(v) for v in q_pg] == ours_pg and set(ours_pg) == {0.0, 1.0}
    np.testing.assert_allclose(ours_rra, np.asarray(q_rra, dtype=float), atol=1e-12)


class Head(nn.Module):
    """A smooth non-linear binary head: p = sigmoid(sum(w * tanh(x))), one output column for Quantus."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(12, T, generator=torch.Generator().manual_seed(1)) / 10)

    def forward(self, x):
        x = x.reshape(x.shape[0], 12, T)
        return torch.sigmoid((self.w * torch.tanh(x)).sum(dim=(1, 2)))[:, None]


def test_faithfulness_correlation_equals_quantus_on_the_same_subsets():
    model = Head().eval()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 12, T)).astype(np.float32)
    a = (model.w.detach().numpy() * x[0])[None].astype(np.float32)  # a fixed map (gradient x input-like)
    seen: list[np.ndarray] = []

    def perturb(arr: np.ndarray, indices: np.ndarray, **_) -> np.ndarray:
        """Quantus hands over the flat indices of each subset; remove them with our linear operator."""
        out = arr.copy()
        for b in range(arr.shape[0]):
            seen.append(np.asarray(indices[b]))
            remove = np.zeros(12 * T, dtype=bool)
            remove[indices[b]] = True
            out[b] = remove_samples(arr[b].reshape(12, T), remove.reshape(12, T), "linear").ravel()
        return out

    np.random.seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantus.FaithfulnessCorrelation(nr_runs=40, subset_size=50, perturb_func=perturb, abs=False,
                                            normalise=False, disable_warnings=True, return_aggregate=False)(
            model=model, x_batch=x[:, None], y_batch=np.zeros(1, dtype=int), a_batch=a[:, None], device="cpu",
            softmax=False)

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(batch)).numpy()[:, 0]

    labels, n = patch_labels((12, T), 1)  # width 1: one patch per sample, Quantus's features
    ours = faithfulness_correlation(predict, x[0], a[0].ravel(), labels, seen)
    assert len(seen) == 40 and ours is not None
    assert ours == pytest.approx(float(np.asarray(q).ravel()[0]), abs=1e-6)
