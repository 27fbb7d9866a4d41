"""Our own decode loop (trainers.rollout.static_sampler) against HF generate's loop, and our loop's decode
attention variants: the same model, the same left-padded prompts, the same static cache length; greedy.

    python benchmarks/gpu_scale.py build --shape smollm2-135m --out /tmp/smollm2-shape
    python benchmarks/decode_loop.py --model /tmp/smollm2-shape --batch 128 --new-tokens 128
    # the 3B shape at the Mini-R1 batch, every step decoded, each attention variant of our loop:
    python benchmarks/decode_loop.py --model /tmp/qwen-3b-shape --batch 96 --prompt-tokens 150 \\
        --new-tokens 1024 --no-eos --variants sdpa:whole,sdpa:filled,matmul:whole,matmul:filled

Each variant of our loop is KERNEL:CACHE: KERNEL is the folded decode attention (sdpa: PyTorch's fused
kernel; matmul: two batched matmuls), CACHE is `whole` (every step reads all of the static cache) or `filled`
(only the filled slots, rounded up to one of a few lengths). Prints ms per generated token step for each run
(median of `--repeats` timed calls after a warm-up call that compiles), ratios to the first of our variants,
and the share of greedy tokens on which each agrees with HF generate. `--profile` adds a CUDA kernel table of
32 steps of the last variant. The claim is about a CUDA GPU (transformers compiles the step only there); on a
CPU it runs uncompiled, as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--variants", default="sdpa:whole", help="our loop's KERNEL:CACHE runs, comma-separated")
    parser.add_argument("--no-eos", action="store_true", help="never stop at EOS: every call decodes --new-tokens")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from trainers.rollout.compiled_decode import cache_length, use_gqa_decode_attention
    from trainers.rollout.static_sampler import StaticSampler, completions

    device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: a smoke test of this script, no compile
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    lengths = torch.randint(args.prompt_tokens // 2, args.prompt_tokens + 1, (args.batch,), generator=generator)
    prompts = [torch.randint(10, vocab, (int(n),), generator=generator).tolist() for n in lengths]
    width = max(map(len, prompts))
    length = cache_length(width, args.new_tokens)
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos if eos is not None else 0]
    eos = [-1] if args.no_eos else eos
    pad = model.generation_config.pad_token_id if model.generation_config.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts]).to(device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts]).to(device)

    def hf() -> list[list[int]]:
        forced = {"min_new_tokens": args.new_tokens} if args.no_eos else {}
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens, do_sample=False,
                             cache_implementation="static", max_cache_len=length, disable_compile=False,
                             eos_token_id=eos if not args.no_eos else None, pad_token_id=pad, **forced)
        return completions(out[:, width:].cpu(), eos)

    def ours(kernel: str, cache: str):
        fresh_compile(model)
        use_gqa_decode_attention(model, kernel)
        sampler = StaticSampler(length, eos, pad, compiled=device == "cuda", attend_filled=cache == "filled")
        return lambda steps=args.new_tokens: sampler.sample(model, prompts, steps, temperature=0.0)

    results, outputs = {}, {}
    names = ["hf_generate"] + args.variants.split(",")
    for name in names:
        run = hf if name == "hf_generate" else ours(*name.split(":"))  # each variant compiles its own graphs
        with torch.no_grad():
            outputs[name] = run()
            times = []
            for _ in range(args.repeats):
                torch.cuda.synchronize() if device == "cuda" else None
                start = time.perf_counter()
                outputs[name] = run()
                torch.cuda.synchronize() if device == "cuda" else None
                times.append(time.perf_counter() - start)
        steps = max(map(len, outputs[name]))
        results[name] = {"seconds": statistics.median(times), "ms_per_step": statistics.median(times) / steps * 1e3,
                         "steps": steps, "agree_with_hf": agreement(outputs["hf_generate"], outputs[name])}
        print(f"{name:16} {results[name]['seconds']:.3f} s for {steps} steps: "
              f"{results[name]['ms_per_step']:.2f} ms per step, greedy tokens agree with HF generate's on "
              f"{results[name]['agree_with_hf']:.1%}", flush=True)
    if args.profile and device == "cuda":
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            run(32)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20), flush=True)
    first = names[1]
    print(f"\n{'run':16} {'ms/step':>8} {'vs ' + first:>16}")
    for name, row in results.items():
        print(f"{name:16} {row['ms_per_step']:8.2f} {results[first]['seconds'] / row['seconds']:15.2f}x")
    print("(bf16: a near tie can break the other way, and the sequence differs from there)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "batch": args.batch, "cache_length": length, "first": first}, f, indent=1)


def fresh_compile(model) -> None:
    """Forget the compiled decode step, so the next variant compiles its own graphs (and its recompiles do not
    count against the previous variant's)."""
    import torch

    if hasattr(model, "_compiled_call"):
        del model._compiled_call
    torch._dynamo.reset()


def agreement(reference: list[list[int]], other: list[list[int]]) -> float:
    pairs = [(a, b) for x, y in zip(reference, other) for a, b in zip(x, y)]
    return sum(a == b for a, b in pairs) / max(1, len(pairs))


if __name__ == "__main__":
    main()
