#!/usr/bin/env bash
# countdown-3to4 itself (3 or 4 numbers in 1..99, target 10..100) on one GPU: the offline main job with
# an embedded default policy (warm start on solver completions -> held-out eval -> GRPO -> held-out eval,
# 500 test tasks x 4 samples, sign test). Several settings run side by side on the same GPU (the
# policies are small, so one run leaves the GPU mostly idle); each run's wall time covers everything
# from the warm start to the last evaluation, sharing the GPU with the others.
#   VARIANTS="name:preset:lr:max_steps:grpo_minutes[:batch[:extra]] ..." (default below; GRPO stops at
#   max_steps or after grpo_minutes, whichever comes first, with a constant learning rate; batch = completions
#   per optimizer step, default 256; extra = more GRPO flags, commas for spaces, e.g.
#   --steps_per_generation,4 to take 4 optimizer steps from each generated batch; --temperature,1.2 trains hotter,
#   while the held-out table still samples at T=1, --demo-eval-temperature)
#   TIMEOUT=seconds per run (default 585)
#   PRECISION=extra GRPO precision flags (default none: the CLI trains a policy built here in float32 without
#   autocast, TF32 matmuls, so HF generate runs the static-cache compiled decode, 2.0x the steps per minute
#   of "--bf16 true" (docs/benchmarks.md); PRECISION="--bf16 true" for the old setting)
# Run from the repo root on a lent GPU machine with .whl/ carried (see ../shared/tools/gpu/README.md).
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
PRECISION=${PRECISION:-}
VARIANTS=${VARIANTS:-"search_lr2e-5:gpu:2e-5:100000:3.75"}
run() { IFS=: read -r name preset lr steps minutes batch extra <<< "$1"; t0=$(date +%s)
  CUDA_VISIBLE_DEVICES=0 timeout "${TIMEOUT:-585}" python3 -m trainers.grpo --env countdown-3to4 \
      --env-kwargs '{"counts": [3, 4]}' --default-policy "$preset" --output-dir "/tmp/$name" \
      --max_steps "$steps" --max-train-minutes "$minutes" --learning_rate "$lr" --per_device_train_batch_size "${batch:-256}" $PRECISION \
      --max_completion_length 128 --logging_steps 10 ${extra//,/ } > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall_s=$(( $(date +%s) - t0 ))" >> "$OUT/runs.txt"
  cp "/tmp/$name/demo_summary.json" "$OUT/$name.summary.json" 2>/dev/null
  cp "/tmp/$name/reward_curve.png" "$OUT/$name.reward_curve.png" 2>/dev/null; }
for v in $VARIANTS; do run "$v" & sleep 2; done
wait
cat "$OUT/runs.txt"
for f in "$OUT"/*.summary.json; do python3 -c "
import json; d = json.load(open('$f')); b, a, s = d['before'], d['after'], d['sign_test']
print('$(basename "$f" .summary.json)', 'steps', d['steps'], 'train T', d.get('training_temperature'), 'sampled', round(b['accuracy'], 3), '->',
      round(a['accuracy'], 3), 'greedy', round(b['greedy_accuracy'], 3), '->', round(a['greedy_accuracy'], 3),
      'sign', s['improved'], '/', s['worsened'], 'p=%.2g' % s['p_value'], 'seconds', d.get('seconds'))"; done
for f in "$OUT"/*.log; do echo "== $f"; grep -E "precision|generation|warm start|held-out|GRPO|it/s|Error|error" "$f" | tail -8; done
