"""A remote sandbox: the same `run()` as `Sandbox`, executed by a service speaking SandboxFusion's
`POST /run_code` (SandboxFusion itself, or a compatible deployment you already run).

    box = RemoteSandbox("http://sandbox.internal:8080")
    box.run(program, [Test.call("candidate(1, 2)", 3)], entry_point="add").passed

The request carries one Python script: our harness (reasongym.sandbox.harness) and the program and
test expressions; the harness writes one JSON line per test to a file the service returns through
`fetch_files`. Expected values never leave this process, so verdicts are made here exactly as for the
local sandbox. Isolation is whatever the service provides (recorded as "remote" on every result).
An unreachable service, an HTTP error after retries, or a `SandboxError` status is `status == "error"`:
visible, never counted as a wrong answer.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from reasongym.sandbox import RunResult, Sandbox, Test, TestResult

RESULTS_FILE = "reasongym_results.jsonl"
RETRY_STATUSES = (429, 502, 503, 504)


def _harness_source() -> str:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py"), encoding="utf-8") as f:
        return f.read()


def build_script(request: dict[str, Any]) -> str:
    """One self-contained Python file: the harness, then a call that runs the request, results to a file."""
    return (_harness_source() + "\n\nif __name__ == '__main__':\n"
            f"    import sys as _sys\n    _sys.setrecursionlimit(10_000)\n"
            f"    _fd = os.open({RESULTS_FILE!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
            f"    run(json.loads({json.dumps(json.dumps(request))}), _fd)\n")


class RemoteSandbox(Sandbox):
    """`Sandbox.run` over HTTP; thread-safe (each call is its own request)."""

    def __init__(self, url: str, timeout: float = 5.0, memory_mb: int = 2048, retries: int = 3,
                 token: str | None = None) -> None:
        super().__init__(timeout=timeout, memory_mb=memory_mb)
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/run_code") else "/run_code")
        self.retries, self.token = retries, token

    def close(self) -> None:  # no helper process to stop
        return None

    def run(self, program: str, tests: list[Test], entry_point: str | None = None, prelude: str = "",
            timeout: float | None = None) -> RunResult:
        limit = float(timeout or self.timeout)
        request = {"program": program, "prelude": prelude, "entry_point": entry_point,
                   "tests": [{"id": i, "kind": t.kind, "expr": t.expr, "code": t.code} for i, t in enumerate(tests)]}
        body = {"code": build_script(request), "language": "python", "run_timeout": limit, "compile_timeout": 10,
                "memory_limit_MB": self.memory_mb, "stdin": "", "files": {}, "fetch_files": [RESULTS_FILE]}
        started = time.monotonic()
        try:
            reply = self._post(body, limit + 30)
        except (OSError, ValueError) as exc:
            return self._error(tests, f"remote sandbox {self.url}: {type(exc).__name__}: {exc}")
        if reply.get("status") == "SandboxError" or not isinstance(reply.get("run_result"), dict):
            return self._error(tests, f"remote sandbox {self.url}: {str(reply.get('message') or reply)[:300]}")
        run = reply["run_result"]
        encoded = (reply.get("files") or {}).get(RESULTS_FILE) or ""
        try:
            lines = base64.b64decode(encoded).decode("utf-8", "replace") if encoded else ""
        except ValueError:
            lines = ""
        return self._verdicts({"lines": json.dumps({"isolation": ["remote"]}) + "\n" + lines,
                               "timed_out": run.get("status") == "TimeLimitExceeded",
                               "signal": None, "stdout": str(run.get("stdout") or "")[:65536],
                               "stderr": str(run.get("stderr") or "")[:65536],
                               "seconds": float(run.get("execution_time") or time.monotonic() - started)}, tests)

    def _post(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES or attempt == self.retries:
                    raise OSError(f"HTTP {exc.code}") from None
            except urllib.error.URLError as exc:
                if attempt == self.retries:
                    raise OSError(str(exc.reason)) from None
            time.sleep(min(4.0, 0.5 * 2**attempt))
        raise OSError("no reply")

    @staticmethod
    def _error(tests: list[Test], detail: str) -> RunResult:
        return RunResult("error", [TestResult(False, "sandbox error", True) for _ in tests], detail=detail)
