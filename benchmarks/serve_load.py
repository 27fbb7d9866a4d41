"""Load and fault test of `python -m reasongym serve` over real HTTP.

    pip install -e ".[serve]"
    python benchmarks/serve_load.py [--seconds 60] [--clients 8] [--batch 8] [--kill-worker]

Concurrent clients POST /score batches of countdown-3to4 completions (half right, half wrong) for the
given time; one client in eight sends a math item that hangs its verifier (killed at the server's
timeout). Reports requests/s, completions/s, p50/p99 latency of the plain requests, errors (non-200)
and lost requests (no answer). --kill-worker SIGKILLs one scoring worker mid-run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import reasongym as rg

TOKEN = "load-test"


def post(port: int, body: dict, timeout: float = 120) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        json.loads(response.read())
        return response.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--kill-worker", action="store_true")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "reasongym", "serve", "--port", str(port), "--token", TOKEN,
                               "--engines-per-env", str(args.engines), "--timeout", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    env = rg.make("countdown-3to4")
    tasks = env.tasks(n=args.batch, seed=1)
    items = [{"env": "countdown-3to4", "task": t.to_dict(),
              "completion": env.reference_completion(t) if i % 2 else " x </think><answer>1+1</answer>"}
             for i, t in enumerate(tasks)]
    math_task = rg.make("math-500", source="sample").tasks(n=1)[0]
    hang = [{"env": "math-500", "env_kwargs": {"source": "sample"}, "task": math_task.to_dict(),
             "completion": "x </think><answer>\\boxed{9^{9^{9^{9}}}}</answer>"}]
    post(port, {"items": items})
    post(port, {"items": hang})  # warm both envs' engines before the clock
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "errors": 0, "lost": 0, "hung_ok": 0}
    lock = threading.Lock()
    stop = time.time() + args.seconds

    def client(number: int) -> None:
        while time.time() < stop:
            body = {"items": hang} if number == 0 else {"items": items}
            start = time.perf_counter()
            with lock:
                counts["sent"] += 1
            try:
                status = post(port, body)
                key = "hung_ok" if number == 0 and status == 200 else "ok" if status == 200 else "errors"
            except urllib.error.HTTPError:
                key = "errors"
            except OSError:
                key = "lost"
            with lock:
                counts[key] += 1
                if number != 0 and key == "ok":
                    latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    if args.kill_worker:
        time.sleep(args.seconds / 2)
        workers = subprocess.run(["ps", "--ppid", str(server.pid), "-o", "pid="], capture_output=True,
                                 text=True).stdout.split()
        if workers:
            os.kill(int(workers[0]), signal.SIGKILL)
            print(f"killed scoring worker {workers[0]} mid-run")
    for thread in threads:
        thread.join()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    ordered = sorted(latencies)
    plain = counts["ok"]
    print(f"{args.clients} clients x {args.seconds:g} s, batches of {args.batch}, {args.engines} engines per env")
    print(f"requests/s {plain / args.seconds:.1f} (completions/s {plain * args.batch / args.seconds:.0f}); "
          f"p50 {1000 * statistics.median(ordered):.1f} ms, p99 {1000 * ordered[int(0.99 * (len(ordered) - 1))]:.1f} ms")
    print(f"sent {counts['sent']}, answered {counts['ok'] + counts['hung_ok']} (hanging-verifier requests "
          f"{counts['hung_ok']}), errors {counts['errors']}, lost {counts['lost']}")
    return 0 if counts["errors"] == 0 and counts["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
