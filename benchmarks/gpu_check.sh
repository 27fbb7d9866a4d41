#!/usr/bin/env bash
# GPU check on a lent 2-GPU machine (see ../shared/tools/gpu/README.md): run from the repo root
# with the wheels of .whl/ carried. Results land in $OUT (or ./gpu-out).
#   1. the offline main job on one GPU with the larger default policy (issue: embedded default)
#   2. GRPO from that policy: 1 GPU, then DeepSpeed ZeRO-3 over 2 GPUs (steps/s, peak memory, reward trend)
#   3. PPO from that policy: 1 GPU, then ZeRO-3 over 2 GPUs
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
ACC="python3 -m accelerate.commands.launch --config_file recipes/accelerate/zero3.yaml --num_processes 2"
DEMO_ENV='{"counts": [2], "num_range": [1, 20], "target_range": [1, 100]}'

CUDA_VISIBLE_DEVICES=0 timed demo python3 -m trainers.grpo --env countdown-3to4 --default-policy ci --output-dir /tmp/demo \
    --max_steps ${DEMO_STEPS:-150} --per_device_train_batch_size 256 --bf16 true
cp /tmp/demo/demo_summary.json /tmp/demo/reward_curve.png "$OUT/" 2>/dev/null
POLICY=$(ls -d /tmp/rgcache/policies/countdown-* | grep -v building | head -1)
echo "policy=$POLICY" >> "$OUT/summary.txt"

COMMON=(--env countdown --env-kwargs "$DEMO_ENV" --model "$POLICY" --max_steps 30 --num_generations 8
        --max_completion_length 64 --learning_rate 1e-4 --lr_scheduler_type constant --bf16 true
        --gradient_checkpointing false --train-size 8000 --logging_steps 5)
CUDA_VISIBLE_DEVICES=0 timed grpo_1gpu python3 -m trainers.grpo "${COMMON[@]}" --per_device_train_batch_size 128 \
    --output-dir /tmp/g1
timed grpo_zero3_2gpu $ACC -m trainers.grpo "${COMMON[@]}" --per_device_train_batch_size 64 --output-dir /tmp/g2

PPO=(--env countdown --env-kwargs "$DEMO_ENV" --model "$POLICY" --max_steps 20 --learning_rate 1e-5
     --mini_batch_size 16 --ppo_epochs 2 --max_completion_length 64 --bf16 true --kl_coef 0.02)
CUDA_VISIBLE_DEVICES=0 timed ppo_1gpu python3 -m trainers.ppo "${PPO[@]}" --per_device_train_batch_size 64 --output_dir /tmp/p1
timed ppo_zero3_2gpu $ACC -m trainers.ppo "${PPO[@]}" --per_device_train_batch_size 32 --output_dir /tmp/p2

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
lines = []
for name, d in [("grpo_1gpu", "/tmp/g1"), ("grpo_zero3_2gpu", "/tmp/g2"), ("ppo_1gpu", "/tmp/p1"), ("ppo_zero3_2gpu", "/tmp/p2")]:
    path = os.path.join(d, "metrics.jsonl")
    if not os.path.exists(path):
        lines.append(f"{name}: no metrics"); continue
    rows = [json.loads(l) for l in open(path)]
    train = [r for r in rows if "reward" in r]
    end = [r for r in rows if "train_runtime" in r or "peak_gpu_memory_gb" in r]
    trend = [round(r["reward"], 3) for r in train]
    extra = {k: v for r in end for k, v in r.items() if k in ("train_runtime", "train_steps_per_second", "peak_gpu_memory_gb")}
    lines.append(f"{name}: reward trend {trend} {extra}")
open(os.path.join(out, "summary.txt"), "a").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
tail -25 "$OUT/demo.log" > "$OUT/demo_tail.txt"
cat "$OUT/summary.txt"
