"""The IL stage on TRL's SFTTrainer: real TWX expert trajectories, loss on the expert action only."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_support import EXPERTS, SHORT_PROMPT_CFG, overrides

from actrl.config import ConfigError, load_config
from actrl.data.prompts import action_rows
from actrl.data.records import read_trajectories, write_jsonl
from actrl.models.loading import load_model
from actrl.train.common import merge_lora
from actrl.train.il import ILConfig, train_il
from actrl.train.metrics import read_metrics


def il_config(tmp_path, model: str, name: str = "il", **kw) -> ILConfig:
    base = dict(
        output_dir=tmp_path / name,
        **{"model.name": model, "model.dtype": "float32"},
        per_device_batch_size=4,
        max_steps=10,
        save_steps=100,
        learning_rate=2e-3,
        eval_fraction=0,
    )
    return load_config(ILConfig, None, overrides(**{**base, **kw}))


def short_experts(tmp_path) -> str:
    """The four shortest real TWX trajectories (a small dataset the 10 steps repeat over)."""
    trajs = sorted(read_trajectories(EXPERTS), key=lambda t: len(t.steps))[:4]
    path = tmp_path / "experts.jsonl"
    write_jsonl(path, [t.to_dict() for t in trajs])
    return str(path)


def test_action_rows_pair_each_expert_state_with_its_expert_action():
    trajs = read_trajectories(EXPERTS)[:2]
    rows = action_rows(trajs, SHORT_PROMPT_CFG)
    assert len(rows) == sum(len(t.steps) for t in trajs)
    first = rows[0]
    assert first["completion"] == [{"role": "assistant", "content": f"<action>{trajs[0].steps[0].action}</action>"}]
    assert first["prompt"][-1]["role"] == "user" and "<action>command</action>" in first["prompt"][-1]["content"]
    assert first["admissible"] == trajs[0].steps[0].admissible


def test_il_stage_needs_experts(tmp_path):
    with pytest.raises(ConfigError, match="--experts"):
        train_il(il_config(tmp_path, "default"))


@pytest.mark.slow
def test_il_loss_decreases_over_ten_steps_on_a_small_repeated_dataset(tmp_path, tiny_model_dir):
    cfg = il_config(tmp_path, tiny_model_dir, learning_rate=5e-3)
    final = train_il(cfg, short_experts(tmp_path))
    losses = [m["il/loss"] for m in read_metrics(cfg.output_dir) if "il/loss" in m]
    assert len(losses) == 10
    # measured: from 10.8 (uniform over the 49k vocabulary) to about 8 in ten steps
    assert sum(losses[-3:]) / 3 < 0.85 * sum(losses[:3]) / 3, losses
    assert losses[-1] < losses[0] - 1.5, losses
    before, after = load_file(f"{tiny_model_dir}/model.safetensors"), load_file(final / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    stage = json.loads((final / "actrl_stage.json").read_text())
    assert stage == {"stage": "il", "global_step": 10, "processes": 1, "lora": False}


@pytest.mark.slow
def test_lora_il_saves_an_adapter_that_merges_for_the_next_stage(tmp_path, tiny_model_dir):
    cfg = il_config(tmp_path, tiny_model_dir, max_steps=2, eval_fraction=0.3, **{"lora.enabled": True, "lora.r": 4})
    final = train_il(cfg, str(EXPERTS))
    assert (final / "adapter_config.json").exists() and (final / "adapter_model.safetensors").exists()
    assert not (final / "model.safetensors").exists()
    evals = [m for m in read_metrics(cfg.output_dir) if "il/eval_loss" in m]
    assert len(evals) == 1 and evals[0]["il/eval_loss"] > 0

    merged = merge_lora(final, tmp_path / "merged")
    base, full = load_file(f"{tiny_model_dir}/model.safetensors"), load_file(merged / "model.safetensors")
    assert set(base) == set(full)
    assert any(not torch.equal(base[k], full[k].to(base[k].dtype)) for k in base)  # the adapter moved weights

    # the next stage starts from the LoRA checkpoint directly (merged on load) with a fresh adapter
    nxt = il_config(tmp_path, str(final), name="il2", max_steps=1, **{"lora.enabled": True, "lora.r": 4})
    final2 = train_il(nxt, str(EXPERTS))
    recorded = json.loads((final2 / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str(tmp_path / "il2" / "base")  # the base holds the first adapter, merged
    model, _ = load_model(str(final2))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_prefilled_prompts_reach_trl_as_text_that_continues_the_reply(tiny_model_dir):
    from actrl.data.prompts import PromptConfig, action_messages
    from actrl.models.loading import load_tokenizer
    from actrl.train.common import trl_prompt

    tok = load_tokenizer(tiny_model_dir)
    state = next(read_trajectories(EXPERTS)[0].states())[1]
    plain, prefix = trl_prompt(action_messages(state, SHORT_PROMPT_CFG), tok, thinking=False)
    assert isinstance(plain, list) and prefix == ""
    cfg = PromptConfig(history_window=0, max_observation_chars=40, prefill=True)
    text, prefix = trl_prompt(action_messages(state, cfg), tok, thinking=False)
    assert prefix == "<action>"
    assert text.endswith("<|im_start|>assistant\n<action>")  # the turn is continued, not closed
