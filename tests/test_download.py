"""xand.data.download against a loopback HTTP server (Range support, injectable failures); no other traffic."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from xand.data.download import CHECKSUM_FILE, DATASETS, download, parse_checksums, select
from xand.errors import DataError, UnknownNameError


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.root`` with single-range ``bytes=N-[M]`` support.

    ``server.fail``: {path: HTTP status to always answer}; ``server.cut_once``: paths whose first
    full-body answer is cut after half the bytes (connection closed); ``server.ignore_range``: answer
    200 with the whole file to Range requests; ``server.log``: (path, Range).
    """

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        rel = self.path.lstrip("/")
        srv.log.append((rel, self.headers.get("Range")))
        if rel in srv.fail:
            self.send_error(srv.fail[rel])
            return
        f = srv.root / rel
        if not f.is_file():
            self.send_error(404)
            return
        data = f.read_bytes()
        rng = None if srv.ignore_range else self.headers.get("Range")
        start, end = 0, len(data) - 1
        if rng:
            a, _, b = rng.removeprefix("bytes=").partition("-")
            start = int(a)
            end = int(b) if b else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:end + 1]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if rel in srv.cut_once and not rng:
            srv.cut_once.discard(rel)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _write_tree(root: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {
        "ptbxl_database.csv": b"ecg_id,patient_id\n1,10\n2,11\n",
        "scp_statements.csv": b",description\nNORM,normal ECG\n",
        "records100/00000/00001_lr.dat": rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n",
        "records500/00000/00001_hr.dat": rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in files.items())
    (root / CHECKSUM_FILE).write_text(sums)
    return files


@pytest.fixture
def server(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # loopback must never go through a proxy
    root = tmp_path / "remote"
    root.mkdir()
    files = _write_tree(root)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.root, srv.fail, srv.cut_once, srv.log, srv.files = root, {}, set(), [], files
    srv.ignore_range = False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _dl(srv, out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("workers", 2)
    return download(out, base_url=srv.url, **kw)


def _assert_tree(out: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data, rel
    assert not list(out.rglob("*.part"))


def test_full_download_then_rerun_is_noop(server, tmp_path):
    out = tmp_path / "ptbxl"
    rep = _dl(server, out)
    _assert_tree(out, server.files)
    assert (rep.n_listed, rep.n_selected, rep.n_fetched, rep.n_present) == (5, 5, 5, 0)
    assert rep.bytes_fetched == sum(len(d) for d in server.files.values())
    assert (out / CHECKSUM_FILE).is_file()

    server.log.clear()
    rep2 = _dl(server, out)
    assert (rep2.n_fetched, rep2.n_present, rep2.bytes_fetched) == (0, 5, 0)
    assert [p for p, _ in server.log] == [CHECKSUM_FILE]  # only the list is fetched again


def test_only_glob_keeps_top_level_files(server, tmp_path):
    out = tmp_path / "ptbxl"
    rep = _dl(server, out, only="records100/*")
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE)
    assert got == ["ptbxl_database.csv", "records100/00000/00001_lr.dat", "records100/00000/00001_lr.hea",
                   "scp_statements.csv"]
    assert rep.n_selected == 4
    assert select(["a.csv", "records500/x.dat"], ["records100/*"], with_top_level=False) == []


def test_resume_from_half_written_part(server, tmp_path):
    out = tmp_path / "ptbxl"
    rel = "records500/00000/00001_hr.dat"
    data = server.files[rel]
    part = out / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    rep = _dl(server, out)
    _assert_tree(out, server.files)
    assert rep.n_resumed == 1
    assert (rel, f"bytes={len(data) // 2}-") in server.log
    # only the missing half of that file travelled
    assert rep.bytes_fetched == sum(len(d) for d in server.files.values()) - len(data) // 2


def test_connection_cut_midway_is_retried_and_resumed(server, tmp_path):
    rel = "records500/00000/00001_hr.dat"
    server.cut_once.add(rel)
    out = tmp_path / "ptbxl"
    rep = _dl(server, out, workers=1)
    _assert_tree(out, server.files)
    ranges = [r for p, r in server.log if p == rel]
    assert ranges[0] is None and ranges[1] == f"bytes={len(server.files[rel]) // 2}-"
    assert rep.n_resumed == 1


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.ignore_range = True
    out = tmp_path / "ptbxl"
    rel = "records500/00000/00001_hr.dat"
    (out / rel).parent.mkdir(parents=True)
    (out / (rel + ".part")).write_bytes(server.files[rel][:1000])
    rep = _dl(server, out)
    _assert_tree(out, server.files)  # the 200 body replaced the partial file instead of being appended
    assert rep.n_resumed == 0


def test_out_dir_that_is_a_file(server, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        _dl(server, f)


def test_complete_part_file_is_verified_and_renamed(server, tmp_path):
    out = tmp_path / "ptbxl"
    rel = "records100/00000/00001_lr.dat"
    (out / rel).parent.mkdir(parents=True)
    (out / (rel + ".part")).write_bytes(server.files[rel])  # server answers 416 to the Range
    _dl(server, out)
    _assert_tree(out, server.files)


def test_stale_part_restarts_from_scratch(server, tmp_path):
    out = tmp_path / "ptbxl"
    rel = "records100/00000/00001_lr.dat"
    (out / rel).parent.mkdir(parents=True)
    (out / (rel + ".part")).write_bytes(b"garbage" * 100)  # wrong prefix: resumed hash cannot match
    _dl(server, out)
    _assert_tree(out, server.files)


def test_corrupt_existing_file_is_replaced(server, tmp_path):
    out = tmp_path / "ptbxl"
    _dl(server, out)
    rel = "scp_statements.csv"
    (out / rel).write_bytes(b"tampered")
    rep = _dl(server, out)
    assert rep.n_fetched == 1
    _assert_tree(out, server.files)


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    rel = "records100/00000/00001_lr.hea"
    (server.root / rel).write_bytes(b"changed on the server\n")
    out = tmp_path / "ptbxl"
    with pytest.raises(DataError) as err:
        _dl(server, out)
    msg = str(err.value)
    assert "sha256" in msg and f"{server.url}{rel}" in msg and "1 of 5 files failed" in msg
    assert not (out / rel).exists() and not (out / (rel + ".part")).exists()
    # the other files were still fetched and verified
    other = "records100/00000/00001_lr.dat"
    assert (out / other).read_bytes() == server.files[other]


def test_http_404_names_the_url_without_retrying(server, tmp_path):
    rel = "records500/00000/00001_hr.dat"
    server.fail[rel] = 404
    with pytest.raises(DataError, match=r"HTTP 404 .*" + rel):
        _dl(server, tmp_path / "out", retries=3)
    assert sum(1 for p, _ in server.log if p == rel) == 1


def test_persistent_server_error_retries_then_fails(server, tmp_path):
    rel = "records500/00000/00001_hr.dat"
    server.fail[rel] = 503
    with pytest.raises(DataError, match=r"failed after 3 attempts.*HTTP 503") as err:
        _dl(server, tmp_path / "out", retries=2)
    assert f"{server.url}{rel}" in str(err.value)
    assert sum(1 for p, _ in server.log if p == rel) == 3


def test_missing_checksum_list_is_a_clear_error(server, tmp_path):
    server.fail[CHECKSUM_FILE] = 404
    with pytest.raises(DataError, match=r"HTTP 404 .*SHA256SUMS\.txt"):
        _dl(server, tmp_path / "out")


def test_unreachable_server_is_a_clear_error(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = srv.server_address[1]
    srv.server_close()  # nothing listens on that port now
    with pytest.raises(DataError, match=r"cannot fetch http://127\.0\.0\.1"):
        download(tmp_path / "out", base_url=f"http://127.0.0.1:{port}/", progress=False, retries=1,
                 backoff=0.01)


def test_parse_checksums_rejects_bad_and_unsafe_lines():
    h = "a" * 64
    assert parse_checksums(f"{h}  a/b.dat\n{h} *c.csv\n\n") == {"a/b.dat": h, "c.csv": h}
    for bad in ("nothex  a.dat", f"{h}  ../etc/passwd", f"{h}  /abs/path", f"{h}"):
        with pytest.raises(DataError):
            parse_checksums(bad, source="SHA256SUMS.txt")
    with pytest.raises(DataError, match="lists no files"):
        parse_checksums("\n")


def test_unknown_dataset_and_default_urls(tmp_path):
    with pytest.raises(UnknownNameError, match="ptbxl-plus"):
        download(tmp_path, dataset="ptb-xxl", progress=False)
    assert DATASETS["ptbxl"].base_url == "https://physionet.org/files/ptb-xl/1.0.3/"
    assert DATASETS["ptbxl-plus"].base_url == "https://physionet.org/files/ptb-xl-plus/1.0.1/"


def test_cli_download_json(server, tmp_path, capsys):
    from xand.cli import main

    out = tmp_path / "cli"
    rc = main(["download", "--out", str(out), "--base-url", server.url, "--only", "records100/*",
               "--workers", "2", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_fetched"] == 4 and rep["failed"] == []
    server.fail[CHECKSUM_FILE] = 500
    rc = main(["download", "--out", str(out), "--base-url", server.url, "--retries", "0", "--no-progress"])
    assert rc == 2
    assert "HTTP 500" in capsys.readouterr().err
