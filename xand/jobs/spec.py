"""What a job trains (``TrainJobSpec``: the options of ``python -m train`` the app exposes) and the job
states."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xand.constants import HEADS
from xand.errors import DataError, UnknownNameError
from xand.fileio import absolute_path

STATUSES = ("starting", "running", "finished", "failed", "cancelled")


ACTIVE = ("starting", "running")


PROJECT = Path(__file__).resolve().parents[2]  # where ``python -m train`` is importable from


START_GRACE_S = 60.0  # a job without started.json older than this is dead (its start() was interrupted)


LOCK_BUSY = "another training job holds the lock"


@dataclass
class TrainJobSpec:
    """What to train: the options of ``python -m train`` that the app exposes (saved with the job).

    Attributes
    ----------
    data : PTB-XL-layout folder (real or synthetic)
    heads : heads to train (one binary model each; the ``multilabel`` model trains them together)
    model : registered model (``xand.models.networks.list_models()``)
    epochs : epochs per head (early stopping after ``patience`` epochs without a better val AUC; 0 = off)
    loss, lr, batch_size, augment, aux, width, seed, bootstrap : as ``python -m train`` (see TrainConfig)
    cache_dir : prepared-array cache (None: ``$XAND_CACHE`` or ``~/.cache/xand``)
    device : ``"auto"`` = the GPU when there is one, else the CPU
    threads : CPU threads of the training (None = every core)
    nice : niceness added to the training processes, so that an app on the same CPU stays responsive
    """

    data: str
    heads: tuple[str, ...] = HEADS
    model: str = "leadwise"
    epochs: int = 30
    loss: str = "focal"
    lr: float = 1e-3
    batch_size: int = 64
    augment: bool = False
    patience: int = 8
    aux: bool = True
    width: float | None = None
    seed: int = 0
    bootstrap: int = 1000
    cache_dir: str | None = None
    device: str = "auto"
    threads: int | None = None
    nice: int = 10

    def __post_init__(self) -> None:
        # Absolute: the job runs with cwd = the project, not the caller's working directory.
        self.data = str(absolute_path(self.data))
        self.heads = tuple(self.heads)
        if self.cache_dir is not None:
            self.cache_dir = str(absolute_path(self.cache_dir))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainJobSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def validate(self) -> None:
        """Raise ``UnknownNameError`` / ``DataError`` before anything is started."""
        from xand.models.networks import MODELS
        from xand.training.losses import LOSSES

        if not self.heads:
            raise DataError(None, "no head chosen", f"one or more of {', '.join(HEADS)}")
        for h in self.heads:
            if h not in HEADS:
                raise UnknownNameError("head", h, HEADS)
        MODELS.get(self.model)  # an unknown name lists the valid ones
        LOSSES.get(self.loss)
        for name, low in (("epochs", 1), ("batch_size", 2), ("patience", 0), ("bootstrap", 0)):
            if int(getattr(self, name)) < low:
                raise DataError(None, f"{name} = {getattr(self, name)}", f"an integer >= {low}")
        if not float(self.lr) > 0:
            raise DataError(None, f"lr = {self.lr}", "a learning rate > 0")
        if not (Path(self.data) / "ptbxl_database.csv").is_file():
            raise DataError(self.data, "is not a PTB-XL-layout folder",
                            "a folder with ptbxl_database.csv, scp_statements.csv and records100/")

    def argv(self, out_dir: str | Path) -> list[str]:
        """The ``python -m train`` arguments (after ``-m train``) writing the run under ``out_dir``."""
        a = ["--data", self.data, "--heads", *self.heads, "--model", self.model, "--epochs", str(self.epochs),
             "--out", str(out_dir), "--device", self.device, "--loss", self.loss, "--lr", repr(float(self.lr)),
             "--batch-size", str(self.batch_size), "--patience", str(self.patience), "--seed", str(self.seed),
             "--bootstrap", str(self.bootstrap)]
        if self.augment:
            a.append("--augment")
        if not self.aux:
            a.append("--no-aux")
        if self.width is not None:
            a += ["--width", repr(float(self.width))]
        if self.threads:
            a += ["--threads", str(self.threads)]
        if self.cache_dir:
            a += ["--cache-dir", self.cache_dir]
        return a

    @property
    def label(self) -> str:
        return f"{self.model} · {', '.join(self.heads)} · {self.epochs} epoch{'s' * (self.epochs != 1)}"
