"""The default policy's warm-start SFT: TRL's SFTTrainer (`trainers.common.sft`, the path before) against
the warm start's own loop (`trainers.policies.warm_sft`), same rows, same model, same schedule.

    python benchmarks/warm_start_sft.py --preset gpu --tasks 20000 --steps 300

Builds the preset's tokenizer and untrained model once, then runs each path for `--steps` steps from
that same model and prints seconds per step (first 10% of steps excluded), the loss each reached, and
the ratio. Runs on a CPU too (slowly); the claim is about a GPU, where the Trainer's per-step fixed
cost dominates a small model's step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpu")
    parser.add_argument("--env", default="countdown-3to4")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from trainers.common.sft import sft
    from trainers.policies import default_policy as policy
    from trainers.policies.warm_sft import warm_sft

    warm = replace(policy.PRESETS[args.preset], sft_tasks=args.tasks, sft_steps=args.steps)
    root = tempfile.mkdtemp()
    base = os.path.join(root, "base")
    t0 = time.perf_counter()
    rows = policy.untrained_policy(args.env, {}, warm, base)
    rows_s = time.perf_counter() - t0
    schedule = policy.warm_schedule(warm)
    skip = max(1, args.steps // 10)
    results = {}
    for name in ("sft_trainer", "warm_sft"):
        out = os.path.join(root, name)
        shutil.copytree(base, out)
        stamps: dict[int, float] = {}
        losses: dict[int, float] = {}

        def on_log(step: int, logs: dict) -> None:  # both paths sync the loss to the host at a logged step
            stamps[step], losses[step] = time.perf_counter(), float(logs["loss"])

        start = time.perf_counter()
        if name == "sft_trainer":
            sft(out, rows, out, {"max_steps": schedule.steps, "per_device_train_batch_size": schedule.batch_size,
                                 "learning_rate": schedule.learning_rate, "lr_scheduler_type": "cosine",
                                 "warmup_steps": schedule.warmup_steps, "weight_decay": 0.0,
                                 "logging_steps": skip, "seed": schedule.seed, "max_length": 512,
                                 "bf16": schedule.bf16}, on_log=on_log)
        else:
            warm_sft(out, rows, out, replace(schedule, logging_steps=skip), on_log=on_log)
        total = time.perf_counter() - start
        last = max(stamps)
        steady = (stamps[last] - stamps[skip]) / (last - skip)
        results[name] = {"seconds": total, "s_per_step": steady, "final_loss": losses[max(losses)]}
        print(f"{name:12} {total:7.1f} s in all, {steady * 1000:7.1f} ms/step after step {skip}, "
              f"loss {losses[max(losses)]:.3f}", flush=True)
    ratio = results["sft_trainer"]["s_per_step"] / results["warm_sft"]["s_per_step"]
    print(f"rows: {len(rows)} ({rows_s:.1f} s to build with the tokenizer and model)  per-step ratio {ratio:.2f}x  "
          f"whole-run ratio {results['sft_trainer']['seconds'] / results['warm_sft']['seconds']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": len(rows), "rows_seconds": rows_s, **results, "per_step_ratio": ratio}, f, indent=1)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
