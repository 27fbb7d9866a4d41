"""HumanEval+ and MBPP+ (EvalPlus): the same problems with many more test inputs.

The release files (HumanEvalPlus.jsonl.gz, MbppPlus.jsonl.gz; JSONL, gzip JSONL or a JSON array) give,
per task, `prompt`, `entry_point`, `canonical_solution`, `base_input` and `plus_input` (lists of
argument lists) and `atol`. They carry no expected outputs: these come from running the canonical
solution on every input in the sandbox, once per task, and become call tests compared here.
An input on which the canonical solution itself fails is dropped (EvalPlus inputs satisfy the task's
contract, so that is rare).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from typing import Any

from reasongym.errors import DatasetUnavailable
from reasongym.sandbox import Sandbox, Test

COLUMNS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input")
RELEASES = {"humaneval-plus": "HumanEvalPlus.jsonl.gz", "mbpp-plus": "MbppPlus.jsonl.gz"}


def read_release(path: str) -> list[dict[str, Any]]:
    """Rows of an EvalPlus release file, read with `json` (their mixed-type input lists fit no Arrow schema)."""
    if not os.path.exists(path):
        raise DatasetUnavailable(f"data file {path!r} does not exist: fix the path given in data_files=")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                     if line.strip()]
    for row in rows:
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{path}: row {row.get('task_id')!r} lacks {', '.join(missing)}: pass an EvalPlus "
                             "release file (each row with base_input and plus_input)")
        if not row["base_input"] and not row["plus_input"]:
            raise ValueError(f"{path}: row {row['task_id']!r} has no test inputs: refused")
    return rows


def literal(value: Any) -> str:
    """Python source for a JSON value, floats that repr() cannot round-trip (inf, nan) included."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def input_calls(row: dict[str, Any], plus_tests: int) -> list[str]:
    """`candidate(...)` expressions: every base input, then up to `plus_tests` plus inputs."""
    inputs = list(row["base_input"]) + list(row["plus_input"])[:max(0, plus_tests)]
    return [f"candidate({', '.join(literal(a) for a in args)})" for args in inputs]


def expected_tests(sandbox: Sandbox, program: str, entry_point: str, calls: list[str], atol: float,
                   timeout: float) -> list[Test]:
    """Call tests whose expected values are the canonical `program`'s outputs on each input."""
    result = sandbox.run(program, [Test.call(call, None) for call in calls], entry_point, timeout=timeout)
    if result.status == "error":
        raise RuntimeError(f"{entry_point}: the sandbox failed running the canonical solution: {result.detail}")
    return [Test.call(call, outcome.value, tolerance=float(atol) or None) for call, outcome in zip(calls, result.tests)
            if outcome.has_value]
