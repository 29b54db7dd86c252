"""Offline evaluation: scenario suites, metrics, baselines and benchmarks."""
