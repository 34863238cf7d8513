"""The learned delineator: labels from marks, decoding of hand-made class maps (no wave invented, short
runs dropped), the network's shape, weights loaded without running code."""

from __future__ import annotations

import numpy as np
import pytest

from xand.constants import FIDUCIAL_KINDS, N_LEADS
from xand.delineation.learned import (FS, UNetConfig, build_unet, decode_lead, labels_of, load_unet, save_unet)
from xand.errors import DataError
from xand.fiducials import Fiducials, kind_index


def test_labels_follow_the_marks():
    row = np.full(len(FIDUCIAL_KINDS), np.nan)
    for k, v in {"P_on": 10, "P_off": 40, "QRS_on": 60, "QRS_off": 100, "T_on": 150, "T_off": 250}.items():
        row[kind_index(k)] = v
    fid = Fiducials(FS, 400, [row[None]] * N_LEADS, np.ones(N_LEADS, bool))
    lab = labels_of(fid, 3, 400)
    assert (lab[10:41] == 1).all() and (lab[60:101] == 2).all() and (lab[150:251] == 3).all()
    assert lab[41:60].sum() == 0 and lab[:10].sum() == 0 and lab[251:].sum() == 0


def _probs(segments: list[tuple[int, int, int]], n: int) -> np.ndarray:
    p = np.zeros((4, n))
    p[0] = 1.0
    for c, a, e in segments:
        p[:, a:e + 1] = 0.0
        p[c, a:e + 1] = 1.0
    return p


def test_decoding_builds_beats_from_qrs_runs_and_drops_what_is_too_short():
    n = 2000
    segs = [(1, 100, 140), (2, 180, 230), (3, 330, 430),      # a full beat
            (2, 600, 650), (3, 750, 850),                   # no P wave: P stays NaN
            (1, 1000, 1004),                                # a 10 ms "P": too short, dropped
            (2, 1080, 1130)]                                # its QRS, no T before the end
    rows = decode_lead(_probs(segs, n), np.sin(np.arange(n) / 20.0), FS)
    assert len(rows) == 3
    assert (rows[0, kind_index("P_on")], rows[0, kind_index("QRS_on")], rows[0, kind_index("T_off")]) == (100, 180, 430)
    assert np.isnan(rows[1, kind_index("P_on")]) and rows[1, kind_index("T_on")] == 750
    assert np.isnan(rows[2, kind_index("P_on")]) and np.isnan(rows[2, kind_index("T_off")])
    assert 180 <= rows[0, kind_index("R_peak")] <= 230
    assert len(decode_lead(_probs([], n), np.zeros(n), FS)) == 0  # nothing labelled: no beat


def test_the_network_maps_a_lead_to_four_classes_per_sample():
    import torch

    model = build_unet(UNetConfig(widths=(4, 8, 16, 32))).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 512))
    assert tuple(out.shape) == (2, 4, 512)


def test_weights_are_loaded_without_running_code(tmp_path):
    import os
    import pickle

    cfg = UNetConfig(widths=(4, 8, 16, 32))
    path = save_unet(build_unet(cfg), cfg, tmp_path / "w.pt")
    assert load_unet(path) is load_unet(path)  # cached
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(DataError, match="not U-Net weights"):
        load_unet(bad)
    assert not marker.exists()
    with pytest.raises(DataError, match="not found"):
        load_unet(tmp_path / "missing.pt")


def test_the_committed_unet_delineates_a_real_lubd_record(ludb_dir):
    from xand.data.ludb import list_ludb, read_ludb
    from xand.delineation.methods import delineate
    from xand.delineation.validation import score_fiducials

    r = read_ludb(ludb_dir, list_ludb(ludb_dir)[0])
    det = delineate(r.signal, r.fs, "unet")
    assert det.source == "unet" and det.quality.sum() >= 10
    s = score_fiducials(r.fiducials, det, spans=r.spans)
    assert s["QRS_on"]["tp"] >= 0.9 * s["QRS_on"]["n_ref"]  # trained on it: a check that the weights load and work


def test_training_on_two_records_runs_and_delineates(ludb_dir):
    """Fewer leads than a batch: smaller batches, not zero steps (the review's probe)."""
    from xand.data.ludb import list_ludb, read_ludb
    from xand.delineation.learned import delineate_unet, train_unet

    recs = list_ludb(ludb_dir)[:2]
    model = train_unet(ludb_dir, recs, UNetConfig(widths=(4, 8, 16, 32), epochs=1, batch_size=64, threads=1))
    r = read_ludb(ludb_dir, recs[0])
    fid = delineate_unet(r.signal, r.fs, model)
    assert fid.source == "unet" and fid.n_samples == r.signal.shape[1]
    low = delineate_unet(r.signal[:, ::5], 100.0, model)  # 100 Hz in: marks on the 100 Hz grid, inside it
    assert all((b[np.isfinite(b)] <= low.n_samples - 1).all() for b in low.beats)
