"""The env registry: ids -> entry points, plus plugin discovery.

Built-in and third-party envs arrive the same way: a package lists a callable
under the `reasongym.envs` entry-point group, and the registry calls it the
first time anyone asks for an id it does not know. Importing `reasongym`
therefore imports no env code (and no torch).
"""

from __future__ import annotations

import difflib
import importlib
import threading
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Callable

ENTRY_POINT_GROUP = "reasongym.envs"
GYMNASIUM_NAMESPACE = "reasongym"


class UnknownEnvError(KeyError):
    """Raised for an id nobody registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class EnvSpec:
    """What `register` recorded for an id: how to build the env and with which default kwargs.

    `make(id, **overrides)` builds `entry_point(**{**kwargs, **overrides})` and stores the spec,
    with the kwargs it was built with, on `env.spec`, so a pool worker can rebuild the same env.
    `nondeterministic` and `max_episode_steps` exist because gymnasium's own checker reads them.
    """

    id: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = ""  # ids "family/name" (e.g. reasoning-gym/countdown); `check --all` leaves large families out
    # read by gymnasium's env checker, which expects its own EnvSpec fields
    nondeterministic: bool = False
    max_episode_steps: int = 1

    def make(self, **overrides: Any):
        """Build a fresh env from this spec (gymnasium's checker calls this)."""
        return make(self.id, **{**self.kwargs, **overrides})

    @property
    def entry_point_name(self) -> str:
        ep = self.entry_point
        return ep if isinstance(ep, str) else f"{ep.__module__}:{ep.__qualname__}"


_registry: dict[str, EnvSpec] = {}
_plugins_loaded = False
_plugin_errors: dict[str, str] = {}
_lock = threading.RLock()


def register(
    id: str, entry_point: str | Callable[..., Any], description: str = "", family: str = "", **default_kwargs: Any
) -> EnvSpec:
    """Register an env id. `entry_point` is "pkg.module:Class" or any callable returning an Env.

    An id is a name, or `family/name` for envs that come as a family (`family` then names it)."""
    if not id or not isinstance(id, str) or id.count("/") > (1 if family else 0) or (family and not id.startswith(family + "/")):
        raise ValueError(f"env id must be a non-empty string without '/' (or 'family/name' with family=), got {id!r}")
    if id.startswith(GYMNASIUM_NAMESPACE + "/"):
        raise ValueError(f"env ids must not start with {GYMNASIUM_NAMESPACE + '/'!r}, got {id!r}")
    if isinstance(entry_point, str) and ":" not in entry_point:
        raise ValueError(f"entry_point must look like 'package.module:Class', got {entry_point!r}")
    spec = EnvSpec(id=id, entry_point=entry_point, kwargs=dict(default_kwargs), description=description, family=family)
    with _lock:
        _registry[id] = spec
    _register_with_gymnasium(id)
    return spec


def deregister(id: str) -> None:
    with _lock:
        _registry.pop(id, None)


def spec(id: str) -> EnvSpec:
    id = _strip_namespace(id)
    with _lock:
        if id not in _registry:
            load_plugins()
        if id not in _registry:
            raise UnknownEnvError(_unknown_message(id))
        return _registry[id]


def list_envs() -> list[EnvSpec]:
    load_plugins()
    with _lock:
        return [_registry[k] for k in sorted(_registry)]


def make(id: str, **overrides: Any):
    """Build the env registered as `id`, with `overrides` on top of its default kwargs.

    `allow_unsafe_scoring=True` is taken by every env: consent to score an env whose scorer runs model
    text as code (its `executes_model_text`); it travels with the spec, so pool workers keep it."""
    env_spec = spec(id)
    kwargs = {**env_spec.kwargs, **overrides}
    factory = _resolve(env_spec.entry_point)
    allow_unsafe = kwargs.pop("allow_unsafe_scoring", False)
    if not isinstance(allow_unsafe, bool):
        raise ValueError(f"allow_unsafe_scoring must be true or false, got {allow_unsafe!r}")
    env = factory(**kwargs)
    if not _is_reasongym_env(env):
        raise TypeError(f"entry point of {id!r} returned {type(env).__name__}, not a reasongym.Env")
    if allow_unsafe:
        env.allow_unsafe_scoring = True
        kwargs["allow_unsafe_scoring"] = True
    env.spec = replace(env_spec, kwargs=kwargs)
    return env


def load_plugins(force: bool = False) -> None:
    """Call every `reasongym.envs` entry point once (built-ins included)."""
    global _plugins_loaded
    with _lock:
        if _plugins_loaded and not force:
            return
        _plugins_loaded = True
        points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        for ep in points:
            try:
                hook = ep.load()
                if callable(hook):
                    hook()
            except Exception as exc:  # a broken plugin must not hide the others
                _plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
        if not any(ep.value == BUILTIN_ENTRY_POINT for ep in points):
            _register_builtins_from_source_tree()


BUILTIN_ENTRY_POINT = "envs:register_builtin_envs"


def _register_builtins_from_source_tree() -> None:
    """A checkout on PYTHONPATH without `pip install` has no entry-point metadata:
    register the built-ins through the same hook the entry point names."""
    try:
        hook = _resolve(BUILTIN_ENTRY_POINT)
    except (ImportError, AttributeError):
        return
    hook()


def plugin_errors() -> dict[str, str]:
    return dict(_plugin_errors)


def _resolve(entry_point: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(entry_point):
        return entry_point
    module_name, _, attr = entry_point.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _strip_namespace(id: str) -> str:
    prefix = GYMNASIUM_NAMESPACE + "/"
    return id[len(prefix) :] if id.startswith(prefix) else id  # no registered id starts with it (register refuses)


def _unknown_message(id: str) -> str:
    known = sorted(_registry)
    close = difflib.get_close_matches(id, known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    broken = f" (plugins that failed to load: {', '.join(sorted(_plugin_errors))})" if _plugin_errors else ""
    return (f"no env registered as {id!r}.{hint} Run `python -m reasongym list` to see all {len(known)} envs{broken}; "
            "an env registered in your own module needs `--import MODULE` (or a `reasongym.envs` entry point).")


def _gymnasium_entry(_rg_id: str, **kwargs: Any):
    return make(_rg_id, **kwargs)


def _register_with_gymnasium(id: str) -> None:
    """Make `gymnasium.make("reasongym/<id>")` work; the import is cheap (no torch)."""
    import gymnasium

    gym_id = f"{GYMNASIUM_NAMESPACE}/{id.replace('/', '.')}"  # gymnasium names hold no '/'

    if gym_id in gymnasium.registry:
        return
    gymnasium.register(
        id=gym_id,
        entry_point=_gymnasium_entry,
        kwargs={"_rg_id": id},
        disable_env_checker=True,  # our own checker knows text spaces; see docs/architecture.md
        order_enforce=True,
    )


def rebuild(id: str, kwargs: dict[str, Any]):
    """Unpickle an env as a fresh `make` of its spec (pool workers, spawn start method)."""
    return make(_strip_namespace(id), **{k: v for k, v in kwargs.items() if k != "_rg_id"})


def _is_reasongym_env(obj: Any) -> bool:
    """Structural check, so the registry needs no import of reasongym.env (which imports the registry)."""
    return any(cls.__module__ == "reasongym.env" and cls.__name__ == "Env" for cls in type(obj).__mro__)
