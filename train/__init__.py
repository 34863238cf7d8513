"""``python -m train``: the training entry point (a thin layer over ``xand.prepare`` and ``xand.training``)."""
