"""``python -m xand bench reviews``: many reviewers saving at once, on SQLite and on PostgreSQL.

``--n`` writer processes (default 16) each save ``--saves`` verdicts (default 500), half of them on five
keys every writer also writes (same record, head and reviewer: a race for the next revision). Reported
per backend: rows expected / stored (lost = the difference), whether every contended key's revisions are
1..k without a gap or a duplicate, wall time and saves per second. PostgreSQL is the server named by
``--url`` or, when ``pgserver`` is installed, one started in a temporary folder.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import types
from contextlib import contextmanager
import time
from pathlib import Path
from typing import Any


def _writer(url: str, proc: int, n_saves: int, barrier) -> None:
    from xand.reviews.store import ReviewStore, Verdict

    barrier.wait()
    store = ReviewStore(url)
    for i in range(n_saves):
        if i % 2:
            v = Verdict("bench", 1000 + i % 5, "MI", "Shared", "agree", "yes", note=f"p{proc} i{i}")
        else:
            v = Verdict("bench", i, "CD", f"R{proc}", "agree", "yes", note=f"p{proc} i{i}")
        store.save_verdict(v)
    store.dispose()


@contextmanager
def _plain_main():
    """Start spawned children without re-running the parent's ``__main__`` (spawn re-imports it by path:
    inside a Streamlit AppTest that is ``app.py``, which would start the app in every writer)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def run_writers(url: str, n_writers: int, n_saves: int) -> dict[str, Any]:
    """Start the writers on ``url`` (an empty database), wait, and check what was stored."""
    from xand.reviews.store import ReviewStore

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_writers)
    procs = [ctx.Process(target=_writer, args=(url, p, n_saves, barrier)) for p in range(n_writers)]
    t0 = time.perf_counter()
    with _plain_main():
        for p in procs:
            p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    with ReviewStore(url) as store:
        hist = store.history()
    shared = hist[hist["reviewer"] == "Shared"]
    contiguous = all(sorted(g["revision"]) == list(range(1, len(g) + 1)) for _, g in shared.groupby("ecg_id"))
    expected = n_writers * n_saves
    return {"writers": n_writers, "saves_each": n_saves, "expected": expected, "stored": int(len(hist)),
            "lost": expected - int(len(hist)), "revisions_contiguous": bool(contiguous),
            "failed_writers": sum(p.exitcode != 0 for p in procs), "seconds": seconds,
            "saves_per_s": expected / seconds if seconds else None}


def _postgres(url: str | None, tmp: Path):
    if url:
        return url, None
    try:
        import pgserver
    except ImportError:
        return None, None
    import sqlalchemy as sa

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    admin = sa.engine.make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text('CREATE DATABASE "xand_bench"'))
    engine.dispose()
    return admin.set(database="xand_bench").render_as_string(hide_password=False), server


def benchmark(args: Any) -> dict:
    from xand.reviews.store import default_url

    n_writers = int(getattr(args, "n", None) or 16)
    n_saves = int(getattr(args, "saves", None) or 500)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="xand_bench_reviews_") as tmp:
        out["sqlite"] = run_writers(default_url(tmp), n_writers, n_saves)
        pg_url, server = _postgres(getattr(args, "url", None), Path(tmp))
        if pg_url is None:
            out["postgresql"] = {"skipped": "no --url and pgserver is not installed"}
        else:
            try:
                out["postgresql"] = run_writers(pg_url, n_writers, n_saves)
            finally:
                if server is not None:
                    server.cleanup()
    if getattr(args, "json", False):
        import json

        print(json.dumps(out, indent=2))
    else:
        for backend, r in out.items():
            if "skipped" in r:
                print(f"{backend:10} skipped: {r['skipped']}")
                continue
            print(f"{backend:10} {r['writers']} writers x {r['saves_each']} saves: stored {r['stored']} of "
                  f"{r['expected']} (lost {r['lost']}), revisions contiguous: {r['revisions_contiguous']}, "
                  f"failed writers {r['failed_writers']}, {r['seconds']:.1f} s ({r['saves_per_s']:.0f} saves/s)")
    return out
