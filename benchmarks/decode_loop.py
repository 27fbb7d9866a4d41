"""Our own decode loop (trainers.rollout.static_sampler) against HF generate's loop, and our loop's decode
attention variants: the same model, the same left-padded prompts, the same static cache length; greedy.

    python benchmarks/gpu_scale.py build --shape smollm2-135m --out /tmp/smollm2-shape
    python benchmarks/decode_loop.py --model /tmp/smollm2-shape --batch 128 --new-tokens 128
    # the 3B shape at the Mini-R1 batch, every step decoded, each attention variant of our loop:
    python benchmarks/decode_loop.py --model /tmp/qwen-3b-shape --batch 96 --prompt-tokens 150 \\
        --new-tokens 1024 --no-eos --variants hf,sdpa:whole,matmul:whole,matmul:filled:unfused,matmul:filled

`hf` is HF generate's loop (static cache, compiled, no GQA fold). Each variant of our loop is
KERNEL:CACHE[:unfused][:autotune]: KERNEL is the folded decode attention (sdpa: PyTorch's fused kernel;
matmul: two batched matmuls), CACHE is `whole` (every step reads all of the static cache) or `filled` (only
the filled slots, rounded up to one of a few lengths), `unfused` keeps the separate query/key/value and
gate/up projections (trainers.rollout.fused_projections), and `autotune` compiles the step with
torch.compile's max-autotune mode (GEMM kernels tuned for the decode batch; a longer first compile).
Prints ms per generated token step for each run (median of `--repeats` timed calls after a warm-up call
that compiles), ratios to the first of our variants, and the share of greedy tokens on which each agrees
with the first run. `--profile` adds, for each variant, 32 profiled steps: GPU busy time and kernel and
CUDA-graph launches per step (a step whose GPU time is well under its wall time is bound by the host), and a
kernel table for the last variant. The claim
is about a CUDA GPU (transformers compiles the step only there); on a CPU it runs uncompiled, as a smoke
test.
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
    parser.add_argument("--variants", default="hf,matmul:filled",
                        help="hf and our loop's KERNEL:CACHE[:unfused][:autotune] runs, comma-separated")
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

    def ours(kernel: str, cache: str, *flags: str):
        fresh_compile(model)
        use_gqa_decode_attention(model, kernel)
        sampler = StaticSampler(length, eos, pad, compiled=device == "cuda", attend_filled=cache == "filled",
                                fuse_projections="unfused" not in flags,
                                compile_mode="max-autotune" if "autotune" in flags else None)
        return lambda steps=args.new_tokens: sampler.sample(model, prompts, steps, temperature=0.0)

    results, outputs = {}, {}
    names = args.variants.split(",")
    for name in names:
        run = hf if name == "hf" else ours(*name.split(":"))  # each variant compiles its own graphs
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
                         "steps": steps, "agree_with_first": agreement(outputs[names[0]], outputs[name])}
        print(f"{name:22} {results[name]['seconds']:.3f} s for {steps} steps: "
              f"{results[name]['ms_per_step']:.2f} ms per step, greedy tokens agree with {names[0]}'s on "
              f"{results[name]['agree_with_first']:.1%}", flush=True)
        if args.profile and device == "cuda":
            results[name]["profile"] = profile(run, last=name == names[-1])
    first = next((name for name in names if name != "hf"), names[0])
    print(f"\n{'run':22} {'ms/step':>8} {'vs ' + first:>24}")
    for name, row in results.items():
        print(f"{name:22} {row['ms_per_step']:8.2f} {results[first]['seconds'] / row['seconds']:23.2f}x")
    print("(bf16: a near tie can break the other way, and the sequence differs from there)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "batch": args.batch, "cache_length": length, "first": first}, f, indent=1)


def profile(run, last: bool, steps: int = 32) -> dict:
    """GPU busy time and launches per step over `steps` profiled decode steps (the profiler's own host
    cost inflates the wall time); prints a kernel table when `last`."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity

    with torch.no_grad(), torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        run(steps)
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    events = prof.key_averages()
    busy = sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA) / 1e3
    count = {name: sum(e.count for e in events if e.key == name) for name in ("cudaLaunchKernel", "cudaGraphLaunch")}
    row = {"wall_ms_per_step": wall * 1e3 / steps, "gpu_busy_ms_per_step": busy / steps,
           "kernel_launches_per_step": count["cudaLaunchKernel"] / steps,
           "graph_launches_per_step": count["cudaGraphLaunch"] / steps}
    print("  profiled: " + ", ".join(f"{key} {value:.2f}" for key, value in row.items()), flush=True)
    if last:
        print(events.table(sort_by="cuda_time_total", row_limit=25), flush=True)
    return row


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
