"""Liger's layer kernels for the training pass only: set aside while our decode loop samples.

Why: `--use_liger_kernel true` makes the training pass of a 3B-shape GRPO step about 1.5x faster (one
H100, docs/benchmarks.md), but Liger patches the very modules the compiled decode step traces, and Triton
failed to compile them inside it, so generation fell back and took 5.5x as long. Liger binds its kernels
onto each module instance (`module.__dict__["forward"]`) and swaps the modeling file's
`apply_rotary_pos_emb`; for the length of a sampling call both are put back to transformers' own, so
the compiled decode step always traces (and its guards always see) the plain model, and the training
pass keeps Liger's kernels.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

ROPE = "apply_rotary_pos_emb"
# TRL 1.16 warns at every GRPOTrainer built with use_liger_kernel that it is deprecated for its v2.0, in
# favour of Hub kernels (`use_kernels`, fetched from the Hugging Face Hub). With the pinned TRL the option
# works as measured; the pre-flight line says which kernels run, so the warning is dropped there.
TRL_DEPRECATION = r"`use_liger_kernel=True` is deprecated"


def _from_liger(function: Any) -> bool:
    return str(getattr(function, "__module__", "") or "").startswith("liger_kernel")


def modeling_modules(model: Any) -> list[Any]:
    """The Python modules that define the model's layers (where Liger swaps the RoPE function)."""
    names = {type(module).__module__ for module in model.modules()}
    return [sys.modules[name] for name in sorted(names) if name in sys.modules]


@contextmanager
def quiet_trl_deprecation() -> Iterator[None]:
    """Build a GRPOTrainer without TRL's deprecation warning for use_liger_kernel (see TRL_DEPRECATION)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TRL_DEPRECATION, category=FutureWarning)
        yield


class LigerAside:
    """Remembers transformers' own RoPE functions of a model's modeling files (call before Liger patches them,
    which transformers' Trainer does when training starts); `plain(model)` sets Liger aside for a block."""

    def __init__(self, model: Any) -> None:
        self.rope = {module.__name__: getattr(module, ROPE) for module in modeling_modules(model)
                     if callable(getattr(module, ROPE, None)) and not _from_liger(getattr(module, ROPE))}

    @contextmanager
    def plain(self, model: Any) -> Iterator[None]:
        forwards = [(module, module.__dict__.pop("forward")) for module in model.modules()
                    if _from_liger(module.__dict__.get("forward"))]
        ropes = [(module, getattr(module, ROPE)) for module in modeling_modules(model)
                 if module.__name__ in self.rope and _from_liger(getattr(module, ROPE, None))]
        for module, _ in ropes:
            setattr(module, ROPE, self.rope[module.__name__])
        try:
            yield
        finally:
            for module, forward in forwards:
                module.__dict__["forward"] = forward
            for module, liger_rope in ropes:
                setattr(module, ROPE, liger_rope)
