"""Names shared by every module: leads, diagnostic superclasses, pathology heads, fiducial kinds."""

from __future__ import annotations

#: The 12 standard leads in PTB-XL / WFDB storage order.
LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
N_LEADS = len(LEADS)

#: PTB-XL diagnostic superclasses (``scp_statements.csv``: ``diagnostic == 1``, ``diagnostic_class``).
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")

#: Pathology heads: one binary model each.
HEADS: tuple[str, ...] = ("MI", "STTC", "CD", "HYP")

#: Pure-label status codes stored per head (see ``xand.data.ptbxl.pure_labels``).
POSITIVE, NEGATIVE, EXCLUDED = 1, 0, -1

#: Working sampling rate (Hz) and length (samples) of a 10 s PTB-XL record.
DEFAULT_FS = 100
RECORD_SECONDS = 10.0

#: Splits by PTB-XL ``strat_fold`` (Wagner et al. 2020 recommendation).
SPLIT_OF_FOLD: dict[int, str] = {**{f: "train" for f in range(1, 9)}, 9: "val", 10: "test"}

#: Fiducial point kinds, in the order used by ``Fiducials.points`` (columns of each per-lead array).
FIDUCIAL_KINDS: tuple[str, ...] = (
    "P_on", "P_peak", "P_off",
    "QRS_on", "Q_peak", "R_peak", "S_peak", "QRS_off",
    "J",  # ECGdeli's "L point": the J point
    "T_on", "T_peak", "T_off",
)


def lead_index(name: str) -> int:
    """Index of a lead by its name (case-insensitive), raising a clear error for an unknown name."""
    for i, lead in enumerate(LEADS):
        if lead.lower() == name.lower():
            return i
    raise ValueError(f"unknown lead {name!r}; expected one of {', '.join(LEADS)}")

#: A run folder's name (``xand.training.trainer._run_id``): creation time (UTC), model, hash of options and
#: data; ``xand.jobs`` finds a job's run by it (here, so that the light job supervisor needs no torch).
RUN_NAME_PATTERN = r"\d{{8}}-\d{{6}}-{model}-[0-9a-f]{{8}}"
