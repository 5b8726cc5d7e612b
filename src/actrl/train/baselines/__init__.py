"""Baselines and controls of the ACT paper, as recipe stages (docs/baselines.md).

- `early_experience` (reflection.py): Early Experience self-reflection, the paper's "Early
  Experience" row: execute expert and alternative actions, reflect, SFT on reflections + expert data.
- `world_model` (world_model.py): Early Experience implicit world modeling; `world_model -> il`.
- `choice_sft` (choice_sft.py): SFT on the critic prompt's right answer, the ACT stage's control.
- `dpo` (dpo.py): TRL DPO with chosen = expert action, rejected = alternative, on the same pairs.
- `act_answer_only` (answer_only.py): the ACT stage without reasoning.
IL -> IL and IL -> RL -> RL are chains of the existing stages; the shipped recipes list them.

    actrl run baselines-controls-twx    # or any recipe whose methods name these stages
"""
