#!/usr/bin/env bash
# The headline command's speed on one GPU, random weights of real shapes (see gpu_setup.sh for the machine setup):
#   smollm2: SmolLM2-135M-Instruct's shape (float32 weights, as trainers.pretrained builds it), 128 completions of
#            up to 256 tokens per GRPO step: `--config none --bf16 true` with 16 x 8 micro-batches (TRL's
#            defaults: float32 weights under autocast, the compiled decode off) against the headline form
#            `--model M` (the pretrained recipe: bf16 weights, compiled decode, the recipe's 64 x 2 micro-batches,
#            length-grouped and trimmed, our own decode loop), the headline form with HF generate's loop
#            (--decode-loop hf; HF_LOOP=0 skips it), with every layer checkpointed as TRL's default does
#            (--gradient_checkpointing true; CKPT=0 skips it) and with TRL's padded micro-batches
#            (--trim-padding false; PADDED=0 skips it). TRL_DEFAULTS=0 skips the first run. Completions per second from TRL's step_time.
#   3b:      `python -m trainers.grpo --env countdown-3to4 --model <folder named Qwen2.5-3B-Instruct>`, so the
#            Mini-R1 recipe is picked by name; 96 completions of up to 1024 tokens per step (as gpu_scale.sh).
#   0.5b, 1.5b: the same headline form with a folder named Qwen2.5-<size>-Instruct: no recipe is written for
#            that pair, so the pretrained recipe sized by parameter count applies; step time and peak memory.
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
run() { name=$1; shift; t0=$(date +%s)
  timeout "${GRPO_TIMEOUT:-300}" python3 benchmarks/gpu_scale.py grpo -- --env countdown-3to4 --max_steps "${STEPS:-4}" \
      --logging_steps 1 --eval-size 0 --train-size 2000 --save_strategy no --report_to none --log_completions false \
      --output_dir "/tmp/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/runs.txt"; grep -m1 "^recipe:" "$OUT/$name.log" | tee -a "$OUT/runs.txt"; }
for part in ${PARTS:-smollm2 3b}; do
  case $part in
    smollm2)
      S=/tmp/smollm2-135m-shape
      python3 benchmarks/gpu_scale.py build --shape smollm2-135m --out "$S" | tee "$OUT/build_smollm2.json"
      SMALL="--model $S --num_generations 8 --max_completion_length 256"
      [ "${TRL_DEFAULTS:-1}" = 1 ] && run S_before_trl_defaults $SMALL --config none --bf16 true \
          --per_device_train_batch_size 16 --gradient_accumulation_steps 8
      run S_after_headline $SMALL
      [ "${HF_LOOP:-1}" = 1 ] && run S_after_headline_hf_loop $SMALL --decode-loop hf
      [ "${CKPT:-1}" = 1 ] && run S_after_headline_ckpt $SMALL --gradient_checkpointing true
      [ "${PADDED:-1}" = 1 ] && run S_after_headline_padded $SMALL --trim-padding false
      python3 benchmarks/gpu_scale.py report --runs /tmp/S_before_trl_defaults /tmp/S_after_headline \
          /tmp/S_after_headline_hf_loop /tmp/S_after_headline_ckpt /tmp/S_after_headline_padded --completions-per-process 128 \
          --json "$OUT/smollm2.json" | tee "$OUT/smollm2.txt" ;;
    3b)
      M=/tmp/Qwen2.5-3B-Instruct
      python3 benchmarks/gpu_scale.py build --shape 3b --out "$M" | tee "$OUT/build_3b.json"
      STEPS=${STEPS_3B:-3} run H_3b_headline --model "$M" --gradient_accumulation_steps 12
      python3 benchmarks/gpu_scale.py report --runs /tmp/H_3b_headline --json "$OUT/3b.json" | tee "$OUT/3b.txt" ;;
    0.5b|1.5b)
      M=/tmp/Qwen2.5-${part^^}-Instruct
      python3 benchmarks/gpu_scale.py build --shape "$part" --out "$M" | tee "$OUT/build_$part.json"
      STEPS=${STEPS_SMALL:-3} run "H_$part" --model "$M"
      python3 benchmarks/gpu_scale.py report --runs "/tmp/H_$part" --json "$OUT/$part.json" | tee "$OUT/$part.txt" ;;
  esac
done
