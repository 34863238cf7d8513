"""What each synthetic record is: the set's options (``SynthConfig``) and per-record specs (statements,
likelihoods, MI stage, device), drawn from per-record seeded streams."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xand.data.synth.geometry import DEVICE_P, DEVICES
from xand.data.synth.statements import STATEMENTS


@dataclass
class SynthConfig:
    """Options of the synthetic PTB-XL generator (all serialisable).

    ``profile_weights`` are the probabilities of the diagnostic profiles a patient is drawn from
    (co-occurrences as in PTB-XL: MI+STTC, MI+CD, HYP+STTC, ...). ``likelihood_weights`` give the
    cardiologist likelihood of each diagnostic statement; below 100 the morphology is milder and
    the pure-label policy excludes the record for that head.
    """

    n_records: int = 2000
    seed: int = 0
    fs: int = 500
    fs_low: int = 100
    duration_s: float = 10.0
    mains_hz: float = 50.0
    noise_scale: float = 1.0
    ecgs_per_patient: tuple[float, ...] = (0.80, 0.13, 0.05, 0.02)
    profile_weights: dict[str, float] = field(default_factory=lambda: {
        "NORM": 0.36, "MI": 0.13, "MI+STTC": 0.05, "MI+CD": 0.04, "MI+HYP": 0.02,
        "STTC": 0.12, "STTC+HYP": 0.05, "CD": 0.13, "CD+HYP": 0.03, "HYP": 0.07,
    })
    likelihood_weights: dict[int, float] = field(default_factory=lambda: {
        100: 0.74, 80: 0.08, 50: 0.07, 35: 0.05, 15: 0.04, 0: 0.02,
    })


_SUBTYPES = {
    "MI": ("IMI", "IMI", "ILMI", "ASMI", "ASMI", "AMI", "ALMI", "LMI"),
    "STTC": ("ISC_", "ISCAL", "ISCIN", "ISCAS", "ISCLA", "NST_", "NDT", "NDT", "LNGQT"),
    "CD": ("CRBBB", "CLBBB", "IRBBB", "IVCD", "LAFB", "LAFB"),
    "HYP": ("LVH", "LVH", "LVH", "RVH"),
}


# Findings whose morphology lies outside their superclass's clinical mask (1AVB: PR segment; LAE: P
# wave) only ever accompany one that has it, so every positive record carries in-mask evidence.
_COMPANIONS = {**{c: ("1AVB", 0.15) for c in ("CRBBB", "CLBBB", "IRBBB", "IVCD", "LAFB")},
               "LVH": ("LAO/LAE", 0.2)}


_STTC_WITH_MI = {
    "IMI": ("ISCAS", "NDT", "LNGQT"), "ILMI": ("ISCAS", "NDT"), "ASMI": ("ISCIN", "NDT", "LNGQT"),
    "AMI": ("ISCIN", "NDT"), "ALMI": ("ISCIN", "NDT"), "LMI": ("ISCAS", "NDT", "LNGQT"),
}


_MI_STAGES = ("acute", "evolving", "old")


_STAGE_TEXT = {"acute": "Stadium I", "evolving": "Stadium II", "old": "Stadium III"}


_SEVERITY_OF_LIKELIHOOD = {100: 1.0, 80: 0.8, 50: 0.6, 35: 0.5, 15: 0.4, 0: 0.35}


@dataclass
class RecordSpec:
    """What the metadata stage decided about one record (labels, patient, device)."""

    ecg_id: int
    patient_id: int
    age: int
    sex: int
    device: str
    date: str
    codes: dict[str, float]          # diagnostic statements -> likelihood
    stage: str | None                # MI stage
    noise_level: float               # 0.3 .. 2 multiplier
    patient_seed: int                # shared by a patient's ECGs: same heart, same axis


def _choice(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _profile_codes(profile: str, rng: np.random.Generator, cfg: SynthConfig) -> tuple[dict, str | None]:
    codes: dict[str, float] = {}
    stage = None
    for cls in profile.split("+"):
        if cls == "NORM":
            codes["NORM"] = 100.0 if rng.random() < 0.85 else 80.0
            continue
        options = _SUBTYPES[cls]
        if cls == "CD" and "MI" in profile:
            options = ("LAFB", "CRBBB", "IVCD")   # no MI+LBBB (Sgarbossa territory)
        if cls == "STTC" and "HYP" in profile:
            options = ("ISC_", "NDT", "NST_", "ISCLA")
        if cls == "STTC" and "MI" in profile:  # ischaemia away from the infarct, never cancelling it
            options = _STTC_WITH_MI[next(c for c in codes if STATEMENTS[c][2] == "MI")]
        if cls == "HYP" and "CLBBB" in codes:
            options = ("LVH",)
        code = options[int(rng.integers(len(options)))]
        codes[code] = float(_choice(rng, cfg.likelihood_weights))
        extra, p = _COMPANIONS.get(code, (None, 0.0))
        if extra and rng.random() < p:  # never more certain than the finding it accompanies
            codes[extra] = min(codes[code], float(_choice(rng, cfg.likelihood_weights)))
        if cls == "MI":
            stage = _MI_STAGES[int(rng.choice(3, p=[0.2, 0.3, 0.5]))]
    return codes, stage


def build_specs(cfg: SynthConfig) -> list[RecordSpec]:
    """Patients, their ECGs, labels, devices and dates, sorted by date (ecg_id order)."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(0,)))
    base = np.datetime64("1989-10-01T08:00:00")
    span_s = int(6.7 * 365 * 86400)
    drafts = []
    pid_pool = rng.permutation(np.arange(1000, 1000 + 10 * cfg.n_records + 100))
    k = 0
    while len(drafts) < cfg.n_records:
        pid = int(pid_pool[k])
        n_ecg = 1 + int(rng.choice(len(cfg.ecgs_per_patient), p=np.asarray(cfg.ecgs_per_patient)))
        sex = int(rng.random() < 0.48)
        age0 = int(np.clip(rng.normal(60, 16), 18, 89))
        profile = _choice(rng, cfg.profile_weights)
        codes, stage = _profile_codes(profile, rng, cfg)
        noise = float(np.clip(rng.lognormal(0.0, 0.45), 0.3, 2.5))
        device = _choice(rng, dict(zip(DEVICES, DEVICE_P)))
        t0 = int(rng.integers(0, span_s // 2))
        for j in range(n_ecg):
            if len(drafts) >= cfg.n_records:
                break
            t = t0 + j * int(rng.integers(3600, 400 * 86400))
            rec_codes, rec_stage = dict(codes), stage
            if j and stage is not None:   # a later ECG of an infarct patient shows a later stage
                rec_stage = _MI_STAGES[min(_MI_STAGES.index(stage) + 1, 2)]
            if j and rng.random() < 0.3:  # the reader's certainty differs between ECGs
                for c in rec_codes:
                    if c != "NORM":
                        rec_codes[c] = float(_choice(rng, cfg.likelihood_weights))
            drafts.append((t, pid, j, age0 + t // (365 * 86400) - t0 // (365 * 86400), sex,
                           device if rng.random() < 0.8 else _choice(rng, dict(zip(DEVICES, DEVICE_P))),
                           rec_codes, rec_stage, noise * float(rng.uniform(0.8, 1.25))))
        k += 1
    drafts.sort(key=lambda d: (d[0], d[1], d[2]))
    specs = []
    for i, (t, pid, j, age, sex, device, codes, stage, noise) in enumerate(drafts, start=1):
        date = str(base + np.timedelta64(int(t), "s")).replace("T", " ")
        specs.append(RecordSpec(i, pid, int(min(age, 95)), sex, device, date, codes, stage, noise, pid))
    return specs
