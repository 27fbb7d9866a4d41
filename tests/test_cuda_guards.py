"""The two guards against cuDNN's NaN attention backward on Hopper GPUs: SDPA is kept off that kernel on
CUDA machines (trainers.common.cuda_attention), and a run whose gradient norm turns non-finite stops and
says why (trainers.common.callbacks.NonFiniteGradientStop). On this CPU machine the first is checked
through the flag it sets, with CUDA reported as present."""

from __future__ import annotations

import math

import pytest


@pytest.fixture
def cudnn_flag():
    import torch

    before = torch.backends.cuda.cudnn_sdp_enabled()
    yield torch
    torch.backends.cuda.enable_cudnn_sdp(before)


def test_cuda_runs_keep_sdpa_off_cudnns_kernel(cudnn_flag, monkeypatch):
    from trainers.common import cuda_attention

    torch = cudnn_flag
    torch.backends.cuda.enable_cudnn_sdp(True)
    assert cuda_attention.avoid_cudnn_attention() == ""  # no CUDA here: nothing changes
    assert torch.backends.cuda.cudnn_sdp_enabled()

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(cuda_attention.KEEP_CUDNN, "1")
    assert "may use cuDNN" in cuda_attention.avoid_cudnn_attention()
    assert torch.backends.cuda.cudnn_sdp_enabled()
    monkeypatch.delenv(cuda_attention.KEEP_CUDNN)
    line = cuda_attention.avoid_cudnn_attention()
    assert "not cuDNN's" in line and cuda_attention.KEEP_CUDNN in line
    assert not torch.backends.cuda.cudnn_sdp_enabled()


def test_the_trainers_preflight_step_says_what_it_did(cudnn_flag, monkeypatch):
    from rich.console import Console

    from trainers.common.cuda_attention import guard_training_attention

    torch = cudnn_flag
    torch.backends.cuda.enable_cudnn_sdp(True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    console = Console(record=True, width=200)
    guard_training_attention(console, use_cpu=True)  # a CPU run on a GPU machine: nothing to guard
    assert torch.backends.cuda.cudnn_sdp_enabled() and console.export_text() == ""
    guard_training_attention(None, use_cpu=False)  # a rank that does not print still switches the kernel off
    assert not torch.backends.cuda.cudnn_sdp_enabled()
    guard_training_attention(console, use_cpu=False)
    assert console.export_text().startswith("attention SDPA's flash / memory-efficient kernels")


def test_a_non_finite_gradient_norm_stops_training_once_and_says_so(tmp_path):
    from types import SimpleNamespace

    from rich.console import Console
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.trainer_callback import CallbackHandler

    from trainers.common.callbacks import NonFiniteGradientStop, refuse_non_finite_policy

    said: list[str] = []
    stop = NonFiniteGradientStop(said.append)
    state, control = TrainerState(), TrainerControl()
    for step, norm in enumerate([0.5, 0.0, None], start=1):
        state.global_step = step
        stop.on_log(None, state, control, logs={"loss": 0.1} if norm is None else {"grad_norm": norm})
    assert not control.should_training_stop and stop.stopped_at is None and not said
    state.global_step = 4
    stop.on_log(None, state, control, logs={"grad_norm": math.nan})
    stop.on_log(None, state, control, logs={"grad_norm": math.inf})
    assert control.should_training_stop and stop.stopped_at == 4
    assert len(said) == 1 and "step 4" in said[0] and "nan" in said[0]

    # after training, the run refuses to save the policy, through the trainer's own callback handler
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    console = Console(record=True, width=200)
    fresh = NonFiniteGradientStop(said.append)
    handler = CallbackHandler([fresh], None, None, None, None)
    trainer = SimpleNamespace(callback_handler=handler, args=args)
    state, control = TrainerState(), TrainerControl()
    handler.on_log(args, state, control, {"grad_norm": 1.0})
    assert not refuse_non_finite_policy(trainer, console)
    state.global_step = 7
    handler.on_log(args, state, control, {"grad_norm": math.nan})
    assert control.should_training_stop and refuse_non_finite_policy(trainer, console)
    text = console.export_text()
    assert "after step 7 is not finite" in text and str(tmp_path) in text


def test_non_finite_gradients_stop_at_their_own_step_between_logs(tmp_path):
    """With logging_steps > 1 the check still happens at every optimizer step: a real Trainer whose
    batches give a NaN loss from the start stops after step 1, not at the first logged step (10)."""
    import torch
    from transformers import Trainer, TrainingArguments

    from trainers.common.callbacks import NonFiniteGradientStop, gradients_finite

    class Regression(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, x, labels):
            loss = ((self.linear(x).squeeze(-1) - labels) ** 2).mean()
            return {"loss": loss * torch.where(x[:, 0] > 50, math.nan, 1.0).mean()}

    rows = [{"x": [100.0, 1.0], "labels": 0.5} for _ in range(20)]
    said: list[str] = []
    stop = NonFiniteGradientStop(said.append)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=1,
                             max_steps=20, logging_steps=10, save_strategy="no", learning_rate=1e-3)
    trainer = Trainer(model=Regression(), args=args, train_dataset=rows, callbacks=[stop],
                      data_collator=lambda batch: {k: torch.tensor([b[k] for b in batch]) for k in batch[0]})
    trainer.train()
    assert stop.stopped_at == 1 and trainer.state.global_step == 1
    assert len(said) == 1 and "step 1" in said[0] and "not finite" in said[0]
    layer = torch.nn.Linear(2, 1)
    assert gradients_finite(layer)  # no gradients at all (as under ZeRO-3): nothing to refuse
    layer(torch.tensor([[1.0, 2.0]])).sum().backward()
    assert gradients_finite(layer)
    layer.bias.grad[0] = math.inf
    assert not gradients_finite(layer)
