"""Overhead of trainers.grpo over plain TRL: same tiny model, same prompts, same GRPO config, same run.

    python benchmarks/grpo_overhead.py [--steps 20] [--repeats 2]

A: `trainers.grpo.build_trainer` (env -> dataset, per-component reward functions through the
   scoring engine, sample logs, metrics callback).
B: `trl.GRPOTrainer` on the same rendered prompts with a hand-written TinyZero-style reward.
Runs alternate (A then B, then B then A, ...) and the median step time of each is compared. Prints the
step-time ratio A/B (target <= 1.02) and the share of A's step time spent in reward functions.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def timed(func, bucket: list[float]):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    wrapper.__name__ = func.__name__
    return wrapper


def tinyzero_reward(completions, task, **kwargs):
    import json

    out = []
    for completion, blob in zip(completions, task):
        question = json.loads(blob)["question"]
        found = re.findall(r"<answer>(.*?)</answer>", completion)
        if not found:
            out.append(0.0)
            continue
        eq = found[-1].strip()
        if sorted(int(n) for n in re.findall(r"\d+", eq)) != sorted(question["nums"]) or not re.match(
                r"^[\d+\-*/().\s]+$", eq) or "**" in eq:
            out.append(0.1)
            continue
        try:
            out.append(1.0 if abs(eval(eq, {"__builtins__": None}, {}) - question["target"]) < 1e-5 else 0.1)  # noqa: S307
        except Exception:
            out.append(0.1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from rich.console import Console
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    import reasongym as rg
    from reasongym.adapters.trl import build_dataset
    from trainers import grpo
    from trainers.common.progress import quiet_libraries
    from trainers.common.models import load_kwargs
    from trainers.policies.tiny import build_tiny_model, env_corpus

    quiet_libraries()
    work = tempfile.mkdtemp(prefix="grpo-overhead-")
    model = build_tiny_model(os.path.join(work, "tiny"), env_corpus("countdown-3to4", n=100))
    flags = ["--env", "countdown-3to4", "--model", model, "--max_steps", str(args.steps),
             "--per_device_train_batch_size", "16", "--num_generations", "4", "--max_completion_length", "32",
             "--gradient_checkpointing", "false", "--train-size", "256", "--logging_steps", "5", "--seed", "0",
             "--disable_tqdm", "true"]
    ours_times, plain_times, reward_share = [], [], []
    def run_ours(repeat: int) -> None:
        script, config = grpo.parse(flags + ["--output-dir", os.path.join(work, f"ours{repeat}")])
        trainer, _ = grpo.build_trainer(script, config, Console(quiet=True))
        spent: list[float] = []
        trainer.reward_funcs = [timed(f, spent) for f in trainer.reward_funcs]
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
        ours_times.append(elapsed / args.steps)
        reward_share.append(sum(spent) / elapsed)

    def run_plain(repeat: int) -> None:
        tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
        dataset = build_dataset(rg.make("countdown-3to4"), "train", n=256, seed=0, tokenizer=tokenizer)
        plain_args = GRPOConfig(output_dir=os.path.join(work, f"plain{repeat}"), max_steps=args.steps,
                                per_device_train_batch_size=16, num_generations=4, max_completion_length=32,
                                gradient_checkpointing=False, use_cpu=True, bf16=False, logging_steps=5,
                                report_to="none", save_strategy="no", seed=0, disable_tqdm=True,
                                model_init_kwargs={"dtype": "float32", **load_kwargs(model, False)})
        plain = GRPOTrainer(model=model, reward_funcs=[tinyzero_reward], args=plain_args, train_dataset=dataset,
                            processing_class=tokenizer)
        start = time.perf_counter()
        plain.train()
        plain_times.append((time.perf_counter() - start) / args.steps)

    for repeat in range(args.repeats):  # alternate which goes first, so warm-up and drift hit both
        order = (run_ours, run_plain) if repeat % 2 == 0 else (run_plain, run_ours)
        for run in order:
            run(repeat)
    ours, plain = statistics.median(ours_times), statistics.median(plain_times)
    print(f"steps per run: {args.steps}, runs each: {args.repeats} (alternating)")
    print(f"trainers.grpo   : {1000 * ours:8.1f} ms/step")
    print(f"plain TRL + hand-written reward: {1000 * plain:8.1f} ms/step")
    print(f"step-time ratio ours/plain: {ours / plain:6.3f}  (target <= 1.02)")
    print(f"reward functions' share of our step time: {100 * statistics.median(reward_share):.2f}%")


if __name__ == "__main__":
    main()
