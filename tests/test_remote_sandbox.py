"""The remote sandbox backend over real HTTP, against a small SandboxFusion-compatible service run here."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import reasongym as rg
from reasongym.sandbox import Test
from reasongym.sandbox.remote import RemoteSandbox
from reasongym.types import Outcome


class _FusionStandIn(BaseHTTPRequestHandler):
    """POST /run_code as SandboxFusion answers it: run the code with python, return run_result and fetch_files.
    `failures_left` 503s come first (to test retries); `sandbox_error` answers every request with SandboxError."""

    failures_left = 0
    sandbox_error = False
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/run_code":
            return self._send(404, {"detail": "not found"})
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            return self._send(503, {"detail": "busy"})
        if type(self).sandbox_error:
            return self._send(200, {"status": "SandboxError", "message": "no executor available", "run_result": None})
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "main.py"), "w") as f:
                f.write(body["code"])
            try:
                proc = subprocess.run([sys.executable, "main.py"], cwd=folder, capture_output=True, text=True,
                                      timeout=body["run_timeout"])
                run = {"status": "Finished", "return_code": proc.returncode, "stdout": proc.stdout,
                       "stderr": proc.stderr, "execution_time": 0.01}
            except subprocess.TimeoutExpired:
                run = {"status": "TimeLimitExceeded", "return_code": None, "stdout": "", "stderr": "",
                       "execution_time": body["run_timeout"]}
            files = {}
            for name in body.get("fetch_files", []):
                path = os.path.join(folder, name)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        files[name] = base64.b64encode(f.read()).decode()
        status = "Success" if run["status"] == "Finished" and run["return_code"] == 0 else "Failed"
        self._send(200, {"status": status, "message": "", "compile_result": None, "run_result": run, "files": files})

    def _send(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def service():
    _FusionStandIn.failures_left, _FusionStandIn.sandbox_error, _FusionStandIn.requests = 0, False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FusionStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ADD = "def add(a, b):\n    return a + b\n"
TESTS = [Test.call("candidate(1, 2)", 3), Test.call("candidate(1234000, 567)", 1234567)]


def test_remote_verdicts_are_made_here(service):
    box = RemoteSandbox(service, timeout=5)
    ok = box.run(ADD, TESTS, entry_point="add")
    assert ok.passed and ok.isolation == ["remote"] and ok.status == "ok"
    sent = _FusionStandIn.requests[-1]
    assert sent["language"] == "python" and "1234567" not in sent["code"]  # expected values stay here
    wrong = box.run("def add(a, b):\n    return a - b\n", TESTS, entry_point="add")
    assert not wrong.passed and "expected 3" in wrong.tests[0].detail
    for hostile in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"):  # an early exit passes nothing
        early = box.run(hostile + ADD, TESTS, entry_point="add")
        assert not early.passed and early.status in ("ok", "crashed")
    slow = box.run("while True:\n    pass\n" + ADD, TESTS, entry_point="add", timeout=1)
    assert slow.status == "timeout" and not slow.passed


def test_service_failures_are_errors_not_wrong_answers(service):
    _FusionStandIn.failures_left = 1  # one 503, then an answer: retried
    assert RemoteSandbox(service, retries=2).run(ADD, TESTS, entry_point="add").passed
    _FusionStandIn.sandbox_error = True
    result = RemoteSandbox(service).run(ADD, TESTS, entry_point="add")
    assert result.status == "error" and "no executor available" in result.detail
    down = RemoteSandbox("http://127.0.0.1:9", retries=0).run(ADD, TESTS, entry_point="add")
    assert down.status == "error" and not down.passed


def test_code_env_scores_through_the_remote_service(service):
    env = rg.make("humaneval", source="sample", sandbox_url=service)
    task = env.tasks("test", n=1)[0]
    good = env.score(env.reference_completion(task), task)
    assert good.outcome is Outcome.CORRECT and good.parsed["isolation"] == ["remote"]
    assert env.score(env.near_miss(task), task).outcome is Outcome.WRONG
    _FusionStandIn.sandbox_error = True
    fresh = rg.make("humaneval", source="sample", sandbox_url=service, min_timeout=3, max_timeout=3)
    assert fresh.score(fresh.reference_completion(task), task).outcome is Outcome.ERROR
