"""Sanity checks (model-parameter randomisation): block order, re-initialisation, rank correlation by
hand, a method that ignores the model is caught, the verdict's thresholds, the batch stored with the run
and read back, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from xand.errors import UnknownNameError
from xand.explain import sanity
from xand.explain.attribution import ATTRIBUTION_METHODS
from xand.explain.sanity import (
    SanityConfig, find_sanity, load_sanity, parameter_blocks, randomisation_test, randomised, spearman_abs,
    summarise, verdict,
)
from xand.models.networks import create_model, list_models

T = 64


class Chain(nn.Module):
    """Registered in one order, run in another: the blocks must follow the forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.out = nn.Linear(8, 1)
        self.conv = nn.Conv1d(12, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.unused = nn.Linear(3, 3)  # never on the forward path

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.conv(x))).mean(dim=2))


def test_blocks_follow_the_forward_pass_output_first_and_skip_unused_layers():
    blocks = parameter_blocks(Chain(), torch.randn(1, 12, T), max_blocks=6)
    assert blocks == [["out"], ["bn"], ["conv"]]
    assert parameter_blocks(Chain(), torch.randn(1, 12, T), max_blocks=2) in ([["out", "bn"], ["conv"]],
                                                                               [["out"], ["bn", "conv"]])


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_has_blocks_that_cover_its_forward_path(name):
    model = create_model(name).eval()
    x = torch.randn(1, 12, 1000)
    blocks = parameter_blocks(model, x, max_blocks=6)
    assert 1 <= len(blocks) <= 6 and all(blocks)
    flat = [n for b in blocks for n in b]
    assert len(flat) == len(set(flat))
    # randomising every block changes the output; the original model is untouched
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        y0 = model(x)
        y1 = randomised(model, flat, seed=1)(x)
    assert not torch.allclose(y0, y1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_randomised_changes_only_the_named_layers_and_is_seeded():
    m = Chain()
    r1, r2 = randomised(m, ["out"], seed=3), randomised(m, ["out"], seed=3)
    assert not torch.equal(r1.out.weight, m.out.weight)
    assert torch.equal(r1.out.weight, r2.out.weight)
    assert torch.equal(r1.conv.weight, m.conv.weight)
    state = torch.random.get_rng_state()
    randomised(m, ["conv"], seed=5)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's generator is left alone


def test_spearman_of_absolute_maps_by_hand():
    a = np.array([[1.0, -3.0, 2.0]])
    assert spearman_abs(a, np.array([[10.0, 30.0, 20.0]])) == pytest.approx(1.0)  # same ranks of |a|
    assert spearman_abs(a, np.array([[3.0, 1.0, 2.0]])) == pytest.approx(-1.0)
    assert spearman_abs(a, np.zeros((1, 3))) is None  # a constant map ranks nothing


class Linear(nn.Module):
    """logit = sum(w * x): saliency is |w| (the model), an input-only 'method' is |x| (not the model)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Linear(12 * T, 1, bias=False)
        with torch.no_grad():
            self.w.weight.copy_(torch.randn(1, 12 * T, generator=g))

    def forward(self, x):
        return self.w(x.reshape(x.shape[0], -1))


def _input_only(model, x, target, **_):  # an "explanation" that never looks at the model
    return x.abs(), None, {}, None


def test_a_method_that_ignores_the_model_fails_and_saliency_passes(monkeypatch):
    monkeypatch.setitem(ATTRIBUTION_METHODS, "input_only", _input_only)
    model = Linear().eval()
    x = torch.randn(1, 12, T)
    mask = np.zeros((12, T), dtype=bool)
    mask[:, 10:20] = True
    x[0, 3, 15] = 9.0  # the input's own maximum lies in the mask: a Pointing Game "hit" for free
    blocks = parameter_blocks(model, x)
    rows = []
    for method in ("input_only", "saliency"):
        r = randomisation_test(model, x, 0, mask, method, blocks, seed=0)
        rows.append({"head": "MI", "method": method, **r})
    assert rows[0]["cascade"][-1] == pytest.approx(1.0)  # unchanged map
    assert rows[0]["random"]["pointing_game"] == 1.0
    assert abs(rows[1]["cascade"][-1]) < 0.2  # |w| of a fresh network ranks samples anew
    out = {r["method"]: r for r in summarise(rows, SanityConfig())}
    assert out["input_only"]["passed"] is False and "unchanged" in out["input_only"]["verdict"]
    assert out["saliency"]["spearman_random_median"] < 0.5


def test_verdict_thresholds():
    base = {"n": 12, "chance_mean": 0.3, "spearman_random_median": 0.1, "pointing_game_random": 0.4,
            "cas_random": 0.33, "pointing_game_trained": 0.9, "cas_trained": 0.6}
    assert verdict(base)[0] is True  # 0.4 <= 0.3 + 0.15 and 0.33 <= 0.3 + 0.05; trained well above chance
    assert verdict({**base, "spearman_random_median": 0.5})[0] is False
    assert verdict({**base, "pointing_game_random": 0.46})[0] is False
    ok, why = verdict({**base, "cas_random": 0.36})
    assert ok is False and "CAS 0.36" in why
    assert verdict({**base, "n": 0})[0] is None
    assert verdict({**base, "spearman_random_median": 0.55}, SanityConfig(spearman_max=0.6))[0] is True
    # nothing earned for free, but nothing earned by the trained head either: no evidence, not a pass
    ok, why = verdict({**base, "pointing_game_trained": 0.0, "cas_trained": 0.29})
    assert ok is None and why.startswith("uninformative")


def test_a_map_that_collapses_under_randomisation_counts_as_changed():
    assert sanity.map_change(np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 3))) == 0.0
    assert sanity.map_change(np.zeros((1, 3)), np.array([[1.0, 2.0, 3.0]])) is None


def test_stored_verdicts_follow_todays_rule(tmp_path):
    row = {"head": "STTC", "method": "ig", "n": 12, "chance_mean": 0.37, "spearman_random_median": 0.47,
           "pointing_game_random": 0.0, "cas_random": 0.36, "pointing_game_trained": 0.0, "cas_trained": 0.29,
           "passed": True, "verdict": "passes: (an older rule)"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": 1, "config": {"methods": ["ig"], "split": "test"}, "info": {},
                                "rows": [row]}))
    back = load_sanity(path).row("STTC", "ig")
    assert back["passed"] is None and back["verdict"].startswith("uninformative")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synth_dir):
    from test_app import make_app_home

    home = make_app_home(tmp_path_factory.getbasetemp() / "xand_app_home", synth_dir)
    return home / "runs" / "tiny"


def test_sanity_check_is_stored_with_the_run_and_read_back(tiny_run, synth_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cfg = SanityConfig(methods=("saliency", "ig"), n_per_head=2, max_blocks=2)
    res = sanity.sanity_check(run, synth_dir, cfg, progress=False)
    assert res.path.parent == run / "sanity" and res.path.is_file()
    heads = {r["head"] for r in res.rows}
    assert heads and {r["method"] for r in res.rows} == {"saliency", "ig"}
    for r in res.rows:
        assert 1 <= r["n"] <= 2 and len(r["cascade_spearman"]) <= 2
        assert (r["passed"], r["verdict"]) == verdict(r, cfg)  # the stored verdict is the rule's
        assert r["spearman_random_median"] == r["cascade_spearman"][-1]
    back = load_sanity(res.path)
    assert back.rows == json.loads(res.to_json())["rows"] and back.config["methods"] == ["saliency", "ig"]
    from xand.data.prepare import content_key

    assert find_sanity(run, content_key(synth_dir)).path == res.path
    assert find_sanity(run, "no-such-dataset").path == res.path  # falls back to the newest result
    assert find_sanity(tmp_path / "elsewhere") is None
    with pytest.raises(UnknownNameError):
        sanity.sanity_check(run, synth_dir, SanityConfig(methods=("nope",)), progress=False)


def test_command_line(tiny_run, synth_dir, tmp_path, capsys):
    from xand.cli import main

    out = tmp_path / "s.json"
    rc = main(["sanity", "--run", str(tiny_run), "--data", str(synth_dir), "--methods", "saliency", "--n", "1",
               "--max-blocks", "1", "--out", str(out), "--no-progress"])
    assert rc == 0 and out.is_file()
    text = capsys.readouterr().out
    rows = load_sanity(out).rows
    assert rows and all(r["method"] == "saliency" for r in rows)
    for r in rows:  # every stored row is printed with its verdict in words
        assert f"{r['head']} saliency: {r['verdict']}" in text


def test_merge_adds_new_methods_and_refuses_other_options(tmp_path):
    from xand.errors import DataError
    from xand.explain.sanity import SanityResult, merge_results

    cfg = {"methods": ["ig"], "split": "test", "n_per_head": 12, "seed": 0}
    old = SanityResult([{"head": "MI", "method": "ig", "x": 1}, {"head": "CD", "method": "ig", "x": 2}], cfg,
                       {"n_ecg": 10})
    new = SanityResult([{"head": "MI", "method": "ig_grad", "x": 3}, {"head": "MI", "method": "ig", "x": 4}],
                       {**cfg, "methods": ["ig_grad", "ig"]}, {"n_ecg": 10})
    m = merge_results(old, new, tmp_path / "s.json")
    assert m.config["methods"] == ["ig", "ig_grad"]
    assert {(r["head"], r["method"]): r["x"] for r in m.rows} == {("MI", "ig"): 4, ("CD", "ig"): 2,
                                                                   ("MI", "ig_grad"): 3}
    with pytest.raises(DataError, match="other options"):
        merge_results(old, SanityResult([], {**cfg, "n_per_head": 5}), tmp_path / "s.json")
