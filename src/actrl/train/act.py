"""The ACT stage: GRPO on "state + Action 1 + Action 2: which is better?" (Agentic Critical Training).

The model sees an expert state and two candidate actions (the expert's and an alternative the
initial policy would take), reasons if thinking is on, and names its choice in <answer>N</answer>.
Only the choice is rewarded (`act_choice_reward`: 1 / 0 / -0.5 format penalty); reasoning is never
scored. Held-out pair accuracy is measured before and after training (pair_eval.json).

    actrl train act --config configs/act.yaml --pairs runs/x/pairs.jsonl [key=value ...]

Choices the paper left open (GRPO knobs: see GRPOStageConfig; common ones: see train/common.py):
1. Options are shown in the order recorded in the pair (expert_position, drawn once per pair);
   `balance_orders=true` adds the swapped order of every pair and keeps both in the same step,
   so a critic answering by position gains nothing within a step (doubles the prompts per epoch).
2. Held-out pairs are whole tasks (eval_fraction) or a file (heldout); they are never trained on.
3. `reward: consistency` scores a choice only when the pair is judged right in both orders
   (train/rewards.py, choice 4); it needs balance_orders=true. `position_penalty` also scores a
   position-consistent (content-inconsistent) answer below a wrong but content-consistent one (choice 5).
4. Pair accuracy is greedy, before and after the stage, on the main process, with the generation
   backend of `actrl.models.generation` (vLLM where installed, on a GPU or an x86 CPU).
5. With the answer tag prefilled, sampled completions end at </answer> (`stop_at_closing_tag`), as
   they do in evaluation: otherwise SmolLM2 wrote ~15 tokens past the choice, which were sampled,
   trained with the choice's advantage, and diluted its gradient in the token-mean loss.
6. Checkpoint selection (`select_on`, off by default; the paper trains a fixed budget): every
   `save_steps` steps the live model's greedy pair accuracy on validation pairs (a dev split, never
   the held-out test pairs) is measured, and final/ is the best checkpoint by `select_metric`
   (transformers' `load_best_model_at_end`). The default metric, right in both orders, gives a critic
   that answers by position nothing (docs/sweep.md: the learning moment varies by tens of steps).
"""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from actrl.config import ConfigError
from actrl.data.critic import critic_question, critic_sampling
from actrl.data.prompts import PromptConfig
from actrl.data.records import CriticPair, read_pairs
from actrl.train.common import (
    cut_note,
    drop_long,
    final_dir,
    is_main_process,
    load_policy,
    pair_splits,
    print_plan,
    run_trainer,
    trl_prompt,
)
from actrl.train.grpo import ActGRPOTrainer, GRPOStageConfig, closing_tag_token, grpo_args, grpo_plan
from actrl.train.metrics import attach
from actrl.train.rewards import act_choice_reward, act_consistency_reward

PAIR_EVAL = "pair_eval.json"
CLOSING_TAG = "</answer>"


@dataclass
class ACTConfig(GRPOStageConfig):
    """The ACT stage: GRPO on critic prompts."""

    pairs: str | None = None
    """critic pairs JSONL (D_critic); `--pairs` on the command line sets it."""
    balance_orders: bool = False
    """also show every pair with its options swapped, in the same step (choice 1)."""
    reward: Literal["choice", "consistency"] = "choice"
    """choice: the paper's 1 / 0 / -0.5; consistency: 1 only when right in both orders (choice 3)."""
    position_penalty: float = 0.0
    """with reward=consistency: a completion whose partner in the other order chose the same position
    earns -position_penalty instead of 0 (train/rewards.py, choice 5); 0 is the plain consistency reward."""
    pair_eval: bool = True
    """held-out pair accuracy before and after the stage (pair_eval.json)."""
    pair_eval_backend: str = "auto"
    """auto | transformers | vllm."""
    select_on: str | None = None
    """validation critic pairs (JSONL, e.g. from the dev split): keep the best checkpoint on them,
    measured every save_steps steps (choice 6); None trains the fixed budget and keeps the last."""
    select_metric: Literal["both_orders_accuracy", "accuracy"] = "both_orders_accuracy"
    """what select_on maximises: pairs judged right in both orders, or accuracy over both orders."""

    def validate(self) -> None:
        super().validate()
        if self.balance_orders and self.prompts_per_step() % 2:
            raise ValueError(
                f"balance_orders=true needs an even number of prompts per step (now {self.prompts_per_step()}): "
                f"raise per_device_batch_size to {2 * self.per_device_batch_size}"
            )
        if self.select_metric not in ("both_orders_accuracy", "accuracy"):
            raise ValueError(f"select_metric='{self.select_metric}': expected both_orders_accuracy or accuracy")
        if self.position_penalty < 0:
            raise ValueError(f"position_penalty={self.position_penalty}: expected >= 0")
        if self.position_penalty and self.reward != "consistency":
            raise ValueError("position_penalty compares the two orders of a pair: set reward=consistency")
        if self.reward == "consistency":
            local = self.per_device_batch_size * self.grad_accumulation // self.num_generations
            if not self.balance_orders:
                raise ValueError("reward=consistency compares both orders of a pair: set balance_orders=true")
            if local % 2:
                raise ValueError(
                    f"reward=consistency needs both orders of a pair on one process: per_device_batch_size x "
                    f"grad_accumulation / num_generations = {local} prompts, expected an even number"
                )


def critic_rows(pairs: list[CriticPair], prompt_cfg: PromptConfig, both_orders: bool) -> list[dict[str, Any]]:
    """One row per critic prompt; with both_orders, rows 2i and 2i+1 are one pair in both orders."""
    rows = []
    for p in pairs:
        positions = [p.expert_position, 3 - p.expert_position] if both_orders else [p.expert_position]
        for pos in positions:
            a1, a2 = p.shown(pos)
            rows.append(
                {
                    "prompt": critic_question(p, pos, prompt_cfg),
                    "expert_position": pos,
                    "action_1": a1,
                    "action_2": a2,
                    "pair_id": p.pair_id,
                    "task_id": p.task_id,
                    "critic_answer": prompt_cfg.critic_answer,
                }
            )
    return rows


def _pair_eval(cfg: ACTConfig, model: str, pairs: list[CriticPair], key: str) -> None:
    """Held-out pair accuracy of `model` into pair_eval.json[key], every answer into
    pair_eval.<key>.predictions.jsonl (main process; skipped when present)."""
    if not (cfg.pair_eval and pairs and is_main_process()):
        return
    from actrl.eval.pair_accuracy import pair_accuracy
    from actrl.models.generation import make_generator

    path = Path(cfg.output_dir) / PAIR_EVAL
    record = json.loads(path.read_text()) if path.exists() else {}
    if key in record:
        return
    sampling = critic_sampling(cfg.prompt.thinking)
    sampling.max_new_tokens = cfg.completion_limit()
    adapter = Path(model) / "adapter_config.json"
    if adapter.exists():  # a LoRA checkpoint: its base plus the adapter (vLLM serves it as a LoRARequest)
        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        gen = make_generator(base, cfg.pair_eval_backend, lora_adapter=model, thinking=cfg.prompt.thinking)
    else:
        gen = make_generator(model, backend=cfg.pair_eval_backend, thinking=cfg.prompt.thinking)
    try:
        answers = path.with_name(f"pair_eval.{key}.predictions.jsonl")
        record[key] = {"model": model, **pair_accuracy(gen, pairs, cfg.prompt, sampling, predictions_path=answers)}
    finally:
        gen.close()  # a vLLM engine's KV cache must not stay beside the training that follows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"[actrl] held-out pair accuracy {key}: {json.dumps(record[key])}")


def collapse_advice(cfg: ACTConfig) -> str:
    """What the position-collapse warning suggests, given what this stage already does."""
    if not cfg.balance_orders:
        return "consider balance_orders=true"
    if cfg.reward != "consistency":
        return "consider reward=consistency"
    # sampled answers swing between positions early on in runs that later learn (docs/sweep.md)
    return "with balance_orders and the consistency reward on, train more epochs (docs/sweep.md)"


def selection_evaluator(cfg: ACTConfig, pairs: list[CriticPair], tokenizer: Any) -> Callable[[Any], dict[str, float]]:
    """Greedy pair accuracy of the live model on `pairs`, as `pair_<metric>` (choice 6)."""
    from actrl.eval.pair_accuracy import pair_accuracy
    from actrl.models.generation import HFGenerator

    sampling = critic_sampling(cfg.prompt.thinking)
    sampling.max_new_tokens = cfg.completion_limit()

    def evaluate(model: Any) -> dict[str, float]:
        side, training = tokenizer.padding_side, model.training
        model.eval()
        try:
            result = pair_accuracy(HFGenerator(model, tokenizer, cfg.prompt.thinking), pairs, cfg.prompt, sampling)
        finally:
            model.train(training)
            tokenizer.padding_side = side
        return {f"pair_{k}": v for k, v in result.items() if k != "n" and v is not None}

    return evaluate


def selection_args(cfg: ACTConfig) -> dict[str, Any]:
    """Trainer arguments that evaluate every save_steps and restore the best checkpoint at the end."""
    if not cfg.select_on:
        return {}
    return {
        "eval_strategy": "steps",
        "eval_steps": cfg.save_steps,
        "load_best_model_at_end": True,
        "metric_for_best_model": f"pair_{cfg.select_metric}",
        "greater_is_better": True,
    }


def act_trainer(
    cfg: ACTConfig, model: Any, tok: Any, peft_config: Any, train_dataset: Any, select: tuple[Any, Any] | None = None
) -> ActGRPOTrainer:
    """TRL's GRPO trainer (with actrl's additions) for critic rows already in TRL's prompt format.

    select: (validation rows in TRL's format, evaluator) for checkpoint selection (choice 6).
    """
    reward = act_choice_reward
    if cfg.reward == "consistency":  # TRL names the reward metric after the function: keep its name
        reward = functools.update_wrapper(
            functools.partial(act_consistency_reward, position_penalty=cfg.position_penalty), act_consistency_reward
        )
    return ActGRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=grpo_args(cfg, tok, CLOSING_TAG, **(selection_args(cfg) if select else {})),
        train_dataset=train_dataset,
        eval_dataset=select[0] if select else None,
        evaluator=select[1] if select else None,
        processing_class=tok,
        peft_config=peft_config,
        metric_prefix="act",
        zero_std_groups=cfg.zero_std_groups,
        max_resample_rounds=cfg.max_resample_rounds,
        balance_orders=cfg.balance_orders,
        stop_token_ids=(closing_tag_token(tok, CLOSING_TAG),) if cfg.stops_at_closing_tag() else (),
        share_prompt_prefill=cfg.share_prompt_prefill,
        vllm_kv_cache_gib=cfg.vllm_kv_cache_gib,
    )


def train_act(cfg: ACTConfig, pairs_path: str | None = None) -> Path:
    """Run the ACT stage; returns output_dir/final (a finished stage is not retrained)."""
    pairs_path = pairs_path or cfg.pairs
    splits = pair_splits(cfg, pairs_path, "act", "the ACT stage")
    if splits is None:
        return final_dir(cfg)
    train_pairs, held_pairs = splits

    _pair_eval(cfg, cfg.model.name, held_pairs, "before")

    model, tok, peft_config = load_policy(cfg)
    thinking = cfg.prompt.thinking
    base_rows, longest = drop_long(
        critic_rows(train_pairs, cfg.prompt, False), tok, cfg.max_prompt_length, thinking, "critic prompts"
    )
    kept = {r["pair_id"] for r in base_rows}
    train_rows = critic_rows([p for p in train_pairs if p.pair_id in kept], cfg.prompt, cfg.balance_orders)
    if len(train_rows) < cfg.prompts_per_step():
        raise ConfigError(
            f"{pairs_path}: {len(train_rows)} training prompts, fewer than one step's {cfg.prompts_per_step()}; "
            "lower per_device_batch_size or add pairs"
        )
    print_plan("act", {**grpo_plan(cfg, len(train_rows), len(held_pairs), longest), "balance_orders": cfg.balance_orders,
                       "reward": cfg.reward, "observations cut": cut_note([p.state for p in train_pairs], cfg.prompt)})

    from datasets import Dataset

    for row in train_rows:
        row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, thinking)
    select = None
    if cfg.select_on:
        select_pairs = read_pairs(cfg.select_on)
        select_rows = critic_rows(select_pairs, cfg.prompt, True)
        for row in select_rows:
            row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, thinking)
        select = (Dataset.from_list(select_rows), selection_evaluator(cfg, select_pairs, tok))
        print(f"[actrl] act: keeping the best checkpoint by pair_{cfg.select_metric} on {len(select_pairs)} pairs of {cfg.select_on}, every {cfg.save_steps} steps")
    trainer = act_trainer(cfg, model, tok, peft_config, Dataset.from_list(train_rows), select)
    attach(trainer, cfg.output_dir, "act", collapse_advice=collapse_advice(cfg))
    final = run_trainer(trainer, cfg, "act")
    del trainer, model
    gc.collect()
    _pair_eval(cfg, str(final), held_pairs, "after")
    return final
