"""Measurements of fashion on this machine, each through the product's own code paths.

Run from the repository root as modules, e.g. `python -m benchmarks.speed --quick`; each
module's docstring says what it measures and how long it takes.
"""
