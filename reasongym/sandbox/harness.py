"""What runs inside the sandboxed child: the program, then each test, each result reported at once.

A "call" test evaluates an expression (`candidate([1, 2])`) and reports its value as plain data
(`encode`): the expected value never enters the child, so the parent's comparison cannot be faked
by code that patches the harness, exits early or returns an object whose `__eq__` always agrees.
A "block" test runs statements (asserts the dataset cannot express as calls) and reports whether
they finished; its verdict does come from the child, which the parent records (`Result.trusted`).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

MAX_DEPTH = 20
MAX_ITEMS = 10_000


class NotPlainData(TypeError):
    """A value the parent cannot compare: a custom object, a function, a generator ..."""


def encode(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Plain data with explicit types (JSON has no tuple, set, int beyond 2**53 or NaN), built only from
    the exact builtin types, so a subclass with its own `__eq__` or `__repr__` is refused."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise NotPlainData("value too large or too deep")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return {"int": str(value)}
    if kind is float:
        return {"float": repr(value)}
    if kind is complex:
        return {"complex": [repr(value.real), repr(value.imag)]}
    if kind in (list, tuple, set, frozenset):
        items = [encode(v, depth + 1, budget) for v in value]
        if kind in (set, frozenset):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return {kind.__name__: items}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in value.items()]}
    raise NotPlainData(f"a {kind.__name__} is not plain data")


def run(request: dict[str, Any], result_fd: int) -> None:
    """Execute request["program"], request["prelude"], then every test; write one JSON line per test."""
    def report(record: dict[str, Any]) -> None:
        data = (json.dumps(record) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(result_fd, view):]

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(request["program"], "solution.py", "exec"), namespace)
        if request.get("prelude"):
            exec(compile(request["prelude"], "tests.py", "exec"), namespace)
        if request.get("entry_point"):
            namespace["candidate"] = namespace[request["entry_point"]]
    except BaseException as exc:  # noqa: BLE001 - the program itself failed: every test fails
        report({"stage": "program", "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        return
    for test in request["tests"]:
        record: dict[str, Any] = {"id": test["id"]}
        try:
            if test["kind"] == "call":
                record["value"] = encode(eval(compile(test["expr"], "test.py", "eval"), namespace))
            else:
                exec(compile(test["code"], "test.py", "exec"), namespace)
                record["passed"] = True
        except BaseException as exc:  # noqa: BLE001 - a failing test, whatever it raised
            record["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        report(record)


def decode(value: Any) -> Any:
    """The parent's side of `encode`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("malformed value")
    (kind, data), = value.items()
    if kind == "int":
        return int(data)
    if kind == "float":
        return float(data)
    if kind == "complex":
        return complex(float(data[0]), float(data[1]))
    if kind == "list":
        return [decode(v) for v in data]
    if kind == "tuple":
        return tuple(decode(v) for v in data)
    if kind in ("set", "frozenset"):
        return set(decode(v) for v in data)
    if kind == "dict":
        return {decode(k): decode(v) for k, v in data}
    raise ValueError(f"unknown kind {kind!r}")


def same(got: Any, expected: Any, tolerance: float | None = None) -> bool:
    """Python's `==` on decoded plain data (so 2 == 2.0, as the original assert), except that a bool only
    equals a bool; with a tolerance, numbers (also inside lists and tuples) compare within it."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance) if tolerance else got == expected
    if isinstance(expected, (list, tuple)) and type(got) is type(expected):
        return len(got) == len(expected) and all(same(g, e, tolerance) for g, e in zip(got, expected))
    return got == expected
