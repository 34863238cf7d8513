"""Model architectures and their registry (``create_model``)."""
