"""Typed configs from YAML: one dataclass per stage, unknown keys are errors.

Every stage (collect, pairs, act, il, rl, eval, ...) declares a dataclass; `from_dict` builds it
from a YAML mapping, recursing into nested dataclasses, checking types, and naming the file and
the dotted field on any mistake. Command-line overrides are `key.sub=value` strings parsed as YAML
scalars, applied before validation so they get the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-5 (no dot) as a float, as YAML 1.2 and every user expects."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$"),
    list("-+0123456789."),
)


class ConfigError(ValueError):
    """A config value or key is wrong; the message names where and what was expected."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against annotation `tp`, converting the few safe cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(fields)}"
        raise ConfigError(f"{where}: unknown key '{key}'{hint}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
    try:
        obj = cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:  # at the top level the source (file, "options") already says where
            raise ConfigError(f"{where}: {e}" if where else str(e)) from None
    return obj


def from_dict(cls: type[T], data: dict[str, Any] | None, source: str = "") -> T:
    """Build config `cls` from a mapping; errors are prefixed with `source` (a file name)."""
    prefix = f"{source}: " if source else ""
    try:
        return _build(cls, dict(data or {}), "")
    except ConfigError as e:
        raise ConfigError(f"{prefix}{str(e).lstrip(': ')}") from None


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ['act.lr=1e-5', 'seed=3'] into a nested dict; values are YAML scalars."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key=value, e.g. act.learning_rate=1e-5")
        key, raw = item.split("=", 1)
        value = yaml.load(raw, Loader=_Loader) if raw != "" else ""
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """YAML file (optional) + overrides -> validated `cls` instance."""
    data = load_yaml(path) if path else {}
    data = deep_merge(data, parse_overrides(overrides or []))
    return from_dict(cls, data, str(path) if path else "options")


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict fit for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys where two nested mappings differ, as 'key: old -> new' (for mismatch errors).

    >>> differences({"max_steps": 50, "game": {"twc": 1, "coin": 2}}, {"max_steps": 7, "game": {"twc": 1, "coin": 3}})
    ['game.coin: 2 -> 3', 'max_steps: 50 -> 7']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{where}: (absent) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{where}: {old[key]!r} -> (absent)")
            else:
                out += differences(old[key], new[key], where)
        return out
    return [] if old == new else [f"{prefix or 'value'}: {old!r} -> {new!r}"]
