"""Benchmarks of Kefu's performance figures: one script per figure, each printing JSON.

Run them from the repository root, e.g. `.venv/bin/python -m benchmarks.units_list`;
docs/performance.md lists the figures, the commands and the last measured results.
"""
