"""The review store: round trip, append-only history, validation, schema versions, agreement on
hand-computed examples, and several processes writing to one SQLite file at once."""

from __future__ import annotations

import io
from dataclasses import replace
import sqlite3
from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from xand.reviews import store as reviews
from xand.errors import UnknownNameError, XandError
from xand.reviews.store import (
    ReviewError, ReviewStore, ReviewStoreConfig, SchemaVersionError, Verdict, agreement_table, cohen_kappa,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same store tests on the default SQLite file and on a real PostgreSQL (``postgres_server``)."""
    if request.param == "sqlite":
        s = ReviewStore(data_dir=tmp_path)
    else:
        s = ReviewStore(request.getfixturevalue("postgres_server")())
    yield s
    s.dispose()


def v(ecg_id=1, head="MI", reviewer="Ann", prediction="agree", plausible="yes", dataset="demo", **kw) -> Verdict:
    return Verdict(dataset, ecg_id, head, reviewer, prediction, plausible, **kw)


# ----------------------------------------------------------------------------------------- round trip

def test_default_file_is_wal_sqlite_in_data_dir(tmp_path):
    with ReviewStore(data_dir=tmp_path) as store:
        assert store.is_sqlite
    path = tmp_path / "reviews.sqlite"
    assert path.is_file()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == reviews.SCHEMA_VERSION
    assert ReviewStoreConfig(data_dir=str(tmp_path)).resolved_url() == f"sqlite:///{path.resolve()}"


def test_round_trip(store):
    saved = store.save_verdict(v(12, "STTC", "  Dr  Ann ", "disagree", "partly", leads=["v2", "II", "V2"],
                                 start_s=1.25, end_s=2.5, note=" ST elevation V2 ", run_id="tiny",
                                 method="ig", probability=0.83))
    assert saved.revision == 1 and saved.saved_at.tzinfo is not None
    assert saved.reviewer == "Dr Ann" and saved.leads == ("II", "V2") and saved.note == "ST elevation V2"
    got = store.current("demo", 12, "STTC", "Dr Ann")
    assert got == saved
    df = store.current_verdicts()
    assert list(df.columns) == list(reviews.COLUMNS) and len(df) == 1
    row = df.iloc[0]
    assert (row["ecg_id"], row["leads"], row["start_s"], row["end_s"]) == (12, "II,V2", 1.25, 2.5)
    assert str(row["saved_at"].tz) == "UTC"
    assert store.current("demo", 12, "MI", "Dr Ann") is None  # another head: not judged yet


def test_saved_at_is_the_servers_utc_time_never_the_callers(store):
    """The hardening issue's probe: ``save_verdict(saved_at=2001-01-01)`` stored revision 2 as older than 1."""
    before = datetime.now(timezone.utc)
    saved = store.save_verdict(v())
    after = datetime.now(timezone.utc)
    assert before <= saved.saved_at <= after and saved.saved_at.tzinfo == timezone.utc
    assert store.current_verdicts().iloc[0]["saved_at"] == pd.Timestamp(saved.saved_at)
    with pytest.raises(TypeError):
        store.save_verdict(v(), saved_at=datetime(2001, 1, 1, tzinfo=timezone.utc))
    forged = store.save_verdict(replace(v(note="again"), saved_at=datetime(2001, 1, 1, tzinfo=timezone.utc)))
    assert forged.saved_at >= saved.saved_at and forged.revision == 2  # the verdict's own time is ignored
    hist = store.history("demo", 1, "MI", "Ann")
    assert list(hist["revision"]) == [1, 2] and hist["saved_at"].is_monotonic_increasing


def test_a_clock_stepped_back_never_dates_a_revision_before_the_last(store, monkeypatch):
    first = store.save_verdict(v())

    class Past(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2001, 1, 1, tzinfo=tz)

    monkeypatch.setattr(reviews, "datetime", Past)
    second = store.save_verdict(v(note="later"))
    assert second.revision == 2 and second.saved_at >= first.saved_at


def test_edit_keeps_history(store):
    store.save_verdict(v(note="first"))
    store.save_verdict(v(prediction="disagree", note="second"))
    store.save_verdict(v(plausible="no", note="third"))
    store.save_verdict(v(reviewer="Bob", note="other reviewer"))
    hist = store.history("demo", 1, "MI", "Ann")
    assert list(hist["revision"]) == [1, 2, 3]
    assert list(hist["note"]) == ["first", "second", "third"]
    assert list(hist["prediction"]) == ["agree", "disagree", "agree"]
    cur = store.current_verdicts(reviewer="Ann")
    assert len(cur) == 1 and cur.iloc[0]["note"] == "third" and cur.iloc[0]["revision"] == 3
    assert store.count() == 4 and len(store.history()) == 4
    assert len(store.current_verdicts()) == 2


def test_filters_progress_and_csv(store):
    for i in range(5):
        store.save_verdict(v(i, "MI", "Ann", "agree" if i < 3 else "disagree", "yes"))
    for i in range(3):
        store.save_verdict(v(i, "CD", "Bob", "agree", "no"))
    store.save_verdict(v(0, "CD", "Bob", "disagree", "no"))  # an edit
    store.save_verdict(v(9, "MI", "Ann", dataset="ptbxl"))
    assert len(store.current_verdicts(dataset="demo")) == 8
    assert len(store.current_verdicts(head=["CD"], prediction="disagree")) == 1
    assert len(store.current_verdicts(reviewer=["Ann", "Bob"], plausible=["no"])) == 3
    assert list(store.current_verdicts(ecg_id=[0, 1], head="MI", dataset="demo")["ecg_id"]) == [0, 1]
    assert store.datasets() == ["demo", "ptbxl"] and store.reviewers("demo") == ["Ann", "Bob"]

    prog = store.progress(dataset="demo")
    assert list(prog["head"]) == ["MI", "CD"]  # HEADS order
    mi, cd = prog.iloc[0], prog.iloc[1]
    assert (mi["reviewer"], mi["records"], mi["agree"], mi["disagree"], mi["plausible_yes"]) == ("Ann", 5, 3, 2, 5)
    assert (cd["records"], cd["agree"], cd["disagree"], cd["plausible_no"], cd["edited"]) == (3, 2, 1, 3, 1)

    text = store.export_csv(dataset="demo")
    back = pd.read_csv(io.StringIO(text))
    assert len(back) == 8 and list(back.columns) == list(reviews.COLUMNS)
    assert pd.to_datetime(back["saved_at"]).dt.tz is not None
    out = store.export_csv(history=True)
    assert len(pd.read_csv(io.StringIO(out))) == 10


def test_in_memory_url():
    with ReviewStore("sqlite://") as s:
        s.save_verdict(v())
        s.save_verdict(v())
        assert s.count() == 2


# ----------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("bad, exc, words", [
    (dict(prediction="maybe"), UnknownNameError, "prediction verdict 'maybe'"),
    (dict(plausible="sure"), UnknownNameError, "plausibility verdict 'sure'"),
    (dict(head="NORM"), UnknownNameError, "unknown head 'NORM'"),
    (dict(leads=["II", "V7"]), UnknownNameError, "unknown lead 'V7'"),
    (dict(reviewer="   "), ReviewError, "reviewer name is empty"),
    (dict(reviewer="x" * 101), ReviewError, "at most 100"),
    (dict(dataset=""), ReviewError, "dataset name is empty"),
    (dict(ecg_id=-3), ReviewError, "non-negative integer"),
    (dict(ecg_id=2.5), ReviewError, "non-negative integer"),
    (dict(start_s=3.0, end_s=1.0), ReviewError, "not after its start"),
    (dict(start_s=2.0, end_s=2.0), ReviewError, "not after its start"),
    (dict(start_s=-1.0, end_s=1.0), ReviewError, "expected >= 0"),
    (dict(start_s=1.0), ReviewError, "only one end"),
    (dict(probability=1.5), ReviewError, "outside"),
])
def test_validation(store, bad, exc, words):
    with pytest.raises(exc, match=words) as info:
        store.save_verdict(v(**bad))
    assert isinstance(info.value, XandError)
    assert store.count() == 0  # nothing half-written


def test_leads_as_text():
    assert reviews.normalise_leads("avf, II,iii") == ("II", "III", "aVF")
    assert reviews.normalise_leads(None) == () and reviews.normalise_leads([]) == ()


# ------------------------------------------------------------------------------------- schema version

@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty database's URL: a fresh SQLite file, or a fresh database on a real PostgreSQL."""
    return reviews.default_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_server")()


def _sql(url: str, *statements: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            out = [c.execute(sa.text(q)) for q in statements]
            return [r.fetchall() if r.returns_rows else None for r in out]
    finally:
        engine.dispose()


def test_newer_schema_is_refused(store_url):
    ReviewStore(store_url).dispose()
    _sql(store_url, "INSERT INTO schema_version VALUES (99, '2030-01-01 00:00:00', 'from the future')")
    with pytest.raises(SchemaVersionError, match=r"schema version 99.*at most 1"):
        ReviewStore(store_url)


def test_foreign_verdicts_table_is_refused(store_url):
    _sql(store_url, "CREATE TABLE verdicts (x INTEGER)")
    with pytest.raises(SchemaVersionError, match="no 'schema_version' table"):
        ReviewStore(store_url)


def test_migrations_applied_in_order(store_url, monkeypatch):
    with ReviewStore(store_url) as s:
        s.save_verdict(v(note="before the migration"))

    def add_column(conn):
        conn.execute(sa.text("ALTER TABLE verdicts ADD COLUMN confidence INTEGER"))

    monkeypatch.setattr(reviews, "MIGRATIONS", [*reviews.MIGRATIONS, ("confidence column", add_column)])
    monkeypatch.setattr(reviews, "SCHEMA_VERSION", 2)
    with ReviewStore(store_url) as s:
        assert s.schema_version == 2
        assert s.current_verdicts().iloc[0]["note"] == "before the migration"
    with ReviewStore(store_url) as s:  # reopening applies nothing twice
        assert s.schema_version == 2
    (rows,) = _sql(store_url, "SELECT version, description FROM schema_version ORDER BY version")
    engine = sa.create_engine(store_url)
    try:
        cols = [c["name"] for c in sa.inspect(engine).get_columns("verdicts")]
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "append-only verdicts table"), (2, "confidence column")]
    assert "confidence" in cols


# ------------------------------------------------------------------------------------------ agreement

def _frame(rows) -> pd.DataFrame:
    """Current-verdict rows ``(reviewer, head, ecg_id, prediction, plausible)``."""
    return pd.DataFrame([dict(dataset="demo", reviewer=r, head=h, ecg_id=i, prediction=p, plausible=q)
                         for r, h, i, p, q in rows])


def test_cohen_kappa_hand_computed():
    # 2x2 table: both agree 4, A agree/B disagree 2, A disagree/B agree 1, both disagree 3 (n=10)
    a = ["agree"] * 6 + ["disagree"] * 4
    b = ["agree"] * 4 + ["disagree"] * 2 + ["agree"] + ["disagree"] * 3
    # p_o = 7/10; p_e = 0.6*0.5 + 0.4*0.5 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    kappa, reason = cohen_kappa(a, b, ("agree", "disagree"))
    assert kappa == pytest.approx(0.4) and reason is None
    # 3 categories, 6 items, 5 identical: p_o = 5/6; marginals A (yes, partly, no) = (2, 2, 2)/6,
    # B = (3, 1, 2)/6; p_e = (2*3 + 2*1 + 2*2)/36 = 1/3; kappa = (5/6 - 1/3)/(1 - 1/3) = 0.75
    a3 = ["yes", "yes", "partly", "partly", "no", "no"]
    b3 = ["yes", "yes", "yes", "partly", "no", "no"]
    kappa, _ = cohen_kappa(a3, b3, reviews.PLAUSIBLE_VALUES)
    assert kappa == pytest.approx(0.75)


def test_cohen_kappa_undefined():
    assert cohen_kappa(["yes"], ["no"], reviews.PLAUSIBLE_VALUES) == (
        None, "1 shared record (Cohen's kappa needs at least 2)")
    kappa, reason = cohen_kappa(["yes"] * 3, ["yes"] * 3, reviews.PLAUSIBLE_VALUES)
    assert kappa is None and "chance agreement is 1" in reason


def test_agreement_table_per_head_and_pair():
    a = ["agree"] * 6 + ["disagree"] * 4
    b = ["agree"] * 4 + ["disagree"] * 2 + ["agree"] + ["disagree"] * 3
    rows = [("Ann", "MI", i, p, "yes") for i, p in enumerate(a)]
    rows += [("Bob", "MI", i, p, "yes") for i, p in enumerate(b)]
    rows += [("Bob", "MI", 99, "agree", "no")]  # only Bob: not shared, not counted
    rows += [("Cid", "MI", 0, "agree", "yes")]  # shares one record with each
    rows += [("Ann", "CD", 0, "agree", "yes"), ("Bob", "CD", 1, "agree", "yes")]  # nothing shared
    tab = agreement_table(_frame(rows))
    mi = tab[(tab["head"] == "MI") & (tab["reviewer_a"] == "Ann") & (tab["reviewer_b"] == "Bob")]
    pred = mi[mi["field"] == "prediction"].iloc[0]
    assert pred["n"] == 10 and pred["percent"] == pytest.approx(70.0) and pred["kappa"] == pytest.approx(0.4)
    plaus = mi[mi["field"] == "plausible"].iloc[0]  # everyone said yes: 100 % but kappa undefined
    assert plaus["percent"] == pytest.approx(100.0) and pd.isna(plaus["kappa"])
    assert "chance agreement is 1" in plaus["reason"]
    cid = tab[(tab["reviewer_b"] == "Cid")]
    assert set(cid["n"]) == {1} and cid["kappa"].isna().all() and cid["percent"].isna().all()
    assert cid["reason"].str.contains("1 shared record").all()
    cd = tab[tab["head"] == "CD"]
    assert len(cd) == 2 and set(cd["n"]) == {0} and cd["reason"].str.contains("no records").all()
    assert list(dict.fromkeys(tab["head"])) == ["MI", "CD"]


def test_store_agreement_uses_current_verdicts(store):
    for i in range(4):
        store.save_verdict(v(i, reviewer="Ann", prediction="agree"))
        store.save_verdict(v(i, reviewer="Bob", prediction="disagree"))
    for i in range(2):  # Bob changes his mind on two records: the current verdicts count
        store.save_verdict(v(i, reviewer="Bob", prediction="agree"))
    tab = store.agreement(fields=["prediction"])
    row = tab.iloc[0]
    assert (row["n"], row["percent"]) == (4, 50.0)
    # A all "agree" (p=1), B half/half: p_e = 0.5, p_o = 0.5 -> kappa 0
    assert row["kappa"] == pytest.approx(0.0)
    with pytest.raises(UnknownNameError):
        store.agreement(fields=["note"])
    assert store.agreement(dataset="none").empty and store.progress(dataset="none").empty


# ----------------------------------------------------------------------------------- concurrent writers

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_writers_lose_nothing(tmp_path, backend, request):
    """4 reviewer processes open the store at the same moment (a fresh file / database: they also race to
    create the schema) and save 40 verdicts each, half on five keys every process writes (a race for the
    next revision): nothing is lost, every contended key's revisions are 1..k. The same code at scale is
    ``python -m xand bench reviews``."""
    from xand.bench.reviews import run_writers

    url = reviews.default_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_server")()
    r = run_writers(url, 4, 40)
    assert r["failed_writers"] == 0 and r["lost"] == 0 and r["stored"] == 160 and r["revisions_contiguous"]
    with ReviewStore(url) as store:
        hist = store.history()
        assert set(hist["note"]) == {f"p{p} i{i}" for p in range(4) for i in range(40)}
        assert len(store.current_verdicts(reviewer="Shared")) == 5
        assert len(store.current_verdicts(head="CD")) == 4 * 40 // 2


def test_csv_export_never_hands_a_spreadsheet_a_formula(store):
    """The hardening issue's probe: a note starting with ``=HYPERLINK(`` was exported verbatim."""
    store.save_verdict(v(1, note='=HYPERLINK("http://x.example","sign in")'))
    store.save_verdict(v(2, note="+1 looks fine", reviewer="@admin"))
    store.save_verdict(v(3, note="ST elevation in V2-V4 - 2 mm"))
    text = reviews.to_csv(store.current_verdicts())
    back = pd.read_csv(io.StringIO(text))
    notes = dict(zip(back["ecg_id"], back["note"]))
    assert notes[1].startswith("'=HYPERLINK(") and notes[2] == "'+1 looks fine"
    assert notes[3] == "ST elevation in V2-V4 - 2 mm"  # text inside a cell is untouched
    assert "'@admin" in set(back["reviewer"])
    assert not any(str(c).startswith(reviews.FORMULA_PREFIXES) for c in back.select_dtypes(object).to_numpy().ravel())


def test_one_reviewer_is_one_name_whatever_the_case_width_or_spacing(store):
    first = store.save_verdict(v(1, reviewer="Dr Alice"))
    again = store.save_verdict(v(1, reviewer="dr  alice"))  # typed in lower case, two spaces
    wide = store.save_verdict(v(1, reviewer="Ｄｒ Ａｌｉｃｅ"))  # full-width forms (NFKC)
    assert first.reviewer == again.reviewer == wide.reviewer == "Dr Alice"
    assert [r.revision for r in (first, again, wide)] == [1, 2, 3]
    assert list(store.current_verdicts()["reviewer"]) == ["Dr Alice"]
    assert store.reviewer_name("DR ALICE") == "Dr Alice" and store.reviewer_name("Bob") == "Bob"


@pytest.mark.parametrize("name, words", [
    ("Dr \u0410lice", "mixes Cyrillic and Latin"),  # a Cyrillic capital A
    ("Dr Alic\u0435", "mixes Cyrillic and Latin"),  # a Cyrillic small ie
    ("Dr\u200bAlice", "invisible"),  # a zero-width space
])
def test_a_look_alike_name_is_refused(store, name, words):
    with pytest.raises(ReviewError, match=words):
        store.save_verdict(v(1, reviewer=name))
    assert store.count() == 0
    store.save_verdict(v(1, reviewer="Анна Иванова"))  # one script, Cyrillic: a name like any other
    assert store.count() == 1
