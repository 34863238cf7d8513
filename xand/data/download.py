"""Resumable, checksum-verified download of PTB-XL / PTB-XL+ from PhysioNet (standard library only).

Every PhysioNet project publishes ``https://physionet.org/files/<slug>/<version>/SHA256SUMS.txt``
(lines ``<sha256>  <relative path>``). ``download`` fetches that list, then every listed file (or
the ones matching ``only``), resuming partial ``.part`` files with HTTP Range requests, verifying
each file's SHA-256 and renaming it into place only when it matches. Files already present with the
right checksum are not fetched again, so re-running is a no-op.

References
----------
Wagner P et al. PTB-XL, a large publicly available electrocardiography dataset. Sci Data 2020;7:154.
Strodthoff N et al. PTB-XL+, a comprehensive electrocardiographic feature dataset. Sci Data 2023;10:279.
RFC 9110 section 14 (HTTP range requests).
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from xand.fileio import sha256_file
from xand.errors import DataError, UnknownNameError

CHECKSUM_FILE = "SHA256SUMS.txt"
_CHUNK = 1 << 16
_USER_AGENT = "xand-download/1.0 (+python-urllib)"


@dataclass(frozen=True)
class DatasetSpec:
    """A PhysioNet project version: its files live under ``base_url``."""

    name: str
    slug: str
    version: str

    @property
    def base_url(self) -> str:
        return f"https://physionet.org/files/{self.slug}/{self.version}/"


#: Downloadable datasets by name.
DATASETS: dict[str, DatasetSpec] = {
    "ptbxl": DatasetSpec("ptbxl", "ptb-xl", "1.0.3"),
    "ptbxl-plus": DatasetSpec("ptbxl-plus", "ptb-xl-plus", "1.0.1"),
}


@dataclass
class DownloadReport:
    """What a ``download`` call did (serialisable with ``dataclasses.asdict``)."""

    dataset: str
    base_url: str
    out_dir: str
    n_listed: int = 0
    n_selected: int = 0
    n_present: int = 0
    n_fetched: int = 0
    n_resumed: int = 0
    bytes_fetched: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


def parse_checksums(text: str, source: str | Path | None = None) -> dict[str, str]:
    """Parse ``sha256sum`` output (``<64 hex> [ *]<path>`` per line) into ``{path: sha256}``.

    Paths that are absolute or climb out of the folder are rejected: the list decides where files are
    written, so it must not be able to write outside ``out_dir``.
    """
    sums: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
            raise DataError(source, f"line {i} {line!r} is not a checksum line", "'<sha256 hex>  <path>'")
        rel = parts[1].lstrip("*").strip()
        pure = PurePosixPath(rel)
        if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
            raise DataError(source, f"line {i} has unsafe path {rel!r}", "a relative path inside the dataset")
        sums[str(pure)] = parts[0].lower()
    if not sums:
        raise DataError(source, "lists no files", "lines '<sha256>  <path>'")
    return sums


def select(paths, only: str | list[str] | tuple[str, ...] | None, with_top_level: bool = True) -> list[str]:
    """Paths matching any glob in ``only`` (``fnmatch``: ``*`` also crosses ``/``), sorted.

    With ``with_top_level`` the files at the top of the dataset (metadata tables, licence) are always
    kept, because the readers need them whichever records are fetched.
    """
    paths = sorted(paths)
    if not only:
        return paths
    patterns = [only] if isinstance(only, str) else list(only)
    return [p for p in paths
            if (with_top_level and "/" not in p) or any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]


class _Progress:
    """One self-overwriting status line on stderr (thread-safe); silent when disabled."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.done = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def file_done(self) -> None:
        with self._lock:
            self.done += 1
            if self.enabled:
                rate = self.bytes / max(time.monotonic() - self._t0, 1e-6) / 1e6
                end = "\n" if self.done == self.total else ""
                print(f"\r{self.done}/{self.total} files, {self.bytes / 1e6:.1f} MB fetched "
                      f"({rate:.1f} MB/s)", end=end, file=sys.stderr, flush=True)


class _Retryable(Exception):
    """A transient failure (connection reset, timeout, 5xx, short read): try again and resume."""


def _open(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if start > 0:
        req.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(req, timeout=timeout)


def _fetch_once(url: str, dest: Path, expected: str, timeout: float, progress: _Progress) -> tuple[int, bool]:
    """One attempt at ``url`` into ``dest.part`` then ``dest``; returns (bytes fetched, resumed)."""
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    h = hashlib.sha256()
    fetched = 0
    try:
        resp = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:
            # The .part already holds the whole file (or more): let the checksum decide.
            resp = None
        elif exc.code in (408, 429) or exc.code >= 500:
            raise _Retryable(f"HTTP {exc.code} {exc.reason}") from exc
        else:
            raise DataError(dest, f"HTTP {exc.code} {exc.reason} for {url}", "HTTP 200/206") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc

    resumed = False
    try:
        if resp is not None:
            status = resp.status
            if start > 0 and status == 206:
                resumed = True
                with open(part, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                mode = "ab"
            else:
                # 200 to a Range request: the server sent the whole file, start over.
                start, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            want = int(length) if length and length.isdigit() else None
            with open(part, mode) as f:
                try:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        h.update(chunk)
                        fetched += len(chunk)
                        progress.add_bytes(len(chunk))
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retryable(f"connection lost after {start + fetched} bytes: {exc}") from exc
            if want is not None and fetched < want:
                raise _Retryable(f"short read: {fetched} of {want} bytes")
        else:
            resumed = True
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    finally:
        if resp is not None:
            resp.close()

    digest = h.hexdigest()
    if digest != expected:
        part.unlink(missing_ok=True)
        raise _ChecksumMismatch(dest, f"sha256 {digest} of {url} (resumed={resumed}); partial file deleted",
                                f"sha256 {expected} from {CHECKSUM_FILE}", resumed=resumed)
    os.replace(part, dest)
    return fetched, resumed


class _ChecksumMismatch(DataError):
    def __init__(self, path, problem, expected, resumed: bool):
        super().__init__(path, problem, expected)
        self.resumed = resumed


def fetch_file(url: str, dest: Path, expected: str, retries: int = 4, backoff: float = 1.0,
               timeout: float = 60.0, progress: _Progress | None = None) -> tuple[int, bool]:
    """Download ``url`` to ``dest`` resumably and verify its SHA-256.

    Returns (bytes fetched, whether a partial file was resumed). Transient failures are retried
    ``retries`` times with exponential backoff (``backoff * 2**k`` seconds), resuming from the
    ``.part`` file. A checksum mismatch after a resume is retried once from scratch (the old partial
    data may predate a server-side change); a mismatch of a fresh download is an error.

    Raises
    ------
    DataError
        Checksum mismatch (the ``.part`` is deleted), a non-retryable HTTP status, or retries exhausted;
        the message names the URL.
    """
    progress = progress or _Progress(1, False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    resumed_any, fresh_retry_used = False, False
    attempt = 0
    while True:
        try:
            n, resumed = _fetch_once(url, dest, expected, timeout, progress)
            return n, resumed_any or resumed
        except _ChecksumMismatch as exc:
            if exc.resumed and not fresh_retry_used:
                fresh_retry_used = True
                continue
            raise DataError(exc.path, exc.problem, exc.expected) from None
        except _Retryable as exc:
            part = dest.with_name(dest.name + ".part")
            resumed_any = resumed_any or part.exists()
            if attempt >= retries:
                raise DataError(dest, f"download of {url} failed after {attempt + 1} attempts: {exc}",
                                "a reachable server; re-run to resume") from None
            time.sleep(backoff * (2 ** attempt))
            attempt += 1


def _get_text(url: str, retries: int, backoff: float, timeout: float) -> str:
    for attempt in range(retries + 1):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            if not (exc.code in (408, 429) or exc.code >= 500) or attempt == retries:
                raise DataError(None, f"HTTP {exc.code} {exc.reason} for {url}", "HTTP 200") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if attempt == retries:
                raise DataError(None, f"cannot fetch {url}: {getattr(exc, 'reason', exc)}",
                                "a reachable server") from None
        time.sleep(backoff * (2 ** attempt))
    raise AssertionError("unreachable")


def download(out_dir: str | Path, dataset: str = "ptbxl", base_url: str | None = None,
             only: str | list[str] | None = None, workers: int = 4, progress: bool = True,
             retries: int = 4, backoff: float = 1.0, timeout: float = 60.0,
             with_top_level: bool = True) -> DownloadReport:
    """Download a PhysioNet dataset into ``out_dir``, resumable and verified against SHA256SUMS.txt.

    Parameters
    ----------
    out_dir : target folder (created); its layout mirrors the dataset's (``records100/...``)
    dataset : a name in ``DATASETS`` (``"ptbxl"``: PTB-XL 1.0.3, ``"ptbxl-plus"``: PTB-XL+ 1.0.1)
    base_url : override the PhysioNet URL (a mirror, or a local server in tests)
    only : glob(s) of relative paths to fetch, e.g. ``"records100/*"``; top-level files are kept
        unless ``with_top_level=False``
    workers : parallel downloads
    progress : print a status line on stderr
    retries, backoff, timeout : transient-failure handling per file (seconds)

    Returns
    -------
    DownloadReport

    Raises
    ------
    UnknownNameError
        Unknown ``dataset``.
    DataError
        The checksum list cannot be fetched or parsed, or some file failed (after all others were
        attempted; the message names the first failing URL and the count).
    """
    if dataset not in DATASETS:
        raise UnknownNameError("dataset", dataset, list(DATASETS))
    base = base_url or DATASETS[dataset].base_url
    if not base.endswith("/"):
        base += "/"
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(out, "is a file", "a folder to download into")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    report = DownloadReport(dataset=dataset, base_url=base, out_dir=str(out))

    sums_url = urllib.parse.urljoin(base, CHECKSUM_FILE)
    text = _get_text(sums_url, retries, backoff, timeout)
    sums = parse_checksums(text, source=sums_url)
    sums.pop(CHECKSUM_FILE, None)
    tmp = out / (CHECKSUM_FILE + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / CHECKSUM_FILE)

    selected = select(sums, only, with_top_level)
    report.n_listed, report.n_selected = len(sums), len(selected)
    todo = []
    for rel in selected:
        dest = out / rel
        if dest.is_file() and sha256_file(dest) == sums[rel]:
            report.n_present += 1
        else:
            todo.append(rel)

    bar = _Progress(len(todo), progress and bool(todo))
    errors: list[tuple[str, DataError]] = []

    def job(rel: str) -> tuple[int, bool]:
        url = urllib.parse.urljoin(base, urllib.parse.quote(rel))
        try:
            return fetch_file(url, out / rel, sums[rel], retries, backoff, timeout, bar)
        finally:
            bar.file_done()

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        futures = {pool.submit(job, rel): rel for rel in todo}
        for fut in as_completed(futures):
            rel = futures[fut]
            try:
                n, resumed = fut.result()
            except DataError as exc:
                errors.append((rel, exc))
                continue
            report.n_fetched += 1
            report.n_resumed += int(resumed)
            report.bytes_fetched += n
    report.seconds = round(time.monotonic() - t0, 3)
    if errors:
        errors.sort(key=lambda e: e[0])
        report.failed = [rel for rel, _ in errors]
        first = errors[0][1]
        err = DataError(first.path, f"{first.problem}; {len(errors)} of {len(todo)} files failed "
                        f"({', '.join(report.failed[:5])}{', ...' if len(errors) > 5 else ''}); "
                        "re-run to resume", first.expected)
        err.report = report  # type: ignore[attr-defined]
        err.failures = [(rel, str(e)) for rel, e in errors]  # type: ignore[attr-defined]
        raise err
    return report
