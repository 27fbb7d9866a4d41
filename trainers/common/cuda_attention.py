"""Keep PyTorch's SDPA off cuDNN's attention kernel on CUDA GPUs while training.

Why: on Hopper GPUs (H100/H200) with torch 2.11 and later, cuDNN's SDPA backward returns NaN in the
query gradient when an attention mask is passed, the sequence length is 64 more than a multiple of 128,
and a query row's log-sum-exp is very negative (a left-padded prompt position attends to nothing, so
its row qualifies). PyTorch picks that kernel by default, and GRPO batches (left-padded prompts, masks,
every length) hit it: seen on one H100 as `grad_norm nan` at the first step of the 3B-shape Mini-R1
run, the weights turned NaN, and the next generation died in a device-side assert. Reported upstream as
pytorch/pytorch#196678 (and huggingface/trl#7181 for DPO). SDPA's flash and memory-efficient kernels
give finite gradients on the same inputs. REASONGYM_CUDNN_ATTENTION=1 keeps cuDNN's kernel.
"""

from __future__ import annotations

import os
from typing import Any

KEEP_CUDNN = "REASONGYM_CUDNN_ATTENTION"


def avoid_cudnn_attention() -> str:
    """Switch SDPA's cuDNN backend off on a CUDA machine (process-wide); what was done, as a pre-flight
    line ("" off CUDA, where the kernel does not exist)."""
    import torch

    if not torch.cuda.is_available():
        return ""
    if os.environ.get(KEEP_CUDNN) == "1":
        return (f"SDPA may use cuDNN's attention kernel ({KEEP_CUDNN}=1; its backward can return NaN "
                "gradients on Hopper GPUs)")
    torch.backends.cuda.enable_cudnn_sdp(False)
    return (f"SDPA's flash / memory-efficient kernels, not cuDNN's (its backward returns NaN gradients at some "
            f"lengths on Hopper GPUs; {KEEP_CUDNN}=1 keeps it)")


def guard_training_attention(console: Any, use_cpu: bool) -> None:
    """The trainers' pre-flight step: `avoid_cudnn_attention` unless the run is on the CPU, and its
    `attention` line on `console` (None: say nothing, as on ranks other than the first)."""
    line = "" if use_cpu else avoid_cudnn_attention()
    if line and console is not None:
        console.print(f"[bold]attention[/] {line}")
