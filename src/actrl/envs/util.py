"""Small helpers shared by the environment adapters: the Java check and typed task-name errors."""

from __future__ import annotations

import difflib
import inspect
import json
import shutil
from typing import Any

from actrl.envs.base import EnvError, EnvUnavailableError, UnknownTaskError

GOLD_MARGIN = 10
"""steps beyond the expert (gold) path before an adapter's step limit ends an episode."""
JAVA_INSTALL = "install a Java runtime (>= 8), e.g. `apt-get install openjdk-17-jre-headless`, and put `java` on PATH"


def require_java(env_name: str) -> None:
    """Raise EnvUnavailableError when no `java` executable is on PATH (ScienceWorld and TWX need one)."""
    if shutil.which("java") is None:
        raise EnvUnavailableError(f"{env_name} needs the `java` runtime, which is not on PATH: {JAVA_INSTALL}")


def unknown_task(name: str, known: list[str], env_name: str, what: str = "task") -> UnknownTaskError:
    """UnknownTaskError for `name`, suggesting the nearest known name (difflib).

    >>> str(unknown_task("boill", ["boil", "melt"], "scienceworld"))
    "scienceworld: unknown task 'boill'; did you mean 'boil'?"
    """
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{near[0]}'?" if near else f"; known: {', '.join(known)}"
    return UnknownTaskError(f"{env_name}: unknown {what} '{name}'{hint}")


def java_ints(java_list: Any) -> list[int]:
    """A py4j Java list of integers, fetched in one call (iterating it costs one call per element)."""
    return [int(x) for x in json.loads(java_list.toString())]


def check_kwargs(env_name: str, cls: type, kwargs: dict[str, Any]) -> None:
    """An EnvError naming an unknown keyword argument of an adapter, its nearest accepted one, and all.

    >>> class Env:
    ...     def __init__(self, max_steps=None, simplifications=""): ...
    >>> check_kwargs("scienceworld", Env, {"max_stpes": 3})
    Traceback (most recent call last):
    actrl.envs.base.EnvError: scienceworld: unknown environment argument 'max_stpes'; did you mean 'max_steps'? (accepted: max_steps, simplifications)
    """
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in accepted:
            near = difflib.get_close_matches(key, accepted, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise EnvError(f"{env_name}: unknown environment argument '{key}'{hint} "
                           f"(accepted: {', '.join(accepted) or 'none'})")
