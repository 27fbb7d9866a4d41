"""Errors shared across packages (core, envs, trainers)."""


class DatasetUnavailable(RuntimeError):
    """A dataset-backed env could not load its data; the message says which option fixes it
    (`data_files=` for local files, `source="sample"` for the built-in sample)."""
