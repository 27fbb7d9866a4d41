"""Batch scoring with hard, outside-enforced per-item timeouts.

A verifier that hangs (math-verify on `9^{9^{9^9}}`, sympy on a giant power)
must cost one item its reward, not stall a training step. Signal-based timeouts
do not survive threads or C code, so the limit is enforced from the parent:
each worker process scores one item at a time; a worker that overruns is killed,
replaced, and its item gets Outcome.TIMEOUT. Cheap verifiers that are bounded by
construction skip the pool, because process hops cost more than they save.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Protocol, Sequence

from reasongym.errors import UnsafeScoringRefused
from reasongym.types import Outcome, Score, Task


WORKER_KILLED = "worker killed"  # in the detail of a score whose verifier ran past the hard limit


class Env(Protocol):
    """What the engine needs of an env (reasongym.Env has it); a protocol, so scoring does
    not import reasongym.env, which imports scoring."""

    cheap_verifier: bool
    score_timeout: float

    def score(self, completion: str, task: Task) -> Score: ...

    def make_score(self, components: dict[str, float], outcome: Outcome, parsed: object = None,
                   detail: str = "") -> Score: ...


@dataclass
class BatchResult:
    scores: list[Score]
    latencies: list[float]
    counts: Counter = field(default_factory=Counter)

    @property
    def latency_p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0

    @property
    def latency_max(self) -> float:
        return max(self.latencies, default=0.0)

    def latency_quantile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def require_safe_scoring(env: object) -> None:
    """The one gate every scoring path passes (Env.score, every engine, so evaluate, check and the trainers):
    an env whose scorer executes model text scores only when it was made with allow_unsafe_scoring=True."""
    reason = getattr(env, "executes_model_text", "")
    if reason and not getattr(env, "allow_unsafe_scoring", False):
        env_id = getattr(env, "env_id", type(env).__name__)
        raise UnsafeScoringRefused(
            f"{env_id} is not scored: {reason}, so a completion could run code in this process's account. "
            f"Use its safe verifier, or opt in knowingly with make({env_id!r}, ..., allow_unsafe_scoring=True) "
            "(on the command line: --env-kwargs '{\"allow_unsafe_scoring\": true}'), ideally in a sandboxed account.")


class ScoringEngine:
    """Scores (completion, task) pairs for one env at a time.

    workers=0 scores in the calling process (no timeout enforcement: for
    verifiers that are bounded by construction). workers>=1 uses that many
    forked worker processes with a hard `timeout` seconds per item.
    """

    def __init__(self, workers: int = 0, timeout: float | None = None):
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.workers = workers
        self.timeout = timeout
        self._pool: _WorkerPool | None = None

    def score(self, env: Env, completions: Sequence[str], tasks: Sequence[Task]) -> BatchResult:
        if len(completions) != len(tasks):
            raise ValueError(f"{len(completions)} completions but {len(tasks)} tasks: they must pair up")
        require_safe_scoring(env)
        if self.workers == 0:
            scores, latencies = [], []
            for completion, task in zip(completions, tasks):
                start = time.perf_counter()
                scores.append(env.score(completion, task))
                latencies.append(time.perf_counter() - start)
        else:
            if self._pool is None or self._pool.env is not env:
                self.close()
                self._pool = _WorkerPool(env, self.workers, self.timeout or env.score_timeout)
            scores, latencies = self._pool.run(list(completions), list(tasks))
        return BatchResult(scores, latencies, Counter(s.outcome.value for s in scores))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "ScoringEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


_default_engines: dict[int, ScoringEngine] = {}


def default_engine(env: Env) -> ScoringEngine:
    """In-process for cheap verifiers, else a shared pool sized to the machine."""
    if env.cheap_verifier:
        return _default_engines.setdefault(0, ScoringEngine(workers=0))
    workers = max(1, min(8, (os.cpu_count() or 2)))
    return _default_engines.setdefault(workers, ScoringEngine(workers=workers))


@atexit.register
def _close_default_engines() -> None:
    for engine in _default_engines.values():
        engine.close()


_in_worker = False


def in_worker() -> bool:
    """True inside a scoring-engine worker: the hard timeout already guards whatever runs here, so
    envs that must never score in the trainer's process (third-party scorers) may score in place."""
    return _in_worker


def _worker_main(env: Env, conn: Connection) -> None:
    import signal

    global _in_worker
    _in_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        index, completion, task_dict = item
        start = time.perf_counter()
        score = env.score(completion, Task.from_dict(task_dict))
        conn.send((index, score.to_dict(), time.perf_counter() - start))


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, env: Env):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(env, child), daemon=True)
        self.process.start()
        child.close()
        self.item: int | None = None
        self.started = 0.0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class _WorkerPool:
    def __init__(self, env: Env, size: int, timeout: float):
        self.env = env
        self.timeout = timeout
        # fork keeps envs registered at runtime (a user's callable entry point) visible in workers
        self.ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.workers = [_Worker(self.ctx, env) for _ in range(size)]

    def run(self, completions: list[str], tasks: list[Task]) -> tuple[list[Score], list[float]]:
        n = len(completions)
        scores: list[Score | None] = [None] * n
        latencies = [0.0] * n
        pending = list(range(n - 1, -1, -1))
        try:
            while pending or any(w.item is not None for w in self.workers):
                for slot, worker in enumerate(self.workers):
                    if worker.item is None and pending:
                        if not worker.process.is_alive():  # died while idle (killed from outside): a fresh one
                            worker.kill()
                            worker = self.workers[slot] = _Worker(self.ctx, self.env)
                        index = pending.pop()
                        worker.item, worker.started = index, time.perf_counter()
                        try:
                            worker.conn.send((index, completions[index], tasks[index].to_dict()))
                        except (OSError, ValueError):  # its pipe broke just now: the item is retried later
                            worker.item = None
                            pending.append(index)
                            worker.kill()
                            self.workers[slot] = _Worker(self.ctx, self.env)
                busy = [w for w in self.workers if w.item is not None]
                if not busy:
                    continue
                now = time.perf_counter()
                soonest = min(w.started + self.timeout for w in busy)
                ready = wait([w.conn for w in busy], timeout=max(0.0, soonest - now))
                for worker in busy:
                    if worker.conn in ready:
                        self._collect(worker, scores, latencies)
                    elif time.perf_counter() - worker.started >= self.timeout:
                        self._replace(worker, scores, latencies, Outcome.TIMEOUT,
                                      f"verifier exceeded {self.timeout:g}s; {WORKER_KILLED}")
        except BaseException:
            self.shutdown()  # Ctrl-C or anything else: leave no process behind
            raise
        return [s for s in scores if s is not None], latencies

    def _collect(self, worker: _Worker, scores: list, latencies: list) -> None:
        try:
            index, score, latency = worker.conn.recv()
        except (EOFError, OSError):
            self._replace(worker, scores, latencies, Outcome.ERROR, "verifier worker died")
            return
        scores[index] = Score.from_dict(score)
        latencies[index] = latency
        worker.item = None

    def _replace(self, worker: _Worker, scores: list, latencies: list, outcome: Outcome, detail: str) -> None:
        index = worker.item
        assert index is not None
        scores[index] = self.env.make_score({}, outcome, detail=detail)
        latencies[index] = time.perf_counter() - worker.started
        worker.kill()
        slot = self.workers.index(worker)
        self.workers[slot] = _Worker(self.ctx, self.env)

    def shutdown(self) -> None:
        for worker in self.workers:
            try:
                if worker.process.is_alive() and worker.item is None:
                    worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in self.workers:
            worker.process.join(timeout=1)
            worker.kill()
        self.workers = []
