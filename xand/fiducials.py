"""Fiducial points of a 12-lead ECG: per lead, per beat, on one sampling grid.

One structure serves every source of fiducials: PTB-XL+ ECGdeli annotations (``xand.data.ptbxl_plus``),
the project's own delineation (``xand.delineation.neurokit``), LUDB expert annotations (``xand.data.ludb``) and the
synthetic set's ground truth (``xand.data.synth``). Clinical masks (``xand.delineation.masks``) are built from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from xand.constants import FIDUCIAL_KINDS, N_LEADS

_KIND_INDEX = {k: i for i, k in enumerate(FIDUCIAL_KINDS)}


def kind_index(kind: str) -> int:
    """Column of ``kind`` in a per-lead beat array."""
    try:
        return _KIND_INDEX[kind]
    except KeyError:
        from xand.errors import UnknownNameError

        raise UnknownNameError("fiducial kind", kind, FIDUCIAL_KINDS) from None


@dataclass
class Fiducials:
    """Per-lead, per-beat fiducial points.

    Attributes
    ----------
    fs : sampling rate (Hz) of the grid the positions refer to
    n_samples : length of the record on that grid
    beats : 12 arrays (LEADS order), each ``(n_beats, len(FIDUCIAL_KINDS))`` float64 sample positions,
        NaN where a point was not found (never invented)
    quality : ``(12,)`` bool, whether the lead's delineation is usable
    source : where the points come from ("ptbxl+", "neurokit2", "ludb", "synthetic", ...)
    """

    fs: float
    n_samples: int
    beats: list[np.ndarray]
    quality: np.ndarray = field(default_factory=lambda: np.ones(N_LEADS, dtype=bool))
    source: str = ""

    def __post_init__(self) -> None:
        assert len(self.beats) == N_LEADS, f"need {N_LEADS} leads, got {len(self.beats)}"
        self.beats = [
            np.asarray(b, dtype=np.float64).reshape(-1, len(FIDUCIAL_KINDS)) for b in self.beats
        ]
        self.quality = np.asarray(self.quality, dtype=bool).reshape(N_LEADS)

    @classmethod
    def empty(cls, fs: float, n_samples: int, source: str = "") -> "Fiducials":
        """No beats on any lead (e.g. delineation found nothing)."""
        return cls(fs, n_samples, [np.empty((0, len(FIDUCIAL_KINDS)))] * N_LEADS,
                   np.zeros(N_LEADS, dtype=bool), source)

    @property
    def n_beats(self) -> np.ndarray:
        """``(12,)`` number of beats per lead."""
        return np.array([len(b) for b in self.beats])

    def kind(self, name: str) -> list[np.ndarray]:
        """Positions of one kind: 12 arrays ``(n_beats,)`` (NaN where missing)."""
        j = kind_index(name)
        return [b[:, j] for b in self.beats]

    def resample(self, fs_new: float) -> "Fiducials":
        """The same points on another sampling grid (positions scaled, not rounded)."""
        r = fs_new / self.fs
        return Fiducials(fs_new, int(round(self.n_samples * r)), [b * r for b in self.beats],
                         self.quality.copy(), self.source)

    def to_json(self) -> str:
        return json.dumps({
            "fs": self.fs, "n_samples": self.n_samples, "source": self.source,
            "kinds": list(FIDUCIAL_KINDS), "quality": self.quality.tolist(),
            "beats": [np.where(np.isnan(b), None, b).tolist() for b in self.beats],
        })

    @classmethod
    def from_json(cls, text: str) -> "Fiducials":
        d = json.loads(text)
        if list(d["kinds"]) != list(FIDUCIAL_KINDS):
            raise ValueError(f"fiducial kinds {d['kinds']} differ from {list(FIDUCIAL_KINDS)}")
        beats = [np.array(b, dtype=np.float64).reshape(-1, len(FIDUCIAL_KINDS)) for b in d["beats"]]
        return cls(d["fs"], d["n_samples"], beats, np.array(d["quality"]), d.get("source", ""))
