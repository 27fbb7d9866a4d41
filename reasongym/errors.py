"""Errors shared across packages (core, envs, trainers)."""


class DatasetUnavailable(RuntimeError):
    """A dataset-backed env could not load its data; the message says which option fixes it
    (`data_files=` for local files, `source="sample"` for the built-in sample)."""


class VerifierTimeout(TimeoutError):
    """A verifier's own time bound ran out. `Env.score` turns it into Outcome.TIMEOUT: the one outcome
    that may depend on the machine's speed (the testing kit's determinism check allows for it)."""
