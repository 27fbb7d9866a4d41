"""EnvironmentTool: the contract, and inside a real TRL GRPOTrainer tool loop.

The tiny policy is first taught (a few dozen optimizer steps on one sequence) to answer
with a `submit_answer` tool call in Qwen2.5's format, so the run exercises what a
tool-using policy does: TRL parses the call, EnvironmentTool verifies it against the
row's task, and get_reward becomes the reward.
"""

from __future__ import annotations

import json
import os

import pytest

import reasongym as rg
from envs.countdown.solver import solve
from reasongym.adapters.trl import EnvironmentTool, build_dataset
from reasongym.templates import PromptTemplate
from tests.conftest import teach_completion

TOOL_TEMPLATE = PromptTemplate(
    name="tool", kind="chat",
    user="Using the numbers {nums}, write an equation that equals {target}. Submit it with the submit_answer tool.",
)


def test_environment_tool_contract():
    with pytest.raises(ValueError, match="pre-fill"):
        EnvironmentTool.factory(rg.make("countdown-3to4"))  # the default template pre-fills "<think>"
    env = rg.make("countdown-3to4", template=TOOL_TEMPLATE)
    task = env.tasks(n=1)[0]
    tool = EnvironmentTool.factory(env)()
    with pytest.raises(ValueError, match="task"):
        tool.reset()
    tool.reset(task=task.to_json(), prompt="ignored")
    assert tool.get_reward() == 0.0
    assert tool.submit_answer(solve(task.question["nums"], task.question["target"])) == "correct"
    assert tool.get_reward() == 1.0
    assert tool.submit_answer("1.5*10").startswith("not accepted")
    assert tool.get_reward() == 0.0


@pytest.mark.slow
def test_environment_tool_inside_grpo_trainer(tiny_model, tmp_path):
    import trl
    from transformers import AutoTokenizer

    env = rg.make("countdown-3", template=TOOL_TEMPLATE)
    solved, other = env.tasks("train", n=2, seed=0)
    answer = solve(solved.question["nums"], solved.question["target"])
    assert env.score(f"<think></think><answer>{answer}</answer>", other).outcome is not rg.Outcome.CORRECT

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with open(os.path.join(os.path.dirname(trl.__file__), "chat_templates", "qwen2_5.jinja")) as f:
        tokenizer.chat_template = f.read()  # a tool-calling template TRL knows how to parse
    prompt = tokenizer.apply_chat_template(env.prompt(solved), tools=[EnvironmentTool(env).submit_answer],
                                           add_generation_prompt=True, tokenize=False)
    call = ("<tool_call>\n" + json.dumps({"name": "submit_answer", "arguments": {"answer": answer}})
            + "\n</tool_call>" + tokenizer.eos_token)
    policy = teach_completion(tiny_model, tokenizer, prompt, call, str(tmp_path / "policy"))

    config = trl.GRPOConfig(output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=8,
                            num_generations=4, max_completion_length=160, temperature=0.5, use_cpu=True,
                            report_to="none", logging_steps=1, save_strategy="no", gradient_checkpointing=False,
                            seed=0, shuffle_dataset=False)
    trainer = trl.GRPOTrainer(model=policy, args=config, processing_class=tokenizer,
                              train_dataset=build_dataset(env, tasks=[solved, other]),
                              environment_factory=EnvironmentTool.factory(env))
    trainer.train()
    logs = trainer.state.log_history[0]
    assert logs["tools/call_frequency"] == 1.0  # every rollout called submit_answer, and TRL parsed it
    assert logs["tools/failure_frequency"] == 0.0
    # the same answer is right for `solved` and wrong for `other`: each rollout was scored on its own row's task
    assert logs["rewards/EnvironmentTool/mean"] == pytest.approx(0.5)
