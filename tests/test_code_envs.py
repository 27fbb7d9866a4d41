"""The sandbox and the code envs: verdicts made outside the sandbox, hostile programs held, the host unchanged."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import reasongym as rg
from reasongym.sandbox import Sandbox, Test
from reasongym.testing.probes import HOSTILE_PREFIXES, HOSTILE_SUFFIXES
from tests.conftest import REPO, make_builtin

FULL = ["process", "netns", "pidns", "mntns", "landlock", "seccomp"]


def _children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def box():
    with Sandbox(timeout=3) as sandbox:
        yield sandbox


def test_call_tests_are_judged_outside_the_sandbox(box):
    result = box.run("def add(a, b):\n    return a + b", [Test.call("candidate(1, 2)", 3), Test.call("candidate(2, 2)", 5),
                     Test.call("candidate(0.1, 0.2)", 0.3, tolerance=1e-9)], entry_point="add")
    assert [t.passed for t in result.tests] == [True, False, True] and result.status == "ok"
    assert "expected 5" in result.tests[1].detail and not result.passed and result.fraction == pytest.approx(2 / 3)
    assert result.isolation[0] == "process"


def test_this_box_gives_full_isolation(box):
    """CI's machine class allows every layer; a box that does not is named here instead of passing quietly."""
    box.run("x = 1", [])
    assert box.isolation == FULL, f"isolation reached here: {box.isolation}"


@pytest.mark.parametrize("name", sorted(HOSTILE_PREFIXES) + sorted(HOSTILE_SUFFIXES))
def test_every_hostile_program_scores_zero_and_leaves_the_host_alone(box, name, tmp_path):
    marker = tmp_path / "escaped"
    solution = "def add(a, b):\n    return a + b\n"
    program = (HOSTILE_PREFIXES[name].format(marker=str(marker)) + solution if name in HOSTILE_PREFIXES
               else solution + HOSTILE_SUFFIXES[name].format(marker=str(marker)))
    result = box.run(program, [Test.call("candidate(1, 2)", 3), Test.call("candidate(5, 5)", 10)],
                     entry_point="add", timeout=2)
    assert not result.passed and result.status in ("ok", "timeout"), (result.status, result.detail)
    assert box._helper is not None and box._helper.poll() is None  # the helper (the program's parent) is alive
    assert _children(box._helper.pid) == []  # every child reaped, no daemon left behind
    assert not marker.exists()
    if name == "daemon":
        import time

        time.sleep(3.5)  # the daemon would write its marker after 3 s
        assert not marker.exists()


THREADED = """from concurrent.futures import ThreadPoolExecutor

def add(a, b):
    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(lambda x: x, [a, b]))
"""


@pytest.mark.parametrize("layers", [{}, {"seccomp": False}, {"seccomp": False, "landlock": False, "network": False,
                                                                "pid": False, "mount": False}],
                         ids=["full", "no-seccomp", "process-only"])
def test_correct_programs_may_start_threads_at_every_level(layers):
    """Threads are not processes to a correct program: the process cap must leave room for them."""
    with Sandbox(timeout=3, layers=layers) as sandbox:
        result = sandbox.run(THREADED, [Test.call("candidate(1, 2)", 3)], entry_point="add")
        assert result.passed, (result.status, result.detail, result.stderr[-300:])
        bomb = HOSTILE_PREFIXES["fork_bomb"] + "def add(a, b):\n    return a + b\n"
        assert not sandbox.run(bomb, [Test.call("candidate(1, 2)", 3)], entry_point="add", timeout=2).passed
        assert _children(sandbox._helper.pid) == []


def test_programs_run_as_init_of_their_own_pid_namespace():
    """PID 1 of a fresh namespace with its own /proc: no process outside is visible or signalable, and whatever
    the program leaves running dies with it (the kernel kills a namespace whose init exits)."""
    with Sandbox(timeout=3) as sandbox:
        probe = ("import os\ndef ids():\n    return [os.getpid(), os.getppid(), "
                 "sorted(int(p) for p in os.listdir('/proc') if p.isdigit())]\n")
        result = sandbox.run(probe, [Test.call("candidate()", [1, 0, [1]])], entry_point="ids")
        if "pidns" not in sandbox.isolation:
            pytest.skip(f"no PID namespace here: {sandbox.isolation}")
        assert result.passed, result.tests[0].detail
        orphan = ("import os, time\nif os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\n"
                  "def ids():\n    return 1\n")
        with Sandbox(timeout=3, layers={"seccomp": False}) as open_box:
            assert open_box.run(orphan, [Test.call("candidate()", 1)], entry_point="ids").passed
            assert _children(open_box._helper.pid) == []


CAP_THEN_THREAD = """
import os, resource, sys, threading
from reasongym.sandbox import isolation
if os.geteuid() == 0:
    os.setgid(65534); os.setuid(65534)  # RLIMIT_NPROC is ignored for root: test as an unprivileged user
if sys.argv[1] == "ours":
    isolation.cap_processes(isolation.Limits())
else:
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
try:
    worker = threading.Thread(target=lambda: None); worker.start(); worker.join()
    print("thread ok")
except RuntimeError as error:
    print("no thread:", error)
"""


def test_the_process_cap_leaves_room_for_threads_when_seccomp_is_missing():
    """The cap used without seccomp lets a thread start; a cap of 0 (what it must not be) does not."""
    def run(mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", CAP_THEN_THREAD, mode], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
        return done.stdout + done.stderr
    assert "thread ok" in run("ours")
    assert "no thread" in run("zero")


def test_a_killed_helper_is_an_error_then_replaced(box):
    box.run("x = 1", [])
    box._helper.kill()
    box._helper.wait()
    result = box.run("def f():\n    return 1", [Test.call("candidate()", 1)], entry_point="f")
    assert result.status in ("ok", "error")
    again = box.run("def f():\n    return 1", [Test.call("candidate()", 1)], entry_point="f")
    assert again.passed  # a fresh helper


@pytest.mark.parametrize("env_id", ["humaneval", "mbpp", "humaneval-plus", "mbpp-plus"])
def test_code_envs_pass_their_references_and_fail_wrong_twins(env_id):
    env = rg.make(env_id, source="sample")
    for split in env.splits:
        tasks = env.tasks(split, n=None, seed=None)
        right = env.score_batch([env.reference_completion(t) for t in tasks], tasks)
        wrong = env.score_batch([env.near_miss(t) for t in tasks], tasks)
        assert all(s.outcome is rg.Outcome.CORRECT for s in right), [s.detail for s in right]
        assert all(s.components["correct"] == 0.0 for s in wrong)
        assert right[0].parsed["isolation"] == FULL and all(right[0].parsed["tests"])


def test_code_env_answers_that_are_not_one_program():
    env = rg.make("humaneval", source="sample")
    task = next(t for t in env.tasks(n=None, seed=None) if "def add_digits" in t.question["prompt"])
    for text, detail in [("<think>x</think><answer>I would loop over the digits.</answer>", "not valid Python"),
                         ("<think>x</think><answer>" + "x = 1\n" * 20_000 + "</answer>", "longer than"),
                         ("<think>x</think><answer>```python\na = 1\n```\n```python\nb = 2\n```</answer>", "several code")]:
        score = env.score(text, task)
        assert score.outcome is rg.Outcome.UNPARSEABLE and detail in score.detail
    body_only = "<think>x</think><answer>```python\n    return sum(int(d) for d in str(n))\n```</answer>"
    assert env.score(body_only, task).outcome is rg.Outcome.CORRECT  # a completion of the prompt's function


def test_fraction_mode_and_per_test_outcomes():
    env = rg.make("mbpp", source="sample", reward_mode="fraction")
    task = env.tasks("test", n=None, seed=None)[0]  # count_vowels
    half_right = "<think>x</think><answer>```python\ndef count_vowels(s):\n    return 2 if s else 0\n```</answer>"
    score = env.score(half_right, task)
    assert score.parsed["tests"] == [True, True, False] and score.components["fraction"] == pytest.approx(2 / 3)


def test_rows_without_tests_are_refused_at_load(tmp_path):
    path = tmp_path / "HumanEval.jsonl"
    path.write_text('{"task_id": "X/0", "prompt": "def f():\\n", "canonical_solution": "    return 1\\n", '
                    '"test": "", "entry_point": "f"}\n')
    with pytest.raises(ValueError, match="X/0"):
        rg.make("humaneval", data_files=str(path))


def test_official_file_formats_load(tmp_path):
    import gzip
    import shutil

    here = os.path.join(REPO, "envs", "code")
    gz = tmp_path / "HumanEval.jsonl.gz"
    with open(os.path.join(here, "sample_humaneval.jsonl"), "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert rg.make("humaneval", data_files=str(gz)).task_count("test") == 6
    array = tmp_path / "sanitized-mbpp.json"
    shutil.copy(os.path.join(here, "sample_mbpp.json"), array)
    env = rg.make("mbpp", data_files=str(array))  # one JSON array, split by task id as MBPP's README says
    assert env.task_count("test") == 5 and env.task_count("validation") == 1 and env.task_count("train") == 3


def test_importing_the_sandbox_imports_no_torch():
    code = "import sys, reasongym.sandbox, envs.code.env; print(any(m in sys.modules for m in ('torch', 'trl')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_grpo_runs_on_mbpp_with_a_tiny_policy(tiny_model, tmp_path):
    from tests.conftest import run_in_process

    out = tmp_path / "run"
    proc = run_in_process(["trainers.grpo", "--env", "mbpp", "--env-kwargs", '{"source": "sample"}', "--model", tiny_model,
                           "--output-dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
                           "--gradient_accumulation_steps", "1", "--num_generations", "4",
                           "--max_completion_length", "24", "--eval-size", "0", "--gradient_checkpointing", "false"],
                          tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "metrics.jsonl").exists()


@pytest.mark.slow
def test_evaluate_gives_pass_at_k_on_humaneval(tiny_model, tmp_path):
    from trainers import evaluate

    code = evaluate.main(["--env", "humaneval", "--env-kwargs", '{"source": "sample"}', "--model", tiny_model,
                          "--n", "3", "--samples", "2", "--k", "1,2", "--max_completion_length", "16",
                          "--output-dir", str(tmp_path)])
    assert code == 0
    import json

    report = json.loads((tmp_path / "report.json").read_text())
    assert "pass@2" in json.dumps(report)


def test_an_unknown_layer_switch_is_refused_up_front():
    with pytest.raises(ValueError, match="unknown sandbox layer"):
        Sandbox(layers={"seccom": False})


def test_a_hanging_program_is_cut_at_the_tasks_time_limit():
    """The limit is 10x the reference's runtime within [min_timeout, max_timeout]; a program past it scores wrong."""
    env = make_builtin("mbpp", min_timeout=1.0, max_timeout=20.0)
    task = env.tasks(n=1)[0]
    assert env.time_limit(task) == 1.0  # the reference takes milliseconds: the floor applies
    hanging = "<think>\nloop\n</think>\n<answer>\n```python\nwhile True:\n    pass\n```\n</answer>"
    score = env.score(hanging, task)
    assert score.outcome is rg.Outcome.WRONG and score.detail == "ran past its time limit"
    assert make_builtin("mbpp", min_timeout=0.5, max_timeout=0.5).time_limit(task) == 0.5  # the ceiling
