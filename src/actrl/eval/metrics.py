"""Episode metrics for agent evaluation: success, score, steps, invalid actions, and getting stuck.

Used by `actrl eval agent` (src/actrl/eval/rollouts.py) on the per-episode records it writes.

Definitions (the paper reports success rate and score; the rest are diagnostics it asks for):
1. success_rate: share of episodes with `won` (the benchmark's own success criterion).
2. mean_score: mean final episode score on the environment's 0-100 scale.
3. invalid_rate: invalid steps / all steps, pooled over episodes. A step is invalid when
   the completion had no <action> tag (format failure; the environment was not called) or the
   environment rejected the action (`StepResult.valid` False). Both parts are reported too.
4. stuck_rate: share of episodes that end stuck. An episode is *stuck* when it was not won and
   its last `window` steps (default 3) all carry the same parsed action (`same_action`), none of
   them changed the score (reward 0), and they all produced the same observation (after
   whitespace normalisation): the agent repeats an action that changes nothing until the episode
   ends -- the "Nothing happens." loop of IL agents. Format failures never count as a repeated
   action (they are measured by the format-failure rate).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from actrl.data.prompts import same_action

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def is_stuck(
    actions: Sequence[str | None],
    observations: Sequence[str],
    rewards: Sequence[float],
    won: bool,
    window: int = 3,
) -> bool:
    """True when a lost episode ends with `window` identical, ineffective, unchanging steps.

    `actions[i]` was taken at step i (None: no parseable action), `observations[i]` and
    `rewards[i]` are what it produced.

    >>> is_stuck(["go west", "open door", "open door", "open door"], ["a", "b", "b", "b"], [0, 0, 0, 0], False)
    True
    >>> is_stuck(["open door", "open door", "open door"], ["b", "b", "c"], [0, 0, 0], False)
    False
    """
    if window < 1:
        raise ValueError(f"window={window}: expected >= 1")
    if won or len(actions) < window:
        return False
    last_actions = actions[-window:]
    first = last_actions[0]
    if first is None or any(a is None or not same_action(a, first) for a in last_actions):
        return False
    if any(r != 0 for r in rewards[-window:]):
        return False
    return len({_norm(o) for o in observations[-window:]}) == 1


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def aggregate(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregates over per-episode records (as written by `evaluate_agent`), plus a per-task-name split."""
    steps = sum(e["steps"] for e in episodes)
    out: dict[str, Any] = {
        "episodes": len(episodes),
        "success_rate": _mean([float(e["won"]) for e in episodes]),
        "mean_score": _mean([e["score"] for e in episodes]),
        "mean_steps": _mean([e["steps"] for e in episodes]),
        "invalid_rate": (
            sum(e["format_failures"] + e["env_rejected"] for e in episodes) / steps if steps else math.nan
        ),
        "format_failure_rate": sum(e["format_failures"] for e in episodes) / steps if steps else math.nan,
        "env_rejected_rate": sum(e["env_rejected"] for e in episodes) / steps if steps else math.nan,
        "stuck_rate": _mean([float(e["stuck"]) for e in episodes]),
    }
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in episodes:
        by_name[e["task"]["name"]].append(e)
    out["by_task"] = {
        name: {
            "episodes": len(eps),
            "success_rate": _mean([float(e["won"]) for e in eps]),
            "mean_score": _mean([e["score"] for e in eps]),
        }
        for name, eps in sorted(by_name.items())
    }
    return out


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table; `columns` are (key, header). Rates (keys ending in _rate) print as %.

    >>> print(format_table([{"model": "m", "success_rate": 0.5}], [("model", "model"), ("success_rate", "success")]))
    model  success
    m        50.0%
    """
    def cell(key: str, value: Any) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "-"
        if key.endswith("_rate") and isinstance(value, float):
            return f"{100 * value:.1f}%"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    body = [[cell(k, r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip()]
    for b in body:
        cells = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(b, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
