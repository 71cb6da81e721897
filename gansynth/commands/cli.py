"""Console-script entry points, and the one way every command reports bad input.

Every command (``gansynth-train``, ``-generate``, ``-evaluate``, ``-make-dataset``, ``-demo``,
``-export``, ``-report``; ``train.py``/``generate.py`` at the top of the repository) composes the Hydra
configs shipped inside the package (``gansynth/conf``) and takes ``key=value`` overrides. The command
line is checked against the composed config before Hydra starts the job, so a mistyped key, a value of
the wrong kind or a missing group option ends in one line naming the nearest valid choice, before torch
is imported and before anything is written.
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.resources import files
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf

from gansynth.core.allocator import reuse_freed_memory
from gansynth.core.errors import GANSynthError

CONFIG_DIR = str(files("gansynth") / "conf")  # package data: found the same way in a checkout and in a wheel
# Keys whose consumer checks the value itself: Lightning takes 2, [0, 1] or "auto"; the Schedule and the
# learning rate one number or a list per stage.
ANY_KIND_KEYS = frozenset({"trainer.devices", "model.schedule.stable_images", "model.schedule.transition_images",
                           "model.optim.lr"})


class ConfigError(GANSynthError):
    """A command-line setting that names no key, has the wrong kind of value or picks a missing option."""


def fail(error: Exception) -> NoReturn:
    """Bad input ends the program with one clear line, not a traceback."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


@contextlib.contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn the project's errors into `fail`; Hydra's instantiate wraps what a constructor raised, so
    the project's error inside its wrapper counts too. Anything else is a bug and keeps its traceback."""
    try:
        yield
    except GANSynthError as error:
        fail(error)
    except InstantiationException as error:
        if not isinstance(error.__cause__, GANSynthError):
            raise
        fail(error.__cause__)


# ----------------------------------------------------------------------------------------------
# Checking settings against a config's defaults


def nearest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the choice most like name, or '' when none is close. Dotted keys whose
    last part matches exactly win (``stable_images`` -> ``model.schedule.stable_images``); among several
    (``samples.every_images``), the one most like the whole name (``callbacks.samples.every_images``)."""
    choices = list(choices)
    tail = name.rpartition(".")[2]
    same_tail = [c for c in choices if c.rpartition(".")[2] == tail]
    close = difflib.get_close_matches(name, same_tail, n=1, cutoff=0) or difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def flatten(tree: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted key, value) of a nested mapping, parents before their children."""
    for key, value in tree.items():
        yield f"{prefix}{key}", value
        if isinstance(value, Mapping):
            yield from flatten(value, f"{prefix}{key}.")


def _kind(value: Any) -> tuple[str, tuple[type, ...]] | None:
    """What a default's overrides must be (a name and the accepted types); None accepts anything:
    text, null and interpolations take any value, their consumers check it."""
    if isinstance(value, bool):
        return "true or false", (bool,)
    if isinstance(value, int):
        return "an integer", (int,)
    if isinstance(value, float):
        return "a number", (int, float)
    if isinstance(value, list):
        return "a list", (list,)
    if isinstance(value, Mapping):
        return "a mapping", (Mapping,)
    return None


def check_setting(defaults: Mapping, key: str, value: Any, other_names: Iterable[str] = (),
                  new_key_hint: str = "") -> None:
    """A dotted key must exist in defaults (a plain nested mapping), and its value must be of the
    default's kind (null always passes: it means "unset"). An unknown key is compared with the
    defaults' keys and other_names (such as config groups) for a suggestion."""
    node: Any = defaults
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            known = [*(k for k, _ in flatten(defaults)), *other_names]
            raise ConfigError(f"{key}: no such setting{nearest(key, known)}{new_key_hint}")
        node = node[part]
    kind = _kind(node)
    if kind is None or value is None or key in ANY_KIND_KEYS:
        return
    name, accepted = kind
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        raise ConfigError(f"{key}: expected {name} like the default {node!r}, got {value!r}")


# ----------------------------------------------------------------------------------------------
# Hydra commands


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    try:
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    except HydraException as error:
        raise ConfigError(_one_line(error)) from None


def compose_checked(config_name: str, overrides: Sequence[str], require_all: bool = True) -> None:
    """Compose the config Hydra will run; raise a ConfigError naming the first bad override.

    Group choices (``experiment=tiny``) are checked against the group's options; then every plain
    ``key=value`` against the config those choices compose (``+key`` adds a key, ``~key`` deletes one
    and are left to Hydra); last, with ``require_all``, keys left at ``???`` are reported as required.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise ConfigError(f"cannot parse the command line: {_one_line(error)}") from None
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        choices, settings = [], []
        for override in parsed:
            options = loader.get_group_options(override.key_or_group)
            (choices if options else settings).append(override)
            key, value = override.key_or_group, override.value()
            if options and not override.is_sweep_override() and value is not None and value not in options:
                raise ConfigError(f"{key}={value}: no such option{nearest(str(value), options)}; "
                                  f"{key} is one of {', '.join(options)}")
        defaults = OmegaConf.to_container(_compose(config_name, [o.input_line for o in choices]), resolve=False)
        for override in settings:
            if override.type == OverrideType.CHANGE and not override.is_sweep_override():
                key = override.key_or_group
                check_setting(defaults, key, override.value(), loader.list_groups(""),
                              f"; add a new key with +{key}=...")
        cfg = OmegaConf.to_container(_compose(config_name, overrides), resolve=False)
    missing = [key for key, value in flatten(cfg) if value == "???" and not key.startswith("hydra.")]
    if missing and require_all:
        raise ConfigError(f"{missing[0]} is required: add {missing[0]}=... to the command line")


def check_command_line(config_name: str, argv: Sequence[str]) -> None:
    """Check a Hydra command line before Hydra runs it. Hydra's other modes (sweeps, help, another
    config folder) keep Hydra's own checks; printing the config (``--cfg job``) needs no required key."""
    from hydra._internal.utils import get_args_parser  # Hydra's own parser: the same flags, the same overrides

    args = get_args_parser().parse_args(list(argv))
    if any((args.multirun, args.help, args.hydra_help, args.info, args.shell_completion, args.config_path,
            args.config_name, args.config_dir, args.experimental_rerun)):
        return
    compose_checked(config_name, args.overrides, require_all=not args.cfg)


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A command's config as Hydra composes it, for callers outside the console scripts (the demo,
    the report's evaluation, tests). Inside a running command Hydra is already set up on the same
    folder."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def command_groups(choices: Mapping[str, Any]) -> str:
    """The groups section of ``--help`` (``conf/hydra/help/command.yaml``): the groups this command's
    config composes (``hydra.runtime.choices``), each with its options, or nothing when it has none."""
    loader = GlobalHydra.instance().config_loader()
    lines = [f"{group}: {', '.join(loader.get_group_options(group))}"
             for group in sorted(choices) if group.partition("/")[0] != "hydra"]
    if not lines:
        return ""
    return "\n".join(["== Configuration groups ==", "Compose your configuration from those groups (group=option)",
                      "", *lines, ""])


OmegaConf.register_new_resolver("command_groups", command_groups)


def hydra_command(config_name: str, target: str) -> Callable[[], None]:
    """The console script of one command: its command line checked against ``conf/<config_name>.yaml``,
    then Hydra runs ``target`` (``module:function``, imported only then) on the composed config."""

    module, _, function = target.partition(":")

    def job(cfg: DictConfig) -> None:
        with bad_input_exits():
            getattr(importlib.import_module(module), function)(cfg)

    job.__module__ = module  # Hydra names the job (``--help``, ``hydra.job.name``) after the task's module
    job = hydra.main(config_path=CONFIG_DIR, config_name=config_name, version_base="1.3")(job)

    def main() -> None:
        with bad_input_exits():
            check_command_line(config_name, sys.argv[1:])
        reuse_freed_memory()  # every command renders or trains batch after batch of equal-sized maps
        job()

    main.__doc__ = f"Runs {target} on the config {config_name}."
    return main


train = hydra_command("train", "gansynth.commands.train:main")
generate = hydra_command("generate", "gansynth.commands.generate:run_generate")
evaluate = hydra_command("evaluate", "gansynth.commands.evaluate:run")
make_dataset = hydra_command("make_dataset", "gansynth.commands.make_dataset:run")
demo = hydra_command("demo", "gansynth.commands.demo:run")
export = hydra_command("export", "gansynth.commands.export:run_export")
report = hydra_command("report", "gansynth.commands.report:run_report")
