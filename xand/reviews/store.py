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

Inter-reviewer agreement is Cohen's kappa (Cohen 1960) per head and pair of reviewers on the records
both reviewed, next to the raw percent agreement and the number of shared records.

References
----------
Cohen J. A coefficient of agreement for nominal scales. Educational and Psychological Measurement
20(1):37-46, 1960. doi:10.1177/001316446002000104
"""

from __future__ import annotations

import io
import itertools
import math
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from xand.constants import HEADS, LEADS
from xand.errors import UnknownNameError, XandError

#: Verdict vocabularies (stored as these strings).
PREDICTION_VALUES: tuple[str, ...] = ("agree", "disagree")
PLAUSIBLE_VALUES: tuple[str, ...] = ("yes", "partly", "no")
#: Verdict fields on which agreement is computed, with their categories.
AGREEMENT_FIELDS: dict[str, tuple[str, ...]] = {"prediction": PREDICTION_VALUES, "plausible": PLAUSIBLE_VALUES}

DEFAULT_FILE = "reviews.sqlite"
#: PostgreSQL advisory-lock key that serialises schema creation and migrations (any fixed 64-bit number).
_SCHEMA_LOCK_KEY = 0x58414E44
MAX_REVIEWER_CHARS = 100
MAX_NOTE_CHARS = 10_000

#: Columns of the verdict tables returned by the store, in this order.
COLUMNS: tuple[str, ...] = (
    "dataset", "ecg_id", "head", "reviewer", "revision", "prediction", "plausible", "leads", "start_s",
    "end_s", "note", "run_id", "method", "probability", "saved_at",
)


class ReviewError(XandError, ValueError):
    """A verdict is invalid (empty reviewer, bad time span, ...) or the review database cannot be used."""


class SchemaVersionError(ReviewError):
    """The review database has a schema this version of xand does not know (or is not a review database)."""


# ------------------------------------------------------------------------------------------- verdict

@dataclass(frozen=True)
class Verdict:
    """One reviewer's verdict on one head of one ECG.

    Attributes
    ----------
    dataset : the dataset's name (e.g. ``"ptbxl"``, ``"demo"``); ``ecg_id`` is unique within it
    ecg_id : the record's id (PTB-XL ``ecg_id``)
    head : pathology head, one of :data:`xand.constants.HEADS`
    reviewer : the reviewer's name (non-empty, surrounding spaces removed)
    prediction : ``"agree"`` or ``"disagree"`` with the model's decision
    plausible : is the attribution clinically plausible: ``"yes"``, ``"partly"`` or ``"no"``
    leads : leads of the region the reviewer would point to (names of :data:`xand.constants.LEADS`,
        any case; stored in storage order), empty for none
    start_s, end_s : time span of that region in seconds from the record's start (both or neither;
        ``end_s > start_s >= 0``)
    note : free text
    run_id, method, probability : context: the model run, attribution method and probability shown
    revision, saved_at : set by the store (1 for the first save of a key; UTC time of the save)
    """

    dataset: str
    ecg_id: int
    head: str
    reviewer: str
    prediction: str
    plausible: str
    leads: tuple[str, ...] = ()
    start_s: float | None = None
    end_s: float | None = None
    note: str = ""
    run_id: str | None = None
    method: str | None = None
    probability: float | None = None
    revision: int | None = None
    saved_at: datetime | None = None

    def validated(self) -> "Verdict":
        """This verdict with normalised fields; raises :class:`ReviewError` / ``UnknownNameError``."""
        dataset = str(self.dataset or "").strip()
        if not dataset:
            raise ReviewError("the dataset name is empty (expected e.g. 'ptbxl' or 'demo')")
        try:
            ecg_id = int(self.ecg_id)
            ok = not isinstance(self.ecg_id, bool) and ecg_id >= 0 and float(self.ecg_id) == ecg_id
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ReviewError(f"ecg_id {self.ecg_id!r} is not a record id (expected a non-negative integer)")
        if self.head not in HEADS:
            raise UnknownNameError("head", str(self.head), HEADS)
        reviewer = canonical_reviewer(self.reviewer)
        if not reviewer:
            raise ReviewError("the reviewer name is empty (expected the name of the person reviewing)")
        if len(reviewer) > MAX_REVIEWER_CHARS:
            raise ReviewError(f"the reviewer name has {len(reviewer)} characters "
                              f"(expected at most {MAX_REVIEWER_CHARS})")
        if self.prediction not in PREDICTION_VALUES:
            raise UnknownNameError("prediction verdict", str(self.prediction), PREDICTION_VALUES)
        if self.plausible not in PLAUSIBLE_VALUES:
            raise UnknownNameError("plausibility verdict", str(self.plausible), PLAUSIBLE_VALUES)
        leads = normalise_leads(self.leads)
        start, end = _span(self.start_s, self.end_s)
        note = str(self.note or "").strip()
        if len(note) > MAX_NOTE_CHARS:
            raise ReviewError(f"the note has {len(note)} characters (expected at most {MAX_NOTE_CHARS})")
        prob = None if self.probability is None else float(self.probability)
        if prob is not None and not (0.0 <= prob <= 1.0):
            raise ReviewError(f"probability {prob} is outside [0, 1]")
        return replace(self, dataset=dataset, ecg_id=ecg_id, reviewer=reviewer, leads=leads, start_s=start,
                       end_s=end, note=note, probability=prob,
                       run_id=_opt_str(self.run_id), method=_opt_str(self.method))


def _scripts(text: str) -> set[str]:
    """The writing systems of the letters of ``text`` (LATIN, CYRILLIC, GREEK, ...)."""
    out = set()
    for ch in text:
        if ch.isalpha():
            try:
                out.add(unicodedata.name(ch).split()[0])
            except ValueError:  # an unnamed code point
                out.add("UNKNOWN")
    return out


def canonical_reviewer(name: object) -> str:
    """A reviewer's name as stored: Unicode NFKC (full-width and compatibility forms folded), whitespace
    collapsed. A name mixing Latin, Cyrillic or Greek letters is refused: "Dr Аlice" with a Cyrillic A
    looks like "Dr Alice" and would file verdicts under a look-alike (Unicode TR 39, mixed-script
    confusables). Letter case is settled by the store (the first spelling of a name is kept)."""
    text = " ".join(unicodedata.normalize("NFKC", str(name or "")).split())
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in text):
        raise ReviewError("the reviewer name holds control or invisible characters (expected a plain name)")
    mixed = _scripts(text) & {"LATIN", "CYRILLIC", "GREEK"}
    if len(mixed) > 1:
        raise ReviewError(f"the reviewer name mixes {' and '.join(sorted(s.title() for s in mixed))} letters "
                          "(a look-alike of another name?); expected one script")
    return text


def normalise_leads(leads: Iterable[str] | str | None) -> tuple[str, ...]:
    """Lead names (any case, a list or a comma-separated string) as canonical names in storage order."""
    if leads is None:
        return ()
    if isinstance(leads, str):
        leads = [p for p in leads.split(",")]
    by_lower = {lead.lower(): lead for lead in LEADS}
    chosen = set()
    for name in leads:
        name = str(name).strip()
        if not name:
            continue
        if name.lower() not in by_lower:
            raise UnknownNameError("lead", name, LEADS)
        chosen.add(by_lower[name.lower()])
    return tuple(lead for lead in LEADS if lead in chosen)


def _span(start, end) -> tuple[float | None, float | None]:
    if start is None and end is None:
        return None, None
    if start is None or end is None:
        raise ReviewError(f"time span has only one end (start={start}, end={end}); "
                          "expected both start and end in seconds, or neither")
    start, end = float(start), float(end)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ReviewError(f"time span {start}-{end} s is not finite")
    if start < 0:
        raise ReviewError(f"time span starts at {start} s (expected >= 0 s from the record's start)")
    if end <= start:
        raise ReviewError(f"time span ends at {end} s, not after its start {start} s "
                          "(expected end > start)")
    return start, end


def _opt_str(v) -> str | None:
    v = None if v is None else str(v).strip()
    return v or None


# -------------------------------------------------------------------------------- schema, migrations

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


# ---------------------------------------------------------------------------------------- the store

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


def verdict_from_row(row: pd.Series | dict) -> Verdict:
    """A :class:`Verdict` from one row of :meth:`ReviewStore.current_verdicts` / ``history``."""
    r = dict(row)

    def opt(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    saved = r.get("saved_at")
    return Verdict(
        dataset=r["dataset"], ecg_id=int(r["ecg_id"]), head=r["head"], reviewer=r["reviewer"],
        prediction=r["prediction"], plausible=r["plausible"],
        leads=tuple(p for p in str(r.get("leads") or "").split(",") if p),
        start_s=opt(r.get("start_s")), end_s=opt(r.get("end_s")), note=r.get("note") or "",
        run_id=opt(r.get("run_id")), method=opt(r.get("method")), probability=opt(r.get("probability")),
        revision=int(r["revision"]), saved_at=None if saved is None else pd.Timestamp(saved).to_pydatetime(),
    )


#: Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(v):
    """``v`` unchanged, except a text that a spreadsheet would run as a formula (``=HYPERLINK(...)``,
    ``+1``, ``@SUM``, ...), which gets a leading apostrophe so it is shown as the text it is."""
    if isinstance(v, str) and v.startswith(FORMULA_PREFIXES):
        return "'" + v
    return v


def to_csv(df: pd.DataFrame, dest: str | Path | io.TextIOBase | None = None) -> str | None:
    """``df`` as CSV (ISO 8601 UTC times); to ``dest`` when given, else returned as text."""
    out = df.copy()
    if "saved_at" in out:
        out["saved_at"] = out["saved_at"].map(lambda t: t.isoformat() if pd.notna(t) else "")
    for col in out.columns:  # free text (notes, names) must not become a formula in a spreadsheet
        if out[col].dtype == object:
            out[col] = out[col].map(csv_safe)
    if dest is None:
        return out.to_csv(index=False)
    out.to_csv(dest, index=False)
    return None


# ------------------------------------------------------------------------------- progress, agreement

def progress_table(current: pd.DataFrame) -> pd.DataFrame:
    """Records reviewed per head and reviewer.

    Parameters
    ----------
    current : current verdicts (:meth:`ReviewStore.current_verdicts`)

    Returns
    -------
    One row per (head, reviewer): ``records`` (distinct records judged), ``agree``, ``disagree``,
    ``plausible_yes``, ``plausible_partly``, ``plausible_no``, ``edited`` (keys saved more than once),
    ``last_saved`` (UTC). Heads in :data:`HEADS` order, reviewers alphabetical.
    """
    cols = ["head", "reviewer", "records", *PREDICTION_VALUES, *[f"plausible_{v}" for v in PLAUSIBLE_VALUES],
            "edited", "last_saved"]
    if current.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (head, reviewer), g in current.groupby(["head", "reviewer"], sort=False):
        row = {"head": head, "reviewer": reviewer, "records": g[["dataset", "ecg_id"]].drop_duplicates().shape[0]}
        row.update({v: int((g["prediction"] == v).sum()) for v in PREDICTION_VALUES})
        row.update({f"plausible_{v}": int((g["plausible"] == v).sum()) for v in PLAUSIBLE_VALUES})
        row["edited"] = int((g["revision"] > 1).sum())
        row["last_saved"] = g["saved_at"].max()
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    order = {h: i for i, h in enumerate(HEADS)}
    return (out.assign(_h=out["head"].map(order)).sort_values(["_h", "reviewer"]).drop(columns="_h")
            .reset_index(drop=True))


@dataclass
class Agreement:
    """Agreement of two reviewers on one head and one verdict field.

    ``kappa`` is Cohen's kappa (Cohen 1960), ``percent`` the raw share of identical verdicts (0-100), both
    on the ``n`` records both reviewed; None with ``reason`` when undefined.
    """

    head: str
    field: str
    reviewer_a: str
    reviewer_b: str
    n: int
    percent: float | None
    kappa: float | None
    reason: str | None = None


def cohen_kappa(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> tuple[float | None, str | None]:
    """Cohen's kappa of two raters' labels of the same items: ``(kappa, None)`` or ``(None, reason)``.

    kappa = (p_o - p_e) / (1 - p_e), p_o observed agreement, p_e agreement expected by chance from each
    rater's marginal frequencies (Cohen 1960; computed by ``sklearn.metrics.cohen_kappa_score``).
    Undefined with fewer than 2 items, or when p_e = 1 (both raters used one and the same category for
    every item, so agreement beyond chance cannot be measured).
    """
    n = len(a)
    if n != len(b):
        raise ReviewError(f"two raters with {n} and {len(b)} labels (expected the same items)")
    if n < 2:
        return None, f"{n} shared record{'s' if n != 1 else ''} (Cohen's kappa needs at least 2)"
    pa = pd.Series(list(a)).value_counts(normalize=True)
    pb = pd.Series(list(b)).value_counts(normalize=True)
    p_e = float(sum(pa.get(c, 0.0) * pb.get(c, 0.0) for c in categories))
    if p_e >= 1.0 - 1e-12:
        return None, f"both reviewers answered '{a[0]}' for all {n} shared records (chance agreement is 1)"
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(list(a), list(b), labels=list(categories))), None


def agreement_table(current: pd.DataFrame, fields: Sequence[str] = tuple(AGREEMENT_FIELDS)) -> pd.DataFrame:
    """Inter-reviewer agreement per head: every pair of reviewers, on the records both reviewed.

    Parameters
    ----------
    current : current verdicts (:meth:`ReviewStore.current_verdicts`); a record is ``(dataset, ecg_id)``
    fields : verdict fields to compare (keys of :data:`AGREEMENT_FIELDS`)

    Returns
    -------
    One row per (head, field, reviewer pair) with columns of :class:`Agreement`: ``n`` shared records,
    ``percent`` raw agreement (0-100), ``kappa`` Cohen's kappa (Cohen 1960), ``reason`` when undefined
    (fewer than 2 shared records, or a single category used throughout).
    """
    cols = list(Agreement.__dataclass_fields__)
    for f in fields:
        if f not in AGREEMENT_FIELDS:
            raise UnknownNameError("agreement field", f, tuple(AGREEMENT_FIELDS))
    if current.empty:
        return pd.DataFrame(columns=cols)
    rows: list[Agreement] = []
    heads = [h for h in HEADS if h in set(current["head"])]
    for head in heads:
        g = current[current["head"] == head]
        by_reviewer = {r: d.set_index(["dataset", "ecg_id"]) for r, d in g.groupby("reviewer")}
        for ra, rb in itertools.combinations(sorted(by_reviewer), 2):
            da, db = by_reviewer[ra], by_reviewer[rb]
            shared = da.index.intersection(db.index).sort_values()
            for f in fields:
                a = da.loc[shared, f].tolist()
                b = db.loc[shared, f].tolist()
                n = len(shared)
                if n < 2:
                    reason = (f"no records reviewed by both" if n == 0
                              else "1 shared record (agreement needs at least 2)")
                    rows.append(Agreement(head, f, ra, rb, n, None, None, reason))
                    continue
                pct = 100.0 * sum(x == y for x, y in zip(a, b)) / n
                kappa, reason = cohen_kappa(a, b, AGREEMENT_FIELDS[f])
                rows.append(Agreement(head, f, ra, rb, n, pct, kappa, reason))
    return pd.DataFrame([asdict(r) for r in rows], columns=cols)
