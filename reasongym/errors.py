"""Errors shared across packages (core, envs, trainers)."""


class DatasetUnavailable(RuntimeError):
    """A dataset-backed env could not load its data; the message says which option fixes it
    (`data_files=` for local files, `source="sample"` for the built-in sample)."""


class VerifierTimeout(TimeoutError):
    """A verifier's own time bound ran out. `Env.score` turns it into Outcome.TIMEOUT: the one outcome
    that may depend on the machine's speed (the testing kit's determinism check allows for it)."""


class UnsafeScoringRefused(RuntimeError):
    """Scoring was asked of an env whose scorer runs model text as code (its `executes_model_text`)
    and the env was made without `allow_unsafe_scoring=True`. A configuration error, raised before any
    completion is read: never an outcome of model output."""
