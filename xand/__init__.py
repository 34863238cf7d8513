"""XAND review: explainable lead-wise 12-lead ECG classification (research grade, not a medical device).

The core package is pure and UI-free: every public function works on arrays with documented shapes and
units (``ecg: (12, T) float32 mV`` at ``sampling_rate`` Hz). The Streamlit app in ``app.py``/``pages/``
and the command lines (``python -m xand``, ``python -m train``) are thin layers over it.
"""

from xand.constants import HEADS, LEADS, SUPERCLASSES

__version__ = "0.1.0"

__all__ = ["HEADS", "LEADS", "SUPERCLASSES", "__version__"]
