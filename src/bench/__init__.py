"""Benchmarks (speed, quality, bound): ``python -m src.bench --help``."""
