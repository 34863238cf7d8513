"""explain_ecg / xai_batch with stand-in predictors whose explanations are known by construction;
bad input (no beats, flat lead, all-zero attribution) gives undefined scores with reasons."""

from __future__ import annotations

import json
from pathlib import Path
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.errors import DataError, UnknownNameError
from xand.fiducials import Fiducials
from xand.delineation.masks import clinical_mask
from xand.data.preprocess import PreprocessConfig, normalize, resample
from xand.explain.xai import check_synthetic, explain_ecg, format_summary, summarize_records

FS, T = 100, 1000
K = {k: i for i, k in enumerate(FIDUCIAL_KINDS)}


def _fiducials(fs: float = FS, n: int = T, rr: int = 100) -> Fiducials:
    """Regular beats every ``rr`` samples (at 100 Hz): QRS 10 samples, T wave 20 samples."""
    s = fs / FS
    rows = []
    for r in range(50, int(n / s) - 50, rr):
        row = np.full(len(FIDUCIAL_KINDS), np.nan)
        for kind, off in {"P_on": -25, "P_peak": -20, "P_off": -15, "QRS_on": -5, "R_peak": 0,
                          "QRS_off": 5, "J": 6, "T_on": 15, "T_peak": 25, "T_off": 35}.items():
            row[K[kind]] = (r + off) * s
        rows.append(row)
    beats = np.array(rows)
    return Fiducials(fs, n, [beats.copy() for _ in range(N_LEADS)], np.ones(N_LEADS, bool), "test")


def _ecg(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FS
    return (np.sin(2 * np.pi * 1.0 * t)[None] * rng.uniform(0.5, 1.5, (N_LEADS, 1))
            + 0.05 * rng.normal(size=(N_LEADS, T))).astype(np.float32)


class WeightModel(nn.Module):
    """logit = sum(w * x): IG from zero is w * x, so the map is known exactly."""

    leadwise = False

    def __init__(self, w: np.ndarray):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(np.asarray(w, dtype=np.float32)))
        self.cam_layer = nn.Identity()

    def forward(self, x):
        return (self.cam_layer(x) * self.w).sum(dim=(1, 2))[:, None]


class StandInPredictor:
    """The contract of ``xand.training.trainer.Predictor`` used by ``explain_ecg``/``xai_batch``."""

    def __init__(self, models: dict[str, nn.Module], fs: int = FS):
        self.heads = tuple(models)
        self._models = {h: m.eval() for h, m in models.items()}
        self.preprocess_cfg = PreprocessConfig(fs=fs)

    def model(self, head):
        return self._models[head]

    def target(self, head):
        return 0

    def prepare_input(self, ecg, fs):
        x = resample(ecg, fs, self.preprocess_cfg.fs) if fs != self.preprocess_cfg.fs else ecg
        return torch.as_tensor(normalize(np.asarray(x, np.float32)[None]))


def _oracle_for(head: str, ecg: np.ndarray, fid: Fiducials) -> WeightModel:
    """A model whose evidence lies exactly in ``head``'s mask, with the sign of the input there."""
    mask = clinical_mask(fid, head, T)
    x = normalize(ecg[None])[0]
    return WeightModel(0.002 * mask * np.sign(x))


def test_oracle_model_points_into_its_region_with_full_cas():
    ecg, fid = _ecg(), _fiducials()
    pred = StandInPredictor({"CD": _oracle_for("CD", ecg, fid)})
    ex = explain_ecg(pred, ecg, FS, "CD", fiducials=fid, compare_method="saliency")
    mask = clinical_mask(fid, "CD", T)
    assert np.array_equal(ex.mask, mask) and ex.mask_reason is None
    assert ex.scores["pointing_game"].value == 1.0
    assert ex.scores["cas"].value == pytest.approx(1.0)
    assert ex.scores["rank_accuracy"].value > 0.95
    assert ex.scores["pointing_game"].chance == pytest.approx(mask.mean()) == ex.chance
    pert = ex.scores["perturbation"]
    assert pert.value > 0 and pert.chance == pytest.approx(0.0, abs=1e-9)  # random region carries no evidence
    assert -1 <= ex.scores["cosine"].value <= 1
    assert ex.lead_importance.sum() == pytest.approx(1.0) and ex.lead_drop.shape == (12,)
    assert abs(ex.delta) < 1e-3 and 0 < ex.probability < 1
    json.dumps(ex.summary())  # the app/CLI can serialise it


def test_fiducials_on_another_grid_are_resampled_to_the_working_rate():
    ecg = _ecg(1)
    fid100, fid500 = _fiducials(), _fiducials(fs=500, n=5000)
    pred = StandInPredictor({"STTC": _oracle_for("STTC", ecg, fid100)})
    a = explain_ecg(pred, ecg, FS, "STTC", fiducials=fid500, lead_dropping=False, perturbation=False)
    assert a.fs == FS and a.mask.shape == (12, T)
    assert np.array_equal(a.mask, clinical_mask(fid100, "STTC", T))
    assert a.lead_drop is None and "perturbation" not in a.scores


def test_ecg_at_500_hz_is_explained_on_the_model_grid():
    ecg500 = resample(_ecg(2), FS, 500)
    pred = StandInPredictor({"CD": WeightModel(np.ones((12, T)))})
    ex = explain_ecg(pred, ecg500, 500, "CD", fiducials=_fiducials(fs=500, n=5000))
    assert ex.attribution.map.shape == (12, T) and ex.mask.shape == (12, T)


def test_no_beats_gives_undefined_scores_with_reason_not_a_crash():
    ecg = _ecg()
    pred = StandInPredictor({"MI": WeightModel(np.ones((12, T)))})
    ex = explain_ecg(pred, ecg, FS, "MI", fiducials=Fiducials.empty(FS, T, "test"))
    assert not ex.mask.any() and ex.mask_reason == "no beats delineated on any lead"
    for name in ("pointing_game", "cas", "rank_accuracy", "perturbation"):
        s = ex.scores[name]
        assert s.value is None and s.reason == "no beats delineated on any lead"
    assert ex.lead_importance_reason is None  # the map itself is fine


def test_no_beats_via_own_delineation_on_a_flat_ecg():
    pred = StandInPredictor({"CD": WeightModel(np.ones((12, T)))})
    ex = explain_ecg(pred, np.zeros((12, T), np.float32), FS, "CD")  # delineate() finds nothing
    assert ex.scores["pointing_game"].value is None and ex.mask_reason
    assert "no positive" in ex.lead_importance_reason and np.isnan(ex.lead_importance).all()


def test_flat_lead_and_lead_without_quality_give_defined_results():
    ecg, fid = _ecg(3), _fiducials()
    ecg[7] = 0.0
    fid.quality[7] = False  # as delineation marks a flat lead
    pred = StandInPredictor({"CD": _oracle_for("CD", ecg, fid)})
    ex = explain_ecg(pred, ecg, FS, "CD", fiducials=fid)
    assert not ex.mask[7].any() and ex.mask.any()
    assert np.all(ex.attribution.map[7] == 0) and ex.lead_importance[7] == 0.0
    assert ex.scores["pointing_game"].value == 1.0


def test_all_zero_attribution_is_undefined_everywhere_it_must_be():
    pred = StandInPredictor({"HYP": WeightModel(np.zeros((12, T)))})
    ex = explain_ecg(pred, _ecg(), FS, "HYP", fiducials=_fiducials(), compare_method="saliency")
    assert "all-zero" in ex.scores["pointing_game"].reason
    assert ex.scores["cas"].value is None and ex.scores["rank_accuracy"].value is None
    assert ex.scores["cosine"].value is None
    assert np.isnan(ex.lead_importance).all() and ex.lead_importance_reason
    assert ex.scores["perturbation"].value == pytest.approx(0.0)  # the model ignores the input: defined 0


def test_bad_ecg_and_unknown_head_raise():
    pred = StandInPredictor({"CD": WeightModel(np.ones((12, T)))})
    with pytest.raises(DataError, match="shape"):
        explain_ecg(pred, np.zeros((11, T)), FS, "CD", fiducials=_fiducials())
    bad = _ecg()
    bad[0, 3] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        explain_ecg(pred, bad, FS, "CD", fiducials=_fiducials())
    with pytest.raises(UnknownNameError, match="CD"):
        explain_ecg(pred, _ecg(), FS, "MI", fiducials=_fiducials())


def test_summary_counts_undefined_with_reasons_and_wilson_ci():
    import pandas as pd

    recs = pd.DataFrame([
        {"ecg_id": 1, "head": "CD", "status": "ok", "error": None, "pointing_game": 1.0, "cas": 0.8,
         "chance": 0.1, "probability": 0.9, "abs_delta": 1e-3},
        {"ecg_id": 2, "head": "CD", "status": "ok", "error": None, "pointing_game": 0.0, "cas": 0.4,
         "chance": 0.2, "probability": 0.7, "abs_delta": 2e-3},
        {"ecg_id": 3, "head": "CD", "status": "ok", "error": None, "pointing_game": None,
         "pointing_game_reason": "empty mask", "cas": None, "cas_reason": "empty mask", "chance": 0.0,
         "probability": 0.6, "abs_delta": 3e-3},
        {"ecg_id": 4, "head": "CD", "status": "skipped", "error": "bad file"},
    ])
    for col in ("rank_accuracy", "drop_mask", "drop_random", "drop_diff", "cosine"):
        recs[col] = np.nan
    s = summarize_records(recs, ["CD", "MI"], {"CD": 4, "MI": 0}).set_index("head")
    cd = s.loc["CD"]
    assert (cd["n_positive"], cd["n"], cd["n_skipped"]) == (4, 3, 1)
    assert cd["pointing_game_n"] == 2 and cd["pointing_game_mean"] == 0.5
    assert json.loads(cd["pointing_game_undefined_reasons"]) == {"empty mask": 1}
    assert json.loads(cd["skipped_reasons"]) == {"bad file": 1}
    assert 0 < cd["pointing_game_ci_low"] < 0.5 < cd["pointing_game_ci_high"] < 1  # Wilson, n = 2
    assert cd["cas_mean"] == pytest.approx(0.6) and cd["chance_mean"] == pytest.approx(0.1)
    assert s.loc["MI", "n"] == 0 and np.isnan(s.loc["MI", "pointing_game_mean"])
    ok, lines = check_synthetic(s.reset_index())
    assert not ok and "FAIL" in lines[0] and len(lines) == 2
    assert "undefined" in format_summary(s.reset_index())


def _tiny_synth(tmp_path):
    from xand.data.synth import SynthConfig, synthesize

    return synthesize(tmp_path / "synth", SynthConfig(n_records=60, seed=1), workers=1, progress=False)


def test_xai_batch_on_synthetic_set_with_stand_in_run(tmp_path, monkeypatch):
    """The batch path end to end (data, PTB-XL+ ground-truth fiducials, scores, files) with a stand-in
    run: a model that looks everywhere, so only the plumbing is checked here."""
    from xand.explain.xai import xai_batch

    data = _tiny_synth(tmp_path)
    torch.manual_seed(0)
    pred = StandInPredictor({h: WeightModel(np.random.default_rng(i).normal(size=(12, T)))
                             for i, h in enumerate(("MI", "CD"))})
    fake = types.ModuleType("xand.training.predictor")
    fake.load_run = lambda run_dir, device="cpu": pred
    monkeypatch.setitem(sys.modules, "xand.training.predictor", fake)
    run = tmp_path / "run"
    run.mkdir()
    df = xai_batch(run, data, split="train", progress=False, compare_method="saliency", max_per_head=3)
    assert list(df["head"]) == ["MI", "CD"]
    assert (df["n"] + df["n_skipped"] <= 3).all() and (df["n"] > 0).all()
    assert df.attrs["fiducials"].startswith("PTB-XL+")
    for name in ("train_ig.csv", "train_ig.json", "train_ig_records.csv"):
        assert (run / "xai" / name).is_file()
    info = json.loads((run / "xai" / "train_ig.json").read_text())
    assert info["config"]["method"] == "ig" and len(info["heads"]) == 2
    assert ((df["chance_mean"] > 0) & (df["chance_mean"] < 1)).all()


def test_xai_batch_skips_a_record_that_fails_with_any_error_and_keeps_the_rest(tmp_path, monkeypatch):
    """A RuntimeError / IndexError from torch or the delineator on one record is that record skipped
    (type and message recorded, counted), never the whole batch lost."""
    import xand.explain.xai as xai

    data = _tiny_synth(tmp_path)
    pred = StandInPredictor({h: WeightModel(np.random.default_rng(i).normal(size=(12, T)))
                             for i, h in enumerate(("MI", "CD"))})
    fake = types.ModuleType("xand.training.predictor")
    fake.load_run = lambda run_dir, device="cpu": pred
    monkeypatch.setitem(sys.modules, "xand.training.predictor", fake)
    first = xai.xai_batch(tmp_path / "run0", data, split="train", progress=False, compare_method=None,
                          max_per_head=3, out_dir=tmp_path / "ok")
    ids = sorted(set(pd_read(tmp_path / "ok" / "train_ig_records.csv")["ecg_id"]))
    assert len(ids) >= 3 and (first["n_skipped"] == 0).all()
    bad_load, bad_explain = ids[0], ids[1]
    real_load, real_explain = xai.load_at_rates, xai.explain_ecg

    def load(ds, ecg_id, fs_work):
        if ecg_id == bad_load:
            raise IndexError("index 7 is out of bounds for axis 0 with size 7")
        return real_load(ds, ecg_id, fs_work)

    def explain(*a, seed=0, **kw):
        if seed == bad_explain:  # xai_batch seeds each record with seed + ecg_id (seed 0 here)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_explain(*a, seed=seed, **kw)

    monkeypatch.setattr(xai, "load_at_rates", load)
    monkeypatch.setattr(xai, "explain_ecg", explain)
    df = xai.xai_batch(tmp_path / "run1", data, split="train", progress=False, compare_method=None,
                       max_per_head=3, out_dir=tmp_path / "bad")
    recs = pd_read(tmp_path / "bad" / "train_ig_records.csv")
    skipped = recs[recs["status"] == "skipped"]
    assert set(skipped["ecg_id"]) == {bad_load, bad_explain}
    errors = set(skipped["error"])
    assert "IndexError: index 7 is out of bounds for axis 0 with size 7" in errors
    assert "RuntimeError: CUDA error: an illegal memory access was encountered" in errors
    assert set(recs.loc[recs["status"] == "ok", "ecg_id"]) == set(ids) - {bad_load, bad_explain}
    assert int(df["n_skipped"].sum()) == len(skipped)
    assert (df["n"] + df["n_skipped"] == first["n"]).all()
    reasons = {k for r in df["skipped_reasons"] for k in json.loads(r)}
    assert any(k.startswith("IndexError") for k in reasons) and any(k.startswith("RuntimeError") for k in reasons)


def test_xai_batch_rejects_a_bad_method_up_front(tmp_path):
    from xand.explain.xai import xai_batch

    with pytest.raises(UnknownNameError, match="nope"):
        xai_batch(tmp_path / "run", tmp_path / "data", method="nope", progress=False)
    with pytest.raises(UnknownNameError, match="gradshap_"):
        xai_batch(tmp_path / "run", tmp_path / "data", compare_method="gradshap_", progress=False)
    with pytest.raises(UnknownNameError, match="n_stepz"):
        xai_batch(tmp_path / "run", tmp_path / "data", method="ig", n_stepz=3, progress=False)


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


DEMO_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "demo_weights"


@pytest.fixture(scope="module")
def demo_sanity(tmp_path_factory):
    """The synthetic sanity check end to end: the committed demo heads (trained on the seed-0 demo set by
    ``python -m train --preset demo``) explained with IG on that set's held-out test split, against the
    ground-truth fiducials (PTB-XL+ layout in the same folder), single-pathology positives only."""
    from xand.data.synth import SynthConfig, synthesize
    from xand.explain.xai import xai_batch

    runs = sorted(p.parent for p in DEMO_WEIGHTS.glob("*/config.json"))
    if not runs:
        pytest.skip("no committed demo weights in data/demo_weights")
    tmp = tmp_path_factory.mktemp("demo_sanity")
    data = synthesize(tmp / "demo", SynthConfig(n_records=2000, seed=0), progress=False)
    df = xai_batch(runs[-1], data, split="test", progress=False, compare_method=None, single_pathology=True,
                   out_dir=tmp / "xai")
    assert df.attrs["fiducials"].startswith("PTB-XL+")
    return df.set_index("head")


@pytest.mark.slow
@pytest.mark.parametrize("head", [
    "MI", "CD", "HYP",
    # Measured on the demo heads (2026-11-22, rechecked 2026-12-02): STTC 0.00 over 13 ECGs (CAS 0.29,
    # chance 0.38). In all 13, IG's maximum is the R peak (lead II/V4, 50 ms before J). The head does decide
    # on the ST-T: with the record re-rendered without its STTC finding (same heart and noise), giving it
    # the normal twin's QRS leaves p at 0.80 (from 0.82), giving it the twin's ST-T drops p to 0.30.
    # IG with the flat-line (zero) baseline scores x * gradient, though. The ST-T evidence sits close to
    # the isoelectric line (|x| ~0.2-1 SD, against 5-6 SD at the R peak). The mean gradient in the ST
    # segment is larger than at R (down to -3e-3, against +1e-3 to +2e-3), but not by enough to make up for
    # that. MI, CD and HYP pass because their masks contain the QRS: 41 of their 48 maxima are within
    # 20 ms of an R peak too.
    # None of these reached more than 0.15 (2/13), so training, data and the mask chain are not the cause:
    # 12 epochs, seed 1, --augment, x0.1-1.9 scale augmentation, BCE, no per-lead or no z-score at all,
    # a stride-1 stem, doubled ischaemic ST-T amplitudes, no secondary ST-T in the negatives, NORM vs STTC
    # only (0/58), mean/blur/noise baselines, GradientShap, occlusion, saliency, a counterfactual baseline.
    pytest.param("STTC", marks=pytest.mark.xfail(
        strict=True, reason="STTC: zero-baseline IG peaks on the R peak, not in the near-isoelectric ST-T")),
])
def test_demo_heads_point_into_their_regions(demo_sanity, head):
    r = demo_sanity.loc[head]
    assert r["pointing_game_n"] >= 5
    ok, lines = check_synthetic(demo_sanity.loc[[head]].reset_index())
    assert ok, "\n".join(lines)


def test_a_record_is_explained_in_one_call_with_its_own_fiducials_and_finding_scores(tmp_path):
    """``explain_record`` (the Review page's one call down): PTB-XL+ points when the folder has them for
    the record, else the project's delineation; scores against each of the record's statements' masks."""
    from xand.data.ptbxl import PTBXL
    from xand.delineation.findings import FINDING_MASKS
    from xand.explain.xai import explain_record

    data = _tiny_synth(tmp_path)
    ds = PTBXL(data)
    ecg_id = next(int(i) for i, c in ds.meta["scp_codes"].items()
                  if any(k in FINDING_MASKS and FINDING_MASKS[k].head == "CD" for k in c))
    ecg = ds.load(ecg_id, fs=100)
    pred = StandInPredictor({"CD": WeightModel(np.random.default_rng(0).normal(size=(12, T)))})
    e = explain_record(pred, ecg, 100.0, "CD", "saliency", ecg_id=ecg_id, scp_codes=ds.meta.loc[ecg_id, "scp_codes"],
                       plus_dir=data)
    assert e.fiducials.source == "ptbxl+"
    assert e.findings and all(FINDING_MASKS[c].head == "CD" for c in e.findings)
    assert all("pointing_game" in v and "cas" in v for v in e.findings.values())
    own = explain_record(pred, ecg, 100.0, "CD", "saliency", ecg_id=ecg_id, cache_dir=tmp_path / "cache")
    assert own.findings == {} and own.fiducials.source != e.fiducials.source
    assert any((tmp_path / "cache").iterdir())  # delineated once, kept for the next call
