"""The jobs' file io: the lock (``flock`` with its owner file), JSON written atomically, tolerant reads of
files another process is writing."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time
from pathlib import Path

from xand.errors import XandError
from xand.fileio import atomic_write_text


def _owner_file(lock_file: Path) -> Path:
    return lock_file.with_name(lock_file.name + ".owner.json")


class _flock:
    """Exclusive ``flock`` on ``path`` as a context manager (gives up after ``timeout`` seconds)."""

    def __init__(self, path: Path, timeout: float):
        self.path, self.timeout, self.fd = path, timeout, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.time() > deadline:
                    os.close(self.fd)
                    raise XandError(f"{self.path}: another process is starting a training job") from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
        return obj if isinstance(obj, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    for line in _read_text(path).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # the line being appended right now
    return out


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _tail_lines(path: Path, n_lines: int, max_bytes: int = 64_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # a progress bar redraws itself with "\r": keep the last state of each line
    lines = []
    for seg in raw.split("\n"):
        states = [s for s in seg.split("\r") if s.strip()]
        if states:
            lines.append(states[-1].rstrip())
    return "\n".join(lines[-n_lines:])


def _last_line(path: Path) -> str:
    tail = _tail_lines(path, 1, max_bytes=4_000)
    return tail.strip()


def _last_error_line(path: Path) -> str:
    for ln in reversed(_tail_lines(path, 40).splitlines()):
        if ln.startswith("error:") or re.match(r"^\w*(Error|Exception)\b", ln):
            return ln.strip()
    return ""
