"""Countdown verifier speed: ours vs a TinyZero-style regex + eval scorer, same 10k completions.

    python benchmarks/countdown_verify.py [--n 10000] [--repeats 5]

The baseline is re-implemented here from TinyZero's observable behaviour
(verl/utils/reward_score/countdown.py: last <answer>, \\d+ multiset check, character
whitelist, eval with builtins removed). The completion set contains no power
towers, which would hang the baseline. Prints µs/completion for both and the
ratio ours / baseline (best of `repeats` runs each, interleaved). Also reports
task generation speed against the solver-free draw (a lower bound).
"""

from __future__ import annotations

import argparse
import random
import re
import time

import reasongym as rg


def tinyzero_score(solution: str, nums: list[int], target: int) -> float:
    matches = list(re.finditer(r"<answer>(.*?)</answer>", solution))
    if not matches:
        return 0.0
    equation = matches[-1].group(1).strip()
    try:
        if sorted(int(n) for n in re.findall(r"\d+", equation)) != sorted(nums):
            return 0.1
        if not re.match(r"^[\d+\-*/().\s]+$", equation):
            return 0.1
        result = eval(equation, {"__builtins__": None}, {})  # noqa: S307 - the baseline being measured
        return 1.0 if abs(float(result) - float(target)) < 1e-5 else 0.1
    except Exception:
        return 0.1


def completions(env: rg.Env, n: int, seed: int = 0) -> list[tuple[str, rg.Task]]:
    rng = random.Random(seed)
    tasks = env.tasks("train", n=max(1, n // 4), seed=seed)
    out = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        nums = task.question["nums"]
        kind = i % 4
        if kind == 0:
            text = env.reference_completion(task)
        elif kind == 1:
            text = f" thinking\n</think>\n<answer>{' + '.join(map(str, nums))}</answer>"
        elif kind == 2:
            text = f" {rng.random()}\n</think>\n<answer>({nums[0]} - {nums[1]}) * {nums[-1]}</answer>"
        else:
            text = " no answer here, just rambling " * rng.randint(1, 5)
        out.append((text, task))
    return out


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = rg.make("countdown-3to4")
    items = completions(env, args.n)
    prefixed = [("Assistant: <think>" + c, t.question["nums"], t.question["target"]) for c, t in items]

    def ours() -> None:
        for text, task in items:
            env.score(text, task)

    def baseline() -> None:
        for text, nums, target in prefixed:
            tinyzero_score(text, nums, target)

    ours_t, base_t = [], []
    for _ in range(args.repeats):  # interleave so drift hits both
        ours_t.append(best_time(ours, 1))
        base_t.append(best_time(baseline, 1))
    ours_us, base_us = 1e6 * min(ours_t) / len(items), 1e6 * min(base_t) / len(items)
    print(f"completions: {len(items)} (same set for both), best of {args.repeats}")
    print(f"reasongym verifier : {ours_us:8.2f} us/completion")
    print(f"TinyZero-style eval: {base_us:8.2f} us/completion")
    print(f"ratio ours/baseline: {ours_us / base_us:8.2f}x  (target <= 1.0)")

    gen_env = rg.make("countdown-3to4")
    start = time.perf_counter()
    gen_env.tasks("train", n=20_000, seed=123)
    per_task = (time.perf_counter() - start) / 20_000
    print(f"task generation    : {1e6 * per_task:8.1f} us/task -> 100k tasks in {per_task * 1e5:.1f} s")


if __name__ == "__main__":
    main()
