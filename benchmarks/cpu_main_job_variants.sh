#!/usr/bin/env bash
# The offline main job (no --model, 2-number countdown demo) at several settings side by side, each pinned
# to its own pair of CPU cores with the GPU hidden, so each run sees a "2-core box". Same-run ratios are the
# point: the first variant is the current default, the baseline the others are compared with.
#   VARIANTS="name|flags;name|flags" (default below)   TIMEOUT=seconds per run (default 585)
#   COMMAND="-m trainers.rejection_sampling --config ..." runs another trainer instead of the main job
#   CORES_PER_RUN=1 pins each run to one core (default 2), so a 2-core box runs two variants side by side
#   SHARED_CACHE=DIR has every run use the policy cache DIR (one warm start, built once if DIR is empty; the
#   runs then start from the same policy) instead of a fresh cache each
# Run from the repo root on a machine with CORES_PER_RUN cores per variant (e.g. a lent GPU machine, .whl/
# carried: it sources gpu_setup.sh where .whl/ exists and nvidia-smi runs).
set -uo pipefail
if [ -d .whl ] && command -v nvidia-smi > /dev/null; then source "$(dirname "$0")/gpu_setup.sh"; else OUT=${OUT:-$PWD/cpu-out}; mkdir -p "$OUT"; fi
VARIANTS=${VARIANTS:-"default|;ws200_s60_lr2e-4|--warm-start-steps 200 --max_steps 60 --learning_rate 2e-4;ws250_s80_lr1.5e-4|--warm-start-steps 250 --max_steps 80 --learning_rate 1.5e-4;ws200_s80_lr2e-4|--warm-start-steps 200 --max_steps 80 --learning_rate 2e-4"}
i=0
IFS=';' read -ra LIST <<< "$VARIANTS"
for v in "${LIST[@]}"; do
  name=${v%%|*}; flags=${v#*|}; per=${CORES_PER_RUN:-2}
  cores=$(seq -s, $((per * i)) $((per * i + per - 1))); i=$((i + 1))
  ( t0=$(date +%s)
    # shellcheck disable=SC2086
    CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=$per MKL_NUM_THREADS=$per REASONGYM_CACHE="${SHARED_CACHE:-/tmp/rgc-$name}" \
      timeout "${TIMEOUT:-585}" taskset -c "$cores" python3 ${COMMAND:--m trainers.grpo --env countdown-3to4} \
      --output-dir "/tmp/$name" $flags > "$OUT/$name.log" 2>&1
    echo "$name cores=$cores rc=$? wall_s=$(( $(date +%s) - t0 ))" >> "$OUT/runs.txt"
    cp "/tmp/$name/demo_summary.json" "$OUT/$name.summary.json" 2>/dev/null
    cp "/tmp/$name/metrics.jsonl" "$OUT/$name.metrics.jsonl" 2>/dev/null ) &
done
wait
cat "$OUT/runs.txt"
for f in "$OUT"/*.log; do echo "== $f"; grep -E "SFT.*100%|GRPO on.*it/s|held-out.*100%|sign test|McNemar" "$f" | tail -9; done
