"""Judging models: metrics, the run report with its figures, and comparison of runs."""
