"""TRL's GRPOTrainer with what the ACT and RL stages add: zero-std group handling and paired orders.

GRPO normalises each prompt's G rewards within its group; when all G rewards are equal (a two-way
choice often gives this) the group's advantages are zero and it carries no learning signal
(ACT.md, known pitfalls). `zero_std_groups` decides what happens to such groups:

- keep: TRL's default. They add nothing to the policy gradient but count in the loss normaliser
  (and in the KL term when beta > 0).
- drop: their completions are masked out of the loss, so the step averages only over groups that
  carry signal (DAPO's dynamic-sampling filter, without refilling).
- resample: DAPO's dynamic sampling. Every process draws a fresh generation batch of random
  training prompts, and its non-zero-std groups replace the zero-std ones; up to
  `max_resample_rounds` rounds, after which the remaining zero-std groups are dropped. Replacement
  groups keep the advantages of their own batch; with `balance_orders` they are drawn as whole
  pairs (both orders), so a reward that compares the orders sees both.

`balance_orders` keeps rows 2i and 2i+1 (one critic pair shown in both orders) in the same
generation batch, i.e. in the same optimizer step.

    actrl train act --config configs/act.yaml zero_std_groups=resample balance_orders=true

With an `evaluator` (the ACT stage's `select_on`), `evaluate` is that function on the live model,
e.g. greedy pair accuracy on validation pairs, so that transformers' `load_best_model_at_end` keeps
and restores the best checkpoint by it.

Four methods are overridden, each for one reason (see their comments); everything else is TRL's.
Every private TRL name used here is listed, with its reason and contract test, in
`actrl.train.trl_compat`. With `use_vllm` on a CPU, TRL's colocated engine is adapted by
`actrl.train.vllm_colocate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from actrl.data.prompts import reply_token_limit
from actrl.models.generation import chat_template_kwargs
from actrl.models.generation import share_prompt_prefill as share_prompt_prefill_of
from actrl.train.common import StageConfig, trainer_args, world_size
from actrl.train.trl_compat import add_stop_tokens, log_evaluation, train_metrics
from actrl.train.vllm_colocate import adapt_colocated_engine, cpu_engine_settings, vllm_on_cpu

ZERO_STD_POLICIES = ("keep", "drop", "resample")


@dataclass
class GRPOStageConfig(StageConfig):
    """GRPO knobs shared by the ACT and RL stages; the paper publishes none of them."""

    learning_rate: float = 1e-6
    """TRL's GRPO default; the paper does not give one."""
    per_device_batch_size: int = 16
    """completions (not prompts) per device per micro-step, as in TRL; prompts per step = this x
    processes x grad_accumulation / num_generations."""
    num_generations: int = 8
    """G, completions per prompt in a group."""
    beta: float = 0.0
    """KL coefficient to the initial policy; 0 loads no reference model (TRL default)."""
    epsilon: float = 0.2
    """PPO-style clip range."""
    epsilon_high: float | None = None
    """upper clip (DAPO uses 0.28); None: same as epsilon."""
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    temperature: float = 1.0
    top_p: float = 1.0
    max_prompt_length: int | None = 1024
    """prompts longer than this (in tokens) are dropped, with a count printed; None keeps all."""
    max_completion_length: int | None = None
    """None: 32 tokens without thinking (the answer tag only), 512 with prompt.thinking."""
    mask_truncated_completions: bool = False
    zero_std_groups: Literal["keep", "drop", "resample"] = "keep"
    """what to do with groups whose G rewards are all equal (see actrl.train.grpo)."""
    max_resample_rounds: int = 2
    log_completions: bool = False
    """TRL's sample table of prompts/completions every logging step (parquet under output_dir/completions)."""
    use_vllm: bool = False
    """sample the G completions with vLLM (TRL's use_vllm); on a CPU through actrl.train.vllm_colocate."""
    vllm_mode: Literal["colocate", "server"] = "colocate"
    """colocate: an engine inside the training process; server: `trl vllm-serve` (vllm_server_* via trl: {...})."""
    vllm_kv_cache_gib: float | None = None
    """colocate on a CPU: GiB of RAM for the engine's KV cache; None: min(4, 20% of available memory)."""
    stop_at_closing_tag: bool | None = None
    """end each sampled completion at the closing tag of its answer (</answer> in ACT, </action> in RL),
    as evaluation does, so no token after the answer is sampled or trained. None: on when
    prompt.prefill is on and thinking off (then the tag's last token cannot occur earlier)."""
    share_prompt_prefill: bool = True
    """transformers generation: prefill each prompt once per group and copy its KV cache to the G
    completions (TRL prefills all G copies); same samples, less prefill (docs/cpu-speed.md). Used on
    one process and DDP; not with DeepSpeed/FSDP (untested there) or vLLM."""

    def validate(self) -> None:
        super().validate()
        if self.stop_at_closing_tag and (self.prompt.thinking or not self.prompt.prefill):
            raise ValueError(
                "stop_at_closing_tag=true needs prompt.prefill=true and prompt.thinking=false (the tag's last "
                "token would otherwise end the opening tag or the reasoning)"
            )
        if self.num_generations < 2:
            raise ValueError(f"num_generations={self.num_generations}: GRPO needs >= 2 completions per prompt")
        batch = self.per_device_batch_size * world_size() * self.grad_accumulation
        if batch % self.num_generations:
            raise ValueError(
                f"per_device_batch_size x processes x grad_accumulation = {batch} completions per step is not a "
                f"multiple of num_generations={self.num_generations}; e.g. per_device_batch_size="
                f"{self.num_generations}"
            )
        if self.zero_std_groups != "keep" and (self.per_device_batch_size * self.grad_accumulation) % self.num_generations:
            raise ValueError(
                f"zero_std_groups={self.zero_std_groups} needs whole groups on each process: per_device_batch_size x "
                f"grad_accumulation must be a multiple of num_generations={self.num_generations}"
            )

    def stops_at_closing_tag(self) -> bool:
        if self.stop_at_closing_tag is None:
            return self.prompt.prefill and not self.prompt.thinking
        return self.stop_at_closing_tag

    def completion_limit(self) -> int:
        if self.max_completion_length is not None:
            return self.max_completion_length
        # RL's action replies share the critic's limit (32 new tokens hold every benchmark action)
        return reply_token_limit(self.prompt.thinking, "critic")

    def prompts_per_step(self) -> int:
        return self.per_device_batch_size * world_size() * self.grad_accumulation // self.num_generations


def closing_tag_token(tokenizer: Any, closing_tag: str) -> int:
    """The token that ends `closing_tag` ('>' of '</answer>' for SmolLM2): a stop token for generation."""
    return tokenizer(closing_tag, add_special_tokens=False)["input_ids"][-1]


def grpo_args(cfg: GRPOStageConfig, tokenizer: Any, closing_tag: str, **extra: Any) -> GRPOConfig:
    """GRPOConfig from a GRPO stage config (one generation batch per optimizer step); `extra` adds arguments."""
    if cfg.use_vllm and cfg.stops_at_closing_tag():  # vLLM stops on the string itself
        extra["generation_kwargs"] = {"stop": [closing_tag], "include_stop_str_in_output": True}
    return trainer_args(
        cfg,
        GRPOConfig,
        num_generations=cfg.num_generations,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.completion_limit(),
        mask_truncated_completions=cfg.mask_truncated_completions,
        log_completions=cfg.log_completions,
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        chat_template_kwargs=chat_template_kwargs(tokenizer, cfg.prompt.thinking),
        per_device_eval_batch_size=cfg.num_generations,  # one held-out prompt's group per eval batch
        **extra,
    )


def grpo_plan(cfg: GRPOStageConfig, n_train: int, n_heldout: int, longest_prompt: int) -> dict[str, Any]:
    """Derived numbers printed before a GRPO stage trains."""
    per_step = cfg.prompts_per_step()
    steps_per_epoch = n_train // per_step
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(cfg.epochs * steps_per_epoch)
    return {
        "training prompts": n_train,
        "held-out": n_heldout,
        "G (num_generations)": cfg.num_generations,
        "processes": world_size(),
        "prompts per step": per_step,
        "completions per step": per_step * cfg.num_generations,
        "steps per epoch": steps_per_epoch,
        "total steps": total,
        "longest prompt (tokens)": longest_prompt,
        "max completion tokens": cfg.completion_limit(),
        "zero_std_groups": cfg.zero_std_groups,
        "stop at closing tag": cfg.stops_at_closing_tag(),
    }


class PairedRepeatSampler(RepeatSampler):
    """RepeatSampler that shuffles rows in blocks of two (both orders of one pair stay together)."""

    def __iter__(self):
        n_blocks = self.num_samples // 2
        if self.shuffle:
            blocks = torch.randperm(n_blocks, generator=self.generator).tolist()
        else:
            blocks = list(range(n_blocks))
        indexes = [2 * b + j for b in blocks for j in (0, 1)]
        chunks = [indexes[i : i + self.batch_size] for i in range(0, len(indexes), self.batch_size)]
        for chunk in chunks:
            if len(chunk) < self.batch_size:
                continue
            for _ in range(self.repeat_count):
                for index in chunk:
                    yield from [index] * self.mini_repeat_count


def _dtype_name(args: GRPOConfig) -> str:
    return "bfloat16" if args.bf16 else "float16" if args.fp16 else "float32"


def _pad_cat(a: torch.Tensor, b: torch.Tensor, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad two (B, T) tensors to the same T (left for prompts, right for completions)."""
    width = max(a.size(1), b.size(1))

    def pad(x: torch.Tensor) -> torch.Tensor:
        extra = width - x.size(1)
        if extra == 0:
            return x
        fill = torch.zeros(x.size(0), extra, dtype=x.dtype, device=x.device)
        return torch.cat([fill, x] if left else [x, fill], dim=1)

    return pad(a), pad(b)


class ActGRPOTrainer(GRPOTrainer):
    """GRPOTrainer + zero-std group policy + paired-order sampling + `<prefix>/frac_zero_std_groups`."""

    def __init__(
        self,
        *args: Any,
        metric_prefix: str,
        zero_std_groups: str = "keep",
        max_resample_rounds: int = 2,
        balance_orders: bool = False,
        stop_token_ids: tuple[int, ...] = (),
        share_prompt_prefill: bool = False,
        evaluator: Callable[[Any], dict[str, float]] | None = None,
        vllm_kv_cache_gib: float | None = None,
        **kwargs: Any,
    ):
        if zero_std_groups not in ZERO_STD_POLICIES:
            raise ValueError(f"zero_std_groups='{zero_std_groups}': expected one of {', '.join(ZERO_STD_POLICIES)}")
        self.metric_prefix = metric_prefix
        self.zero_std_groups = zero_std_groups
        self.max_resample_rounds = max_resample_rounds
        self.balance_orders = balance_orders
        self.evaluator = evaluator
        self._last_rewards: torch.Tensor | None = None
        grpo_args_ = kwargs["args"]
        colocated_on_cpu = grpo_args_.use_vllm and grpo_args_.vllm_mode == "colocate" and vllm_on_cpu()
        with cpu_engine_settings(_dtype_name(grpo_args_), vllm_kv_cache_gib) if colocated_on_cpu else nullcontext():
            super().__init__(*args, **kwargs)
        if colocated_on_cpu:
            adapt_colocated_engine(self.vllm_generation)
        if stop_token_ids and not self.use_vllm:  # transformers generation: extra end tokens (stop_at_closing_tag)
            add_stop_tokens(self, stop_token_ids)
        if share_prompt_prefill and not self.use_vllm and not (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            share_prompt_prefill_of(self.accelerator.unwrap_model(self.model))
        self._resample_rng = torch.Generator().manual_seed(self.args.seed + 7919 * self.accelerator.process_index)

    # Override 1 of 4: the sampler must keep both orders of a pair in one generation batch.
    def _get_train_sampler(self, dataset=None):
        if not self.balance_orders:
            return super()._get_train_sampler(dataset)
        return PairedRepeatSampler(
            data_source=dataset if dataset is not None else self.train_dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
        )

    # Override 2 of 4: TRL does not return the rewards; keep the gathered ones to find zero-std groups.
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards
        return rewards

    def _zero_std_groups(self) -> torch.Tensor:
        """Per group of the last generation batch (all processes): True when its G rewards are all equal."""
        assert self._last_rewards is not None
        weights = self.reward_weights.to(self._last_rewards.device)
        total = (self._last_rewards * weights.unsqueeze(0)).nansum(dim=1).view(-1, self.num_generations)
        return torch.isclose(total.std(dim=1), torch.zeros(total.size(0), device=total.device)).cpu()

    def _local(self, zero: torch.Tensor) -> torch.Tensor:
        """This process's groups (drop/resample require whole groups per process, checked at start)."""
        per_process = zero.numel() // self.accelerator.num_processes
        start = self.accelerator.process_index * per_process
        return zero[start : start + per_process].clone()

    def _draw_batch(self, n_groups: int) -> list[dict[str, Any]]:
        if self.balance_orders:  # whole pairs: rows 2b and 2b+1 are one pair in both orders
            blocks = torch.randint(len(self.train_dataset) // 2, ((n_groups + 1) // 2,), generator=self._resample_rng)
            idx = [2 * b + j for b in blocks.tolist() for j in (0, 1)][:n_groups]
        else:
            idx = torch.randint(len(self.train_dataset), (n_groups,), generator=self._resample_rng).tolist()
        return [self.train_dataset[i] for i in idx for _ in range(self.num_generations)]

    def _mask_groups(self, out: dict[str, Any], drop: torch.Tensor) -> None:
        rows = drop.repeat_interleave(self.num_generations).to(out["completion_mask"].device)
        out["completion_mask"] = out["completion_mask"] * (~rows).unsqueeze(1).to(out["completion_mask"].dtype)
        out["num_items_in_batch"] = self.accelerator.gather(out["completion_mask"].sum()).sum()

    def _replace_groups(self, out: dict[str, Any], new: dict[str, Any], slots: list[int], picks: list[int]) -> None:
        g = self.num_generations
        rows_out = torch.tensor([s * g + j for s in slots for j in range(g)], dtype=torch.long)
        rows_new = torch.tensor([p * g + j for p in picks for j in range(g)], dtype=torch.long)
        for key, value in out.items():
            if key == "num_items_in_batch":
                continue
            if not isinstance(value, torch.Tensor) or key not in new:
                raise RuntimeError(f"zero_std_groups=resample cannot merge the generation output '{key}'")
            if value.dim() == 1:
                value[rows_out.to(value.device)] = new[key][rows_new.to(value.device)]
                continue
            a, b = _pad_cat(value, new[key], left=key.startswith("prompt"))
            a[rows_out.to(a.device)] = b[rows_new.to(b.device)]
            out[key] = a

    # Override 3 of 4: apply the zero-std group policy to each training generation batch.
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return out
        zero_all = self._zero_std_groups()
        metrics = train_metrics(self)
        metrics[f"{self.metric_prefix}/frac_zero_std_groups"].append(zero_all.float().mean().item())
        if self.zero_std_groups == "keep":
            return out
        if len(inputs) % self.num_generations:
            raise RuntimeError(f"zero_std_groups={self.zero_std_groups} needs whole prompt groups on every process")
        zero = self._local(zero_all)
        rounds = 0
        while self.zero_std_groups == "resample" and rounds < self.max_resample_rounds and self._any(zero):
            rounds += 1
            new = super()._generate_and_score_completions(self._draw_batch(zero.numel()))
            slots = zero.nonzero().flatten().tolist()
            picks = (~self._local(self._zero_std_groups())).nonzero().flatten().tolist()[: len(slots)]
            if picks:
                self._replace_groups(out, new, slots[: len(picks)], picks)
                zero[slots[: len(picks)]] = False
        if self.zero_std_groups == "resample":
            metrics[f"{self.metric_prefix}/resample_rounds"].append(float(rounds))
        self._mask_groups(out, zero)
        masked = self.accelerator.gather(zero.float().mean().to(self.accelerator.device)).mean().item()
        metrics[f"{self.metric_prefix}/frac_groups_masked"].append(masked)
        return out

    def _any(self, zero: torch.Tensor) -> bool:
        """True when any process still has a zero-std group (every process runs the same rounds)."""
        return self.accelerator.gather(zero.any().float().view(1).to(self.accelerator.device)).sum().item() > 0

    # Override 4 of 4: with an evaluator, evaluation is that function on the live model (main process).
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        from accelerate.utils import broadcast_object_list

        result: list[Any] = [None]
        start = time.perf_counter()
        if self.accelerator.is_main_process:
            model = self.accelerator.unwrap_model(self.model)
            # greedy generation must not move the training RNG: the run samples as it would without it
            with torch.random.fork_rng(devices=[] if model.device.type == "cpu" else [model.device]):
                with self.accelerator.autocast():
                    result[0] = self.evaluator(model)
        result = broadcast_object_list(result) if self.accelerator.num_processes > 1 else result
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in result[0].items() if isinstance(v, (int, float))}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - start, 2)  # transformers' name
        log_evaluation(self, metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
