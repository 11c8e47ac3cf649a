"""``[tool.migrate]`` in ``pyproject.toml``: a repository's defaults for ``migrate convert``.

Found as ruff finds ``[tool.ruff]``: walking up from the common parent of the paths given, the
nearest ``pyproject.toml`` with a ``[tool.migrate]`` table wins, and the walk stops at the root of
the repository (a folder holding ``.git``) or of the file system. Keys are the long option names
(``num-workers = 4``, ``use-gpu = false``, ``exclude = ["legacy/*"]``); an option given on the
command line wins over the file.

The keys are read off the command's click options, so a new option is configurable the day it
is added; only the per-invocation options in ``NOT_CONFIGURABLE`` are left out. An unknown key
or a value of the wrong type is a usage error (exit 2) naming the key and the file.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import click
from click.core import ParameterSource

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

#: Options that describe one invocation, not a repository's settings.
NOT_CONFIGURABLE = frozenset({"help", "output", "since"})


def common_parent(paths: Iterable[Path]) -> Path:
    """The deepest folder holding every path (a file counts as its folder)."""
    folders = [p if p.is_dir() else p.parent for p in (Path(os.path.abspath(p)) for p in paths)]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def find_pyproject(paths: Iterable[Path]) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``pyproject.toml`` above ``paths`` with a ``[tool.migrate]`` table, and that table."""
    start = common_parent(paths)
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            table = _migrate_table(candidate)
            if table is not None:
                return candidate, table
        if (folder / ".git").exists():
            return None
    return None


def _migrate_table(path: Path) -> dict[str, Any] | None:
    data = path.read_bytes()
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        if b"tool.migrate" in data:
            raise click.UsageError(f"cannot read {path}: {exc}") from None
        return None  # someone else's broken file; not ours to judge
    table = parsed.get("tool", {}).get("migrate")
    if table is not None and not isinstance(table, dict):
        raise click.UsageError(f"[tool.migrate] in {path} must be a table")
    return table


def configurable_options(command: click.Command) -> dict[str, click.Option]:
    """``{"num-workers": <the --num-workers option>, ...}``: every key ``[tool.migrate]`` accepts."""
    keys = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_CONFIGURABLE:
            continue
        long = [opt for opt in param.opts if opt.startswith("--")]
        if long:
            keys[long[0][2:]] = param
    return keys


def read_settings(command: click.Command, ctx: click.Context, table: dict[str, Any], path: Path) -> dict[str, Any]:
    """The table's values, checked and converted like command-line values, by parameter name."""
    options = configurable_options(command)
    settings = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        param = options.get(key)
        if param is None:
            known = ", ".join(sorted(options))
            raise click.UsageError(f"unknown key {raw_key!r} in [tool.migrate] of {path} (known keys: {known})")
        settings[param.name] = _convert(param, ctx, raw_key, value, path)
    return settings


def _convert(param: click.Option, ctx: click.Context, key: str, value: Any, path: Path) -> Any:
    def wrong(expected: str) -> click.UsageError:
        return click.UsageError(
            f"{key} in [tool.migrate] of {path} must be {expected}, not {type(value).__name__} {value!r}"
        )

    if param.multiple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise wrong("a list of strings")
        items = value
    elif isinstance(param.type, click.types.BoolParamType):
        if not isinstance(value, bool):
            raise wrong("true or false")
        items = [value]
    elif isinstance(param.type, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        items = [value]
    elif not isinstance(value, str):
        raise wrong("a string")
    else:
        items = [value]
    try:
        converted = [param.type.convert(item, param, ctx) for item in items]
    except click.BadParameter as exc:
        raise click.UsageError(f"{key} in [tool.migrate] of {path}: {exc.message}") from None
    return tuple(converted) if param.multiple else converted[0]


def project_defaults(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command's function (below its click options) to take defaults from ``[tool.migrate]``.

    Only parameters the command line left at their defaults are replaced.
    """

    @functools.wraps(function)
    def wrapper(**kwargs: Any) -> Any:
        ctx = click.get_current_context()
        found = find_pyproject(kwargs.get("paths") or ())
        if found is not None:
            path, table = found
            for name, value in read_settings(ctx.command, ctx, table, path).items():
                if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None):
                    kwargs[name] = value
        return function(**kwargs)

    return wrapper
