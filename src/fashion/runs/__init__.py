"""A run directory: its files, read and checked in one place, and the plan that spends a
run's budget."""
