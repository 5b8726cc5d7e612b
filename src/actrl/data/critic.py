"""The critic question of ACT, in one place: option order, prompt, choice parser, decoding defaults.

At an expert state the critic sees the expert action and an alternative as "Action 1" and
"Action 2" and names the better one in <answer>...</answer>, optionally after reasoning in
<think>...</think>. The ACT stage (train.act), its reward (train.rewards), the held-out pair
evaluation (eval.pair_accuracy) and the reports all ask and parse it through this module:

- order: `CriticPair.shown(expert_position)` (the pair's own `expert_position` is its seeded,
  balanced order; `critic_question(pair, 3 - pair.expert_position, cfg)` asks the other order);
- prompt: `critic_messages` / `critic_question`, rendered with the action prompt's state view
  (`data.prompts.render_state`), so both prompts show the same history;
- parser: `parse_choice` (choices 3 and 5 of data.prompts);
- decoding: `critic_sampling` (greedy, stop at </answer>, `reply_token_limit(thinking, "critic")`).
"""

from __future__ import annotations

import re

from actrl.actions import normalize_action
from actrl.data.prompts import Messages, PromptConfig, prefilled, render_state, reply_token_limit, tag_content
from actrl.data.records import CriticPair, State
from actrl.models.generation import SamplingConfig

CRITIC_SYSTEM = (
    "You are an expert judge of agents acting in a text environment. Given the task, the recent "
    "history and two candidate next actions, decide which action is better for completing the task."
)


def critic_messages(state: State, action_1: str, action_2: str, cfg: PromptConfig) -> Messages:
    """Critic prompt of the ACT stage: which of two candidate actions is better?"""
    by_number = cfg.critic_answer == "number"
    if cfg.thinking:
        answer = (
            "the number of the better action as <answer>1</answer> or <answer>2</answer>"
            if by_number
            else "the better action, copied exactly, as <answer>command</answer>"
        )
        ask = f"Think about what each action would lead to inside <think>...</think>, then answer with {answer}."
    elif by_number:
        ask = "Answer with the number of the better action only, as <answer>1</answer> or <answer>2</answer>."
    else:
        ask = "Answer with the better action only, copied exactly, as <answer>command</answer>."
    body = render_state(state, cfg, with_admissible=False)
    body += f"\n\nAction 1: {action_1}\nAction 2: {action_2}\n\nWhich action is better? {ask}"
    messages = [{"role": "system", "content": CRITIC_SYSTEM}, {"role": "user", "content": body}]
    return prefilled(messages, "<answer>", cfg)



def parse_choice(text: str, action_1: str, action_2: str, critic_answer: str = "number") -> int | None:
    """1 or 2 from the critic's <answer> slot (a number, "Action N", or the action text); else None.

    With critic_answer="action" only the action text counts (choice 5).

    >>> parse_choice('<answer>2</answer>', 'go north', 'open door')
    2
    >>> parse_choice('<answer>Action 1</answer>', 'go north', 'open door')
    1
    >>> parse_choice('<answer>open door</answer>', 'go north', 'open door')
    2
    >>> parse_choice('<answer>1 or 2</answer>', 'go north', 'open door') is None
    True
    >>> parse_choice('<answer>2</answer>', 'go north', 'open door', critic_answer='action') is None
    True
    """
    inner = tag_content(text, "answer")
    if inner is None:
        return None
    ans = normalize_action(inner)
    numbers = set(re.findall(r"\b([12])\b", ans))
    if critic_answer == "number" and len(numbers) == 1 and re.fullmatch(r"(action|option)?\s*[12]\s*[:.)]?.*", ans):
        n = int(numbers.pop())
        rest = re.sub(r"^(action|option)?\s*[12]\s*[:.)]?\s*", "", ans)
        # "1: go north" is fine; "1: open door" (number and the other option's text) is ambiguous
        other = normalize_action(action_2 if n == 1 else action_1)
        if rest and rest == other and other != normalize_action(action_1 if n == 1 else action_2):
            return None
        return n
    if ans == normalize_action(action_1) and ans != normalize_action(action_2):
        return 1
    if ans == normalize_action(action_2) and ans != normalize_action(action_1):
        return 2
    return None


def critic_question(pair: CriticPair, expert_position: int, cfg: PromptConfig) -> Messages:
    """The critic prompt of `pair` with its expert action shown at `expert_position` (1 or 2)."""
    return critic_messages(pair.state, *pair.shown(expert_position), cfg)


def critic_sampling(thinking: bool = False) -> SamplingConfig:
    """Greedy; long enough for the answer tag (or for reasoning when thinking is on)."""
    return SamplingConfig(temperature=0.0, max_new_tokens=reply_token_limit(thinking, "critic"), stop=["</answer>"])
