"""Datasets and their preparation: PTB-XL (+ PTB-XL+ fiducials), CinC, LUDB, uploads, the synthetic set, download, preprocessing and the memory-mapped prepared array."""
