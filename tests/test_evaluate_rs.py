"""pass@k, the evaluation CLI, rollout backends (incl. a real local OpenAI-compatible HTTP server),
and the rejection-sampling trainer end to end."""

from __future__ import annotations

import json
import math
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import reasongym as rg
from tests.conftest import run_in_process, run_module
from trainers.evaluate import pass_at_k
from trainers.rollout.generation import HFBackend, OpenAIBackend, Sampling
from trainers.rejection_sampling import select


def test_pass_at_k_hand_computed_and_edges():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))  # = 0.5
    assert pass_at_k(5, 2, 4) == 1.0  # n - c < k
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_select_dedupes_and_caps():
    env = rg.make("countdown-3")
    task = env.tasks(n=1)[0]
    good = env.reference_completion(task)
    texts = [good, good, "junk", good + " ", good.replace("Trying", "Try")]
    scores = [env.score(t, task) for t in texts]
    kept = select([task], [texts], [scores], max_per_prompt=2)
    assert [t for _, t in kept] == [good, good.replace("Trying", "Try")]


@pytest.mark.slow
def test_evaluate_cli(tiny_model, tmp_path):
    out = tmp_path / "eval"
    proc = run_in_process(["trainers.evaluate", "--env", "countdown-3to4", "--model", tiny_model, "--n", "6", "--samples", "4",
                       "--k", "1,4", "--max-completion-length", "12", "--output-dir", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["tasks"] == 6 and report["samples_per_task"] == 4
    assert set(report["pass_at"]) == {"pass@1", "pass@4"} and "3" in report["by_difficulty"] or "4" in report["by_difficulty"]
    assert len((out / "samples.jsonl").read_text().splitlines()) == 24
    bad = run_in_process(["trainers.evaluate", "--env", "countdown-3to4", "--model", tiny_model, "--samples", "2", "--k", "4"],
                     tmp_path)
    assert bad.returncode == 2 and "pass@4 needs --samples >= 4" in bad.stdout


class _Completions(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible /v1/completions server backed by the HF backend."""

    backend: HFBackend

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        sampling = Sampling(temperature=body["temperature"], max_new_tokens=body["max_tokens"], seed=body["seed"])
        groups = self.backend.generate(body["prompt"], body["n"], sampling)
        choices = [{"index": i * body["n"] + j, "text": text} for i, group in enumerate(groups)
                   for j, text in enumerate(group)]
        payload = json.dumps({"choices": choices[::-1]}).encode()  # out of order on purpose
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_openai_backend_against_a_real_local_server(tiny_model):
    hf = HFBackend.from_pretrained(tiny_model, device="cpu")
    handler = type("Handler", (_Completions,), {"backend": hf})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = rg.make("countdown-3to4")
        from reasongym.adapters.trl import render_prompt

        prompts = [render_prompt(env, t, hf.tokenizer) for t in env.tasks(n=2)]
        client = OpenAIBackend(f"http://127.0.0.1:{server.server_port}", "tiny", tokenizer=hf.tokenizer)
        greedy = Sampling(temperature=0.0, max_new_tokens=8)
        remote = client.generate(prompts, 2, greedy)
        assert [len(g) for g in remote] == [2, 2]
        assert remote == hf.generate(prompts, 2, greedy)  # same text as the local backend, in order
    finally:
        server.shutdown()


@pytest.mark.slow
def test_rejection_sampling_end_to_end_with_oracle(tiny_model, tmp_path):
    out = tmp_path / "rs"
    proc = run_in_process(["trainers.rejection_sampling", "--env", "countdown-3", "--model", tiny_model, "--rounds", "2",
                       "--samples", "2", "--prompts", "8", "--oracle", "every", "--eval-size", "4", "--max-completion-length", "16",
                       "--per-device-train-batch-size", "4", "--output-dir", str(out), "--use-cpu"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2]  # round 0: the starting policy's test accuracy
    assert records[0]["acceptance_rate"] is None and records[0]["policy"] == tiny_model
    assert records[1]["accepted"] >= 8  # the oracle's reference completions
    assert all(0.0 <= r["acceptance_rate"] <= 1.0 and 0.0 <= r["test_accuracy"] <= 1.0 for r in records[1:])
    assert (out / "round-1" / "model.safetensors").exists()
    assert records[2]["policy"] == str(out / "round-2")  # round 2 trained on top of round 1
    assert "rejection sampling on countdown-3" in proc.stdout


@pytest.mark.slow
def test_rejection_sampling_under_accelerate_deepspeed_zero3_cpu(tiny_model, tmp_path):
    """Two processes: each samples its share with a whole model, SFT runs ZeRO-3-sharded and the round's
    policy is gathered from the shards (rounds chaining onto each other: the single-process test above)."""
    from safetensors.torch import load_file

    out = tmp_path / "rs-z3"
    proc = run_module(["trainers.rejection_sampling", "--env", "countdown-3", "--model", tiny_model, "--rounds", "1",
                       "--samples", "2", "--prompts", "8", "--oracle", "every", "--eval-size", "5", "--max-completion-length", "16",
                       "--per-device-train-batch-size", "2", "--output-dir", str(out), "--use-cpu"], tmp_path, processes=2,
                      timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(2 process(es))" in proc.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1]
    assert [r["test_tasks"] for r in records] == [5, 5]  # the split of 5 over 2 ranks is merged back
    assert records[1]["policy"] == str(out / "round-1")
    env = rg.make("countdown-3")
    tasks = {t.id: t for t in env.tasks("train", n=16, seed=0)}
    for rank in (0, 1):  # both ranks contributed verified rows: the oracle's 4 per rank, all correct
        rows = [json.loads(line) for line in (out / f"round1-accepted-rank{rank}.jsonl").read_text().splitlines()]
        assert len(rows) >= 4 and all(env.score(r["completion"], tasks[r["task_id"]]).correct for r in rows)
    before = load_file(os.path.join(tiny_model, "model.safetensors"))
    after = load_file(str(out / "round-1" / "model.safetensors"))
    assert before.keys() == after.keys()  # gathered from the ZeRO-3 shards, not empty partitions
    assert all(after[name].shape == before[name].shape for name in before)
    assert any(not (after[name].float() == before[name].float()).all() for name in before)


def test_static_cache_batches_give_the_plain_backends_text(tiny_model):
    """The GPU path of the HF backend (one static cache for the call, the last batch padded to full size)
    reads the same greedy text as the plain path; on CPU transformers does not compile, so this checks
    the shapes and the dropped padding rows, and the GPU benchmark checks the speed."""
    env = rg.make("countdown-3to4")
    from reasongym.adapters.trl import render_prompt

    plain = HFBackend.from_pretrained(tiny_model, device="cpu", batch_size=3)
    assert not plain.compiled_decode  # off the GPU by default
    prompts = [render_prompt(env, t, plain.tokenizer) for t in env.tasks(n=4)]
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    want = plain.generate(prompts, 2, greedy)  # 8 sequences: batches of 3, 3, 2
    static = HFBackend(plain.model, plain.tokenizer, batch_size=3, compiled_decode=True)
    assert static.generate(prompts, 2, greedy) == want
    assert static._sampler is not None  # our own decode loop ran (trainers.rollout.static_sampler)
    assert [len(group) for group in want] == [2, 2, 2, 2]


def test_a_failing_decode_loop_falls_back_to_hf_generate(tiny_model, monkeypatch):
    """Our own decode loop raising (a model or GPU it was never tried on) costs a warning, not the run:
    HF generate's loop gives the same text, and is used from then on."""
    from trainers.rollout.static_sampler import StaticSampler

    env = rg.make("countdown-3to4")
    from reasongym.adapters.trl import render_prompt

    plain = HFBackend.from_pretrained(tiny_model, device="cpu", batch_size=3)
    prompts = [render_prompt(env, t, plain.tokenizer) for t in env.tasks(n=2)]
    greedy = Sampling(temperature=0.0, max_new_tokens=8)
    want = plain.generate(prompts, 1, greedy)

    def broken(self, *args, **kwargs):
        raise RuntimeError("no graph for you")

    monkeypatch.setattr(StaticSampler, "sample", broken)
    static = HFBackend(plain.model, plain.tokenizer, batch_size=3, compiled_decode=True)
    with pytest.warns(RuntimeWarning, match="our own decode loop failed .*no graph for you"):
        assert static.generate(prompts, 1, greedy) == want
    assert static._sampler is None and static.generate(prompts, 1, greedy) == want
