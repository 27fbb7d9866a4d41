"""One GEMM for an attention layer's query, key and value projections, and one for an MLP's gate and up
projections, while our decode loop samples.

Why: a decode step of a batch of ~100 sequences reads every weight once, and at the Qwen2.5-3B shape its
key and value projections are tiny matrices (2,048 x 256): one H100 spent about 5.7 us on each, two kernels
per layer and step, far from the bandwidth bound (docs/benchmarks.md has the kernel table). Multiplied
through one concatenated weight, the three projections are one kernel, and gate and up another. The
concatenated weights are copies, refreshed at the start of each sampling call from the live parameters
(the policy changes every optimizer step), kept at fixed addresses so the compiled decode step's CUDA
graphs stay valid. Training never sees them: the fused forwards are bound to the module instances only
for the length of the call (as trainers.rollout.liger_aside does for Liger's), then taken away.

Scope: transformers' Llama and Qwen2 attention and MLP classes whose projections are plain `nn.Linear`
(not PEFT adapters, not quantized layers); anything else keeps its own forward. Costs one copy of those
weights in memory (about 3.6 GB at the 3B shape, bf16).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

ATTENTION_CLASSES = ("LlamaAttention", "Qwen2Attention")
MLP_CLASSES = ("LlamaMLP", "Qwen2MLP")


def _plain_linears(module: Any, names: tuple[str, ...]) -> list[Any] | None:
    import torch

    layers = [getattr(module, name, None) for name in names]
    # whole weights only: a ZeRO-3 partition outside a gather holds an empty placeholder
    if all(type(layer) is torch.nn.Linear and tuple(layer.weight.shape) == (layer.out_features, layer.in_features)
           for layer in layers):
        if len({layer.weight.dtype for layer in layers}) == 1 and len({layer.in_features for layer in layers}) == 1:
            return layers
    return None


class _Fused:
    """The concatenated weight (and bias) of some linears of one module, and where each output starts."""

    def __init__(self, layers: list[Any]) -> None:
        import torch

        self.layers = layers
        self.sizes = [layer.out_features for layer in layers]
        first = layers[0].weight
        # filled by `refresh` (which every `applied` block starts with); a layer without a bias keeps zeros there
        self.weight = first.new_empty((sum(self.sizes), layers[0].in_features), requires_grad=False)
        has_bias = any(layer.bias is not None for layer in layers)
        self.bias = first.new_zeros(sum(self.sizes), requires_grad=False) if has_bias else None
        for tensor in (self.weight, self.bias):
            if tensor is not None and tensor.is_cuda:
                torch._dynamo.mark_static_address(tensor)  # CUDA graphs read it in place, never copy it

    def refresh(self) -> None:
        """Copy the live parameters in (same addresses)."""
        start = 0
        for layer, size in zip(self.layers, self.sizes):
            self.weight[start:start + size].copy_(layer.weight.detach())
            if self.bias is not None and layer.bias is not None:
                self.bias[start:start + size].copy_(layer.bias.detach())
            start += size

    def __call__(self, hidden: Any) -> list[Any]:
        import torch

        return list(torch.nn.functional.linear(hidden, self.weight, self.bias).split(self.sizes, dim=-1))


def _attention_forward(fused: _Fused):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    def forward(self, hidden_states, position_embeddings, attention_mask, past_key_values=None, **kwargs):
        modeling = sys.modules[type(self).__module__]
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query, key, value = (part.view(shape).transpose(1, 2) for part in fused(hidden_states))
        cos, sin = position_embeddings
        query, key = modeling.apply_rotary_pos_emb(query, key, cos, sin)
        if past_key_values is not None:
            key, value = past_key_values.update(key, value, self.layer_idx)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                          modeling.eager_attention_forward)
        window = {"sliding_window": self.sliding_window} if hasattr(self, "sliding_window") else {}
        output, weights = attention(self, query, key, value, attention_mask,
                                    dropout=0.0 if not self.training else self.attention_dropout,
                                    scaling=self.scaling, **window, **kwargs)
        return self.o_proj(output.reshape(*hidden_states.shape[:-1], -1).contiguous()), weights

    return forward


def _mlp_forward(fused: _Fused):
    def forward(self, x):
        gate, up = fused(x)
        return self.down_proj(self.act_fn(gate) * up)

    return forward


class FusedProjections:
    """The fused projections of one model; `applied()` binds them for a block (refreshing the weights first)."""

    def __init__(self, model: Any) -> None:
        self.model_id = id(model)
        self.forwards: list[tuple[Any, Any, _Fused]] = []
        for module in model.modules():
            name = type(module).__name__
            if name in ATTENTION_CLASSES and hasattr(module, "layer_idx"):
                layers = _plain_linears(module, ("q_proj", "k_proj", "v_proj"))
                if layers:
                    fused = _Fused(layers)
                    self.forwards.append((module, _attention_forward(fused), fused))
            elif name in MLP_CLASSES and hasattr(module, "act_fn"):
                layers = _plain_linears(module, ("gate_proj", "up_proj"))
                if layers:
                    fused = _Fused(layers)
                    self.forwards.append((module, _mlp_forward(fused), fused))

    @contextmanager
    def applied(self) -> Iterator[None]:
        import types

        import torch

        with torch.no_grad():
            for _, _, fused in self.forwards:
                fused.refresh()
        previous = [(module, module.__dict__.get("forward")) for module, _, _ in self.forwards]
        for module, forward, _ in self.forwards:
            module.__dict__["forward"] = types.MethodType(forward, module)
        try:
            yield
        finally:
            for module, forward in previous:
                if forward is None:
                    module.__dict__.pop("forward", None)
                else:
                    module.__dict__["forward"] = forward
