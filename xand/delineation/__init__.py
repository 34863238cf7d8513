"""Fiducial points from an ECG (delineation methods) and the clinical masks built from them."""
