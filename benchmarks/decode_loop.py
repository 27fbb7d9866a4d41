"""Our own decode loop (trainers.rollout.static_sampler) against HF generate's loop: the same model, the
same left-padded prompts, the same static cache length and compiled decode step; greedy.

    python benchmarks/gpu_scale.py build --shape smollm2-135m --out /tmp/smollm2-shape
    python benchmarks/decode_loop.py --model /tmp/smollm2-shape --batch 128 --new-tokens 128

Prints ms per generated token step for each loop (median of `--repeats` timed calls after two
warm-up calls that compile), the ratio, and the share of greedy tokens on which the two agree.
The claim is about a CUDA GPU (transformers compiles the step only there); on a CPU it runs uncompiled, as a
smoke test.
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
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from trainers.rollout.compiled_decode import cache_length, use_gqa_decode_attention
    from trainers.rollout.static_sampler import StaticSampler, completions

    device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: a smoke test of this script, no compile
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype)).to(device).eval()
    use_gqa_decode_attention(model)
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    lengths = torch.randint(args.prompt_tokens // 2, args.prompt_tokens + 1, (args.batch,), generator=generator)
    prompts = [torch.randint(10, vocab, (int(n),), generator=generator).tolist() for n in lengths]
    width = max(map(len, prompts))
    length = cache_length(width, args.new_tokens)
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos if eos is not None else 0]
    pad = model.generation_config.pad_token_id if model.generation_config.pad_token_id is not None else eos[0]
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts]).to(device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts]).to(device)

    def hf() -> list[list[int]]:
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens, do_sample=False,
                             cache_implementation="static", max_cache_len=length, disable_compile=False,
                             eos_token_id=eos, pad_token_id=pad)
        return completions(out[:, width:].cpu(), eos)

    sampler = StaticSampler(length, eos, pad, compiled=device == "cuda")

    def ours() -> list[list[int]]:
        return sampler.sample(model, prompts, args.new_tokens, temperature=0.0)

    results = {}
    outputs = {}
    for name, run in (("hf_generate", hf), ("own_loop", ours)):
        with torch.no_grad():
            for _ in range(2):
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
                         "steps": steps}
        print(f"{name:12} {results[name]['seconds']:.3f} s for {steps} steps: "
              f"{results[name]['ms_per_step']:.2f} ms per step", flush=True)
    pairs = [(a, b) for x, y in zip(outputs["hf_generate"], outputs["own_loop"]) for a, b in zip(x, y)]
    agree = sum(a == b for a, b in pairs) / max(1, len(pairs))
    ratio = results["hf_generate"]["seconds"] / results["own_loop"]["seconds"]
    print(f"own loop {ratio:.2f}x HF generate's; greedy tokens agree on {agree:.1%} "
          f"(bf16: a near tie can break the other way, and the sequence differs from there)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**results, "ratio": ratio, "agree": agree, "batch": args.batch}, f, indent=1)


if __name__ == "__main__":
    main()
