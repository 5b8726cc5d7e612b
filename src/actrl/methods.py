"""Method names of a recipe: a chain of stages written with arrows ('act -> il'), or 'prompt'.

The pipeline trains and evaluates methods; the report reads their evaluation directories
(`eval/<slug>/`) from run directories. Both name them through this leaf module, so neither
imports the other.
"""

from __future__ import annotations

PROMPT_METHOD = "prompt"
"""the untrained model: the prompting baseline (no stages)."""


def parse_method(method: str) -> list[str]:
    """'act -> il' -> ['act', 'il']; 'prompt' -> [].

    >>> parse_method("act -> il"), parse_method("prompt")
    (['act', 'il'], [])
    """
    if method.strip() == PROMPT_METHOD:
        return []
    return [s.strip() for s in method.split("->") if s.strip()]


def slug(method: str) -> str:
    """The directory name of a method's evaluation: 'act -> il' -> 'act_il'.

    >>> slug("act -> il"), slug("prompt")
    ('act_il', 'prompt')
    """
    return "_".join(parse_method(method)) or PROMPT_METHOD
