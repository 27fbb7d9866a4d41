"""reasongym: verifiable reasoning tasks as Gymnasium environments.

    import reasongym as rg
    env = rg.make("countdown-3to4")
    obs, info = env.reset(seed=7)
    obs, reward, terminated, truncated, info = env.step(completion)

Importing this package imports no torch/trl; envs load through the
`reasongym.envs` entry-point group (built-ins included).
"""

from reasongym.env import Env
from reasongym.registry import EnvSpec, UnknownEnvError, list_envs, make, register, spec
from reasongym.templates import PromptTemplate
from reasongym.types import Outcome, Score, Task

__version__ = "0.2.0"

__all__ = [
    "Env",
    "EnvSpec",
    "Outcome",
    "PromptTemplate",
    "Score",
    "Task",
    "UnknownEnvError",
    "list_envs",
    "make",
    "register",
    "spec",
]

# Register every installed env id (strings only: no env module is imported here),
# so gymnasium.make("reasongym/<id>") works right after `import reasongym`.
from reasongym import registry as _registry  # noqa: E402

_registry.load_plugins()
