"""Benchmarks: scripts run with ``python -m tests.bench.<name>``, not collected as tests."""
