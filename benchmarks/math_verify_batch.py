"""math-verify batch scoring: serial in-process vs the scoring engine on 2 workers, same run.

    python benchmarks/math_verify_batch.py [--n 1024] [--workers 2]

Builds `n` completions over the math-500 sample (mix of right, wrong and LaTeX
variants), plus one `\\boxed{9^{9^{9^{9}}}}` item. Prints throughput of both and
the ratio (target >= 1.8x on 2 workers), and the p100 latency of the engine run
with the power tower in the batch (target <= hard timeout + 0.5 s). The serial
run excludes the tower (math-verify's own 3 s alarm would dominate it).
"""

from __future__ import annotations

import argparse
import time

import reasongym as rg
from reasongym.scoring import ScoringEngine

FORMS = ["${a}$", "\\boxed{{{a}}}", "$\\boxed{{{a}}}$", "${a}+1$", "$2\\cdot({a})$", "\\frac{{1}}{{2}}"]


def build(env: rg.Env, n: int) -> tuple[list[str], list[rg.Task]]:
    tasks = env.tasks("test", n=None, seed=None)
    texts, chosen = [], []
    for i in range(n):
        task = tasks[i % len(tasks)]
        form = FORMS[i % len(FORMS)].format(a=task.answer)
        texts.append(f"<think>\nwork {i}\n</think>\n<answer>{form}</answer>")
        chosen.append(task)
    return texts, chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    env = rg.make("math-500", source="sample")
    texts, tasks = build(env, args.n)

    # warm both paths (imports, ANTLR) outside the timed region; clear math-verify's caches between runs
    env.score(texts[0], tasks[0])
    from math_verify.parser import parse_expr_cached, parse_latex_cached

    def clear() -> None:
        parse_latex_cached.cache_clear()
        parse_expr_cached.cache_clear()

    clear()
    start = time.perf_counter()
    serial = [env.score(t, k) for t, k in zip(texts, tasks)]
    serial_s = time.perf_counter() - start

    clear()
    tower = "<think>x</think>\n<answer>\\boxed{9^{9^{9^{9}}}}</answer>"
    with ScoringEngine(workers=args.workers, timeout=args.timeout) as engine:
        engine.score(env, texts[:4], tasks[:4])  # start the workers
        start = time.perf_counter()
        pooled = engine.score(env, texts, tasks)
        pooled_s = time.perf_counter() - start
        with_tower = engine.score(env, texts[:63] + [tower], tasks[:64])
    assert [s.reward for s in pooled.scores] == [s.reward for s in serial], "pool and serial disagree"
    print(f"items: {args.n}; serial in-process: {args.n / serial_s:7.1f} items/s ({serial_s:.2f} s)")
    print(f"engine, {args.workers} workers : {args.n / pooled_s:7.1f} items/s ({pooled_s:.2f} s)")
    print(f"throughput ratio      : {serial_s / pooled_s:7.2f}x  (target >= 1.8x)")
    print(f"batch of 64 with 9^(9^(9^9)): p100 latency {with_tower.latency_max:.2f} s, tower outcome "
          f"{with_tower.scores[-1].outcome.value} (hard timeout {args.timeout:g} s; target <= timeout + 0.5 s)")


if __name__ == "__main__":
    main()
