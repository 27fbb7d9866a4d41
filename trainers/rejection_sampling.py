"""Rejection sampling / STaR / RFT: sample k, keep the verified, fine-tune on them, repeat.

    python -m trainers.rejection_sampling --env countdown-3to4 --model M --rounds 3 --k 8
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m trainers.rejection_sampling ...

Each round: every process samples k completions for its share of that round's
training prompts with a whole copy of the policy, the env verifies them, verified
completions are kept (deduplicated, at most `--max-per-prompt` per prompt), TRL's
SFTTrainer trains on the prompt-completion pairs of all processes (loss on the
completion only; the prompt is the same text GRPO sees, chat template and pre-fill
included; under DeepSpeed the SFT step is sharded like any accelerate run), and the
new policy is evaluated greedily on the test split, again split across processes.
`--oracle` adds the env's reference completions (the countdown solver's) to the
first round as warm-start data (`--oracle every`: to every round).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym.adapters.trl import render_prompt
from trainers.generation import HFBackend, Sampling
from trainers.recipes import open_env


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.rejection_sampling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True)
    p.add_argument("--model", help="hub id or local path (default: the embedded default policy)")
    p.add_argument("--env-kwargs", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--k", type=int, default=8, help="samples per prompt")
    p.add_argument("--prompts", type=int, default=256, help="training prompts per round (all processes together)")
    p.add_argument("--max-per-prompt", type=int, default=2)
    p.add_argument("--oracle", nargs="?", const="first", choices=("first", "every"), default=None,
                   help="add the env's reference completions to the SFT data: in the first round (warm start, "
                        "the default when given bare) or in every round")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--eval-size", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8, help="SFT batch size per process")
    p.add_argument("--gen-batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default=None)
    p.add_argument("--use-cpu", action="store_true")
    return p


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


def sample_round(env: rg.Env, backend: HFBackend, tasks: list[rg.Task], args: argparse.Namespace, seed: int,
                 with_oracle: bool) -> tuple[list[dict[str, str]], int]:
    """This process's SFT rows for one round, and how many of its samples were correct."""
    prompts = [render_prompt(env, t, backend.tokenizer) for t in tasks]
    sampling = Sampling(temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=seed)
    completions = backend.generate(prompts, args.k, sampling)
    flat = env.score_batch([c for group in completions for c in group], [t for t in tasks for _ in range(args.k)])
    scores = [flat[i * args.k : (i + 1) * args.k] for i in range(len(tasks))]
    kept = select(tasks, completions, scores, args.max_per_prompt)
    if with_oracle:
        kept += [(t, ref) for t in tasks if (ref := env.reference_completion(t))]
    prompt_of = {t.id: p for t, p in zip(tasks, prompts)}
    rows = [{"prompt": prompt_of[task.id], "completion": text, "task_id": task.id} for task, text in kept]
    return rows, sum(s.correct for s in flat)


def main(argv: Sequence[str] | None = None) -> int:
    import torch
    from accelerate import PartialState

    from trainers.evaluate import evaluate

    args = build_parser().parse_args(argv)
    console = Console(soft_wrap=True)
    env = open_env(args.env, args.env_kwargs, console)
    if env is None:
        return 2
    env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    state = PartialState(cpu=args.use_cpu or not torch.cuda.is_available())
    main_process = state.is_main_process
    say = console if main_process else Console(quiet=True)
    model = args.model
    if model is None:
        from trainers.default_policy import default_policy

        if main_process:
            model = default_policy(args.env, env_kwargs, console=console)
        state.wait_for_everyone()
        model = default_policy(args.env, env_kwargs, console=console)
    out = args.output_dir or os.path.join("outputs", f"rs-{args.env}")
    os.makedirs(out, exist_ok=True)
    shards = Shards(out, state)
    metrics_path = os.path.join(out, "metrics.jsonl")
    if main_process and os.path.exists(metrics_path):
        os.remove(metrics_path)
    rank, world = state.process_index, state.num_processes
    test_count = env.task_count("test")
    test_tasks = env.tasks("test", n=args.eval_size if test_count is None else min(args.eval_size, test_count),
                           seed=args.seed)
    my_test = test_tasks[rank::world]
    train_count = env.task_count("train")
    pool = env.tasks("train", n=args.prompts * args.rounds if train_count is None else None, seed=args.seed)
    current = model
    backend = HFBackend.from_pretrained(current, device=str(state.device), batch_size=args.gen_batch_size)

    def test_split(round_index: int) -> dict[str, Any]:
        """Greedy accuracy of `backend` on the test split, each rank scoring its slice."""
        evaluation = evaluate(env, backend, my_test, 1, (1,), Sampling(temperature=0.0,
                              max_new_tokens=args.max_new_tokens), console=say,
                              description=f"round {round_index}: test split")
        tested = shards.sum_counts(f"round{round_index}-test",
                                   {"correct": sum(evaluation.correct_per_task), "tasks": len(my_test)})
        return {"test_accuracy": tested["correct"] / max(1, tested["tasks"]), "test_tasks": tested["tasks"]}

    history: list[dict[str, Any]] = []

    def log_round(record: dict[str, Any]) -> None:
        history.append(record)
        if main_process:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    log_round({"round": 0, "accepted": 0, "acceptance_rate": None, **test_split(0), "policy": current})
    for round_index in range(1, args.rounds + 1):
        start = ((round_index - 1) * args.prompts) % max(1, len(pool))
        mine = (pool[start:] + pool[:start])[: args.prompts][rank::world]
        rows, correct = sample_round(env, backend, mine, args, seed=args.seed * 1000 + round_index * 10 + rank,
                                     with_oracle=args.oracle == "every" or (args.oracle == "first" and round_index == 1))
        stem = f"round{round_index}"
        shards.write_rows(f"{stem}-accepted", rows)
        sampled = shards.sum_counts(f"{stem}-sampled", {"correct": correct, "samples": len(mine) * args.k})
        rows = shards.read_rows(f"{stem}-accepted")
        if rows:
            del backend  # free the generation copy while SFT trains
            current = finetune(current, rows, os.path.join(out, f"round-{round_index}"), args,
                               console if main_process else None)
            backend = HFBackend.from_pretrained(current, device=str(state.device), batch_size=args.gen_batch_size)
        log_round({"round": round_index, "accepted": len(rows),
                   "acceptance_rate": sampled["correct"] / max(1, sampled["samples"]), **test_split(round_index),
                   "policy": current})
        if main_process:
            record = history[-1]
            console.print(f"round {round_index}: acceptance {record['acceptance_rate']:.3f}, {len(rows)} examples, "
                          f"test accuracy {record['test_accuracy']:.3f} ({world} process(es))")
    if main_process:
        table = Table(title=f"rejection sampling on {env.env_id}")
        for column in ("round", "acceptance rate", "SFT examples", "test accuracy"):
            table.add_column(column, justify="right")
        for record in history:
            rate = record["acceptance_rate"]
            table.add_row(str(record["round"]) if record["round"] else "0 (start)",
                          "-" if rate is None else f"{rate:.3f}", str(record["accepted"]),
                          f"{record['test_accuracy']:.3f}")
        console.print(table)
        console.print(f"final policy: {current}")
    state.wait_for_everyone()
    return 0


def finetune(model_dir: str, rows: list[dict[str, str]], out_dir: str, args: argparse.Namespace,
             console: Console | None) -> str:
    import datasets
    import torch
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cpu = args.use_cpu or not torch.cuda.is_available()
    config = SFTConfig(
        output_dir=out_dir, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, logging_steps=10, save_strategy="no", report_to="none",
        bf16=not cpu and torch.cuda.is_bf16_supported(), use_cpu=cpu, gradient_checkpointing=False,
        seed=args.seed, max_length=1024, disable_tqdm=console is None,
        model_init_kwargs={"dtype": "bfloat16" if not cpu and torch.cuda.is_bf16_supported() else "float32"},
    )
    trainer = SFTTrainer(model=model_dir, args=config, train_dataset=datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]), processing_class=tokenizer)
    trainer.train()
    trainer.save_model(out_dir)
    if trainer.accelerator.is_main_process:
        from trainers.tiny import copy_load_hints

        tokenizer.save_pretrained(out_dir)
        copy_load_hints(model_dir, out_dir)
        shutil.rmtree(os.path.join(out_dir, "runs"), ignore_errors=True)
    trainer.accelerator.wait_for_everyone()  # every rank loads the new policy from out_dir next
    trainer.accelerator.free_memory()  # drop the DeepSpeed engine and optimizer before the next round
    return out_dir


if __name__ == "__main__":
    sys.exit(main())
