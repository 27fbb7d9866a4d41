"""Read a training run directory (metrics.jsonl, samples.jsonl) for `plot` and `report`."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from reasongym import telemetry as t
from reasongym.plotting import plot_curves, read_metrics

PANELS = {
    "reward.png": (t.REWARD, t.component_mean("format"), t.component_mean("correct")),
    "heldout.png": (t.EVAL_REWARD, t.component_mean("correct", eval_=True)),
    "length.png": (t.MEAN_LENGTH, t.MEAN_LENGTH_CORRECT, t.MEAN_LENGTH_WRONG),
    "aha.png": (t.AHA_RATE,),
    "difficulty.png": (t.FRONTIER_LEVEL,),
}


def load_run(run_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(run_dir, t.METRICS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} has no {t.METRICS_FILE}: is it the --output-dir of a reasongym training run?")
    return read_metrics(path)


def plot_run(run_dir: str, out_dir: str | None = None) -> list[str]:
    """One PNG per panel that has data; level accuracies and curriculum weights get their own panels."""
    records = load_run(run_dir)
    out_dir = out_dir or os.path.join(run_dir, "plots")
    keys = sorted({k for r in records for k in r})
    panels = dict(PANELS)
    level_acc = tuple(k for k in keys if k.startswith("levels/") and k.endswith("/accuracy"))
    if level_acc:
        panels["levels.png"] = level_acc
    weights = tuple(k for k in keys if k.startswith("curriculum/weight/"))
    if weights:
        panels["curriculum.png"] = weights
    written = []
    for name, panel_keys in panels.items():
        path = plot_curves(records, os.path.join(out_dir, name), title=name[:-4], keys=panel_keys)
        if path:
            written.append(path)
    return written


def summarize(run_dir: str) -> dict[str, Any]:
    records = load_run(run_dir)
    train = [r for r in records if "reward" in r]
    evals = [r for r in records if "eval_reward" in r]

    def window(rows: list[dict[str, Any]], key: str, first: bool) -> float:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
        part = values[: max(1, len(values) // 5)] if first else values[-max(1, len(values) // 5):]
        return sum(part) / len(part) if part else float("nan")

    keys = [k for k in ("reward", "rewards/format/mean", "rewards/correct/mean", "completions/mean_length",
                        "frac_reward_zero_std", "aha_rate", "outcomes/unparseable", "verifier/latency_p99_ms")
            if any(k in r for r in train)]
    summary: dict[str, Any] = {
        "run_dir": run_dir,
        "steps": max((r.get("step", 0) for r in records), default=0),
        "metrics": {k: {"first_20pct": window(train, k, True), "last_20pct": window(train, k, False)} for k in keys},
        "eval": [{"step": r["step"], "eval_reward": r["eval_reward"],
                  "eval_correct": r.get("eval_rewards/correct/mean")} for r in evals],
    }
    samples = os.path.join(run_dir, t.SAMPLES_FILE)
    if os.path.exists(samples):
        with open(samples, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        best = [r for r in rows if r.get("outcome") == "correct"][-3:]
        summary["samples"] = len(rows)
        summary["last_correct_samples"] = [{"step": r.get("step"), "completion": r["completion"][-300:]} for r in best]
    return summary
