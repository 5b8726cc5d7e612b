"""Early Experience, self-reflection (Zhang et al. 2025): the paper's "Early Experience" baseline.

From each critic pair's expert state, the expert action and the alternative are executed in the
environment (`actrl.data.outcomes`) and both next observations recorded; a model (the policy itself
by default) writes why the expert action is better given those outcomes; the policy is then
fine-tuned on (reflection + expert action) mixed with the expert data (plain IL rows). As a recipe
method: `early_experience`, beside `il` (same epochs, same expert data).

    actrl run baselines-early-experience-twx   # methods: il, early_experience, world_model -> il

Files: reflections.jsonl in the stage directory (per pair: both actions, both outcomes, the prompt
and the reflection) and the executed outcomes in `stages/outcomes-<hash>.jsonl`, shared with the
world-modeling stage of the same run; both resumable.

Choices the paper left open (the SFT ones: train/baselines/sft.py):
1. Reflection rows use the action prompt *with* thinking and the completion
   "<think>reflection</think>\\n<action>expert action</action>", whatever `prompt.thinking` says;
   the expert rows use the stage's prompt, as IL. So under an answer-only evaluation the model
   still answers directly, and the reflection shapes it through the mixed training.
2. One reflection per pair, sampled (temperature 0.7, top-p 0.95, 256 new tokens); tags the
   model writes inside it (<think>, <action>) are removed so the target stays parseable; an empty
   reflection drops its row (counted).
3. Held-out tasks come from the expert split (`eval_fraction` or `heldout`, as IL); their pairs are
   not executed or trained on, and their expert rows give `early_experience/eval_loss`, comparable
   to `il/eval_loss`.
4. Matched epochs: `epochs` counts passes over the mixed data (expert rows + reflection rows), so
   at equal epochs this stage takes more steps than IL; set `max_steps` to match steps instead.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from actrl.config import ConfigError
from actrl.data.outcomes import EnvSpec, execute_pairs, shared_outcomes_path
from actrl.data.prompts import PromptConfig, action_completion, action_messages, action_rows, render_state
from actrl.data.records import CriticPair, JsonlWriter, read_jsonl, read_pairs
from actrl.models.generation import SamplingConfig
from actrl.models.loading import ModelConfig
from actrl.train.baselines.sft import SFTStageConfig, sft_row, train_sft
from actrl.train.common import expert_splits, final_dir, is_main_process, write_run_config

STAGE = "early_experience"
REFLECTIONS = "reflections.jsonl"
REFLECTION_SYSTEM = "You analyse the decisions of agents acting in text environments and explain them clearly."


def _reflection_sampling() -> SamplingConfig:
    return SamplingConfig(temperature=0.7, top_p=0.95, max_new_tokens=256, batch_size=16)


@dataclass
class ReflectionConfig(SFTStageConfig):
    """Early Experience self-reflection: execute, reflect, then SFT on reflections + expert data."""

    pairs: str | None = None
    """critic pairs JSONL: the expert states and alternatives; a recipe passes its pairs."""
    experts: str | None = None
    """expert trajectories JSONL mixed into training; a recipe passes its experts."""
    env: EnvSpec = field(default_factory=EnvSpec)
    """where the actions are executed; a recipe fills it from its `env` section."""
    reflection_model: str | None = None
    """the model that writes the reflections; None: the policy this stage starts from."""
    reflection_dtype: str = "auto"
    """dtype of `reflection_model` (auto: bf16 on CPU and GPU); None model: the policy's own dtype."""
    reflection_backend: Literal["auto", "transformers", "vllm"] = "auto"
    reflection_sampling: SamplingConfig = field(default_factory=_reflection_sampling)
    """how reflections are sampled (choice 2)."""
    expert_data: bool = True
    """mix the plain expert rows (IL's data) into training, as Early Experience does."""


def reflection_messages(pair: CriticPair, outcomes: dict[str, Any], prompt_cfg: PromptConfig) -> list[dict[str, str]]:
    """The prompt asking why the expert action beats the alternative, given what each led to."""
    limit = prompt_cfg.max_observation_chars
    body = (
        render_state(pair.state, prompt_cfg, with_admissible=False)
        + f"\n\nThe expert took the action: {pair.expert_action}"
        + f"\nWhat followed: {_clip(outcomes['expert_outcome']['observation'], limit)}"
        + f"\n\nAn alternative action was: {pair.alternative}"
        + f"\nWhat followed: {_clip(outcomes['alternative_outcome']['observation'], limit)}"
        + "\n\nIn a few sentences, explain why the expert action is better than the alternative in this "
        "state, given what each action led to. Do not name any other action."
    )
    return [{"role": "system", "content": REFLECTION_SYSTEM}, {"role": "user", "content": body}]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


_TAGS = re.compile(r"<\s*/?\s*(think|action|answer)\s*>", re.IGNORECASE)


def clean_reflection(text: str) -> str:
    """The reflection without tags that would break the target's format (choice 2).

    >>> clean_reflection(' <think>Opening it</think> reveals the coin. <action>take coin</action>')
    'Opening it reveals the coin. take coin'
    """
    return " ".join(_TAGS.sub(" ", text).split())


def write_reflections(
    pairs: list[CriticPair], outcomes: list[dict[str, Any]], cfg: ReflectionConfig, out: Path
) -> list[dict[str, Any]]:
    """One reflection per pair into `out` (resumed by pair id, written per generation batch)."""
    from actrl.models.generation import make_generator

    done = {r["pair_id"]: r for r in read_jsonl(out, allow_torn_tail=True)} if out.exists() else {}
    todo = [(p, o) for p, o in zip(pairs, outcomes, strict=True) if p.pair_id not in done]
    if todo:
        model = cfg.reflection_model or cfg.model.name
        print(f"[actrl] {STAGE}: writing {len(todo)} reflections with {model}")
        writer_model = (ModelConfig(name=cfg.reflection_model, dtype=cfg.reflection_dtype)
                        if cfg.reflection_model else cfg.model)
        gen = make_generator(writer_model, backend=cfg.reflection_backend, thinking=False)
        chunk = cfg.reflection_sampling.batch_size * 4
        with JsonlWriter(out) as writer:
            for i in range(0, len(todo), chunk):
                part = todo[i : i + chunk]
                prompts = [reflection_messages(p, o, cfg.prompt) for p, o in part]
                texts = gen.generate(prompts, replace(cfg.reflection_sampling, n=1, seed=cfg.reflection_sampling.seed + i))
                for (p, o), msgs, outs in zip(part, prompts, texts, strict=True):
                    writer.write(
                        {
                            "pair_id": p.pair_id,
                            "task_id": p.task_id,
                            "t": p.t,
                            "expert_action": p.expert_action,
                            "alternative": p.alternative,
                            "expert_observation": o["expert_outcome"]["observation"],
                            "alternative_observation": o["alternative_outcome"]["observation"],
                            "model": model,
                            "prompt": msgs[-1]["content"],
                            "reflection": clean_reflection(outs[0]),
                        }
                    )
        gen.close()
        gc.collect()
        done = {r["pair_id"]: r for r in read_jsonl(out)}
    return [done[p.pair_id] for p in pairs]


def reflection_rows(pairs: list[CriticPair], reflections: list[dict[str, Any]], prompt_cfg: PromptConfig) -> list[dict[str, Any]]:
    """(action prompt with thinking, "<think>reflection</think> + expert action") per pair (choice 1)."""
    thinking = replace(prompt_cfg, thinking=True)
    rows = []
    for p, r in zip(pairs, reflections, strict=True):
        if r["reflection"]:
            target = f"<think>{r['reflection']}</think>\n{action_completion(p.expert_action)}"
            rows.append(sft_row(action_messages(p.state, thinking), target, True, pair_id=p.pair_id))
    return rows


def train_early_experience(cfg: ReflectionConfig, pairs_path: str | None = None) -> Path:
    """Run Early Experience self-reflection; returns output_dir/final (a finished stage is not retrained)."""
    from accelerate import PartialState

    pairs_path = pairs_path or cfg.pairs
    if not pairs_path or not cfg.experts:
        raise ConfigError("Early Experience needs critic pairs and expert trajectories: pairs=pairs.jsonl experts=experts.jsonl")
    if cfg.reflection_dtype not in ("auto", "bfloat16", "float16", "float32"):
        raise ConfigError(f"reflection_dtype='{cfg.reflection_dtype}': expected auto, bfloat16, float16 or float32")
    final = final_dir(cfg)
    if final.exists():
        print(f"[actrl] {STAGE}: {final} exists; stage already finished")
        return final
    train_trajs, held_trajs = expert_splits(cfg, cfg.experts)
    held_tasks = {t.task_id for t in held_trajs}
    pairs = [p for p in read_pairs(pairs_path) if p.task_id not in held_tasks]
    if not pairs:
        raise ConfigError(f"{pairs_path}: no critic pair belongs to a training task of {cfg.experts}")
    write_run_config(cfg, STAGE, {"pairs": str(pairs_path), "experts": str(cfg.experts), "n_train_pairs": len(pairs)})

    out = Path(cfg.output_dir)
    # the main process executes and reflects; the others then find both files complete
    with PartialState().main_process_first():
        outcomes = execute_pairs(pairs, cfg.env, shared_outcomes_path(out, pairs_path, cfg.env))
        reflections = write_reflections(pairs, outcomes, cfg, out / REFLECTIONS)
    rows = reflection_rows(pairs, reflections, cfg.prompt)
    if is_main_process() and len(rows) < len(pairs):
        print(f"[actrl] {STAGE}: {len(pairs) - len(rows)} of {len(pairs)} reflections were empty; their rows are dropped")
    expert = [sft_row(r["prompt"], r["completion"][0]["content"], cfg.prompt.thinking) for r in action_rows(train_trajs, cfg.prompt)]
    held = [sft_row(r["prompt"], r["completion"][0]["content"], cfg.prompt.thinking) for r in action_rows(held_trajs, cfg.prompt)]
    plan = {"reflection rows": len(rows), "expert rows": len(expert) if cfg.expert_data else 0}
    return train_sft(cfg, STAGE, rows + (expert if cfg.expert_data else []), held, plan)
