"""Procedural Countdown tasks with the distribution of Jiayi-Pan/Countdown-Tasks-3to4.

Task i of split s under seed k comes from its own RNG keyed on (k, s, i), so any
task can be rebuilt alone. Draw a count of numbers; then a target uniform in the
target range, numbers uniform in the number range (repeats allowed); redraw
until the target is reachable with integer, non-negative steps. A candidate
belongs to exactly one split by a hash of its content (numbers as a multiset and
target), so train and test never share a task whatever the seeds and indices.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from envs.countdown.solver import ALL_OPS, solvable

MAX_DRAWS = 10_000


@dataclass(frozen=True)
class CountdownParams:
    counts: tuple[int, ...] = (3, 4)
    num_range: tuple[int, int] = (1, 99)
    target_range: tuple[int, int] = (10, 100)
    operators: str = ALL_OPS
    test_permille: int = 100  # share of the task space reserved for the test split

    def fits(self, nums: list[int], target: int) -> bool:
        """Does a given task (a dataset row) lie in this parameter space (count and ranges)?"""
        lo, hi = self.num_range
        return (len(nums) in self.counts and all(lo <= n <= hi for n in nums)
                and self.target_range[0] <= target <= self.target_range[1])

    def __post_init__(self) -> None:
        if not self.counts or min(self.counts) < 2 or max(self.counts) > 6:
            raise ValueError(f"counts must lie in 2..6, got {self.counts}")
        lo, hi = self.num_range
        if not 0 <= lo <= hi:
            raise ValueError(f"num_range must satisfy 0 <= low <= high, got {self.num_range}")
        if not 0 <= self.target_range[0] <= self.target_range[1]:
            raise ValueError(f"bad target_range {self.target_range}")
        if not self.operators or set(self.operators) - set(ALL_OPS):
            raise ValueError(f"operators must be a non-empty subset of {ALL_OPS!r}, got {self.operators!r}")
        if not 0 < self.test_permille < 1000:
            raise ValueError("test_permille must lie in 1..999")


def _rng(seed: int, split: str, index: int) -> random.Random:
    digest = hashlib.blake2b(f"countdown|{seed}|{split}|{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def split_of(nums: list[int], target: int, test_permille: int) -> str:
    key = ",".join(map(str, sorted(nums))) + f"={target}"
    bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % 1000
    return "test" if bucket < test_permille else "train"


def generate(params: CountdownParams, split: str, index: int, seed: int) -> tuple[list[int], int]:
    """The (numbers, target) of task `index` in `split` under `seed`."""
    rng = _rng(seed, split, index)
    lo, hi = params.num_range
    t_lo, t_hi = params.target_range
    count = rng.choice(params.counts)  # fixed per task, so redraws keep the 3/4 mix even
    for _ in range(MAX_DRAWS):
        target = rng.randint(t_lo, t_hi)
        nums = [rng.randint(lo, hi) for _ in range(count)]
        if solvable(nums, target, params.operators) and split_of(nums, target, params.test_permille) == split:
            return nums, target
    raise RuntimeError(
        f"no solvable countdown task found in {MAX_DRAWS} draws for {params}: widen the ranges or allow more operators"
    )
