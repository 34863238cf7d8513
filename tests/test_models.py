"""Model registry and every registered model: shapes, gradients, per-lead features, CAM layer."""

from __future__ import annotations

import pytest
import torch

from xand.constants import SUPERCLASSES
from xand.errors import UnknownNameError
from xand.models.networks import create_model, list_models, n_parameters, register_model

#: small widths keep forward+backward of every model fast
SMALL = {"leadwise": {"width": 0.25}, "multilabel": {"width": 0.25}, "resnet1d": {"width": 0.25},
         "inception1d": {"width": 0.25, "depth": 3}, "cnn1d": {}}


def test_registry_lists_default_first_and_all_baselines():
    names = list_models()
    assert names[0] == "leadwise"
    assert {"leadwise", "multilabel", "resnet1d", "inception1d", "cnn1d"} <= set(names)


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        create_model("transformer9000")
    msg = str(err.value)
    assert "transformer9000" in msg and all(n in msg for n in list_models())
    assert isinstance(err.value, KeyError)


def test_register_model_adds_a_name():
    @register_model("_tiny_test_model")
    def tiny(**kw):
        return create_model("cnn1d", **kw)

    try:
        assert "_tiny_test_model" in list_models()
        assert create_model("_tiny_test_model").model_name == "_tiny_test_model"
    finally:
        from xand.models import networks as models

        del models.MODELS["_tiny_test_model"]


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_model(name):
    torch.manual_seed(0)
    model = create_model(name, n_devices=3, **SMALL.get(name, {}))
    x = torch.randn(3, 12, 1000)
    logits, aux = model.forward_aux(x)
    n_out = len(SUPERCLASSES) if model.multilabel else 1
    assert logits.shape == (3, n_out)
    assert aux["device"].shape == (3, 3) and aux["sex"].shape == (3, 1)
    loss = logits.square().mean() + aux["device"].square().mean() + aux["sex"].square().mean()
    loss.backward()
    assert torch.isfinite(logits).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert isinstance(model.cam_layer, torch.nn.Module) and isinstance(model.leadwise, bool)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_aux(x)[0])


@pytest.mark.parametrize("name", list_models())
def test_aux_heads_can_be_switched_off(name):
    model = create_model(name, aux=False, **SMALL.get(name, {}))
    assert not hasattr(model, "aux_heads")
    assert model.forward_aux(torch.randn(2, 12, 1000))[1] == {}


def test_leadwise_per_lead_features_are_addressable():
    torch.manual_seed(0)
    model = create_model("leadwise", width=0.25).eval()
    x = torch.randn(2, 12, 1000)
    with torch.no_grad():
        feats = model.encode(x)
        assert feats.shape == (2, 12, model.n_features)
        assert torch.allclose(model.classify_features(feats), model(x), atol=1e-6)
        # changing one lead changes only that lead's features (shared encoder, no cross-lead mixing)
        x2 = x.clone()
        x2[:, 4] = torch.randn(2, 1000)
        f2 = model.encode(x2)
    changed = (f2 - feats).abs().amax(dim=-1) > 1e-6
    assert changed[:, 4].all() and not changed[:, [i for i in range(12) if i != 4]].any()


def test_leadwise_cam_layer_output_is_lead_major():
    model = create_model("leadwise", width=0.25).eval()
    seen = {}
    model.cam_layer.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        model(torch.randn(2, 12, 1000))
    out = seen["out"]
    assert out.shape[0] == 2 * 12 and out.reshape(2, 12, *out.shape[1:]).shape[:2] == (2, 12)


def test_leadwise_default_size_and_full_resolution_variant():
    model = create_model("leadwise")
    assert 2e6 < n_parameters(model) < 3.5e6
    assert model.n_features == 256
    full = create_model("leadwise", full_resolution=True)
    assert n_parameters(full) == n_parameters(model) and full.stem_stride == 1 and model.stem_stride == 4
    x = torch.randn(1, 12, 1000)
    with torch.no_grad():
        t_default = model.stem(x.reshape(12, 1, 1000)).shape[-1]
        t_full = full.stem(x.reshape(12, 1, 1000)).shape[-1]
    assert t_default == 250 and t_full == 1000


def test_cnn1d_is_about_50k_parameters():
    assert 30_000 < n_parameters(create_model("cnn1d")) < 70_000


def test_width_scales_parameters():
    assert n_parameters(create_model("leadwise", width=0.5)) < n_parameters(create_model("leadwise"))
