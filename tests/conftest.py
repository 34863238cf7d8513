"""Shared fixtures: the real excerpts beside the project (skipped cleanly when absent) and a small seeded
synthetic PTB-XL set generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~10 s (still runs in CI)")
    config.addinivalue_line("markers", "browser: drives a real Chromium through Playwright")


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real excerpt {path} not present (it lives beside the project, not in it)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _shared("")


@pytest.fixture(scope="session")
def ptbxl_dir() -> Path:
    return _shared("ptbxl")


@pytest.fixture(scope="session")
def ludb_dir() -> Path:
    return _shared("ludb")


@pytest.fixture(scope="session")
def cinc_dir() -> Path:
    return _shared("cinc2021")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A 200-record synthetic PTB-XL set (seed 0), written once per session."""
    from xand.data.synth import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synth") / "ptbxl_synth"
    synthesize(out, SynthConfig(n_records=200, seed=0), progress=False)
    return out
