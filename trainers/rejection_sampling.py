"""Rejection sampling / STaR / RFT: sample k, keep the verified, fine-tune on them, repeat.

    python -m trainers.rejection_sampling --env countdown-3to4 --model M --rounds 3 --samples 8
    python -m trainers.rejection_sampling --config recipes/rejection_sampling/countdown-3to4.yaml --learning_rate 2e-5
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m trainers.rejection_sampling ...

Each round: every process samples k completions for its share of that round's
training prompts with a whole copy of the policy, the env verifies them, verified
completions are kept (deduplicated, at most `--max-per-prompt` per prompt), TRL's
SFTTrainer trains on the prompt-completion pairs of all processes (loss on the
completion only; the prompt is the same text GRPO sees, chat template and pre-fill
included; under DeepSpeed the SFT step is sharded like any accelerate run), and the
new policy is evaluated greedily on the test split, again split across processes.
`--oracle` adds the env's reference completions (the countdown solver's) to the
first round as warm-start data (`--oracle every`: to every round). Every SFTConfig field
(learning_rate, num_train_epochs, per_device_train_batch_size, output_dir, use_cpu, seed, ...)
is passed through to each round's fine-tuning.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym.adapters.trl import render_prompt
from reasongym.telemetry import MetricsWriter
from trainers.common.recipes import pretrained_recipe
from trainers.common.cli import RecipeError, TrainerCLI, open_env, run_entry_point
from trainers.common.options import RENAMED, RejectionSamplingOptions
from trainers.common import preflight
from trainers.common.sft import sft
from trainers.rollout.generation import Backend, HFBackend, Sampling, VLLMBackend


def select(tasks: list[rg.Task], completions: list[list[str]], scores: list[list[rg.Score]], max_per_prompt: int
           ) -> list[tuple[rg.Task, str]]:
    """Verified completions, deduplicated per prompt, at most `max_per_prompt` each."""
    kept: list[tuple[rg.Task, str]] = []
    for task, texts, task_scores in zip(tasks, completions, scores):
        seen: set[str] = set()
        for text, score in zip(texts, task_scores):
            if score.correct and text.strip() not in seen:
                seen.add(text.strip())
                kept.append((task, text))
                if len(seen) >= max_per_prompt:
                    break
    return kept


SFT_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-5, "num_train_epochs": 1.0, "per_device_train_batch_size": 8,
                                "logging_steps": 10, "max_length": 1024, "seed": 0}


def _cli() -> TrainerCLI:
    from trl import SFTConfig

    return TrainerCLI("python -m trainers.rejection_sampling", "Rejection sampling (STaR / RFT): sample k, keep the "
                      "verified, fine-tune on them (TRL SFTTrainer), repeat.", RejectionSamplingOptions, SFTConfig,
                      example="python -m trainers.rejection_sampling --env countdown-3to4 --model M --rounds 3 "
                      "--samples 8", renamed=RENAMED["rejection_sampling"])


def parse(argv: Sequence[str]) -> tuple[RejectionSamplingOptions, dict[str, Any]]:
    """(typed options, SFTConfig kwargs with our defaults) from recipe + flags; raises RecipeError."""
    options, config = _cli().parse(argv, pretrained_recipe("rejection_sampling"))
    config = {**SFT_DEFAULTS, **config}
    config.setdefault("output_dir", os.path.join("outputs", f"rs-{options.env}".replace("/", "_")))
    return options, config


class Shards:
    """Per-process files in the output dir, merged after a barrier: ranks exchange results through
    the filesystem, the same over gloo or NCCL. Across machines, the output dir must be shared storage."""

    def __init__(self, out: str, state: Any):
        self.out, self.state = out, state

    def path(self, stem: str, rank: int, suffix: str) -> str:
        return os.path.join(self.out, f"{stem}-rank{rank}.{suffix}")

    def write_rows(self, stem: str, rows: list[dict[str, Any]]) -> None:
        with open(self.path(stem, self.state.process_index, "jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)

    def read_rows(self, stem: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for rank in range(self.state.num_processes):
            with open(self.path(stem, rank, "jsonl"), encoding="utf-8") as f:
                rows += [json.loads(line) for line in f]
        return rows

    def sum_counts(self, stem: str, counts: dict[str, int]) -> dict[str, int]:
        """Write this rank's counts, wait for every rank, return the totals."""
        with open(self.path(stem, self.state.process_index, "json"), "w", encoding="utf-8") as f:
            json.dump(counts, f)
        self.state.wait_for_everyone()
        totals = dict.fromkeys(counts, 0)
        for rank in range(self.state.num_processes):
            with open(self.path(stem, rank, "json"), encoding="utf-8") as f:
                for key, value in json.load(f).items():
                    totals[key] += value
        return totals


def sample_round(env: rg.Env, backend: Backend, tasks: list[rg.Task], options: RejectionSamplingOptions, seed: int,
                 with_oracle: bool) -> tuple[list[dict[str, str]], int]:
    """This process's SFT rows for one round, and how many of its samples were correct."""
    if env.multi_turn:
        return sample_episodes(env, backend, tasks, options, seed, with_oracle)
    k = options.samples
    prompts = [render_prompt(env, t, backend.tokenizer) for t in tasks]
    sampling = Sampling(temperature=options.temperature, max_new_tokens=options.max_completion_length, seed=seed)
    completions = backend.generate(prompts, k, sampling)
    flat = env.score_batch([c for group in completions for c in group], [t for t in tasks for _ in range(k)])
    scores = [flat[i * k : (i + 1) * k] for i in range(len(tasks))]
    kept = select(tasks, completions, scores, options.max_per_prompt)
    if with_oracle:
        kept += [(t, ref) for t in tasks if (ref := env.reference_completion(t))]
    prompt_of = {t.id: p for t, p in zip(tasks, prompts)}
    rows = [{"prompt": prompt_of[task.id], "completion": text, "task_id": task.id} for task, text in kept]
    return rows, sum(s.correct for s in flat)


def sample_episodes(env: rg.Env, backend: Backend, tasks: list[rg.Task], options: RejectionSamplingOptions, seed: int,
                    with_oracle: bool) -> tuple[list[dict[str, str]], int]:
    """Multi-turn envs: k whole episodes per task; a solved episode becomes one SFT row: the conversation up to
    the right answer (wrong tries and feedback included) as the prompt, the right answer as the completion, so
    SFT learns to use feedback and never trains on a wrong try. Deduplicated per task."""
    from reasongym.templates import observation_text
    from trainers.evaluate import run_episodes

    tok = backend.tokenizer
    sampling = Sampling(temperature=options.temperature, max_new_tokens=options.max_completion_length, seed=seed)
    groups = run_episodes(env, backend, tasks, options.samples, sampling)
    rows: list[dict[str, str]] = []
    for task, group in zip(tasks, groups):
        prompt = observation_text(env.prompt(task), tok, env.template)
        seen: set[tuple[str, str]] = set()
        solved = sorted((e for e in group if e.solved), key=lambda e: -len(e.turns))  # rarer later-turn fixes first
        if with_oracle and (ref := env.reference_completion(task)):
            episode = env.episode_class(env, task)
            episode.step(ref)
            solved.append(episode)
        for episode in solved:
            context = _before_last_turn(env, episode, tok) if len(episode.turns) > 1 else prompt
            whole = episode.observation()
            text = whole if isinstance(whole, str) else tok.apply_chat_template(whole, tokenize=False)
            completion = text[len(context):] if text.startswith(context) else None
            if completion and (context, completion) not in seen and \
                    len(seen) < options.max_per_prompt + int(with_oracle):
                seen.add((context, completion))
                rows.append({"prompt": context, "completion": completion, "task_id": task.id,
                             "turn": len(episode.turns)})
    return rows, sum(e.solved for group in groups for e in group)


def _before_last_turn(env: rg.Env, episode: Any, tokenizer: Any) -> str:
    """The text the policy read before its last (right) answer: the prompt, the wrong tries and the feedback."""
    from reasongym.templates import observation_text

    earlier = env.episode_class(env, episode.task)
    earlier.turns = list(episode.turns[:-1])
    return observation_text(earlier.observation(), tokenizer, env.template)


class RoundLoop:
    """The state of one run: env, process group, output dir, current policy and its generation backend."""

    def __init__(self, env: rg.Env, options: RejectionSamplingOptions, sft_config: dict[str, Any], state: Any, model: str,
                 console: Console) -> None:
        self.env, self.options, self.sft_config, self.state = env, options, sft_config, state
        self.out = sft_config["output_dir"]
        self.main = state.is_main_process
        self.console = console if self.main else Console(quiet=True)
        self.shards = Shards(self.out, state)
        self.metrics = MetricsWriter(self.out)
        self.history: list[dict[str, Any]] = []
        self.current = model
        self.backend = self._backend()
        rank, world = state.process_index, state.num_processes
        self.my_test = env.tasks("test", n=options.eval_size, seed=sft_config["seed"])[rank::world]
        train_count = env.task_count("train")
        self.pool = env.tasks("train", n=options.prompts * options.rounds if train_count is None else None,
                              seed=sft_config["seed"])

    def _backend(self) -> Backend:
        if self.options.backend == "vllm":
            if self.state.num_processes > 1:
                raise RecipeError("--backend vllm runs one engine in one process: launch without accelerate "
                                  "(or with --num_processes 1), or use --backend hf under accelerate launch")
            return VLLMBackend(self.current, seed=int(self.sft_config["seed"]))
        return HFBackend.from_pretrained(self.current, device=str(self.state.device),
                                         batch_size=self.options.gen_batch_size)

    def _next_policy(self) -> None:
        """Generate with the newly fine-tuned policy: vLLM loads its weights in place, HF reloads the model."""
        if self.options.backend == "vllm":
            self.backend.load_weights(self.current)
        else:
            self.backend = self._backend()

    def test_split(self, round_index: int) -> dict[str, Any]:
        """Greedy accuracy of the current policy on the test split, each rank scoring its slice."""
        from trainers.evaluate import evaluate

        evaluation = evaluate(self.env, self.backend, self.my_test, 1, (1,),
                              Sampling(temperature=0.0, max_new_tokens=self.options.max_completion_length),
                              console=self.console, description=f"round {round_index}: test split",
                              sample_log=self.shards.path(f"round{round_index}-test-samples", self.state.process_index,
                                                          "jsonl"))
        tested = self.shards.sum_counts(f"round{round_index}-test",
                                        {"correct": sum(evaluation.correct_per_task), "tasks": len(self.my_test)})
        record = {"test_accuracy": tested["correct"] / max(1, tested["tasks"]), "test_tasks": tested["tasks"]}
        if evaluation.success_by_turn:  # multi-turn: the share solved by turn k (this rank's slice; rank 0 logs)
            record["test_success_by_turn"] = evaluation.success_by_turn
        return record

    def log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.main:
            self.metrics.write(record)

    def run_round(self, round_index: int) -> None:
        """Sample and verify this rank's share, exchange accepted rows, SFT on all of them, test."""
        options, rank, world = self.options, self.state.process_index, self.state.num_processes
        start = ((round_index - 1) * options.prompts) % max(1, len(self.pool))
        mine = (self.pool[start:] + self.pool[:start])[: options.prompts][rank::world]
        oracle = options.oracle == "every" or (options.oracle == "first" and round_index == 1)
        rows, correct = sample_round(self.env, self.backend, mine, options,
                                     seed=self.sft_config["seed"] * 1000 + round_index * 10 + rank, with_oracle=oracle)
        stem = f"round{round_index}"
        self.shards.write_rows(f"{stem}-accepted", rows)
        sampled = self.shards.sum_counts(f"{stem}-sampled", {"correct": correct, "samples": len(mine) * options.samples})
        rows = self.shards.read_rows(f"{stem}-accepted")
        if rows:
            if self.options.backend != "vllm":
                del self.backend  # free the generation copy while SFT trains (the vLLM engine stays)
            config = {**self.sft_config, "output_dir": os.path.join(self.out, f"round-{round_index}")}
            self.current = sft(self.current, rows, config["output_dir"], config,
                               description=f"round {round_index}: SFT on {len(rows)} verified completions",
                               console=self.console)
            self._next_policy()
        by_turn = Counter(int(row.get("turn", 1)) for row in rows)
        self.log({"round": round_index, "accepted": len(rows),
                  **({"accepted_by_turn": dict(sorted(by_turn.items()))} if max(by_turn, default=1) > 1 else {}),
                  "acceptance_rate": sampled["correct"] / max(1, sampled["samples"]), **self.test_split(round_index),
                  "policy": self.current})
        record = self.history[-1]
        self.console.print(f"round {round_index}: acceptance {record['acceptance_rate']:.3f}, {len(rows)} examples, "
                           f"test accuracy {record['test_accuracy']:.3f} ({world} process(es))")

    def table(self) -> Table:
        table = Table(title=f"rejection sampling on {self.env.env_id}")
        for column in ("round", "acceptance rate", "SFT examples", "test accuracy"):
            table.add_column(column, justify="right")
        for record in self.history:
            rate = record["acceptance_rate"]
            table.add_row(str(record["round"]) if record["round"] else "0 (start)",
                          "-" if rate is None else f"{rate:.3f}", str(record["accepted"]),
                          f"{record['test_accuracy']:.3f}")
        return table


def main(argv: Sequence[str] | None = None) -> int:
    def setup(argv: list[str], console: Console):
        options, sft_config = parse(argv)
        env = open_env(options, console)
        preflight.check_env_safety(env, options.allow_unsafe_env)
        return options, sft_config, env

    return run_entry_point(_cli(), argv, setup, _run)


def _run(state: Any, console: Console) -> int:
    import torch
    from accelerate import PartialState

    options, sft_config, env = state
    cpu = bool(sft_config.get("use_cpu")) or not torch.cuda.is_available()
    sft_config["use_cpu"] = cpu
    if not cpu and torch.cuda.is_bf16_supported():  # rounds fine-tune bf16 weights on a GPU unless the recipe says
        sft_config.setdefault("model_init_kwargs", {"dtype": "bfloat16"})
    process_state = PartialState(cpu=cpu)
    model = options.model or _default_policy(options, process_state, console)
    os.makedirs(sft_config["output_dir"], exist_ok=True)
    loop = RoundLoop(env, options, sft_config, process_state, model, console)
    if loop.main:
        loop.metrics.reset()
    loop.log({"round": 0, "accepted": 0, "acceptance_rate": None, **loop.test_split(0), "policy": model})
    for round_index in range(1, options.rounds + 1):
        loop.run_round(round_index)
    if loop.main:
        console.print(loop.table())
        console.print(f"final policy: {loop.current}")
    process_state.wait_for_everyone()
    return 0


def _default_policy(options: RejectionSamplingOptions, state: Any, console: Console) -> str:
    """The embedded default policy, built by the main process while the others wait."""
    from trainers.policies.default_policy import default_policy

    if state.is_main_process:
        default_policy(str(options.env), options.env_kwargs, console=console)
    state.wait_for_everyone()
    return default_policy(str(options.env), options.env_kwargs, console=console)


if __name__ == "__main__":
    sys.exit(main())
