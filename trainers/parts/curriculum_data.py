"""Curriculum training data for TRL: an endless stream whose level mix follows a scheduler.

TRL repeats each streamed row `num_generations` times, so every completion of a
group sees the same task. Each rank draws from the same seeded stream and feeds
the scheduler the same (all-reduced) outcomes, so the streams stay identical
across ranks and groups stay whole.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from transformers import TrainerCallback

from reasongym.adapters.trl import render_prompt
from reasongym.curriculum import Curriculum, make_curriculum
from reasongym.env import Env
from reasongym.types import Score, Task


def level_pools(tasks: list[Task]) -> dict[Any, list[Task]]:
    pools: dict[Any, list[Task]] = defaultdict(list)
    for task in tasks:
        pools[task.difficulty].append(task)
    if None in pools:
        raise ValueError("curriculum training needs a difficulty on every task (this env's tasks have none)")
    return dict(sorted(pools.items()))


def build_curriculum(kind: str, pools: dict[Any, list[Task]], total_steps: int, band: tuple[float, float],
                     window: int) -> Curriculum:
    shares = {level: float(len(tasks)) for level, tasks in pools.items()}
    extra = {"band": band, "window": window} if kind == "adaptive" else {}
    return make_curriculum(kind, list(pools), total_steps=total_steps, shares=shares, **extra)


def curriculum_dataset(env: Env, pools: dict[Any, list[Task]], scheduler: Curriculum, tokenizer: Any, seed: int):
    """A `datasets.IterableDataset` drawing a level from the scheduler, then a task of that level."""
    import datasets

    def rows():
        rng = random.Random(seed)
        while True:
            level = scheduler.sample(rng)
            task = rng.choice(pools[level])
            yield {"prompt": render_prompt(env, task, tokenizer), "task": task.to_json(), "task_id": task.id,
                   "split": "train", "difficulty": float(level)}

    return datasets.IterableDataset.from_generator(rows)


def scheduler_feedback(scheduler: Curriculum):
    """`on_scores` hook for the reward adapter: successes per level, summed over ranks, into the scheduler."""

    def on_scores(tasks: list[Task], scores: list[Score]) -> None:
        levels = list(scheduler.levels)
        counts = [[0, 0] for _ in levels]
        for task, score in zip(tasks, scores):
            if task.difficulty in levels:
                slot = counts[levels.index(task.difficulty)]
                slot[0] += int(score.correct)
                slot[1] += 1
        counts = _all_reduce(counts)
        for level, (wins, total) in zip(levels, counts):
            if total:
                scheduler.update(level, [True] * wins + [False] * (total - wins))

    return on_scores


def _all_reduce(counts: list[list[int]]) -> list[list[int]]:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return counts
    tensor = torch.tensor(counts, dtype=torch.long)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


class CurriculumCallback(TrainerCallback):
    """Keeps the scheduler's step in sync and logs its weights and frontier."""

    def __init__(self, scheduler: Curriculum):
        self.scheduler = scheduler

    def on_step_begin(self, args, state, control, **kwargs):
        self.scheduler.set_step(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return
        for level, weight in self.scheduler.weights().items():
            logs[f"curriculum/weight/{level}"] = weight
        frontier = getattr(self.scheduler, "frontier", None)
        if frontier is not None:
            logs["curriculum/frontier_level"] = float(self.scheduler.levels[frontier])
