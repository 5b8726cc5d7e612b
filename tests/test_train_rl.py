"""The RL stage on TRL's GRPOTrainer: next action at real TWX expert states, expert-match reward."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from train_support import EXPERTS, overrides, primed_model

from actrl.config import ConfigError, load_config
from actrl.train.metrics import read_metrics
from actrl.train.rl import RLConfig, train_rl

RL_KEYS = ("rl/reward", "rl/expert_match", "rl/format_failure_rate", "rl/frac_zero_std_groups")


def rl_config(tmp_path, model: str, **kw) -> RLConfig:
    base = dict(
        output_dir=tmp_path / "rl",
        **{"model.name": model, "model.dtype": "float32"},
        num_generations=4,
        per_device_batch_size=8,
        max_steps=2,
        save_steps=10,
        learning_rate=1e-3,
        eval_fraction=0.15,
    )
    return load_config(RLConfig, None, overrides(**{**base, **kw}))


def test_rl_stage_needs_experts(tmp_path):
    with pytest.raises(ConfigError, match="--experts"):
        train_rl(rl_config(tmp_path, "default"))


@pytest.mark.slow
def test_rl_stage_trains_two_steps_and_scores_held_out_states(tmp_path, tiny_model_dir):
    model = primed_model(tiny_model_dir)
    cfg = rl_config(tmp_path, model)
    final = train_rl(cfg, str(EXPERTS))
    before, after = load_file(f"{model}/model.safetensors"), load_file(final / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)

    metrics = read_metrics(cfg.output_dir)
    train = [m for m in metrics if "rl/reward" in m]
    assert [m["step"] for m in train] == [1, 2]
    for m in train:
        assert all(k in m for k in RL_KEYS)
        # reward = 1 x expert match + 0 x other actions - 0.5 x format failures, over the same completions
        assert math.isclose(m["rl/reward"], m["rl/expert_match"] - 0.5 * m["rl/format_failure_rate"], abs_tol=1e-6)
        assert math.isclose(m["rl/frac_zero_std_groups"], m["frac_reward_zero_std"], abs_tol=1e-6)
    held = [m for m in metrics if "eval_rl/expert_match" in m]
    assert len(held) == 1 and held[0]["eval_rl/expert_match"] == 0.0  # two steps teach no expert action
