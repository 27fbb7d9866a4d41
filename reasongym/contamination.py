"""Overlap between splits and duplicates within a split, by normalised task content."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reasongym.env import Env
from reasongym.types import Task


def fingerprint(task: Task) -> str:
    """Content key: the question with whitespace and case folded, number lists sorted (a permuted
    countdown task is the same task)."""

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\s+", " ", value).strip().lower()
        if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
            return sorted(value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items())}
        return value

    blob = json.dumps(norm(task.question), sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()


def contamination(env: Env, n: int | None = 10_000, seed: int = 0) -> dict[str, Any]:
    """Per split: size, duplicate rate; per pair of splits: shared tasks."""
    keys: dict[str, list[str]] = {}
    for split in env.splits:
        keys[split] = [fingerprint(t) for t in env.tasks(split, n=n, seed=seed)]
    report: dict[str, Any] = {"env": env.env_id, "splits": {}, "overlap": {}}
    for split, items in keys.items():
        unique = len(set(items))
        report["splits"][split] = {"tasks": len(items), "unique": unique,
                                   "duplicate_rate": 1 - unique / len(items) if items else 0.0}
    names = list(keys)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = set(keys[a]) & set(keys[b])
            report["overlap"][f"{a}/{b}"] = {"shared_unique_tasks": len(shared),
                                             f"share_of_{b}": sum(k in shared for k in keys[b]) / max(1, len(keys[b]))}
    return report
