"""Countdown: reach a target with each given number exactly once (TinyZero / Mini-R1)."""
