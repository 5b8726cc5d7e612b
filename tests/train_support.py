"""Helpers for the training-stage tests: real TextWorldExpress data and a format-primed tiny model.

The tiny random Llama never writes "<answer>N</answer>" or "<action>...</action>" on its own, so
every reward would be the format penalty and every GRPO group would have zero variance (no signal).
`primed_model` fine-tunes it briefly with TRL's SFTTrainer on the real TWX data: critic prompts
with the answer drawn at random (it learns the answer format, not the task) and action prompts
with the expert action. GRPO then sees rewards that differ within a group. The primed model is
cached like the tiny model itself (measured: at temperature 1, 5% format failures on critic
prompts and a 36/64 split between the two options).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from actrl.data.critic import critic_messages
from actrl.data.prompts import PromptConfig, action_completion, action_messages
from actrl.data.records import read_pairs, read_trajectories
from actrl.models.loading import cache_dir

DATA = Path(__file__).parent / "data"
PAIRS = DATA / "twx_coin_pairs.jsonl"
EXPERTS = DATA / "twx_coin_experts.jsonl"
# short prompts keep a CPU training step to a second or two
SHORT_PROMPT = {"prompt.history_window": 0, "prompt.max_observation_chars": 40}
SHORT_PROMPT_CFG = PromptConfig(history_window=0, max_observation_chars=40)


def overrides(**kw: object) -> list[str]:
    """key=value strings for load_config / the CLI, with the short prompt settings."""
    return [f"{k}={v}" for k, v in {**SHORT_PROMPT, **kw}.items()]


def primed_model(tiny_model_dir: str, steps: int = 60, name: str = "tiny-llama-primed-v3") -> str:
    out = cache_dir() / "models" / name
    if (out / "config.json").exists():
        return str(out)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(0)
    rows = []
    for p in read_pairs(PAIRS):
        answer = f"<answer>{rng.choice((1, 2))}</answer>"
        rows.append({"prompt": critic_messages(p.state, *p.options, SHORT_PROMPT_CFG), "completion": answer})
    for traj in read_trajectories(EXPERTS):
        for _, state, expert in traj.states():
            rows.append({"prompt": action_messages(state, SHORT_PROMPT_CFG), "completion": action_completion(expert)})
    rows = [{**r, "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows]
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    args = SFTConfig(
        output_dir=str(tmp / "trainer"),
        max_steps=steps,
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        per_device_train_batch_size=8,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        report_to=[],
        save_strategy="no",
        logging_steps=steps,
        disable_tqdm=True,
        seed=0,
    )
    trainer = SFTTrainer(model=tiny_model_dir, args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()
    trainer.save_model(str(tmp))
    trainer.processing_class.save_pretrained(str(tmp))
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    os.replace(tmp, out)
    return str(out)
