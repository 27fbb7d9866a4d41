#!/usr/bin/env bash
# GPU speed at a real model size (issue #20), one call on a lent GPU machine (see gpu_setup.sh):
#   1. build a random-init model of Qwen2.5's shape on the GPU (SHAPE=0.5b|1.5b|3b, default 3b);
#   2. decode alone (DECODE=1): HF generate with each cache lever, ms per step against the weight-read bound;
#   2b. our decode loop alone (LOOP_VARIANTS, e.g. "matmul:filled:unfused,matmul:filled"): benchmarks/decode_loop.py
#      at the Mini-R1 batch (96 prompts of up to 150 tokens, 1,024 tokens forced), with a profile of each variant;
#   3. GRPO steps of the Mini-R1 recipe (96 completions of up to 1024 tokens per step, HF generate), each run
#      named in RUNS: TRL's step_time split into HF generate, the rest of the rollout (rewards, reference
#      log-probs) and the training pass; ratios against the first run named.
#        dynamic      dynamic KV cache (--compiled-decode false), TRL's padded micro-batches, every layer checkpointed
#        compiled     static cache + compiled decode in HF generate's loop, TRL's padded micro-batches, every
#                     layer checkpointed (the path before the training and decode-loop work: the baseline)
#        trimmed      + length-grouped micro-batches with padding trimmed
#        half_ckpt    + gradient checkpointing on half of the layers (what the recipe now sets)
#        own_loop     + our own decode loop (trainers.rollout.static_sampler), whose decode attention is two
#                     batched matmuls over the filled part of the cache, with q/k/v and gate/up projections
#                     fused (trainers.rollout.fused_projections): the recipe's defaults today
#        own_loop_sdpa  own_loop with PyTorch's fused SDPA kernel for the decode attention
#                     (REASONGYM_DECODE_ATTENTION=sdpa)
#        own_loop_cudnn  own_loop with SDPA's cuDNN kernel kept (REASONGYM_CUDNN_ATTENTION=1): what the guard costs
#        liger        own_loop + Liger's layer kernels (RMSNorm, RoPE, SwiGLU; --use_liger_kernel true, the
#                     liger-kernel wheel carried) in the training pass; our loop sets them aside while it samples.
#                     TRL already computes log-probs with its own chunked LM head
#        liger_autotune liger with the decode step compiled in torch.compile's max-autotune mode
#                     (REASONGYM_DECODE_COMPILE_MODE=max-autotune: GEMMs tuned for the decode batch)
#        liger_ckpt40 liger with gradient checkpointing on 14 of 36 layers (about 4 GB more than liger's 18)
#        liger_ckpt25 liger with gradient checkpointing on a quarter of the layers (Liger's kernels keep fewer
#                     activations)
#        no_ckpt_mb4  trimmed, no gradient checkpointing, micro-batches of 4 (x 24 accumulation steps), HF's loop
set -uo pipefail
source "$(dirname "$0")/gpu_setup.sh"
SHAPE=${SHAPE:-3b}
STEPS=${STEPS:-3}
M=/tmp/qwen-$SHAPE-shape
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
[ -f "$M/config.json" ] || python3 benchmarks/gpu_scale.py build --shape "$SHAPE" --out "$M" | tee "$OUT/build.json"
if [ "${DECODE:-0}" = 1 ]; then
  python3 benchmarks/gpu_scale.py decode --model "$M" --batch 96 --new-tokens 128 --cache-len 1216 --profile \
      --json "$OUT/decode.json" \
      2>&1 | grep -v Warning | tee "$OUT/decode.txt"
fi
if [ -n "${LOOP_VARIANTS:-}" ]; then
  TORCH_LOGS=${TORCH_LOGS:-perf_hints} python3 benchmarks/decode_loop.py --model "$M" --batch 96 --prompt-tokens 150 \
      --new-tokens 1024 --no-eos --repeats "${LOOP_REPEATS:-2}" --variants "$LOOP_VARIANTS" --profile \
      --json "$OUT/decode_loop.json" 2>&1 | grep -v Warning | tee "$OUT/decode_loop.txt"
fi
dirs=()
grpo() { name=$1; shift; t0=$(date +%s); dirs+=("/tmp/$name")
  timeout "${GRPO_TIMEOUT:-250}" python3 benchmarks/gpu_scale.py grpo -- \
      --config recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml \
      --model "$M" --use_vllm false --max_steps "$STEPS" --gradient_accumulation_steps 12 --logging_steps 1 \
      --eval-size 0 --train-size 2000 --save_strategy no --report_to none --log_completions false \
      --output_dir "/tmp/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/runs.txt"
  # the table so far, so a call cut short by its time limit still brings back the runs it finished
  python3 benchmarks/gpu_scale.py report --runs "${dirs[@]}" --json "$OUT/grpo.json" > "$OUT/grpo.txt" 2>&1; }
for run in ${RUNS-compiled half_ckpt own_loop}; do
  case $run in
    dynamic) grpo A_dynamic_cache --compiled-decode false --trim-padding false --checkpointed-layers 1 \
                 --max_steps "${DYNAMIC_STEPS:-$STEPS}" ;;
    compiled) grpo B_compiled_decode --trim-padding false --checkpointed-layers 1 --decode-loop hf ;;
    trimmed) grpo C_trimmed --checkpointed-layers 1 --decode-loop hf ;;
    half_ckpt) grpo D_trimmed_half_ckpt --checkpointed-layers 0.5 --decode-loop hf ;;
    own_loop) grpo E_own_decode_loop ;;
    own_loop_sdpa) REASONGYM_DECODE_ATTENTION=sdpa grpo E3_own_loop_sdpa ;;
    own_loop_cudnn) REASONGYM_CUDNN_ATTENTION=1 grpo E2_own_loop_cudnn ;;
    liger) grpo G_liger --use_liger_kernel true ;;
    liger_autotune) REASONGYM_DECODE_COMPILE_MODE=max-autotune grpo G3_liger_autotune --use_liger_kernel true ;;
    liger_ckpt40) grpo G4_liger_ckpt40 --use_liger_kernel true --checkpointed-layers 0.4 ;;
    liger_ckpt25) grpo G2_liger_ckpt25 --use_liger_kernel true --checkpointed-layers 0.25 ;;
    no_ckpt_mb4) grpo F_no_ckpt_mb4 --gradient_checkpointing false --per_device_train_batch_size 4 \
                     --gradient_accumulation_steps 24 --decode-loop hf ;;
    *) echo "unknown run $run"; continue ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] && cat "$OUT/grpo.txt"
