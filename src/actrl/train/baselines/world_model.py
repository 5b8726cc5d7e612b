"""Early Experience, implicit world modeling (Zhang et al. 2025): predict what an action leads to.

From each critic pair's expert state the alternative is executed in the environment
(`actrl.data.outcomes`); the policy is fine-tuned to predict the next observation from the state
and the action (prompt = state + action, completion = the observation), and IL follows. As a
recipe method: `world_model -> il`, beside `il`.

    actrl run baselines-early-experience-twx   # methods: il, early_experience, world_model -> il

Files: the executed outcomes in `stages/outcomes-<hash>.jsonl` (resumable), shared with the
self-reflection stage of the same run.

Choices the paper left open (the SFT ones: train/baselines/sft.py):
1. The prompt is the state as every stage renders it plus "Action: ..."; the target is the raw
   next observation, whitespace-normalised and cut to `prompt.max_observation_chars` (the length
   the policy's own prompts show).
2. `transitions: alternative` (the issue's definition) trains on the alternatives' outcomes only;
   `both` adds the expert action's outcome of every pair.
3. Held-out pairs (whole tasks, `eval_fraction`, or a `heldout` pairs file) are executed too and
   give `world_model/eval_loss`.
4. Matched epochs: the IL stage after it keeps IL's own epochs, so `world_model -> il` trains IL
   exactly as the `il` row does, after a world-modeling stage of `epochs` passes over the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from actrl.data.outcomes import EnvSpec, execute_pairs, shared_outcomes_path
from actrl.data.prompts import PromptConfig, render_state
from actrl.data.records import CriticPair
from actrl.data.records import State as StateRecord
from actrl.train.baselines.sft import SFTStageConfig, sft_row, train_sft
from actrl.train.common import final_dir, pair_splits

STAGE = "world_model"
WORLD_MODEL_SYSTEM = (
    "You are a model of a text environment. Given the task, the recent history and an action, "
    "predict the observation the environment returns after that action."
)


@dataclass
class WorldModelConfig(SFTStageConfig):
    """Implicit world modeling: SFT on (state + action, next observation)."""

    pairs: str | None = None
    """critic pairs JSONL: the expert states and alternatives; a recipe passes its pairs."""
    env: EnvSpec = field(default_factory=EnvSpec)
    """where the actions are executed; a recipe fills it from its `env` section."""
    transitions: Literal["alternative", "both"] = "alternative"
    """which actions' outcomes are predicted (choice 2)."""


def world_model_messages(state: StateRecord, action: str, prompt_cfg: PromptConfig) -> list[dict[str, str]]:
    """The next-observation prediction prompt (choice 1)."""
    body = render_state(state, prompt_cfg, with_admissible=False)
    body += f"\n\nAction: {action}\n\nWhat does the environment show after this action? Answer with the observation only."
    return [{"role": "system", "content": WORLD_MODEL_SYSTEM}, {"role": "user", "content": body}]


def next_observation_target(observation: str, prompt_cfg: PromptConfig) -> str:
    """The completion: the observation, whitespace-normalised and cut like observations in prompts.

    >>> next_observation_target('You open the door.\\n  It is dark. ', PromptConfig())
    'You open the door. It is dark.'
    """
    text = " ".join(observation.split())
    limit = prompt_cfg.max_observation_chars
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def transition_rows(
    pairs: list[CriticPair], outcomes: list[dict[str, Any]], prompt_cfg: PromptConfig, which: str
) -> list[dict[str, Any]]:
    """One row per executed (state, action): the alternative's, and with which='both' the expert's."""
    rows = []
    for p, o in zip(pairs, outcomes, strict=True):
        todo = [(p.alternative, o["alternative_outcome"])]
        if which == "both":
            todo.append((p.expert_action, o["expert_outcome"]))
        for action, outcome in todo:
            target = next_observation_target(outcome["observation"], prompt_cfg)
            rows.append(sft_row(world_model_messages(p.state, action, prompt_cfg), target, False, pair_id=p.pair_id))
    return rows


def train_world_model(cfg: WorldModelConfig, pairs_path: str | None = None) -> Path:
    """Run implicit world modeling; returns output_dir/final (a finished stage is not retrained)."""
    from accelerate import PartialState

    pairs_path = pairs_path or cfg.pairs
    splits = pair_splits(cfg, pairs_path, STAGE, "implicit world modeling")
    if splits is None:
        return final_dir(cfg)
    train_pairs, held_pairs = splits
    with PartialState().main_process_first():  # the main process executes; the others resume a full file
        outcomes = execute_pairs(train_pairs + held_pairs, cfg.env, shared_outcomes_path(cfg.output_dir, pairs_path, cfg.env))
    n = len(train_pairs)
    train = transition_rows(train_pairs, outcomes[:n], cfg.prompt, cfg.transitions)
    held = transition_rows(held_pairs, outcomes[n:], cfg.prompt, cfg.transitions)
    return train_sft(cfg, STAGE, train, held, {"pairs": n, "transitions": cfg.transitions})
