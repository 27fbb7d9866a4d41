#!/usr/bin/env bash
# A real pretrained model learns through the headline form on one GPU (see gpu_setup.sh for the machine setup):
# SmolLM2-135M-Instruct, converted by trainers.pretrained from its GGUF ($GGUF: a local copy, for machines
# without the package index), evaluated on 400 held-out tasks, trained with nothing but --env, --model and
# --output_dir (the pair recipe recipes/grpo/reasoning-gym_basic_arithmetic_smollm2-135m-instruct.yaml),
# evaluated again, and compared task by task (sign test). Prints the wall time of every part.
#   VARIANTS="name:flags ..."  extra GRPO runs side by side on the same GPU (e.g. "lr1e5:--learning_rate 1e-5")
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
ENV=reasoning-gym/basic_arithmetic
EVAL_RECIPE=recipes/evaluate/reasoning-gym_basic_arithmetic_smollm2-135m-instruct.yaml
M=/tmp/models/smollm2-135m-instruct
t0=$(date +%s)
stamp() { echo "$1 at $(( $(date +%s) - t0 ))s" | tee -a "$OUT/times.txt"; }
python3 -m trainers.pretrained --out "$M" ${GGUF:+--gguf "$GGUF"} > "$OUT/convert.log" 2>&1 || { tail "$OUT/convert.log"; exit 1; }
stamp converted
python3 -m trainers.evaluate --env $ENV --model "$M" --output_dir "$OUT/before" > "$OUT/before.log" 2>&1
stamp "evaluated before (rc=$?)"
train() { name=$1; shift
  python3 -m trainers.grpo --env $ENV --model "$M" --output_dir "/tmp/$name" "$@" > "$OUT/train-$name.log" 2>&1
  echo "train $name rc=$?" >> "$OUT/times.txt"
  python3 -m trainers.evaluate --config $EVAL_RECIPE --model "/tmp/$name" --output_dir "$OUT/after-$name" \
      > "$OUT/after-$name.log" 2>&1
  python3 -m trainers.evaluate --compare "$OUT/before" "$OUT/after-$name" --json "$OUT/compare-$name.json" \
      > "$OUT/compare-$name.txt" 2>&1
  stamp "done $name"; }
train headline &
for v in ${VARIANTS:-}; do name=${v%%:*}; flags=${v#*:}; train "$name" ${flags//,/ } & done
wait
for f in "$OUT"/compare-*.txt; do echo "== $f"; cat "$f"; done
grep -h "^recipe:" "$OUT"/train-*.log | sort -u
