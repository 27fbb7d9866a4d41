"""Verifier report for every reasoning-gym task: writes docs/reasoning-gym.md.

    pip install -e ".[reasoning-gym]"
    python benchmarks/reasoning_gym_report.py [--tasks 6] [--out docs/reasoning-gym.md] [--only countdown,gcd]

For each of reasoning-gym's 106 datasets, made as `reasoning-gym/<name>` with default settings,
it scores (through our scoring engine: worker processes, hard timeout) on a few train tasks:
- oracle round trip: the reference completion (reasoning-gym's oracle answer) earns full reward;
- invariance: extra whitespace inside <think>, and text after </answer>, leave the reward alone;
- probes, each passing when no case earns full reward: hedge ("gold or 0"), the answer only
  inside <think>, an empty answer, decimal gluing (expression tasks), and eval injection (the
  gold wrapped in Python code that only an eval would unwrap);
- very long output (1 MB of reasoning, a 50 kB answer): scored in time, without an error;
- the worst verifier latency, and timeouts and errors over everything it scored.
Then it says how each task is treated: our own verifier, unsafe (refused for training without
--allow-unsafe-env), or reasoning-gym's scorer in a worker. Exit status 1 when a probe fails on a
task that is neither unsafe nor ours (the report and envs/reasoning_gym/env.py disagree).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import reasongym as rg
from reasongym.scoring import ScoringEngine
from reasongym.types import Task

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROBES = ("hedge", "think_only", "empty", "decimal_glue", "eval_injection")


@dataclass
class Row:
    name: str
    treatment: str = ""
    made: str = "yes"
    oracle: str = "-"
    invariance: str = "-"
    probes: dict[str, str] = field(default_factory=dict)
    long_ok: str = "-"
    worst_ms: float = 0.0
    timeouts: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)


def completion(answer: str, think: str = "The answer follows.") -> str:
    return f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"


def wrong_for(gold: str) -> str:
    return "0" if gold.strip() != "0" else "1"


def cases(env, task: Task) -> dict[str, list[tuple[Task, str]]]:
    """kind -> (task, completion) pairs for one task with an oracle answer."""
    gold = str(task.answer)
    ref = env.reference_completion(task) or completion(gold)
    out = {
        "oracle": [(task, ref)],
        "invariance": [(task, ref.replace("<think>\n", "<think>\n  \n\n ")), (task, ref + "\nThat is my final answer.")],
        "hedge": [(task, completion(f"{gold} or {wrong_for(gold)}")), (task, completion(f"{wrong_for(gold)} or {gold}"))],
        "think_only": [(task, f"<think>\n<answer>{gold}</answer>\n</think>\n"), (task, f"<think> the answer is {gold}</think>")],
        "empty": [(task, completion("")), (task, completion("   \n"))],
        "eval_injection": [(task, completion(f"__import__('builtins').str({gold!r})")),
                           (task, completion(f"(lambda: {gold!r})()"))],
        "long": [(task, completion(gold, think="x " * 500_000)), (task, completion(gold + " " + "9" * 50_000))],
    }
    if gold.lstrip("-").isdigit():  # a number: code that computes it without stating it
        value = int(gold)
        out["eval_injection"] = [(task, completion(f"(lambda: {value - 1} + 1)()")),
                                 (task, completion(f"__import__('builtins').int('{value - 1}') + 1"))]
    meta = task.metadata["entry"].get("metadata", {})
    if "numbers" in meta:  # expression tasks: glue two given numbers with a decimal point
        glued = _glue_task(task, meta)
        if glued is not None:
            out["decimal_glue"] = [glued]
    return out


def _glue_task(task: Task, meta: dict) -> tuple[Task, str] | None:
    """The task with numbers [1, 5, 10] and target 15, answered 1.5*10: only an eval-style scorer pays it."""
    entry = json.loads(json.dumps(task.metadata["entry"]))
    entry["metadata"] = {**meta, "numbers": [1, 5, 10], "target": 15}
    entry["answer"] = "(1 + 5) / 10 * 25"
    forged = Task(id=task.id + ":glue", question=task.question, answer=task.answer, difficulty=task.difficulty,
                  metadata={**task.metadata, "entry": entry})
    return forged, completion("1.5*10")


def check_task(name: str, n_tasks: int, engine: ScoringEngine) -> Row:
    from envs.reasoning_gym.env import ANSWER_LIMITS, OWN_VERIFIER, UNSAFE

    guarded = " (answer-shape limits first)" if name in ANSWER_LIMITS else ""
    own = {"expression": "own verifier: countdown's expression rules (exact, eval-free)",
           "number": "own verifier: one exact number", "exact": "own verifier: exact match",
           "casefold": "own verifier: exact match, any case"}
    row = Row(name, treatment=(own[OWN_VERIFIER[name]] if name in OWN_VERIFIER else
                               f"unsafe: {UNSAFE[name]}" if name in UNSAFE else "reasoning-gym scorer in a worker" + guarded))
    try:
        env = rg.make(f"reasoning-gym/{name}")
        tasks = env.tasks("train", n=n_tasks, seed=0)
    except Exception as exc:  # noqa: BLE001 - the report records it
        row.made = f"no: {type(exc).__name__}: {str(exc)[:80]}"
        row.failures.append("make")
        return row
    with_oracle = [t for t in tasks if t.answer is not None]
    if not with_oracle:
        row.oracle = "no oracle answer"
        return row
    grouped: dict[str, list[tuple[Task, str]]] = {}
    for task in with_oracle:
        for kind, pairs in cases(env, task).items():
            grouped.setdefault(kind, []).extend(pairs)
    flat = [(kind, t, c) for kind, pairs in grouped.items() for t, c in pairs]
    result = engine.score(env, [c for _, _, c in flat], [t for _, t, _ in flat])
    by_kind: dict[str, list] = {}
    for (kind, _, _), score in zip(flat, result.scores):
        by_kind.setdefault(kind, []).append(score)
    full = env.full_reward
    oracle = by_kind["oracle"]
    row.oracle = f"{sum(s.reward == full for s in oracle)}/{len(oracle)}"
    if any(s.reward != full for s in oracle):
        row.failures.append("oracle")
    base = {id(t): s.reward for (k, t, _), s in zip(flat, result.scores) if k == "oracle"}
    variants = [(t, s) for (k, t, _), s in zip(flat, result.scores) if k == "invariance"]
    same = sum(s.reward == base[id(t)] for t, s in variants)
    row.invariance = f"{same}/{len(variants)}"
    if same != len(variants):
        row.failures.append("invariance")
    for probe in PROBES:
        scores = by_kind.get(probe)
        if not scores:
            row.probes[probe] = "n/a"
            continue
        hits = sum(s.reward >= full for s in scores)
        row.probes[probe] = "pass" if not hits else f"FAIL {hits}/{len(scores)}"
        if hits:
            row.failures.append(probe)
    long_scores = by_kind["long"]
    bad = [s for s in long_scores if s.outcome.value in ("timeout", "error")]
    row.long_ok = "bounded" if not bad else f"FAIL {bad[0].outcome.value}"
    row.worst_ms = 1000 * result.latency_max
    row.timeouts = result.counts.get("timeout", 0)
    row.errors = result.counts.get("error", 0)
    return row


def render(rows: list[Row], seconds: float, n_tasks: int) -> str:
    from envs.reasoning_gym.env import ANSWER_LIMITS, OWN_VERIFIER, UNSAFE

    made = sum(r.made == "yes" for r in rows)
    open_holes = [r.name for r in rows if set(r.failures) & set(PROBES) and r.name not in UNSAFE and r.name not in OWN_VERIFIER]
    lines = [
        "# reasoning-gym tasks: verifier report",
        "",
        "Written by `python benchmarks/reasoning_gym_report.py` (reasoning-gym 0.1.25; "
        f"{n_tasks} train tasks per dataset at default settings; {seconds:.0f} s on a 2-core CPU box). "
        "Every score went through reasongym's scoring engine (worker processes, 5 s hard timeout).",
        "",
        f"- **{made} of {len(rows)}** datasets make as `reasoning-gym/<name>` with default settings.",
        f"- **Own verifier** ({len(OWN_VERIFIER)}): {', '.join(sorted(OWN_VERIFIER))}. reasoning-gym scores countdown "
        "and puzzle24 with `sympy.parse_expr` (Python eval), and puzzle24 does not check which numbers were used: "
        "ours is countdown's checker (exact rationals, no eval, each given number exactly once). The other five "
        "have one right answer but a scorer that pays a hedge (`<gold> or 0`) or an eval-wrapped answer "
        "(substring or first-match extraction): ours is an exact match of the whole answer block.",
        f"- **Unsafe** ({len(UNSAFE)}): {', '.join(sorted(UNSAFE))}. Their scorers run model text through "
        "`eval()` or `sympy.parse_expr`, pay a hedge on tasks where several spellings are right (so an exact "
        "match of ours would reject correct answers), or reject their own oracle answer. `make` works (for "
        "evaluation and study); the trainers refuse them unless `--allow-unsafe-env true`.",
        f"- **Answer-shape limits** ({len(ANSWER_LIMITS)}): {', '.join(sorted(ANSWER_LIMITS))}. Their parser's time "
        "grows faster than linearly with the answer (68 s for 10,000 `¬`), so longer answers, deeper brackets "
        "and long runs of one operator are unparseable before it runs (`ANSWER_LIMITS` in envs/reasoning_gym/env.py).",
        f"- Probe failures on tasks neither ours nor marked unsafe: {', '.join(open_holes) if open_holes else 'none'}.",
        "",
        "Columns: oracle = reference completions earning full reward; invariance = whitespace inside "
        "`<think>` and text after `</answer>` leave the reward alone; probes pass when no case earns full "
        "reward (hedge `gold or 0`; answer only in think; empty answer; decimal gluing `1.5*10`; eval "
        "injection: Python that computes a numeric gold without stating it, `(lambda: 41 + 1)()`, or wraps a "
        "text gold, `(lambda: 'gold')()`); long = 1 MB of reasoning and a 50 kB answer scored in time; "
        "latency = worst single score (ms, engine-measured).",
        "",
        "| task | treatment | oracle | invariance | hedge | think only | empty | decimal glue | eval injection "
        "| long | worst ms | timeouts / errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = [r.probes.get(k, "-") for k in PROBES]
        treatment = r.treatment if r.made == "yes" else f"{r.treatment}; made: {r.made}"
        lines.append(f"| {r.name} | {treatment} | {r.oracle} | {r.invariance} | {' | '.join(p)} | {r.long_ok} "
                     f"| {r.worst_ms:.1f} | {r.timeouts} / {r.errors} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=6, help="train tasks per dataset")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "reasoning-gym.md"))
    parser.add_argument("--only", default=None, help="comma-separated dataset names (default: all)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from envs.reasoning_gym import NAMES
    from envs.reasoning_gym.env import OWN_VERIFIER, UNSAFE

    names = [n for n in NAMES if not args.only or n in args.only.split(",")]
    started = time.perf_counter()
    rows = []
    with ScoringEngine(workers=2, timeout=5.0) as engine:
        for i, name in enumerate(names, 1):
            t0 = time.perf_counter()
            row = check_task(name, args.tasks, engine)
            rows.append(row)
            print(f"[{i}/{len(names)}] {name}: {row.treatment}; oracle {row.oracle}; "
                  f"failures {row.failures or 'none'} ({time.perf_counter() - t0:.1f}s)", flush=True)
    seconds = time.perf_counter() - started
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(render(rows, seconds, args.tasks))
    print(f"wrote {args.out}")
    open_holes = [r.name for r in rows if set(r.failures) & set(PROBES) and r.name not in UNSAFE and r.name not in OWN_VERIFIER]
    if open_holes:
        print(f"probe failures on tasks not marked unsafe: {open_holes}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
