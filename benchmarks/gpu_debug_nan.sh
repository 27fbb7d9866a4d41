#!/usr/bin/env bash
# Reproduce and bisect the "probability tensor contains inf/nan" generation crash seen in
# single-GPU GRPO runs of the warm-started default policy (fp32 weights + bf16 autocast).
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
DEMO_ENV='{"counts": [2], "num_range": [1, 20], "target_range": [1, 100]}'
POLICY=$(python3 -c "
from trainers.default_policy import default_policy, PRESETS
print(default_policy('countdown', $DEMO_ENV, PRESETS['gpu']))" 2>/dev/null | tail -1)
echo "policy $POLICY"
COMMON=(--env countdown --env-kwargs "$DEMO_ENV" --model "$POLICY" --max_steps 45 --num_generations 8
        --max_completion_length 64 --learning_rate 1e-4 --lr_scheduler_type constant --gradient_checkpointing false
        --train-size 8000 --logging_steps 5 --per_device_train_batch_size 256)
run() { name=$1; shift; t0=$(date +%s)
  python3 -m trainers.grpo "${COMMON[@]}" --output-dir /tmp/$name "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s $(grep -o 'Assertion `[^`]*`' "$OUT/$name.log" | head -1)" | tee -a "$OUT/debug.txt"; }
run bf16_sdpa --bf16 true
run fp32 --bf16 false
run bf16_eager --bf16 true --model_init_kwargs '{"dtype": "float32", "attn_implementation": "eager"}'
run bf16_topk --bf16 true --top_k 50
cat "$OUT/debug.txt"
