"""``python -m train``: the training entry point (a thin layer over ``xand.data.prepare`` and ``xand.training.trainer``)."""
