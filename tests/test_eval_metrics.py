"""Evaluation metrics without a model: stuck detection, aggregates, next-action accuracy, tables."""

from __future__ import annotations

import doctest
import math

import pytest

from actrl.eval import metrics, next_action
from actrl.eval.metrics import aggregate, format_table, is_stuck
from actrl.eval.next_action import next_action_metrics


def test_doctests_hold():
    for module in (metrics, next_action):
        assert doctest.testmod(module).failed == 0


NOTHING = "Nothing happens."


@pytest.mark.parametrize(
    "actions, observations, rewards, won, stuck",
    [
        # the IL failure mode: the same failed action, same answer, until the limit
        (["go to desk 1", "open drawer 1", "open drawer 1", "open drawer 1"], ["a", NOTHING, NOTHING, NOTHING], [0] * 4, False, True),
        # case, spacing and a final period do not make a different action (same_action)
        (["Open drawer 1", "open  drawer 1.", "open drawer 1"], [NOTHING] * 3, [0] * 3, False, True),
        # observation whitespace does not matter either
        (["look", "look", "look"], ["You see  a room.", "You see a room.\n", "You see a room."], [0] * 3, False, True),
        # only two repeats: not stuck with the default window of 3
        (["go north", "open drawer 1", "open drawer 1"], ["a", NOTHING, NOTHING], [0] * 3, False, False),
        # a different action in the window
        (["open drawer 1", "open drawer 2", "open drawer 1"], [NOTHING] * 3, [0] * 3, False, False),
        # the observation changes: repeating made progress (e.g. waiting, counting)
        (["wait", "wait", "wait"], ["t=1", "t=2", "t=3"], [0] * 3, False, False),
        # the score moved on the last repeat
        (["focus on bulb", "focus on bulb", "focus on bulb"], [NOTHING] * 3, [0, 0, 10], False, False),
        # won episodes are never stuck
        (["open door", "open door", "open door"], [NOTHING] * 3, [0] * 3, True, False),
        # format failures are not a repeated action
        ([None, None, None], ["not understood"] * 3, [0] * 3, False, False),
        (["open door", None, "open door"], [NOTHING] * 3, [0] * 3, False, False),
        # shorter than the window
        (["open door", "open door"], [NOTHING] * 2, [0] * 2, False, False),
        # repeats earlier in the episode but not at its end
        (["x", "x", "x", "go north"], [NOTHING] * 3 + ["hall"], [0] * 4, False, False),
    ],
)
def test_stuck_definition(actions, observations, rewards, won, stuck):
    assert is_stuck(actions, observations, rewards, won) is stuck


def test_stuck_window_is_configurable():
    actions, obs, rewards = ["a", "b", "b"], [NOTHING] * 3, [0] * 3
    assert is_stuck(actions, obs, rewards, False, window=2)
    assert not is_stuck(actions, obs, rewards, False, window=3)
    with pytest.raises(ValueError, match="window"):
        is_stuck(actions, obs, rewards, False, window=0)


def _episode(name, won, score, steps, fmt, rejected, stuck):
    return {"task": {"name": name}, "won": won, "score": score, "steps": steps,
            "format_failures": fmt, "env_rejected": rejected, "stuck": stuck}


def test_aggregate_numbers():
    eps = [
        _episode("coin", True, 100.0, 4, 0, 1, False),
        _episode("coin", False, 50.0, 10, 2, 3, True),
        _episode("sorting", False, 0.0, 6, 6, 0, False),
    ]
    agg = aggregate(eps)
    assert agg["episodes"] == 3
    assert agg["success_rate"] == pytest.approx(1 / 3)
    assert agg["mean_score"] == pytest.approx(50.0)
    assert agg["mean_steps"] == pytest.approx(20 / 3)
    assert agg["invalid_rate"] == pytest.approx(12 / 20)  # pooled over all 20 steps
    assert agg["format_failure_rate"] == pytest.approx(8 / 20)
    assert agg["env_rejected_rate"] == pytest.approx(4 / 20)
    assert agg["stuck_rate"] == pytest.approx(1 / 3)
    assert agg["by_task"]["coin"] == {"episodes": 2, "success_rate": 0.5, "mean_score": 75.0}
    assert agg["by_task"]["sorting"]["success_rate"] == 0.0
    assert math.isnan(aggregate([])["success_rate"])


def test_next_action_metrics_counts_format_failures_as_wrong():
    completions = [
        "<action>open door to kitchen</action>",  # right
        "<think>the door</think><action>Open Door To Kitchen.</action>",  # right after normalisation
        "<action>go north</action>",  # wrong but admissible
        "open door to kitchen",  # no tag: format failure, wrong
        "<action>eat the moon</action>",  # wrong, not admissible
    ]
    experts = ["open door to kitchen"] * 5
    admissible = [None, None, ["go north", "open door to kitchen"], ["open door to kitchen"], ["look around"]]
    m = next_action_metrics(completions, experts, admissible)
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["format_failure_rate"] == pytest.approx(1 / 5)
    assert m["admissible_rate"] == pytest.approx(1 / 3)  # over the 3 states with admissible lists
    assert (m["states"], m["states_with_admissible"]) == (5, 3)
    assert math.isnan(next_action_metrics(completions[:1], experts[:1], [None])["admissible_rate"])
    with pytest.raises(ValueError, match="same length"):
        next_action_metrics(completions, experts[:2], admissible)


def test_table_prints_rates_as_percent_and_nan_as_dash():
    text = format_table(
        [{"model": "il", "success_rate": 0.9143, "mean_score": 12.5, "stuck_rate": math.nan}],
        [("model", "model"), ("success_rate", "success"), ("mean_score", "score"), ("stuck_rate", "stuck")],
    )
    header, row = text.splitlines()
    assert header.split() == ["model", "success", "score", "stuck"]
    assert row.split() == ["il", "91.4%", "12.50", "-"]
