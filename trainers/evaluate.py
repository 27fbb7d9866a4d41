"""Evaluate a policy on an env split: accuracy, pass@k, reward components, outcomes, per difficulty.

    python -m trainers.evaluate --env countdown-3to4 --model M --split test --n 500 --samples 16 --k 1,8,16
    python -m trainers.evaluate --compare BEFORE_DIR AFTER_DIR   # paired before/after, sign test
    python -m trainers.evaluate --suite x-r1 --model M           # GSM8K, MATH-500, HumanEval, MBPP, MMLU, BBH

pass@k uses the unbiased estimator 1 - C(n-c, k) / C(n, k) over n samples with c
correct (Chen et al., 2021), averaged over tasks. Writes `report.json` and
`samples.jsonl` into the output dir.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym.adapters.trl import render_prompt
from reasongym.types import Task
from trainers.common.recipes import pretrained_recipe
from trainers.common.cli import RecipeError, TrainerCLI, open_env, run_entry_point
from trainers.common.options import RENAMED, CommonOptions
from trainers.rollout.generation import Backend, Sampling


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples (drawn without replacement from n, c correct) is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must lie in 1..n (n={n} samples per task): draw more samples or lower k")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class EvalReport:
    env_id: str
    split: str
    tasks: int
    samples_per_task: int
    accuracy: float
    format_rate: float
    mean_reward: float
    pass_at: dict[str, float]
    components: dict[str, float]
    outcomes: dict[str, int]
    by_difficulty: dict[str, dict[str, float]] = field(default_factory=dict)
    correct_per_task: list[int] = field(default_factory=list)
    success_by_turn: dict[str, float] = field(default_factory=dict)  # multi-turn: "pass@turn-k" -> share solved by k

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def evaluate(env: rg.Env, backend: Backend, tasks: Sequence[Task], samples: int = 1, ks: Sequence[int] = (1,),
             sampling: Sampling = Sampling(), tokenizer: Any = None, batch_prompts: int = 64,
             console: Console | None = None, description: str = "evaluating",
             sample_log: str | None = None) -> EvalReport:
    """Generate `samples` completions per task, score them, aggregate. A multi-turn or tool env plays
    whole episodes instead (`run_episodes`), and the report adds success by turn."""
    from trainers.common.progress import make_progress

    if env.multi_turn:
        return evaluate_episodes(env, backend, tasks, samples, ks, sampling, tokenizer, console, description,
                                 sample_log)

    for k in ks:
        if k > samples:
            raise ValueError(f"pass@{k} needs at least {k} samples per task; got --samples {samples}")
    tok = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
    correct_counts: list[int] = []
    rewards: list[float] = []
    components: dict[str, list[float]] = defaultdict(list)
    outcomes: Counter = Counter()
    per_level: dict[str, list[int]] = defaultdict(list)
    log = open(sample_log, "w", encoding="utf-8") if sample_log else None
    progress = make_progress(console)
    try:
        with progress:
            bar = progress.add_task(description, total=len(tasks), info="")
            for start in range(0, len(tasks), batch_prompts):
                chunk = list(tasks[start : start + batch_prompts])
                prompts = [render_prompt(env, t, tok) for t in chunk]
                completions = backend.generate(prompts, samples, sampling)
                flat_tasks = [t for t in chunk for _ in range(samples)]
                flat = [c for group in completions for c in group]
                scores = env.score_batch(flat, flat_tasks)
                for i, task in enumerate(chunk):
                    group = scores[i * samples : (i + 1) * samples]
                    correct_counts.append(sum(s.correct for s in group))
                    per_level[str(task.difficulty)].extend(int(s.correct) for s in group)
                for task, text, score in zip(flat_tasks, flat, scores):
                    rewards.append(score.reward)
                    outcomes[score.outcome.value] += 1
                    for name, value in score.components.items():
                        components[name].append(value)
                    if log:
                        log.write(json.dumps({"task_id": task.id, "completion": text, **score.to_dict()}) + "\n")
                done = len(correct_counts)
                progress.update(bar, completed=done,
                                info=f"acc {sum(correct_counts) / max(1, done * samples):.3f}")
    finally:
        if log:
            log.close()
    total = max(1, len(rewards))
    return EvalReport(
        env_id=env.env_id, split="", tasks=len(tasks), samples_per_task=samples,
        accuracy=sum(correct_counts) / total,
        format_rate=sum(components.get("format", [])) / total if "format" in components else float("nan"),
        mean_reward=sum(rewards) / total,
        pass_at={f"pass@{k}": sum(pass_at_k(samples, c, k) for c in correct_counts) / max(1, len(correct_counts))
                 for k in ks},
        components={name: sum(v) / len(v) for name, v in components.items()},
        outcomes=dict(outcomes),
        by_difficulty={level: {"accuracy": sum(v) / len(v), "samples": len(v)} for level, v in sorted(per_level.items())},
        correct_per_task=correct_counts,
    )



def run_episodes(env: rg.Env, backend: Backend, tasks: Sequence[Task], samples: int, sampling: Sampling,
                 tokenizer: Any = None) -> list[list[Any]]:
    """`samples` episodes per task played to the end with `backend`, side by side: each round generates one
    answer for every unfinished episode from its observation (the conversation so far, feedback included)."""
    from reasongym.templates import observation_text

    tok = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
    episodes = [[env.episode_class(env, task) for _ in range(samples)] for task in tasks]
    flat = [e for group in episodes for e in group]
    for round_index in range(64):
        active = [e for e in flat if not e.done]
        if not active:
            break
        observations = [e.observation() for e in active]
        prompts = [observation_text(obs, tok, env.template) for obs in observations]
        answers = backend.generate(prompts, 1, Sampling(sampling.temperature, sampling.top_p, sampling.max_new_tokens,
                                                        sampling.seed + round_index))
        for episode, (answer,) in zip(active, answers):
            episode.step(answer)
    return episodes


def evaluate_episodes(env: rg.Env, backend: Backend, tasks: Sequence[Task], samples: int, ks: Sequence[int],
                      sampling: Sampling, tokenizer: Any, console: Console | None, description: str,
                      sample_log: str | None) -> EvalReport:
    """Accuracy = episodes solved at any turn; success by turn k = solved within k turns (pass@turn-k)."""
    if console is not None:
        console.print(f"{description}: {len(tasks)} tasks x {samples} episode(s), up to {env.max_turns} turn(s)")
    episodes = run_episodes(env, backend, tasks, samples, sampling, tokenizer)
    flat = [e for group in episodes for e in group]
    total = max(1, len(flat))
    correct_counts = [sum(e.solved for e in group) for group in episodes]
    turns_allowed = max([env.max_turns] + [len(e.turns) for e in flat])
    outcomes = Counter(e.turns[-1].score.outcome.value for e in flat if e.turns)
    if sample_log:
        with open(sample_log, "w", encoding="utf-8") as log:
            for e in flat:
                log.write(json.dumps({"task_id": e.task.id, "success_turn": e.success_turn, "reward": e.reward,
                                      "turns": [{"completion": t.action, "feedback": t.feedback, **t.score.to_dict()}
                                                for t in e.turns]}) + "\n")
    per_level: dict[str, list[int]] = defaultdict(list)
    for group in episodes:
        for e in group:
            per_level[str(e.task.difficulty)].append(int(e.solved))
    return EvalReport(
        env_id=env.env_id, split="", tasks=len(tasks), samples_per_task=samples,
        accuracy=sum(correct_counts) / total,
        format_rate=sum(t.score.components.get("format", 0.0) for e in flat for t in e.turns[:1]) / total,
        mean_reward=sum(e.reward for e in flat) / total,
        pass_at={f"pass@{k}": sum(pass_at_k(samples, c, k) for c in correct_counts) / max(1, len(correct_counts))
                 for k in ks},
        components={}, outcomes=dict(outcomes),
        by_difficulty={level: {"accuracy": sum(v) / len(v), "samples": len(v)} for level, v in sorted(per_level.items())},
        correct_per_task=correct_counts,
        success_by_turn={f"pass@turn-{k}": sum(e.success_turn is not None and e.success_turn <= k for e in flat) / total
                         for k in range(1, turns_allowed + 1)},
    )


def report_table(report: EvalReport, title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("tasks x samples", f"{report.tasks} x {report.samples_per_task}")
    table.add_row("accuracy", f"{report.accuracy:.3f}")
    for name, value in report.pass_at.items():
        table.add_row(name, f"{value:.3f}")
    for name, value in report.success_by_turn.items():
        table.add_row(name, f"{value:.3f}")
    table.add_row("mean reward", f"{report.mean_reward:.3f}")
    for name, value in report.components.items():
        table.add_row(f"reward/{name}", f"{value:.3f}")
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())))
    for level, stats in report.by_difficulty.items():
        table.add_row(f"accuracy @ difficulty {level}", f"{stats['accuracy']:.3f} (n={stats['samples']})")
    return table


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class EvalConfig:
    """Evaluation settings; every field is a `--flag` and a recipe key (recipes/evaluate/*.yaml)."""

    split: str = _f("test", "split to evaluate")
    n: int = _f(500, "number of tasks (clamped to the split's size)")
    seed_tasks: int = _f(0, "seed of the task draw and of sampling")
    samples: int = _f(1, "completions per task")
    k: str = _f("1", "comma-separated k values for pass@k (each <= samples)")
    temperature: float | None = _f(None, "sampling temperature; default 0 (greedy) for 1 sample, else 1.0")
    top_p: float = _f(1.0, "nucleus sampling")
    max_completion_length: int = _f(512, "new tokens per completion")
    backend: str = _f("hf", "hf (transformers generate), vllm (offline engine) or openai (an OpenAI-compatible server)")
    base_url: str | None = _f(None, "with --backend openai: the server, e.g. http://127.0.0.1:8000")
    gen_batch_size: int = _f(64, "sequences per generate() call (hf backend)")
    output_dir: str | None = _f(None, "where report.json and samples.jsonl go (default outputs/eval-<env>)")

    def temperature_for(self, samples: int) -> float:
        """--temperature, else greedy for one sample per task and 1.0 for several."""
        return self.temperature if self.temperature is not None else (0.0 if samples == 1 else 1.0)

    def sampling(self, samples: int, max_completion_length: int | None = None) -> Sampling:
        return Sampling(temperature=self.temperature_for(samples), top_p=self.top_p, seed=self.seed_tasks,
                        max_new_tokens=max_completion_length or self.max_completion_length)

    def check_backend(self) -> None:
        if self.backend not in ("hf", "vllm", "openai"):
            raise RecipeError(f"--backend must be hf, vllm or openai, got {self.backend!r}")
        if self.backend == "openai" and not self.base_url:
            raise RecipeError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000)")

    def ks(self) -> list[int]:
        try:
            ks = [int(k) for k in str(self.k).split(",") if k.strip()]
        except ValueError:
            raise RecipeError(f"--k must be comma-separated integers, got {self.k!r}") from None
        if max(ks, default=1) > self.samples:
            raise RecipeError(f"pass@{max(ks)} needs --samples >= {max(ks)} (got {self.samples})")
        return ks


CLI = TrainerCLI("python -m trainers.evaluate", "Evaluate a policy on an env split: accuracy, pass@k, reward "
                 "components, outcomes, per difficulty. --suite NAME|FILE --model M: several benchmarks in one table "
                 "(x-r1: GSM8K, MATH-500, HumanEval, MBPP, MMLU, BBH). --compare BEFORE AFTER: two runs (or two "
                 "suite runs) paired by task, sign test.", CommonOptions, EvalConfig, renamed=RENAMED["evaluate"],
                 example="python -m trainers.evaluate --env countdown-3to4 --model M --samples 16 --k 1,8,16")


def make_backend(kind: str, model: str, base_url: str | None = None, batch_size: int = 64) -> Backend:
    if kind == "hf":
        from trainers.rollout.generation import HFBackend

        return HFBackend.from_pretrained(model, batch_size=batch_size)
    if kind == "vllm":
        from trainers.rollout.generation import VLLMBackend

        return VLLMBackend(model)
    if kind == "openai":
        from trainers.common.models import load_tokenizer
        from trainers.rollout.generation import OpenAIBackend

        if not base_url:
            raise RecipeError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000)")
        return OpenAIBackend(base_url, model, tokenizer=load_tokenizer(model))
    raise RecipeError(f"--backend must be hf, vllm or openai, got {kind!r}")


def parse(argv: Sequence[str]) -> tuple[CommonOptions, EvalConfig]:
    """(typed options, EvalConfig) from recipe + flags, checked; raises RecipeError."""
    options, fields = CLI.parse(argv, pretrained_recipe("evaluate"))
    try:
        config = EvalConfig(**fields)
    except TypeError as exc:
        raise RecipeError(str(exc)) from None
    config.ks()
    config.check_backend()
    return options, config


def compare_main(argv: list[str], console: Console) -> int:
    """`--compare BEFORE AFTER [--json PATH]`: two evaluate folders paired by task (trainers.parts.compare), or
    two suite folders, paired benchmark by benchmark."""
    from trainers.parts import suite
    from trainers.parts.compare import compare, comparison_table

    rest = argv[argv.index("--compare") + 1:]
    folders = [a for a in rest if not a.startswith("--")][:2]
    json_path = rest[rest.index("--json") + 1] if "--json" in rest[:-1] else None
    if len(folders) != 2:
        console.print("[red]error:[/] --compare takes two folders written by trainers.evaluate: BEFORE AFTER")
        return 2
    try:
        if all(suite.is_suite_folder(f) for f in folders):
            pairs = suite.compare_suites(*folders)
            console.print(suite.comparison_table(pairs, *folders))
            text = json.dumps({name: json.loads(c.to_json()) for name, c in pairs}, indent=2)
        else:
            result = compare(*folders)
            console.print(comparison_table(result, *folders))
            console.print(result.test.describe())
            text = result.to_json()
    except RecipeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


def evaluate_into(out: str, env: rg.Env, backend: Backend, tasks: Sequence[Task], samples: int, ks: Sequence[int],
                  sampling: Sampling, split: str, console: Console, description: str = "evaluating") -> EvalReport:
    """`evaluate`, with samples.jsonl and report.json written into `out` (one evaluate run, or one suite row)."""
    os.makedirs(out, exist_ok=True)
    report = evaluate(env, backend, tasks, samples, ks, sampling, console=console, description=description,
                      sample_log=os.path.join(out, "samples.jsonl"))
    report.split = split
    with open(os.path.join(out, "report.json"), "w") as f:
        f.write(report.to_json())
    return report


def parse_suite(argv: Sequence[str]) -> tuple[Any, str, str | None, EvalConfig, int | None]:
    """`--suite NAME|PATH --model M [EvalConfig fields]` -> (suite, model, --import, EvalConfig, --n cap)."""
    from trainers.common.cli import coerce, parse_flags
    from trainers.parts.suite import check_suite, load_suite

    flags = parse_flags(argv)
    name = flags.pop("suite", None)
    if not isinstance(name, str):
        raise RecipeError("--suite takes a suite name or YAML file, e.g. --suite x-r1")
    for key in ("env", "env_kwargs", "config", "reward_mode", "split"):
        if key in flags:
            raise RecipeError(f"--{key} is set per row of a suite: edit the suite's YAML (a copy) instead")
    CLI.refuse_unknown(flags)
    model, imports = flags.pop("model", None), flags.pop("import", None)
    if not isinstance(model, str):
        raise RecipeError("--suite needs --model (a hub id or a local folder)")
    fields = {key: coerce(key, value, CLI.fields[key]) for key, value in flags.items()}
    cap = fields.pop("n", None)
    config = EvalConfig(**fields)
    config.check_backend()
    from reasongym.envargs import EnvArgsError, import_env_modules

    try:
        import_env_modules(imports)
    except EnvArgsError as exc:
        raise RecipeError(str(exc)) from None
    chosen = load_suite(name)
    check_suite(chosen)
    return chosen, model, imports, config, cap


def run_suite(state: Any, console: Console) -> int:
    """Every row of the suite with one backend: a folder per row (report.json, samples.jsonl), suite.json, a table."""
    from reasongym.envargs import make_env
    from trainers.parts.suite import results_table, row_result, write_results

    chosen, model, _, config, cap = state
    out = config.output_dir or os.path.join("outputs", f"suite-{chosen.name}")
    backend = make_backend(config.backend, model, config.base_url, config.gen_batch_size)
    results = []
    for row in chosen.rows:
        notes: list[str] = []
        env = make_env(row.env, row.env_kwargs, warn=notes.append)
        tasks = env.tasks(row.split, n=min(row.n, cap) if cap else row.n, seed=config.seed_tasks)
        report = evaluate_into(os.path.join(out, row.folder), env, backend, tasks, row.samples, row.ks(),
                               config.sampling(row.samples, row.max_completion_length), row.split, console,
                               description=row.name)
        results.append(row_result(row, report, on_sample=bool(notes)))
    path = write_results(out, chosen, model, results)
    console.print(results_table(chosen.name, model, results))
    if any(r["data"] != "full" for r in results):
        console.print("[yellow]rows marked 'sample' ran on the env's small offline sample (its data was "
                      "unreachable): a pipeline check, not a benchmark figure[/]")
    console.print(f"results: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--compare" in argv:
        return compare_main(argv, Console(soft_wrap=True))
    if "--suite" in argv:
        return run_entry_point(CLI, argv, lambda argv, console: parse_suite(argv), run_suite)

    def setup(argv: list[str], console: Console):
        options, config = parse(argv)
        env = open_env(options, console)
        return options, config, env, env.tasks(config.split, n=config.n, seed=config.seed_tasks)

    return run_entry_point(CLI, argv, setup, _run)


def _run(state: Any, console: Console) -> int:
    options, config, env, tasks = state
    model = options.model
    if model is None:
        from trainers.policies.default_policy import default_policy

        model = default_policy(str(options.env), options.env_kwargs, console=console)
    backend = make_backend(config.backend, model, config.base_url, config.gen_batch_size)
    out = config.output_dir or os.path.join("outputs", f"eval-{options.env}".replace("/", "_"))
    report = evaluate_into(out, env, backend, tasks, config.samples, config.ks(), config.sampling(config.samples),
                           config.split, console)
    console.print(report_table(report, f"{env.env_id} / {config.split} "
                                       f"(temperature {config.temperature_for(config.samples):g})"))
    console.print(f"report: {os.path.join(out, 'report.json')}  samples: {os.path.join(out, 'samples.jsonl')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
