"""Before/after on the same held-out tasks: two `trainers.evaluate` output folders, paired by task.

    python -m trainers.evaluate --compare outputs/eval-before outputs/eval-after

Reads each folder's `samples.jsonl`, counts correct samples per task, keeps the tasks both runs
scored, and reports accuracy before and after with the exact sign test on per-task counts (tasks are
the independent units; see trainers.common.stats). Runs that scored different tasks are refused, not
silently paired on a handful.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass

from rich.table import Table

from trainers.common.recipes import RecipeError
from trainers.common.stats import PairedTest, sign_test


@dataclass(frozen=True)
class Comparison:
    env_id: str
    tasks: int
    samples: int  # completions scored per run (a repeated question counts each time it was drawn)
    before: float
    after: float
    test: PairedTest

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "test": asdict(self.test), "delta": self.after - self.before}, indent=2)


def correct_counts(folder: str) -> tuple[dict[str, int], Counter[str]]:
    """Per task id: correct samples, and samples drawn, from an evaluate folder's samples.jsonl."""
    path = os.path.join(folder, "samples.jsonl")
    if not os.path.isfile(path):
        raise RecipeError(f"{folder!r} has no samples.jsonl: pass folders written by python -m trainers.evaluate "
                          "(its --output_dir)")
    correct: Counter[str] = Counter()
    drawn: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                drawn[row["task_id"]] += 1
                correct[row["task_id"]] += row.get("outcome") == "correct"
    return {task: correct[task] for task in drawn}, drawn


def compare(before_dir: str, after_dir: str) -> Comparison:
    before, drawn_before = correct_counts(before_dir)
    after, drawn_after = correct_counts(after_dir)
    shared = sorted(set(before) & set(after))
    if len(shared) < 0.9 * max(len(before), len(after)):
        raise RecipeError(f"the runs scored different tasks ({len(before)} and {len(after)}, {len(shared)} shared): "
                          "evaluate both with the same --env, --env-kwargs, --split, --n and --seed")
    if any(drawn_before[t] != drawn_after[t] for t in shared):
        raise RecipeError("the runs drew different --samples per task: evaluate both with the same value")
    env_id = shared[0].split(":", 1)[0] if shared else "?"
    b, a = [before[t] for t in shared], [after[t] for t in shared]
    total = sum(drawn_before[t] for t in shared)
    return Comparison(env_id, len(shared), total, sum(b) / max(1, total), sum(a) / max(1, total), sign_test(b, a))


def comparison_table(result: Comparison, before_dir: str, after_dir: str) -> Table:
    table = Table(title=f"{result.env_id}: {result.tasks} tasks ({result.samples} completions per run), paired by task")
    table.add_column("run")
    table.add_column("accuracy", justify="right")
    table.add_row(f"before ({before_dir})", f"{result.before:.3f}")
    table.add_row(f"after ({after_dir})", f"{result.after:.3f}")
    table.add_row("change", f"{result.after - result.before:+.3f}")
    table.add_row("tasks better / worse", f"{result.test.improved} / {result.test.worsened}")
    table.add_row("sign test, one-sided p", f"{result.test.p_value:.3g}")
    return table
