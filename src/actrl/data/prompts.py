"""States -> chat messages, and model answers -> actions. How a state is shown to any prompt.

- the *action prompt* (IL, RL, evaluation): state -> "<action>...</action>", optionally after
  reasoning in <think>...</think>; built and parsed here;
- the *critic prompt* (ACT stage, held-out pair accuracy): state + Action 1 + Action 2 ->
  "<answer>1</answer>" or "<answer>2</answer>"; built and parsed in `actrl.data.critic` from the
  same state rendering (`render_state`), prefill (`prefilled`) and tag reader (`tag_content`).

`same_action` (defined in `actrl.actions`, re-exported here) is the single definition of "the same
action" shared by the pair filter, the RL reward and next-action accuracy.

Choices the paper left open:
1. History window: the last `history_window` (observation, action) pairs are shown (default 4),
   observations truncated to `max_observation_chars`; older steps are summarised as a count.
2. An opened but unclosed tag at the end of a completion (generation stopped at the stop string
   or the length limit) still counts; a completion with no opening tag is a format failure.
3. A critic answer naming both options, or neither, is a format failure (no parseable choice).
4. `prefill`: the prompt ends with an assistant turn already holding the opening tag; generators
   return that prefix plus the continuation (`actrl.models.generation.reply_prefix`), so every
   parser sees the whole answer.
5. `critic_answer`: the critic names its choice by number (default, "<answer>1</answer>"; the action
   text is accepted too) or by copying the chosen action's text ("<answer>open door</answer>"; then
   a bare number is a format failure, else a model asked for the text drifts back to numbers under
   RL: measured, docs/sweep.md); the paper only says the choice goes in a parseable slot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actrl.actions import same_action as same_action  # re-exported: stages compare actions through prompts
from actrl.data.records import State, Trajectory

Messages = list[dict[str, str]]
CRITIC_ANSWERS = ("number", "action")
_REPLY_TOKENS = {"action": 48, "critic": 32}  # the tag and a short answer, with room for a long action
_THINKING_REPLY_TOKENS = 512  # a <think> block, then the tag; the paper gives no limit


def reply_token_limit(thinking: bool, reply: str) -> int:
    """The default new-token limit of an `action` or `critic` reply: every stage and evaluation asks here.

    >>> reply_token_limit(False, "action"), reply_token_limit(False, "critic"), reply_token_limit(True, "action")
    (48, 32, 512)
    """
    if reply not in _REPLY_TOKENS:
        raise ValueError(f"reply={reply!r}: expected one of {', '.join(_REPLY_TOKENS)}")
    return _THINKING_REPLY_TOKENS if thinking else _REPLY_TOKENS[reply]


@dataclass
class PromptConfig:
    """How states are rendered into prompts (shared by every stage and the evaluator)."""

    history_window: int = 4
    """(observation, action) pairs of history shown; the paper says 'recent history' without a number."""
    max_observation_chars: int = 1200
    """observations are cut to this many characters (ScienceWorld 'look around' can be long)."""
    show_admissible: bool = False
    """list the admissible actions in the action prompt when the environment recorded them."""
    thinking: bool = False
    """ask for reasoning in <think>...</think> before the answer (the paper's 'thinking' mode)."""
    prefill: bool = False
    """start the assistant's reply with the opening answer tag (<action> / <answer>) so a small model
    only fills the slot (choice 4); ignored when thinking is on."""
    critic_answer: str = "number"
    """how the critic names its choice: 'number' (Action 1 / 2) or 'action' (the action's text; choice 5)."""

    def validate(self) -> None:
        if self.critic_answer not in CRITIC_ANSWERS:
            raise ValueError(f"critic_answer='{self.critic_answer}': expected one of {', '.join(CRITIC_ANSWERS)}")
        if self.history_window < 0:
            raise ValueError(f"history_window={self.history_window}: expected >= 0")
        if self.max_observation_chars < 20:
            raise ValueError(f"max_observation_chars={self.max_observation_chars}: expected >= 20")


ACTION_SYSTEM = (
    "You are an agent acting in a text environment. Read the task and the latest observation, "
    "then give exactly one next action as a command the environment understands."
)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def shown_observations(state: State, cfg: PromptConfig) -> list[str]:
    """The observations a rendered state shows: the history window's, then the current one."""
    history = state.history[-cfg.history_window :] if cfg.history_window else []
    return [obs for obs, _ in history] + [state.observation]


def cut_share(states: Iterable[State], cfg: PromptConfig) -> float:
    """Share of states whose prompt cuts an observation to `max_observation_chars`.

    A cut can hide what the expert acted on (TextWorldExpress lists the object to take last):
    with 300 characters, 23% of held-out twc/coin expert steps lost the expert action's object
    (docs/quality/observation-cut), so the stages print this share next to the limit.

    >>> cfg = PromptConfig(history_window=1, max_observation_chars=20)
    >>> cut_share([State("t", [("x" * 30, "a")], "short"), State("t", [], "short")], cfg)
    0.5
    """
    states = list(states)
    cut = sum(any(len(o.strip()) > cfg.max_observation_chars for o in shown_observations(s, cfg)) for s in states)
    return cut / len(states) if states else 0.0


def render_state(state: State, cfg: PromptConfig, with_admissible: bool | None = None) -> str:
    """The state as text: task, recent history, current observation (and admissible actions)."""
    lines = [f"Task: {state.task_description.strip()}"]
    history = state.history[-cfg.history_window :] if cfg.history_window else []
    skipped = len(state.history) - len(history)
    if state.history:
        lines.append("")
        lines.append("History:" + (f" ({skipped} earlier steps not shown)" if skipped else ""))
        for obs, act in history:
            lines.append(f"Observation: {_clip(obs, cfg.max_observation_chars)}")
            lines.append(f"Action: {act}")
    lines.append("")
    lines.append(f"Current observation: {_clip(state.observation, cfg.max_observation_chars)}")
    show = cfg.show_admissible if with_admissible is None else with_admissible
    if show and state.admissible:
        lines.append("")
        lines.append("Admissible actions: " + ", ".join(state.admissible))
    return "\n".join(lines)


def action_messages(state: State, cfg: PromptConfig) -> Messages:
    """Action prompt: the policy's next-action query (IL, RL, evaluation)."""
    if cfg.thinking:
        ask = "Think briefly inside <think>...</think>, then give the next action as <action>command</action>."
    else:
        ask = "Answer with the next action only, as <action>command</action>."
    messages = [
        {"role": "system", "content": ACTION_SYSTEM},
        {"role": "user", "content": render_state(state, cfg) + "\n\n" + ask},
    ]
    return prefilled(messages, "<action>", cfg)


def prefilled(messages: Messages, tag: str, cfg: PromptConfig) -> Messages:
    if cfg.prefill and not cfg.thinking:
        messages.append({"role": "assistant", "content": tag})
    return messages


def action_completion(action: str) -> str:
    """The target completion for IL: the expert action in the answer format."""
    return f"<action>{action}</action>"


def action_rows(trajs: list[Trajectory], prompt_cfg: PromptConfig) -> list[dict[str, Any]]:
    """One row per expert state: action prompt, expert action (as completion and as a column), admissible.

    The rows of the IL stage, the RL stage and Early Experience's expert half.
    """
    rows = []
    for traj in trajs:
        for t, state, expert in traj.states():
            rows.append(
                {
                    "prompt": action_messages(state, prompt_cfg),
                    "completion": [{"role": "assistant", "content": action_completion(expert)}],
                    "expert_action": expert,
                    "admissible": state.admissible or [],
                    "task_id": traj.task_id,
                    "t": t,
                }
            )
    return rows


# ----------------------------------------------------------------------------- parsing

_THINK = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def _strip_thinking(text: str) -> str:
    return _THINK.sub(" ", text)


def tag_content(text: str, tag: str) -> str | None:
    """Content of the first <tag>...</tag> outside reasoning; an unclosed tag runs to line end."""
    body = _strip_thinking(text)
    closed = re.search(rf"<\s*{tag}\s*>(.*?)<\s*/\s*{tag}\s*>", body, re.IGNORECASE | re.DOTALL)
    if closed:
        return closed.group(1)
    opened = re.search(rf"<\s*{tag}\s*>([^\n<]*)", body, re.IGNORECASE)
    return opened.group(1) if opened else None


def parse_action(text: str) -> str | None:
    """The action in <action>...</action> (after optional reasoning); None when the tag is missing.

    >>> parse_action('<think>the door</think> <ACTION> open door </action>')
    'open door'
    >>> parse_action('open door') is None
    True
    """
    inner = tag_content(text, "action")
    if inner is None:
        return None
    inner = _SPACE.sub(" ", inner).strip()
    return inner or None


_ACTION_TAG = re.compile(r"<\s*/?\s*action\s*>", re.IGNORECASE)


def bare_action(text: str) -> str:
    """An action as stored in a data file, with any <action> tags around it removed ('' if none is left).

    Pair files are checked through it: "<action>open door</action>" is the action "open door".

    >>> bare_action("<action> open door </action>"), bare_action("open door"), bare_action("<action></action>")
    ('open door', 'open door', '')
    """
    if _ACTION_TAG.search(text):
        return parse_action(text) or ""
    return _SPACE.sub(" ", text).strip()


