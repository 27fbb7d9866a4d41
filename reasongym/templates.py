"""Prompt templates: how a Task becomes what the policy reads.

A template renders either a chat (system + user messages, optionally an
assistant pre-fill such as "Let me solve this step by step.\\n<think>") or one
plain-text string for base models. The pre-fill matters twice: the policy
continues after it, and the verifier must see the part of it the format rules
refer to (the opening "<think>"), so `scoring_prefix` is re-attached before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

Messages = list[dict[str, str]]
Prompt = str | Messages

# The DeepSeek-R1-Zero system prompt as open-r1 and X-R1 use it (gsm8k, math): one copy for every env.
R1_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think><answer> answer here </answer>"
)


@dataclass(frozen=True)
class PromptTemplate:
    """`user` (and `system`, `text`) are `str.format` patterns over the task's
    question fields, or callables `question -> str` when formatting needs code."""

    name: str
    kind: str = "chat"  # "chat" or "text"
    system: str | None = None
    user: str | Callable[[dict[str, Any]], str] | None = None
    text: str | Callable[[dict[str, Any]], str] | None = None
    prefill: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("chat", "text"):
            raise ValueError(f"template kind must be 'chat' or 'text', got {self.kind!r}")
        if self.kind == "chat" and self.user is None:
            raise ValueError(f"chat template {self.name!r} needs a user pattern")
        if self.kind == "text" and self.text is None:
            raise ValueError(f"text template {self.name!r} needs a text pattern")

    @cached_property  # read once per scored completion
    def scoring_prefix(self) -> str:
        """The tail of the pre-fill that belongs to the answer format (from the
        last "<think>" on); the verifier sees it in front of the completion."""
        cut = self.prefill.rfind("<think>")
        return self.prefill[cut:] if cut >= 0 else ""

    def render(self, question: dict[str, Any]) -> Prompt:
        if self.kind == "text":
            return _fill(self.text, question) + self.prefill
        messages: Messages = []
        if self.system:
            messages.append({"role": "system", "content": _fill(self.system, question)})
        messages.append({"role": "user", "content": _fill(self.user, question)})
        if self.prefill:
            messages.append({"role": "assistant", "content": self.prefill})
        return messages


def _fill(pattern: str | Callable[[dict[str, Any]], str] | None, question: dict[str, Any]) -> str:
    if pattern is None:
        return ""
    if callable(pattern):
        return pattern(question)
    return pattern.format(**question)


def plain_text(prompt: Prompt, roles: bool = False) -> str:
    """A prompt as plain text: the message contents joined by newlines (`[role] content` lines
    with `roles=True`, for logs). For tokenizer corpora, sample logs and echo probes — never for
    what a policy reads; that goes through `chat_to_text` and the policy's own chat template."""
    if isinstance(prompt, str):
        return prompt
    parts = [m for m in prompt if isinstance(m, dict)]
    if roles:
        return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in parts)
    return "\n".join(str(m.get("content", "")) for m in parts)


def observation_text(observation: Prompt, tokenizer: Any, template: "PromptTemplate") -> str:
    """What a policy reads for an env observation (a first prompt or a later turn): a chat goes through
    the tokenizer's chat template, left open when `template` pre-fills the assistant turn."""
    return chat_to_text(observation, tokenizer, continue_final_message=bool(template.prefill))


def chat_to_text(prompt: Prompt, tokenizer: Any, continue_final_message: bool = False) -> str:
    """What a policy reads: text as is, a chat through the tokenizer's chat template.

    `continue_final_message=True` leaves an assistant pre-fill open for the policy to
    continue; otherwise a generation prompt is added. The one place that says what to do
    about a tokenizer without a chat template."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat template, but the prompt is a chat: use an env text template "
            "(e.g. --env-kwargs '{\"template\": \"base\"}') or a tokenizer with a chat template"
        )
    if continue_final_message:
        return tokenizer.apply_chat_template(prompt, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
