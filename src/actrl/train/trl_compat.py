"""Every place actrl reaches past TRL's and transformers' public API, in one file, each for one reason.

TRL gives no public extension point for what the ACT stage needs inside a GRPO step (the rewards of
a generation batch, replacing its zero-std groups, keeping both orders of a pair in one batch), so
these hooks are unavoidable; they are pinned here and checked by tests/test_trl_compat.py, one
contract test per hook, which fails when a TRL release changes the hooked behaviour.

    hook (TRL / transformers name)                    where                 why
 1  trl.trainer.utils.RepeatSampler, its attributes   grpo.PairedRepeatSampler  balance_orders: both orders of a pair in one batch
 2  GRPOTrainer._get_train_sampler(dataset)           grpo.ActGRPOTrainer   hands TRL that sampler
 3  GRPOTrainer._calculate_rewards(inputs, prompts,   grpo.ActGRPOTrainer   TRL does not return a batch's rewards; zero-std
    completions, completion_ids_list) -> (B, F)                             groups are found from them
 4  GRPOTrainer._generate_and_score_completions        grpo.ActGRPOTrainer   zero_std_groups drop / resample edit its output
    (output: prompt_/completion_ids and _mask, advantages, num_items_in_batch)
 5  GRPOTrainer._metrics["train"][name]               `train_metrics`       own metrics averaged and logged with TRL's
 6  eos_token_ids, generation_kwargs,                 `add_stop_tokens`     stop at the closing tag (transformers generation)
    generation_config after __init__
 7  transformers.Trainer.log past GRPOTrainer.log     `log_evaluation`      TRL's log() would fold in and clear pending
                                                                            training metrics
 8  trl.trainer.utils._use_triton(device)             `compact_lm_head`     the fused LM head scores only labelled positions
                                                                            on the CPU too (1.7x GRPO, 2.4x SFT step)
 9  Trainer.callback_handler.callbacks (a list)       `first_callback`      StageMetrics sees logs before report_to
10  model.generate rebound on the policy              models.generation.share_prompt_prefill  one prefill per prompt group
11  TRL's VLLMGeneration (.llm, .sync_weights,         train.vllm_colocate   weight sync and engine settings of a CPU engine
    ._iter_named_params, .enable_sleep_mode)

`check_trl()` (every stage calls it through `trainer_args`) refuses a TRL outside TESTED_TRL with
one line; ACTRL_ALLOW_UNTESTED_TRL=1 turns that into a warning for a user who wants to try one.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from actrl.config import ConfigError

TESTED_TRL = ">=1.16,<1.17"
"""the TRL releases the hooks above are tested against (pyproject pins the same range)."""
ALLOW_UNTESTED = "ACTRL_ALLOW_UNTESTED_TRL"


def check_trl(version: str | None = None) -> None:
    """Refuse a TRL release outside TESTED_TRL (a warning with ACTRL_ALLOW_UNTESTED_TRL=1)."""
    from packaging.specifiers import SpecifierSet

    if version is None:
        import trl

        version = trl.__version__
    if SpecifierSet(TESTED_TRL).contains(version, prereleases=True):
        return
    message = (f"trl {version} is untested: actrl's GRPO hooks (actrl/train/trl_compat.py) are tested with trl{TESTED_TRL}; "
               f"install it (pip install 'trl{TESTED_TRL}') or set {ALLOW_UNTESTED}=1 to try anyway")
    if os.environ.get(ALLOW_UNTESTED) == "1":
        warnings.warn(message, stacklevel=2)
        return
    raise ConfigError(message)


def train_metrics(trainer: Any) -> Any:
    """Hook 5: TRL's per-step metric lists (name -> values), averaged into each training log."""
    return trainer._metrics["train"]


def add_stop_tokens(trainer: Any, token_ids: tuple[int, ...]) -> None:
    """Hook 6: extra end-of-generation tokens for TRL's transformers generation (after its __init__)."""
    trainer.eos_token_ids = [*trainer.eos_token_ids, *(t for t in token_ids if t not in trainer.eos_token_ids)]
    trainer.generation_kwargs["eos_token_id"] = trainer.eos_token_ids
    trainer.generation_config.eos_token_id = trainer.eos_token_ids


def log_evaluation(trainer: Any, metrics: dict[str, float]) -> None:
    """Hook 7: log evaluation metrics without TRL's log(), which would flush the pending training metrics."""
    from transformers import Trainer

    Trainer.log(trainer, metrics)


_TRL_USE_TRITON = None


def compact_lm_head(enabled: bool = True) -> None:
    """Hook 8: let TRL's fused LM head (GRPO and SFT losses) project only labelled positions on the CPU too.

    TRL (trl.trainer.utils, add_fused_lm_head) scores only the positions with a label on Triton
    devices and every position elsewhere, to keep tile shapes fixed for compilers such as Neuron's.
    The CPU compiles nothing, and the prompt positions it would score are 90-99% of a critic or IL
    example: same log-probs (fp32, TRL's numerics), a fraction of the work.
    """
    global _TRL_USE_TRITON
    import trl.trainer.utils as trl_utils

    if _TRL_USE_TRITON is None:
        if not hasattr(trl_utils, "_use_triton"):
            warnings.warn("this TRL has no trl.trainer.utils._use_triton: CPU training scores every position", stacklevel=2)
            return
        _TRL_USE_TRITON = trl_utils._use_triton
    original = _TRL_USE_TRITON
    trl_utils._use_triton = (lambda device: device.type == "cpu" or original(device)) if enabled else original


def first_callback(trainer: Any, callback: Any) -> None:
    """Hook 9: run `callback` before every other callback (report_to integrations included)."""
    trainer.callback_handler.callbacks.insert(0, callback)


__all__ = ["TESTED_TRL", "add_stop_tokens", "check_trl", "compact_lm_head", "first_callback", "log_evaluation",
           "train_metrics"]
