"""DPO on the critic pairs: the ACT stage's control that learns the preference without a choice task.

TRL's DPOTrainer on the action prompt of each pair's expert state, with chosen = the expert action
and rejected = the alternative, both as "<action>...</action>" (the paper's v2 control "ACT stage
replaced by DPO on (expert, alternative)", same pairs, matched epochs). As a recipe method:
`dpo -> il` beside `act -> il`.

    actrl run baselines-controls-twx       # methods: act -> il, dpo -> il, ...

Logged by TRL (also in metrics.jsonl): `dpo/loss`, `rewards/chosen`, `rewards/rejected`,
`rewards/accuracies` (share of pairs whose chosen implicit reward exceeds the rejected one),
`rewards/margins`, `logps/chosen`, `logps/rejected`; `eval_...` on held-out pairs at the end.

Choices the paper left open (common ones: train/common.py):
1. The prompt is the action prompt (the policy's own question), not the critic prompt: DPO
   shapes which action the policy generates, the closest preference analogue of the choice.
2. beta=0.1 and the sigmoid loss (TRL's defaults); learning rate 1e-6 (TRL's DPO default).
3. Reference model = the starting policy: a frozen copy for full fine-tuning, the adapter switched
   off under LoRA (TRL's behaviour).
4. Examples whose prompt + longer completion exceed `max_length` are dropped (with a count).
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from actrl.config import ConfigError
from actrl.data.prompts import PromptConfig, action_completion, action_messages
from actrl.data.records import CriticPair
from actrl.models.generation import chat_template_kwargs
from actrl.train.common import (
    StageConfig,
    final_dir,
    load_policy,
    pair_splits,
    print_plan,
    run_trainer,
    trainer_args,
    world_size,
)
from actrl.train.metrics import attach

STAGE = "dpo"


@dataclass
class DPOStageConfig(StageConfig):
    """DPO on (action prompt, chosen = expert action, rejected = alternative)."""

    pairs: str | None = None
    """critic pairs JSONL (D_critic), the ACT stage's; a recipe passes its pairs."""
    learning_rate: float = 1e-6
    """TRL's DPO default (choice 2)."""
    beta: float = 0.1
    """DPO's beta: how far the policy may move from the reference (choice 2)."""
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    max_length: int = 2048
    """prompt + completion tokens (choice 4)."""

    def validate(self) -> None:
        super().validate()
        if self.beta <= 0:
            raise ValueError(f"beta={self.beta}: expected > 0")


def preference_rows(pairs: list[CriticPair], prompt_cfg: PromptConfig) -> list[dict[str, Any]]:
    """One row per pair: action prompt, chosen = expert action, rejected = alternative (conversational)."""
    return [
        {
            "prompt": action_messages(p.state, prompt_cfg),
            "chosen": [{"role": "assistant", "content": action_completion(p.expert_action)}],
            "rejected": [{"role": "assistant", "content": action_completion(p.alternative)}],
            "pair_id": p.pair_id,
        }
        for p in pairs
    ]


def _fits(rows: list[dict[str, Any]], tok: Any, kwargs: dict[str, Any], limit: int, what: str) -> list[dict[str, Any]]:
    keep = []
    for r in rows:
        longest = max(
            len(tok(tok.apply_chat_template(r["prompt"] + r[k], tokenize=False, **kwargs), add_special_tokens=False).input_ids)
            for k in ("chosen", "rejected")
        )
        if longest <= limit:
            keep.append(r)
    if len(keep) < len(rows):
        print(f"[actrl] dropped {len(rows) - len(keep)} of {len(rows)} {what} longer than {limit} tokens")
    if rows and not keep:
        raise ConfigError(f"max_length={limit}: every {what} is longer; raise max_length")
    return keep


def train_dpo(cfg: DPOStageConfig, pairs_path: str | None = None) -> Path:
    """Run DPO on the pairs; returns output_dir/final (a finished stage is not retrained)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    pairs_path = pairs_path or cfg.pairs
    splits = pair_splits(cfg, pairs_path, STAGE, "the DPO stage")
    if splits is None:
        return final_dir(cfg)
    train_pairs, held_pairs = splits

    model, tok, peft_config = load_policy(cfg)
    kwargs = chat_template_kwargs(tok, cfg.prompt.thinking)
    columns = ("prompt", "chosen", "rejected")
    train = _fits(preference_rows(train_pairs, cfg.prompt), tok, kwargs, cfg.max_length, "DPO examples")
    held = _fits(preference_rows(held_pairs, cfg.prompt), tok, kwargs, cfg.max_length, "held-out DPO examples")
    per_step = cfg.per_device_batch_size * world_size() * cfg.grad_accumulation
    steps_per_epoch = max(1, -(-len(train) // per_step))
    print_plan(
        STAGE,
        {
            "training pairs": len(train),
            "held-out": len(held),
            "processes": world_size(),
            "pairs per step": per_step,
            "steps per epoch": steps_per_epoch,
            "total steps": cfg.max_steps if cfg.max_steps > 0 else round(cfg.epochs * steps_per_epoch),
            "beta": cfg.beta,
            "loss_type": cfg.loss_type,
        },
    )
    args = trainer_args(
        cfg,
        DPOConfig,
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        max_length=cfg.max_length,
        per_device_eval_batch_size=cfg.per_device_batch_size,
    )

    def dataset(rows: list[dict[str, Any]]) -> Dataset:
        extra = {"chat_template_kwargs": kwargs} if kwargs else {}
        return Dataset.from_list([{**{k: r[k] for k in columns}, **extra} for r in rows])

    # choice 3: TRL would rebuild the reference from config.name_or_path, which for a merged LoRA
    # checkpoint names its base; a frozen copy of the loaded policy is exactly pi_ref
    ref_model = None if peft_config is not None else copy.deepcopy(model).eval()
    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=dataset(train),
        eval_dataset=dataset(held) if held else None,
        processing_class=tok,
        peft_config=peft_config,
    )
    attach(trainer, cfg.output_dir, STAGE)
    final = run_trainer(trainer, cfg, STAGE, evaluate=bool(held))
    del trainer, model, ref_model
    gc.collect()
    return final
