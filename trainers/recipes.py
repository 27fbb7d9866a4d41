"""Recipes: a YAML file plus `--key value` overrides, in the TRL/open-r1 convention.

`python -m trainers.grpo --config recipes/grpo/tiny-cpu.yaml --learning_rate 1e-5`
merges the file and the flags (flags win); keys may use dashes or underscores.
Keys that belong to the trainer's config dataclass go there; the trainer's own
options (env, model, LoRA, sizes) are declared per trainer as `ScriptOption`s.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import yaml


class RecipeError(ValueError):
    """A recipe or flag is wrong; the message says what to change."""


@dataclass(frozen=True)
class ScriptOption:
    name: str
    default: Any
    help: str


def parse_flags(argv: Sequence[str]) -> dict[str, Any]:
    """`--a 1 --b-c x --flag` -> {"a": 1, "b_c": "x", "flag": True}."""
    out: dict[str, Any] = {}
    i = 0
    argv = list(argv)
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise RecipeError(f"unexpected argument {token!r}: options look like --name value")
        key, eq, inline = token[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            out[key] = coerce(inline)
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[key] = coerce(argv[i + 1])
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def coerce(text: str) -> Any:
    """A flag's text as YAML would read it, with `1e-6` read as a float (YAML 1.1 says str)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value)
            except ValueError:
                pass
    return value


def load_recipe(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise RecipeError(f"recipe {path!r} does not exist (recipes live in recipes/grpo/, recipes/ppo/, ...)") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path!r} must be a YAML mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def split_options(
    merged: dict[str, Any], script_options: Sequence[ScriptOption], config_cls: type
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(script options with defaults filled, config-class kwargs); unknown keys raise with close matches."""
    script_names = {o.name for o in script_options}
    config_names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    unknown = [k for k in merged if k not in script_names and k not in config_names]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(script_names | config_names), n=3)
            hints.append(f"--{key}" + (f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""))
        raise RecipeError(
            f"unknown option(s): {'; '.join(hints)}. Options are this trainer's own (see --help) or "
            f"{config_cls.__name__} fields."
        )
    script = {o.name: merged.get(o.name, o.default) for o in script_options}
    config = {k: v for k, v in merged.items() if k in config_names}
    for key in ("env_kwargs",):
        if isinstance(script.get(key), str):
            try:
                script[key] = json.loads(script[key])
            except json.JSONDecodeError as exc:
                raise RecipeError(f"--{key.replace('_', '-')} must be a JSON object ({exc})") from None
    return script, config


def help_text(prog: str, summary: str, script_options: Sequence[ScriptOption], config_name: str) -> str:
    width = max(len(o.name) for o in script_options) + 4
    lines = [f"usage: {prog} --env ID [--model NAME_OR_PATH] [--config RECIPE.yaml] [options]", "", summary, "",
             "options:"]
    for option in script_options:
        flag = "--" + option.name.replace("_", "-")
        default = "" if option.default in (None, False, "") else f" (default: {option.default})"
        lines.append(f"  {flag:<{width}} {option.help}{default}")
    lines += [
        "",
        f"Any {config_name} field is also accepted as --field value (e.g. --learning_rate 1e-6",
        "--num_generations 8 --max_steps 450 --report_to tensorboard). A YAML recipe passed with",
        "--config sets the same keys; flags override the recipe.",
    ]
    return "\n".join(lines)


def open_env(env_id: str, env_kwargs_json: str | None, console: Any):
    """The env a trainer CLI asked for, or None after printing why (unknown id, bad JSON)."""
    import reasongym as rg

    try:
        kwargs = json.loads(env_kwargs_json) if env_kwargs_json else {}
        return rg.make(env_id, **kwargs)
    except json.JSONDecodeError as exc:
        console.print(f"[red]error:[/] --env-kwargs must be a JSON object ({exc})")
    except (rg.UnknownEnvError, TypeError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
    return None
