"""reasoning-gym's codeio generator runs its reference snippets in our sandbox, not in this process or its
working directory (envs/reasoning_gym/codeio_sandbox.py)."""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("reasoning_gym")

from envs.reasoning_gym.codeio_sandbox import CodeioGenerationError, SandboxedIoPair, sandboxed  # noqa: E402

GENERATOR = """
def generate_inputs(rng):
    return {"a": rng.randint(0, 100), "b": [rng.random() for _ in range(3)]}
"""


def test_a_snippet_runs_in_a_fresh_directory_and_its_files_stay_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    snippet = ("import os\n"
               "def main_solution(a, b):\n"
               "    open('planet.com', 'w').write('written')\n"
               "    return os.getcwd()\n")
    inputs, where = SandboxedIoPair()(snippet, GENERATOR, random.Random(7))
    assert list(tmp_path.iterdir()) == []
    assert where != str(tmp_path) and where != os.getcwd()
    assert set(inputs) == {"a", "b"}


def test_the_random_state_goes_on_where_the_snippet_left_it():
    """reasoning-gym draws more from the same generator after the inputs (which question to ask): the
    parent's generator must end where the child's did."""
    rng = random.Random(7)
    inputs, output = SandboxedIoPair()("def main_solution(a, b):\n    return a + len(b)\n", GENERATOR, rng)
    expected = random.Random(7)
    assert inputs == {"a": expected.randint(0, 100), "b": [expected.random() for _ in range(3)]}
    assert output == inputs["a"] + 3
    assert rng.getstate() == expected.getstate()
    assert rng.random() == expected.random()


def test_numpy_values_come_back_as_python_numbers():
    snippet = ("import numpy as np\n"
               "def main_solution(a, b):\n"
               "    return {'mean': np.float64(np.mean(b)), 'grid': np.arange(3) * a}\n")
    inputs, output = SandboxedIoPair()(snippet, GENERATOR, random.Random(1))
    assert type(output["mean"]) is float and output["grid"] == [0, inputs["a"], 2 * inputs["a"]]


@pytest.mark.parametrize("snippet, why", [
    ("def main_solution(a, b):\n    raise ValueError('broken snippet')\n", "broken snippet"),
    ("def main_solution(a, b):\n    return object()\n", "not plain data"),
    ("def main_solution(a, b):\n    while True:\n        pass\n", "timeout"),
])
def test_a_snippet_that_fails_gives_no_task(snippet, why):
    with pytest.raises(CodeioGenerationError, match=why):
        SandboxedIoPair(timeout=2.0)(snippet, GENERATOR, random.Random(3))


def test_max_retries_draws_new_inputs_while_the_snippet_raises():
    """reasoning-gym's max_retries: each try draws fresh inputs from the same generator."""
    snippet = ("def main_solution(a, b):\n"
               "    if a % 2:\n"
               "        raise ValueError('odd a')\n"
               "    return a\n")
    seed = next(s for s in range(100) if random.Random(s).randint(0, 100) % 2)  # the first draw fails
    with pytest.raises(CodeioGenerationError, match="odd a"):
        SandboxedIoPair()(snippet, GENERATOR, random.Random(seed))
    rng = random.Random(seed)
    inputs, output = SandboxedIoPair()(snippet, GENERATOR, rng, max_retries=50)
    assert output == inputs["a"] and output % 2 == 0
    expected = random.Random(seed)
    draws = [(expected.randint(0, 100), [expected.random() for _ in range(3)]) for _ in range(50)]
    tries = next(i for i, (a, _) in enumerate(draws) if a % 2 == 0) + 1
    assert inputs == {"a": draws[tries - 1][0], "b": draws[tries - 1][1]} and tries > 1
    replay = random.Random(seed)
    for _ in range(tries):
        replay.randint(0, 100), [replay.random() for _ in range(3)]
    assert rng.getstate() == replay.getstate()  # the parent goes on after the successful try
    with pytest.raises(CodeioGenerationError, match="no attempt"):
        SandboxedIoPair()(snippet, GENERATOR, random.Random(seed), max_retries=0)


def test_codeio_items_that_wrote_into_the_working_directory_no_longer_do(tmp_path, monkeypatch):
    """Items 448 and 2656 of this dataset write sailor_performance.csv and planet.com when reasoning-gym
    runs their snippets itself."""
    import reasoning_gym

    monkeypatch.chdir(tmp_path)
    dataset = sandboxed(reasoning_gym.create_dataset("codeio", seed=0, size=10_000))
    items = [dataset[448], dataset[2656]]
    assert list(tmp_path.iterdir()) == []
    for item in items:
        assert "main_solution" in item["question"] and item["answer"]


def test_the_env_and_a_composite_holding_codeio_generate_in_the_sandbox():
    """(tests/test_env_api.py resets the codeio env itself, through Gymnasium's checker.)"""
    import reasongym

    env = reasongym.make("reasoning-gym/codeio")
    assert all(isinstance(d._generate_io_pair, SandboxedIoPair) for d in env.unwrapped._datasets.values())
    composite = reasongym.make("reasoning-gym/composite", datasets=[
        {"name": "codeio", "weight": 1.0, "config": {}}, {"name": "chain_sum", "weight": 1.0, "config": {}}])
    members = [part for dataset in composite.unwrapped._datasets.values() for part in dataset.datasets.values()]
    assert [type(getattr(part, "_generate_io_pair", None)).__name__ for part in members].count("SandboxedIoPair") == 1
