"""`python -m reasongym check`: run check_verifier and print a rich report."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from reasongym import registry
from reasongym.cli import make_for_inspection
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
    console.print(table, markup=True)


def run_check_cli(args: argparse.Namespace, console: Console) -> int:
    if args.all == bool(args.id):
        console.print("[red]error:[/] give one env id or --all")
        return 2
    kwargs = json.loads(args.env_kwargs) if getattr(args, "env_kwargs", None) else {}
    ids = [s.id for s in registry.list_envs()] if args.all else [args.id]
    failed = []
    for env_id in ids:
        env = make_for_inspection(env_id, kwargs, console)
        report = check_verifier(env, examples=args.examples, seed=args.seed, raise_on_failure=False)
        render(report, console)
        if not report.ok:
            failed.append(env_id)
    if failed:
        console.print(f"[red]contract broken by:[/] {', '.join(failed)}")
        return 1
    console.print(f"[green]all {len(ids)} env(s) keep the verifier contract[/]")
    return 0
