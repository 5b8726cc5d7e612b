"""Next-action accuracy end to end: real TextWorldExpress expert trajectories, the tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actrl.cli import main
from actrl.config import ConfigError
from actrl.data.prompts import PromptConfig
from actrl.data.records import read_trajectories
from actrl.eval.next_action import NextActionConfig, evaluate_next_action, expert_states, next_action_accuracy
from actrl.models.generation import HFGenerator
from actrl.models.loading import ModelConfig

TWX_EXPERTS = Path(__file__).parent / "data" / "twx_coin_experts.jsonl"


@pytest.fixture(scope="module")
def experts(tmp_path_factory) -> str:
    """Held-out expert trajectories written by `actrl collect` (with admissible actions)."""
    path = tmp_path_factory.mktemp("experts") / "held_out.jsonl"
    argv = ["collect", "--env", "textworld_express", "--split", "dev", "--num", "3", "--tasks",
            "coin,sorting,arithmetic", "--record-admissible", "always", "--out", str(path), "--quiet"]
    assert main(argv) == 0
    return str(path)


def test_cli_tiny_model_scores_zero_with_format_failures_counted(experts, tiny_model_dir, tmp_path, capsys):
    n_states = len(expert_states(read_trajectories(experts)))
    out = tmp_path / "next_action.json"
    argv = ["eval", "next-action", "--model", tiny_model_dir, "--dtype", "float32", "--experts", experts,
            "--out", str(out), "--max-new-tokens", "6", "--batch-size", "4"]
    assert main(argv) == 0
    assert "accuracy" in capsys.readouterr().out
    result = json.loads(out.read_text())
    # the tied tiny model only ever answers newlines: no tag, so every state is wrong
    assert result["accuracy"] == 0.0 and result["format_failure_rate"] == 1.0
    assert result["admissible_rate"] == 0.0 and result["states_with_admissible"] == n_states == result["states"]
    predictions = out.with_name("next_action.predictions.jsonl")
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == n_states and not any(r["correct"] for r in rows)
    # a rerun reuses the predictions: same numbers, no new lines
    assert main(argv) == 0
    assert json.loads(out.read_text())["accuracy"] == 0.0
    assert len(predictions.read_text().splitlines()) == n_states
    # other decoding settings refuse to mix into the same predictions file
    assert main(argv[:-4] + ["--max-new-tokens", "7"]) == 2
    assert "other prompt/decoding settings" in capsys.readouterr().err


def test_accuracy_of_a_real_model_is_a_share_of_states(experts, varied_model_dir, tmp_path):
    gen = HFGenerator.load(ModelConfig(name=varied_model_dir, dtype="float32"))
    trajectories = read_trajectories(experts)
    m = next_action_accuracy(gen, experts, PromptConfig(), batch_size=8, progress=False)
    assert m["states"] == len(expert_states(trajectories))
    assert 0.0 <= m["accuracy"] <= 1.0 - m["format_failure_rate"]
    # chunked generation (the unit of resume) gives the same predictions as one call
    cfg = NextActionConfig(chunk_states=2)
    cfg.sampling.max_new_tokens = 48
    path = tmp_path / "p.jsonl"
    chunked = evaluate_next_action(gen, trajectories, cfg, path, progress=False)
    assert chunked == m
    few = NextActionConfig(max_states=2)
    assert evaluate_next_action(gen, trajectories, few, progress=False)["states"] == 2


def test_next_action_config_rejects_bad_values():
    from actrl.config import from_dict

    for bad, match in [({"sampling": {"n": 3}}, "sampling.n"), ({"chunk_states": 0}, "chunk_states"),
                       ({"max_state": 3}, "did you mean 'max_states'")]:
        with pytest.raises(ConfigError, match=match):
            from_dict(NextActionConfig, bad, "na.yaml")


class _RecordingGenerator(HFGenerator):
    """The real tiny-model generator, keeping each call's decoding settings."""

    seen: list[int]

    def generate(self, prompts, sampling, progress=False):
        self.seen.append(sampling.max_new_tokens)
        return super().generate(prompts, sampling, progress)


def test_a_thinking_recipe_gives_next_action_reasoning_room(tiny_model_dir, tmp_path):
    """pipeline next-action evaluation of a thinking recipe decodes 512 new tokens, not the non-thinking 48."""
    from actrl.pipeline import Recipe, _metrics_of

    experts = tmp_path / "heldout.jsonl"
    experts.write_text(TWX_EXPERTS.read_text().splitlines()[0] + "\n")  # one trajectory: a few states
    assert NextActionConfig.for_prompt(PromptConfig(thinking=False)).sampling.max_new_tokens == 48
    for thinking, limit in ((True, 512), (False, 48)):
        recipe = Recipe(prompt=PromptConfig(thinking=thinking))
        recipe.eval.pair_accuracy = recipe.eval.agent = False
        gen = _RecordingGenerator.load(ModelConfig(name=tiny_model_dir, dtype="float32"))
        gen.seen = []
        out = tmp_path / f"thinking-{thinking}"
        out.mkdir()
        metrics = _metrics_of(recipe, gen, tiny_model_dir, {"heldout_experts": experts}, out, None)
        assert set(gen.seen) == {limit} and metrics["action_format_failure_rate"] == 1.0
