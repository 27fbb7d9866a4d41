"""Policies built here without downloads: the tiny models of the tests and the embedded default policy."""
