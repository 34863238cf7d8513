"""The versioned schema of the verdict store: ``schema_version`` records each applied migration;
``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from xand.reviews.verdict import MAX_REVIEWER_CHARS, ReviewError


class SchemaVersionError(ReviewError):
    """The review database has a schema this version of xand does not know (or is not a review database)."""


def _schema_version_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "schema_version", md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", sa.DateTime, nullable=False),  # naive UTC
        sa.Column("description", sa.String(200), nullable=False),
    )


def _verdicts_table_v1(md: sa.MetaData) -> sa.Table:
    """The ``verdicts`` table as schema version 1 created it (a snapshot: never edit; migrate instead)."""
    return sa.Table(
        "verdicts", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("ecg_id", sa.Integer, nullable=False),
        sa.Column("head", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.String(MAX_REVIEWER_CHARS), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("prediction", sa.String(16), nullable=False),
        sa.Column("plausible", sa.String(16), nullable=False),
        sa.Column("leads", sa.String(64), nullable=False, server_default=""),  # "II,III,aVF"
        sa.Column("start_s", sa.Float, nullable=True),
        sa.Column("end_s", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("run_id", sa.String(200), nullable=True),
        sa.Column("method", sa.String(64), nullable=True),
        sa.Column("probability", sa.Float, nullable=True),
        sa.Column("saved_at", sa.DateTime, nullable=False),  # naive UTC: same meaning on every backend
        # no two saves of one key can claim the same revision: the loser retries (no silent overwrite)
        sa.UniqueConstraint("dataset", "ecg_id", "head", "reviewer", "revision", name="uq_verdict_revision"),
        sa.Index("ix_verdicts_key", "dataset", "head", "reviewer", "ecg_id"),
    )


def _migrate_0_to_1(conn: Connection) -> None:
    """Version 1: the append-only ``verdicts`` table."""
    md = sa.MetaData()
    _verdicts_table_v1(md)
    md.create_all(conn)


#: Ordered migrations: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``. A new schema
#: version appends a function here (e.g. ``ALTER TABLE verdicts ADD COLUMN ...``), never edits one.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("append-only verdicts table", _migrate_0_to_1),
]


SCHEMA_VERSION = len(MIGRATIONS)


# The current schema, for queries (equal to what the migrations above produce).
_MD = sa.MetaData()


SCHEMA_VERSION_TABLE = _schema_version_table(_MD)


VERDICTS = _verdicts_table_v1(_MD)
