"""Curricula over difficulty levels: which level the next task comes from.

    fixed     every level by its share of the task pool (no curriculum)
    linear    the sampled level rises with the training step, from easiest to hardest
    adaptive  success per level over a sliding window; levels whose success lies in
              the target band get the weight, mastered levels are replayed lightly,
              the frontier moves up when its level is mastered and back down when
              the level below it is no longer mastered

GRPO learns nothing from groups whose completions all score the same
(`frac_reward_zero_std`); the adaptive band keeps tasks where a group is likely
to disagree. Pure Python: the trainers feed outcomes in and draw levels out.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Hashable, Sequence

Level = Hashable


class Curriculum:
    """Base: weights over `levels` (sorted easiest first) that may change with step and outcomes."""

    name = "fixed"

    def __init__(self, levels: Sequence[Level], shares: dict[Level, float] | None = None):
        if not levels:
            raise ValueError("a curriculum needs at least one level")
        self.levels = list(levels)
        self.shares = shares or {level: 1.0 for level in self.levels}
        self.step = 0

    def weights(self) -> dict[Level, float]:
        total = sum(self.shares.get(level, 0.0) for level in self.levels) or 1.0
        return {level: self.shares.get(level, 0.0) / total for level in self.levels}

    def sample(self, rng: random.Random) -> Level:
        weights = self.weights()
        return rng.choices(self.levels, weights=[weights[level] for level in self.levels])[0]

    def set_step(self, step: int) -> None:
        self.step = step

    def update(self, level: Level, successes: Sequence[bool]) -> None:
        """Record outcomes for `level` (no-op for non-adaptive curricula)."""

    def state(self) -> dict:
        return {"name": self.name, "step": self.step, "weights": {str(k): v for k, v in self.weights().items()}}


class LinearCurriculum(Curriculum):
    """The target level moves linearly from the first to the last over `total_steps`;
    neighbouring levels share the weight (a triangle of width one level)."""

    name = "linear"

    def __init__(self, levels: Sequence[Level], total_steps: int):
        super().__init__(levels)
        self.total_steps = max(1, total_steps)

    @property
    def position(self) -> float:
        return min(1.0, self.step / self.total_steps) * (len(self.levels) - 1)

    def weights(self) -> dict[Level, float]:
        raw = {level: max(0.0, 1.0 - abs(i - self.position)) for i, level in enumerate(self.levels)}
        total = sum(raw.values())
        return {level: w / total for level, w in raw.items()}


@dataclass
class _Window:
    size: int
    outcomes: deque = field(default_factory=deque)

    def add(self, values: Sequence[bool]) -> None:
        for value in values:
            self.outcomes.append(bool(value))
            while len(self.outcomes) > self.size:
                self.outcomes.popleft()

    def rate(self, min_samples: int) -> float | None:
        return sum(self.outcomes) / len(self.outcomes) if len(self.outcomes) >= min_samples else None


class AdaptiveCurriculum(Curriculum):
    name = "adaptive"

    def __init__(self, levels: Sequence[Level], band: tuple[float, float] = (0.2, 0.8), window: int = 256,
                 min_samples: int = 32, replay: float = 0.1, too_hard: float = 0.25):
        super().__init__(levels)
        low, high = band
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"band must satisfy 0 <= low < high <= 1, got {band}")
        self.band = (low, high)
        self.min_samples = min_samples
        self.replay = replay
        self.too_hard = too_hard
        self.windows = {level: _Window(window) for level in self.levels}
        self.frontier = 0

    def rate(self, level: Level) -> float | None:
        return self.windows[level].rate(self.min_samples)

    def mastered(self, level: Level) -> bool:
        rate = self.rate(level)
        return rate is not None and rate > self.band[1]

    def update(self, level: Level, successes: Sequence[bool]) -> None:
        if level not in self.windows:
            return
        self.windows[level].add(successes)
        current = self.levels[self.frontier]
        if self.mastered(current) and self.frontier < len(self.levels) - 1:
            self.frontier += 1
        elif self.frontier > 0 and level == self.levels[self.frontier - 1]:
            below = self.rate(level)
            if below is not None and below < self.band[0]:
                self.frontier -= 1  # the level below collapsed: step back

    def weights(self) -> dict[Level, float]:
        low, high = self.band
        raw: dict[Level, float] = {}
        for i, level in enumerate(self.levels):
            if i > self.frontier:
                raw[level] = 0.0
                continue
            rate = self.rate(level)
            if rate is None or low <= rate <= high:
                raw[level] = 1.0
            elif rate > high:
                raw[level] = self.replay
            else:
                raw[level] = self.too_hard
        total = sum(raw.values())
        return {level: w / total for level, w in raw.items()}

    def state(self) -> dict:
        return {**super().state(), "frontier": str(self.levels[self.frontier]),
                "rates": {str(level): self.rate(level) for level in self.levels}}


def make_curriculum(kind: str, levels: Sequence[Level], total_steps: int = 1,
                    shares: dict[Level, float] | None = None, **kwargs) -> Curriculum:
    if kind == "fixed":
        return Curriculum(levels, shares)
    if kind == "linear":
        return LinearCurriculum(levels, total_steps)
    if kind == "adaptive":
        return AdaptiveCurriculum(levels, **kwargs)
    raise ValueError(f"curriculum must be fixed, linear or adaptive, got {kind!r}")
