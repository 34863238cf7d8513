"""Keeping an upload: the files saved under a content-addressed folder, never overwriting another."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Sequence

from xand.data.upload.common import UploadedECG, _basename


def save_upload(files: Sequence[tuple[str, bytes]] | dict[str, bytes], dest_root: str | Path,
                rec: UploadedECG | None = None) -> Path:
    """Keep an upload (only when the reviewer asks): ``dest_root/<time>-<name>/`` with the original files
    and ``upload.json`` (what was parsed: rate, units, format, digest).

    Returns the new folder.
    """
    items = list(files.items()) if isinstance(files, dict) else list(files)
    stem = rec.name if rec is not None else Path(_basename(items[0][0])).stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80] or "upload"
    dest = Path(dest_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    k = 1
    while dest.exists():
        k += 1
        dest = dest.with_name(f"{dest.name.rsplit('~', 1)[0]}~{k}")
    dest.mkdir(parents=True)
    for name, data in items:
        (dest / _basename(name)).write_bytes(bytes(data))
    info = rec.summary() if rec is not None else {}
    (dest / "upload.json").write_text(json.dumps({**info, "saved": time.strftime("%Y-%m-%dT%H:%M:%S")},
                                                 indent=2, default=str))
    return dest
