"""SFT on the choice: the ACT stage's control that imitates the right answer instead of earning it.

Same critic pairs and critic prompt as the ACT stage ("state + Action 1 + Action 2: which is
better?"), but supervised: the completion is the expert action's number, "<answer>N</answer>". The
paper's v2 control "ACT stage replaced by SFT on the choice", on the same pairs and matched epochs;
as a recipe method: `choice_sft -> il` beside `act -> il`.

    actrl run baselines-controls-twx       # methods: act -> il, choice_sft -> il, ...

Choices the paper left open (the SFT ones: train/baselines/sft.py):
1. The critic prompt asks for the answer only (`prompt.thinking` must be false): there is no
   reasoning to imitate, and a prompt asking for reasoning before an answer-only target would teach
   the model to ignore it.
2. Options in the order recorded in the pair (as the ACT stage); `balance_orders=true` also trains
   on every pair with its options swapped (as ACT's balance_orders).
3. Held-out pairs (whole tasks, `eval_fraction`, or a `heldout` pairs file) give `choice_sft/eval_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actrl.data.records import CriticPair
from actrl.train.act import critic_rows
from actrl.train.baselines.sft import SFTStageConfig, sft_row, train_sft
from actrl.train.common import final_dir, pair_splits

STAGE = "choice_sft"


@dataclass
class ChoiceSFTConfig(SFTStageConfig):
    """SFT on (critic prompt, "<answer>N</answer>" naming the expert action)."""

    pairs: str | None = None
    """critic pairs JSONL (D_critic), the ACT stage's; a recipe passes its pairs."""
    balance_orders: bool = False
    """also train on each pair with its options swapped (choice 2)."""

    def validate(self) -> None:
        super().validate()
        if self.prompt.thinking:
            raise ValueError(
                "prompt.thinking=true: SFT on the choice trains answer-only completions (choice 1); "
                "set prompt.thinking=false for this stage (stages.choice_sft.prompt.thinking in a recipe)"
            )


def choice_rows(pairs: list[CriticPair], cfg: ChoiceSFTConfig, both_orders: bool) -> list[dict[str, Any]]:
    """One row per critic prompt: the completion names the expert action (its position, or its text
    with prompt.critic_answer=action)."""
    by_text = cfg.prompt.critic_answer == "action"
    rows = []
    for r in critic_rows(pairs, cfg.prompt, both_orders):
        answer = r[f"action_{r['expert_position']}"] if by_text else r["expert_position"]
        rows.append(sft_row(r["prompt"], f"<answer>{answer}</answer>", False, pair_id=r["pair_id"]))
    return rows


def train_choice_sft(cfg: ChoiceSFTConfig, pairs_path: str | None = None) -> Path:
    """Run SFT on the choice; returns output_dir/final (a finished stage is not retrained)."""
    pairs_path = pairs_path or cfg.pairs
    splits = pair_splits(cfg, pairs_path, STAGE, "SFT on the choice")
    if splits is None:
        return final_dir(cfg)
    train_pairs, held_pairs = splits
    rows = choice_rows(train_pairs, cfg, cfg.balance_orders)
    return train_sft(cfg, STAGE, rows, choice_rows(held_pairs, cfg, False), {"pairs": len(train_pairs)})
