"""The rich report of `python -m reasongym check`: check_verifier on each env, one table each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reasongym.testing.check import VerifierReport, check_verifier


def render(report: VerifierReport, console: Console) -> None:
    table = Table(title=f"verifier contract: {report.env_id}  ({report.seconds:.1f}s)")
    table.add_column("check")
    table.add_column("result")
    table.add_column("examples", justify="right")
    table.add_column("detail / minimal example", overflow="fold")
    for check in report.checks:
        verdict = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        detail = "" if check.passed else f"{check.failure}\n{check.example!r}"
        table.add_row(check.name, verdict, str(check.examples), detail)
    for probe in report.probes:
        verdict = "[green]pass[/]" if probe.passed else "[red]FAIL[/]"
        rule = "bounded" if probe.expect == "bounded" else f"max reward {probe.max_reward:g} / {probe.full_reward:g}"
        detail = rule if probe.passed else f"{rule}; {probe.detail}; {probe.worst!r}"
        table.add_row(f"probe {probe.name}", verdict, str(probe.cases), detail)
    for name, reason in report.opt_outs.items():
        table.add_row(f"probe {name}", "[dim]opted out[/]", "0", reason)
    for warning in report.warnings:
        table.add_row("probes", "[yellow]warning[/]", "0", warning)
    console.print(table, markup=True)


@dataclass
class EnvCheck:
    """What checking one env gave: the warnings made on the way, and its report or why it was not checked."""
    env_id: str
    warnings: list[str] = field(default_factory=list)
    report: VerifierReport | None = None
    refused: str = ""


def check_one(env_id: str, env_kwargs: str | None = None, imports: list[str] | None = None, examples: int = 100,
              seed: int = 0) -> EnvCheck:
    """Make the env and run its contract; importable and picklable, so a worker process can run it."""
    from reasongym.envargs import import_env_modules, make_env
    from reasongym.errors import UnsafeScoringRefused

    import_env_modules(imports)
    result = EnvCheck(env_id)
    env = make_env(env_id, env_kwargs, warn=result.warnings.append)
    try:
        result.report = check_verifier(env, examples=examples, seed=seed, raise_on_failure=False)
    except UnsafeScoringRefused as exc:
        result.refused = str(exc)
    return result


def checked(env_ids: Sequence[str], jobs: int, **kwargs: Any) -> Iterator[EnvCheck]:
    """`check_one` for each env, in order. With jobs > 1 the envs run side by side, each in its own process
    (the contract is seeded, so the reports are the same either way): a code env's contract spends most of its
    time waiting on sandboxed programs, and a sweep of many envs takes their sum when run one by one."""
    if jobs <= 1 or len(env_ids) <= 1:
        for env_id in env_ids:
            yield check_one(env_id, **kwargs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter per worker, not a fork of a process that may hold threads or sandbox helpers
    with ProcessPoolExecutor(max_workers=min(jobs, len(env_ids)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(check_one, env_id, **kwargs) for env_id in env_ids]
        try:
            for future in futures:
                yield future.result()
        finally:  # an env that fails to build (or Ctrl-C) stops the sweep instead of waiting on the rest
            pool.shutdown(cancel_futures=True)


def default_jobs(count: int) -> int:
    """Envs checked at once when the user does not say: one per CPU core, at most `count`."""
    import os

    return max(1, min(count, os.cpu_count() or 1))


def check_envs(env_ids: Sequence[str], console: Console, examples: int = 100, seed: int = 0,
               env_kwargs: str | None = None, imports: list[str] | None = None, jobs: int = 0) -> int:
    """Check each env (`jobs` at once; 0: `default_jobs`), print its report in the order given; 0 when all keep
    the contract, 1 otherwise."""
    failed = []
    jobs = jobs if jobs > 0 else default_jobs(len(env_ids))
    for result in checked(env_ids, jobs, env_kwargs=env_kwargs, imports=imports, examples=examples, seed=seed):
        for message in result.warnings:
            console.print(f"[yellow]{escape(message)}[/]")
        if result.report is None:
            console.print(f"[red]{result.env_id}: not checked:[/] {escape(result.refused)}", markup=True)
            failed.append(result.env_id)
            continue
        render(result.report, console)
        if not result.report.ok:
            failed.append(result.env_id)
    if failed:
        console.print(f"[red]contract broken by:[/] {', '.join(failed)}")
        return 1
    console.print(f"[green]all {len(env_ids)} env(s) keep the verifier contract[/]")
    return 0
