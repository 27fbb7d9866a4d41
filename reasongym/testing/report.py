"""The rich report of `python -m reasongym check`: check_verifier on each env, one table each."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
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


def check_envs(envs: Iterable, console: Console, examples: int = 100, seed: int = 0) -> int:
    """Check each env, print its report; 0 when all keep the contract, 1 otherwise."""
    from reasongym.errors import UnsafeScoringRefused

    failed, count = [], 0
    for env in envs:
        count += 1
        try:
            report = check_verifier(env, examples=examples, seed=seed, raise_on_failure=False)
        except UnsafeScoringRefused as exc:
            console.print(f"[red]{env.env_id}: not checked:[/] {exc}", markup=True)
            failed.append(env.env_id)
            continue
        render(report, console)
        if not report.ok:
            failed.append(env.env_id)
    if failed:
        console.print(f"[red]contract broken by:[/] {', '.join(failed)}")
        return 1
    console.print(f"[green]all {count} env(s) keep the verifier contract[/]")
    return 0
