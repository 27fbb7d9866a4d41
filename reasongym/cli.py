"""`python -m reasongym list | show | sample | check | plot | report | contamination | export | serve`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from reasongym import registry
from reasongym.templates import plain_text
from reasongym.envargs import import_env_modules, make_env
from reasongym.registry import UnknownEnvError


def make_for_inspection(env_id: str, env_kwargs: str | None, console: Console):
    """The env to inspect; a dataset env whose hub is unreachable falls back to its built-in sample."""
    return make_env(env_id, env_kwargs, warn=lambda message: console.print(f"[yellow]{escape(message)}[/]"))


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="reasongym environments")
    table.add_column("id", style="bold cyan")
    table.add_column("entry point")
    table.add_column("default kwargs")
    table.add_column("description")
    for env_spec in registry.list_envs():
        table.add_row(env_spec.id, env_spec.entry_point_name, json.dumps(env_spec.kwargs), env_spec.description)
    console.print(table)
    if any(s.family == "reasoning-gym" for s in registry.list_envs()):
        import importlib.util

        if importlib.util.find_spec("reasoning_gym") is None:
            console.print("[yellow]reasoning-gym/* envs need the package: pip install 'reasongym[reasoning-gym]'[/]")
    for name, error in registry.plugin_errors().items():
        console.print(f"[red]plugin {name!r} failed to load:[/] {error}")
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    env_spec = registry.spec(args.id)
    env = make_for_inspection(args.id, args.env_kwargs, console)
    table = Table(show_header=False, title=f"[bold]{env_spec.id}[/]")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("description", env_spec.description)
    table.add_row("entry point", env_spec.entry_point_name)
    table.add_row("kwargs", json.dumps(env.spec.kwargs if env.spec else {}, default=str))
    table.add_row("template", f"{env.template.name} ({env.template.kind}); available: {', '.join(sorted(env.templates))}")
    table.add_row("reward mode", f"{env.reward_mode}; available: {', '.join(sorted(env.reward_modes))}")
    table.add_row("reward components", ", ".join(f"{k} x {w:g}" for k, w in env.reward_weights.items()))
    table.add_row("reward range", f"{env.reward_range[0]:g} .. {env.reward_range[1]:g}")
    table.add_row("turns", "1 (single-turn; max_turns=N allows retries with feedback)" if env.max_turns == 1 else
                  f"up to {env.max_turns}, reward x {env.turn_decay:g} per extra turn")
    for split in type(env).splits:
        if split not in env.splits:
            table.add_row(f"split {split}", "not loaded (pass data_files={'" + split + "': ...} to load it)")
            continue
        count = env.task_count(split)
        table.add_row(f"split {split}", "procedural (unbounded)" if count is None else f"{count} tasks loaded")
    table.add_row("verifier", "in-process (bounded by construction)" if env.cheap_verifier
                  else f"process pool, hard timeout {env.score_timeout:g}s")
    console.print(table)
    return 0


def cmd_sample(args: argparse.Namespace, console: Console) -> int:
    env = make_for_inspection(args.id, args.env_kwargs, console)
    for task in env.tasks(split=args.split or env.splits[0], n=args.n, seed=args.seed):
        rendered = plain_text(env.prompt(task), roles=True)
        reference = env.reference_completion(task)
        body = f"{escape(rendered)}\n\n[bold]gold answer:[/] {escape(str(task.answer))}"
        if reference is not None:
            score = env.score(reference, task)
            body += f"\n[bold]reference completion[/] (reward {score.reward:g}, {score.outcome.value}):\n{escape(reference)}"
        console.print(Panel(body, title=f"{task.id}  difficulty={task.difficulty}", expand=False), markup=True)
    return 0


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from reasongym.testing.report import check_envs

    if args.all == bool(args.id):
        console.print("[red]error:[/] give one env id or --all")
        return 2
    if args.all:
        specs = registry.list_envs()
        families = sorted({s.family for s in specs if s.family and s.family not in (args.family or [])})
        ids = [s.id for s in specs if not s.family or s.family in (args.family or [])]
        for family in families:
            count = sum(s.family == family for s in specs)
            console.print(f"[dim]--all leaves out the {count} {family}/* envs: check them by id, with --family {family}, "
                          f"or sweep them with benchmarks/reasoning_gym_report.py[/]")
    else:
        ids = [args.id]
    return check_envs(ids, console, examples=args.examples, seed=args.seed, env_kwargs=args.env_kwargs,
                      imports=args.imports, jobs=args.jobs)


def cmd_plot(args: argparse.Namespace, console: Console) -> int:
    from reasongym.runs import plot_run

    written = plot_run(args.run_dir, args.out)
    for path in written:
        console.print(f"wrote {path}")
    return 0 if written else 1


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from reasongym.runs import summarize

    summary = summarize(args.run_dir)
    table = Table(title=f"run {args.run_dir}: {summary['steps']} steps")
    table.add_column("metric")
    table.add_column("first 20% of steps", justify="right")
    table.add_column("last 20% of steps", justify="right")
    for key, values in summary["metrics"].items():
        table.add_row(key, f"{values['first_20pct']:.3f}", f"{values['last_20pct']:.3f}")
    console.print(table)
    if summary["eval"]:
        evals = Table(title="held-out evaluation")
        evals.add_column("step", justify="right")
        evals.add_column("eval_reward", justify="right")
        evals.add_column("eval correct", justify="right")
        for row in summary["eval"]:
            correct = row["eval_correct"]
            evals.add_row(str(row["step"]), f"{row['eval_reward']:.3f}", "" if correct is None else f"{correct:.3f}")
        console.print(evals)
    for sample in summary.get("last_correct_samples", []):
        console.print(Panel(escape(sample["completion"]), title=f"a correct completion, step {sample['step']}",
                            expand=False))
    if args.json:
        console.print_json(json.dumps(summary, default=str))
    return 0


def cmd_contamination(args: argparse.Namespace, console: Console) -> int:
    from reasongym.contamination import contamination

    env = make_for_inspection(args.id, args.env_kwargs, console)
    report = contamination(env, n=args.n, seed=args.seed)
    table = Table(title=f"contamination: {report['env']}")
    table.add_column("split / pair")
    table.add_column("tasks", justify="right")
    table.add_column("duplicates / overlap", justify="right")
    for split, stats in report["splits"].items():
        table.add_row(split, str(stats["tasks"]), f"duplicate rate {stats['duplicate_rate']:.4f}")
    for pair, stats in report["overlap"].items():
        share = next(v for k, v in stats.items() if k.startswith("share_of_"))
        table.add_row(pair, "", f"{stats['shared_unique_tasks']} shared tasks ({share:.2%} of the second split)")
    console.print(table)
    return 1 if any(s["shared_unique_tasks"] for s in report["overlap"].values()) else 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from reasongym.adapters import verl

    env = make_for_inspection(args.id, args.env_kwargs, console)
    kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    rows = verl.rows(env, args.split or env.default_split, args.n, args.seed, env_kwargs=kwargs)
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(args.out)
    console.print(f"wrote {len(rows)} {args.format} rows of {env.env_id} ({args.split or env.default_split}) to {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    import os
    import secrets

    try:
        import uvicorn

        from reasongym.serve import ServeConfig, create_app
    except ImportError as exc:
        console.print(f"[red]error:[/] serving needs starlette and uvicorn: pip install 'reasongym[serve]' ({exc})")
        return 2
    token = args.token or os.environ.get("REASONGYM_SERVE_TOKEN")
    if args.insecure_no_token:
        token = None
        console.print("[bold red]WARNING: serving without a token: anyone who can reach "
                      f"{args.host}:{args.port} can make this machine run verifiers.[/]")
    elif not token:
        token = secrets.token_urlsafe(24)
        console.print(f"bearer token (set REASONGYM_SERVE_TOKEN or --token to choose one): {token}", markup=False)
    if args.env:
        registry.spec(args.env)  # an unknown default env fails now, not at the first request
    config = ServeConfig(token=token, max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_items=args.max_items,
                         default_env=args.env, default_env_kwargs=json.loads(args.env_kwargs) if args.env_kwargs else {},
                         engines_per_env=args.engines_per_env, timeout=args.timeout)
    console.print(f"serving reasongym verifiers on http://{args.host}:{args.port} (/score, /get_reward, /verify, /health)")
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reasongym", description="Inspect and check reasongym envs.")
    imports = argparse.ArgumentParser(add_help=False)
    imports.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                         help="import MODULE first (it registers your envs); repeatable; the current directory is "
                              "on the path")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[imports], **kwargs)  # every subcommand takes --import

    command("list", help="table of registered envs")
    show = command("show", help="spec, templates, reward components and splits of one env")
    show.add_argument("id")
    show.add_argument("--env-kwargs", help="JSON object of env overrides")
    sample = command("sample", help="rendered prompts with gold answers and reference completions")
    sample.add_argument("id")
    sample.add_argument("-n", type=int, default=3)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--split", default=None, help="default: the env's first split")
    sample.add_argument("--env-kwargs", help="JSON object of env overrides")
    check = command("check", help="run the verifier contract and reward-hacking probes")
    check.add_argument("id", nargs="?")
    check.add_argument("--all", action="store_true", help="check every registered env (env families only with --family)")
    check.add_argument("--family", action="append", help="with --all: also check this family's envs (e.g. reasoning-gym)")
    check.add_argument("--examples", type=int, default=100, help="hypothesis examples per property")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--env-kwargs", help="JSON object of env overrides")
    check.add_argument("--jobs", type=int, default=0,
                       help="envs checked at once, each in its own process (default 0: one per CPU core)")
    plot = command("plot", help="PNG curves of a training run (reward, held-out, length, aha, difficulty)")
    plot.add_argument("run_dir")
    plot.add_argument("--out", default=None, help="output folder (default RUN_DIR/plots)")
    report = command("report", help="summary of a training run")
    report.add_argument("run_dir")
    report.add_argument("--json", action="store_true")
    contam = command("contamination", help="train/test overlap and duplicate rate of an env's splits")
    contam.add_argument("id")
    contam.add_argument("-n", type=int, default=10_000, help="tasks per procedural split")
    contam.add_argument("--seed", type=int, default=0)
    contam.add_argument("--env-kwargs", help="JSON object of env overrides")
    export = command("export", help="write an env's tasks as another engine's training rows (verl parquet)")
    export.add_argument("id")
    export.add_argument("out", help="output .parquet file")
    export.add_argument("--format", choices=["verl"], default="verl")
    export.add_argument("--split", default=None, help="default: train, or the env's only split")
    export.add_argument("-n", type=int, default=None, help="number of tasks (procedural envs need it)")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--env-kwargs", help="JSON object of env overrides (travels in each row)")
    serve = command("serve", help="an HTTP reward service: /score, OpenRLHF's /get_reward, NeMo Gym's /verify")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--token", default=None, help="bearer token clients must send (or REASONGYM_SERVE_TOKEN)")
    serve.add_argument("--insecure-no-token", action="store_true", help="accept requests without a token (warns)")
    serve.add_argument("--env", default=None, help="env of labels that carry only a task (OpenRLHF)")
    serve.add_argument("--env-kwargs", help="JSON object of that env's overrides")
    serve.add_argument("--max-body-mb", type=float, default=8.0)
    serve.add_argument("--max-items", type=int, default=512, help="completions per request")
    serve.add_argument("--engines-per-env", type=int, default=2, help="scoring workers per env (each hard-timed)")
    serve.add_argument("--timeout", type=float, default=None, help="seconds per completion (default: the env's)")
    return parser


COMMANDS = {"list": cmd_list, "show": cmd_show, "sample": cmd_sample, "check": cmd_check, "plot": cmd_plot,
            "report": cmd_report, "contamination": cmd_contamination, "export": cmd_export, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(emoji=False)
    try:
        import_env_modules(args.imports)
        return COMMANDS[args.command](args, console)
    except (UnknownEnvError, ValueError, RuntimeError, FileNotFoundError) as exc:  # EnvArgsError is a ValueError
        console.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
