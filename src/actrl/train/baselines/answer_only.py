"""The ACT stage without reasoning: the paper's v2 control "RL without reasoning" on the same pairs.

Exactly the ACT stage (GRPO on critic prompts, the same choice reward, the same pairs and
epochs), but the critic prompt asks for the answer only and completions are capped at the answer
tag (32 tokens): the model cannot reason before choosing. Comparing `act_answer_only -> il` with
`act -> il` (whose ACT stage has `prompt.thinking: true`) isolates what the free reasoning adds.

    actrl run baselines-controls-twx       # methods: act -> il, act_answer_only -> il, ...

Choices the paper left open:
1. A separate stage name rather than a setting of `act`, so one recipe holds both rows (a recipe
   has one `act` section); its settings live under `stages: {act_answer_only: {...}}`.
2. `prompt.thinking` must be false (an error otherwise, never silently switched off), and the
   completion limit stays the ACT stage's answer-only default unless set.
"""

from __future__ import annotations

from dataclasses import dataclass

from actrl.train.act import ACTConfig, train_act

__all__ = ["ACTAnswerOnlyConfig", "train_act"]


@dataclass
class ACTAnswerOnlyConfig(ACTConfig):
    """ACTConfig whose critic prompt has no reasoning (choice 2)."""

    def validate(self) -> None:
        super().validate()
        if self.prompt.thinking:
            raise ValueError(
                "prompt.thinking=true: act_answer_only is the ACT stage without reasoning; set "
                "prompt.thinking=false for it (stages.act_answer_only.prompt.thinking in a recipe)"
            )
