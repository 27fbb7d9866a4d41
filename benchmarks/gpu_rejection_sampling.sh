#!/usr/bin/env bash
# Rejection sampling on a lent 2-GPU machine (see ../shared/tools/gpu/README.md): run from the repo
# root with the wheels of .whl/ carried. Results land in $OUT (or ./gpu-out).
#   1. the `ci` default policy (built on the spot in seconds, no downloads) for a 3-number countdown
#   2. 3 rounds of rejection sampling on one GPU
#   3. the same 3 rounds under DeepSpeed ZeRO-3 over 2 GPUs (same global prompts and SFT batch)
# Prints per-round acceptance rate, SFT rows and greedy test accuracy, and the wall-time ratio.
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
ENV_KWARGS='{"counts": [3], "num_range": [1, 20], "target_range": [1, 100]}'

CUDA_VISIBLE_DEVICES=0 timed policy python3 -c "import json, sys
from trainers.policies.default_policy import PRESETS, default_policy
open('/tmp/policy_path', 'w').write(default_policy('countdown', json.loads(sys.argv[1]), PRESETS['ci']))" "$ENV_KWARGS" || exit 1
POLICY=$(cat /tmp/policy_path)

RS=(--env countdown --env-kwargs "$ENV_KWARGS" --model "$POLICY" --rounds ${ROUNDS:-3} --samples 8 --prompts 1024
    --max-per-prompt 2 --eval-size 512 --max-completion-length 64 --learning-rate 5e-5 --gen-batch-size 1024)
CUDA_VISIBLE_DEVICES=0 timed rs_1gpu timeout 400 python3 -m trainers.rejection_sampling "${RS[@]}" \
    --per-device-train-batch-size 64 --output-dir /tmp/rs1
timed rs_zero3_2gpu timeout 400 python3 -m accelerate.commands.launch --config_file recipes/accelerate/zero3.yaml \
    --num_processes 2 -m trainers.rejection_sampling "${RS[@]}" --per-device-train-batch-size 32 --output-dir /tmp/rs2

for run in rs1 rs2; do
    echo "== $run" | tee -a "$OUT/summary.txt"
    cat /tmp/$run/metrics.jsonl 2>/dev/null | tee -a "$OUT/summary.txt"
done
grep -h "wall_s" "$OUT/summary.txt" | awk '/rs_1gpu/ {split($3, a, "="); one=a[2]} /rs_zero3/ {split($3, b, "="); two=b[2]}
    END {if (one > 0) printf "wall-time ratio zero3_2gpu / 1gpu = %.2f\n", two / one}' | tee -a "$OUT/summary.txt"
