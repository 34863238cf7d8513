"""Training heads on a prepared array; a trained run loaded as a ``Predictor``."""
