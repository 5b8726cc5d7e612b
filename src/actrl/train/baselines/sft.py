"""The SFT core the Early Experience baselines and SFT-on-choice share: (prompt, completion) rows in, TRL's
SFTTrainer, output_dir/final out. Like the IL stage, with rows whose prompts may differ in their chat
template settings (self-reflection mixes thinking and answer-only prompts).

    (used by actrl.train.baselines.{reflection, world_model, choice_sft}; see docs/baselines.md)

Choices the paper left open:
1. Loss on the completion tokens only; no packing (one example per sequence), as in IL.
2. An example whose prompt + completion exceeds `max_length` tokens is dropped (with a count), not
   truncated: truncation would cut the completion that carries the loss.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actrl.config import ConfigError
from actrl.models.generation import chat_template_kwargs
from actrl.train.common import StageConfig, load_policy, print_plan, run_trainer, trainer_args, world_size
from actrl.train.metrics import attach


@dataclass
class SFTStageConfig(StageConfig):
    """Fields of an SFT baseline stage (the common ones: StageConfig)."""

    learning_rate: float = 2e-5
    """TRL's SFT default, as the IL stage; the paper gives none."""
    max_length: int = 2048
    """prompt + completion tokens; longer examples are dropped (choice 2)."""


def fit_rows(rows: list[dict[str, Any]], tokenizer: Any, max_length: int, what: str) -> list[dict[str, Any]]:
    """Rows whose whole conversation fits in `max_length` tokens (choice 2), with a printed count."""
    keep = []
    for r in rows:
        text = tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False, **r["template_kwargs"])
        if len(tokenizer(text, add_special_tokens=False).input_ids) <= max_length:
            keep.append(r)
    if len(keep) < len(rows):
        print(f"[actrl] dropped {len(rows) - len(keep)} of {len(rows)} {what} longer than {max_length} tokens")
    if rows and not keep:
        raise ConfigError(f"max_length={max_length}: every {what} is longer; raise max_length")
    return keep


def sft_row(prompt: list[dict[str, str]], completion: str, thinking: bool, **extra: Any) -> dict[str, Any]:
    """A row: chat prompt, assistant completion, and whether its prompt is rendered in thinking mode."""
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}], "thinking": thinking, **extra}


def train_sft(
    cfg: SFTStageConfig,
    stage: str,
    train_rows: list[dict[str, Any]],
    held_rows: list[dict[str, Any]],
    plan: dict[str, Any],
) -> Path:
    """Fine-tune on `train_rows` (eval loss on `held_rows` at the end); returns output_dir/final."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok, peft_config = load_policy(cfg)
    for r in train_rows + held_rows:
        r["template_kwargs"] = chat_template_kwargs(tok, r["thinking"])
    train_rows = fit_rows(train_rows, tok, cfg.max_length, f"{stage} examples")
    held_rows = fit_rows(held_rows, tok, cfg.max_length, "held-out examples")
    if not train_rows:
        raise ConfigError(f"{stage}: no training examples")
    per_step = cfg.per_device_batch_size * world_size() * cfg.grad_accumulation
    steps_per_epoch = max(1, -(-len(train_rows) // per_step))
    print_plan(
        stage,
        {
            **plan,
            "training examples": len(train_rows),
            "held-out": len(held_rows),
            "processes": world_size(),
            "examples per step": per_step,
            "steps per epoch": steps_per_epoch,
            "total steps": cfg.max_steps if cfg.max_steps > 0 else round(cfg.epochs * steps_per_epoch),
            "max_length": cfg.max_length,
        },
    )
    args = trainer_args(
        cfg,
        SFTConfig,
        max_length=cfg.max_length,
        packing=False,
        completion_only_loss=True,
        shuffle_dataset=True,
        per_device_eval_batch_size=cfg.per_device_batch_size,
    )

    def dataset(rows: list[dict[str, Any]]) -> Dataset:
        # enable_thinking (Qwen3) reaches TRL's tokenisation as a per-example column
        extra = any(r["template_kwargs"] for r in rows)
        return Dataset.from_list(
            [
                {"prompt": r["prompt"], "completion": r["completion"], **({"chat_template_kwargs": r["template_kwargs"]} if extra else {})}
                for r in rows
            ]
        )

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset(train_rows),
        eval_dataset=dataset(held_rows) if held_rows else None,
        processing_class=tok,
        peft_config=peft_config,
    )
    attach(trainer, cfg.output_dir, stage)
    final = run_trainer(trainer, cfg, stage, evaluate=bool(held_rows))
    del trainer, model
    gc.collect()
    return final
