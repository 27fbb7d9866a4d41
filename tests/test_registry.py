"""Registry: register/make/spec/list, plugins through entry points, gymnasium ids, bad ids."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium
import pytest

import reasongym as rg
from reasongym import registry


def test_builtin_ids_listed():
    ids = {s.id for s in rg.list_envs()}
    assert {"countdown-3to4", "countdown-3", "countdown-4", "countdown"} <= ids


def test_spec_carries_entry_point_kwargs_and_description():
    s = rg.spec("countdown-3")
    assert s.entry_point == "envs.countdown.env:CountdownEnv"
    assert s.kwargs == {"counts": (3,)}
    assert "3 numbers" in s.description


def test_make_applies_overrides_and_records_them():
    env = rg.make("countdown-3to4", template="base", reward_mode="tinyzero")
    assert env.template.name == "base" and env.reward_mode == "tinyzero"
    assert env.spec.kwargs["template"] == "base"


def test_unknown_id_lists_close_matches():
    with pytest.raises(rg.UnknownEnvError) as err:
        rg.make("countdown-34")
    message = str(err.value)
    assert "countdown-3to4" in message and "python -m reasongym list" in message


def test_bad_registration_is_rejected():
    with pytest.raises(ValueError):
        rg.register("bad", "no_colon_here")
    with pytest.raises(ValueError):
        rg.register("ns/bad", "a:b")


def test_register_callable_and_make_through_gymnasium():
    from envs.countdown.env import CountdownEnv

    rg.register("test-countdown-small", lambda **kw: CountdownEnv(counts=(3,), num_range=(1, 9), **kw))
    try:
        env = gymnasium.make("reasongym/test-countdown-small")
        obs, info = env.reset(seed=3)
        assert all(1 <= n <= 9 for n in info["task"].question["nums"])
        assert isinstance(obs, list) and obs[-1]["role"] == "assistant"
    finally:
        registry.deregister("test-countdown-small")


def test_make_rejects_non_env_entry_points():
    rg.register("test-not-an-env", lambda **kw: object())
    try:
        with pytest.raises(TypeError, match="not a reasongym.Env"):
            rg.make("test-not-an-env")
    finally:
        registry.deregister("test-not-an-env")


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    """A third-party package registers an env without being imported by hand."""
    pkg = tmp_path / "rg_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import reasongym as rg

        def register_envs():
            rg.register("plugin-countdown", "envs.countdown.env:CountdownEnv", description="from a plugin",
                        counts=(3,), num_range=(1, 20))
    """))
    dist = tmp_path / "rg_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rg-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[reasongym.envs]\ndemo = rg_plugin_demo:register_envs\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.load_plugins(force=True)
        env = rg.make("plugin-countdown")
        assert env.spec.description == "from a plugin"
        assert all(n <= 20 for n in env.reset(seed=0)[1]["task"].question["nums"])
    finally:
        registry.deregister("plugin-countdown")


def test_importing_and_making_an_env_never_imports_torch_or_trl():
    code = (
        "import sys, reasongym as rg\n"
        "env = rg.make('countdown-3to4'); env.reset(seed=0)\n"
        "env.score_batch(['x'], env.tasks(n=1))\n"
        "from reasongym.adapters import trl as adapter\n"
        "heavy = [m for m in ('torch', 'trl', 'transformers', 'vllm', 'deepspeed') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_source_checkout_without_install_still_registers_builtins(monkeypatch):
    """No entry-point metadata (a clone on PYTHONPATH): the built-ins register through the same hook."""
    saved = dict(registry._registry)
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [])
    try:
        registry._registry.clear()
        registry.load_plugins(force=True)
        assert "countdown-3to4" in {s.id for s in rg.list_envs()}
    finally:
        registry._registry.clear()
        registry._registry.update(saved)
