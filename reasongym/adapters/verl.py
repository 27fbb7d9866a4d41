"""reasongym verifiers inside verl: a `compute_score` for `reward.custom_reward_function`, and the rows
verl's trainer reads (`python -m reasongym export ENV --format verl`).

verl config:

    reward:
      custom_reward_function:
        path: <site-packages>/reasongym/adapters/verl.py    # python -c "import reasongym.adapters.verl as v; print(v.__file__)"
        name: compute_score

A row: `data_source` is the env id, `prompt` the chat messages, `reward_model.ground_truth` the task
as JSON (so the task round-trips exactly), `extra_info` the env's keyword arguments, split and index.
Scoring goes through the env's scoring engine (a forked pool with hard timeouts for verifiers that are
not cheap), never raises, and returns verl's dict: `score` plus the Score's components and outcome.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

ABILITY = {"countdown": "math", "gsm8k": "math", "math": "math", "humaneval": "code", "mbpp": "code"}


@lru_cache(maxsize=64)
def _env(env_id: str, kwargs_json: str):
    from reasongym.registry import make

    return make(env_id, **json.loads(kwargs_json))


def env_for(data_source: str, extra_info: dict[str, Any] | None = None):
    """The env a row names (cached per id and keyword arguments)."""
    kwargs = (extra_info or {}).get("env_kwargs") or {}
    if isinstance(kwargs, str):  # rows store them as a JSON string: one parquet schema for every env
        kwargs = json.loads(kwargs or "{}")
    return _env(data_source, json.dumps(kwargs, sort_keys=True))


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """verl's custom reward function: the env's Score for one response, as {"score": reward, ...}."""
    from reasongym.types import Task

    env = env_for(data_source, extra_info)
    task = Task.from_json(ground_truth)
    score = env.score_batch([solution_str], [task])[0]
    return {"score": float(score.reward), "outcome": score.outcome.value, "correct": float(score.correct),
            **{f"reward_{name}": float(value) for name, value in score.components.items()}}


def chat_messages(prompt: Any) -> list[dict[str, str]]:
    """The chat an engine sends: a text prompt as one user message; a trailing assistant pre-fill left out
    (engines add the generation prompt themselves; the env's scoring prefix still restores `<think>`)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt if not (m is prompt[-1] and m["role"] == "assistant")]


def rows(env, split: str, n: int | None, seed: int | None = 0, env_kwargs: dict[str, Any] | None = None
         ) -> list[dict[str, Any]]:
    """verl's parquet rows for `n` tasks of `split` (a trailing assistant pre-fill is left out: verl adds the
    generation prompt itself, and the env's scoring prefix still puts `<think>` in front of the response)."""
    from reasongym.templates import plain_text

    out = []
    family = env.env_id.split("/")[0].split("-")[0]
    for index, task in enumerate(env.tasks(split, n=n, seed=seed)):
        prompt = env.prompt(task)
        messages = chat_messages(prompt)
        out.append({
            "data_source": env.env_id, "prompt": messages, "ability": ABILITY.get(family, "reasoning"),
            "reward_model": {"style": "rule", "ground_truth": task.to_json()},
            "extra_info": {"split": split, "index": index, "task_id": task.id,
                           "env_kwargs": json.dumps(env_kwargs or {}), "question": plain_text(prompt)[:2000]},
        })
    return out
