#!/usr/bin/env bash
# The offline main job on one GPU with the larger default policy, at two settings:
#   A: the CPU demo's env (2 numbers in 1..20) with a lower learning rate (1e-5)
#   B: a harder member of the family (3 numbers in 1..20), lr 2e-5
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
run() { name=$1; shift; t0=$(date +%s)
  python3 -m trainers.grpo --default-policy gpu --output-dir /tmp/$name --max_steps 150 \
      --per_device_train_batch_size 256 --bf16 true "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/sweep.txt"
  cp /tmp/$name/demo_summary.json "$OUT/$name.summary.json" 2>/dev/null; }
run A_2num_lr1e-5 --env countdown-3to4 --learning_rate 1e-5
run B_3num_lr2e-5 --env countdown --env-kwargs '{"counts": [3], "num_range": [1, 20], "target_range": [1, 100]}' \
    --learning_rate 2e-5
for f in "$OUT"/*.summary.json; do python3 -c "
import json,sys; d=json.load(open('$f')); print('$f', d['env_kwargs'], 'before', d['before'], 'after', d['after'], 'sign', d['sign_test'], 'greedy', d['greedy_mcnemar'])"; done
