"""The one command-line parser of every trainer: a YAML recipe plus `--key value` flags.

    python -m trainers.grpo --config recipes/grpo/tiny-cpu.yaml --learning-rate 1e-5 --save_strategy no

- keys use dashes or underscores alike; flags override the recipe;
- a key is either one of the trainer's own options (a typed dataclass of
  `trainers.common.options`, validated when built) or a field of the config dataclass underneath
  (GRPOConfig, SFTConfig, PPOConfig, EvalConfig), all passed through;
- a value follows the type of what it sets: a str field gets the string (`--save_strategy no`
  stays "no" — YAML would have made it False), a bool field reads true/false/yes/no/1/0,
  numbers read `1e-6`; recipe files follow the same rule;
- unknown keys fail with their close matches, a renamed one with its new name, before anything
  heavy is imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any, Callable, Sequence

import yaml

from reasongym.envargs import EnvArgsError, parse_env_kwargs
from trainers.common.options import CommonOptions, flag_name
from trainers.common.recipes import RecipeChoice, RecipeError, _StrictBoolLoader, load_recipe  # noqa: F401 - RecipeError re-exported

_NONE = ("none", "null", "~")
_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n")


def parse_flags(argv: Sequence[str]) -> dict[str, str | bool]:
    """`--a 1 --b-c x --flag` -> {"a": "1", "b_c": "x", "flag": True}: raw text, typed later."""
    out: dict[str, str | bool] = {}
    i, argv = 0, list(argv)
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise RecipeError(f"unexpected argument {token!r}: options look like --name value")
        key, eq, inline = token[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            out[key], i = inline, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[key], i = argv[i + 1], i + 2
        else:
            out[key], i = True, i + 1
    return out


def coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` (flag text, or a recipe's YAML value) as the type `hint` asks for."""
    if not isinstance(value, str):
        if value is True and _accepts(hint, bool):
            return True
        return value
    text = value.strip()
    options = _union_members(hint)
    nullable = type(None) in options
    options = [o for o in options if o is not type(None)]
    stringly = any(o is str or typing.get_origin(o) is typing.Literal
                   or (isinstance(o, type) and issubclass(o, (str, enum.Enum))) for o in options)
    if stringly and text[:1] not in ("[", "{"):
        return value  # a str field keeps the text, "none" and "no" included (report_to none is a string there)
    if nullable and text.lower() in _NONE:
        return None
    for option in options:
        if option is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise RecipeError(f"--{key} takes true or false, got {value!r}")
        if option in (int, float):
            try:
                number = float(text) if option is float else int(text)
            except ValueError:
                try:  # 1e3 for an int field
                    number = float(text)
                except ValueError:
                    raise RecipeError(f"--{key} takes a{'n integer' if option is int else ' number'}, got {value!r}") from None
                if option is int and not number.is_integer():
                    raise RecipeError(f"--{key} takes an integer, got {value!r}") from None
                number = int(number)
            return number
        if option is dict or typing.get_origin(option) is dict:
            try:
                return parse_env_kwargs(text)
            except EnvArgsError:
                pass
    try:
        return yaml.load(text, Loader=_StrictBoolLoader)
    except yaml.YAMLError:
        return value


def _union_members(hint: Any) -> list[Any]:
    if hint is Any or hint is None:
        return [Any]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return list(typing.get_args(hint))
    return [hint]


def _accepts(hint: Any, kind: type) -> bool:
    return any(member is kind for member in _union_members(hint))


def _config_hints(config_cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to YAML typing for that class
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls) if f.init}


class TrainerCLI:
    """`parse(argv) -> (typed options, config kwargs)` and `help()` for one trainer."""

    def __init__(self, prog: str, summary: str, options_cls: type[CommonOptions], config_cls: type,
                 example: str = "", renamed: dict[str, str] | None = None) -> None:
        self.prog, self.summary, self.config_cls, self.example = prog, summary, config_cls, example
        self.options_cls, self.renamed = options_cls, dict(renamed or {})
        self.options = {flag_name(f): f for f in dataclasses.fields(options_cls)}
        hints = _config_hints(options_cls)
        self.option_hints = {flag_name(f): hints[f.name] for f in dataclasses.fields(options_cls)}
        self.fields = _config_hints(config_cls)

    def parse(self, argv: Sequence[str], default_recipe: Callable[[dict[str, Any]], Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        """Recipe + flags, checked and typed. Without --config, `default_recipe(flags)` may give a recipe path or a
        RecipeChoice (trainers.common.recipes: printed in one line); `--config none` means no recipe at all."""
        flags = parse_flags(argv)
        self.refuse_unknown(flags)  # a mistyped flag, value or env id is named before any recipe is looked for
        for key, value in flags.items():
            coerce(key, value, self.option_hints[key] if key in self.options else self.fields[key])
        if not flags.get("env") and not flags.get("config"):
            raise RecipeError("--env is required (python -m reasongym list shows the ids)")
        if flags.get("env"):
            from reasongym import registry
            from reasongym.envargs import import_env_modules

            try:
                import_env_modules(flags.get("import"))
            except EnvArgsError as exc:
                raise RecipeError(str(exc)) from None
            registry.spec(str(flags["env"]))  # UnknownEnvError, with close matches
        chosen = flags.get("config")
        if isinstance(chosen, str) and chosen.lower() == "none":
            flags["config"] = None
            recipe: dict[str, Any] = {}
        elif chosen:
            recipe = load_recipe(str(chosen))
        else:
            picked = default_recipe(flags) if default_recipe else None
            if isinstance(picked, RecipeChoice):
                from rich.console import Console

                recipe = picked.values
                Console(stderr=True, highlight=False, soft_wrap=True).print(picked.line(), markup=False)
            else:
                recipe = load_recipe(picked)
        merged = {**recipe, **flags}
        self.refuse_unknown(merged)
        values: dict[str, Any] = {}
        config: dict[str, Any] = {}
        for key, value in merged.items():
            if key in self.options:
                values[self.options[key].name] = coerce(key, value, self.option_hints[key])
            else:
                config[key] = coerce(key, value, self.fields[key])
        try:
            values["env_kwargs"] = parse_env_kwargs(values.get("env_kwargs"))
        except EnvArgsError as exc:
            raise RecipeError(str(exc)) from None
        options = self.options_cls(**values)  # __post_init__ validates, with the reason
        if options.model:
            from trainers.common.recipes import check_model_reference

            check_model_reference(str(options.model))
        return options, config

    def refuse_unknown(self, merged: dict[str, Any]) -> None:
        known = set(self.options) | set(self.fields)
        unknown = [k for k in merged if k not in known]
        if not unknown:
            return
        renamed = [f"--{k} is now --{self.renamed[k]}" for k in unknown if k in self.renamed]
        if renamed:
            raise RecipeError(f"renamed option(s): {'; '.join(renamed)} (every trainer uses the same names)")
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hints.append(f"--{key}" + (f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""))
        raise RecipeError(f"unknown option(s): {'; '.join(hints)}. Options are this trainer's own (see --help) or "
                          f"{self.config_cls.__name__} fields.")

    def help(self, all_fields: bool = False) -> str:
        """This trainer's options, then the config fields: all of them with `all_fields`, or for a
        config class of our own (few fields); a TRL config's ~150 fields are listed by `--help-config`."""
        names = list(self.options)
        width = max(len(n) for n in names) + 4
        lines = [f"usage: {self.prog} --env ID [--model NAME_OR_PATH] [--config RECIPE.yaml] [--field value ...]", "",
                 self.summary, "", "options:"]
        for name, option in self.options.items():
            flag = "--" + name.replace("_", "-")
            value = option.default if option.default is not dataclasses.MISSING else None
            default = "" if value in (None, False, "") else f" (default: {value})"
            lines.append(f"  {flag:<{width}} {option.metadata.get('help', '')}{default}")
        own = not self.config_cls.__module__.startswith("trl")
        if own or all_fields:
            lines += ["", f"{self.config_cls.__name__} fields (also keys of a recipe):"]
            for f in dataclasses.fields(self.config_cls):
                if not f.init:
                    continue
                help_text = " ".join(str(f.metadata.get("help", "")).split())
                if not own:
                    help_text = help_text.split(". ")[0][:110]
                default = f.default if f.default is not dataclasses.MISSING else None
                lines.append(f"  --{f.name:<{width - 2}} {help_text}" + (f" (default: {default})" if default not in (None, "") else ""))
        else:
            lines += ["", f"Any {self.config_cls.__name__} field is also accepted as --field value (--help-config lists "
                          f"all {len(self.fields)} with their help), e.g. --learning_rate 1e-6 --max_steps 450 "
                          "--report_to tensorboard."]
        lines += ["A YAML recipe passed with --config sets the same keys; flags override the recipe. Values follow the "
                  "type of the field they set (--save_strategy no is the string 'no')."]
        if self.example:
            lines += ["", "example:", f"  {self.example}"]
        return "\n".join(lines)

    def wants_help(self, argv: Sequence[str]) -> str | None:
        """The help text when argv asks for it (or is empty), else None."""
        if "--help-config" in argv:
            return self.help(all_fields=True)
        if not argv or "-h" in argv or "--help" in argv:
            return self.help()
        return None


def run_entry_point(cli: TrainerCLI, argv: Sequence[str] | None, setup: Callable[[list[str], Any], Any],
                    run: Callable[[Any, Any], int]) -> int:
    """The shape of every trainer's main(): --help, then `setup` (parse, env, pre-flight: its known
    errors print one red line and exit 2, before any model loads), then `run` (the work itself,
    whose errors keep their tracebacks)."""
    import sys

    from rich.console import Console

    from reasongym.registry import UnknownEnvError
    from trainers.common.preflight import PreflightError

    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(soft_wrap=True)
    if (text := cli.wants_help(argv)) is not None:
        print(text)
        return 0
    try:
        state = setup(argv, console)
    except (RecipeError, PreflightError, UnknownEnvError, ValueError, TypeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    status = run(state, console)
    close_process_group()
    return status


def close_process_group() -> None:
    """After a run that ended normally, every rank meets once more and tears the process group down. Left
    to interpreter exit, gloo's threads can abort a rank ('terminate called without an active exception',
    SIGABRT after the model was saved: seen once in CI under ZeRO-3 on CPU)."""
    import sys

    dist = sys.modules.get("torch.distributed")  # only a run that imported torch can have a process group
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def open_env(options: CommonOptions, console: Any):
    """The env the parsed options name (sample-data fallback, errors as RecipeError). An env whose scorer
    runs model text as code, made without allow_unsafe_scoring, stops here: before any model loads."""
    from reasongym.envargs import import_env_modules, make_env
    from reasongym.errors import UnsafeScoringRefused
    from reasongym.scoring import require_safe_scoring
    from rich.markup import escape

    try:
        import_env_modules(options.import_modules)
        env = make_env(str(options.env), options.env_kwargs, options.reward_mode,
                       warn=lambda message: console.print(f"[yellow]{escape(message)}[/]"))
        require_safe_scoring(env)
    except (EnvArgsError, UnsafeScoringRefused) as exc:
        raise RecipeError(str(exc)) from None
    return env
