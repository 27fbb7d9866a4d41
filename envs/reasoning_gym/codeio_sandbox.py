"""reasoning-gym's codeio tasks, generated with their reference code run in our sandbox.

Why: codeio builds each task by `exec`-ing a snippet from its data file (code an LLM rewrote from public
sources, which reasoning-gym itself says to treat with caution) and calling it, in the calling process and
its working directory. Left alone, making or resetting the env runs that code with the user's rights (the
snippets write files such as `planet.com` into the current directory). Here the same snippet, the same
random state and the same calls run in a `reasongym.sandbox.Sandbox` child instead: a fresh working
directory, limits, and whatever isolation the kernel allows. The parent gets back plain data only (the
inputs, the output and the random state after the inputs were drawn), so the rest of reasoning-gym's item
building runs unchanged. A snippet that fails, times out or returns something other than plain data gives
no task (reasoning-gym would build one with empty inputs), and the env moves on to the next item.
"""

from __future__ import annotations

import random
from typing import Any

# runs in the sandbox child: the snippet executes in its own namespace holding only `Random`, as
# reasoning-gym's own exec does, and the generator draws from the parent's random state
_PROGRAM = """
from random import Random as _Random

def _plain(value, depth=0):
    # numpy scalars and arrays (which json.dumps takes, or fails on, in reasoning-gym's own path) as Python data
    if depth > 20:
        return value
    if type(value) in (list, tuple):
        return type(value)(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if type(value) not in (bool, int, float, complex, str, type(None)) and callable(getattr(value, "tolist", None)):
        return _plain(value.tolist(), depth + 1)
    return value

def _io_pair(code, state, tries):
    namespace = {"Random": _Random}
    exec(code, namespace, namespace)
    rng = _Random()
    rng.setstate(state)
    for attempt in range(tries):  # reasoning-gym's max_retries: draw new inputs while the snippet raises
        try:
            inputs = namespace["generate_inputs"](rng)
            output = namespace["main_solution"](**inputs)
        except Exception:
            if attempt == tries - 1:
                raise
            continue
        return _plain(inputs), _plain(output), rng.getstate()
"""
TIMEOUT_S = 10.0
WARM_MODULES = ("numpy",)  # most snippets import it: loaded once in the sandbox's helper, not per task


class CodeioGenerationError(RuntimeError):
    """The reference snippet gave no input/output pair in the sandbox; the item is no task."""


def sandboxed(dataset: Any) -> Any:
    """`dataset` (a reasoning-gym codeio dataset, or a composite holding some) with every codeio
    snippet run in a sandbox; the same object, changed in place."""
    members = getattr(dataset, "datasets", None)  # a composite's member datasets, by name
    for part in members.values() if isinstance(members, dict) else ():
        sandboxed(part)
    if type(dataset).__name__ == "CodeIODataset":
        dataset._generate_io_pair = SandboxedIoPair()
    return dataset


class SandboxedIoPair:
    """Stands in for CodeIODataset._generate_io_pair: the same arguments (up to `max_retries` draws of
    inputs while the snippet raises), the same results for a snippet that works, with the snippet run in a
    sandbox child started on first use."""

    def __init__(self, timeout: float = TIMEOUT_S) -> None:
        self.timeout = timeout
        self._box: Any = None

    def __call__(self, main_code: str, input_generator_code: str, rng: random.Random,
                 max_retries: int = 1) -> tuple[dict, Any]:
        from reasongym.sandbox import Sandbox, Test

        if max_retries < 1:
            raise CodeioGenerationError(f"max_retries={max_retries}: no attempt to draw an input/output pair")
        if self._box is None:
            self._box = Sandbox(timeout=self.timeout, warm_modules=WARM_MODULES)
        code = f"{main_code}\n\n{input_generator_code}"
        call = f"_io_pair({code!r}, {rng.getstate()!r}, {int(max_retries)})"
        result = self._box.run(_PROGRAM, [Test.call(call, None)])
        test = result.tests[0] if result.tests else None
        if result.status != "ok" or test is None or not test.has_value:
            why = (f"timeout ({self.timeout:g} s)" if result.status == "timeout"
                   else test.detail if test is not None and test.detail else result.detail or result.status)
            raise CodeioGenerationError(f"codeio reference code gave no input/output pair: {why}")
        inputs, output, state = test.value
        if not isinstance(inputs, dict):
            raise CodeioGenerationError("codeio's input generator returned no keyword arguments")
        rng.setstate(_as_state(state))
        return inputs, output

    def __getstate__(self) -> dict[str, Any]:  # a pickled env (scoring workers) starts its own sandbox
        return {"timeout": self.timeout, "_box": None}


def _as_state(state: Any) -> tuple:
    """random.Random's state from its plain-data copy (the internal state must be a tuple of ints)."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
