"""Faithfulness: a map that points at what the model reads beats random order and its reverse on every
figure; a constant map is undefined, never a number."""

from __future__ import annotations

import numpy as np
import pytest

from xand.explain.faithfulness import FRACTIONS, faithfulness, patch_labels, patch_relevance

T = 200


def _model(lead: int = 3, a: int = 80, b: int = 120):
    """p = sigmoid(sum of |x| over lead ``lead``, samples a..b, / 2 minus 4): reads one short region."""
    def predict(batch: np.ndarray) -> np.ndarray:
        s = np.abs(batch[:, lead, a:b]).sum(axis=1) / 2.0 - 4.0
        return 1.0 / (1.0 + np.exp(-s))
    return predict


def _ecg(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((12, T)) * 0.05).astype(np.float32)
    x[3, 100:104] += 5.0  # the finding (one 4-sample patch), in the region the model reads
    return x


def test_patches_by_hand():
    lab, n = patch_labels((12, 10), 4)
    assert n == 36 and list(lab[0]) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2] and lab[1, 0] == 3
    rel = patch_relevance(np.ones((12, 10)), lab, n)
    assert rel[0] == 4 and rel[2] == 2


def test_the_right_map_is_faithful_and_its_reverse_is_not():
    predict, x = _model(), _ecg()
    good = np.zeros_like(x)
    good[3, 100:104] = 1.0
    f = faithfulness(predict, x, good, width=4, n_random=3, n_subsets=40)
    bad = faithfulness(predict, x, -good + 1e-3 * np.random.default_rng(1).random(x.shape), width=4,
                       n_random=3, n_subsets=40)
    assert f["p_full"] > 0.99
    assert f["deletion_auc"] < f["random_deletion_auc"] and f["deletion_auc"] < bad["deletion_auc"]
    assert f["insertion_auc"] > bad["insertion_auc"]
    assert f["road_gap"] > 0.3 and bad["road_gap"] < 0
    assert f["faithfulness_corr"] > 0.5
    assert len(f["deletion_curve"]) == len(FRACTIONS) and f["deletion_curve"][0] == pytest.approx(f["p_full"])


def test_a_constant_map_is_undefined():
    f = faithfulness(_model(), _ecg(), np.zeros((12, T)), n_random=2, n_subsets=5)
    assert f["deletion_auc"] is None and f["faithfulness_corr"] is None and f["random_deletion_auc"] is not None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synth_dir):
    from test_app import make_app_home

    return make_app_home(tmp_path_factory.getbasetemp() / "xand_app_home", synth_dir) / "runs" / "tiny"


def test_batch_over_a_runs_positives_and_command_line(tiny_run, synth_dir, tmp_path, capsys):
    import json

    from xand.cli import main
    from xand.explain.faithfulness import FaithfulnessConfig, faithfulness_check

    out = tmp_path / "f.json"
    res = faithfulness_check(tiny_run, synth_dir, FaithfulnessConfig(methods=("saliency",), n_per_head=2,
                                                                     n_random=2, n_subsets=10),
                             out=out, progress=False)
    assert out.is_file() and res["rows"]
    for r in res["rows"]:
        assert r["method"] == "saliency" and 1 <= r["n"] <= 2
        assert 0.0 <= r["deletion_auc"] <= 1.0 and 0.0 <= r["random_deletion_auc"] <= 1.0
    stored = json.loads(out.read_text())
    assert stored["rows"] == json.loads(json.dumps(res["rows"], default=float))
    assert len(stored["records"]) == sum(r["n"] for r in res["rows"])  # one record per ECG x head x method
    rc = main(["faithfulness", "--run", str(tiny_run), "--data", str(synth_dir), "--methods", "gradcam", "--n", "1",
               "--out", str(tmp_path / "g.json"), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    rows = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert rows and all(r["method"] == "gradcam" and r["n"] == 1 for r in rows)
    for r in rows:  # each stored row is printed, with its deletion area
        assert any(line.startswith(f"{r['head']:5} gradcam") and f"{r['deletion_auc']:.3f}" in line
                   for line in text.splitlines())


def test_the_default_method_passes_sanity_and_is_the_most_faithful():
    from xand.explain.selection import choose_methods

    sanity_rows = [{"head": "MI", "method": m, "passed": p} for m, p in
                   (("ig", False), ("saliency", True), ("gradcam", True))]
    faith = [{"head": "MI", "method": m, "deletion_minus_random": d, "deletion_minus_random_ci_high": hi,
              "deletion_auc": 0.5 + d, "random_deletion_auc": 0.5, "n": 10}
             for m, d, hi in (("ig", -0.3, -0.2), ("saliency", -0.05, 0.02), ("gradcam", -0.1, -0.04))]
    c = choose_methods(sanity_rows, faith)["MI"]
    assert c["method"] == "gradcam" and c["passes_sanity"]  # ig is more faithful but fails the check
    assert [x["method"] for x in c["candidates"]] == ["ig", "gradcam", "saliency"]
    none = choose_methods([{**r, "passed": False} for r in sanity_rows], faith)["MI"]
    assert none["method"] == "ig" and not none["passes_sanity"] and "no method passes" in none["why"]
    # a passing method whose deletion is not reliably better than random order does not qualify
    only = choose_methods([{**r, "passed": r["method"] == "saliency"} for r in sanity_rows], faith)["MI"]
    assert only["method"] == "ig" and not only["passes_sanity"] and "better than random" in only["why"]


def test_choose_method_command_reads_both_results(tiny_run, synth_dir, tmp_path, capsys):
    import shutil

    from xand.cli import main
    from xand.explain.faithfulness import FaithfulnessConfig, faithfulness_check
    from xand.explain.sanity import SanityConfig, sanity_check
    from xand.explain.selection import load_choice

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["choose-method", "--run", str(run), "--data", str(synth_dir)]) == 2  # nothing measured yet
    assert "python -m xand sanity" in capsys.readouterr().err
    sanity_check(run, synth_dir, SanityConfig(methods=("saliency", "gradcam"), split="val", n_per_head=1,
                                              max_blocks=1), progress=False)
    faithfulness_check(run, synth_dir, FaithfulnessConfig(methods=("saliency", "gradcam"), split="val", n_per_head=1,
                                                          n_random=1, n_subsets=5), progress=False)
    assert main(["choose-method", "--run", str(run), "--data", str(synth_dir)]) == 0
    choice = load_choice(run)
    assert choice and all(c["method"] in ("saliency", "gradcam") for c in choice.values())
