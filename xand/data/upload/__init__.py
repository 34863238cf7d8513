"""ECGs a reviewer uploads: parsed from memory, validated, and fitted to a trained run's input window.

Accepted uploads (one record at a time):

* a WFDB record: ``<name>.hea`` + the signal file it names (``.dat``, any WFDB format ``wfdb`` reads);
* a PhysioNet/CinC Challenge record: ``<name>.hea`` + ``<name>.mat`` (a ``val`` matrix in digital units,
  gains and units in the header; Reyna et al. 2021);
* a CSV (``.csv``/``.txt``) or NumPy (``.npy``) array of the 12 leads, ``(12, T)`` or ``(T, 12)``, with a
  sampling rate and units (mV or µV) stated by the reviewer. A CSV may carry a header row of lead names
  (then columns are reordered by name); otherwise leads are in storage order I, II, III, aVR, aVL, aVF,
  V1-V6.

Everything is checked before anything is shown, and every problem is one ``DataError`` naming the file,
the value and what was expected: too large, not ECG data at all (an image or archive renamed), a header
without its signal file or a signal file that does not belong to the header (names, sizes, checksums), a
wrong lead count or unknown lead names, no or an implausible sampling rate, non-numeric or NaN samples, an
implausible amplitude (wrong units) or flat leads. Files are parsed from memory; WFDB headers, which the
``wfdb`` reader needs on disk, go to a private temporary folder that is deleted before the call returns.
Nothing is kept unless the caller saves it (:func:`save_upload`).

References
----------
Goldberger A.L. et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220 (2000)
(WFDB format, checksums).
Reyna M.A. et al. Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing in
Cardiology Challenge 2021. Computing in Cardiology 48 (2021) (Challenge ``.hea`` + ``.mat`` records).
Kligfield P. et al. Recommendations for the standardization and interpretation of the electrocardiogram.
Circulation 115:1306-1324 (2007) (surface ECG amplitudes are a few mV at most).
"""

from __future__ import annotations

from xand.data.upload.common import (  # noqa: F401
           ACCEPTED,
           UNITS,
           UploadConfig,
           UploadedECG,
           signal_digest,
)
from xand.data.upload.formats import (  # noqa: F401
           UPLOAD_EXTENSIONS,
           UPLOAD_FORMATS,
           UploadFormat,
           parse_upload,
)
from xand.data.upload.model_view import input_seconds, model_window, predict_upload  # noqa: F401
from xand.data.upload.save import save_upload  # noqa: F401

__all__ = ["ACCEPTED", "UNITS", "UPLOAD_FORMATS", "UPLOAD_EXTENSIONS", "UploadConfig", "UploadFormat",
           "UploadedECG", "parse_upload", "signal_digest", "model_window", "input_seconds", "predict_upload",
           "save_upload"]
