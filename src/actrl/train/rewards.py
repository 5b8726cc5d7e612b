"""Verifiable rewards of the ACT stage (which action is better?) and the RL stage (next action).

Plain functions over dataset columns, in the shape TRL's `GRPOTrainer` calls them:
`f(prompts=..., completions=..., <dataset columns>..., log_metric=...) -> list[float]`. The function
name becomes TRL's `rewards/<name>/mean` metric; the stage metrics (`act/accuracy`, `rl/expert_match`,
...) are logged through TRL's `log_metric` hook when the trainer passes it.

    actrl train act --config configs/act.yaml --pairs runs/x/pairs.jsonl   # uses act_choice_reward
    actrl train rl --config configs/rl.yaml --experts runs/x/experts.jsonl  # uses rl_action_reward

Choices the paper left open:
1. The ACT reward is 1 for the expert action's position, 0 for the alternative's, -0.5 when the
   answer slot is missing or names both/neither option (the paper's format penalty). The reasoning
   in <think>...</think> is never scored.
2. The RL reward is 1 for the expert action (same `same_action` as the pair filter and next-action
   accuracy), 0.1 for another admissible action, 0 for anything else, -0.5 for a missing
   <action> tag. A state without recorded admissible actions can only earn 1, 0 or -0.5.
3. `pick_first_rate` is measured over parseable answers only (a format failure picks nothing).
4. `act_consistency_reward` (our addition against position collapse, ACT.md pitfalls): with both
   orders of a pair in the batch (`balance_orders`), the j-th completion of one order is paired with
   the j-th of the other, and each earns 1 only when both choose the expert action. A critic that
   answers by position earns 0 in every pair; for a position-only policy picking option 1 with
   probability p the expected reward is p(1 - p), highest at p = 0.5, so GRPO pulls it back to
   balance, whereas the plain reward's expected value (p + (1 - p)) / 2 is flat in p.
5. `position_penalty` (our addition, measured in docs/sweep.md): with it, a completion whose partner in
   the other order chose the same *position* (so one of the two followed the position, not the
   action) earns -position_penalty instead of 0. The plain consistency reward's pull back to
   balance, d/dp p(1 - p) = 1 - 2p, fades as a collapsed policy's groups all score 0 (zero std, no
   gradient); with penalty c the expected reward is p(1 - p) - c(p^2 + (1 - p)^2), and a policy
   leaning to one position is scored below one that answers content-consistently but wrongly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from actrl.data.critic import parse_choice
from actrl.data.prompts import parse_action, same_action

ACT_CORRECT, ACT_WRONG, FORMAT_PENALTY = 1.0, 0.0, -0.5
RL_EXPERT, RL_ADMISSIBLE, RL_OTHER = 1.0, 0.1, 0.0

Completion = str | Sequence[dict[str, Any]]


def completion_text(completion: Completion) -> str:
    """The generated text of a completion given as a string or as chat messages.

    >>> completion_text('<answer>1</answer>')
    '<answer>1</answer>'
    >>> completion_text([{'role': 'assistant', 'content': '<action>look</action>'}])
    '<action>look</action>'
    """
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _log(log_metric: Callable[[str, float], None] | None, metrics: dict[str, float]) -> None:
    # every metric is logged on every call (NaN when undefined): TRL gathers metric names across ranks
    if log_metric is not None:
        for name, value in metrics.items():
            log_metric(name, value)


def act_choice(
    completion: Completion, action_1: str | None = None, action_2: str | None = None, critic_answer: str = "number"
) -> int | None:
    """The critic's choice (1 or 2) in a completion; None when it is missing or ambiguous.

    >>> act_choice('<think>2 leads nowhere</think><answer>1</answer>')
    1
    """
    return parse_choice(completion_text(completion), action_1 or "", action_2 or "", critic_answer)


def _texts(completions: Sequence[Completion], reply_prefix: Sequence[str] | None) -> list[str]:
    """Completion texts with the prefilled reply start (PromptConfig.prefill) put back in front."""
    prefixes = reply_prefix if reply_prefix is not None else [""] * len(completions)
    return [p + completion_text(c) for p, c in zip(prefixes, completions, strict=True)]


def _act_choices(completions, action_1, action_2, reply_prefix, critic_answer=None) -> list[int | None]:
    n = len(completions)
    a1 = action_1 if action_1 is not None else [None] * n
    a2 = action_2 if action_2 is not None else [None] * n
    how = critic_answer if critic_answer is not None else ["number"] * n
    texts = _texts(completions, reply_prefix)
    return [act_choice(c, x, y, h) for c, x, y, h in zip(texts, a1, a2, how, strict=True)]


def _choice_metrics(choices: Sequence[int | None], expert_position: Sequence[int], rewards: Sequence[float]):
    parsed = [ch for ch in choices if ch is not None]
    return {
        "act/reward": _mean(rewards),
        "act/accuracy": _mean([float(ch == int(pos)) for ch, pos in zip(choices, expert_position, strict=True)]),
        "act/format_failure_rate": _mean([float(ch is None) for ch in choices]),
        "act/pick_first_rate": _mean([float(ch == 1) for ch in parsed]),
    }


def act_choice_reward(
    completions: Sequence[Completion],
    expert_position: Sequence[int],
    action_1: Sequence[str] | None = None,
    action_2: Sequence[str] | None = None,
    reply_prefix: Sequence[str] | None = None,
    critic_answer: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """ACT reward: 1 if the chosen option is the expert action, 0 if not, -0.5 if no parseable choice.

    action_1/action_2 (the options as shown) let an answer name the action text instead of its number;
    reply_prefix is the prefilled start of each reply ("<answer>") when the prompt had one;
    critic_answer is each row's asked answer format (PromptConfig.critic_answer; "number" if absent).

    >>> act_choice_reward(['<answer>2</answer>', '<answer>1</answer>', 'no idea', '<answer>open door</answer>'],
    ...                   expert_position=[2, 2, 2, 2], action_1=['go north'] * 4, action_2=['open door'] * 4)
    [1.0, 0.0, -0.5, 1.0]
    """
    choices = _act_choices(completions, action_1, action_2, reply_prefix, critic_answer)
    rewards = [
        FORMAT_PENALTY if ch is None else (ACT_CORRECT if ch == int(pos) else ACT_WRONG)
        for ch, pos in zip(choices, expert_position, strict=True)
    ]
    _log(kwargs.get("log_metric"), _choice_metrics(choices, expert_position, rewards))
    return rewards


def act_consistency_reward(
    completions: Sequence[Completion],
    expert_position: Sequence[int],
    pair_id: Sequence[str],
    action_1: Sequence[str] | None = None,
    action_2: Sequence[str] | None = None,
    reply_prefix: Sequence[str] | None = None,
    position_penalty: float = 0.0,
    critic_answer: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """ACT reward against position collapse: 1 only when a pair is judged right in both orders (choice 4).

    The batch must hold every pair in both orders with equally many completions each (TRL gives
    G per prompt; `balance_orders=true` keeps the two orders in one batch). The j-th completion of
    one order is scored together with the j-th of the other: 1 if both pick the expert action,
    0 otherwise (-position_penalty when both chose the same position, choice 5), -0.5 for its own
    missing or ambiguous answer.

    >>> act_consistency_reward(['<answer>1</answer>', '<answer>1</answer>', '<answer>2</answer>', '<answer>1</answer>'],
    ...                        expert_position=[1, 1, 2, 2], pair_id=['p', 'p', 'p', 'p'], position_penalty=0.5)
    [1.0, -0.5, 1.0, -0.5]
    """
    choices = _act_choices(completions, action_1, action_2, reply_prefix, critic_answer)
    correct = [ch == int(pos) for ch, pos in zip(choices, expert_position, strict=True)]
    rows: dict[tuple[str, int], list[int]] = {}
    for i, (pid, pos) in enumerate(zip(pair_id, expert_position, strict=True)):
        rows.setdefault((str(pid), int(pos)), []).append(i)
    rewards = [0.0] * len(choices)
    both = []
    for (pid, pos), mine in rows.items():
        other = rows.get((pid, 3 - pos))
        if other is None or len(other) != len(mine):
            raise ValueError(
                f"act_consistency_reward: pair {pid} has {len(mine)} completions with the expert as option {pos} "
                f"and {len(other or [])} with it as option {3 - pos}; it needs both orders in one batch "
                "(balance_orders=true, an even number of prompts per process)"
            )
        for i, j in zip(mine, other, strict=True):
            if choices[i] is None:
                rewards[i] = FORMAT_PENALTY
            elif correct[i] and correct[j]:
                rewards[i] = ACT_CORRECT
            else:
                rewards[i] = -position_penalty if choices[i] == choices[j] else ACT_WRONG
            if pos == 1:
                both.append(float(correct[i] and correct[j]))
    metrics = _choice_metrics(choices, expert_position, rewards)
    metrics["act/both_orders_accuracy"] = _mean(both)
    _log(kwargs.get("log_metric"), metrics)
    return rewards


def rl_action_reward(
    completions: Sequence[Completion],
    expert_action: Sequence[str],
    admissible: Sequence[Sequence[str] | None] | None = None,
    reply_prefix: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[float]:
    """RL reward: 1 for the expert action, 0.1 for another admissible one, 0 otherwise, -0.5 without a tag.

    reply_prefix is the prefilled start of each reply ("<action>") when the prompt had one.

    >>> rl_action_reward(['<action>Open Door</action>', '<action>look around</action>', '<action>fly</action>',
    ...                   'open door'], expert_action=['open door'] * 4,
    ...                  admissible=[['open door', 'look around']] * 4)
    [1.0, 0.1, 0.0, -0.5]
    """
    n = len(completions)
    allowed = admissible if admissible is not None else [None] * n
    actions = [parse_action(text) for text in _texts(completions, reply_prefix)]
    rewards, is_admissible = [], []
    for action, expert, ok in zip(actions, expert_action, allowed, strict=True):
        if action is None:
            rewards.append(FORMAT_PENALTY)
        elif same_action(action, expert):
            rewards.append(RL_EXPERT)
        elif ok and any(same_action(action, a) for a in ok):
            rewards.append(RL_ADMISSIBLE)
        else:
            rewards.append(RL_OTHER)
        if action is not None and ok:
            is_admissible.append(float(any(same_action(action, a) for a in ok)))
    _log(
        kwargs.get("log_metric"),
        {
            "rl/reward": _mean(rewards),
            "rl/expert_match": _mean([float(r == RL_EXPERT) for r in rewards]),
            "rl/format_failure_rate": _mean([float(a is None) for a in actions]),
            "rl/admissible_rate": _mean(is_admissible),
        },
    )
    return rewards
