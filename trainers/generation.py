"""Rollout backends: one interface, `generate(prompts, n, sampling) -> completions`.

Prompts are what `reasongym.adapters.trl.render_prompt` produces: text (already
rendered with the chat template and any pre-fill) or chat messages. Completions
are the text generated after the prompt, for every prompt `n` of them
(`result[i][j]` = sample j of prompt i).

- HFBackend: transformers `generate`, batched with left padding, CPU or GPU.
- VLLMBackend: vLLM's offline `LLM` (optional dependency).
- OpenAIBackend: any OpenAI-compatible `/v1/completions` server (`vllm serve`, `trl vllm-serve`, ...).
"""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from reasongym.templates import Prompt, chat_to_text


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class Backend(Protocol):
    def generate(self, prompts: Sequence[Prompt], n: int, sampling: Sampling) -> list[list[str]]: ...


def _bf16(path: str, dtype: str) -> bool:
    """Will `from_pretrained(path, dtype=dtype)` give bf16 weights? ("auto" keeps the saved dtype.)"""
    if dtype != "auto":
        return dtype == "bfloat16"
    try:
        with open(f"{path}/config.json") as f:
            config = json.load(f)
    except OSError:
        return False
    return (config.get("dtype") or config.get("torch_dtype")) == "bfloat16"


@contextmanager
def whole_model_loading():
    """Load a full copy of the model in this process, even inside a DeepSpeed ZeRO-3 launch.

    Under ZeRO-3, transformers would partition the weights across ranks at load time; a backend
    serves one rank's prompts on its own, so it needs every weight locally."""
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


class HFBackend:
    """transformers `generate` with left padding; batches of `batch_size` sequences.

    The model is whole in this process (never ZeRO-3 partitioned), so ranks of a
    multi-process launch can each generate for their own prompts."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    @classmethod
    def from_pretrained(cls, path: str, device: str | None = None, dtype: str = "auto", batch_size: int = 32):
        import torch
        from transformers import AutoModelForCausalLM

        from trainers.common.models import load_kwargs, load_tokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = load_tokenizer(path)
        with whole_model_loading():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **load_kwargs(path, _bf16(path, dtype)))
        model = model.to(device).eval()
        return cls(model, tokenizer, batch_size)

    def generate(self, prompts: Sequence[Prompt], n: int, sampling: Sampling) -> list[list[str]]:
        import torch

        texts = [chat_to_text(p, self.tokenizer) for p in prompts]
        flat = [t for t in texts for _ in range(n)]
        outputs: list[str] = []
        torch.manual_seed(sampling.seed)
        device = next(self.model.parameters()).device
        for start in range(0, len(flat), self.batch_size):
            chunk = flat[start : start + self.batch_size]
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            # synced_gpus=False: this process holds the whole model, so it must not wait on other ranks
            # (transformers turns the sync on under a ZeRO-3 launch, and ranks that stop at different
            # lengths would then wait for each other forever).
            kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id, "synced_gpus": False}
            if sampling.greedy:
                kwargs["do_sample"] = False
            else:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            with torch.no_grad():
                out = self.model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            outputs.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return [outputs[i * n : (i + 1) * n] for i in range(len(texts))]


class VLLMBackend:
    """vLLM offline engine (install the `vllm` extra)."""

    def __init__(self, model: str, **llm_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("the vllm backend needs vLLM: pip install 'reasongym[vllm]'") from exc
        self.llm = LLM(model=model, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Prompt], n: int, sampling: Sampling) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                                max_tokens=sampling.max_new_tokens, seed=sampling.seed)
        texts = [chat_to_text(p, self.tokenizer) for p in prompts]
        return [[o.text for o in r.outputs] for r in self.llm.generate(texts, params)]


class OpenAIBackend:
    """An OpenAI-compatible `/v1/completions` endpoint; prompts are rendered locally
    with `tokenizer` (so pre-fills survive), then sent as text."""

    def __init__(self, base_url: str, model: str, tokenizer: Any = None, api_key: str | None = None,
                 timeout: float = 600.0):
        self.url = base_url.rstrip("/") + "/v1/completions"
        self.model = model
        self.tokenizer = tokenizer
        self.api_key = api_key
        self.timeout = timeout

    def generate(self, prompts: Sequence[Prompt], n: int, sampling: Sampling) -> list[list[str]]:
        texts = [chat_to_text(p, self.tokenizer) for p in prompts]
        body = {"model": self.model, "prompt": texts, "n": n, "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = json.loads(response.read())
        grouped: list[list[str]] = [[] for _ in texts]
        for choice in sorted(payload["choices"], key=lambda c: c["index"]):
            grouped[choice["index"] // n].append(choice["text"])
        return grouped
