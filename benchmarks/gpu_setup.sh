# Sourced by the benchmarks/gpu_*.sh scripts on a lent GPU machine (see ../shared/tools/gpu/README.md):
# installs the carried .whl/ set beside the machine's torch/transformers, sets the offline
# environment, and records the GPUs. Results go to $OUT (or ./gpu-out).
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl > /dev/null 2>&1; then  # staged wheels (machines without a package index)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
else  # any GPU box with a package index: what the machine lacks, beside its own torch
  python3 -m pip install -q --target /tmp/site -c constraints.txt "trl==1.16.0" datasets math-verify gymnasium \
      reasoning-gym gguf --no-deps || exit 1
  python3 -m pip install -q --target /tmp/site -c constraints.txt "trl==1.16.0" datasets math-verify gymnasium \
      reasoning-gym gguf 2>&1 | grep -v "^WARNING" || true
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRL_EXPERIMENTAL_SILENCE=1
export REASONGYM_CACHE=/tmp/rgcache TORCH_EXTENSIONS_DIR=/tmp/ext
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpus.txt"
# packages that ship only as source (reasoning-gym's pycosat): built here, needs a C compiler
source "$(dirname "${BASH_SOURCE[0]}")/timed.sh"
for sdist in .whl/*.tar.gz; do
  [ -e "$sdist" ] && python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site "$sdist"
done
