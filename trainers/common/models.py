"""Loading and saving policies the same way in every trainer: load hints, tokenizer, final save.

Models built here (trainers.policies.tiny) carry a `reasongym_load.json` of `from_pretrained`
hints; checkpoints trained from them carry it on. Other models carry none, so a hint
never reaches a real pretrained model.
"""

from __future__ import annotations

import json
import os
from typing import Any

from reasongym.telemetry import is_main_process

LOAD_HINTS = "reasongym_load.json"


def write_load_hints(model_dir: str, hints: dict[str, Any]) -> None:
    with open(os.path.join(model_dir, LOAD_HINTS), "w") as f:
        json.dump(hints, f)


def copy_load_hints(source: str, target: str) -> None:
    """Carry a built model's loading hints to a checkpoint trained from it."""
    path = os.path.join(source, LOAD_HINTS)
    if os.path.isfile(path) and os.path.isdir(target) and not os.path.samefile(source, target):
        # (same folder: opening the target for writing would empty the source before it is read)
        with open(path) as f, open(os.path.join(target, LOAD_HINTS), "w") as g:
            g.write(f.read())


def load_kwargs(model_path: str, bf16: bool) -> dict:
    """Loading hints a model built here carries (none for other models, none without bf16).

    Small from-scratch models sampled in bf16 with SDPA attention and left padding produced NaN
    probabilities on H200 ("probability tensor contains inf/nan"; fp32, or bf16 with eager
    attention, ran clean), so in bf16 models built here ask for eager attention. In fp32 (CPU
    runs) SDPA is kept: eager made CPU GRPO steps ~25% slower."""
    path = os.path.join(model_path, LOAD_HINTS)
    if not bf16 or not os.path.isfile(path):
        return {}
    with open(path) as f:
        return dict(json.load(f))


def load_tokenizer(model: str, padding_side: str | None = "left"):
    """The policy's tokenizer, left-padded for generation (`padding_side=None` keeps the saved side);
    a tokenizer without a pad token (SmolLM2, Llama) pads with its EOS token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, **({"padding_side": padding_side} if padding_side else {}))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def save_policy(trainer: Any, source_model: str, out_dir: str | None = None) -> str:
    """Save a transformers/TRL trainer's model (gathered under ZeRO-3) and tokenizer, with the source's hints."""
    target = out_dir or trainer.args.output_dir
    trainer.save_model(target)
    if is_main_process():
        processing = getattr(trainer, "processing_class", None)
        if processing is not None:
            processing.save_pretrained(target)
        copy_load_hints(source_model, target)
    return target
