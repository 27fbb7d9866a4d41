"""Supervised fine-tuning through TRL's SFTTrainer: each rejection-sampling round. (The default policy's
warm start, one process on a small model, has its own loop: trainers.policies.warm_sft.)

Prompt-completion rows (loss on the completion only; the prompt is the same text GRPO
sees, chat template and pre-fill included) through TRL's SFTTrainer, so it runs under
whatever accelerate/DeepSpeed launch the process is in.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from trainers.common.models import load_tokenizer, save_policy


def sft(model_dir: str, rows: list[dict[str, str]], out_dir: str, config: dict[str, Any],
        description: str = "SFT", console: Any = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None) -> str:
    """Fine-tune `model_dir` on `rows` ({"prompt", "completion"}) and save the policy to `out_dir`.

    `config` holds SFTConfig fields on top of these defaults: no checkpoints, no trackers, bf16 on
    a GPU that has it (fp32 master weights either way), fp32 on CPU, our own progress display.
    Every rank returns only after the save, so the next step may load `out_dir` at once. `on_log(step, logs)`
    sees each logged step's metrics."""
    import datasets
    import torch
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from trainers.common.cuda_attention import avoid_cudnn_attention
    from trainers.common.progress import StepProgressCallback, quiet_libraries

    quiet_libraries()
    avoid_cudnn_attention()
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    defaults: dict[str, Any] = {
        "output_dir": out_dir, "save_strategy": "no", "report_to": "none", "gradient_checkpointing": False,
        "use_cpu": not torch.cuda.is_available(), "bf16": gpu_bf16, "disable_tqdm": True,
        "model_init_kwargs": {"dtype": "float32"},
    }
    args = SFTConfig(**{**defaults, **config})
    tokenizer = load_tokenizer(model_dir, padding_side=None)
    trainer = SFTTrainer(model=model_dir, args=args, processing_class=tokenizer,
                         train_dataset=datasets.Dataset.from_list(
                             [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]),
                         callbacks=[StepProgressCallback(description, console)])
    for noisy in (PrinterCallback, ProgressCallback):  # our callback shows steps and loss
        trainer.remove_callback(noisy)
    if on_log is not None:
        class Forward(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    on_log(state.global_step, logs)

        trainer.add_callback(Forward())
    trainer.train()
    save_policy(trainer, model_dir, out_dir)
    shutil.rmtree(os.path.join(out_dir, "runs"), ignore_errors=True)
    trainer.accelerator.wait_for_everyone()  # every rank may load the new policy from out_dir next
    trainer.accelerator.free_memory()  # drop the DeepSpeed engine and optimizer before whatever runs next
    return out_dir
