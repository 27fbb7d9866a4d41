"""An env from command-line arguments: `--env ID --env-kwargs JSON --reward-mode M`.

Every command that takes an env (python -m reasongym ..., every trainer, the tests)
builds it here, so the JSON rules, the error messages and the sample-data fallback
are the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from reasongym import registry
from reasongym.errors import DatasetUnavailable


class EnvArgsError(ValueError):
    """The env arguments are wrong; the message says what to change."""


def parse_env_kwargs(text: str | dict[str, Any] | None) -> dict[str, Any]:
    """`--env-kwargs` as a dict: a JSON object (a dict from a YAML recipe passes through)."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EnvArgsError(f"--env-kwargs must be a JSON object, e.g. '{{\"counts\": [3]}}' ({exc})") from None
    if not isinstance(value, dict):
        raise EnvArgsError(f"--env-kwargs must be a JSON object, e.g. '{{\"counts\": [3]}}', got {text!r}")
    return value


def import_env_modules(modules: str | list[str] | None) -> None:
    """`--import mytasks[,other]`: import the modules that register a user's envs (the current directory is on
    the path, as for `python -c`), so a task defined in the user's own file works with every command."""
    import importlib
    import os
    import sys

    names = modules.split(",") if isinstance(modules, str) else list(modules or [])
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's module: say which and why
            raise EnvArgsError(f"--import {name}: {type(exc).__name__}: {exc}") from None


def make_env(env_id: str, env_kwargs: str | dict[str, Any] | None = None, reward_mode: str | None = None,
             sample_fallback: bool = True, warn: Callable[[str], None] | None = None):
    """The env the arguments name.

    A dataset env whose hub is unreachable falls back to its built-in sample
    (`source="sample"`) when the user chose no source, and says so through `warn`.
    Bad keyword arguments become an EnvArgsError that names the env.
    """
    if not env_id:
        raise EnvArgsError("--env is required (python -m reasongym list shows the ids)")
    kwargs = parse_env_kwargs(env_kwargs)
    if reward_mode:
        kwargs["reward_mode"] = reward_mode
    try:
        return registry.make(env_id, **kwargs)
    except DatasetUnavailable as exc:
        if not sample_fallback or "source" in kwargs or "data_files" in kwargs:
            raise
        if warn is not None:
            warn(f"{env_id}: data unavailable ({str(exc).split(' (')[0]}); using source='sample'")
        return registry.make(env_id, **{**kwargs, "source": "sample"})
    except TypeError as exc:
        raise EnvArgsError(f"bad --env-kwargs for {env_id}: {exc}") from None
