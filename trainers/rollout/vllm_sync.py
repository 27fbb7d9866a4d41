"""Weight sync for colocated vLLM on CPU, where TRL's own sync cannot work.

TRL's colocate sync pushes each trained parameter into the running vLLM model with
`model.load_weights([(name, tensor)])`. vLLM's CPU build, after loading, repacks every
linear layer's weight into a oneDNN / SGL kernel handle and leaves an empty `weight`
parameter behind (`dispatch_cpu_unquantized_gemm(remove_weight=True)`): the per-parameter
load then fails (`'Parameter' object has no attribute 'weight_loader'`), and a load that
did land would not reach the packed copy the kernels read.

vLLM's `reload_weights(weights_iterator=...)` is the supported route: it restores the
checkpoint-format layers, loads the new tensors, and runs the post-load processing (the
repacking) again. One call per sync streams every parameter, gathered the same way TRL
gathers them (ZeRO-3, PEFT merge), so a multi-process CPU run syncs too.

One layer escapes that reload: a tied LM head. Its weight is the embedding's (loaded, so
the reload sees nothing to do for `lm_head`), but its packed copy was made at start-up and
stays stale, so the engine would sample from new hidden states through the old head.
`repack_kept_weights` packs every layer that kept its weight beside a packed copy again.
"""

from __future__ import annotations

import functools
import types
from typing import Any


def pin_colocated_engine_on_cpu(dtype: str = "float32") -> None:
    """Make TRL's colocated engine on CPU run in the trainer's dtype, eagerly.

    TRL builds `vllm.LLM` without a dtype, and vLLM's "auto" turns a float32 checkpoint into bf16:
    on CPU that samples from a rounded copy of the policy (greedy answers of SmolLM2 parted from HF
    generate's on half the prompts) and runs ~4x slower on AVX2. Eager mode skips a graph compile
    at start-up. Call before GRPOTrainer is built; GPU runs are left alone."""
    from trl.generation import vllm_generation

    if not isinstance(vllm_generation.LLM, functools.partial):
        vllm_generation.LLM = functools.partial(vllm_generation.LLM, dtype=dtype, enforce_eager=True)


def needs_reload_sync(trainer: Any) -> bool:
    """A colocated vLLM engine running on the CPU platform."""
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None or getattr(generation, "mode", None) != "colocate":
        return False
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def repack_kept_weights(model: Any) -> int:
    """Re-pack the CPU kernel copy of every layer that keeps its weight (a tied LM head); returns how many."""
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    repacked = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if hasattr(module, "cpu_linear") and weight is not None and weight.numel() > 0 and weight.ndim == 2:
            dispatch_cpu_unquantized_gemm(module, remove_weight=False)
            repacked += 1
    return repacked


def reload_sync_weights(generation: Any) -> None:
    """Push the trainer's current weights into the colocated engine through vLLM's reload path."""
    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=generation._iter_named_params(), is_checkpoint_format=True)
    repack_kept_weights(runner.get_model())
    generation.llm.reset_prefix_cache()


def use_reload_sync(trainer: Any) -> bool:
    """Route the trainer's vLLM weight sync through `reload_sync_weights` where TRL's cannot work (CPU)."""
    if not needs_reload_sync(trainer):
        return False
    generation = trainer.vllm_generation
    generation.sync_weights = types.MethodType(reload_sync_weights, generation)
    return True
