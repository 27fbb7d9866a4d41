"""Helper of benchmarks/gpu_scale.sh: random-init models of real shapes, and decode-speed levers.

    python benchmarks/gpu_scale.py build --shape 3b --out /tmp/qwen-3b-shape
    python benchmarks/gpu_scale.py decode --model /tmp/qwen-3b-shape --batch 96 --new-tokens 256
    python benchmarks/gpu_scale.py report --runs DIR[@PROCESSES] ...
    python benchmarks/gpu_scale.py grpo -- <trainers.grpo flags>   # times each HF generate call too

Speed and memory do not depend on the weights, so a random-init model of Qwen2.5's shapes, built
on the GPU in bf16 with the repo's BPE builder (2k tokens), stands in for the real one. `decode`
times HF generate with each cache lever on the same prompts and prints ms per decode step,
tokens/s and the ratio to the weight-read bound (bf16 weight bytes / HBM bandwidth). `report`
reads the GRPO runs' metrics.jsonl (TRL's step_time) into one table with ratios to the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import time

SHAPES = {  # Qwen2.5 configs (hidden, intermediate, layers, heads, kv heads)
    "0.5b": (896, 4864, 24, 14, 2),
    "1.5b": (1536, 8960, 28, 12, 2),
    "3b": (2048, 11008, 36, 16, 2),
}
HBM_BYTES_PER_S = {"H200": 4.8e12, "H100": 3.35e12}


def build(shape: str, out: str) -> None:
    if shape == "smollm2-135m":  # SmolLM2-135M-Instruct's Llama shape, float32 weights as trainers.pretrained gives
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        from trainers.policies.tiny import build_tokenizer, env_corpus

        tokenizer = build_tokenizer(env_corpus("countdown-3to4", n=400), vocab_size=2048)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                             num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=4096,
                             tie_word_embeddings=True, dtype="float32", bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        print(json.dumps({"shape": shape, "params": sum(p.numel() for p in model.parameters()), "out": out}))
        return
    if shape == "policy":  # the GPU default policies' model (fp32, load hints), random weights
        from trainers.policies.default_policy import GPU_SIZE
        from trainers.policies.tiny import build_tiny_model, env_corpus

        build_tiny_model(out, env_corpus("countdown-3to4", n=400), GPU_SIZE)
        print(json.dumps({"shape": shape, "out": out}))
        return
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from trainers.policies.tiny import build_tokenizer, env_corpus

    tokenizer = build_tokenizer(env_corpus("countdown-3to4", n=400), vocab_size=2048)
    hidden, intermediate, layers, heads, kv = SHAPES[shape]
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                         max_position_embeddings=4096, tie_word_embeddings=True, dtype="bfloat16",
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(json.dumps({"shape": shape, "params": sum(p.numel() for p in model.parameters()), "out": out}))


def bound_ms(model, gpu_name: str) -> float:
    """Milliseconds to read every bf16 weight once (one decode step's floor)."""
    bandwidth = next((v for k, v in HBM_BYTES_PER_S.items() if k in gpu_name), 3.35e12)
    return sum(p.numel() * p.element_size() for p in model.parameters()) / bandwidth * 1e3


def decode(model_dir: str, batch: int, new_tokens: int, prompt_tokens: int, out: str | None,
           cache_len: int | None = None, profile: bool = False) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.rollout.compiled_decode import use_gqa_decode_attention

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()
    ids = torch.randint(10, len(tokenizer) - 10, (batch, prompt_tokens), device="cuda")
    mask = torch.ones_like(ids)
    floor = bound_ms(model, torch.cuda.get_device_name())
    rows = []
    static = {"cache_implementation": "static", **({"max_cache_len": cache_len} if cache_len else {})}
    levers = [("dynamic cache", {}), ("static cache + compile", static),
              ("static + compile + GQA fold", static)]
    for name, kwargs in levers:
        if "GQA" in name:
            use_gqa_decode_attention(model)
            model._previous_max_cache_length = -1  # a fresh cache and graph for the new attention function
            if hasattr(model, "_compiled_call"):
                del model._compiled_call
        common = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, temperature=1.0,
                      top_k=0, top_p=1.0, pad_token_id=tokenizer.pad_token_id, **kwargs)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=mask, **{**common, "max_new_tokens": 8, "min_new_tokens": 8})
        torch.cuda.synchronize()
        warm = time.perf_counter() - start
        timings = []
        for _ in range(2):
            torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad():
                model.generate(input_ids=ids, attention_mask=mask, **common)
            torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
        seconds = min(timings)
        if profile and name == levers[-1][0]:
            with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA,
                                                                     torch.profiler.ProfilerActivity.CPU]) as prof:
                model.generate(input_ids=ids, attention_mask=mask, **{**common, "max_new_tokens": 32,
                                                                       "min_new_tokens": 32})
                torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25), flush=True)
        per_step = seconds / new_tokens * 1e3
        rows.append({"lever": name, "warmup_s": warm, "seconds": seconds, "ms_per_step": per_step,
                     "tokens_per_s": batch * new_tokens / seconds, "bound_ms": floor, "x_bound": per_step / floor})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["ms_per_step"]
    print(f"{'lever':32} {'ms/step':>8} {'tok/s':>9} {'x bound':>8} {'speed-up':>8}")
    for r in rows:
        print(f"{r['lever']:32} {r['ms_per_step']:8.1f} {r['tokens_per_s']:9.0f} {r['x_bound']:8.1f} "
              f"{base / r['ms_per_step']:7.2f}x")
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=2)


def timed_grpo(argv: list[str]) -> int:
    """`python -m trainers.grpo argv` with every generate call (HF's or our own decode loop's) and every rollout (generation, scoring,
    reference log-probs: TRL's `_generate_and_score_completions`) timed, CUDA-synchronised, into
    <output_dir>/generate_times.jsonl and rollout_times.jsonl: a step's time splits into generation, the
    rest of the rollout, and the training pass (step time minus rollout)."""
    import torch
    from transformers import GenerationMixin
    from trl import GRPOTrainer

    from trainers.grpo import main as grpo_main
    from trainers.rollout.static_sampler import StaticSampler

    out_dir = argv[argv.index("--output_dir") + 1]
    os.makedirs(out_dir, exist_ok=True)

    def timed(owner, name: str, log: str, fields):
        original = getattr(owner, name)

        def wrapper(self, *args, **kwargs):
            torch.cuda.synchronize()
            start = time.perf_counter()
            result = original(self, *args, **kwargs)
            torch.cuda.synchronize()
            with open(os.path.join(out_dir, log), "a") as f:
                f.write(json.dumps({"seconds": time.perf_counter() - start, **fields(kwargs, result)}) + "\n")
            return result

        setattr(owner, name, wrapper)

    def generate_fields(kwargs, result):
        prompt = kwargs["input_ids"].shape[1] if "input_ids" in kwargs else 0
        return {"batch": int(result.shape[0]), "new_tokens": int(result.shape[1] - prompt)}

    timed(GenerationMixin, "generate", "generate_times.jsonl", generate_fields)
    timed(StaticSampler, "sample", "generate_times.jsonl",
          lambda kwargs, result: {"batch": len(result), "new_tokens": max(map(len, result), default=0)})
    timed(GRPOTrainer, "_generate_and_score_completions", "rollout_times.jsonl", lambda kwargs, result: {})
    torch.cuda.reset_peak_memory_stats()
    status = grpo_main(argv)
    rank = os.environ.get("LOCAL_RANK", "0")  # one file per process under accelerate launch
    with open(os.path.join(out_dir, f"peak_memory_rank{rank}.json"), "w") as f:
        json.dump({"peak_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
                   "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9}, f)
    return status


def _times(seconds: list[float]) -> str:
    """A few times in full; a long list as its first (compile, warm-up) and the median of the rest."""
    if len(seconds) <= 4:
        return " ".join(f"{t:.1f}" for t in seconds)
    return f"{seconds[0]:.1f}, then {_steady(seconds):.2f} x{len(seconds) - 1}"


def _steady(seconds: list[float]) -> float | None:
    """Median after the first step (which compiles), or the only value."""
    rest = sorted(seconds[1:]) or seconds
    return rest[len(rest) // 2] if rest else None


def report(runs: list[str], out: str | None, completions_per_process: int = 96) -> None:
    """One row per run directory; `DIR@N` marks a run of N processes (completions/s counts all of them)."""
    rows = []
    for spec in runs:
        run, _, procs = spec.partition("@")
        path = os.path.join(run, "metrics.jsonl")
        if not os.path.isdir(run):
            continue  # a layout this call did not run
        if not os.path.exists(path):
            print(f"{run}: no metrics (run failed)")
            continue
        steps = [json.loads(line) for line in open(path)]
        times = [r["step_time"] for r in steps if "step_time" in r]
        gen_path = os.path.join(run, "generate_times.jsonl")
        generate = [json.loads(line)["seconds"] for line in open(gen_path)] if os.path.exists(gen_path) else []
        roll_path = os.path.join(run, "rollout_times.jsonl")
        rollout = [json.loads(line)["seconds"] for line in open(roll_path)] if os.path.exists(roll_path) else []
        # one rollout per step (steps_per_generation == gradient_accumulation_steps): the rest is training
        training = [t - r for t, r in zip(times, rollout)] if len(rollout) == len(times) else []
        lengths = [r["completions/mean_length"] for r in steps if "completions/mean_length" in r]
        processes = int(procs or 1)
        peaks = [json.load(open(os.path.join(run, name)))["peak_allocated_gb"] for name in sorted(os.listdir(run))
                 if name.startswith("peak_memory_rank")]
        per_s = completions_per_process * processes / times[-1] if times else None
        rows.append({"run": os.path.basename(run), "processes": processes, "step_times": times,
                     "mean_length": lengths, "generate_s": generate, "rollout_s": rollout, "training_s": training,
                     "completions_per_s": per_s, "peak_gb_per_process": max(peaks) if peaks else None})
    if not rows:
        return
    base = rows[0]
    print(f"{'run':28} {'procs':>5} {'step times s':>20} {'generate s':>20} {'rollout s':>20} {'training s':>20} "
          f"{'completions/s':>13} {'vs first':>8} {'training vs first':>17} {'peak GB':>7}")
    for r in rows:
        per_s = r["completions_per_s"]
        ratio = f"{per_s / base['completions_per_s']:.2f}x" if base["completions_per_s"] and per_s else "-"
        steady, first = _steady(r["training_s"]), _steady(base["training_s"])
        training_ratio = f"{first / steady:.2f}x" if steady and first else "-"
        print(f"{r['run']:28} {r['processes']:5d} {_times(r['step_times']):>20} {_times(r['generate_s']):>20} "
              f"{_times(r['rollout_s']):>20} {_times(r['training_s']):>20} {per_s or 0:13.2f} {ratio:>8} "
              f"{training_ratio:>17} {r['peak_gb_per_process'] or 0:7.1f}  "
              f"lengths {[round(x) for x in r['mean_length']]}")
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--shape", choices=sorted(SHAPES) + ["policy", "smollm2-135m"], default="3b")
    b.add_argument("--out", required=True)
    d = sub.add_parser("decode")
    d.add_argument("--model", required=True)
    d.add_argument("--batch", type=int, default=96)
    d.add_argument("--new-tokens", type=int, default=256)
    d.add_argument("--prompt-tokens", type=int, default=150)
    d.add_argument("--json")
    d.add_argument("--cache-len", type=int, help="static cache size (as GRPO sizes it: prompt + completion cap)")
    d.add_argument("--profile", action="store_true", help="CUDA kernel table of 32 decode steps of the last lever")
    r = sub.add_parser("report")
    r.add_argument("--runs", nargs="+", required=True)
    r.add_argument("--json")
    r.add_argument("--completions-per-process", type=int, default=96)
    g = sub.add_parser("grpo")
    g.add_argument("grpo_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "build":
        build(args.shape, args.out)
    elif args.command == "decode":
        decode(args.model, args.batch, args.new_tokens, args.prompt_tokens, args.json, args.cache_len, args.profile)
    elif args.command == "grpo":
        raise SystemExit(timed_grpo([a for a in args.grpo_args if a != "--"]))
    else:
        report(args.runs, args.json, args.completions_per_process)


if __name__ == "__main__":
    main()
