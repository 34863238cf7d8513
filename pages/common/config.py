"""The app's configuration and the selection every page works on (dataset, run, head, method)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from xand.constants import EXCLUDED, NEGATIVE, POSITIVE
from xand.fileio import absolute_path

PROJECT = Path(__file__).resolve().parents[2]


DISCLAIMER = "Research grade, not a medical device: not for diagnosis or treatment decisions."


STATUS_TEXT = {POSITIVE: "positive", NEGATIVE: "negative", EXCLUDED: "excluded"}


DEMO_LABEL = "Synthetic demo set"


PTBXL_LABEL = "PTB-XL folder"


@dataclass
class AppConfig:
    """Where the app reads and writes; every path can be set by an environment variable.

    Attributes
    ----------
    home : the app's working folder (``XAND_HOME``, default ``<project>/data``)
    data_dir : a PTB-XL folder to open (``XAND_DATA_DIR``); None opens the synthetic demo set
    plus_dir : a PTB-XL+ folder with ECGdeli fiducials (``XAND_PTBXL_PLUS``), optional
    runs_dir : trained runs (``XAND_RUNS_DIR``, default ``home/runs``)
    demo_weights : committed demo heads (``XAND_DEMO_WEIGHTS``, default ``<project>/data/demo_weights``)
    cache_dir : prepared arrays and delineations (``XAND_CACHE``, default ``home/cache``)
    demo_records : size of the synthetic demo set written on first run (``XAND_DEMO_N``; None = the
        synthesizer's default)
    background : work ahead in background threads (``XAND_BACKGROUND=0`` turns it off, e.g. for
        tests): after showing an ECG, explain it for the other heads and the next record of the cohort,
        so that the usual next steps are cache hits; compute the Browse table's probabilities while the
        table is already shown. Off, the same work happens in the page, with a progress bar.
    torch_threads : CPU threads of the app's model computations (``XAND_TORCH_THREADS``, default 1). One
        thread leaves the other core of a 2-core machine to the browser and the server, and avoids
        OpenMP's spin-waiting: measured on the 2-core review machine under load, one IG explanation took
        0.04 s with 1 thread and 1.1 s with 2 (cnn1d), 0.7-0.9 s and 0.8-5.3 s (leadwise).
    """

    home: Path = field(default_factory=lambda: Path(os.environ.get("XAND_HOME") or PROJECT / "data"))
    data_dir: Path | None = None
    plus_dir: Path | None = None
    runs_dir: Path | None = None
    demo_weights: Path | None = None
    cache_dir: Path | None = None
    demo_records: int | None = None
    background: bool | None = None
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        env = os.environ.get
        if self.torch_threads is None:
            self.torch_threads = int(env("XAND_TORCH_THREADS") or 1)
        if self.background is None:
            self.background = env("XAND_BACKGROUND", "1") not in ("0", "false", "no")
        # Every path absolute (``~`` expanded, relative to the server's working directory): the training
        # job runs with the project as its working directory and must write where the app lists runs.
        self.home = absolute_path(self.home)
        if self.data_dir is None and env("XAND_DATA_DIR"):
            self.data_dir = env("XAND_DATA_DIR")
        self.data_dir = absolute_path(self.data_dir) if self.data_dir is not None else None
        if self.plus_dir is None and env("XAND_PTBXL_PLUS"):
            self.plus_dir = env("XAND_PTBXL_PLUS")
        self.plus_dir = absolute_path(self.plus_dir) if self.plus_dir is not None else None
        self.runs_dir = absolute_path(self.runs_dir or env("XAND_RUNS_DIR") or self.home / "runs")
        self.demo_weights = absolute_path(self.demo_weights or env("XAND_DEMO_WEIGHTS") or PROJECT / "data" / "demo_weights")
        self.cache_dir = absolute_path(self.cache_dir or env("XAND_CACHE") or self.home / "cache")
        if self.demo_records is None and env("XAND_DEMO_N"):
            self.demo_records = int(env("XAND_DEMO_N"))

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"


@dataclass
class Selection:
    """The sidebar's choices for this script run."""

    cfg: AppConfig
    data_dir: Path
    plus_dir: Path | None
    is_demo: bool
    run_dir: Path | None
    head: str
    method: str
    paper_grid: bool
