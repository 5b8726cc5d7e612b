"""Contract tests of every TRL hook listed in actrl.train.trl_compat: each fails when TRL changes it.

The hooks run on a real GRPOTrainer (the tiny Llama, real critic rows); nothing is mocked. Hook 8
(`_use_triton`) has its numeric test in test_lm_head.py; hook 10 (`model.generate` rebound) in
test_generation.py (shared prefill gives the same completions).
"""

from __future__ import annotations

import inspect

import pytest
import torch
from train_support import PAIRS, SHORT_PROMPT_CFG

from actrl.config import ConfigError
from actrl.data.records import read_pairs
from actrl.train import trl_compat
from actrl.train.act import critic_rows
from actrl.train.grpo import ActGRPOTrainer, PairedRepeatSampler


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, tiny_model_dir):
    from datasets import Dataset
    from trl import GRPOConfig

    from actrl.train.rewards import act_choice_reward

    rows = critic_rows(read_pairs(PAIRS)[:4], SHORT_PROMPT_CFG, both_orders=True)
    args = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("grpo")), num_generations=2, per_device_train_batch_size=4,
                      use_cpu=True, bf16=False, report_to=[], gradient_checkpointing=False, max_completion_length=8,
                      seed=0)
    return ActGRPOTrainer(model=tiny_model_dir, reward_funcs=[act_choice_reward], args=args,
                          train_dataset=Dataset.from_list(rows), metric_prefix="act", balance_orders=True)


def test_check_trl_accepts_the_tested_range_and_refuses_others_in_one_line(monkeypatch):
    trl_compat.check_trl()  # the installed TRL
    trl_compat.check_trl("1.16.3")
    trl_compat.check_trl("1.16.1.dev0")
    monkeypatch.delenv(trl_compat.ALLOW_UNTESTED, raising=False)
    with pytest.raises(ConfigError, match=r"^trl 1\.17\.0 is untested: .*trl>=1\.16,<1\.17.*ACTRL_ALLOW_UNTESTED_TRL=1"):
        trl_compat.check_trl("1.17.0")
    monkeypatch.setenv(trl_compat.ALLOW_UNTESTED, "1")
    with pytest.warns(UserWarning, match=r"trl 0\.24\.0 is untested"):
        trl_compat.check_trl("0.24.0")


def test_pyproject_pins_the_tested_trl_range():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert f'"trl{trl_compat.TESTED_TRL}"' in text


def test_hook_1_paired_sampler_walks_trls_repeat_sampler_in_blocks_of_two():
    from trl.trainer.utils import RepeatSampler

    kwargs = dict(data_source=list(range(8)), mini_repeat_count=2, batch_size=4, repeat_count=2, seed=0)
    # unshuffled, blocks of two are TRL's own order: the subclass reads TRL's attributes as TRL does
    assert list(PairedRepeatSampler(shuffle=False, **kwargs)) == list(RepeatSampler(shuffle=False, **kwargs))
    shuffled = list(PairedRepeatSampler(shuffle=True, **kwargs))
    assert len(shuffled) == len(list(RepeatSampler(shuffle=True, **kwargs))) == 32
    rows = shuffled[::2]  # each row once per completion slot; a batch of 4 rows is two pairs in both orders
    assert all(a % 2 == 0 and b == a + 1 for a, b in zip(rows[::2], rows[1::2], strict=True))
    assert sorted(set(rows)) == list(range(8))


def test_hook_2_the_train_sampler_hook_hands_trl_the_paired_sampler(trainer):
    from trl import GRPOTrainer

    assert list(inspect.signature(GRPOTrainer._get_train_sampler).parameters) == ["self", "dataset"]
    sampler = trainer._get_train_sampler(trainer.train_dataset)
    assert isinstance(sampler, PairedRepeatSampler) and sampler.mini_repeat_count == 2


def test_hook_3_calculate_rewards_returns_the_gathered_rewards_per_function(trainer):
    from trl import GRPOTrainer

    assert list(inspect.signature(GRPOTrainer._calculate_rewards).parameters) == [
        "self", "inputs", "prompts", "completions", "completion_ids_list"]
    inputs = [trainer.train_dataset[i] for i in range(4)]
    answers = [f"<answer>{row['expert_position']}</answer>" for row in inputs[:2]] + ["<answer>3</answer>", "none"]
    completions = [[{"role": "assistant", "content": a}] for a in answers]
    ids = [trainer.processing_class(a, add_special_tokens=False)["input_ids"] for a in answers]
    rewards = trainer._calculate_rewards(inputs, [r["prompt"] for r in inputs], completions, ids)
    assert rewards.shape == (4, 1)
    assert rewards[:, 0].tolist() == [1.0, 1.0, -0.5, -0.5]  # right, right, no such option, no answer
    assert torch.equal(trainer._last_rewards, rewards)


def test_hooks_4_5_7_9_generation_output_metrics_and_logging(trainer):
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    class Keep(TrainerCallback):
        logs: list[dict] = []

        def on_log(self, args, state, control, logs=None, **kw):
            self.logs.append(dict(logs or {}))

    keep = Keep()
    trl_compat.first_callback(trainer, keep)  # hook 9
    assert trainer.callback_handler.callbacks[0] is keep

    trainer.model.train()
    inputs = [trainer.train_dataset[i] for i in (0, 0, 1, 1)]  # two prompts, G = 2 completions each
    out = trainer._generate_and_score_completions(inputs)  # hook 4
    merged = {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch"}
    assert merged <= set(out)
    for key, value in out.items():  # what _replace_groups merges: batch-first tensors, one row per completion
        if key != "num_items_in_batch" and isinstance(value, torch.Tensor):
            assert value.size(0) == 4, key
    assert int(out["num_items_in_batch"]) == int(out["completion_mask"].sum())

    pending = trl_compat.train_metrics(trainer)["act/frac_zero_std_groups"]  # hook 5
    assert len(pending) == 1 and pending[0] in (0.0, 0.5, 1.0)  # the share of the batch's two groups
    expected = pending[0]
    assert "log" in GRPOTrainer.__dict__  # hook 7: TRL's own log() exists and folds in pending metrics...
    trl_compat.log_evaluation(trainer, {"eval_x": 1.0})
    assert keep.logs[-1].get("eval_x") == 1.0 and "act/frac_zero_std_groups" not in keep.logs[-1]
    assert len(trl_compat.train_metrics(trainer)["act/frac_zero_std_groups"]) == 1  # ...which this one left alone
    trainer.log({"loss": 0.5})  # TRL's log: averages the pending metrics into the log, then clears them
    assert keep.logs[-1]["act/frac_zero_std_groups"] == expected and keep.logs[-1]["loss"] == 0.5
    assert not trl_compat.train_metrics(trainer)


def test_hook_6_stop_tokens_reach_the_generation_config_trl_generates_with(trainer):
    from transformers import GenerationConfig
    from trl import GRPOTrainer

    assert "generation_config=self.generation_config" in inspect.getsource(GRPOTrainer)
    before = list(trainer.eos_token_ids)
    trl_compat.add_stop_tokens(trainer, (before[0], 29))
    assert trainer.eos_token_ids == [*before, 29] and isinstance(trainer.generation_config, GenerationConfig)
    assert trainer.generation_config.eos_token_id == trainer.generation_kwargs["eos_token_id"] == [*before, 29]


def test_hook_8_trl_still_has_the_triton_switch():
    import trl.trainer.utils as trl_utils

    assert list(inspect.signature(trl_utils._use_triton).parameters) == ["device"]
    trl_compat.compact_lm_head(True)
    assert trl_utils._use_triton(torch.device("cpu")) is True


def test_hook_11_trls_vllm_generation_has_what_the_cpu_adapter_replaces():
    from trl.generation.vllm_generation import VLLMGeneration

    source = inspect.getsource(VLLMGeneration)
    assert callable(VLLMGeneration.sync_weights) and callable(VLLMGeneration._iter_named_params)
    assert "self.enable_sleep_mode" in source and "self.llm = LLM(" in source
