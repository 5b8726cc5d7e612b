"""The ACT and RL rewards: values, invariances (order swap, case, whitespace) and logged metrics."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actrl.train import rewards
from actrl.train.rewards import act_choice_reward, act_consistency_reward, completion_text, rl_action_reward

ACTIONS = st.sampled_from(
    ["open door to north", "move east", "take coin", "look around", "inventory", "close fridge", "move west"]
)
THINK = st.sampled_from(["", "<think>the coin is east</think>", "<think>answer 2? no: 1</think>\n"])


def answer_texts(a1: str, a2: str):
    """Every kind of critic answer: numbers, 'Action N', action text, both, none, junk."""
    return st.sampled_from(
        [
            "<answer>1</answer>",
            "<answer>2</answer>",
            "<answer>Action 1</answer>",
            "<answer> action 2 </answer>",
            f"<answer>{a1}</answer>",
            f"<answer>{a2.upper()}</answer>",
            "<answer>1 or 2</answer>",
            "<answer></answer>",
            "I think 1",
            "",
            "<answer>2",
        ]
    )


@st.composite
def critic_case(draw):
    a1, a2 = draw(ACTIONS), draw(ACTIONS)
    if a1 == a2:
        a2 = a2 + " quickly"
    text = draw(THINK) + draw(answer_texts(a1, a2))
    return text, a1, a2, draw(st.sampled_from([1, 2]))


def test_doctests_pass():
    assert doctest.testmod(rewards).failed == 0


@given(critic_case())
def test_act_reward_takes_only_the_three_values(case):
    text, a1, a2, pos = case
    [r] = act_choice_reward([text], [pos], [a1], [a2])
    assert r in (-0.5, 0.0, 1.0)


@given(critic_case())
def test_act_reward_survives_swapping_the_options_when_the_answer_names_the_action(case):
    text, a1, a2, pos = case
    # an answer naming an action's text means the same choice whichever slot it is shown in
    for named in (a1, a2):
        answer = f"<answer>{named}</answer>"
        [r] = act_choice_reward([answer], [pos], [a1], [a2])
        [r_swapped] = act_choice_reward([answer], [3 - pos], [a2], [a1])
        assert r == r_swapped == (1.0 if named == (a1 if pos == 1 else a2) else 0.0)


@given(critic_case())
def test_act_reward_of_a_number_follows_the_expert_position(case):
    text, a1, a2, pos = case
    [right] = act_choice_reward([f"<answer>{pos}</answer>"], [pos], [a1], [a2])
    [wrong] = act_choice_reward([f"<answer>{3 - pos}</answer>"], [pos], [a1], [a2])
    assert (right, wrong) == (1.0, 0.0)


def test_act_reward_penalises_missing_or_ambiguous_answers_only():
    got = act_choice_reward(
        ["<think>1</think>", "<answer>1 or 2</answer>", "<answer>both</answer>", "<think>x</think><answer>1</answer>"],
        [1, 1, 1, 1],
        ["go north"] * 4,
        ["open door"] * 4,
    )
    assert got == [-0.5, -0.5, -0.5, 1.0]


def test_act_reward_never_scores_the_reasoning():
    short = act_choice_reward(["<answer>2</answer>"], [2])
    long = act_choice_reward(["<think>" + "because the door is closed " * 50 + "</think><answer>2</answer>"], [2])
    assert short == long == [1.0]


def test_conversational_and_string_completions_get_the_same_reward():
    texts = ["<answer>1</answer>", "<answer>2</answer>", "nothing"]
    convo = [[{"role": "assistant", "content": t}] for t in texts]
    assert act_choice_reward(texts, [1, 1, 1]) == act_choice_reward(convo, [1, 1, 1]) == [1.0, 0.0, -0.5]
    assert completion_text(convo[0]) == texts[0]


@given(
    st.sampled_from(["open door to north", "take coin", "move east"]),
    st.sampled_from([str.upper, str.lower, str.title, lambda s: s]),
    st.sampled_from(["", " ", "  ", "\t"]),
    THINK,
)
def test_rl_reward_ignores_case_and_whitespace_of_the_action(expert, case, pad, think):
    spaced = pad + case(expert).replace(" ", " " + pad) + pad
    [r] = rl_action_reward([f"{think}<action>{spaced}</action>"], [expert], [["look around", expert]])
    assert r == 1.0


@given(ACTIONS, ACTIONS, st.lists(ACTIONS, max_size=4), THINK, st.booleans())
def test_rl_reward_takes_only_the_four_values(expert, said, admissible, think, tagged):
    text = think + (f"<action>{said}</action>" if tagged else said)
    [r] = rl_action_reward([text], [expert], [admissible])
    assert r in (-0.5, 0.0, 0.1, 1.0)
    if not tagged:
        assert r == -0.5
    elif said == expert:
        assert r == 1.0
    elif said in admissible:
        assert r == 0.1
    else:
        assert r == 0.0


def test_rl_reward_without_recorded_admissible_actions():
    assert rl_action_reward(["<action>look around</action>"], ["take coin"], [[]]) == [0.0]
    assert rl_action_reward(["<action>look around</action>"], ["take coin"]) == [0.0]


def test_act_metrics_are_logged_through_the_trainer_hook():
    logged: dict[str, float] = {}
    act_choice_reward(
        ["<answer>1</answer>", "<answer>1</answer>", "<answer>2</answer>", "junk"],
        [1, 2, 2, 1],
        log_metric=logged.__setitem__,
    )
    assert logged["act/accuracy"] == 0.5
    assert logged["act/format_failure_rate"] == 0.25
    assert math.isclose(logged["act/pick_first_rate"], 2 / 3)
    assert logged["act/reward"] == (1 + 0 + 1 - 0.5) / 4


def test_pick_first_rate_is_nan_when_nothing_parses():
    logged: dict[str, float] = {}
    act_choice_reward(["junk", "more junk"], [1, 2], log_metric=logged.__setitem__)
    assert math.isnan(logged["act/pick_first_rate"]) and logged["act/format_failure_rate"] == 1.0


def test_rl_metrics_are_logged_through_the_trainer_hook():
    logged: dict[str, float] = {}
    rl_action_reward(
        ["<action>take coin</action>", "<action>look around</action>", "<action>fly</action>", "take coin"],
        ["take coin"] * 4,
        [["take coin", "look around"]] * 4,
        log_metric=logged.__setitem__,
    )
    assert logged["rl/expert_match"] == 0.25
    assert logged["rl/format_failure_rate"] == 0.25
    assert math.isclose(logged["rl/admissible_rate"], 2 / 3)
    assert math.isclose(logged["rl/reward"], (1 + 0.1 + 0 - 0.5) / 4)


def test_prefilled_reply_start_is_put_back_before_parsing():
    # PromptConfig.prefill: the prompt already holds "<answer>" / "<action>", the completion continues it
    assert act_choice_reward(["2</answer>", "1</answer>"], [2, 2], reply_prefix=["<answer>"] * 2) == [1.0, 0.0]
    assert rl_action_reward(["Take Coin</action>"], ["take coin"], [["take coin"]], reply_prefix=["<action>"]) == [1.0]
    assert rl_action_reward(["take coin</action>"], ["take coin"], [["take coin"]], reply_prefix=[""]) == [-0.5]


def _both_orders(answers_a: list[str], answers_b: list[str], pair: str = "p") -> dict:
    """One pair, G completions with the expert as option 1 (order A), then G with it as option 2."""
    g = len(answers_a)
    return {
        "completions": [f"<answer>{a}</answer>" if a else "no answer" for a in answers_a + answers_b],
        "expert_position": [1] * g + [2] * g,
        "pair_id": [pair] * (2 * g),
    }


@given(st.lists(st.sampled_from(["1", "2"]), min_size=1, max_size=8))
def test_a_critic_answering_by_position_earns_nothing_from_the_consistency_reward(positions):
    # the same position in both orders, whatever the content: right in one order, wrong in the other
    assert act_consistency_reward(**_both_orders(positions, positions)) == [0.0] * (2 * len(positions))
    # the plain reward pays such a critic for every right guess
    plain = act_choice_reward(**_both_orders(positions, positions))
    assert sum(plain) == len(positions)


def test_consistency_reward_pays_only_a_pair_judged_right_in_both_orders():
    rewards = act_consistency_reward(**_both_orders(["1", "1", "2", ""], ["2", "1", "2", "2"]))
    # completion j of order A is scored with completion j of order B
    assert rewards == [1.0, 0.0, 0.0, -0.5, 1.0, 0.0, 0.0, 0.0]


def test_expected_consistency_reward_of_a_position_policy_peaks_at_balance():
    # a critic picking option 1 with probability p, independently of content: exact expectation over
    # both orders (A: expert first, B: expert second) is p (1 - p); the plain reward's is 1/2 for every p
    def expected(p: float, reward) -> float:
        total = 0.0
        for a, pa in (("1", p), ("2", 1 - p)):
            for b, pb in (("1", p), ("2", 1 - p)):
                total += pa * pb * sum(reward(**_both_orders([a], [b]))) / 2
        return total

    for p in (0.0, 0.1, 0.3, 0.5, 0.8, 1.0):
        assert expected(p, act_consistency_reward) == pytest.approx(p * (1 - p) / 1)
        assert expected(p, act_choice_reward) == pytest.approx(0.5)


def test_consistency_reward_needs_both_orders_in_the_batch():
    batch = _both_orders(["1", "2"], ["2", "2"])
    with pytest.raises(ValueError, match="pair p has 2 completions with the expert as option 1 and 0"):
        act_consistency_reward(completions=batch["completions"][:2], expert_position=[1, 1], pair_id=["p", "p"])
    with pytest.raises(ValueError, match="balance_orders=true"):
        act_consistency_reward(completions=batch["completions"][:3], expert_position=[1, 1, 2], pair_id=["p"] * 3)


def test_consistency_metrics_obey_the_reward_identity():
    logged: dict[str, float] = {}
    batch = _both_orders(["1", "2", "", "1"], ["2", "2", "1", ""])
    batch["completions"] += _both_orders(["1", "1"], ["2", "1"], pair="q")["completions"]
    batch["expert_position"] += [1, 1, 2, 2]
    batch["pair_id"] += ["q"] * 4
    r = act_consistency_reward(**batch, log_metric=logged.__setitem__)
    assert logged["act/both_orders_accuracy"] == pytest.approx(2 / 6)
    # mean reward = both-orders accuracy - 0.5 x format-failure rate, as the plain reward with accuracy
    assert sum(r) / len(r) == pytest.approx(logged["act/both_orders_accuracy"] - 0.5 * logged["act/format_failure_rate"])


def test_position_penalty_scores_a_position_following_answer_below_a_content_consistent_wrong_one():
    # partners: (1, 2) right in both orders; (1, 1) and (2, 2) same position; (2, 1) wrong in both, content-consistent
    rewards = act_consistency_reward(**_both_orders(["1", "1", "2", "2"], ["2", "1", "2", "1"]), position_penalty=0.5)
    assert rewards == [1.0, -0.5, -0.5, 0.0, 1.0, -0.5, -0.5, 0.0]
    assert act_consistency_reward(**_both_orders(["1", ""], ["1", "1"]), position_penalty=0.5) == [-0.5, -0.5, -0.5, 0.0]


@pytest.mark.parametrize("c", [0.25, 0.5, 1.0])
def test_expected_reward_with_position_penalty_peaks_at_balance_and_keeps_its_slope_at_collapse(c):
    def expected(p: float) -> float:
        total = 0.0
        for a, pa in (("1", p), ("2", 1 - p)):
            for b, pb in (("1", p), ("2", 1 - p)):
                total += pa * pb * sum(act_consistency_reward(**_both_orders([a], [b]), position_penalty=c)) / 2
        return total

    for p in (0.0, 0.2, 0.5, 0.9, 1.0):
        assert expected(p) == pytest.approx(p * (1 - p) - c * (p**2 + (1 - p) ** 2))
    assert max((expected(p / 10), p / 10) for p in range(11))[1] == 0.5
    # stepping back from collapse (p 1.0 -> 0.9) gains more than without the penalty (0.09)
    assert expected(0.9) - expected(1.0) > 0.09 and expected(0.1) - expected(0.0) > 0.09


def test_act_rewards_score_a_number_as_a_format_failure_when_the_action_text_was_asked():
    # the expert action is "open door" throughout: option 2 in rows 0-1, option 1 in rows 2-3
    answers = ["<answer>open door</answer>", "<answer>2</answer>", "<answer>open door</answer>", "<answer>1</answer>"]
    cols = dict(expert_position=[2, 2, 1, 1], pair_id=["p"] * 4,
                action_1=["go north", "go north", "open door", "open door"],
                action_2=["open door", "open door", "go north", "go north"])
    by_number = act_consistency_reward(answers, **cols, critic_answer=["number"] * 4)
    by_action = act_consistency_reward(answers, **cols, critic_answer=["action"] * 4)
    assert by_number == [1.0, 1.0, 1.0, 1.0]  # numbers and texts both parse there
    assert by_action == [1.0, -0.5, 1.0, -0.5]  # text answers right in both orders; numbers unparseable
    assert act_choice_reward(answers, **{k: v for k, v in cols.items() if k != "pair_id"},
                             critic_answer=["action"] * 4) == [1.0, -0.5, 1.0, -0.5]
