"""Reviewers' verdicts on model explanations, kept in a real database so that none is lost.

A verdict is one reviewer's judgement of one head on one ECG: does the reviewer agree with the model's
prediction, is the attribution clinically plausible, which region would the reviewer point to (leads and
a time span, optional), and a free-text note. Context (the model run and attribution method the reviewer
looked at) is stored with it.

Storage is SQLAlchemy 2: by default an SQLite file ``<data_dir>/reviews.sqlite`` in WAL mode (readers
never block the writer; writers queue on a busy timeout), or any SQLAlchemy URL, e.g.
``postgresql+psycopg://user@host/xand`` for a team. Verdicts are append-only: every save inserts a new
revision of its key ``(dataset, ecg_id, head, reviewer)``; the current verdict is the latest revision and
the older ones stay queryable (:meth:`ReviewStore.history`). A unique constraint on
``(key, revision)`` makes two simultaneous saves of one key either serialise or retry, never overwrite.

The schema is versioned: table ``schema_version`` records each applied migration; :data:`MIGRATIONS` is
the ordered list of migration functions (``MIGRATIONS[i]`` takes a database from version ``i`` to
``i + 1``). Opening a database written by a newer xand raises :class:`SchemaVersionError`.

Inter-reviewer agreement is Cohen's kappa (``xand.reviews.agreement``). The verdict itself is
``xand.reviews.verdict``, the schema ``xand.reviews.schema``, the CSV export ``xand.reviews.export``; this
module re-exports their public names, so ``xand.reviews.store`` is the one import of the store's API.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from xand.reviews.agreement import (  # noqa: F401 - the store's API
    Agreement,
    agreement_table,
    cohen_kappa,
    progress_table,
)
from xand.reviews.export import FORMULA_PREFIXES, csv_safe, to_csv  # noqa: F401
from xand.reviews.schema import (  # noqa: F401
    MIGRATIONS,
    SCHEMA_VERSION,
    SCHEMA_VERSION_TABLE,
    VERDICTS,
    SchemaVersionError,
)
from xand.reviews.verdict import (  # noqa: F401
    AGREEMENT_FIELDS,
    COLUMNS,
    MAX_NOTE_CHARS,
    MAX_REVIEWER_CHARS,
    PLAUSIBLE_VALUES,
    PREDICTION_VALUES,
    ReviewError,
    Verdict,
    canonical_reviewer,
    normalise_leads,
    verdict_from_row,
)

DEFAULT_FILE = "reviews.sqlite"


#: PostgreSQL advisory-lock key that serialises schema creation and migrations (any fixed 64-bit number).
_SCHEMA_LOCK_KEY = 0x58414E44


@dataclass
class ReviewStoreConfig:
    """Where and how verdicts are stored.

    Attributes
    ----------
    url : an SQLAlchemy URL (``sqlite:////abs/path/reviews.sqlite``,
        ``postgresql+psycopg://user:pw@host/db``); None uses ``data_dir/reviews.sqlite``
    data_dir : folder of the default SQLite file (the app's data folder); used when ``url`` is None
    busy_timeout_s : how long an SQLite writer waits for another writer's lock before failing
    retries : attempts of one save when a concurrent save of the same key won the race
    """

    url: str | None = None
    data_dir: str | None = None
    busy_timeout_s: float = 30.0
    retries: int = 20

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        if not self.data_dir:
            raise ReviewError("no review database configured (expected a URL or a data folder)")
        return default_url(self.data_dir)


def default_url(data_dir: str | Path) -> str:
    """The SQLite URL of ``<data_dir>/reviews.sqlite`` (absolute path)."""
    return f"sqlite:///{(Path(data_dir).expanduser().resolve() / DEFAULT_FILE).as_posix()}"


class ReviewStore:
    """Verdicts in a database: append-only saves, current verdicts, history, progress and agreement.

    Parameters
    ----------
    cfg : a :class:`ReviewStoreConfig`, an SQLAlchemy URL string, or None with ``data_dir``
    data_dir : the app's data folder (default SQLite file ``data_dir/reviews.sqlite``)

    Opening creates the schema on an empty database and applies pending migrations; a database with a
    newer or unknown schema raises :class:`SchemaVersionError` and is left untouched. Thread-safe and
    multi-process-safe (SQLite: WAL + ``BEGIN IMMEDIATE`` write transactions + busy timeout).
    """

    def __init__(self, cfg: ReviewStoreConfig | str | None = None, *, data_dir: str | Path | None = None):
        if cfg is None:
            cfg = ReviewStoreConfig(data_dir=None if data_dir is None else str(data_dir))
        elif isinstance(cfg, str):
            cfg = ReviewStoreConfig(url=cfg)
        self.cfg = cfg
        self.url = sa.engine.make_url(cfg.resolved_url())
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._make_engine()
        try:
            self.schema_version = self._init_schema()
        except Exception:
            self.engine.dispose()
            raise

    # -- engine

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, pool_pre_ping=True)
        db = self.url.database
        memory = not db or db == ":memory:" or db.startswith("file::memory:")
        if not memory:
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kw: dict = {"connect_args": {"timeout": self.cfg.busy_timeout_s, "check_same_thread": False}}
        if memory:  # one shared connection, or each connection would see its own empty database
            kw["poolclass"] = sa.pool.StaticPool
        engine = sa.create_engine(self.url, **kw)
        busy_ms = int(self.cfg.busy_timeout_s * 1000)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:
            # We emit BEGIN ourselves (below): pysqlite's implicit transactions start DEFERRED, and a
            # deferred reader that later writes fails at once with "database is locked" under WAL when
            # another process wrote in between, instead of waiting for the busy timeout.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")  # persistent in the file; readers never block
                cur.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe with WAL
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("xand_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def _write(self):
        """A write transaction: takes SQLite's write lock up front (queued by the busy timeout)."""
        with self.engine.connect().execution_options(xand_write=True) as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        """Close every pooled connection (the file can then be removed or moved)."""
        self.engine.dispose()

    def __enter__(self) -> "ReviewStore":
        return self

    def __exit__(self, *exc) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"ReviewStore({self.url.render_as_string(hide_password=True)!r}, schema v{self.schema_version})"

    # -- schema

    def _init_schema(self) -> int:
        for attempt in range(self.cfg.retries):
            try:
                with self._write() as conn:
                    if self.url.get_backend_name() == "postgresql":
                        # schema creation and migrations one process at a time (released at commit):
                        # concurrent CREATE TABLEs otherwise fail with DuplicateTable or a pg_type conflict
                        conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))  # a hung migration: retry, not wait forever
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                    return self._check_and_migrate(conn)
            except (IntegrityError, OperationalError, ProgrammingError):
                # another process created the schema at the same moment (PostgreSQL: no table locks here)
                if attempt == self.cfg.retries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _check_and_migrate(self, conn: Connection) -> int:
        names = set(sa.inspect(conn).get_table_names())
        where = self.url.render_as_string(hide_password=True)
        if "schema_version" not in names:
            if "verdicts" in names:
                raise SchemaVersionError(f"{where}: has a 'verdicts' table but no 'schema_version' table "
                                         "(expected a database written by xand.reviews.store, or an empty one)")
            SCHEMA_VERSION_TABLE.create(conn)
            version = 0
        else:
            version = conn.execute(sa.select(sa.func.max(SCHEMA_VERSION_TABLE.c.version))).scalar() or 0
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{where}: review database has schema version {version}, newer than this xand knows "
                f"(expected at most {SCHEMA_VERSION}); update xand, or point XAND_REVIEWS_URL elsewhere")
        for v in range(version, SCHEMA_VERSION):
            description, migrate = MIGRATIONS[v]
            migrate(conn)
            conn.execute(SCHEMA_VERSION_TABLE.insert().values(version=v + 1, applied_at=_utcnow_naive(),
                                                              description=description))
        return SCHEMA_VERSION

    # -- writing

    def save_verdict(self, verdict: Verdict) -> Verdict:
        """Store ``verdict`` as a new revision of its key (never overwrites); returns it as stored.

        The save time is the server's clock (UTC), never the caller's: a verdict is a record, and its
        order must not be set by a client. A revision is never dated before the one it follows (a clock
        stepped back gives it the previous revision's time).

        Parameters
        ----------
        verdict : the verdict (validated here: see :meth:`Verdict.validated`); its own ``saved_at`` and
            ``revision`` are ignored

        Returns
        -------
        The validated verdict with ``revision`` (1 for the first save of the key) and ``saved_at`` (UTC).
        """
        v = verdict.validated()
        v = replace(v, reviewer=self.reviewer_name(v.reviewer))
        key = (VERDICTS.c.dataset == v.dataset, VERDICTS.c.ecg_id == v.ecg_id, VERDICTS.c.head == v.head,
               VERDICTS.c.reviewer == v.reviewer)
        row = {
            "dataset": v.dataset, "ecg_id": v.ecg_id, "head": v.head, "reviewer": v.reviewer,
            "prediction": v.prediction, "plausible": v.plausible, "leads": ",".join(v.leads),
            "start_s": v.start_s, "end_s": v.end_s, "note": v.note, "run_id": v.run_id, "method": v.method,
            "probability": v.probability,
        }
        for attempt in range(self.cfg.retries):
            try:
                with self._write() as conn:
                    last, last_at = conn.execute(
                        sa.select(sa.func.max(VERDICTS.c.revision), sa.func.max(VERDICTS.c.saved_at)).where(*key)
                    ).one()
                    when = datetime.now(timezone.utc).replace(tzinfo=None)
                    if last_at is not None and pd.Timestamp(last_at).to_pydatetime() > when:
                        when = pd.Timestamp(last_at).to_pydatetime()
                    last = last or 0
                    conn.execute(VERDICTS.insert().values(**row, saved_at=when, revision=last + 1))
                return replace(v, revision=last + 1, saved_at=when.replace(tzinfo=timezone.utc))
            except IntegrityError:
                # a concurrent save of the same key took this revision (backends without a write lock)
                if attempt == self.cfg.retries - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
            except OperationalError as exc:
                if "locked" not in str(exc).lower() or attempt == self.cfg.retries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def reviewer_name(self, reviewer: str) -> str:
        """The name verdicts of ``reviewer`` are filed under: :func:`canonical_reviewer`, then the spelling
        under which this reviewer already saved, ignoring letter case ("dr alice" is the "Dr Alice" who
        saved first)."""
        reviewer = canonical_reviewer(reviewer)
        folded = reviewer.casefold()
        with self.engine.connect() as conn:
            names = conn.execute(sa.select(VERDICTS.c.reviewer, sa.func.min(VERDICTS.c.saved_at))
                                 .group_by(VERDICTS.c.reviewer)).all()
        same = sorted((at, name) for name, at in names if name.casefold() == folded and name != reviewer)
        return same[0][1] if same and not any(name == reviewer for name, _ in names) else reviewer

    # -- reading

    def history(self, dataset: str | None = None, ecg_id: int | None = None, head: str | None = None,
                reviewer: str | None = None) -> pd.DataFrame:
        """Every saved revision (oldest first per key), optionally of one dataset / record / head / reviewer.

        Returns
        -------
        DataFrame with :data:`COLUMNS` (``saved_at`` tz-aware UTC, ``leads`` comma-separated).
        """
        q = sa.select(*[VERDICTS.c[c] for c in COLUMNS])
        q = q.where(*_conditions(VERDICTS, dataset=dataset, ecg_id=ecg_id, head=head, reviewer=reviewer))
        q = q.order_by(VERDICTS.c.dataset, VERDICTS.c.ecg_id, VERDICTS.c.head, VERDICTS.c.reviewer,
                       VERDICTS.c.revision)
        return self._frame(q)

    def current_verdicts(self, dataset: str | Sequence[str] | None = None,
                         head: str | Sequence[str] | None = None,
                         reviewer: str | Sequence[str] | None = None,
                         ecg_id: int | Sequence[int] | None = None,
                         prediction: str | Sequence[str] | None = None,
                         plausible: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The latest revision of every key, filtered (a value or a list of accepted values per field).

        ``prediction`` / ``plausible`` filter the current verdicts (not older revisions). The ``revision``
        column is also the number of saves of that key.
        """
        latest = (sa.select(VERDICTS.c.dataset, VERDICTS.c.ecg_id, VERDICTS.c.head, VERDICTS.c.reviewer,
                            sa.func.max(VERDICTS.c.revision).label("revision"))
                  .where(*_conditions(VERDICTS, dataset=dataset, ecg_id=ecg_id, head=head, reviewer=reviewer))
                  .group_by(VERDICTS.c.dataset, VERDICTS.c.ecg_id, VERDICTS.c.head, VERDICTS.c.reviewer)
                  .subquery())
        on = sa.and_(*[VERDICTS.c[c] == latest.c[c] for c in ("dataset", "ecg_id", "head", "reviewer",
                                                              "revision")])
        q = (sa.select(*[VERDICTS.c[c] for c in COLUMNS]).select_from(VERDICTS.join(latest, on))
             .where(*_conditions(VERDICTS, prediction=prediction, plausible=plausible))
             .order_by(VERDICTS.c.dataset, VERDICTS.c.ecg_id, VERDICTS.c.head, VERDICTS.c.reviewer))
        return self._frame(q)

    def current(self, dataset: str, ecg_id: int, head: str, reviewer: str) -> Verdict | None:
        """The current verdict of one key, or None when the reviewer has not judged it yet."""
        df = self.current_verdicts(dataset=dataset, ecg_id=int(ecg_id), head=head,
                                   reviewer=" ".join(str(reviewer).split()))
        return None if df.empty else verdict_from_row(df.iloc[0])

    def datasets(self) -> list[str]:
        """Dataset names with at least one verdict."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(VERDICTS.c.dataset).distinct()).scalars())

    def reviewers(self, dataset: str | None = None) -> list[str]:
        """Reviewer names with at least one verdict (in ``dataset`` when given)."""
        q = sa.select(VERDICTS.c.reviewer).distinct().where(*_conditions(VERDICTS, dataset=dataset))
        with self.engine.connect() as conn:
            return sorted(conn.execute(q).scalars())

    def count(self) -> int:
        """Number of stored revisions (rows), all keys."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(VERDICTS)).scalar())

    def progress(self, dataset: str | None = None, **filters) -> pd.DataFrame:
        """Records reviewed per head and reviewer (current verdicts); see :func:`progress_table`."""
        return progress_table(self.current_verdicts(dataset=dataset, **filters))

    def agreement(self, dataset: str | None = None, fields: Sequence[str] = tuple(AGREEMENT_FIELDS),
                  **filters) -> pd.DataFrame:
        """Inter-reviewer agreement per head on current verdicts; see :func:`agreement_table`."""
        return agreement_table(self.current_verdicts(dataset=dataset, **filters), fields)

    def export_csv(self, dest: str | Path | io.TextIOBase | None = None, *, history: bool = False,
                   **filters) -> str | None:
        """Current verdicts (or the full history) as CSV: written to ``dest``, or returned as text."""
        df = self.history(**filters) if history else self.current_verdicts(**filters)
        return to_csv(df, dest)

    def _frame(self, q) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        df = pd.DataFrame([dict(r) for r in rows], columns=list(COLUMNS))
        df["ecg_id"] = df["ecg_id"].astype("int64")
        df["revision"] = df["revision"].astype("int64")
        for c in ("start_s", "end_s", "probability"):
            df[c] = pd.to_numeric(df[c]).astype("float64")
        df["saved_at"] = pd.to_datetime(df["saved_at"]).dt.tz_localize("UTC")
        df["note"] = df["note"].fillna("")
        df["leads"] = df["leads"].fillna("")
        return df


def _conditions(t: sa.Table, **filters) -> list:
    out = []
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, (str, int)):
            out.append(t.c[name] == value)
        else:
            out.append(t.c[name].in_(list(value)))
    return out


def _utcnow_naive() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _to_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ReviewError(f"save time {when.isoformat()} has no time zone (expected a timezone-aware datetime)")
    return when.astimezone(timezone.utc)
