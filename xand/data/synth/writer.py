"""Writing the synthetic set in the exact PTB-XL / PTB-XL+ layout (WFDB records, ``ptbxl_database.csv``
with German-style reports, fiducial files), in parallel and byte-identical for a seed."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from xand.constants import N_LEADS
from xand.data.synth.geometry import ADC_GAIN, DEVICE_NOISE, HEADER_LEADS
from xand.data.synth.render import synth_record
from xand.data.synth.spec import _STAGE_TEXT, RecordSpec, SynthConfig, build_specs
from xand.data.synth.statements import STATEMENTS, statements_frame


def _write_wfdb(folder: Path, name: str, d: np.ndarray, fs: int) -> None:
    """Header + format-16 .dat exactly as ``wfdb.wrsamp(d_signal=..., fmt='16', adc_gain=1000)``."""
    n = d.shape[0]
    init = d[0].astype(np.int64) if n else np.zeros(d.shape[1], dtype=np.int64)
    checksum = d.astype(np.int64).sum(axis=0) % 65536
    lines = [f"{name} {d.shape[1]} {fs} {n}"]
    for j, lead in enumerate(HEADER_LEADS):
        lines.append(f"{name}.dat 16 {ADC_GAIN:.1f}(0)/mV 16 0 {init[j]} {checksum[j]} 0 {lead}")
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    (folder / f"{name}.dat").write_bytes(d.tobytes())


def _work(args) -> list[tuple[int, dict | None, str | None]]:
    """Worker: synthesise and write a chunk of records; returns (ecg_id, extras, error)."""
    from xand.data.ptbxl_plus import bucket_of, write_fiducials
    from xand.fiducials import Fiducials

    out_dir, specs, cfg = args
    out_dir = Path(out_dir)
    results = []
    for spec in specs:
        try:
            hi, lo, fid, extras = synth_record(spec, cfg)
            b = bucket_of(spec.ecg_id)
            _write_wfdb(out_dir / "records500" / b, f"{spec.ecg_id:05d}_hr", hi, cfg.fs)
            _write_wfdb(out_dir / "records100" / b, f"{spec.ecg_id:05d}_lr", lo, cfg.fs_low)
            fids = Fiducials(cfg.fs, hi.shape[0], [fid] * N_LEADS, source="synthetic")
            write_fiducials(out_dir, spec.ecg_id, fids, global_beats=fid)
            results.append((spec.ecg_id, extras, None))
        except Exception as exc:  # a bad record is reported and skipped, never crashes the batch
            results.append((spec.ecg_id, None, f"{type(exc).__name__}: {exc}"))
    return results


_REPORT = {
    "NORM": "normales ekg", "IMI": "inferiorer infarkt", "ILMI": "inferolateraler infarkt",
    "ASMI": "anteroseptaler infarkt", "AMI": "anteriorer infarkt", "ALMI": "anterolateraler infarkt",
    "LMI": "lateraler infarkt", "ISC_": "st-t-veraenderungen wie bei ischaemie",
    "ISCAL": "ischaemie anterolateral", "ISCIN": "ischaemie inferior", "ISCAS": "ischaemie anteroseptal",
    "ISCLA": "ischaemie lateral", "NST_": "unspezifische st-veraenderungen",
    "NDT": "unspezifische t-abflachung", "LNGQT": "qt-verlaengerung",
    "CRBBB": "kompletter rechtsschenkelblock", "IRBBB": "inkompletter rechtsschenkelblock",
    "CLBBB": "kompletter linksschenkelblock", "IVCD": "intraventrikulaere leitungsstoerung",
    "LAFB": "linksanteriorer hemiblock", "1AVB": "av-block i. grades",
    "LVH": "linksventrikulaere hypertrophie", "RVH": "rechtsventrikulaere hypertrophie",
    "LAO/LAE": "p-sinistroatriale",
}


_CERTAINTY = {100: "", 80: "wahrscheinlich ", 50: "moeglicherweise ", 35: "vereinbar mit ",
              15: "nicht auszuschliessen ", 0: "fraglich "}


_AXIS_WORD = {"ALAD": "ueberdrehter linkstyp", "LAD": "linkstyp", "MID": "steiltyp",
              "RAD": "rechtstyp", "ARAD": "ueberdrehter rechtstyp"}


_STAGE_WORD = {"acute": "frisch", "evolving": "im zwischenstadium", "old": "alter unbest."}


def _row(spec: RecordSpec, extras: dict, cfg: SynthConfig, rng: np.random.Generator) -> dict:
    """One ``ptbxl_database.csv`` row, consistent with the signal (axis, rhythm, noise)."""
    codes = dict(spec.codes)
    form = {}
    if any(STATEMENTS[c][2] == "MI" for c in codes) and spec.stage != "acute":
        form["QWAVE" if rng.random() < 0.4 else "ABQRS"] = 0.0
    if any(c in codes for c in ("ISC_", "ISCAL", "ISCIN", "ISCAS", "ISCLA")) and rng.random() < 0.4:
        form["STD_" if rng.random() < 0.5 else "INVT"] = 0.0
    if "NDT" in codes and rng.random() < 0.5:
        form["LOWT"] = 0.0
    if "LVH" in codes and rng.random() < 0.4:
        form["VCLVH"] = 0.0
    if "1AVB" in codes and rng.random() < 0.3:
        form["LPR"] = 0.0
    if spec.stage == "acute" and rng.random() < 0.3:
        form["STE_"] = 0.0
    rhythm = "SBRAD" if extras["hr"] < 58 else "SARRH" if extras["sarrh"] else "SR"
    scp = {**codes, **form, rhythm: 0.0}
    words = [{"SR": "sinusrhythmus", "SBRAD": "sinusbradykardie", "SARRH": "sinusarrhythmie"}[rhythm]]
    if rng.random() < 0.6:
        words.append(_AXIS_WORD[extras["heart_axis"]])
    for c, lk in codes.items():
        text = _CERTAINTY[int(lk)] + _REPORT[c]
        if c == "NORM" and rhythm != "SR":
            text = "sonst " + text
        if STATEMENTS[c][2] == "MI":
            text += " " + _STAGE_WORD[spec.stage or "old"]
        words.append(text)
    hum, emg, _ = DEVICE_NOISE[spec.device]
    noisy = spec.noise_level * cfg.noise_scale
    return {
        "ecg_id": spec.ecg_id, "patient_id": float(spec.patient_id), "age": float(spec.age),
        "sex": spec.sex,
        "height": float(np.round(rng.normal(176 if spec.sex == 0 else 164, 7))) if rng.random() < 0.5 else np.nan,
        "weight": float(np.round(rng.normal(82 if spec.sex == 0 else 68, 12))) if rng.random() < 0.8 else np.nan,
        "nurse": float(rng.integers(0, 11)) if rng.random() < 0.88 else np.nan,
        "site": float(rng.integers(0, 4)), "device": spec.device, "recording_date": spec.date,
        "report": " ".join(words), "scp_codes": str(scp),
        "heart_axis": extras["heart_axis"] if rng.random() < 0.4 else np.nan,
        "infarction_stadium1": _STAGE_TEXT.get(spec.stage, np.nan) if spec.stage and any(
            STATEMENTS[c][2] == "MI" for c in codes) else np.nan,
        "infarction_stadium2": np.nan,
        "validated_by": float(rng.integers(0, 12)) if rng.random() < 0.6 else np.nan,
        "second_opinion": bool(rng.random() < 0.08), "initial_autogenerated_report": False,
        "validated_by_human": True,
        "baseline_drift": " , II,III,AVF" if noisy > 1.4 else np.nan,
        "static_noise": " , I-AVF,  " if noisy * (hum + emg) > 0.03 else np.nan,
        "burst_noise": np.nan, "electrodes_problems": np.nan, "extra_beats": np.nan, "pacemaker": np.nan,
        "strat_fold": 0,
        "filename_lr": f"records100/{spec.ecg_id // 1000 * 1000:05d}/{spec.ecg_id:05d}_lr",
        "filename_hr": f"records500/{spec.ecg_id // 1000 * 1000:05d}/{spec.ecg_id:05d}_hr",
    }


def synthesize(out_dir: str | Path, cfg: SynthConfig | None = None, workers: int | None = None,
               progress: bool = True) -> Path:
    """Write a synthetic PTB-XL folder (+ its PTB-XL+ ECGdeli fiducials) to ``out_dir``.

    Parameters
    ----------
    out_dir : target folder (created; existing files of the same names are overwritten)
    cfg : SynthConfig (default: 2,000 records, seed 0)
    workers : processes (default: all cores, at most 8); 1 runs in this process
    progress : show a progress bar on stderr

    Returns
    -------
    ``out_dir`` as a Path. Layout: ``ptbxl_database.csv``, ``scp_statements.csv``,
    ``records100/{bucket}/{id}_lr.{hea,dat}``, ``records500/{bucket}/{id}_hr.{hea,dat}``,
    ``fiducial_points/ecgdeli/{bucket}/{id}_points_{lead_*,global}.atr``. The same config gives
    byte-identical files whatever ``workers`` is.
    """
    import pandas as pd

    cfg = cfg or SynthConfig()
    if cfg.n_records < 1:
        raise ValueError(f"n_records must be >= 1, got {cfg.n_records}")
    out = Path(out_dir)
    specs = build_specs(cfg)
    buckets = sorted({s.ecg_id // 1000 * 1000 for s in specs})
    for sub in ("records100", "records500", "fiducial_points/ecgdeli"):
        for b in buckets:
            (out / sub / f"{b:05d}").mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, 8, len(specs)))
    chunk = max(1, min(25, len(specs) // (workers * 4) or 1))
    jobs = [(str(out), specs[i:i + chunk], cfg) for i in range(0, len(specs), chunk)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc="synth", unit="rec", file=sys.stderr)
    results: dict[int, tuple] = {}
    if workers == 1:
        it = map(_work, jobs)
        pool = None
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        pool = ctx.Pool(workers)
        it = pool.imap_unordered(_work, jobs)
    try:
        for res in it:
            for ecg_id, extras, err in res:
                results[ecg_id] = (extras, err)
            if bar is not None:
                bar.update(len(res))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    failed = {i: e for i, (x, e) in results.items() if e is not None}
    if failed:
        print(f"synth: {len(failed)} record(s) skipped: "
              + "; ".join(f"{i}: {e}" for i, e in sorted(failed.items())[:5]), file=sys.stderr)
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(3,)))
    rows = [_row(s, results[s.ecg_id][0], cfg, rng) for s in specs if s.ecg_id not in failed]
    db = pd.DataFrame(rows)
    # strat_fold per patient: shuffled patients dealt round-robin to folds 1..10
    patients = rng.permutation(np.unique(db["patient_id"].to_numpy()))
    fold_of = {p: 1 + i % 10 for i, p in enumerate(patients)}
    db["strat_fold"] = db["patient_id"].map(fold_of).astype(int)
    db.to_csv(out / "ptbxl_database.csv", index=False)
    statements_frame().to_csv(out / "scp_statements.csv")
    (out / SYNTHETIC_MARKER).write_text(json.dumps({"generator": "xand.data.synth", "seed": cfg.seed,
                                                    "n_records": cfg.n_records}) + "\n")
    return out


#: Written into every synthetic set: a model trained on one is recognised as such wherever it is applied.
SYNTHETIC_MARKER = "xand_synthetic.json"


def is_synthetic(folder: str | Path) -> bool:
    """Whether ``folder`` is a synthetic set written by :func:`synthesize` (its marker file is there)."""
    return (Path(folder) / SYNTHETIC_MARKER).is_file()


def config_json(cfg: SynthConfig) -> dict:
    """The config as a JSON-ready dict."""
    d = asdict(cfg)
    d["likelihood_weights"] = {str(k): v for k, v in d["likelihood_weights"].items()}
    return d
