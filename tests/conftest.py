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


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL for the store tests: the server named by ``XAND_TEST_POSTGRES_URL`` (a URL whose
    user may create databases), else one started by ``pgserver`` in a temporary folder; skipped cleanly
    when neither is available. Yields ``new_database() -> SQLAlchemy URL`` of a fresh, empty database."""
    import os
    import uuid

    import sqlalchemy as sa

    pytest.importorskip("psycopg", reason="psycopg[binary] is needed for the PostgreSQL store")
    given = os.environ.get("XAND_TEST_POSTGRES_URL")
    server = None
    if given:
        admin = sa.engine.make_url(given).set(drivername="postgresql+psycopg")
    else:
        pgserver = pytest.importorskip("pgserver", reason="pgserver (or XAND_TEST_POSTGRES_URL) is needed")
        try:
            server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
        except Exception as exc:  # noqa: BLE001 - e.g. initdb refused on this machine: skip, say why
            pytest.skip(f"pgserver could not start PostgreSQL here ({type(exc).__name__}: {exc})")
        admin = sa.engine.make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")

    def new_database() -> str:
        name = f"xand_test_{uuid.uuid4().hex[:12]}"
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        return admin.set(database=name).render_as_string(hide_password=False)

    yield new_database
    engine.dispose()
    if server is not None:
        server.cleanup()
