"""The RL stage: GRPO on next-action generation at expert states (the paper's "RL", after IL).

Single-step: the policy sees an expert state's action prompt and generates <action>...</action>;
`rl_action_reward` gives 1 for the expert action, 0.1 for another admissible action, -0.5 for a
missing tag. No environment rollouts during training. Starting from the IL checkpoint is
`model.name=<il output_dir>/final`.

    actrl train rl --config configs/rl.yaml --experts runs/x/experts.jsonl [key=value ...]

Choices the paper left open (GRPO knobs: see GRPOStageConfig; common ones: train/common.py):
1. The admissible column comes from the trajectories when the environment recorded it; states
   without it can only earn 1, 0 or -0.5.
2. Held-out states (whole tasks) are scored with the same reward at the end of training
   (`eval_rl/...` metrics), G samples each.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

from actrl.config import ConfigError
from actrl.data.prompts import action_rows
from actrl.train.common import (
    cut_note,
    drop_long,
    expert_splits,
    final_dir,
    load_policy,
    print_plan,
    run_trainer,
    trl_prompt,
    write_run_config,
)
from actrl.train.grpo import ActGRPOTrainer, GRPOStageConfig, closing_tag_token, grpo_args, grpo_plan
from actrl.train.metrics import attach
from actrl.train.rewards import rl_action_reward

CLOSING_TAG = "</action>"


@dataclass
class RLConfig(GRPOStageConfig):
    """The RL stage: GRPO on action prompts with the expert-match reward."""

    experts: str | None = None
    """expert trajectories JSONL (D_expert); `--experts` on the command line sets it."""


def train_rl(cfg: RLConfig, experts_path: str | None = None) -> Path:
    """Run the RL stage; returns output_dir/final (a finished stage is not retrained)."""
    from datasets import Dataset

    experts_path = experts_path or cfg.experts
    if not experts_path:
        raise ConfigError("the RL stage needs expert trajectories: --experts experts.jsonl (or experts: in the config)")
    final = final_dir(cfg)
    if final.exists():
        print(f"[actrl] rl: {final} exists; stage already finished")
        return final
    train_trajs, held_trajs = expert_splits(cfg, experts_path)
    write_run_config(cfg, "rl", {"experts": str(experts_path)})

    model, tok, peft_config = load_policy(cfg)
    thinking = cfg.prompt.thinking
    rows, longest = drop_long(
        action_rows(train_trajs, cfg.prompt), tok, cfg.max_prompt_length, thinking, "action prompts"
    )
    held = action_rows(held_trajs, cfg.prompt)
    if held:
        held = drop_long(held, tok, cfg.max_prompt_length, thinking, "held-out action prompts")[0]
    if len(rows) < cfg.prompts_per_step():
        raise ConfigError(
            f"{experts_path}: {len(rows)} training states, fewer than one step's {cfg.prompts_per_step()}; "
            "lower per_device_batch_size or add trajectories"
        )
    cut = cut_note([st for tr in train_trajs for _, st, _ in tr.states()], cfg.prompt)
    print_plan("rl", {**grpo_plan(cfg, len(rows), len(held), longest), "observations cut": cut})

    def dataset(rows: list[dict]) -> Dataset:
        out = []
        for r in rows:
            prompt, prefix = trl_prompt(r["prompt"], tok, thinking)
            out.append({"prompt": prompt, "reply_prefix": prefix, "expert_action": r["expert_action"],
                        "admissible": r["admissible"]})
        return Dataset.from_list(out)

    trainer = ActGRPOTrainer(
        model=model,
        reward_funcs=[rl_action_reward],
        args=grpo_args(cfg, tok, CLOSING_TAG),
        train_dataset=dataset(rows),
        eval_dataset=dataset(held) if held else None,
        processing_class=tok,
        peft_config=peft_config,
        metric_prefix="rl",
        zero_std_groups=cfg.zero_std_groups,
        max_resample_rounds=cfg.max_resample_rounds,
        stop_token_ids=(closing_tag_token(tok, CLOSING_TAG),) if cfg.stops_at_closing_tag() else (),
        share_prompt_prefill=cfg.share_prompt_prefill,
        vllm_kv_cache_gib=cfg.vllm_kv_cache_gib,
    )
    attach(trainer, cfg.output_dir, "rl")
    final = run_trainer(trainer, cfg, "rl", evaluate=bool(held))
    del trainer, model
    gc.collect()
    return final
