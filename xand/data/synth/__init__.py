"""Synthetic PTB-XL: a deterministic demo set in the exact PTB-XL layout with ground-truth fiducials.

Signal model
------------
Every beat is a 3-D cardiac dipole (vectorcardiogram) built from Gaussian-like wave components, in
the spirit of ECGSYN (McSharry et al., IEEE TBME 50:289, 2003) and its 3-D dipole extension (Sameni
et al., EURASIP J Adv Signal Process 2007:43407). Each component (P, Q, R, S, R', T, ST offset) has a
centre, a left/right width and a 3-D direction; its time course is a Gaussian truncated at
+-3 widths and shifted to reach exactly zero there, so every wave is exactly confined between its
onset and offset -- which are therefore the ground-truth fiducials, not estimates. The dipole is
projected on the 12 leads with Dower's inverse transform (Dower et al., J Electrocardiol 13:189, 1980).
Noise is added per electrode (RA, LA, LL, C1-C6), then I = LA - RA, II = LL - RA, V_k = C_k - WCT, and the
other limb leads are derived from the digitised I and II, so Einthoven's and Goldberger's relations hold
to the 1 uV format-16 quantisation (III exactly, the augmented leads within half a step).

Rhythm: RR from a per-record rate (50-100 bpm) with respiratory sinus arrhythmia and a 0.1 Hz LF
component; PR 120-200 ms, QRS 80-110 ms, QT from Bazett's formula per beat (QTc ~ 390-440 ms).
Noise: baseline wander (respiration + slow drifts), 50 Hz mains hum, muscle (EMG) noise; levels vary
per record and device.

Pathologies (textbook criteria: Surawicz et al./AHA-ACCF-HRS 2009 recommendations; Sokolow & Lyon
1949) sit in the segment their fiducials delimit and in their lead territory:

- MI (IMI/ILMI inferior, ASMI/AMI anterior, LMI/ALMI lateral; acute / evolving / old): pathological Q
  (initial vector away from the infarct, >= 40 ms) in QRS_on..Q, ST elevation J..T_on, T inversion.
- STTC (ISC_, ISCAL, ISCIN, ISCAS, ISCLA, NST_, NDT, LNGQT): ST depression J..T_on, T inversion or
  flattening T_on..T_off, prolonged QT.
- CD (CRBBB, CLBBB, IRBBB, IVCD, LAFB): QRS_on..QRS_off widened / re-shaped; 1AVB (PR prolonged)
  only alongside one of them.
- HYP (LVH with or without strain, RVH): QRS voltage (Sokolow-Lyon > 3.5 mV) with ST-T strain,
  right-axis RVH; LAO/LAE (broad bifid P) only alongside one of them.

The set is written at 500 Hz and decimated (zero-phase Kaiser-windowed FIR, -3 dB at 40 Hz, -40 dB at 50 Hz) to
100 Hz. Per-record random
streams come from ``numpy.random.SeedSequence(seed, spawn_key=(ecg_id,))``, so the output does not
depend on the number of worker processes, and the same seed gives byte-identical files.
"""

from xand.data.synth.beats import BeatModel, Wave, qrs_extremes  # noqa: F401
from xand.data.synth.findings import FINDINGS, build_model  # noqa: F401
from xand.data.synth.geometry import (  # noqa: F401
                                    ADC_GAIN,
                                    DEVICES,
                                    HEADER_LEADS,
                                    LEAD_MATRIX,
                                    TERRITORY,
)
from xand.data.synth.render import decimate, render, synth_record  # noqa: F401
from xand.data.synth.spec import RecordSpec, SynthConfig, build_specs  # noqa: F401
from xand.data.synth.statements import STATEMENTS, statements_frame  # noqa: F401
from xand.data.synth.writer import (  # noqa: F401
                                    SYNTHETIC_MARKER,
                                    _write_wfdb,
                                    config_json,
                                    is_synthetic,
                                    synthesize,
)
