"""Third-party environments: the `actrl.envs` entry-point group and `package.module:ClassName` names.

A package makes its environment reachable from every `actrl` command by declaring, in its own
pyproject.toml (examples/fetch is a worked example),

    [project.entry-points."actrl.envs"]
    fetch = "actrl_fetch:FetchEnv"

after which `actrl check-env fetch`, `actrl collect --env fetch` and a recipe's `env: {name: fetch}`
find it. Without packaging, `--env package.module:ClassName` names the class directly (the module
must be importable). Entry points are read when an environment is looked up, never at import.

Choices:
1. A shipped environment or one added with `actrl.envs.register()` keeps its name: a plugin of the
   same name is not used (`plugin_targets` leaves it out; `actrl check-env` names what it resolved).
2. A target is loaded and checked in one place (`load_target`): an import failure, a module without
   the class, a non-class, a class missing protocol methods or not subclassing `TextEnv` each raise
   one `PluginError` naming the plugin and the fix, never a traceback from inside the package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect

from actrl.envs.base import EnvError, TextEnv

GROUP = "actrl.envs"
#: the methods every environment defines (envs/base.py); `close` and `versions` have defaults in TextEnv
PROTOCOL_METHODS = ("task_names", "tasks", "reset", "step", "admissible_actions", "expert_actions", "close")


class PluginError(EnvError):
    """A third-party environment cannot be loaded or does not implement the protocol."""


def is_target(name: str) -> bool:
    """'package.module:ClassName' (a direct reference) rather than a registered name.

    >>> is_target("actrl_fetch:FetchEnv"), is_target("scienceworld")
    (True, False)
    """
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr)


def plugin_targets() -> dict[str, tuple[str, str]]:
    """Entry points of the `actrl.envs` group: name -> (target, distribution that declares it)."""
    out = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else "?"
        out.setdefault(ep.name, (ep.value, dist))
    return out


def missing_methods(cls: type) -> list[str]:
    """Protocol methods `cls` does not define, or leaves abstract.

    >>> class Half(TextEnv):
    ...     name = "half"
    ...     def task_names(self): return []
    >>> missing_methods(Half)
    ['tasks', 'reset', 'step', 'admissible_actions', 'expert_actions']
    """
    abstract = getattr(cls, "__abstractmethods__", frozenset())
    return [m for m in PROTOCOL_METHODS if not callable(getattr(cls, m, None)) or m in abstract]


def load_target(target: str, origin: str) -> type[TextEnv]:
    """Import 'package.module:ClassName' and check it is a TextEnv class (choice 2).

    origin: how the user named it, for the message ("plugin 'fetch' (actrl-example-fetch)").
    """
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any error inside a third-party import is that plugin's, reported as one line
        raise PluginError(f"{origin}: importing '{module_name}' failed ({type(e).__name__}: {e}); "
                          "is its package installed in this environment (pip install -e <package dir>)?") from None
    cls = module
    for part in attr.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            raise PluginError(f"{origin}: module '{module_name}' has no '{attr}'; "
                              f"point the entry point at the environment class ('{module_name}:ClassName')")
    if not inspect.isclass(cls):
        raise PluginError(f"{origin}: '{target}' is a {type(cls).__name__}, not a class; point it at the environment class")
    missing = missing_methods(cls)
    if missing:
        raise PluginError(f"{origin}: {cls.__name__} does not implement the environment protocol: "
                          f"missing {', '.join(missing)} (see actrl/envs/base.py or docs/environments.md)")
    if not issubclass(cls, TextEnv):
        raise PluginError(f"{origin}: {cls.__name__} does not subclass actrl.envs.TextEnv; "
                          "subclass it (it supplies default_max_steps, cheap_admissible, versions() and close())")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise PluginError(f"{origin}: {cls.__name__} has no `name`; set the class attribute name = '...' (Task.env)")
    return cls


__all__ = ["GROUP", "PROTOCOL_METHODS", "PluginError", "is_target", "load_target", "missing_methods", "plugin_targets"]
