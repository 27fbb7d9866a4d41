"""Run model-written programs and their tests under limits, outside the trainer's process.

    from reasongym.sandbox import Sandbox, Test
    with Sandbox() as box:
        result = box.run("def add(a, b):\\n    return a + b", [Test.call("candidate(1, 2)", 3)], entry_point="add")
    result.passed, result.isolation   # True, ['process', 'netns', 'pidns', 'mntns', 'landlock', 'seccomp']

Every program runs in a fresh child forked from a warm helper (`reasongym.sandbox.helper`, started
as its own interpreter with a scrubbed environment): new session, fresh working directory, rlimits,
and where the kernel allows an empty network namespace, PID and mount namespaces (a private /proc), Landlock
and a seccomp filter
(`reasongym.sandbox.isolation`). The helper kills the child's process group at the wall-clock
limit and always reaps it. Test verdicts are made here, in the caller: a "call" test's expected
value never reaches the child. Infrastructure failures are `status == "error"`, never a fail.
docs/envs/code.md states the threat model per isolation level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from reasongym.sandbox.harness import decode, same

LEVELS = ("process", "netns", "pidns", "mntns", "landlock", "seccomp", "remote")
LAYER_SWITCHES = ("network", "pid", "mount", "landlock", "seccomp")  # Sandbox(layers={name: False}) turns one off  # remote: reasongym.sandbox.remote
_warned = False


@dataclass(frozen=True)
class Test:
    kind: str  # "call": evaluate `expr`, compare with `expected` here; "block": run `code`, trust its finish
    expr: str = ""
    expected: Any = None
    tolerance: float | None = None
    code: str = ""

    @staticmethod
    def call(expr: str, expected: Any, tolerance: float | None = None) -> "Test":
        return Test("call", expr=expr, expected=expected, tolerance=tolerance)

    @staticmethod
    def block(code: str) -> "Test":
        return Test("block", code=code)


@dataclass
class TestResult:
    passed: bool
    detail: str = ""
    trusted: bool = True  # False for a block test, whose verdict the child reported
    value: Any = None  # a call test's result, decoded here (has_value: there was one)
    has_value: bool = False


@dataclass
class RunResult:
    status: str  # ok | timeout | crashed | error (the sandbox itself failed: not the program's fault)
    tests: list[TestResult] = field(default_factory=list)
    isolation: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "ok" and bool(self.tests) and all(t.passed for t in self.tests)

    @property
    def fraction(self) -> float:
        return sum(t.passed for t in self.tests) / len(self.tests) if self.tests else 0.0


class Sandbox:
    """One warm helper; `run` is thread-safe (one program at a time per helper)."""

    def __init__(self, timeout: float = 5.0, memory_mb: int = 2048, layers: dict[str, bool] | None = None,
                 require: str | None = None, warm_modules: tuple[str, ...] = ()) -> None:
        self.timeout, self.memory_mb, self.layers = timeout, memory_mb, dict(layers or {})
        # modules the helper imports once before it forks (e.g. numpy), so each program starts with them loaded
        self.warm_modules = tuple(warm_modules)
        unknown = sorted(set(self.layers) - set(LAYER_SWITCHES))
        if unknown:
            raise ValueError(f"unknown sandbox layer(s) {unknown}: the switches are {', '.join(LAYER_SWITCHES)}")
        self._lock = threading.Lock()
        self._helper: subprocess.Popen | None = None
        self.isolation: list[str] = []
        if require is not None and require not in LEVELS:
            raise ValueError(f"require must be one of {LEVELS}, got {require!r}")
        self.require = require

    # ----- helper lifecycle ---------------------------------------------------------------------
    def _start(self) -> subprocess.Popen:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper.py")
        from reasongym.sandbox.helper import SAFE_ENV

        env = dict(SAFE_ENV)  # the children's environment (no thread pools in a process that forks)
        flags = [] if self.layers.get("network", True) else ["--no-network-namespace"]
        flags += [f"--warm={name}" for name in self.warm_modules]
        return subprocess.Popen([sys.executable, "-s", "-E", script, *flags], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd="/", text=True,
                                bufsize=1)

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            try:
                helper.stdin.close()
                helper.wait(timeout=5)
            except Exception:  # noqa: BLE001 - already gone, or stuck: kill it
                helper.kill()
                helper.wait()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __getstate__(self) -> dict[str, Any]:  # a pickled Sandbox (pool workers) starts its own helper
        return {**self.__dict__, "_helper": None, "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ----- running ------------------------------------------------------------------------------
    def run(self, program: str, tests: list[Test], entry_point: str | None = None, prelude: str = "",
            timeout: float | None = None) -> RunResult:
        request = {"program": program, "prelude": prelude, "entry_point": entry_point,
                   "timeout": float(timeout or self.timeout), "memory_mb": self.memory_mb, "layers": self.layers,
                   "tests": [{"id": i, "kind": t.kind, "expr": t.expr, "code": t.code} for i, t in enumerate(tests)]}
        with self._lock:
            try:
                if self._helper is None or self._helper.poll() is not None:
                    self._helper = self._start()
                self._helper.stdin.write(json.dumps(request) + "\n")
                self._helper.stdin.flush()
                line = self._helper.stdout.readline()
                reply = json.loads(line) if line else {"error": "the sandbox helper exited"}
            except (OSError, ValueError) as exc:
                self.close()
                reply = {"error": f"sandbox helper: {type(exc).__name__}: {exc}"}
        if "error" in reply:
            return RunResult("error", [TestResult(False, "sandbox error", True) for _ in tests], detail=reply["error"])
        return self._verdicts(reply, tests)

    def _verdicts(self, reply: dict[str, Any], tests: list[Test]) -> RunResult:
        records: dict[int, dict[str, Any]] = {}
        isolation: list[str] = []
        program_error = ""
        for line in reply["lines"].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if "isolation" in record and not isolation:
                isolation = [layer for layer in record["isolation"] if layer in LEVELS]
            elif record.get("stage") == "program":
                program_error = str(record.get("error", ""))[:300]
            elif isinstance(record.get("id"), int) and record["id"] not in records:
                records[record["id"]] = record  # the first report of a test counts; later ones are ignored
        self._note_isolation(isolation)
        results = [self._judge(test, records.get(i), program_error) for i, test in enumerate(tests)]
        status = "timeout" if reply["timed_out"] else "ok" if isolation else "crashed"
        detail = program_error or (f"killed by signal {reply['signal']}" if reply.get("signal") else "")
        return RunResult(status, results, isolation, reply.get("stdout", ""), reply.get("stderr", ""),
                         float(reply.get("seconds", 0.0)), detail)

    @staticmethod
    def _judge(test: Test, record: dict[str, Any] | None, program_error: str) -> TestResult:
        if record is None:
            return TestResult(False, program_error or "no result: the program stopped before this test",
                              test.kind == "call")
        if "error" in record:
            return TestResult(False, str(record["error"])[:300], test.kind == "call")
        if test.kind == "block":
            return TestResult(record.get("passed") is True, "", trusted=False)
        try:
            got = decode(record.get("value"))
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            return TestResult(False, "the result is not plain data")
        if same(got, test.expected, test.tolerance):
            return TestResult(True, value=got, has_value=True)
        return TestResult(False, f"got {repr(got)[:120]}, expected {repr(test.expected)[:120]}", value=got,
                          has_value=True)

    def _note_isolation(self, isolation: list[str]) -> None:
        global _warned
        if not isolation:
            return
        self.isolation = isolation
        if self.require and self.require not in isolation:
            raise RuntimeError(f"the sandbox reached {isolation}, not the required {self.require!r}")
        if isolation == ["process"] and not _warned:
            _warned = True
            warnings.warn("reasongym.sandbox: only process-level isolation is available here (no network namespace, "
                          "Landlock or seccomp): model-written code can reach the network and write wherever this "
                          "user can. See docs/envs/code.md.", RuntimeWarning, stacklevel=3)
