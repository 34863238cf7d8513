"""The one registry style: register, look up, build; an unknown name lists the valid ones."""

from __future__ import annotations

import pytest

from xand.errors import UnknownNameError
from xand.registry import Registry


def test_register_get_create_and_mapping_behaviour():
    reg: Registry = Registry("widget", default="b")
    reg.register("a", dict)

    @reg.register("b")
    def make_b(x=1):
        return {"b": x}

    assert reg.names() == ["b", "a"]  # the default first, then registration order
    assert "a" in reg and "c" not in reg and len(reg) == 2 and list(reg) == ["b", "a"]
    assert reg["b"] is make_b and reg.get("a") is dict
    assert reg.create("b", x=3) == {"b": 3}
    assert reg.get("c", None) is None  # the mapping contract when a default is passed
    with pytest.raises(UnknownNameError) as exc:
        reg.create("c")
    assert "unknown widget 'c'" in str(exc.value) and "a, b" in str(exc.value)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", list)  # two implementations must not shadow each other silently
    reg["a"] = list  # deliberate replacement (tests, plug-ins)
    assert reg["a"] is list
    del reg["a"]
    assert reg.names() == ["b"]


def _registries():
    from xand.data.upload import UPLOAD_FORMATS
    from xand.delineation.methods import DELINEATORS
    from xand.explain.attribution import ATTRIBUTION_METHODS, BASELINES
    from xand.explain.removal import REMOVALS
    from xand.models.networks import MODELS
    from xand.cli.bench import BENCHES
    from xand.training.losses import LOSSES

    return {"model": MODELS, "attribution method": ATTRIBUTION_METHODS, "IG baseline": BASELINES,
            "removal": REMOVALS, "loss": LOSSES, "upload format": UPLOAD_FORMATS, "delineator": DELINEATORS,
            "benchmark": BENCHES}


@pytest.mark.parametrize("kind", list(_registries()))
def test_every_registry_names_the_valid_entries_on_an_unknown_name(kind):
    reg = _registries()[kind]
    assert isinstance(reg, Registry) and reg.kind == kind and len(reg) >= 2
    assert reg.default is None or reg.names()[0] == reg.default  # benchmarks have no default
    with pytest.raises(UnknownNameError) as exc:
        reg.get("no-such-thing")
    assert all(name in str(exc.value) for name in reg.names())
