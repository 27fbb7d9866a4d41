"""pytest plugin (auto-loaded via the `pytest11` entry point).

Gives tests a `check_verifier` fixture and a `--rg-examples` option:

    def test_my_env(check_verifier):
        check_verifier(rg.make("my-task"))
"""

from __future__ import annotations

import functools

import pytest


def pytest_addoption(parser):
    parser.addoption("--rg-examples", type=int, default=None,
                     help="hypothesis examples per reasongym verifier property (default 100)")


@pytest.fixture
def check_verifier(request):
    from reasongym.testing import check_verifier as run

    examples = request.config.getoption("--rg-examples")
    if examples is None:
        return functools.partial(run, raise_on_failure=True)
    return functools.partial(run, examples=examples, raise_on_failure=True)
