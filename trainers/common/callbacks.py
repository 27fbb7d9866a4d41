"""Trainer callbacks shared by the trainers: metric log + reward curve, run summary, time budget, and a
stop when the gradient norm turns non-finite."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from transformers import TrainerCallback

from reasongym.plotting import plot_curves
from reasongym.telemetry import MetricsWriter


class TimeBudgetCallback(TrainerCallback):
    """Stop training once `minutes` of wall time have passed since training began, so a run planned as
    "at most N minutes" ends there even when steps are slower than expected. The learning-rate schedule
    still follows max_steps (use a constant schedule for budgeted runs). Under several processes the
    ranks' decisions are max-reduced, so all of them stop at the same step."""

    def __init__(self, minutes: float):
        self.seconds = 60.0 * minutes
        self.started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.started is not None and time.monotonic() - self.started > self.seconds
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            flag = torch.tensor([float(stop)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            control.should_training_stop = True


class NonFiniteGradientStop(TrainerCallback):
    """Stop training when the gradients turn NaN or infinite, and say so. Why: clipping a NaN gradient
    writes NaN into every weight, after which sampling from the policy fails on the GPU with a device-side
    assert (or the run goes on training nothing); stopping at the first such step keeps the last
    checkpoint and the metrics readable. Every optimizer step is checked where the gradients are local
    (one device sync per step); under ZeRO-3, whose gradients are sharded away, the logged `grad_norm` is.
    `stopped_at` is the step (None while the gradients are finite)."""

    def __init__(self, say: Any = print):
        self.say = say
        self.stopped_at: int | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.stopped_at is None and model is not None and not gradients_finite(model):
            self._stop(state, control, state.global_step + 1, "not finite (NaN or infinite)")

    def on_log(self, args, state, control, logs=None, **kwargs):
        norm = (logs or {}).get("grad_norm")
        if self.stopped_at is None and isinstance(norm, (int, float)) and not math.isfinite(norm):
            self._stop(state, control, state.global_step, str(norm))

    def _stop(self, state, control, step: int, norm: str) -> None:
        self.stopped_at = step
        control.should_training_stop = True
        if state.is_world_process_zero:
            self.say(f"training stopped at step {step}: the gradient norm is {norm}, so the weights are no "
                     "longer finite. Check the learning rate and precision (--bf16); on Hopper GPUs with "
                     "REASONGYM_CUDNN_ATTENTION=1, unset it.")


def gradients_finite(model: Any) -> bool:
    """Whether every local gradient of `model` is finite (True when it holds none, as under ZeRO-3)."""
    import torch

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)
    return bool(torch.isfinite(torch.stack([n.float() for n in norms]).sum()))


def non_finite_stop(trainer: Any) -> int | None:
    """The step at which `NonFiniteGradientStop` ended `trainer`'s run, or None."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, NonFiniteGradientStop):
            return callback.stopped_at
    return None


def refuse_non_finite_policy(trainer: Any, console: Any) -> bool:
    """After training: when the run stopped on a non-finite gradient, say that the final policy is not
    saved (its weights are NaN) and where the earlier checkpoints are; True then."""
    step = non_finite_stop(trainer)
    if step is not None:
        console.print(f"[red]error:[/] the policy after step {step} is not finite, so it was not saved; checkpoints "
                      f"from before that step are in {trainer.args.output_dir}")
    return step is not None


class MetricsLogCallback(TrainerCallback):
    """Append every logged dict to `<output_dir>/metrics.jsonl`; draw `reward_curve.png` at the end."""

    def __init__(self, output_dir: str, title: str = "GRPO"):
        self.output_dir = output_dir
        self.writer = MetricsWriter(output_dir)
        self.title = title
        self.records: list[dict[str, Any]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.records.append(self.writer.write({"step": state.global_step, **logs}))

    def on_train_end(self, args, state, control, **kwargs):
        peak = peak_gpu_memory_gb()
        if state.is_world_process_zero and peak is not None:
            self.writer.write({"step": state.global_step, "peak_gpu_memory_gb": peak})
        if state.is_world_process_zero and self.records:
            plot_curves(self.records, os.path.join(self.output_dir, "reward_curve.png"), title=self.title)


def peak_gpu_memory_gb() -> float | None:
    """Peak memory allocated by torch on this process's GPU, or None on CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**30
