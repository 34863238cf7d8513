"""Benchmarks (``python -m xand bench WHAT``): each module's ``benchmark(args) -> dict`` measures one stage
side by side with the obvious alternative, in one run. They sit above the modules they measure."""
