"""Small exact tests for honest before/after claims on the same held-out tasks."""

from __future__ import annotations

import math
from dataclasses import dataclass


def _upper_tail(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2)."""
    if trials == 0:
        return 1.0
    return min(1.0, sum(math.comb(trials, k) for k in range(successes, trials + 1)) / 2**trials)


@dataclass(frozen=True)
class PairedTest:
    name: str
    n: int
    improved: int
    worsened: int
    p_value: float  # one-sided exact: P(X >= improved | X ~ Bin(improved + worsened, 1/2))

    def describe(self) -> str:
        return (f"{self.name} on {self.n} held-out tasks: {self.improved} better, {self.worsened} worse, "
                f"one-sided p = {self.p_value:.2g}")


def mcnemar(before: list[bool], after: list[bool]) -> PairedTest:
    """Exact McNemar test: one binary outcome per task, before and after."""
    if len(before) != len(after):
        raise ValueError("before and after must score the same items")
    improved = sum(1 for b, a in zip(before, after) if a and not b)
    worsened = sum(1 for b, a in zip(before, after) if b and not a)
    return PairedTest("McNemar exact test", len(before), improved, worsened, _upper_tail(improved, improved + worsened))


def sign_test(before: list[int], after: list[int]) -> PairedTest:
    """Exact sign test on per-task correct counts (k samples per task, before and after).

    Tasks are the independent units: samples of one task share it, so they are not
    paired one by one (that would overstate the evidence)."""
    if len(before) != len(after):
        raise ValueError("before and after must score the same tasks")
    improved = sum(1 for b, a in zip(before, after) if a > b)
    worsened = sum(1 for b, a in zip(before, after) if a < b)
    return PairedTest("sign test on per-task correct counts", len(before), improved, worsened,
                      _upper_tail(improved, improved + worsened))


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound near 0 and 1, where the normal one is not)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)
