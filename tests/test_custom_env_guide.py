"""docs/custom-envs.md and docs/trl-integration.md, run as written: a task in the user's own module, checked,
trained and evaluated through the CLIs with --import; an env inside a user's own GRPOTrainer script."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _blocks(path: str) -> list[str]:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_the_guide_commands_name_the_module_they_import():
    with open(os.path.join(REPO, "docs/custom-envs.md"), encoding="utf-8") as f:
        text = f.read()
    assert "python -m reasongym check half --import mytasks" in text
    assert "python -m trainers.grpo --import mytasks --env half" in text
    assert "python -m trainers.evaluate --import mytasks --env half" in text


@pytest.mark.slow
def test_a_task_in_the_users_module_is_checked_trained_and_evaluated(tiny_model, tmp_path):
    (tmp_path / "mytasks.py").write_text(_blocks("docs/custom-envs.md")[0])
    unknown = _run(["reasongym", "check", "half"], tmp_path)
    assert unknown.returncode == 2 and "--import MODULE" in unknown.stdout
    check = _run(["reasongym", "check", "half", "--import", "mytasks", "--examples", "20"], tmp_path)
    assert check.returncode == 0 and "keep the verifier contract" in check.stdout, check.stdout[-3000:]
    assert "probe hedge" in check.stdout and "probe code_injection" in check.stdout
    run = tmp_path / "runs" / "half"
    train = _run(["trainers.grpo", "--import", "mytasks", "--env", "half", "--model", tiny_model, "--output-dir", str(run),
                  "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "4",
                  "--max_completion_length", "16", "--train-size", "8", "--eval-size", "0",
                  "--gradient_checkpointing", "false"], tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "recipe:" in train.stderr and "no recipe for half" in train.stderr
    evaluation = _run(["trainers.evaluate", "--import", "mytasks", "--env", "half", "--model", str(run), "--split", "test",
                       "--n", "8", "--max_completion_length", "16", "--output-dir", str(tmp_path / "eval")], tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert (tmp_path / "eval" / "report.json").exists()


@pytest.mark.slow
def test_the_trl_integration_script_trains(tiny_model, tmp_path, monkeypatch):
    (block,) = _blocks("docs/trl-integration.md")
    script = (block.replace('"Qwen/Qwen2.5-0.5B-Instruct"', repr(tiny_model)).replace("n=2000", "n=8")
              .replace('"runs/countdown"', repr(str(tmp_path / "run")))
              .replace("max_completion_length=512)", "max_completion_length=16, max_steps=1, "
                       "per_device_train_batch_size=8, report_to='none', use_cpu=True)"))
    assert script.count(repr(tiny_model)) == 1 and "max_steps=1" in script  # the page's script, only shrunk
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(script, "docs/trl-integration.md", "exec"), namespace)
    history = namespace["trainer"].state.log_history
    assert any("rewards/correct/mean" in record for record in history)
