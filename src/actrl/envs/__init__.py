"""Environment registry: `make("scienceworld")`, with nearest-name suggestions on a typo.

Adapters register lazily by module path so importing actrl does not start any simulator or
import optional packages (alfworld, web_agent_site).
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

# name -> "module:ClassName"
_REGISTRY: dict[str, str] = {
    "scienceworld": "actrl.envs.scienceworld:ScienceWorldEnv",
    "textworld_express": "actrl.envs.textworld_express:TextWorldExpressEnv",
    "alfworld": "actrl.envs.alfworld:AlfWorldEnv",
    "alfworld_generated": "actrl.envs.alfworld_gen:AlfWorldGeneratedEnv",
    "webshop": "actrl.envs.webshop:WebShopEnv",
    "webshop_offline": "actrl.envs.webshop:WebShopOfflineEnv",
}


class UnknownEnvError(EnvError, ValueError):
    pass


def register(name: str, target: str) -> None:
    """Register an adapter as 'package.module:ClassName' under `name`."""
    _REGISTRY[name] = target


def names() -> list[str]:
    return sorted(_REGISTRY)


def env_class(name: str) -> type[TextEnv]:
    if name not in _REGISTRY:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UnknownEnvError(f"unknown environment '{name}'{hint} (known: {', '.join(names())})")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make(name: str, **kwargs: Any) -> TextEnv:
    """Create environment `name` with adapter-specific keyword arguments."""
    return env_class(name)(**kwargs)


__all__ = [
    "EnvError",
    "EnvUnavailableError",
    "Observation",
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
]
