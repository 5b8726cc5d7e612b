"""The IL stage: supervised fine-tuning on expert actions (imitation learning, the paper's baseline
and the stage that follows ACT in "ACT -> IL").

Prompt = the action prompt of an expert state (`action_messages`), completion = the expert action
in its tag (`action_completion`); the loss is on the completion only (TRL's completion_only_loss on
a conversational prompt-completion dataset). Starting from the ACT checkpoint is just
`model.name=<act output_dir>/final`.

    actrl train il --config configs/il.yaml --experts runs/x/experts.jsonl [key=value ...]

Choices the paper left open (common ones: see train/common.py):
1. Loss on the completion tokens only; no packing (one state per sequence).
2. Examples longer than `max_length` tokens are dropped (with a count) instead of truncated, since
   truncation would cut the expert action that carries the loss.
3. Held-out states (whole tasks) give `il/eval_loss` at the end of training.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actrl.config import ConfigError
from actrl.data.prompts import action_completion, action_rows
from actrl.models.generation import chat_template_kwargs
from actrl.train.common import (
    StageConfig,
    cut_note,
    drop_long,
    expert_splits,
    final_dir,
    load_policy,
    print_plan,
    run_trainer,
    trainer_args,
    trl_prompt,
    world_size,
    write_run_config,
)
from actrl.train.metrics import attach


@dataclass
class ILConfig(StageConfig):
    """The IL stage: SFT on (action prompt, expert action)."""

    experts: str | None = None
    """expert trajectories JSONL (D_expert); `--experts` on the command line sets it."""
    learning_rate: float = 2e-5
    """TRL's SFT default; the paper does not give one."""
    max_length: int = 2048
    """prompt + completion tokens; longer examples are dropped (choice 2)."""
    packing: bool = False


def train_il(cfg: ILConfig, experts_path: str | None = None) -> Path:
    """Run the IL stage; returns output_dir/final (a finished stage is not retrained)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    experts_path = experts_path or cfg.experts
    if not experts_path:
        raise ConfigError("the IL stage needs expert trajectories: --experts experts.jsonl (or experts: in the config)")
    final = final_dir(cfg)
    if final.exists():
        print(f"[actrl] il: {final} exists; stage already finished")
        return final
    train_trajs, held_trajs = expert_splits(cfg, experts_path)
    write_run_config(cfg, "il", {"experts": str(experts_path)})

    model, tok, peft_config = load_policy(cfg)
    thinking = cfg.prompt.thinking
    template_kwargs = chat_template_kwargs(tok, thinking)
    # the completion adds a handful of tokens; the prompt limit leaves room for it
    limit = cfg.max_length - 32
    train_rows, longest = drop_long(action_rows(train_trajs, cfg.prompt), tok, limit, thinking, "IL examples")
    held_rows = action_rows(held_trajs, cfg.prompt)
    held_rows = drop_long(held_rows, tok, limit, thinking, "held-out examples")[0] if held_rows else []
    per_step = cfg.per_device_batch_size * world_size() * cfg.grad_accumulation
    steps_per_epoch = max(1, -(-len(train_rows) // per_step))
    print_plan(
        "il",
        {
            "training examples": len(train_rows),
            "held-out": len(held_rows),
            "processes": world_size(),
            "examples per step": per_step,
            "steps per epoch": steps_per_epoch,
            "total steps": cfg.max_steps if cfg.max_steps > 0 else round(cfg.epochs * steps_per_epoch),
            "longest prompt (tokens)": longest,
            "observations cut": cut_note([st for tr in train_trajs for _, st, _ in tr.states()], cfg.prompt),
            "max_length": cfg.max_length,
            "packing": cfg.packing,
        },
    )
    args = trainer_args(
        cfg,
        SFTConfig,
        max_length=cfg.max_length,
        packing=cfg.packing,
        completion_only_loss=True,
        shuffle_dataset=True,
        per_device_eval_batch_size=cfg.per_device_batch_size,
    )

    def dataset(rows: list[dict[str, Any]]) -> Dataset:
        out = []
        for r in rows:
            prompt, prefix = trl_prompt(r["prompt"], tok, thinking)
            if prefix:  # prefilled reply start: text prompt, the completion continues after the prefix
                target = action_completion(r["expert_action"])
                out.append({"prompt": prompt, "completion": target[len(prefix) :] if target.startswith(prefix) else target})
            else:  # enable_thinking (Qwen3) reaches TRL's tokenisation as a per-example column
                extra = {"chat_template_kwargs": template_kwargs} if template_kwargs else {}
                out.append({"prompt": prompt, "completion": r["completion"], **extra})
        return Dataset.from_list(out)

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset(train_rows),
        eval_dataset=dataset(held_rows) if held_rows else None,
        processing_class=tok,
        peft_config=peft_config,
    )
    attach(trainer, cfg.output_dir, "il")
    final = run_trainer(trainer, cfg, "il", evaluate=bool(held_rows))
    del trainer, model
    gc.collect()
    return final
