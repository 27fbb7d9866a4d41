"""What a training run records, and under which names: metrics.jsonl, sample logs, batch metrics.

The trainers write through here and `plotting` / `runs` read through here, so a
metric's name is defined once. Pure Python (no torch): a run directory can be read
and plotted on a machine without the training stack.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any, Sequence

from reasongym.templates import plain_text
from reasongym.types import Outcome, Score, Task

if TYPE_CHECKING:
    from reasongym.scoring import BatchResult

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
SUCCESSES_FILE = "successes.jsonl"
RUN_LOGS = (METRICS_FILE, SAMPLES_FILE, SUCCESSES_FILE)

# Metric names (TRL's own where TRL logs them: reward, rewards/<component>/mean, eval_*).
REWARD = "reward"
EVAL_REWARD = "eval_reward"
AHA_RATE = "aha_rate"
MEAN_LENGTH = "completions/mean_length"
MEAN_LENGTH_CORRECT = "completions/mean_length_correct"
MEAN_LENGTH_WRONG = "completions/mean_length_wrong"
FRONTIER_LEVEL = "curriculum/frontier_level"
OUTCOME_NAMES = tuple(o.value for o in Outcome)


def component_mean(name: str, eval_: bool = False) -> str:
    return f"{'eval_' if eval_ else ''}rewards/{name}/mean"


def outcome_share(name: str) -> str:
    return f"outcomes/{name}"


def level_metric(level: Any, what: str) -> str:
    return f"levels/{level}/{what}"


AHA_PATTERN = re.compile(
    r"\b(wait|let me re-?check|let me check again|let me double[- ]check|double[- ]check|mistake|"
    r"re-?evaluate|i was wrong|that'?s not right|let me reconsider|actually)\b",
    re.IGNORECASE,
)


def is_main_process() -> bool:
    """Global rank 0 of a launch (RANK; LOCAL_RANK on launchers that set only that); True when not launched."""
    rank = os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))
    return rank == "0"


class MetricsWriter:
    """Appends one JSON object per line to `<run_dir>/metrics.jsonl`; `plotting.read_metrics` reads it back."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, METRICS_FILE)

    def reset(self) -> None:
        """A fresh run starts a fresh log."""
        if os.path.exists(self.path):
            os.remove(self.path)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        clean = {k: _plain(v) for k, v in record.items()}
        os.makedirs(self.run_dir, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean) + "\n")
        return clean


def reset_run_logs(run_dir: str) -> None:
    for name in RUN_LOGS:
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            os.remove(path)


class SampleLog:
    """`samples.jsonl` (every scored completion) and `successes.jsonl` (the correct ones), readable as text."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def write(self, step: int | None, splits: Sequence[str] | None, prompts: Sequence[Any], texts: Sequence[str],
              tasks: Sequence[Task], scores: Sequence[Score]) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, SAMPLES_FILE), "a", encoding="utf-8") as all_f, open(
            os.path.join(self.run_dir, SUCCESSES_FILE), "a", encoding="utf-8"
        ) as ok_f:
            for i, (prompt, text, task, score) in enumerate(zip(prompts, texts, tasks, scores)):
                record = {
                    "step": step,
                    "split": splits[i] if splits else None,
                    "task_id": task.id,
                    "prompt": plain_text(prompt, roles=True) if isinstance(prompt, (str, list)) else str(prompt),
                    "completion": text,
                    "reward": score.reward,
                    "components": score.components,
                    "outcome": score.outcome.value,
                    "parsed": score.to_dict()["parsed"],
                    "detail": score.detail,
                }
                line = json.dumps(record, ensure_ascii=False) + "\n"
                all_f.write(line)
                if score.outcome is Outcome.CORRECT:
                    ok_f.write(line)


def batch_metrics(result: "BatchResult", texts: Sequence[str], tasks: Sequence[Task],
                  lengths: Sequence[int] | None = None, levels: Sequence[Any] = ()) -> dict[str, float]:
    """Outcome shares, verifier latency, aha rate, lengths of right vs wrong answers and, per
    difficulty level, accuracy, zero-variance groups and share. Every batch yields the same keys
    (NaN where it has no data), so ranks reduce the same set."""
    nan = float("nan")
    scores = result.scores
    total = max(1, len(scores))
    out: dict[str, float] = {outcome_share(name): result.counts.get(name, 0) / total for name in OUTCOME_NAMES}
    out["verifier/timeouts"] = float(result.counts.get("timeout", 0))
    out["verifier/errors"] = float(result.counts.get("error", 0))
    out["verifier/latency_p50_ms"] = 1000 * result.latency_p50
    out["verifier/latency_p99_ms"] = 1000 * result.latency_quantile(0.99)
    out["verifier/latency_max_ms"] = 1000 * result.latency_max
    out[AHA_RATE] = sum(bool(AHA_PATTERN.search(t)) for t in texts) / total
    sizes = list(lengths) if lengths is not None else [len(t) for t in texts]
    right = [n for n, s in zip(sizes, scores) if s.correct]
    wrong = [n for n, s in zip(sizes, scores) if not s.correct]
    out[MEAN_LENGTH_CORRECT] = sum(right) / len(right) if right else nan
    out[MEAN_LENGTH_WRONG] = sum(wrong) / len(wrong) if wrong else nan
    groups: dict[str, list[Score]] = {}
    level_of: dict[str, Any] = {}
    for task, score in zip(tasks, scores):
        groups.setdefault(task.id, []).append(score)
        level_of[task.id] = task.difficulty
    for level in levels:
        mine = [s for t, s in zip(tasks, scores) if t.difficulty == level]
        out[level_metric(level, "accuracy")] = sum(s.correct for s in mine) / len(mine) if mine else nan
        level_groups = [g for tid, g in groups.items() if level_of[tid] == level and len(g) > 1]
        flat = [len({s.reward for s in g}) == 1 for g in level_groups]
        out[level_metric(level, "frac_zero_std")] = sum(flat) / len(flat) if flat else nan
        out[level_metric(level, "share")] = len(mine) / total
    return out


def _plain(value: Any) -> Any:
    """JSON-safe: NaN becomes null, tensors and numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
