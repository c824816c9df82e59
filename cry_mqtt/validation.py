"""Typed, frozen settings from YAML: a dataclass built from a mapping with every key checked.

A dataclass's fields, type hints and :func:`ranged` bounds are its schema; :func:`build` rejects
unknown keys, wrong types and out-of-range values with a message that names the dotted key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(Exception):
    """The configuration file is missing, unparsable or invalid."""


def ranged(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A field with ``default`` whose value must lie within [``lo``, ``hi``]."""
    return field(default=default, metadata={"min": lo, "max": hi})


SECRET = {"secret": True}
"""Field metadata of a key whose value no message shows (a password, a command with a URL)."""


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (safe, UTF-8, a key given twice refused); any problem is a
    :class:`ConfigError` of one line naming the file, the line and the column."""
    try:
        return yaml.load(path.read_bytes().decode("utf-8-sig"), _Loader) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        before = exc.object[: exc.start]
        line, column = before.count(b"\n") + 1, exc.start - before.rfind(b"\n")
        raise ConfigError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
            "save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in a mapping (the last one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *defaults' is meant to be overridden
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


UNQUOTED_VALUES = {
    "*": "found undefined alias",
    "!": "could not determine a constructor for the tag",
}
"""YAML's words for an unquoted value that starts with ``*`` or ``!``, whose text they quote."""


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """One line: the file, the line and column of the problem, and what it is."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    for start, problem_text in UNQUOTED_VALUES.items():
        if problem.startswith(problem_text):
            problem = (
                f"{problem_text} (a value that starts with {start!r} must be quoted; not shown: "
                "it may be a password)"
            )
    context, begun = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and begun is not None and mark is not None and begun.line != mark.line:
        context += f" that began on line {begun.line + 1}"
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def build(cls: type, data: Any, prefix: str, base: Path) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating every key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'top level'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{prefix}{key}'{hint}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            key = prefix + f.name
            value = _convert(
                hints[f.name], data[f.name], key, base, f.metadata.get("secret", False)
            )
            _check_range(f, value, key)
            values[f.name] = value
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, base: Path, secret: bool = False) -> Any:
    """Check ``value`` against type ``hint`` and convert it (paths relative to the file);
    errors about a ``secret`` value name only its kind."""
    got = _KINDS.get(type(value), "another kind of value") if secret else repr(value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        options = tuple(o for o in options if o is not type(None))
        if len(options) == 1:
            return _convert(options[0], value, key, base, secret)
        errors = []
        for option in options:
            try:
                return _convert(option, value, key, base, secret)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise ConfigError(f"{key}: {' or '.join(errors)}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{key}: must be one of {', '.join(map(str, choices))} (got {value!r})"
            )
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list (got {got})")
        return [_convert(item, v, f"{key}[{i}]", base, secret) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key + ".", base)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: expected a path (got {got})")
        return base / Path(value).expanduser()
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (bool, int, float, str) and (
        not isinstance(value, hint) or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{key}: expected {_KINDS[hint]} (got {got})")
    if hint is float and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number (got {value})")
    return value


_KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing",
}


def _check_range(f: dataclasses.Field, value: Any, key: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if value is None or isinstance(value, str):
        return
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: must be >= {lo} (got {value})")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be <= {hi} (got {value})")
