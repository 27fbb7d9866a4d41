"""The training half of a GRPO step without the padding: length-grouped micro-batches, trimmed.

Why: TRL pads every completion of a generation batch to the longest one and shuffles before it
splits the batch into micro-batches, so every micro-batch runs the full width. Completions vary
(at the Mini-R1 shape they average ~640 of 1024 tokens), and a causal model's outputs at real
tokens never depend on the padding after them. Here:

1. the generation batch is ordered by completion length before it is split, so each micro-batch
   holds completions of similar length (instead of TRL's shuffle);
2. every forward that scores completions (the policy's, the reference model's, the old policy's)
   drops the columns after the chunk's last real token and pads the log-probs back with zeros
   where the completion mask is 0 anyway.

Step 2 is exact for any causal LM. Step 1 changes which completions share a micro-batch, so it
is used only where the loss of an accumulation window does not depend on that: one optimizer
step per generation batch (`steps_per_generation == gradient_accumulation_steps`), a loss whose
normaliser is per sequence or per generation batch (not `bnpo`, which averages per micro-batch),
and no per-micro-batch entropy quantile. Elsewhere TRL's shuffle stays and only step 2 applies.
tests/test_fast_training.py checks both against TRL's own path: same loss, same gradients.

`checkpointed_layers` is the other lever here: gradient checkpointing on a fraction of the decoder
layers, so a model that does not fit without it need not recompute every layer.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

# losses whose value over an accumulation window does not depend on how completions are grouped
GROUPING_FREE_LOSSES = ("grpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")
# trimmed widths are rounded up to this many columns: attention kernels (cuDNN's on Hopper) build a plan
# per sequence length, and a new length in every micro-batch made trimmed steps slower than padded ones
# (one H100, 3B shape: training pass 6.4-6.8 s against 5.8 s); rounded, the lengths repeat and plans are reused.
# 128, not 64: cuDNN's backward returns NaN at lengths 64 past a multiple of 128 (trainers.common.cuda_attention)
WIDTH_BUCKET = 128
# batch keys of multimodal inputs: their tensors are indexed per image, not per completion
MULTIMODAL_KEYS = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
                   "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")


def groups_by_length(args: Any) -> tuple[bool, str]:
    """(whether the generation batch may be ordered by length, why not when it may not)."""
    if args.steps_per_generation != args.gradient_accumulation_steps:
        return False, "steps_per_generation differs from gradient_accumulation_steps (several optimizer steps " \
                      "per generation batch)"
    if args.loss_type not in GROUPING_FREE_LOSSES:
        return False, f"loss_type {args.loss_type} averages per micro-batch"
    if args.top_entropy_quantile < 1.0:
        return False, "top_entropy_quantile < 1 takes its quantile per micro-batch"
    return True, ""


def length_order(completion_mask):
    """Row order by completion length (stable, shortest first)."""
    import torch

    return torch.argsort(completion_mask.sum(dim=1), stable=True)


def reorder(batch: dict[str, Any], order) -> dict[str, Any]:
    """Every per-completion value of `batch` in row order `order`; scalars as they are."""
    import torch

    def permute(value: Any) -> Any:
        if value is None or (isinstance(value, torch.Tensor) and value.ndim == 0):
            return value
        if isinstance(value, torch.Tensor):
            return value[order.to(value.device)]
        return [value[i] for i in order.tolist()]

    return {key: permute(value) for key, value in batch.items()}


def real_width(attention_mask, logits_to_keep: int, bucket: int = 1) -> int:
    """Columns up to the last attended one (at least the first completion column), rounded up to a
    multiple of `bucket` (at most the full width)."""
    attended = attention_mask.any(dim=0).nonzero()
    last = int(attended[-1]) + 1 if len(attended) else 0
    width = max(last, attention_mask.shape[1] - logits_to_keep + 1)
    return min(attention_mask.shape[1], -(-width // bucket) * bucket)


def trainer_class():
    """GRPOTrainer with the fast training path (imports TRL only when called). Set `trims_padding`
    (steps 1 and 2) and `checkpointed_layers` on the instance."""
    import torch
    import torch.nn.functional as F
    from trl import GRPOTrainer
    from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict

    class FastGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer; the two overrides below are the module docstring's steps 1 and 2."""

        trims_padding: bool = True
        checkpointed_layers: float = 1.0
        width_bucket: int = WIDTH_BUCKET
        # trainers.rollout.static_sampler.StaticSampler, set where the compiled decode applies (trainers.grpo)
        static_sampler: Any = None
        # trainers.rollout.liger_aside.LigerAside under --use_liger_kernel: Liger's kernels stay out of the decode
        liger_aside: Any = None

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            completion_ids = None
            if not (self.static_sampler is None or self.use_vllm or self.use_transformers_continuous_batching
                    or images is not None or multimodal_fields or has_tool_images):
                completion_ids = self._own_loop_completions(prompt_ids)
            if completion_ids is None:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                     has_tool_images)
            return completion_ids, None

        def _own_loop_completions(self, prompt_ids):
            """Completions from `static_sampler`, inside TRL's generation contexts; None (and HF's loop from
            here on) if it fails on a model or GPU it was not tried on."""
            from trl.extras.profiling import profiling_context
            from trl.models import unwrap_model_for_generation

            from trainers.rollout.static_sampler import warn_fallback

            with (profiling_context(self, "transformers.generate"),
                  unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                              gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                                              generation_kwargs=self.generation_kwargs,
                                              gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs)
                  as unwrapped, torch.no_grad(), self._dist.summon_full_params(self.model_wrapped, recurse=False),
                  self.liger_aside.plain(unwrapped) if self.liger_aside is not None else nullcontext()):
                try:
                    return self.static_sampler.sample(unwrapped, prompt_ids, self.max_completion_length,
                                                      self.temperature, self.top_p if self.top_p is not None else 1.0)
                except Exception as error:
                    self.static_sampler = None
                    warn_fallback(error)
                    return None

        def _prepare_inputs(self, generation_batch):
            inputs = self._grouped_inputs(generation_batch)
            if self.checkpointed_layers < 1.0 and self.args.gradient_checkpointing and self.model.training:
                # TRL turns checkpointing off around generation and back on for every layer afterwards
                checkpoint_fraction(self.model, self.checkpointed_layers)
            return inputs

        def _grouped_inputs(self, generation_batch):
            if not (self.trims_padding and self.model.training and groups_by_length(self.args)[0]):
                return super()._prepare_inputs(generation_batch)
            steps = self.args.steps_per_generation
            if self._step % (steps * self.num_iterations) == 0 or self._buffered_inputs is None:
                batch = self._generate_and_score_completions(generation_batch)
                if any(batch.get(key) is not None for key in MULTIMODAL_KEYS):
                    batch = shuffle_sequence_dict(batch)
                else:
                    batch = reorder(batch, length_order(batch["completion_mask"]))
                self._buffered_inputs = split_tensor_dict(batch, steps)
            return self._buffered_inputs[self._step % steps]

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **multimodal):
            plain = super()._get_per_token_logps_and_entropies
            if not self.trims_padding or compute_aux_loss or any(v is not None for v in multimodal.values()):
                return plain(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                             compute_aux_loss, **multimodal)
            rows = input_ids.size(0)
            size = batch_size or rows
            order = length_order(attention_mask[:, -logits_to_keep:]) if size < rows else None
            logps, entropies = [], []
            for start in range(0, rows, size):
                index = order[start:start + size] if order is not None else slice(start, start + size)
                ids, mask = input_ids[index], attention_mask[index]
                width = real_width(mask, logits_to_keep, self.width_bucket)
                keep = logits_to_keep - (ids.size(1) - width)
                chunk_logps, chunk_entropies, _ = plain(model, ids[:, :width], mask[:, :width], keep,
                                                        compute_entropy=compute_entropy)
                logps.append(F.pad(chunk_logps, (0, logits_to_keep - keep)))
                if compute_entropy:
                    entropies.append(F.pad(chunk_entropies, (0, logits_to_keep - keep)))
            undo = torch.argsort(order) if order is not None else None

            def joined(parts):
                whole = torch.cat(parts, dim=0)
                return whole[undo.to(whole.device)] if undo is not None else whole

            return joined(logps), joined(entropies) if compute_entropy else None, None

    return FastGRPOTrainer


def checkpointed_indices(layers: int, fraction: float) -> set[int]:
    """Which of `layers` decoder layers keep checkpointing: `fraction` of them, evenly spread."""
    wanted = round(fraction * layers)
    return {round(i * layers / wanted) for i in range(wanted)} if wanted else set()


def decoder_layers(model: Any) -> list[Any]:
    """The model's layers that gradient checkpointing can wrap, in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def checkpoint_fraction(model: Any, fraction: float) -> tuple[int, int]:
    """Keep gradient checkpointing on `fraction` of the decoder layers (evenly spread) and turn it off
    on the rest; (checkpointed, total). Call after checkpointing was enabled on every layer.
    (transformers' own `every_n_layers` does not survive TRL turning checkpointing off and on
    around each generation.)"""
    layers = decoder_layers(model)
    chosen = checkpointed_indices(len(layers), fraction)
    for i, layer in enumerate(layers):
        if i not in chosen:
            layer.gradient_checkpointing = False
    return sum(layer.gradient_checkpointing for layer in layers), len(layers)


def describe(args: Any, model: Any, options: Any) -> str:
    """The pre-flight line: which parts of the fast training path are on, and how to turn them off."""
    if not options.trim_padding:
        parts = ["TRL's shuffled, padded micro-batches (--trim-padding true drops the padding)"]
    else:
        grouped, why_not = groups_by_length(args)
        parts = ["micro-batches grouped by completion length, padding trimmed" if grouped
                 else f"padding trimmed per micro-batch (not grouped by length: {why_not})"]
    if args.gradient_checkpointing:
        total = len(decoder_layers(model))
        on = len(checkpointed_indices(total, options.checkpointed_layers))
        parts.append(f"gradient checkpointing on {on} of {total} layers (--checkpointed-layers)")
    else:
        parts.append("no gradient checkpointing")
    return "; ".join(parts)

