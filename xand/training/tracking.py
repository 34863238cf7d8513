"""Experiment tracking: nothing by default, MLflow (optional dependency) with ``--mlflow``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xand.errors import XandError


class NullTracker:
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: Path) -> None: ...
    def close(self) -> None: ...


class MlflowTracker(NullTracker):
    """MLflow logging (local file store by default); mlflow is an optional dependency."""

    def __init__(self, uri: str, run_name: str):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("xand")
        self.run = mlflow.start_run(run_name=run_name)

    def log_params(self, params: dict[str, Any]) -> None:
        flat = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in params.items()}
        self.mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None}, step=step)

    def log_artifact(self, path: Path) -> None:
        self.mlflow.log_artifact(str(path))

    def close(self) -> None:
        self.mlflow.end_run()


def default_mlflow_uri(out_dir: str | Path) -> str:
    """The local tracking store next to the runs: ``sqlite:///<out_dir>/mlflow.db`` (MLflow 3 refuses the
    old ``mlruns/`` file store by default). Browse it with ``mlflow ui --backend-store-uri <that uri>``."""
    return f"sqlite:///{(Path(out_dir).resolve() / 'mlflow.db').as_posix()}"


def require_mlflow() -> None:
    """Raise a clear error when MLflow logging is asked for but mlflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise XandError("MLflow logging was requested (--mlflow) but the 'mlflow' package is not installed; "
                        "install it (pip install mlflow) or drop --mlflow") from None
