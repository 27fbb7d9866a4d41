#!/usr/bin/env bash
# GRPO step time of the GPU default policies' model (8 layers x 512, random weights) on countdown-3to4,
# 256 completions of <= 128 tokens per step, one GPU: which generation settings buy the most steps per
# minute for benchmarks/gpu_countdown_3to4.sh. Random weights generate to the 128-token cap (the worst case).
#   bf16_autocast    fp32 weights under --bf16 autocast (eager attention, dynamic KV cache): the old setting
#   fp32_compiled    --bf16 false --tf32 true: SDPA, static KV cache, compiled decode step (the default then)
#   fp32_dynamic     the same without the compiled decode (--compiled-decode false)
#   fp32_compiled_b512  fp32_compiled at 512 completions per step
# Prints TRL's step times, the time of each HF generate call, and completions/s against the first run.
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
STEPS=${STEPS:-12}
M=/tmp/policy-shape
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
python3 benchmarks/gpu_scale.py build --shape policy --out "$M" | tee "$OUT/build.json"
grpo() { name=$1; batch=$2; shift 2; t0=$(date +%s)
  timeout "${GRPO_TIMEOUT:-150}" python3 benchmarks/gpu_scale.py grpo -- --env countdown-3to4 \
      --env-kwargs '{"counts": [3, 4]}' --model "$M" --max_steps "$STEPS" --per_device_train_batch_size "$batch" \
      --max_completion_length 128 --learning_rate 2e-5 --logging_steps 1 --eval-size 0 --train-size 4000 \
      --save_strategy no --report_to none --log_completions false --output_dir "/tmp/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/runs.txt"; }
for run in ${RUNS:-bf16_autocast fp32_compiled fp32_dynamic fp32_compiled_b512}; do
  case $run in
    bf16_autocast) grpo "$run" 256 --bf16 true ;;
    fp32_compiled) grpo "$run" 256 --bf16 false --tf32 true ;;
    fp32_dynamic) grpo "$run" 256 --bf16 false --tf32 true --compiled-decode false ;;
    fp32_compiled_b512) grpo "$run" 512 --bf16 false --tf32 true ;;
  esac
done
# (report counts completions per step as processes x 256: the 512-completion run is marked @2 for that,
# so its "procs" column reads 2 although it ran in one process)
python3 benchmarks/gpu_scale.py report --completions-per-process 256 --json "$OUT/policy_speed.json" \
    --runs /tmp/bf16_autocast /tmp/fp32_compiled /tmp/fp32_dynamic /tmp/fp32_compiled_b512@2 | tee "$OUT/policy_speed.txt"
