"""Countdown solver: is a target reachable, and with which expression.

Rules of the game as TinyZero's data obeys them: each number used exactly once,
operators from the allowed set, every intermediate result a non-negative integer
(so `-` only when left >= right, `/` only when it divides exactly).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

ALL_OPS = "+-*/"


@lru_cache(maxsize=500_000)
def _combine(a: int, b: int, ops: str) -> frozenset[int]:
    out: set[int] = set()
    if "+" in ops:
        out.add(a + b)
    if "*" in ops:
        out.add(a * b)
    if "-" in ops:
        out.add(abs(a - b))
    if "/" in ops:
        if b and a % b == 0:
            out.add(a // b)
        if a and b % a == 0:
            out.add(b // a)
    return frozenset(out)


@lru_cache(maxsize=200_000)
def reachable(numbers: tuple[int, ...], ops: str = ALL_OPS) -> frozenset[int]:
    """Every value an expression over all of `numbers` (sorted tuple) can take."""
    if len(numbers) == 1:
        return frozenset(numbers)
    if len(numbers) == 2:
        return _combine(numbers[0], numbers[1], ops)
    values: set[int] = set()
    for left, right in _splits(numbers):
        for x in reachable(left, ops):
            for y in reachable(right, ops):
                values |= _combine(x, y, ops)
    return frozenset(values)


def _splits(numbers: tuple[int, ...]):
    """Unordered splits of a sorted multiset into two non-empty sorted parts."""
    n = len(numbers)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for size in range(1, n // 2 + 1):
        for picked in combinations(range(n), size):
            left = tuple(numbers[i] for i in picked)
            right = tuple(numbers[i] for i in range(n) if i not in picked)
            key = (left, right) if left <= right else (right, left)
            if key not in seen:
                seen.add(key)
                yield key


def _partners(x: int, target: int, ops: str) -> list[int]:
    """Values y with x (op) y == target or y (op) x == target."""
    out: list[int] = []
    if "+" in ops and target >= x:
        out.append(target - x)
    if "-" in ops:
        out.append(x + target)
        if x >= target:
            out.append(x - target)
    if "*" in ops and x and target % x == 0:
        out.append(target // x)
    if "/" in ops:
        if x:
            out.append(x * target)
        if target and x and x % target == 0:
            out.append(x // target)
    return out


def solvable(numbers: list[int] | tuple[int, ...], target: int, ops: str = ALL_OPS) -> bool:
    """Target reachable using every number once? Meets in the middle over one split.

    Sizes 2-4 (the game as played) take unrolled paths: the generator calls this
    for every candidate draw, so it dominates generation time.
    """
    nums = tuple(sorted(numbers))
    n = len(nums)
    if n == 1:
        return nums[0] == target
    if n == 2:
        return target in _combine(nums[0], nums[1], ops)
    if n == 3:
        a, b, c = nums
        for x, p, q in ((a, b, c), (b, a, c), (c, a, b)):
            pair = _combine(p, q, ops)
            if any(y in pair for y in _partners(x, target, ops)):
                return True
        return False
    if n == 4:
        a, b, c, d = nums
        for (p, q), (r, s) in (((a, b), (c, d)), ((a, c), (b, d)), ((a, d), (b, c))):
            right = _combine(r, s, ops)
            for x in _combine(p, q, ops):
                if any(y in right for y in _partners(x, target, ops)):
                    return True
        for x, rest in ((a, (b, c, d)), (b, (a, c, d)), (c, (a, b, d)), (d, (a, b, c))):
            if any(solvable(rest, y, ops) for y in _partners(x, target, ops)):
                return True
        return False
    for left, right in _splits(nums):
        right_values = reachable(right, ops)
        for x in reachable(left, ops):
            if any(y in right_values for y in _partners(x, target, ops)):
                return True
    return False


def solve(numbers: list[int] | tuple[int, ...], target: int, ops: str = ALL_OPS) -> str | None:
    """An expression using each number once that equals `target`, or None if none exists."""
    items = [(n, str(n)) for n in numbers]
    failed: set[tuple[int, ...]] = set()

    def search(items: list[tuple[int, str]]) -> str | None:
        if len(items) == 1:
            return items[0][1] if items[0][0] == target else None
        key = tuple(sorted(v for v, _ in items))
        if key in failed:
            return None
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (a, ea), (b, eb) = items[i], items[j]
                if a < b:
                    (a, ea), (b, eb) = (b, eb), (a, ea)
                rest = [items[k] for k in range(len(items)) if k not in (i, j)]
                for value, expr in _moves(a, ea, b, eb, ops):
                    found = search(rest + [(value, expr)])
                    if found is not None:
                        return found
        failed.add(key)
        return None

    found = search(items)
    if found is not None and found.startswith("(") and found.endswith(")") and len(numbers) > 1:
        found = found[1:-1]
    return found


def _moves(a: int, ea: str, b: int, eb: str, ops: str):
    """Results of combining a >= b, each with its expression text."""
    if "+" in ops:
        yield a + b, f"({ea} + {eb})"
    if "*" in ops:
        yield a * b, f"({ea} * {eb})"
    if "-" in ops:
        yield a - b, f"({ea} - {eb})"
    if "/" in ops and b and a % b == 0:
        yield a // b, f"({ea} / {eb})"
