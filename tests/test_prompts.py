"""Rendering states into prompts and parsing answers: the contract every stage relies on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actrl.actions import normalize_action
from actrl.data.critic import critic_messages, parse_choice
from actrl.data.prompts import (
    PromptConfig,
    action_completion,
    action_messages,
    cut_share,
    parse_action,
    same_action,
)
from actrl.data.records import State


def _state(n_history: int = 6) -> State:
    history = [(f"obs {i}", f"act {i}") for i in range(n_history)]
    return State("Boil water.", history, "You see a stove.", admissible=["look around", "open door"])


def test_history_window_shows_only_recent_steps_and_counts_the_rest():
    text = action_messages(_state(6), PromptConfig(history_window=2))[1]["content"]
    assert "act 5" in text and "act 4" in text and "act 3" not in text
    assert "(4 earlier steps not shown)" in text
    assert "History" not in action_messages(_state(0), PromptConfig())[1]["content"]


def test_admissible_actions_listed_only_when_asked():
    assert "open door" not in action_messages(_state(), PromptConfig())[1]["content"]
    assert "Admissible actions: look around, open door" in action_messages(_state(), PromptConfig(show_admissible=True))[1]["content"]


def test_long_observations_are_clipped():
    s = State("t", [], "x" * 5000)
    assert len(action_messages(s, PromptConfig(max_observation_chars=100))[1]["content"]) < 400


def test_cut_share_counts_states_with_a_shown_observation_over_the_limit():
    cfg = PromptConfig(history_window=1, max_observation_chars=20)
    long, short = "x" * 21, "y" * 20
    states = [
        State("t", [], short),  # nothing cut
        State("t", [], long),  # current observation cut
        State("t", [(long, "a"), (short, "b")], short),  # the long one is outside the window
        State("t", [(short, "a"), (long, "b")], short),  # history observation cut
    ]
    assert cut_share(states, cfg) == 0.5
    assert cut_share(states, PromptConfig(history_window=0, max_observation_chars=20)) == 0.25
    assert cut_share([], cfg) == 0.0


def test_thinking_switch_changes_the_instruction():
    off = action_messages(_state(), PromptConfig(thinking=False))[1]["content"]
    on = action_messages(_state(), PromptConfig(thinking=True))[1]["content"]
    assert "<think>" in on and "<think>" not in off


def test_critic_prompt_shows_both_actions_in_the_given_order():
    text = critic_messages(_state(), "go north", "open door", PromptConfig())[1]["content"]
    assert text.index("Action 1: go north") < text.index("Action 2: open door")


def test_critic_answer_by_number_keeps_the_original_instruction():
    # the default prompt text is what earlier runs trained on: changing it would silently change them
    text = critic_messages(_state(), "go north", "open door", PromptConfig())[1]["content"]
    assert text.endswith(
        "Which action is better? Answer with the number of the better action only, as <answer>1</answer> or <answer>2</answer>."
    )


@pytest.mark.parametrize("thinking", [False, True])
def test_critic_answer_by_action_asks_for_the_text_and_parses_to_the_same_choice(thinking):
    cfg = PromptConfig(critic_answer="action", thinking=thinking, prefill=True)
    messages = critic_messages(_state(), "go north", "open door", cfg)
    ask = messages[1]["content"]
    assert "copied exactly, as <answer>command</answer>" in ask and "<answer>1</answer>" not in ask
    assert (messages[-1] == {"role": "assistant", "content": "<answer>"}) is not thinking
    def choice(answer):
        return parse_choice(answer, "go north", "open door", critic_answer="action")

    assert choice("<answer>Open door</answer>") == 2 and choice("<answer>go north.</answer>") == 1
    assert choice("<answer>go</answer>") is None  # a partial copy names neither
    # asked for the text, a number is a format failure (the number format still accepts the text)
    assert choice("<answer>2</answer>") is None and choice("<answer>Action 1</answer>") is None
    assert parse_choice("<answer>open door</answer>", "go north", "open door") == 2


def test_unknown_critic_answer_is_refused():
    with pytest.raises(ValueError, match="critic_answer='letter': expected one of number, action"):
        PromptConfig(critic_answer="letter").validate()


def test_parse_action_tolerates_case_whitespace_and_reasoning():
    assert parse_action("<Action>  open   door </ACTION>") == "open door"
    assert parse_action("<think>maybe <action>x</action>?</think><action>look</action>") == "look"
    assert parse_action("<action>go west") == "go west"  # stopped before the closing tag


def test_parse_action_is_strict_about_a_missing_tag():
    assert parse_action("open door") is None
    assert parse_action("<action></action>") is None
    assert parse_action("<think>unfinished reasoning <action>x</action>") is None


def test_parse_choice_number_text_and_ambiguity():
    a1, a2 = "go north", "open door"
    assert parse_choice("<answer>1</answer>", a1, a2) == 1
    assert parse_choice("blah <answer> Action 2 </answer>", a1, a2) == 2
    assert parse_choice("<answer>Open Door.</answer>", a1, a2) == 2
    assert parse_choice("<answer>1 and 2</answer>", a1, a2) is None
    assert parse_choice("<answer>1: open door</answer>", a1, a2) is None
    assert parse_choice("Action 1 is better", a1, a2) is None
    assert parse_choice("<answer>3</answer>", a1, a2) is None


def test_action_completion_round_trips():
    assert parse_action(action_completion("take pot")) == "take pot"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20))
def test_same_action_ignores_case_and_spacing(word):
    assert same_action(f"  {word.upper()}  now", f"{word.lower()} now.")


@given(st.text(max_size=40))
def test_normalize_is_idempotent(text):
    assert normalize_action(normalize_action(text)) == normalize_action(text)


def test_doctests_of_prompts_and_actions_hold():
    import doctest

    from actrl import actions
    from actrl.data import prompts

    for module in (prompts, actions):
        assert doctest.testmod(module).failed == 0
