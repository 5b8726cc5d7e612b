"""The registry of training stages: one entry per stage, read by `actrl train` and the recipe pipeline.

    from actrl.train.stages import STAGES, stage
    spec = stage("dpo"); cfg_cls, train = spec.config_class(), spec.train_function()

An entry names its module, config class and train function as strings, so that reading the table
(recipe validation, `actrl --help`) imports no stage module: importing one pulls in TRL and takes
seconds. `reads` is what the stage trains on; the first kind is the data file passed to the train
function (`--pairs` / `--experts` on the command line), each further kind is set as the config
field of that name. A stage whose config has an `env` field executes actions in the environment.

A new stage is one module with a config dataclass and `train_x(cfg, data_path) -> final dir`, plus
one line here.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actrl.config import ConfigError


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    config: str
    train: str
    reads: tuple[str, ...]
    """data kinds, e.g. ("pairs",) or ("pairs", "experts"): the first is the train function's data path."""
    help: str

    def config_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    def train_function(self) -> Callable[[Any, str | None], Path]:
        return getattr(importlib.import_module(self.module), self.train)

    def config_fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.config_class())}


_ALL = [
    Stage("act", "actrl.train.act", "ACTConfig", "train_act", ("pairs",),
          "ACT stage: GRPO on critic pairs (which action is better?)"),
    Stage("il", "actrl.train.il", "ILConfig", "train_il", ("experts",), "IL stage: SFT on expert actions"),
    Stage("rl", "actrl.train.rl", "RLConfig", "train_rl", ("experts",),
          "RL stage: GRPO on next-action generation, expert-match reward"),
    # baselines and controls (docs/baselines.md)
    Stage("act_answer_only", "actrl.train.baselines.answer_only", "ACTAnswerOnlyConfig", "train_act", ("pairs",),
          "control: the ACT stage asking for the answer only (no reasoning before the choice)"),
    Stage("choice_sft", "actrl.train.baselines.choice_sft", "ChoiceSFTConfig", "train_choice_sft", ("pairs",),
          "baseline: SFT on the critic question with the expert's number as the answer"),
    Stage("dpo", "actrl.train.baselines.dpo", "DPOStageConfig", "train_dpo", ("pairs",),
          "baseline: DPO with the expert action preferred over the alternative"),
    Stage("early_experience", "actrl.train.baselines.reflection", "ReflectionConfig", "train_early_experience",
          ("pairs", "experts"), "baseline: Early Experience self-reflection (executes the alternatives)"),
    Stage("world_model", "actrl.train.baselines.world_model", "WorldModelConfig", "train_world_model", ("pairs",),
          "baseline: Early Experience implicit world modelling (executes the alternatives)"),
]
STAGES: dict[str, Stage] = {s.name: s for s in _ALL}


def stage(name: str, where: str = "stage") -> Stage:
    """The registered stage `name`; an unknown name is a ConfigError naming the nearest one."""
    if name not in STAGES:
        near = difflib.get_close_matches(name, list(STAGES), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else f"; known stages: {', '.join(STAGES)}"
        raise ConfigError(f"{where}: unknown stage '{name}'{hint}")
    return STAGES[name]


__all__ = ["STAGES", "Stage", "stage"]
