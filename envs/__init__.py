"""Built-in reasongym environments.

`register_builtin_envs` is the `reasongym.envs` entry point: it only records
ids and "module:Class" strings, so no env module is imported until `make`.
"""

from __future__ import annotations

from envs.bbh import register_bbh_envs
from envs.mmlu import register_mmlu_envs
from reasongym.registry import register

_CD = "envs.countdown.env:CountdownEnv"


def register_builtin_envs() -> None:
    register("countdown-3to4", _CD, description="Countdown with 3 or 4 numbers in 1..99, target 10..100 (TinyZero)",
             counts=(3, 4))
    register("countdown-3", _CD, description="Countdown with 3 numbers", counts=(3,))
    register("countdown-4", _CD, description="Countdown with 4 numbers", counts=(4,))
    register("countdown", _CD, description="Countdown with every knob: counts, num_range, target_range, operators")
    register("countdown-3to4-tool", "envs.countdown.tool_env:CountdownToolEnv",
             description="countdown-3to4 with a calculate(expression) tool, a budget of calls, then an answer",
             counts=(3, 4))
    register("humaneval", "envs.code.env:CodeEnv", description="HumanEval: complete a Python function, tests run "
             "in reasongym's sandbox (openai/openai_humaneval)", dataset="humaneval")
    register("mbpp", "envs.code.env:CodeEnv", description="MBPP (sanitized; subset='full' for all 974): write a "
             "Python function, tests run in the sandbox", dataset="mbpp")
    register("humaneval-plus", "envs.code.env:CodeEnv", description="HumanEval+ (EvalPlus): HumanEval with many more "
             "test inputs, expected outputs from the canonical solution (the release file via data_files)",
             dataset="humaneval-plus")
    register("mbpp-plus", "envs.code.env:CodeEnv", description="MBPP+ (EvalPlus): MBPP with many more test inputs "
             "(the release file via data_files)", dataset="mbpp-plus")
    register_mmlu_envs()
    register_bbh_envs()
    register("gsm8k", "envs.gsm8k.env:GSM8KEnv", description="GSM8K grade-school math (openai/gsm8k, config main)")
    register("math-750", "envs.math.env:MathEnv", description="MATH problems of X-R1-750, math-verify scoring",
             dataset="math-750")
    register("math-500", "envs.math.env:MathEnv", description="MATH-500 evaluation set (level = difficulty)",
             dataset="math-500")
    from envs.reasoning_gym import register_reasoning_gym_envs  # ids and strings only: reasoning_gym is not imported

    register_reasoning_gym_envs()
