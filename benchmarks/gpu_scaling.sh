#!/usr/bin/env bash
# Multi-GPU scaling at a real model size (issue #20), one call on a lent 2-GPU machine (see gpu_setup.sh).
# Each layout runs STEPS (default 3) GRPO steps of the Mini-R1 recipe's shape with the SAME per-GPU batch (96 completions
# of up to 1024 tokens per process and step, HF generate); the report prints completions per second and
# the ratio against the 1-GPU run of the same call.
# REUSE=1 keeps runs that an earlier call on the same (still warm) machine finished.
#   LAYOUTS="1gpu ddp2 zero2x2 zero3x2" SHAPE=3b bash benchmarks/gpu_scaling.sh
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
SHAPE=${SHAPE:-3b}
M=/tmp/qwen-$SHAPE-shape
LAYOUTS=${LAYOUTS:-"1gpu ddp2 zero2x2"}
[ -f "$M/config.json" ] || CUDA_VISIBLE_DEVICES=0 python3 benchmarks/gpu_scale.py build --shape "$SHAPE" --out "$M"
ARGS=(--config recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml --model "$M" --use_vllm false --max_steps "${STEPS:-3}"
      --gradient_accumulation_steps 12 --logging_steps 1 --eval-size 0 --train-size 2000 --save_strategy no
      --report_to none --log_completions false ${EXTRA:-})
T=${GRPO_TIMEOUT:-240}
ACC=(timeout "$T" python3 -m accelerate.commands.launch --num_processes 2 --config_file)
RUNS=()
for layout in $LAYOUTS; do
  out=/tmp/scaling-$layout; t0=$(date +%s)
  n=1; [ "$layout" = 1gpu ] || n=2
  if [ -n "${REUSE:-}" ] && [ -f "$out/metrics.jsonl" ]; then RUNS+=("$out@$n"); continue; fi  # from an earlier call
  rm -rf "$out"
  case $layout in
    1gpu)    CUDA_VISIBLE_DEVICES=0 timeout "$T" python3 -m trainers.grpo "${ARGS[@]}" --output_dir "$out" ;;
    ddp2)    CUDA_VISIBLE_DEVICES=0,1 "${ACC[@]}" recipes/accelerate/ddp.yaml -m trainers.grpo "${ARGS[@]}" --output_dir "$out" ;;
    zero2x2) CUDA_VISIBLE_DEVICES=0,1 "${ACC[@]}" recipes/accelerate/zero2.yaml -m trainers.grpo "${ARGS[@]}" --output_dir "$out" ;;
    zero3x2) CUDA_VISIBLE_DEVICES=0,1 "${ACC[@]}" recipes/accelerate/zero3.yaml -m trainers.grpo "${ARGS[@]}" --output_dir "$out" ;;
    *) echo "unknown layout $layout"; continue ;;
  esac > "$OUT/$layout.log" 2>&1
  echo "$layout rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/runs.txt"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader >> "$OUT/runs.txt"
  RUNS+=("$out@$n")
done
python3 benchmarks/gpu_scale.py report --runs "${RUNS[@]}" --completions-per-process 96 --json "$OUT/scaling.json" \
    | tee "$OUT/scaling.txt"
