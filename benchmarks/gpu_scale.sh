#!/usr/bin/env bash
# GPU speed at a real model size (issue #20), one call on a lent GPU machine (see gpu_setup.sh):
#   1. build a random-init model of Qwen2.5's shape on the GPU (SHAPE=0.5b|1.5b|3b, default 3b);
#   2. decode alone (DECODE=1): HF generate with each cache lever, ms per step against the weight-read bound;
#   3. GRPO steps of the Mini-R1 recipe (96 completions of up to 1024 tokens per step, HF generate):
#      dynamic KV cache (--compiled-decode false) against the default static cache with a compiled
#      decode step; TRL's step_time and the time of each HF generate call, ratios against the first run.
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
SHAPE=${SHAPE:-3b}
STEPS=${STEPS:-3}
M=/tmp/qwen-$SHAPE-shape
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
python3 benchmarks/gpu_scale.py build --shape "$SHAPE" --out "$M" | tee "$OUT/build.json"
if [ "${DECODE:-0}" = 1 ]; then
  python3 benchmarks/gpu_scale.py decode --model "$M" --batch 96 --new-tokens 128 --cache-len 1216 --profile \
      --json "$OUT/decode.json" \
      2>&1 | grep -v Warning | tee "$OUT/decode.txt"
fi
grpo() { name=$1; shift; t0=$(date +%s)
  timeout "${GRPO_TIMEOUT:-250}" python3 benchmarks/gpu_scale.py grpo -- \
      --config recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml \
      --model "$M" --use_vllm false --max_steps "$STEPS" --gradient_accumulation_steps 12 --logging_steps 1 \
      --eval-size 0 --train-size 2000 --save_strategy no --report_to none --log_completions false \
      --output_dir "/tmp/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/runs.txt"; }
for run in ${RUNS:-dynamic compiled}; do
  case $run in
    dynamic) grpo A_dynamic_cache --compiled-decode false --max_steps "${DYNAMIC_STEPS:-$STEPS}" ;;
    compiled) grpo B_compiled_decode ;;
    compiled_no_ckpt) grpo C_compiled_no_ckpt --gradient_checkpointing false ;;
  esac
done
python3 benchmarks/gpu_scale.py report --runs /tmp/A_dynamic_cache /tmp/B_compiled_decode /tmp/C_compiled_no_ckpt \
    --json "$OUT/grpo.json" | tee "$OUT/grpo.txt"
