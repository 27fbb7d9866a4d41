"""Evaluation suites: several benchmarks in one table (python -m trainers.evaluate --suite NAME)."""
