"""Agent evaluation (`actrl.eval.rollouts.evaluate_agent`) on the offline shop with the tiny model."""

from __future__ import annotations

import pytest

rollouts = pytest.importorskip("actrl.eval.rollouts", reason="the evaluation module is not in this checkout")


@pytest.mark.slow
def test_tiny_model_plays_the_offline_shop(tiny_model_dir, tmp_path):
    from actrl.envs import make
    from actrl.models.generation import HFGenerator, SamplingConfig

    env = make("webshop_offline")
    tasks = rollouts.select_tasks(env, "test", episodes=3)
    sampling = SamplingConfig(
        temperature=0.0, max_new_tokens=16, stop=["</action>"]
    )  # short answers: a fast test
    cfg = rollouts.EvalConfig(
        max_steps=3, workers=3, out_dir=str(tmp_path), model="tiny", sampling=sampling, progress=False
    )
    result = rollouts.evaluate_agent(HFGenerator.load(tiny_model_dir), "webshop_offline", tasks, cfg)
    agg = result.aggregates
    assert agg["episodes"] == 3 and [e["task"]["variation"] for e in result.episodes] == [0, 1, 2]
    rates = {k: v for k, v in agg.items() if k.endswith("_rate")}
    assert agg["success_rate"] == 0.0 and rates and all(0.0 <= v <= 1.0 for v in rates.values())
    assert all(1 <= e["steps"] <= 3 for e in result.episodes)
    assert (tmp_path / "test.episodes.jsonl").read_text().count("\n") == 3
