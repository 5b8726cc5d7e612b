"""Environment registry: `make("scienceworld")`, with nearest-name suggestions on a typo.

Adapters register lazily by module path so importing actrl does not start any simulator or
import optional packages (alfworld, web_agent_site). Three ways to name an environment, looked up
in this order: a shipped or `register()`ed name; a plugin's name from the `actrl.envs` entry-point
group (read at lookup time, `actrl.envs.plugins`); `package.module:ClassName` directly.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from actrl.envs.base import (
    EnvError,
    EnvUnavailableError,
    Observation,
    StepResult,
    Task,
    TextEnv,
    UnknownSplitError,
    UnknownTaskError,
)
from actrl.envs.plugins import PluginError, is_target, load_target, plugin_targets
from actrl.envs.util import check_kwargs

# name -> "module:ClassName"
_REGISTRY: dict[str, str] = {
    "scienceworld": "actrl.envs.scienceworld:ScienceWorldEnv",
    "textworld_express": "actrl.envs.textworld_express:TextWorldExpressEnv",
    "alfworld": "actrl.envs.alfworld:AlfWorldEnv",
    "alfworld_generated": "actrl.envs.alfworld_gen:AlfWorldGeneratedEnv",
    "webshop": "actrl.envs.webshop:WebShopEnv",
    "webshop_offline": "actrl.envs.webshop:WebShopOfflineEnv",
}
_SHIPPED = dict(_REGISTRY)  # imported directly: a missing optional package stays an ImportError


class UnknownEnvError(EnvError, ValueError):
    pass


def _targets() -> dict[str, tuple[str, str]]:
    """name -> (target, origin): shipped and registered names first, then plugins (plugins.py choice 1)."""
    out = {name: (target, f"environment '{name}'") for name, target in _REGISTRY.items()}
    for name, (target, dist) in plugin_targets().items():
        out.setdefault(name, (target, f"plugin '{name}' ({dist}, entry point {target})"))
    return out


def register(name: str, target: str) -> None:
    """Register an adapter as 'package.module:ClassName' under `name`."""
    _REGISTRY[name] = target


def names() -> list[str]:
    """Shipped, registered and installed plugin environments."""
    return sorted(_targets())


def resolve(name: str) -> tuple[str, str]:
    """(target 'module:ClassName', origin for messages) of a name; UnknownEnvError with the nearest name."""
    if is_target(name):
        return name, f"environment class '{name}'"
    targets = _targets()
    if name not in targets:
        near = difflib.get_close_matches(name, list(targets), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UnknownEnvError(f"unknown environment '{name}'{hint} (known: {', '.join(sorted(targets))}; "
                              "or name a class as package.module:ClassName)")
    return targets[name]


def env_class(name: str) -> type[TextEnv]:
    """The adapter class of a name; shipped adapters import directly, others are checked (plugins.py)."""
    target, origin = resolve(name)
    if _SHIPPED.get(name) == target:
        module, cls = target.split(":")
        return getattr(importlib.import_module(module), cls)
    return load_target(target, origin)


def make(name: str, **kwargs: Any) -> TextEnv:
    """Create environment `name` with adapter-specific keyword arguments."""
    cls = env_class(name)
    check_kwargs(name, cls, kwargs)  # an unknown key: named, with the nearest accepted one
    return cls(**kwargs)


__all__ = [
    "EnvError",
    "EnvUnavailableError",
    "Observation",
    "PluginError",
    "StepResult",
    "Task",
    "TextEnv",
    "UnknownEnvError",
    "UnknownSplitError",
    "UnknownTaskError",
    "env_class",
    "make",
    "names",
    "register",
    "resolve",
]
