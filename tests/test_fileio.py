"""xand.fileio: absolute paths and atomic writes (concurrent writers, failures leave nothing behind)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from xand.fileio import absolute_path, atomic_write, atomic_write_text


def test_absolute_path_expands_home_and_keeps_links(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert absolute_path("a/../b") == tmp_path / "b"
    assert absolute_path("~/x") == tmp_path / "home" / "x"
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert absolute_path("link") == tmp_path / "link"  # not resolved to its target


def test_concurrent_writers_of_one_file_all_succeed(tmp_path):
    target = tmp_path / "f.txt"
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                atomic_write_text(target, f"{i}-{j}\n" * 100)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = target.read_text().splitlines()
    assert len(lines) == 100 and len(set(lines)) == 1  # one whole write, never a mix
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]  # no temporary file left


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, lambda fh: fh.write(b"old"), binary=True, fsync=True)

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom, binary=True)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]
