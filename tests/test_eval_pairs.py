"""Held-out pair accuracy (actrl.eval.pair_accuracy): both orders, position bias, the tiny model end to end."""

from __future__ import annotations

import json

import pytest
from train_support import PAIRS, SHORT_PROMPT_CFG

from actrl.cli import main
from actrl.data.records import read_pairs
from actrl.eval.pair_accuracy import pair_accuracy
from actrl.models.generation import HFGenerator
from actrl.models.loading import ModelConfig


class ScriptedCritic:
    """Answers every critic prompt by a fixed rule on the two options it is shown (metric arithmetic only)."""

    def __init__(self, rule):
        self.rule = rule

    def generate(self, prompts, sampling, progress=False):
        outs = []
        for messages in prompts:
            text = messages[-1]["content"]
            a1 = text.split("Action 1: ")[1].split("\n")[0]
            a2 = text.split("Action 2: ")[1].split("\n")[0]
            outs.append([f"<answer>{self.rule(a1, a2)}</answer>"] * sampling.n)
        return outs


@pytest.fixture(scope="module")
def pairs():
    """Real TWX pairs, one per set of two options (so a scripted critic can tell them apart)."""
    unique = {frozenset((p.expert_action, p.alternative)): p for p in read_pairs(PAIRS)}
    return list(unique.values())[:12]


def test_a_position_only_critic_scores_half_and_never_both_orders(pairs):
    r = pair_accuracy(ScriptedCritic(lambda a1, a2: 1), pairs, SHORT_PROMPT_CFG)
    assert r["accuracy"] == 0.5 and r["pick_first_rate"] == 1.0 and r["expert_first_share"] == 0.5
    assert r["both_orders_accuracy"] == 0.0
    # on the recorded orders alone it looks as good as the share of expert-first pairs
    assert r["recorded_order_accuracy"] == pytest.approx(sum(p.expert_position == 1 for p in pairs) / len(pairs))


def test_a_content_critic_is_right_in_both_orders(pairs):
    expert_of = {frozenset((p.expert_action, p.alternative)): p.expert_action for p in pairs}
    assert len(expert_of) == len(pairs)  # every pair of options identifies its pair
    r = pair_accuracy(ScriptedCritic(lambda a1, a2: 1 if expert_of[frozenset((a1, a2))] == a1 else 2), pairs,
                      SHORT_PROMPT_CFG)
    assert r["accuracy"] == r["both_orders_accuracy"] == r["recorded_order_accuracy"] == 1.0
    assert r["pick_first_rate"] == 0.5


def test_predictions_hold_every_answer_in_both_orders(pairs, tmp_path):
    path = tmp_path / "pairs.predictions.jsonl"
    r = pair_accuracy(ScriptedCritic(lambda a1, a2: 1), pairs, SHORT_PROMPT_CFG, predictions_path=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2 * len(pairs) and not (tmp_path / "pairs.predictions.jsonl.tmp").exists()
    assert [r_["order"] for r_ in rows] == ["recorded"] * len(pairs) + ["swapped"] * len(pairs)
    first = {(x["pair_id"], x["order"]): x for x in rows}
    for p in pairs:
        rec, swp = first[(p.pair_id, "recorded")], first[(p.pair_id, "swapped")]
        assert rec["options"] == list(p.options) and swp["options"] == rec["options"][::-1]
        assert rec["expert_position"] == p.expert_position == 3 - swp["expert_position"]
        assert rec["choice"] == swp["choice"] == 1 and rec["answer"] == "<answer>1</answer>"
        assert rec["correct"] == (p.expert_position == 1) != swp["correct"]
    assert sum(x["correct"] for x in rows) / len(rows) == r["accuracy"] == 0.5


def test_recorded_order_only_keeps_the_old_question_set(pairs):
    r = pair_accuracy(ScriptedCritic(lambda a1, a2: 1), pairs, SHORT_PROMPT_CFG, both_orders=False)
    assert r["accuracy"] == pytest.approx(r["expert_first_share"])
    assert "both_orders_accuracy" not in r


def test_tiny_model_pair_accuracy_obeys_the_order_identities(tiny_model_dir, pairs, tmp_path, capsys):
    gen = HFGenerator.load(ModelConfig(name=tiny_model_dir, dtype="float32"))
    r = pair_accuracy(gen, pairs, SHORT_PROMPT_CFG)
    assert r["n"] == len(pairs) and r["expert_first_share"] == 0.5
    assert r["both_orders_accuracy"] <= r["recorded_order_accuracy"] + 1e-9
    # the tied tiny model answers newlines: no <answer>, so no choice and no first-pick rate
    assert r["format_failure_rate"] == 1.0 and r["accuracy"] == r["both_orders_accuracy"] == 0.0
    assert r["pick_first_rate"] is None

    out = tmp_path / "pairs.json"
    assert main(["eval", "pairs", "--model", tiny_model_dir, "--pairs", str(PAIRS), "--history-window", "0",
                 "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert {"accuracy", "both_orders_accuracy", "recorded_order_accuracy", "pick_first_rate"} <= set(saved)
