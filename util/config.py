"""YAML config loading with validation.

Every config in this project is a YAML mapping validated against a dataclass:
an unknown key, a missing required key or a value of the wrong type raises a
:class:`ConfigError` that names the key and the file.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from util.errors import UserError
from util.text import clip, short

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(UserError):
    """A config file is missing, malformed or holds an invalid value."""


MAX_SEED = 2**32 - 1  # seeds are what numpy and torch both accept


def check_seed(seed: int, name: str = "seed") -> None:
    """Raise ValueError naming ``name`` unless 0 <= seed <= MAX_SEED."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be between 0 and {MAX_SEED}, got {short(seed)}")


MAX_YAML_BYTES = 256 * 1024  # configs are a few hundred bytes; anything this large is not a config


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (``&a`` / ``*a``): no config needs them, and nested
    aliases (a "billion laughs" document) expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise _AliasError(f"YAML anchors and aliases (&name, *name) are not allowed (line {mark.line + 1}, "
                              f"column {mark.column + 1}); write the values out")
        return super().compose_node(parent, index)


class _AliasError(Exception):
    pass


def load_yaml_text(text: str, source: str) -> dict[str, Any]:
    """Parse YAML ``text`` (from ``source``, named in errors) that must hold a mapping.

    Anchors/aliases are refused and the document size is bounded (:data:`MAX_YAML_BYTES`), so a hostile
    file can neither expand in memory nor flood an error message. Raises :class:`ConfigError` (one line).
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source} is {len(text)} characters long; a config holds at most {MAX_YAML_BYTES}. "
                          "Is it really a config file?")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except _AliasError as e:
        raise ConfigError(f"{source}: {e}.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"Malformed YAML in {source}{where}: {clip(problem)}. Fix the syntax of this file.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {source} must hold a YAML mapping (key: value lines), "
                          f"got {type(data).__name__}.")
    return data


def load_yaml_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file that must hold a mapping (see :func:`load_yaml_text`); ConfigError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}. "
                          "Check the path (configs live in data/envs, data/agents and a1/).")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(f"{path} is {path.stat().st_size} bytes; a config holds at most {MAX_YAML_BYTES}. "
                              "Is it really a config file?")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {path} is not UTF-8 text. Is it really a YAML file?") from None
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path}: {e.strerror or e}.") from None
    return load_yaml_text(text, str(path))


# a scalar field's type → (the Python types its YAML value may have, what the error says it must be); a bool is
# never an int or a float, an integral float is an int, an int is a float
SCALARS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "true or false"), int: ((int,), "an integer"), float: ((int, float), "a number"),
    str: ((str,), "a string"),
}


def _check_type(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, key, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"Invalid value for '{key}' in {source}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Key '{key}' in {source} must be a list, got {short(value)}.")
        inner = args[0] if args else Any
        return [_check_type(v, inner, key, source) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"Key '{key}' in {source} must be a mapping, got {short(value)}.")
        return dict(value)
    if isinstance(tp, type) and tp in SCALARS:
        accepted, what = SCALARS[tp]
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, accepted) or (isinstance(value, bool) and tp is not bool):
            raise ConfigError(f"Key '{key}' in {source} must be {what}, got {short(value)}.")
        return float(value) if tp is float else value
    return value


def from_dict(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown/missing keys and bad types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        keys = (", ".join(short(str(k), 40) for k in unknown[:5])
                + (f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""))
        raise ConfigError(
            f"Unknown key{'s' if len(unknown) > 1 else ''} {keys} in {source}. "
            f"Allowed keys: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], name, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise ConfigError(f"Missing required key '{name}' in {source}.")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"Invalid config {source}: {e}") from None
    return obj


def load_config(cls: type[T], path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> T:
    """Load and validate a YAML config file into dataclass ``cls``."""
    data = load_yaml_file(path)
    if overrides:
        data.update(overrides)
    return from_dict(cls, data, str(path))
