"""Any reasongym env as a verifiers taskset, for `vf-eval` and prime-rl (verifiers v1, `import verifiers.v1`).

verifiers loads a taskset by id: the id names a module exporting a `Taskset` subclass in `__all__`, so

    [env.taskset]
    id = "reasongym-verifiers"
    env = "countdown-3to4"          # any registered id; env_kwargs, split, n, seed as below

or in Python: `verifiers.v1.utils.loaders.load_taskset(ReasongymTasksetConfig(env="gsm8k"))`. Each task
carries the env id, its keyword arguments and the reasongym Task as JSON, so scoring needs nothing but the
task itself. The reward is the env's Score (through its scoring engine: never raises, bounded in time);
its components and outcome are recorded as metrics beside it. Importing this module needs `verifiers`;
nothing else in reasongym imports it.
"""

from __future__ import annotations

import json
from typing import Any

import verifiers.v1 as vf

from reasongym.adapters.verl import chat_messages, env_for
from reasongym.types import Task


class ReasongymTasksetConfig(vf.TasksetConfig):
    """Which tasks load: `--env.taskset.env gsm8k --env.taskset.n 500` on verifiers' command line."""

    id: str = "reasongym-verifiers"
    env: str = "countdown-3to4"
    env_kwargs: dict[str, Any] = {}
    split: str = "train"
    n: int = 1000
    seed: int = 0


class ReasongymData(vf.TaskData):
    env_id: str
    env_kwargs: str = "{}"  # JSON, so every task of every env has one schema
    task: str  # reasongym Task as JSON: the task round-trips exactly


class ReasongymTask(vf.Task[ReasongymData]):
    @property
    def key(self) -> str:
        return f"{self.data.env_id}:{self.data.id}"

    def score_reply(self, reply: str):
        env = env_for(self.data.env_id, {"env_kwargs": self.data.env_kwargs})
        return env.score_batch([reply], [Task.from_json(self.data.task)])[0]

    @vf.reward
    async def reasongym(self, trace: Any) -> float:
        """The env's reward for the final reply; components and outcome go to the trace's metrics."""
        score = self.score_reply(trace.last_reply)
        trace.record_metrics({**{f"reasongym/{k}": float(v) for k, v in score.components.items()},
                              "reasongym/correct": float(score.correct)})
        trace.info["reasongym_outcome"] = score.outcome.value
        return float(score.reward)


class ReasongymTaskset(vf.Taskset[ReasongymTask, ReasongymTasksetConfig]):
    def load(self):
        config = self.config
        env = env_for(config.env, {"env_kwargs": config.env_kwargs})
        kwargs = json.dumps(config.env_kwargs, sort_keys=True)
        for task in env.tasks(config.split, n=config.n, seed=config.seed):
            yield ReasongymTask(ReasongymData(id=task.id, name=task.id, prompt=chat_messages(env.prompt(task)),
                                              env_id=config.env, env_kwargs=kwargs, task=task.to_json()),
                                config.task)


__all__ = ["ReasongymTaskset"]
