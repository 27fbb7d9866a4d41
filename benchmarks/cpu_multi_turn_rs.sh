#!/usr/bin/env bash
# Does rejection sampling teach the embedded policy's second turn? 2-turn countdown (the main job's 2-number
# parametrisation): the warm start is built once, then one rejection-sampling run per seed, side by side, each
# pinned to its own pair of cores with the GPU hidden (a "2-core box" each), and finally the warm start and every
# run's last policy are evaluated at T=1 on 500 test tasks x 4 episodes: pass@turn-1 and pass@turn-2.
#   SEEDS="0 1 2 3 4 5"  RS_FLAGS="--rounds 3 --samples 8 --prompts 256 --learning_rate 1e-4"
# Run from the repo root on a machine with 2 cores per seed plus 2 (e.g. a lent GPU machine, .whl/ carried).
set -uo pipefail
if [ -d .whl ]; then source "$(dirname "$0")/gpu_setup.sh"; else OUT=${OUT:-$PWD/cpu-out}; mkdir -p "$OUT"; fi
ENV_KWARGS='{"counts": [2], "num_range": [1, 20], "target_range": [1, 100], "max_turns": 2}'
SEEDS=${SEEDS:-"0 1 2 3 4 5"}
RS_FLAGS=${RS_FLAGS:-"--rounds 3 --samples 8 --prompts 256 --learning_rate 1e-4"}
ROUNDS=$(echo "$RS_FLAGS" | sed -n 's/.*--rounds \([0-9]*\).*/\1/p')
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 REASONGYM_CACHE=/tmp/rgc-multi-turn
evaluate() {  # cores model name
  taskset -c "$1" python3 -m trainers.evaluate --env countdown --env-kwargs "$ENV_KWARGS" --model "$2" --samples 4 \
    --k 1,4 --n 500 --max_completion_length 64 --output_dir "/tmp/eval-$3" > "$OUT/eval-$3.log" 2>&1
  cp "/tmp/eval-$3/report.json" "$OUT/eval-$3.json"
}
t0=$(date +%s)
policy=$(OMP_NUM_THREADS=8 python3 -c "import json, sys; from trainers.policies.default_policy import default_policy
print(default_policy('countdown', json.loads(sys.argv[1])))" "$ENV_KWARGS" 2> "$OUT/warm-start.log" | tail -1)
echo "warm start: $policy ($(( $(date +%s) - t0 )) s)" | tee "$OUT/runs.txt"
evaluate 0,1 "$policy" warm-start &
i=1
for seed in $SEEDS; do
  cores="$((2 * i)),$((2 * i + 1))"; i=$((i + 1))
  ( # shellcheck disable=SC2086
    taskset -c "$cores" python3 -m trainers.rejection_sampling --config recipes/rejection_sampling/tiny-cpu-multi-turn.yaml \
      --model "$policy" --seed "$seed" --output_dir "/tmp/rs-$seed" $RS_FLAGS > "$OUT/rs-$seed.log" 2>&1
    cp "/tmp/rs-$seed/metrics.jsonl" "$OUT/rs-$seed.metrics.jsonl"
    evaluate "$cores" "/tmp/rs-$seed/round-$ROUNDS" "seed$seed"
    echo "seed $seed cores=$cores done at $(( $(date +%s) - t0 )) s" >> "$OUT/runs.txt" ) &
done
wait
cat "$OUT/runs.txt"
python3 - "$OUT" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "eval-*.json"))):
    report = json.load(open(path))
    turns = report.get("success_by_turn") or {}
    one, two = turns.get("pass@turn-1", 0.0), turns.get("pass@turn-2", 0.0)
    print(f"{os.path.basename(path)[5:-5]:12s} pass@turn-1 {one:.3f}  pass@turn-2 {two:.3f}  second-turn fixes "
          f"{two - one:.3f} ({(two - one) / max(1e-9, 1 - one):.1%} of first-turn failures)")
PY
