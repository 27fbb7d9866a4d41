"""The warm helper: a small single-threaded process, started fresh (`python -s -E .../helper.py`, a script, so it
imports only this folder's two siblings, the standard library and any `Sandbox(warm_modules=...)`, with a
scrubbed environment), that forks one child per program and supervises it. Small, so each fork is cheap;
common standard-library modules are imported once here, so programs that use them start warm.

Protocol on stdin/stdout: one JSON request per line, one JSON reply per line. The helper, not the
trainer, is the parent of every child: it enforces the wall clock (SIGKILL to the child's process
group), caps what it reads back, and always reaps. It dies with the process that started it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

if __package__:  # imported as part of reasongym (tests, tools)
    from reasongym.sandbox import isolation
    from reasongym.sandbox.harness import run as run_harness
else:  # run as the helper script: its folder is on sys.path, reasongym (gymnasium, numpy) is not imported
    import isolation  # type: ignore[no-redef]
    from harness import run as run_harness  # type: ignore[no-redef]

WARM_MODULES = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
                "random", "copy", "statistics", "fractions", "decimal", "datetime", "operator", "hashlib")

RESULT_CAP = 4 * 1024 * 1024  # bytes of test results read back
OUTPUT_CAP = 64 * 1024  # bytes of stdout / stderr kept
SAFE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _child(request: dict[str, Any], workdir: str, write_fd: int) -> None:
    """In the forked child: a new session, the working directory, files for output, confinement, the harness."""
    code = 0
    try:
        os.setsid()
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update({**SAFE_ENV, "HOME": workdir, "TMPDIR": workdir})
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(os.path.join(workdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        wanted = request.get("layers", {})
        pid_namespace = wanted.get("pid", True) and isolation.enter_pid_namespace()
        own_proc = False
        if pid_namespace:
            _stay_outside(os.fork())  # returns only in the namespace's PID 1, which runs the program
            own_proc = wanted.get("mount", True) and isolation.private_proc()
        limits = isolation.Limits(cpu_seconds=max(1, int(request["timeout"]) + 1), memory_mb=request["memory_mb"])
        layers = isolation.apply(workdir, limits, network=False,
                                 **{k: v for k, v in wanted.items() if k not in ("network", "pid", "mount")})
        if pid_namespace:
            layers[1:1] = ["pidns", "mntns"] if own_proc else ["pidns"]
        if NETWORK_NAMESPACE:
            layers.insert(1, "netns")
        os.write(write_fd, (json.dumps({"isolation": layers}) + "\n").encode())
        sys.setrecursionlimit(request.get("recursion_limit", 10_000))
        run_harness(request, write_fd)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full or closed stream: the output is capped anyway
                pass
        os._exit(code)


def _stay_outside(init_pid: int) -> None:
    """In the forked child, after entering a PID namespace: the new child (`init_pid` 0) goes on; this process
    waits for it and ends the way it ended, so the helper reads the program's exit status or signal."""
    if init_pid == 0:
        return
    _, status = os.waitpid(init_pid, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def supervise(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request in a fresh child; the reply carries raw result lines, outputs and how it ended."""
    workdir = tempfile.mkdtemp(prefix="rg-sandbox-")
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request, workdir, write_fd)
    os.close(write_fd)
    deadline = start + float(request["timeout"])
    chunks, size, status, reaped, timed_out = [], 0, 0, False, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.05))
            if ready:
                data = os.read(read_fd, 65536)
                if not data:  # the child closed its end: it exited (or closed the fd itself)
                    break
                if size < RESULT_CAP:
                    chunks.append(data[: RESULT_CAP - size])
                size += len(data)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = True
                chunks.append(_drain(read_fd, RESULT_CAP - size))
                break
    finally:
        for target in (-pid, pid):  # the whole session (setsid made pid its group), then the child itself
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not reaped:  # always reaped: no zombie outlives its request
            _, status = os.waitpid(pid, 0)
        os.close(read_fd)
        _reap_strays()
        outputs = {name: _read_capped(os.path.join(workdir, name)) for name in ("stdout", "stderr")}
        shutil.rmtree(workdir, ignore_errors=True)
    return {"id": request.get("id"), "lines": b"".join(chunks).decode("utf-8", "replace"), "timed_out": timed_out,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, "overflow": size > RESULT_CAP,
            "seconds": time.monotonic() - start, **outputs}


def _reap_strays() -> None:
    """Kill and reap every process left below the helper. The helper is a child subreaper, so a grandchild
    that double-forked and called setsid (out of reach of the group kill) is reparented here, not to init.
    A loop, not recursion: a fork bomb leaves thousands of zombies to reap, and each sweep may orphan more."""
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass  # reap every zombie already waiting
        except ChildProcessError:
            return  # no descendant left (the common case: no /proc sweep at all)
        _kill_children()
        time.sleep(0.001)


def _kill_children() -> None:
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1].decode() == me:  # field 4 of /proc/PID/stat: the parent pid
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def _drain(fd: int, cap: int) -> bytes:
    out = []
    while cap > 0:
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            break
        data = os.read(fd, min(65536, cap))
        if not data:
            break
        out.append(data)
        cap -= len(data)
    return b"".join(out)


def _read_capped(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(OUTPUT_CAP).decode("utf-8", "replace")
    except OSError:
        return ""


NETWORK_NAMESPACE = False  # entered once by the helper, so every child shares its empty network namespace


def main() -> None:
    global NETWORK_NAMESPACE
    isolation.set_pdeathsig()
    if "--no-network-namespace" not in sys.argv:
        NETWORK_NAMESPACE = isolation.enter_network_namespace()
    isolation.set_child_subreaper()
    isolation.seccomp_library()  # resolved once, before any child is forked
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    for name in (arg.removeprefix("--warm=") for arg in sys.argv if arg.startswith("--warm=")):
        try:  # the caller's extra warm modules (Sandbox(warm_modules=...)); a missing one just stays cold
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the trainer, which closes us
    for line in sys.stdin:
        try:
            reply = supervise(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - a broken request must not kill the helper
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
