"""Attribution: hand-computable toy models, agreement with Captum called directly, Grad-CAM reshaping,
lead importance and lead dropping, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xand.explain.attribution import (ATTRIBUTION_METHODS, BASELINES, IGConfig, attribute, lead_drop, lead_importance,
                              lead_importance_reason, make_baseline)
from xand.errors import DataError, UnknownNameError

T = 40


class Linear(nn.Module):
    """logit = sum(w * x) + b: IG from a zero baseline is exactly x * w, saliency is |w|."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(12, T, generator=g))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return ((x * self.w).sum(dim=(1, 2)) + self.b)[:, None]


class OneLead(nn.Module):
    """Looks only at lead ``lead`` (a smooth non-linear function of it)."""

    def __init__(self, lead: int = 4):
        super().__init__()
        self.lead = lead
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return torch.tanh(self.scale * x[:, self.lead]).sum(dim=1, keepdim=True)


class LeadwiseStandIn(nn.Module):
    """Same contract as ``xand.models.networks.LeadwiseNet``: leads folded into the batch (lead-major), so the
    cam layer's batch is B*12; the classifier here only uses lead ``lead``'s features."""

    leadwise = True

    def __init__(self, lead: int = 5, channels: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, channels, 5, padding=2)
        self.cam_layer = self.conv
        w = torch.zeros(12, channels)
        w[lead] = torch.randn(channels).abs() + 0.1
        self.fc = nn.Parameter(w)

    def forward(self, x):
        b, leads, t = x.shape
        z = torch.relu(self.conv(x.reshape(b * leads, 1, t)))  # (B*12, C, T)
        feats = z.mean(dim=-1).view(b, leads, -1)
        return (feats * self.fc).sum(dim=(1, 2))[:, None]


class ChannelStandIn(nn.Module):
    leadwise = False

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(12, 4, 5, padding=2, stride=2)
        self.cam_layer = self.conv
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=-1))


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 12, T, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ by hand

@pytest.mark.parametrize("quadrature", ["gausslegendre", "riemann_middle"])
def test_ig_on_linear_model_is_x_times_w_with_zero_delta(quadrature):
    m, x = Linear().eval(), _x()
    a = attribute(m, x, 0, "ig", n_steps=7, quadrature=quadrature)
    expected = (x[0] * m.w).detach().numpy()
    np.testing.assert_allclose(a.map, expected, rtol=1e-4, atol=1e-5)
    assert a.map.shape == (12, T) and a.map.dtype == np.float32
    assert abs(a.delta) < 1e-3 and a.method == "ig" and a.params["n_steps"] == 7


def test_ig_with_other_baseline_is_difference_times_w():
    m, x = Linear().eval(), _x()
    for name in BASELINES:
        base = make_baseline(x, name)
        a = attribute(m, x, 0, "ig", baseline=name)
        np.testing.assert_allclose(a.map, ((x - base)[0] * m.w).detach().numpy(), rtol=1e-4, atol=1e-4)
        assert a.params["baseline"] == name


def test_baselines_are_what_they_say():
    x = _x()
    assert torch.equal(make_baseline(x, "zeros"), torch.zeros_like(x))
    mean = make_baseline(x, "mean")
    torch.testing.assert_close(mean[..., 0], x.mean(dim=-1))
    assert torch.allclose(mean[..., 0:1].expand_as(mean), mean)
    blur = make_baseline(x, "blur", blur_sigma=3.0)
    assert blur.shape == x.shape and blur.diff(dim=-1).abs().mean() < x.diff(dim=-1).abs().mean() / 2
    assert torch.equal(make_baseline(x, "noise", seed=3), make_baseline(x, "noise", seed=3))
    assert torch.equal(make_baseline(x, 0.5), torch.full_like(x, 0.5))
    with pytest.raises(UnknownNameError, match="zeros"):
        make_baseline(x, "nope")


def test_saliency_on_linear_model_is_abs_w():
    m, x = Linear().eval(), _x()
    a = attribute(m, x, 0, "saliency")
    np.testing.assert_allclose(a.map, m.w.detach().abs().numpy(), rtol=1e-6)
    assert a.delta is None


def test_occlusion_on_linear_model_non_overlapping_windows():
    m, x = Linear().eval(), _x()
    a = attribute(m, x, 0, "occlusion", window=5, stride=5)
    contrib = (x[0] * m.w).detach().numpy().reshape(12, T // 5, 5).sum(axis=-1)
    np.testing.assert_allclose(a.map, np.repeat(contrib, 5, axis=1), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- against Captum directly

def test_ig_matches_captum_directly():
    from captum.attr import IntegratedGradients

    m, x = LeadwiseStandIn().eval(), _x(1)
    ours = attribute(m, x, 0, "ig", n_steps=50, quadrature="gausslegendre", internal_batch_size=None)
    ref, delta = IntegratedGradients(m).attribute(x, baselines=torch.zeros_like(x), target=0,
                                                  return_convergence_delta=True)
    np.testing.assert_allclose(ours.map, ref[0].detach().numpy(), rtol=1e-5, atol=1e-7)
    assert ours.delta == pytest.approx(float(delta), abs=1e-7)


def test_ig_default_is_the_project_config():
    a = attribute(Linear().eval(), _x(), 0, "ig")
    cfg = IGConfig()
    assert (a.params["n_steps"], a.params["quadrature"], a.params["baseline"]) == (
        cfg.n_steps, cfg.quadrature, cfg.baseline)


def test_saliency_matches_captum_directly():
    from captum.attr import Saliency

    m, x = LeadwiseStandIn().eval(), _x(2)
    ref = Saliency(m).attribute(x.clone().requires_grad_(True), target=0)
    np.testing.assert_allclose(attribute(m, x, 0, "saliency").map, ref[0].numpy(), rtol=1e-6)


def test_gradshap_matches_captum_with_same_seed_and_is_repeatable():
    from captum.attr import GradientShap

    m, x = LeadwiseStandIn().eval(), _x(3)
    ours = attribute(m, x, 0, "gradshap", n_samples=8, stdevs=0.1, baselines=("zeros", "blur"), seed=5)
    again = attribute(m, x, 0, "gradshap", n_samples=8, stdevs=0.1, baselines=("zeros", "blur"), seed=5)
    np.testing.assert_array_equal(ours.map, again.map)
    dist = torch.cat([make_baseline(x, "zeros"), make_baseline(x, "blur")])
    torch.manual_seed(5)
    np.random.seed(5)
    ref = GradientShap(m).attribute(x, baselines=dist, target=0, n_samples=8, stdevs=0.1)
    np.testing.assert_allclose(ours.map, ref[0].detach().numpy(), rtol=1e-5, atol=1e-7)


def test_gradshap_does_not_disturb_global_rng():
    np.random.seed(11)
    torch.manual_seed(11)
    attribute(Linear().eval(), _x(), 0, "gradshap", n_samples=4)
    a, b = np.random.rand(), torch.rand(1).item()
    np.random.seed(11)
    torch.manual_seed(11)
    assert (a, b) == (np.random.rand(), torch.rand(1).item())


# ------------------------------------------------------------------------------------- Grad-CAM

def test_gradcam_leadwise_reshapes_lead_major_and_upsamples():
    from captum.attr import LayerGradCam

    m, x = LeadwiseStandIn(lead=5).eval(), _x(4)
    a = attribute(m, x, 0, "gradcam")
    assert a.map.shape == (12, T) and a.note is None
    raw = LayerGradCam(m, m.cam_layer).attribute(x, target=0, relu_attributions=True)  # (12, 1, T)
    np.testing.assert_allclose(a.map, raw[:, 0].detach().numpy(), rtol=1e-5, atol=1e-7)  # T' == T here
    others = np.delete(a.map, 5, axis=0)
    assert np.all(others == 0) and a.map[5].max() > 0  # only the lead the classifier uses


def test_gradcam_leadwise_with_real_model_shapes():
    from xand.models.networks import create_model

    torch.manual_seed(0)
    m = create_model("leadwise", width=0.25, aux=False).eval()
    x = torch.randn(1, 12, 200)
    a = attribute(m, x, 0, "gradcam")
    assert a.map.shape == (12, 200) and a.params["layer_length"] < 200 and np.isfinite(a.map).all()
    assert not np.allclose(a.map[0], a.map[1])  # per-lead maps, not one broadcast curve


def test_gradcam_channel_model_broadcasts_with_note():
    m, x = ChannelStandIn().eval(), _x(5)
    a = attribute(m, x, 0, "gradcam")
    assert a.map.shape == (12, T) and "all 12 leads" in a.note
    assert np.all(a.map == a.map[0]) and a.params["layer_length"] == T // 2


# ---------------------------------------------------------------- lead importance and lead dropping

def test_lead_importance_shares_of_positive_mass():
    amap = np.zeros((12, T), dtype=np.float32)
    amap[2, :3] = 1.0
    amap[5, 0] = 1.0
    amap[7, :] = -9.0  # negative evidence is not importance
    li = lead_importance(amap)
    assert li.sum() == pytest.approx(1.0)
    assert li[2] == pytest.approx(0.75) and li[5] == pytest.approx(0.25) and li[7] == 0.0


def test_lead_importance_undefined_for_all_zero_map():
    li = lead_importance(np.zeros((12, T)))
    assert np.isnan(li).all() and "no positive" in lead_importance_reason(np.zeros((12, T)))
    assert lead_importance_reason(np.ones((12, T))) is None


def test_lead_importance_and_drop_on_a_model_that_only_sees_one_lead():
    m, x = OneLead(lead=4).eval(), _x(6).abs() + 0.5
    a = attribute(m, x, 0, "ig")
    li = lead_importance(a.map)
    assert li[4] == pytest.approx(1.0) and np.delete(li, 4).sum() == 0.0
    drop = lead_drop(m, x, 0)
    p = torch.sigmoid(m(x))[0, 0].item()
    p0 = torch.sigmoid(torch.tensor(0.0)).item()  # lead 4 zeroed: tanh(0) sums to 0
    assert drop.shape == (12,) and drop[4] == pytest.approx(p - p0, rel=1e-6)
    assert np.all(np.delete(drop, 4) == 0.0)


def test_lead_drop_is_one_batched_forward_of_13():
    calls = []

    class Spy(OneLead):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return super().forward(x)

    lead_drop(Spy().eval(), _x(), 0)
    assert calls == [(13, 12, T)]


# ------------------------------------------------------------------------------------- bad input

def test_unknown_method_lists_valid_names():
    with pytest.raises(UnknownNameError) as exc:
        attribute(Linear(), _x(), 0, "lime")
    assert all(name in str(exc.value) for name in ATTRIBUTION_METHODS)


def test_bad_shapes_and_non_finite_input_raise_data_error():
    with pytest.raises(DataError, match=r"\(1, 12, T\)"):
        attribute(Linear(), torch.zeros(1, 11, T), 0, "saliency")
    x = _x()
    x[0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        attribute(Linear(), x, 0, "saliency")


def test_attribute_works_from_no_grad_and_inference_mode_and_numpy():
    m = Linear().eval()
    ref = attribute(m, _x(), 0, "ig").map
    with torch.no_grad():
        np.testing.assert_allclose(attribute(m, _x(), 0, "ig").map, ref)
    with torch.inference_mode():
        xi = _x()
    np.testing.assert_allclose(attribute(m, xi, 0, "ig").map, ref)
    np.testing.assert_allclose(attribute(m, _x()[0].numpy(), 0, "ig").map, ref)


def test_flat_input_gives_zero_ig_map_and_undefined_importance():
    a = attribute(Linear().eval(), torch.zeros(1, 12, T), 0, "ig")  # input equals the baseline
    assert np.all(a.map == 0) and np.isnan(lead_importance(a.map)).all()


# ------------------------------------------------------------------------------ BatchNorm folding

def _leadwise_with_bn_stats():
    from xand.models.networks import create_model

    torch.manual_seed(0)
    m = create_model("leadwise", width=0.25, aux=False)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):  # non-trivial running statistics, as after training
            mod.running_mean.normal_(0, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.bias.data.normal_(0, 0.1)
    return m.eval()


def test_bn_folded_gradient_model_gives_the_same_ig_and_is_cached():
    from xand.explain.attribution import gradient_model

    m = _leadwise_with_bn_stats()
    x = torch.randn(1, 12, 200, generator=torch.Generator().manual_seed(0))
    g = gradient_model(m)
    assert g is not m and gradient_model(m) is g  # cached
    assert not any(isinstance(mod, nn.BatchNorm1d) for mod in g.modules())
    fused = attribute(m, x, 0, "ig", n_steps=8, fuse_bn=True)
    plain = attribute(m, x, 0, "ig", n_steps=8, fuse_bn=False)
    np.testing.assert_allclose(fused.map, plain.map, rtol=1e-3, atol=1e-5 * np.abs(plain.map).max())
    assert fused.delta == pytest.approx(plain.delta, abs=1e-4)
    with torch.no_grad():
        m.stem[0][0].weight.mul_(2.0)  # a changed parameter invalidates the cached copy
    assert gradient_model(m) is not g
    m.train()
    assert gradient_model(m) is m  # BatchNorm is not a fixed affine map in training mode


# ---------------------------------------------------------------- Grad-CAM cells on the input grid

class StridedLeadwise(nn.Module):
    """Lead-wise toy with a strided cam layer: kernel 9, stride 4, no padding, so cell j sees samples
    4j..4j+8 and is centred on 4j + 4 (T=40: 8 cells; equal tiles would centre them on 5j + 2)."""

    leadwise = True

    def __init__(self, lead: int = 5):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 9, stride=4, bias=False)
        tri = torch.tensor([1.0, 2, 3, 4, 5, 4, 3, 2, 1])
        self.conv.weight.data[:] = tri  # peaked in the middle: the cell centred on an impulse wins
        self.cam_layer = self.conv
        w = torch.zeros(12, 2)
        w[lead] = 1.0
        self.fc = nn.Parameter(w)

    def forward(self, x):
        b, leads, t = x.shape
        z = torch.relu(self.conv(x.reshape(b * leads, 1, t)))
        return (z.mean(dim=-1).view(b, leads, -1) * self.fc).sum(dim=(1, 2))[:, None]


def test_gradcam_of_an_impulse_peaks_on_the_impulse():
    m = StridedLeadwise(lead=5).eval()
    x = torch.zeros(1, 12, T)
    x[0, 5, 24] = 1.0  # the centre of cell 5 (4*5 + 4); equal tiles would draw cell 5 at sample 27
    a = attribute(m, x, 0, "gradcam")
    assert a.params["layer_length"] == 8 and a.params["cell_stride"] == 4.0 and a.params["cell_offset"] == 4.0
    assert int(np.argmax(a.map[5])) == 24
    assert np.all(np.delete(a.map, 5, axis=0) == 0)


class _OneCellCam:
    """Stand-in for captum's LayerGradCam: a CAM that is 1 on cell ``J`` of the real cam layer, 0 elsewhere."""

    J = 0

    def __init__(self, model, layer):
        self.model, self.layer = model, layer

    def attribute(self, x, target=0, relu_attributions=True):
        out = []
        h = self.layer.register_forward_hook(lambda mod, i, o: out.append(o))
        with torch.no_grad():
            self.model(x)
        h.remove()
        cam = torch.zeros(out[0].shape[0], 1, out[0].shape[-1])
        cam[..., self.J] = 1.0
        return cam


@pytest.mark.parametrize("name, stride, offset", [
    # receptive-field centres worked out by hand from the layers (kernel k, padding k // 2 keeps a cell's
    # centre; a stride-s conv maps centre c to s*c; a 2-wide max-pool maps it to 2c + 0.5)
    ("leadwise", 64, 1.0),  # conv/2, pool/2, stages /1 /2 /2 /4: 2 * (2 * 16j + 0.5) = 64j + 1
    ("resnet1d", 16, 1.0),  # conv/2, pool/2, stages /1 /2 /2: 2 * (2 * 4j + 0.5) = 16j + 1
    ("cnn1d", 8, 3.5),  # three (conv, pool/2): ((2j + .5) * 2 + .5) * 2 + .5 = 8j + 3.5
])
def test_gradcam_cells_land_on_their_receptive_field_centres(monkeypatch, name, stride, offset):
    import captum.attr

    from xand.models.networks import create_model

    torch.manual_seed(0)
    m = create_model(name, width=0.25, aux=False).eval()
    x = torch.randn(1, 12, 1000)
    monkeypatch.setattr(captum.attr, "LayerGradCam", _OneCellCam)
    n = attribute(m, x, 0, "gradcam").params["layer_length"]
    for j in (1, n // 3, n - 2):
        monkeypatch.setattr(_OneCellCam, "J", j)
        a = attribute(m, x, 0, "gradcam")
        row = a.map[0].astype(np.float64)
        centre = stride * j + offset
        assert abs(int(np.argmax(row)) - centre) <= 0.5, (name, j)
        assert abs((row * np.arange(1000)).sum() / row.sum() - centre) < 1e-3, (name, j)  # symmetric tent
        assert a.params["cell_stride"] == stride and a.params["cell_offset"] == offset


def test_cam_cell_centres_are_cached_per_architecture():
    from xand.explain import attribution
    from xand.models.networks import create_model

    a, b = create_model("cnn1d", width=0.25, aux=False), create_model("cnn1d", width=0.25, aux=False)
    first = attribution.cam_cell_centres(a, 500)
    assert attribution.cam_cell_centres(b, 500) is first  # another instance, same layers: no re-measure
    assert len(attribution.cam_cell_centres(a, 1000)[0]) == 125


# ------------------------------------------------------------------------- eval mode, seeding

def test_attribute_and_lead_drop_run_a_training_mode_model_in_eval_mode_and_restore_it():
    m = _leadwise_with_bn_stats()
    x = torch.randn(1, 12, 200, generator=torch.Generator().manual_seed(1))
    ref_ig = attribute(m, x, 0, "ig", n_steps=8)
    ref_drop = lead_drop(m, x, 0)
    m.train()
    m.classifier.eval()  # a submodule in its own mode stays so
    ig = attribute(m, x, 0, "ig", n_steps=8)
    np.testing.assert_allclose(ig.map, ref_ig.map, rtol=1e-5, atol=1e-7)  # BatchNorm on running stats
    assert ig.delta == pytest.approx(ref_ig.delta, abs=1e-6)
    np.testing.assert_allclose(attribute(m, x, 0, "saliency").map, attribute(m.eval(), x, 0, "saliency").map)
    m.train()
    m.classifier.eval()
    np.testing.assert_allclose(lead_drop(m, x, 0), ref_drop, rtol=1e-6, atol=1e-9)
    assert m.training and m.stem.training and not m.classifier.training
    assert not any(mod.training for mod in m.classifier.modules())


def test_gradshap_on_cpu_does_not_reseed_cuda_generators(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    attribute(Linear().eval(), _x(), 0, "gradshap", n_samples=4, seed=7)
    assert calls == []  # torch.manual_seed would re-seed every CUDA generator, never restored


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gradshap_on_cuda_is_seeded_and_leaves_the_cuda_generator_alone():
    m, x = LeadwiseStandIn().eval().cuda(), _x(3).cuda()
    torch.cuda.manual_seed(123)
    state = torch.cuda.get_rng_state()
    a = attribute(m, x, 0, "gradshap", n_samples=8, seed=5)
    assert torch.equal(torch.cuda.get_rng_state(), state)
    b = attribute(m, x, 0, "gradshap", n_samples=8, seed=5)
    np.testing.assert_array_equal(a.map, b.map)
    c = attribute(m, x, 0, "gradshap", n_samples=8, seed=6)
    assert not np.array_equal(a.map, c.map)


# ------------------------------------------------------------- gradient-only IG and Expected Gradients

def test_gradient_only_ig_on_a_linear_model_is_w_whatever_the_baseline():
    m, x = Linear().eval(), _x()
    for baseline in ("zeros", "blur"):
        a = attribute(m, x, 0, "ig_grad", baseline=baseline, n_steps=7)
        np.testing.assert_allclose(a.map, m.w.detach().numpy(), rtol=1e-4, atol=1e-5)
        assert a.delta is None and a.params["multiply_by_inputs"] is False and "completeness" in a.note


def test_gradient_only_ig_matches_captum_directly():
    from captum.attr import IntegratedGradients

    m, x = OneLead().eval(), _x(3)
    a = attribute(m, x, 0, "ig_grad", n_steps=16, fuse_bn=False)
    want = IntegratedGradients(m, multiply_by_inputs=False).attribute(
        x, baselines=torch.zeros_like(x), target=0, n_steps=16, method="gausslegendre")
    np.testing.assert_allclose(a.map, want[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert (a.map[[i for i in range(12) if i != 4]] == 0).all()  # the lead the model ignores gets nothing


def test_expected_gradients_with_one_reference_is_ig_from_that_reference():
    m, x = Linear().eval(), _x()
    ref = _x(7)
    a = attribute(m, x, 0, "expected_gradients", references=ref.numpy(), n_samples=8)
    np.testing.assert_allclose(a.map, ((x - ref)[0] * m.w).detach().numpy(), rtol=1e-4, atol=1e-4)
    assert a.delta < 1e-3 and a.params["references"] == 1 and a.params["n_samples"] == 8


def test_expected_gradients_averages_over_its_references_and_is_seeded():
    m, x = Linear().eval(), _x()
    refs = torch.cat([_x(s) for s in (11, 12, 13)])
    a = attribute(m, x, 0, "expected_gradients", references=refs, n_samples=64, seed=2)
    b = attribute(m, x, 0, "expected_gradients", references=refs, n_samples=64, seed=2)
    np.testing.assert_array_equal(a.map, b.map)
    # linear model: the map is (x - the mean of the drawn references) * w, so it sums to f(x) - mean f(ref)
    f = lambda t: m(t).sum().item()  # noqa: E731
    drawn_mean = float(a.map.sum())
    assert min(f(x) - f(r[None]) for r in refs) - 1e-3 <= drawn_mean <= max(f(x) - f(r[None]) for r in refs) + 1e-3


def test_expected_gradients_needs_references_of_the_inputs_shape():
    m, x = Linear().eval(), _x()
    with pytest.raises(DataError, match="reference"):
        attribute(m, x, 0, "expected_gradients")
    with pytest.raises(DataError, match="references of shape"):
        attribute(m, x, 0, "expected_gradients", references=np.zeros((2, 12, T + 1), np.float32))


def test_reference_bank_draws_training_negatives_prepared_as_model_input(synth_dir):
    from xand.constants import NEGATIVE
    from xand.data.preprocess import PreprocessConfig
    from xand.data.ptbxl import PTBXL
    from xand.explain.references import reference_bank

    class Pred:
        preprocess_cfg = PreprocessConfig(fs=100)

        def prepare_batch(self, ecgs, fs):
            return torch.as_tensor(np.asarray(ecgs, np.float32) * 2.0)

    pred = Pred()
    bank = reference_bank(pred, synth_dir, "MI", n=5, seed=1)
    assert bank.shape == (5, 12, 1000) and bank.dtype == np.float32 and not bank.flags.writeable
    assert reference_bank(pred, synth_dir, "MI", n=5, seed=1) is bank  # cached
    ds = PTBXL(synth_dir)
    lab = ds.labels()
    negatives = lab.index[(lab["split"] == "train") & (lab["MI"] == NEGATIVE)]
    loaded = {int(i): ds.load(int(i), fs=100) * 2.0 for i in negatives}
    for ref in bank:  # every reference is one of the training negatives, prepared as the model's input
        assert any(np.allclose(ref, v) for v in loaded.values())
    with pytest.raises(DataError):
        reference_bank(pred, synth_dir, "MI", split="nonexistent")
