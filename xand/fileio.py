"""Small file-system helpers shared by the core and the app: absolute paths and atomic writes.

Atomic writes go to a temporary file in the target's folder, then ``os.replace``: a reader sees the old
complete file or the new complete file, never a part. The temporary name is unique per process, thread
and call, because the app writes the same file from several threads (a page and its prefetch thread, two
sessions) and two writers sharing one temporary file make one ``os.replace`` find it gone.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import IO, Callable


def absolute_path(p: str | Path) -> Path:
    """``p`` with ``~`` expanded, made absolute against the current working directory (``..`` folded;
    symbolic links are kept, so a linked folder keeps the name it was given). For paths handed to a
    process that runs elsewhere (a training job runs with the project as its working directory)."""
    return Path(os.path.abspath(Path(p).expanduser()))


def temp_path(path: Path) -> Path:
    """A hidden temporary name beside ``path``, unique per process, thread and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | Path, write: Callable[[IO], None], binary: bool = False, fsync: bool = False) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then move it onto ``path`` atomically.

    Parameters
    ----------
    path : target file (its folder must exist)
    write : writes the content to the open file object
    binary : open the temporary file in binary mode
    fsync : flush it to disk before the rename (checkpoints that must survive a power cut or kill -9)
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb" if binary else "w") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, fsync: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text), fsync=fsync)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
