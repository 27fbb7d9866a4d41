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
- the testing kit's generic probes (reasongym.testing.probes.GENERIC: hedges with values of the
  gold's kind, enumerations, trailing alternatives, two answer blocks, code injection, ...).
Then it says how each task is treated: our own verifier, reasoning-gym's scorer behind an answer-shape
check, unsafe (refused for training without --allow-unsafe-env), or reasoning-gym's scorer in a worker.
Exit status 1 when a probe fails on a task that is not marked unsafe (the report and the env disagree).
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
    kit: str = "-"
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


def treatment(name: str) -> str:
    from envs.reasoning_gym.env import UNSAFE
    from envs.reasoning_gym.verifiers import (ANSWER_LIMITS, EVALS_MODEL_TEXT, OWN_VERIFIER, SAFE_VERIFIERS,
                                              SHAPE_CHECKS)

    own = {"expression": "own verifier: countdown's expression rules (exact, eval-free)",
           "number": "own verifier: one exact number", "exact": "own verifier: exact match",
           "casefold": "own verifier: exact match, any case"}
    if name in OWN_VERIFIER:
        return own[OWN_VERIFIER[name]]
    if name in EVALS_MODEL_TEXT:
        return f"own verifier, eval-free (reasoning-gym's scorer {EVALS_MODEL_TEXT[name]})"
    if name in SAFE_VERIFIERS:
        return "own verifier (reasoning-gym's scorer pays extra items)"
    if name in UNSAFE:
        return f"unsafe: {UNSAFE[name]}"
    if name in SHAPE_CHECKS:
        return "reasoning-gym scorer in a worker, after an answer-shape check (it pays extra items)"
    return "reasoning-gym scorer in a worker" + (" (answer-shape limits first)" if name in ANSWER_LIMITS else "")


def check_task(name: str, n_tasks: int, engine: ScoringEngine) -> Row:
    from reasongym.testing.probes import GENERIC, run_probes

    row = Row(name, treatment=treatment(name))
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
    kit_failures = [p.name for p in run_probes(env, with_oracle[:3], names=GENERIC) if not p.passed]
    row.kit = "pass" if not kit_failures else "FAIL " + ", ".join(kit_failures)
    if kit_failures:
        row.failures.append("kit")
    return row


def open_holes(rows: list[Row]) -> list[str]:
    from envs.reasoning_gym.env import UNSAFE

    return [r.name for r in rows if set(r.failures) & {*PROBES, "kit"} and r.name not in UNSAFE]


def render(rows: list[Row], seconds: float, n_tasks: int) -> str:
    from envs.reasoning_gym.env import UNSAFE
    from envs.reasoning_gym.verifiers import ANSWER_LIMITS, EVALS_MODEL_TEXT, SAFE_VERIFIERS, SHAPE_CHECKS

    made = sum(r.made == "yes" for r in rows)
    holes = open_holes(rows)
    lines = [
        "# reasoning-gym tasks: verifier report",
        "",
        "Written by `python benchmarks/reasoning_gym_report.py` (reasoning-gym 0.1.25; "
        f"{n_tasks} train tasks per dataset at default settings; {seconds:.0f} s on a 2-core CPU box). "
        "Every score went through reasongym's scoring engine (worker processes, 5 s hard timeout).",
        "",
        f"- **{made} of {len(rows)}** datasets make as `reasoning-gym/<name>` with default settings.",
        "- **No scorer evaluates model text.** reasoning-gym's scorers for "
        f"{', '.join(sorted(EVALS_MODEL_TEXT))} hand the answer to `eval()` or `sympy.parse_expr`: an answer of "
        "`__import__('os').system(...)` would run. These tasks are scored by our own verifiers "
        "(envs/reasoning_gym/verifiers.py), which read answers with a whitelist walk of the parse tree and never "
        "call anything: exact matches for matrices, spirals, strings and boards (the Python-list spelling keeps "
        "reasoning-gym's partial credit), exact expanded polynomials, antiderivatives equal to the reference up to "
        "a constant. `make(id, scorer=\"reasoning-gym\")` brings their scorer back; scoring then refuses to run "
        "unless the env was made with `allow_unsafe_scoring=True` (every path: `env.score`, `score_batch`, "
        "`trainers.evaluate`, `python -m reasongym check`, the trainers).",
        "- **codeio's reference code runs in the sandbox.** reasoning-gym builds each codeio task by running a code snippet from its data file (LLM-rewritten code; some snippets write files such as `planet.com` into the working directory). reasongym runs that snippet in `reasongym.sandbox` instead (a fresh directory, limits, the kernel's isolation; envs/reasoning_gym/codeio_sandbox.py), so making or resetting the env runs no dataset code in your process. A snippet that fails or returns something other than plain data gives no task, where reasoning-gym would build one with empty inputs.",
        f"- **Own verifier** ({len(SAFE_VERIFIERS)}): {', '.join(sorted(SAFE_VERIFIERS))}. Besides the seven above: "
        "countdown and puzzle24 (reasoning-gym uses `sympy.parse_expr` and puzzle24 does not check which numbers "
        "were used: ours is countdown's exact checker), word_sorting (its scorer pays extra words after the list), "
        "and one-answer tasks whose scorer pays a hedge (`<gold> or 0`): an exact match of the whole answer block.",
        f"- **Answer-shape checks** ({len(SHAPE_CHECKS)}): {', '.join(sorted(SHAPE_CHECKS))}. reasoning-gym's scorer "
        "reads only the first items or drops items it cannot parse, so `<gold>, 1, 2, 3` paid; an answer of any "
        "other shape is unparseable before the scorer runs.",
        f"- **Unsafe** ({len(UNSAFE)}): {', '.join(sorted(UNSAFE))}. Their scorers pay a hedge on tasks where "
        "several spellings are right (so an exact match of ours would reject correct answers), or reject their own "
        "oracle answer. `make` works (for evaluation and study); the trainers refuse them unless "
        "`--allow-unsafe-env true`.",
        f"- **Answer-length limits** ({len(ANSWER_LIMITS)}): {', '.join(sorted(ANSWER_LIMITS))}. Their parser's time "
        "grows faster than linearly with the answer (68 s for 10,000 `¬`), so longer answers, deeper brackets "
        "and long runs of one operator are unparseable before it runs.",
        f"- Probe failures on tasks not marked unsafe: {', '.join(holes) if holes else 'none'}.",
        "",
        "Columns: oracle = reference completions earning full reward; invariance = whitespace inside "
        "`<think>` and text after `</answer>` leave the reward alone; probes pass when no case earns full "
        "reward (hedge `gold or 0`; answer only in think; empty answer; decimal gluing `1.5*10`; eval "
        "injection: Python that computes a numeric gold without stating it, `(lambda: 41 + 1)()`, or wraps a "
        "text gold, `(lambda: 'gold')()`); long = 1 MB of reasoning and a 50 kB answer scored in time; "
        "kit probes = the testing kit's generic probes (docs/testing.md), code injection included; "
        "latency = worst single score (ms, engine-measured).",
        "",
        "| task | treatment | oracle | invariance | hedge | think only | empty | decimal glue | eval injection "
        "| long | kit probes | worst ms | timeouts / errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = [r.probes.get(k, "-") for k in PROBES]
        treatment = r.treatment if r.made == "yes" else f"{r.treatment}; made: {r.made}"
        lines.append(f"| {r.name} | {treatment} | {r.oracle} | {r.invariance} | {' | '.join(p)} | {r.long_ok} "
                     f"| {r.kit} | {r.worst_ms:.1f} | {r.timeouts} / {r.errors} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=6, help="train tasks per dataset")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "reasoning-gym.md"))
    parser.add_argument("--only", default=None, help="comma-separated dataset names (default: all)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from envs.reasoning_gym import NAMES

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
    holes = open_holes(rows)
    if holes:
        print(f"probe failures on tasks not marked unsafe: {holes}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
