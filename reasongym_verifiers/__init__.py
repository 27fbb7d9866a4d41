"""The name verifiers loads: `[env.taskset] id = "reasongym-verifiers"` imports this module (verifiers maps a
taskset id to a top-level module and takes the Taskset subclass in its `__all__`). The code lives in
`reasongym.adapters.verifiers`."""

from reasongym.adapters.verifiers import ReasongymTask, ReasongymTaskset, ReasongymTasksetConfig

__all__ = ["ReasongymTaskset", "ReasongymTask", "ReasongymTasksetConfig"]
