"""The ACT stage on TRL's GRPOTrainer: real TWX critic pairs, the tiny model primed to answer in format."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from train_support import PAIRS, SHORT_PROMPT_CFG, overrides, primed_model

from actrl.config import ConfigError, load_config
from actrl.data.records import RecordError, read_jsonl, read_pairs
from actrl.train.act import ACTConfig, critic_rows, train_act
from actrl.train.grpo import ActGRPOTrainer, PairedRepeatSampler
from actrl.train.metrics import read_metrics

ACT_KEYS = ("act/reward", "act/accuracy", "act/format_failure_rate", "act/pick_first_rate", "act/frac_zero_std_groups")


@pytest.fixture(scope="module")
def primed(tiny_model_dir) -> str:
    return primed_model(tiny_model_dir)


def act_config(tmp_path, model: str, **kw) -> ACTConfig:
    base = dict(
        output_dir=tmp_path / "act",
        **{"model.name": model, "model.dtype": "float32"},
        num_generations=4,
        per_device_batch_size=8,
        max_steps=3,
        save_steps=10,
        learning_rate=1e-3,
        eval_fraction=0.25,
    )
    return load_config(ACTConfig, None, overrides(**{**base, **kw}))


def test_critic_rows_show_a_pair_in_both_orders_next_to_each_other():
    pairs = read_pairs(PAIRS)[:3]
    rows = critic_rows(pairs, SHORT_PROMPT_CFG, both_orders=True)
    assert len(rows) == 6
    for pair, first, second in zip(pairs, rows[::2], rows[1::2], strict=True):
        assert first["expert_position"] == pair.expert_position
        assert second["expert_position"] == 3 - pair.expert_position
        assert (first["action_1"], first["action_2"]) == (second["action_2"], second["action_1"])
        expert_shown = first["action_1"] if first["expert_position"] == 1 else first["action_2"]
        assert expert_shown == pair.expert_action
        assert f"Action 1: {first['action_1']}" in first["prompt"][-1]["content"]


def test_paired_sampler_keeps_both_orders_in_one_generation_batch():
    sampler = PairedRepeatSampler(list(range(20)), mini_repeat_count=4, batch_size=4, repeat_count=1, seed=3)
    order = list(sampler)
    assert len(order) == 20 * 4
    batches = [order[i : i + 16] for i in range(0, len(order), 16)]  # 4 prompts x G=4 per generation batch
    for batch in batches:
        prompts = sorted(set(batch))
        assert all(batch.count(p) == 4 for p in prompts)
        assert {p // 2 for p in prompts} == {p // 2 for p in prompts if p ^ 1 in prompts}  # partners together
    assert sorted(set(order)) == list(range(20))  # every row once per epoch
    assert order != sorted(order)  # shuffled


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"num_generations": 3}, "not a multiple of num_generations=3"),
        ({"balance_orders": True, "per_device_batch_size": 4}, "even number of prompts per step"),
        ({"num_generations": 1, "per_device_batch_size": 1}, "num_generations=1"),
        ({"zero_std_groups": "ignore"}, "expected one of"),
        ({"reward": "consistency"}, "set balance_orders=true"),
        ({"position_penalty": 0.5}, "position_penalty compares the two orders of a pair: set reward=consistency"),
        ({"position_penalty": -0.5}, "position_penalty=-0.5: expected >= 0"),
        ({"reward": "votes"}, r"reward: expected one of \['choice', 'consistency'\]"),
        ({"output_dir": ""}, "output_dir is required"),
    ],
)
def test_act_config_rejects_bad_values_with_the_fix(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        act_config(tmp_path, "default", **bad)


def test_consistency_reward_needs_both_orders_on_each_process(tmp_path, monkeypatch):
    # 2 processes x 3 prompts: even per step, but a pair could be split across the processes
    monkeypatch.setattr("actrl.train.grpo.world_size", lambda: 2)
    with pytest.raises(ConfigError, match="= 3 prompts, expected an even number"):
        act_config(tmp_path, "default", reward="consistency", balance_orders=True, per_device_batch_size=6,
                   num_generations=2)


def test_act_stage_needs_pairs(tmp_path):
    with pytest.raises(ConfigError, match="--pairs"):
        train_act(act_config(tmp_path, "default"))


@pytest.mark.slow
def test_act_stage_trains_logs_act_metrics_and_evaluates_pairs_before_and_after(tmp_path, primed):
    cfg = act_config(tmp_path, primed, balance_orders=True)
    final = train_act(cfg, str(PAIRS))

    assert (final / "model.safetensors").exists() and not (tmp_path / "act" / "final.tmp").exists()
    before, after = load_file(f"{primed}/model.safetensors"), load_file(final / "model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "GRPO steps did not change any parameter"

    logs = [m for m in read_metrics(cfg.output_dir) if "act/reward" in m]
    assert [m["step"] for m in logs] == [1, 2, 3]
    for m in logs:
        assert all(k in m for k in ACT_KEYS)
        # reward = 1 x accuracy + 0 x wrong - 0.5 x format failures, over the same completions
        assert math.isclose(m["act/reward"], m["act/accuracy"] - 0.5 * m["act/format_failure_rate"], abs_tol=1e-6)
        assert math.isclose(m["act/frac_zero_std_groups"], m["frac_reward_zero_std"], abs_tol=1e-6)
        assert m["act/loss"] == m["loss"]
    assert any(m["act/frac_zero_std_groups"] < 1 for m in logs), "no group ever had a reward signal"

    pair_eval = json.loads((tmp_path / "act" / "pair_eval.json").read_text())
    assert set(pair_eval) == {"before", "after"}
    for result in pair_eval.values():
        assert result["n"] == 29 and result["expert_first_share"] == 0.5 and result["format_failure_rate"] == 0.0
    # the primed critic always answers 2 (pick_first_rate 0): right in exactly one order of every pair
    before = pair_eval["before"]
    assert before["pick_first_rate"] == 0.0 and before["accuracy"] == 0.5 and before["both_orders_accuracy"] == 0.0
    assert pair_eval["after"]["model"] == str(final)
    answers = [json.loads(x) for x in (tmp_path / "act" / "pair_eval.before.predictions.jsonl").read_text().splitlines()]
    assert len(answers) == 2 * 29 and {a["choice"] for a in answers} == {2}
    assert (tmp_path / "act" / "pair_eval.after.predictions.jsonl").exists()

    # a finished stage is not retrained
    mtime = (final / "model.safetensors").stat().st_mtime
    assert train_act(cfg, str(PAIRS)) == final
    assert (final / "model.safetensors").stat().st_mtime == mtime


def test_zero_std_groups_are_replaced_group_wise_and_masked(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from trl import GRPOConfig

    from actrl.train.rewards import act_choice_reward

    rows = critic_rows(read_pairs(PAIRS)[:4], SHORT_PROMPT_CFG, both_orders=False)
    args = GRPOConfig(output_dir=str(tmp_path), num_generations=2, per_device_train_batch_size=4, use_cpu=True,
                      bf16=False, report_to=[], gradient_checkpointing=False)
    trainer = ActGRPOTrainer(model=tiny_model_dir, reward_funcs=[act_choice_reward], args=args,
                             train_dataset=Dataset.from_list(rows), metric_prefix="act", zero_std_groups="resample")
    # two groups of G=2; prompts left-padded, completions right-padded, as TRL returns them
    out = {
        "prompt_ids": torch.tensor([[0, 5, 6], [0, 5, 6], [7, 8, 9], [7, 8, 9]]),
        "prompt_mask": torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]),
        "completion_ids": torch.tensor([[1, 2], [1, 0], [3, 0], [3, 4]]),
        "completion_mask": torch.tensor([[1, 1], [1, 0], [1, 0], [1, 1]]),
        "advantages": torch.tensor([0.0, 0.0, 1.0, -1.0]),
        "num_items_in_batch": torch.tensor(6),
    }
    new = {
        "prompt_ids": torch.tensor([[0, 0, 0, 11], [0, 0, 0, 11], [12, 13, 14, 15], [12, 13, 14, 15]]),
        "prompt_mask": torch.tensor([[0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]),
        "completion_ids": torch.tensor([[21, 22, 23], [24, 0, 0], [25, 0, 0], [26, 0, 0]]),
        "completion_mask": torch.tensor([[1, 1, 1], [1, 0, 0], [1, 0, 0], [1, 0, 0]]),
        "advantages": torch.tensor([0.7, -0.7, 0.0, 0.0]),
        "num_items_in_batch": torch.tensor(6),
    }
    trainer._replace_groups(out, new, slots=[0], picks=[0])  # group 0 had zero std: take the new group 0
    assert out["prompt_ids"].tolist() == [[0, 0, 0, 11], [0, 0, 0, 11], [0, 7, 8, 9], [0, 7, 8, 9]]
    assert out["prompt_mask"].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 1, 1]]
    assert out["completion_ids"].tolist() == [[21, 22, 23], [24, 0, 0], [3, 0, 0], [3, 4, 0]]
    assert out["advantages"].tolist() == pytest.approx([0.7, -0.7, 1.0, -1.0])

    trainer._mask_groups(out, torch.tensor([False, True]))  # group 1 is left without signal: masked
    assert out["completion_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert int(out["num_items_in_batch"]) == 4


@pytest.mark.slow
def test_consistency_reward_trains_on_pairs_shown_in_both_orders(tmp_path, primed):
    cfg = act_config(tmp_path, primed, reward="consistency", balance_orders=True, max_steps=2, pair_eval=False,
                     zero_std_groups="resample", max_resample_rounds=1)
    train_act(cfg, str(PAIRS))
    logs = [m for m in read_metrics(cfg.output_dir) if "act/reward" in m]
    assert [m["step"] for m in logs] == [1, 2]
    for m in logs:
        assert 0 <= m["act/both_orders_accuracy"] <= m["act/accuracy"] + 1e-6  # both orders right <= either
        assert math.isclose(m["act/reward"], m["act/both_orders_accuracy"] - 0.5 * m["act/format_failure_rate"],
                            abs_tol=1e-6)


def test_resampled_groups_come_in_whole_pairs_when_orders_are_balanced(tmp_path, tiny_model_dir):
    from datasets import Dataset
    from trl import GRPOConfig

    from actrl.train.rewards import act_consistency_reward

    rows = critic_rows(read_pairs(PAIRS)[:6], SHORT_PROMPT_CFG, both_orders=True)
    args = GRPOConfig(output_dir=str(tmp_path), num_generations=2, per_device_train_batch_size=4, use_cpu=True,
                      bf16=False, report_to=[], gradient_checkpointing=False)
    trainer = ActGRPOTrainer(model=tiny_model_dir, reward_funcs=[act_consistency_reward], args=args,
                             train_dataset=Dataset.from_list(rows), metric_prefix="act", zero_std_groups="resample",
                             balance_orders=True)
    for _ in range(5):
        drawn = trainer._draw_batch(4)
        assert len(drawn) == 8  # 4 groups of G=2
        firsts = [r for i, r in enumerate(drawn) if i % 2 == 0]
        for a, b in zip(firsts[0::2], firsts[1::2], strict=True):
            assert a["pair_id"] == b["pair_id"] and {a["expert_position"], b["expert_position"]} == {1, 2}


@pytest.mark.slow
def test_resampling_replaces_zero_std_groups(tmp_path, primed):
    # G=2 at a low temperature: many groups answer alike, so resampling has work to do
    cfg = act_config(tmp_path, primed, zero_std_groups="resample", max_resample_rounds=2, max_steps=2,
                     num_generations=2, per_device_batch_size=4, temperature=0.3, pair_eval=False)
    train_act(cfg, str(PAIRS))
    logs = [m for m in read_metrics(cfg.output_dir) if "act/reward" in m]
    assert len(logs) == 2
    assert any(m["act/frac_zero_std_groups"] > 0 for m in logs), "no zero-std group to resample"
    for m in logs:
        assert 0 <= m["act/resample_rounds"] <= 2
        # resampling never leaves more zero-std groups than were drawn
        assert m["act/frac_groups_masked"] <= m["act/frac_zero_std_groups"] + 1e-6
        if m["act/frac_zero_std_groups"] > 0:
            assert m["act/resample_rounds"] >= 1


def test_cli_turns_bad_input_into_a_one_line_error(tmp_path, capsys):
    from actrl.cli import main

    assert main(["train", "act", "--pairs", str(PAIRS), f"output_dir={tmp_path}", "num_generation=4"]) == 2
    assert "unknown key 'num_generation'; did you mean 'num_generations'?" in capsys.readouterr().err
    assert main(["train", "act", "--pairs", str(tmp_path / "missing.jsonl"), f"output_dir={tmp_path}"]) == 2
    assert "missing.jsonl: no such data file" in capsys.readouterr().err
    assert main(["train", "rl", f"output_dir={tmp_path}"]) == 2
    assert "needs expert trajectories: --experts" in capsys.readouterr().err


@pytest.mark.slow
def test_lora_act_stage_saves_an_adapter_and_evaluates_it_on_a_held_out_file(tmp_path, primed):
    from actrl.data.records import write_jsonl

    pairs = read_pairs(PAIRS)
    heldout = tmp_path / "heldout.jsonl"
    write_jsonl(heldout, [p.to_dict() for p in pairs[:4]])
    cfg = act_config(tmp_path, primed, max_steps=1, heldout=heldout, **{"lora.enabled": True, "lora.r": 4})
    final = train_act(cfg, str(PAIRS))
    assert (final / "adapter_config.json").exists() and not (final / "model.safetensors").exists()
    pair_eval = json.loads((tmp_path / "act" / "pair_eval.json").read_text())
    assert pair_eval["before"]["n"] == pair_eval["after"]["n"] == 4
    assert pair_eval["after"]["model"] == str(final)


def test_position_collapse_is_flagged_and_logged_loudly(tmp_path, caplog):
    from transformers import TrainerControl, TrainerState

    from actrl.train.metrics import StageMetrics

    cb = StageMetrics(tmp_path, "act")
    state = TrainerState(global_step=7)
    for rate in (0.5, 0.95, 0.05):
        logs = {"act/pick_first_rate": rate, "loss": 0.1}
        with caplog.at_level("WARNING", logger="actrl.train"):
            cb.on_log(None, state, TrainerControl(), logs=logs)
        assert logs["act/position_collapse"] == (0.0 if rate == 0.5 else 1.0)
        assert logs["act/loss"] == 0.1
    assert caplog.text.count("POSITION COLLAPSE at step 7") == 2
    assert "consider balance_orders=true" in caplog.text
    assert [m["act/position_collapse"] for m in read_metrics(tmp_path)] == [0.0, 1.0, 1.0]
    assert "no gradient" not in caplog.text

    # collapsed with every group on one reward: the stage gets no gradient, and the warning says so
    caplog.clear()
    with caplog.at_level("WARNING", logger="actrl.train"):
        cb.on_log(None, TrainerState(global_step=8), TrainerControl(),
                  logs={"act/pick_first_rate": 1.0, "act/frac_zero_std_groups": 1.0})
        cb.on_log(None, TrainerState(global_step=9), TrainerControl(),
                  logs={"act/pick_first_rate": 0.5, "act/frac_zero_std_groups": 1.0})  # all right: no collapse
    assert caplog.text.count("POSITION COLLAPSE") == 1 and "no gradient" in caplog.text


def test_collapse_advice_does_not_suggest_what_the_stage_already_does():
    from actrl.train.act import collapse_advice

    assert collapse_advice(ACTConfig(balance_orders=False)) == "consider balance_orders=true"
    assert collapse_advice(ACTConfig(balance_orders=True, reward="choice")) == "consider reward=consistency"
    assert "train more epochs" in collapse_advice(ACTConfig(balance_orders=True, reward="consistency"))


def _completions(trainer, rows) -> list[list[int]]:
    """Sampled completion ids (up to the completion mask) for rows, G per row, through TRL's generation."""
    inputs = [r for r in rows for _ in range(trainer.num_generations)]
    out = trainer._generate_and_score_completions(inputs)
    return [ids[mask.bool()].tolist() for ids, mask in zip(out["completion_ids"], out["completion_mask"], strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [True, False])
def test_completions_end_at_the_closing_answer_tag_when_the_tag_is_prefilled(tmp_path, primed, stop):
    from datasets import Dataset

    from actrl.train.act import CLOSING_TAG, act_trainer
    from actrl.train.common import load_policy, trl_prompt
    from actrl.train.grpo import closing_tag_token

    cfg = act_config(tmp_path, primed, **{"prompt.prefill": True, "prompt.history_window": 0,
                                          "stop_at_closing_tag": stop, "max_completion_length": 12})
    assert cfg.stops_at_closing_tag() is stop
    model, tok, _ = load_policy(cfg)
    rows = critic_rows(read_pairs(PAIRS)[:2], cfg.prompt, both_orders=False)
    for row in rows:
        row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, False)
    assert rows[0]["reply_prefix"] == "<answer>"
    trainer = act_trainer(cfg, model, tok, None, Dataset.from_list(rows))
    gt = closing_tag_token(tok, CLOSING_TAG)
    assert tok.decode([gt]) == ">"
    assert (gt in trainer.eos_token_ids) is stop
    torch.manual_seed(0)
    completions = _completions(trainer, rows)
    tagged = [c for c in completions if gt in c]
    assert len(tagged) >= len(completions) // 2, "the primed model should close its answer tag"
    if stop:  # nothing sampled (or trained) after the tag
        assert all(c.index(gt) == len(c) - 1 for c in tagged)
    else:  # the model goes on after the tag (at least to its end-of-turn token)
        assert all(c.index(gt) < len(c) - 1 for c in tagged)


def test_stop_at_closing_tag_needs_a_prefilled_tag_and_no_reasoning(tmp_path):
    assert not act_config(tmp_path, "default").stops_at_closing_tag()  # default prompt: no prefill
    assert act_config(tmp_path, "default", **{"prompt.prefill": True}).stops_at_closing_tag()
    with pytest.raises(ConfigError, match="stop_at_closing_tag=true needs prompt.prefill=true"):
        act_config(tmp_path, "default", stop_at_closing_tag=True)
    with pytest.raises(ConfigError, match="stop_at_closing_tag=true needs"):
        act_config(tmp_path, "default", stop_at_closing_tag=True, **{"prompt.prefill": True, "prompt.thinking": True})


@pytest.mark.slow
def test_trl_generation_prefills_each_prompt_once_and_samples_what_plain_generation_samples(tmp_path, primed):
    """share_prompt_prefill (default): each group's prompt is prefilled once, its cache copied to G rows."""
    from datasets import Dataset

    from actrl.train.act import act_trainer
    from actrl.train.common import load_policy, trl_prompt

    rows = None
    completions = {}
    for share in (True, False):
        cfg = act_config(tmp_path / str(share), primed, **{"prompt.prefill": True, "share_prompt_prefill": share,
                                                           "max_completion_length": 12})
        model, tok, _ = load_policy(cfg)
        rows = critic_rows(read_pairs(PAIRS)[:3], cfg.prompt, both_orders=False)
        for row in rows:
            row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, False)
        trainer = act_trainer(cfg, model, tok, None, Dataset.from_list(rows))
        assert getattr(trainer.model.generate, "shares_prompt_prefill", False) is share
        shapes = []
        hook = trainer.model.model.register_forward_pre_hook(
            lambda m, a, kw, seen=shapes: seen.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
        torch.manual_seed(0)
        completions[share] = _completions(trainer, rows)
        hook.remove()
        # the prompts go through the model once (3 rows) with sharing, G times (12 rows) without
        prefilled = [rows_ for rows_, length in shapes if length > 1]
        assert prefilled == ([3] if share else [12])
    assert completions[True] == completions[False]
    assert len({tuple(c) for c in completions[True]}) > 1


@pytest.mark.slow
def test_select_on_keeps_the_best_checkpoint_by_validation_pair_accuracy(tmp_path, primed):
    """select_on: pair accuracy on validation pairs every save_steps; final/ is the best checkpoint."""
    pairs = read_pairs(PAIRS)
    tasks = sorted({p.task_id for p in pairs})
    select = tmp_path / "select_pairs.jsonl"
    select.write_text("".join(json.dumps(r) + "\n" for r in read_jsonl(PAIRS) if r["task_id"] in tasks[:2]))
    common = dict(balance_orders=True, max_steps=6, save_steps=2, pair_eval=False)
    cfg = act_config(tmp_path / "select", primed, select_on=str(select), **common)
    final = train_act(cfg, str(PAIRS))

    logs = read_metrics(cfg.output_dir)
    evals = {m["step"]: m for m in logs if "eval_pair_both_orders_accuracy" in m}
    assert sorted(evals) == [2, 4, 6]
    for m in evals.values():
        assert 0 <= m["eval_pair_both_orders_accuracy"] <= m["eval_pair_accuracy"] + 1e-9 <= 1 + 1e-9
        assert m["act/select_pair_accuracy"] == m["eval_pair_accuracy"] and m["eval_runtime"] > 0
    best_step = max(evals, key=lambda s: (evals[s]["eval_pair_both_orders_accuracy"], -s))  # first of the best
    stage = json.loads((final / "actrl_stage.json").read_text())
    assert stage["best_checkpoint"].endswith(f"checkpoint-{best_step}")
    assert stage["best_metric"] == evals[best_step]["eval_pair_both_orders_accuracy"]
    kept = load_file(f"{stage['best_checkpoint']}/model.safetensors")
    saved = load_file(final / "model.safetensors")
    assert all(torch.equal(kept[k], saved[k]) for k in saved)

    # the greedy evaluations do not move the training RNG: the same samples and rewards as without
    plain = act_config(tmp_path / "plain", primed, **common)
    train_act(plain, str(PAIRS))
    rewards = lambda out: [m["act/reward"] for m in read_metrics(out) if "act/reward" in m]  # noqa: E731
    assert rewards(cfg.output_dir) == rewards(plain.output_dir)


def test_select_on_names_a_missing_file(tmp_path, primed):
    cfg = act_config(tmp_path, primed, select_on=str(tmp_path / "nope.jsonl"), pair_eval=False)
    with pytest.raises(RecordError, match=r"nope.jsonl: no such file"):
        train_act(cfg, str(PAIRS))
