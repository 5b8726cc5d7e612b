"""What every training stage shares: the config fields, the policy model, precision, resume, final save.

Each stage (`act.py`, `il.py`, `rl.py`) subclasses `StageConfig`, builds its rows, and hands a TRL
trainer to `run_trainer`, which resumes from the last complete checkpoint, trains, and writes
`<output_dir>/final` through a temp directory (never a half-written final). A finished stage
(final/ exists) is not retrained.

    actrl train act|il|rl --config stage.yaml [key=value ...]

Choices the paper left open (documented defaults, all configurable):
1. Precision: `model.dtype` (auto: bf16 where the CPU/GPU has it). Full fine-tuning keeps fp32
   master weights and computes in bf16 through autocast (bf16 weights would round away updates of
   size lr=1e-6); LoRA loads the frozen base in the compute dtype and keeps adapters in fp32.
2. Gradient checkpointing is off by default (measured on the CPU: 19 s vs 26 s per GRPO step).
3. Held-out data is split by task (episode), not by state, so no held-out state shares an episode
   with a training state; `heldout` (a file) replaces the split.
4. A LoRA checkpoint feeding the next stage is merged into its base first (`merge_lora`), and the
   next stage trains a fresh adapter (or the full model) on top.
5. With `prompt.prefill` (the reply starts with the opening tag), prompts reach TRL as rendered
   text and completions as text; the rewards put the prefix back before parsing.
6. On the CPU, TRL's fused LM head scores only the positions that carry a label (`trl_compat.compact_lm_head`),
   as it already does on CUDA; TRL scores every prompt position there, which made a GRPO step 1.7x
   and an SFT step 2.4x slower (bench/act_step.py, bench/il_step.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from actrl.config import ConfigError, to_dict
from actrl.data.prompts import PromptConfig, cut_share
from actrl.data.records import State
from actrl.models.generation import render_chat, reply_prefix
from actrl.models.loading import ModelConfig, load_model, pick_device, pick_dtype, resolve_model
from actrl.train.trl_compat import check_trl, compact_lm_head

FINAL = "final"
T = TypeVar("T")


@dataclass
class LoraSettings:
    """LoRA adapters (PEFT) instead of full fine-tuning."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    """PEFT target modules: 'all-linear' or a list of module names (q_proj, v_proj, ...)."""

    def validate(self) -> None:
        if self.r < 1:
            raise ValueError(f"r={self.r}: expected >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout}: expected in [0, 1)")


@dataclass
class StageConfig:
    """Fields every training stage has. Generic knobs first, then data, then logging."""

    output_dir: str = ""
    """where checkpoints, metrics.jsonl and final/ go (required)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """the starting policy: a hub id, 'default', or an earlier stage's output_dir/final."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    seed: int = 0
    epochs: float = 3.0
    """the paper trains each stage about 3 epochs."""
    max_steps: int = -1
    """optimizer steps; > 0 overrides epochs."""
    learning_rate: float = 1e-5
    per_device_batch_size: int = 8
    grad_accumulation: int = 1
    lr_scheduler: str = "constant_with_warmup"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    """off on CPU: measured 19 s vs 26 s per GRPO step; turn on for long sequences on GPUs."""
    eval_fraction: float = 0.1
    """share of tasks (episodes) held out from training; 0 disables."""
    heldout: str | None = None
    """a held-out data file (same format as the training data); replaces eval_fraction."""
    logging_steps: int = 1
    save_steps: int = 50
    save_total_limit: int | None = 2
    report_to: Literal["none", "tensorboard", "wandb", "trackio"] = "none"
    trl: dict[str, Any] = field(default_factory=dict)
    """extra GRPOConfig/SFTConfig arguments passed through verbatim (e.g. use_vllm, vllm_mode, deepspeed)."""

    def validate(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir is required, e.g. output_dir=runs/demo/stages/act")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError(f"epochs={self.epochs}, max_steps={self.max_steps}: one of them must be > 0")
        for name in ("learning_rate", "per_device_batch_size", "grad_accumulation", "logging_steps", "save_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: expected > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio={self.warmup_ratio}: expected in [0, 1)")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction={self.eval_fraction}: expected in [0, 1)")
        if self.report_to != "none" and importlib.util.find_spec(self.report_to) is None:
            raise ValueError(f"report_to={self.report_to}: the package is not installed (pip install {self.report_to})")


# ----------------------------------------------------------------------------- model


def world_size() -> int:
    """Processes of this launch (accelerate/torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def precision(cfg: StageConfig) -> dict[str, Any]:
    """Weight dtype to load and the trainer's mixed-precision flags (choice 1 in the module docstring)."""
    import torch

    compute = pick_dtype(cfg.model.dtype, pick_device(cfg.model.device))
    weights = compute if cfg.lora.enabled else torch.float32
    return {"weights": weights, "bf16": compute == torch.bfloat16, "fp16": compute == torch.float16}


def load_policy(cfg: StageConfig):
    """(model, tokenizer, peft_config or None) for a stage; a LoRA checkpoint is merged into its base.

    When this stage trains LoRA on top of an earlier LoRA stage, the merged model is written to
    output_dir/base so the new adapter records a base that contains the earlier adapter (choice 4).
    """
    compact_lm_head()
    prec = precision(cfg)
    dtype_name = str(prec["weights"]).replace("torch.", "")
    name = cfg.model.name
    if cfg.lora.enabled and (Path(resolve_model(name)) / "adapter_config.json").exists():
        name = str(merge_lora(resolve_model(name), Path(cfg.output_dir) / "base"))
    # the trainer places the model on its device (one per process); load on the CPU first
    mcfg = ModelConfig(name=name, dtype=dtype_name, device="cpu", attn_implementation=cfg.model.attn_implementation)
    model, tok = load_model(mcfg, merge_lora=True)
    peft_config = None
    if cfg.lora.enabled:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
            task_type="CAUSAL_LM",
        )
    return model, tok, peft_config


def merge_lora(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Merge a LoRA checkpoint into its base and save a full model (temp dir, then rename).

    An existing merged model is reused; with several processes the first to finish wins.
    """
    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    model, tok = load_model(ModelConfig(name=str(adapter_dir), dtype="float32", device="cpu"), merge_lora=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, out)
    except OSError:  # another process renamed its copy first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def trainer_args(cfg: StageConfig, cls: type, **stage: Any):
    """A TRL config (GRPOConfig/SFTConfig) from the common fields, the stage's fields and `cfg.trl`."""
    check_trl()  # before any TRL object: the hooks are tested on one TRL range
    prec = precision(cfg)
    kwargs: dict[str, Any] = dict(
        output_dir=cfg.output_dir,
        seed=cfg.seed,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.grad_accumulation,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=prec["bf16"],
        fp16=prec["fp16"],
        use_cpu=pick_device(cfg.model.device) == "cpu",
        disable_tqdm=True,
        **stage,
    )
    clash = sorted(set(cfg.trl) & set(kwargs))
    if clash:
        raise ConfigError(f"trl.{clash[0]}: set it through the stage config, not the trl pass-through")
    kwargs.update(cfg.trl)
    try:
        return cls(**kwargs)
    except TypeError as e:
        if not cfg.trl:
            raise
        raise ConfigError(f"trl: {e} (keys passed through: {', '.join(cfg.trl)})") from None
    except ValueError as e:  # TRL's own validation (divisibility, ...)
        raise ConfigError(f"{cls.__name__}: {e}") from None


# ----------------------------------------------------------------------------- data


def split_by_task(items: list[T], task_of: Callable[[T], str], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, held-out) with whole tasks held out (choice 3); the split is seeded."""
    tasks = sorted({task_of(x) for x in items})
    if fraction <= 0 or len(tasks) < 2:
        return items, []
    rng = random.Random(seed)
    rng.shuffle(tasks)
    held = set(tasks[: max(1, round(fraction * len(tasks)))])
    return [x for x in items if task_of(x) not in held], [x for x in items if task_of(x) in held]


def trl_prompt(messages: list[dict[str, str]], tokenizer: Any, thinking: bool) -> tuple[Any, str]:
    """(prompt as TRL gets it, reply prefix). A prompt ending with a prefilled assistant turn
    (`PromptConfig.prefill`) is rendered to text, because TRL's conversational path would close
    that turn; the prefix goes to the rewards so they parse the whole answer (choice 5)."""
    prefix = reply_prefix(messages)
    return (render_chat(tokenizer, messages, thinking), prefix) if prefix else (messages, "")


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]], thinking: bool) -> int:
    return len(tokenizer(render_chat(tokenizer, messages, thinking), add_special_tokens=False).input_ids)


def drop_long(
    rows: list[dict[str, Any]], tokenizer: Any, limit: int | None, thinking: bool, what: str
) -> tuple[list[dict[str, Any]], int]:
    """Rows whose prompt fits in `limit` tokens, and the longest prompt kept; says how many were dropped."""
    lengths = [prompt_tokens(tokenizer, r["prompt"], thinking) for r in rows]
    fits = [limit is None or n <= limit for n in lengths]
    if not any(fits):
        raise ConfigError(f"max_prompt_length={limit}: every {what} prompt is longer; the shortest has {min(lengths)}")
    if not all(fits):
        print(f"[actrl] dropped {fits.count(False)} of {len(rows)} {what} longer than {limit} prompt tokens")
    return [r for r, ok in zip(rows, fits, strict=True) if ok], max(n for n, ok in zip(lengths, fits, strict=True) if ok)


def expert_splits(cfg: StageConfig, experts_path: str) -> tuple[list, list]:
    """(train, held-out) trajectories: a held-out file, or whole tasks split off by eval_fraction."""
    from actrl.data.records import read_trajectories

    trajs = read_trajectories(experts_path)
    if cfg.heldout:
        return trajs, read_trajectories(cfg.heldout)
    return split_by_task(trajs, lambda t: t.task_id, cfg.eval_fraction, cfg.seed)


def pair_splits(cfg: Any, pairs_path: str | None, stage: str, what: str) -> tuple[list, list] | None:
    """(train, held-out) critic pairs of a pair-reading stage, or None when its final/ exists.

    Raises when no pairs file is given; held-out pairs are a file (`heldout`) or whole tasks split
    off by `eval_fraction`; the resolved config is written before training.
    """
    from actrl.data.records import read_pairs

    pairs_path = pairs_path or cfg.pairs
    if not pairs_path:
        raise ConfigError(f"{what} needs critic pairs: --pairs pairs.jsonl (or pairs: in the config)")
    if final_dir(cfg).exists():
        print(f"[actrl] {stage}: {final_dir(cfg)} exists; stage already finished")
        return None
    pairs = read_pairs(pairs_path)
    if cfg.heldout:
        train, held = pairs, read_pairs(cfg.heldout)
    else:
        train, held = split_by_task(pairs, lambda p: p.task_id, cfg.eval_fraction, cfg.seed)
    write_run_config(cfg, stage, {"pairs": str(pairs_path), "n_train_pairs": len(train)})
    return train, held

# ----------------------------------------------------------------------------- run


def final_dir(cfg: StageConfig) -> Path:
    return Path(cfg.output_dir) / FINAL


def _complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint is complete when it parses.

    A process killed while writing it leaves the file empty or cut short (seen under load)."""
    try:
        return "global_step" in json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint-N, or None; a torn newest one is skipped (and trained again)."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    done = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and _complete(p)]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None


def write_run_config(cfg: StageConfig, stage: str, extra: dict[str, Any] | None = None) -> None:
    """The resolved stage config with library versions, as output_dir/config.yaml (main process)."""
    if not is_main_process():
        return
    import peft
    import torch
    import transformers
    import trl

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "stage": stage,
        "config": to_dict(cfg),
        "versions": {
            "torch": str(torch.__version__),
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "peft": peft.__version__,
            "python": sys.version.split()[0],
        },
        **(extra or {}),
    }
    (out / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))


def print_plan(stage: str, numbers: dict[str, Any]) -> None:
    """The derived numbers of a stage, printed before training starts (nanoGPT style)."""
    if not is_main_process():
        return
    print(f"[actrl] {stage} stage:")
    for key, value in numbers.items():
        print(f"[actrl]   {key:<28} {value}")


def cut_note(states: list[State], prompt: PromptConfig) -> str:
    """The plan's line on observation cuts: how many training states lose text to the limit."""
    return f"{cut_share(states, prompt):.0%} of states (prompt.max_observation_chars={prompt.max_observation_chars})"


def best_checkpoint(trainer: Any) -> dict[str, Any]:
    """With checkpoint selection (load_best_model_at_end): the checkpoint final/ holds and its score."""
    if not trainer.args.load_best_model_at_end:
        return {}
    return {"best_checkpoint": trainer.state.best_model_checkpoint, "best_metric": trainer.state.best_metric}


def run_trainer(trainer: Any, cfg: StageConfig, stage: str, evaluate: bool = False) -> Path:
    """Train (resuming from the last complete checkpoint), evaluate on the held-out set if asked,
    then save output_dir/final atomically."""
    from actrl.train.metrics import prune_metrics

    ckpt = last_checkpoint(cfg.output_dir)
    if ckpt is not None:
        step = int(ckpt.name.split("-")[-1])
        print(f"[actrl] {stage}: resuming from {ckpt} (step {step})")
        if is_main_process():
            prune_metrics(cfg.output_dir, after_step=step)  # the steps past the checkpoint are redone
    elif is_main_process():
        prune_metrics(cfg.output_dir, after_step=0)  # killed before its first checkpoint: every step is redone
    acc = trainer.accelerator
    print(f"[actrl] {stage}: process {acc.process_index} of {acc.num_processes} training", flush=True)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    if evaluate:
        trainer.evaluate()
    final = final_dir(cfg)
    tmp = final.with_name(FINAL + ".tmp")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    trainer.save_model(str(tmp))  # every rank calls it (FSDP/ZeRO gather); the main process writes
    if acc.is_main_process:
        trainer.processing_class.save_pretrained(str(tmp))
        (tmp / "actrl_stage.json").write_text(
            json.dumps(
                {
                    "stage": stage,
                    "global_step": trainer.state.global_step,
                    "processes": acc.num_processes,
                    "lora": cfg.lora.enabled,
                    **best_checkpoint(trainer),
                },
                indent=1,
            )
        )
        os.replace(tmp, final)
    acc.wait_for_everyone()
    return final
