"""The one definition of "the same action", below every layer that compares actions.

The pair filter, the RL reward, next-action accuracy and the environment adapters (ALFWorld's
command matching, `actrl check-env`) all compare actions through `same_action`, so an expert
action and a policy's action match the same way everywhere. `actrl.data.prompts` re-exports both.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def normalize_action(action: str) -> str:
    """Canonical form for comparing actions: lower case, single spaces, no edge quotes/periods.

    >>> normalize_action('  Open  Door to Kitchen. ')
    'open door to kitchen'
    """
    a = _SPACE.sub(" ", action.strip().casefold())
    return a.strip(" .\"'`")


def same_action(a: str, b: str) -> bool:
    """The one definition of 'same action' (pair filter, RL reward, next-action accuracy).

    >>> same_action('go to Kitchen', ' GO TO kitchen.')
    True
    """
    return normalize_action(a) == normalize_action(b)
