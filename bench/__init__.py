"""Benchmarks of Sovereign Orchestrator: `python -m bench` (or `make bench`).

Every figure is a ratio against a baseline measured in the same run, with the absolute numbers
beside it; medians of several runs, because shared machines are noisy.
"""
