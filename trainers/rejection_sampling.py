"""Rejection sampling / STaR / RFT: sample k, keep the verified, fine-tune on them, repeat.

    python -m trainers.rejection_sampling --env countdown-3to4 --model M --rounds 3 --k 8

One process for now: a multi-process (accelerate/DeepSpeed) launch is refused, see main().
Each round: the process samples k completions for each of that round's training prompts, the env verifies them, verified completions are kept
(deduplicated, at most `--max-per-prompt` per prompt), TRL's SFTTrainer trains
on the prompt-completion pairs (loss on the completion only; the prompt is the
same text GRPO sees, chat template and pre-fill included), and the new policy is
evaluated on the test split. `--oracle` adds the env's reference completions
(the countdown solver's) to the first round as warm-start data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from contextlib import contextmanager
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym.adapters.trl import render_prompt
from trainers.generation import HFBackend, Sampling
from trainers.recipes import open_env


@contextmanager
def whole_model_loading():
    """Load a full copy of the model on this process, even under a DeepSpeed ZeRO-3 launch.

    Each rank samples its own prompts; a ZeRO-3-partitioned model would need every rank in every
    forward pass, and ranks generating different lengths would wait on each other forever."""
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


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
    p.add_argument("--prompts", type=int, default=256, help="training prompts per round")
    p.add_argument("--max-per-prompt", type=int, default=2)
    p.add_argument("--oracle", action="store_true", help="add reference completions to the first round")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--eval-size", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--gen-batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default=None)
    p.add_argument("--use-cpu", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import torch
    from accelerate import PartialState

    args = build_parser().parse_args(argv)
    console = Console(soft_wrap=True)
    env = open_env(args.env, args.env_kwargs, console)
    if env is None:
        return 2
    env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    state = PartialState(cpu=args.use_cpu or not torch.cuda.is_available())
    if state.num_processes > 1:
        # Sampling and SFT run sharded (per-rank shards, barrier, distributed SFTTrainer), but a 2-process
        # ZeRO-3 run on CPU hung after the first round's SFT; refuse rather than hang until that is fixed.
        if state.is_main_process:
            console.print("[red]error:[/] rejection sampling runs in one process for now (a multi-process "
                          "DeepSpeed run hung after the first round); launch it with plain `python -m`")
        return 2
    model = args.model
    if model is None:
        from trainers.default_policy import default_policy

        if state.is_main_process:
            model = default_policy(args.env, env_kwargs, console=console)
        state.wait_for_everyone()
        model = default_policy(args.env, env_kwargs, console=console)
    out = args.output_dir or os.path.join("outputs", f"rs-{args.env}")
    os.makedirs(out, exist_ok=True)
    metrics_path = os.path.join(out, "metrics.jsonl")
    if state.is_main_process and os.path.exists(metrics_path):
        os.remove(metrics_path)
    test_count = env.task_count("test")
    test_tasks = env.tasks("test", n=args.eval_size if test_count is None else min(args.eval_size, test_count),
                           seed=args.seed)
    train_count = env.task_count("train")
    pool = env.tasks("train", n=args.prompts * args.rounds if train_count is None else None, seed=args.seed)
    history: list[dict[str, Any]] = []
    current = model
    for round_index in range(1, args.rounds + 1):
        start = ((round_index - 1) * args.prompts) % max(1, len(pool))
        round_tasks = (pool[start:] + pool[:start])[: args.prompts]
        mine = round_tasks[state.process_index :: state.num_processes]
        with whole_model_loading():
            backend = HFBackend.from_pretrained(current, device=str(state.device), batch_size=args.gen_batch_size)
        sampling = Sampling(temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                            seed=args.seed * 1000 + round_index * 10 + state.process_index)
        prompts = [render_prompt(env, t, backend.tokenizer) for t in mine]
        completions = backend.generate(prompts, args.k, sampling)
        flat = env.score_batch([c for group in completions for c in group], [t for t in mine for _ in range(args.k)])
        scores = [flat[i * args.k : (i + 1) * args.k] for i in range(len(mine))]
        kept = select(mine, completions, scores, args.max_per_prompt)
        if args.oracle and round_index == 1:
            kept += [(t, env.reference_completion(t)) for t in mine if env.reference_completion(t)]
        shard = os.path.join(out, f"round{round_index}-accepted-rank{state.process_index}.jsonl")
        with open(shard, "w", encoding="utf-8") as f:
            for task, text in kept:
                f.write(json.dumps({"prompt": render_prompt(env, task, backend.tokenizer), "completion": text,
                                    "task_id": task.id}) + "\n")
        sampled_correct = sum(s.correct for group in scores for s in group)
        del backend
        state.wait_for_everyone()
        rows = []
        for rank in range(state.num_processes):
            with open(os.path.join(out, f"round{round_index}-accepted-rank{rank}.jsonl"), encoding="utf-8") as f:
                rows += [json.loads(line) for line in f]
        round_dir = os.path.join(out, f"round-{round_index}")
        if rows:
            current = finetune(current, rows, round_dir, args, console if state.is_main_process else None)
        record = {"round": round_index, "accepted": len(rows),
                  "acceptance_rate": sampled_correct / max(1, len(mine) * args.k), "policy": current}
        if state.is_main_process:
            from trainers.evaluate import evaluate

            with whole_model_loading():
                eval_backend = HFBackend.from_pretrained(current, batch_size=args.gen_batch_size)
            evaluation = evaluate(env, eval_backend, test_tasks,
                                  1, (1,), Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens),
                                  console=console, description=f"round {round_index}: test split")
            record["test_accuracy"] = evaluation.accuracy
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            console.print(f"round {round_index}: acceptance {record['acceptance_rate']:.3f}, {len(rows)} examples, "
                          f"test accuracy {evaluation.accuracy:.3f}")
        history.append(record)
        state.wait_for_everyone()
    if state.is_main_process:
        table = Table(title=f"rejection sampling on {env.env_id}")
        for column in ("round", "acceptance rate", "SFT examples", "test accuracy"):
            table.add_column(column, justify="right")
        for record in history:
            table.add_row(str(record["round"]), f"{record['acceptance_rate']:.3f}", str(record["accepted"]),
                          f"{record.get('test_accuracy', float('nan')):.3f}")
        console.print(table)
        console.print(f"final policy: {current}")
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
    return out_dir


if __name__ == "__main__":
    sys.exit(main())
