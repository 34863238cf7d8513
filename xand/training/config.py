"""Training options: one dataclass, saved with every run (``config.json``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from xand.constants import HEADS
from xand.errors import UnknownNameError
from xand.models.networks import MODELS
from xand.training.losses import LOSSES


@dataclass
class TrainConfig:
    """Training options (all JSON-serialisable; saved in ``config.json``).

    Attributes
    ----------
    model, model_kwargs : registry name (``xand.models.networks.list_models()``) and its options
    heads : heads to train (one binary model each; the multi-label model trains them together)
    epochs, batch_size, eval_batch_size : loop sizes
    lr, weight_decay, warmup_epochs : AdamW with linear warm-up then cosine decay to 0
    loss : ``"focal"`` (Lin et al. 2017) or ``"bce"`` (positive-weighted BCE, weight = n_neg / n_pos)
    focal_gamma, focal_alpha : focal parameters (gamma 0 gives plain BCE; alpha None = no class weight)
    patience : early stopping after this many epochs without a better validation AUC (0 = off)
    aux, aux_weights : device / sex auxiliary heads and their loss weights
    augment, aug_* : batched on-device augmentation in normalised units: Gaussian noise std, amplitude
        scale (+-), baseline wander amplitude (0.05-0.5 Hz sinusoid), circular time shift (fraction of T)
    device : ``"auto"`` (cuda when available, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    amp : ``"auto"`` (bf16 on cuda when supported, else fp16; off on cpu), ``"off"``, ``"fp16"``, ``"bf16"``
    seed, num_threads : reproducibility; CPU threads (None = every available core)
    threshold : validation threshold rule (``"youden"`` or ``"f1"``, see ``xand.metrics``)
    bootstrap : resamples for the test-AUC CI
    mlflow, mlflow_uri : also log to MLflow (local SQLite store ``<out>/mlflow.db`` by default)
    """

    model: str = "leadwise"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    heads: tuple[str, ...] = HEADS
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    loss: str = "focal"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    patience: int = 8
    aux: bool = True
    aux_weights: dict[str, float] = field(default_factory=lambda: {"device": 0.03, "sex": 0.01})
    augment: bool = False
    aug_noise: float = 0.05
    aug_scale: float = 0.2
    aug_wander: float = 0.2
    aug_shift: float = 0.1
    device: str = "auto"
    amp: str = "auto"
    seed: int = 0
    num_threads: int | None = None
    threshold: str = "youden"
    bootstrap: int = 1000
    mlflow: bool = False
    mlflow_uri: str | None = None

    def __post_init__(self) -> None:
        self.heads = tuple(self.heads)
        bad = [h for h in self.heads if h not in HEADS]
        if bad:
            raise UnknownNameError("head", bad[0], HEADS)
        MODELS.get(self.model)  # an unknown name lists the valid ones
        LOSSES.get(self.loss)
        if self.amp not in ("auto", "off", "fp16", "bf16"):
            raise UnknownNameError("amp mode", self.amp, ("auto", "off", "fp16", "bf16"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of ``dataclasses.asdict`` (unknown keys ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
