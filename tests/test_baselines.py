"""Baselines and controls: executed outcomes, Early Experience, SFT on the choice, DPO, ACT without
reasoning, and a recipe of them through the real CLI. Real TextWorldExpress, the tiny model, TRL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from actrl.cli import main
from actrl.config import ConfigError, load_config
from actrl.data.outcomes import EnvSpec, execute_pairs, shared_outcomes_path, task_from_id
from actrl.data.prompts import PromptConfig, action_completion
from actrl.data.records import read_jsonl, read_pairs, read_trajectories
from actrl.envs import EnvError
from actrl.train.baselines.answer_only import ACTAnswerOnlyConfig
from actrl.train.baselines.choice_sft import ChoiceSFTConfig, choice_rows, train_choice_sft
from actrl.train.baselines.dpo import DPOStageConfig, preference_rows, train_dpo
from actrl.train.baselines.reflection import ReflectionConfig, train_early_experience
from actrl.train.baselines.world_model import WorldModelConfig, train_world_model
from actrl.train.metrics import read_metrics

HERE = Path(__file__).parent
# real TextWorldExpress data (tests/data/make_twx_coin.py): 8 'coin' expert trajectories, 55 critic pairs
EXPERTS, PAIRS = HERE / "data" / "twx_coin_experts.jsonl", HERE / "data" / "twx_coin_pairs.jsonl"
# short prompts keep a CPU training step to a second or two
SHORT = {"prompt.history_window": 0, "prompt.max_observation_chars": 80}
SHORT_PROMPT_CFG = PromptConfig(history_window=0, max_observation_chars=80)
# the fixture's games: TextWorldExpress 'coin' with four rooms and doors (tests/data/make_twx_coin.py)
TWX_COIN = {"name": "textworld_express", "kwargs": {"game_params": {"coin": {"numLocations": 4, "includeDoors": 1}}}}
ENV_OVERRIDES = ["env.name=textworld_express", "env.kwargs.game_params.coin.numLocations=4",
                 "env.kwargs.game_params.coin.includeDoors=1"]


def overrides(**kw: object) -> list[str]:
    """key=value strings for load_config, with the short prompt settings."""
    return [f"{k}={v}" for k, v in {**SHORT, **kw}.items()]


def _weights(model_dir: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


def _changed(before: str | Path, after: str | Path) -> float:
    a, b = _weights(before), _weights(after)
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def _few_pairs(tmp_path: Path, n_tasks: int = 2) -> Path:
    """The fixture pairs of the first `n_tasks` tasks (each task replays its expert path)."""
    pairs = read_pairs(PAIRS)
    tasks = sorted({p.task_id for p in pairs})[:n_tasks]
    out = tmp_path / "pairs.jsonl"
    out.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs if p.task_id in tasks))
    return out


# ----------------------------------------------------------------------------- outcomes


def test_task_ids_parse_back_into_tasks():
    task = task_from_id("textworld_express/coin/train/3")
    assert (task.env, task.name, task.split, task.variation) == ("textworld_express", "coin", "train", 3)
    assert task_from_id("alfworld/look_at_obj/trial_T2019/valid_seen/0").name == "look_at_obj/trial_T2019"


def test_outcomes_replay_the_expert_prefix_and_record_both_next_observations(tmp_path):
    pairs = read_pairs(_few_pairs(tmp_path))
    trajs = {t.task_id: t for t in read_trajectories(EXPERTS)}
    out = tmp_path / "outcomes.jsonl"
    records = execute_pairs(pairs, EnvSpec(**TWX_COIN), out)
    assert [r["pair_id"] for r in records] == [p.pair_id for p in pairs]
    for p, r in zip(pairs, records, strict=True):
        steps = trajs[p.task_id].steps
        # the expert's outcome is the next state the expert trajectory recorded (or its final step)
        if p.t + 1 < len(steps):
            assert r["expert_outcome"]["observation"] == steps[p.t + 1].observation
        else:
            assert r["expert_outcome"]["won"] and r["expert_outcome"]["done"]
        assert r["expert_outcome"]["score"] == steps[p.t].score
        alt = r["alternative_outcome"]["observation"]
        assert alt and alt != r["expert_outcome"]["observation"], p.pair_id
    # resume: a torn file loses only its last record, and only that pair is executed again
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][:20])
    again = execute_pairs(pairs, EnvSpec(**TWX_COIN), out)
    assert again == records and len(read_jsonl(out)) == len(pairs)


def test_outcomes_from_other_environment_settings_are_an_error(tmp_path):
    pairs = [p for p in read_pairs(_few_pairs(tmp_path, 1)) if p.t >= 1][:1]
    with pytest.raises(EnvError, match="another observation"):
        execute_pairs(pairs, EnvSpec(name="textworld_express"), tmp_path / "o.jsonl")  # the default 1-room coin


# ----------------------------------------------------------------------------- stages


@pytest.mark.slow
def test_choice_sft_targets_the_expert_position_and_trains(tmp_path, tiny_model_dir):
    pairs = read_pairs(PAIRS)
    cfg = load_config(ChoiceSFTConfig, None, overrides(
        output_dir=tmp_path / "choice", **{"model.name": tiny_model_dir}, max_steps=3, per_device_batch_size=4,
        learning_rate=1e-3, eval_fraction=0.25, save_steps=10))
    rows = choice_rows(pairs, cfg, both_orders=True)
    assert len(rows) == 2 * len(pairs)
    for r in rows[:6]:
        pair = next(p for p in pairs if p.pair_id == r["pair_id"])
        shown = r["prompt"][-1]["content"]
        position = 1 if f"Action 1: {pair.expert_action}\n" in shown else 2
        assert f"Action {position}: {pair.expert_action}\n" in shown
        assert r["completion"][0]["content"] == f"<answer>{position}</answer>"
    final = train_choice_sft(cfg, str(PAIRS))
    assert _changed(tiny_model_dir, final) > 0
    logged = read_metrics(cfg.output_dir)
    assert any("choice_sft/loss" in r for r in logged) and any("choice_sft/eval_loss" in r for r in logged)


def test_choice_sft_targets_the_expert_action_text_when_the_critic_answers_by_action(tmp_path):
    pairs = read_pairs(PAIRS)
    cfg = load_config(ChoiceSFTConfig, None, overrides(output_dir=tmp_path / "choice", **{"prompt.critic_answer": "action"}))
    for r in choice_rows(pairs, cfg, both_orders=True)[:6]:
        pair = next(p for p in pairs if p.pair_id == r["pair_id"])
        assert "copied exactly" in r["prompt"][-1]["content"]
        assert r["completion"][0]["content"] == f"<answer>{pair.expert_action}</answer>"


def test_choice_sft_and_act_answer_only_refuse_a_thinking_prompt(tmp_path):
    for cls in (ChoiceSFTConfig, ACTAnswerOnlyConfig):
        with pytest.raises(ConfigError, match="prompt.thinking=true"):
            load_config(cls, None, [f"output_dir={tmp_path}", "prompt.thinking=true"])


@pytest.mark.slow
def test_dpo_prefers_the_expert_action_and_moves_its_margin(tmp_path, tiny_model_dir):
    from actrl.models.generation import HFGenerator
    from actrl.models.scoring import completion_logprobs

    pairs = read_pairs(PAIRS)[:8]
    rows = preference_rows(pairs, SHORT_PROMPT_CFG)
    for p, r in zip(pairs, rows, strict=True):
        assert r["chosen"][0]["content"] == action_completion(p.expert_action)
        assert r["rejected"][0]["content"] == action_completion(p.alternative)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs))
    cfg = load_config(DPOStageConfig, None, overrides(
        output_dir=tmp_path / "dpo", **{"model.name": tiny_model_dir}, max_steps=4, per_device_batch_size=4,
        learning_rate=1e-3, eval_fraction=0.0, save_steps=10))
    final = train_dpo(cfg, str(path))
    assert _changed(tiny_model_dir, final) > 0
    assert any("rewards/margins" in r for r in read_metrics(cfg.output_dir))

    def log_ratio(model_dir: str) -> list[float]:
        """log pi(expert) - log pi(alternative) for each trained pair."""
        gen = HFGenerator.load(model_dir)
        out = []
        for r in rows:
            chosen, rejected = completion_logprobs(gen, r["prompt"], [r["chosen"][0]["content"], r["rejected"][0]["content"]])
            out.append(chosen - rejected)
        return out

    # DPO's implicit reward margin on the trained pairs: the expert action gained on the alternative
    before, after = log_ratio(tiny_model_dir), log_ratio(str(final))
    margins = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(margins) / len(margins) > 0.1 and sum(m > 0 for m in margins) >= 6, margins


@pytest.mark.slow
def test_early_experience_reflects_on_both_outcomes_and_trains_on_them(tmp_path, tiny_model_dir):
    pairs_path = _few_pairs(tmp_path)
    cfg = load_config(ReflectionConfig, None, overrides(
        output_dir=tmp_path / "ee", **{"model.name": tiny_model_dir}, experts=EXPERTS, max_steps=2,
        per_device_batch_size=4, learning_rate=1e-3, eval_fraction=0.0, save_steps=10,
        **{"reflection_sampling.max_new_tokens": 12}) + ENV_OVERRIDES)
    final = train_early_experience(cfg, str(pairs_path))
    assert _changed(tiny_model_dir, final) > 0
    pairs = read_pairs(pairs_path)
    reflections = read_jsonl(Path(cfg.output_dir) / "reflections.jsonl")
    assert sorted(r["pair_id"] for r in reflections) == sorted(p.pair_id for p in pairs)
    outcomes = {r["pair_id"]: r for r in read_jsonl(shared_outcomes_path(cfg.output_dir, pairs_path, cfg.env))}
    for r in reflections:
        o = outcomes[r["pair_id"]]
        # both outcomes are in the record and in the prompt the reflecting model was given
        assert r["expert_observation"] == o["expert_outcome"]["observation"]
        assert r["alternative_observation"] == o["alternative_outcome"]["observation"]
        assert r["expert_observation"] != r["alternative_observation"]
        for obs in (r["expert_observation"], r["alternative_observation"]):
            assert " ".join(obs.split())[: SHORT_PROMPT_CFG.max_observation_chars - 3].rstrip() in r["prompt"]
        assert r["expert_action"] in r["prompt"] and r["alternative"] in r["prompt"]
        assert r["model"] == tiny_model_dir
    plan = yaml.safe_load((Path(cfg.output_dir) / "config.yaml").read_text())
    assert plan["n_train_pairs"] == len(pairs)
    # a rerun is a no-op: final/ exists
    assert train_early_experience(cfg, str(pairs_path)) == final


@pytest.mark.slow
def test_world_model_predicts_the_alternatives_outcome_and_trains(tmp_path, tiny_model_dir):
    from actrl.train.baselines.world_model import next_observation_target, transition_rows

    pairs_path = _few_pairs(tmp_path)
    cfg = load_config(WorldModelConfig, None, overrides(
        output_dir=tmp_path / "wm", **{"model.name": tiny_model_dir}, max_steps=2, per_device_batch_size=4,
        learning_rate=1e-3, eval_fraction=0.0, save_steps=10) + ENV_OVERRIDES)
    final = train_world_model(cfg, str(pairs_path))
    assert _changed(tiny_model_dir, final) > 0
    pairs = read_pairs(pairs_path)
    outcomes = read_jsonl(shared_outcomes_path(cfg.output_dir, pairs_path, cfg.env))
    by_id = {o["pair_id"]: o for o in outcomes}
    rows = transition_rows(pairs, [by_id[p.pair_id] for p in pairs], cfg.prompt, "alternative")
    for p, r in zip(pairs, rows, strict=True):
        assert f"Action: {p.alternative}\n" in r["prompt"][-1]["content"]
        target = " ".join(by_id[p.pair_id]["alternative_outcome"]["observation"].split())
        assert r["completion"][0]["content"] == next_observation_target(target, cfg.prompt)
        assert len(r["completion"][0]["content"]) <= cfg.prompt.max_observation_chars
    both = transition_rows(pairs, [by_id[p.pair_id] for p in pairs], cfg.prompt, "both")
    assert len(both) == 2 * len(pairs)


# ----------------------------------------------------------------------------- recipe


@pytest.mark.parametrize("name", ["baselines-twx", "baselines-scienceworld-qwen3-8b", "baselines-alfworld-qwen3-8b"])
def test_shipped_baseline_recipes_build_every_stage_with_matched_epochs(name, tmp_path):
    from actrl.pipeline import load_recipe, parse_method, stage_config

    recipe = load_recipe(name)
    built = {}
    for stage in {s for m in recipe.methods for s in parse_method(m)}:
        inputs = {"experts": tmp_path / "experts.jsonl"} if stage == "early_experience" else {}
        built[stage] = stage_config(recipe, stage, "base", tmp_path / "data.jsonl", tmp_path, inputs)
    # the stages that replace the ACT stage train as many epochs as it; Early Experience as many as IL
    for stage in ("act_answer_only", "choice_sft", "dpo", "world_model"):
        if stage in built:
            assert built[stage].epochs == built["act"].epochs, stage
    assert built["early_experience"].epochs == built["il"].epochs
    assert built["early_experience"].experts == str(tmp_path / "experts.jsonl")
    assert built["world_model"].env.name == built["early_experience"].env.name == recipe.env.name
    assert built["act"].prompt.thinking == (name != "baselines-twx")
    assert not built.get("act_answer_only", built["il"]).prompt.thinking


@pytest.mark.slow
def test_baselines_recipe_runs_every_baseline_stage_through_the_cli_and_reports_missing_cells(tmp_path, tiny_model_dir):
    recipe = yaml.safe_load((Path(__file__).parents[1] / "src/actrl/recipes/baselines-twx.yaml").read_text())
    tiny = {"max_steps": 1, "per_device_batch_size": 4, "save_steps": 1, "eval_fraction": 0.0}
    grpo = {**tiny, "num_generations": 2}
    recipe.update(
        model={"name": tiny_model_dir},
        output_root=str(tmp_path / "runs"),
        prompt={"history_window": 0, "max_observation_chars": 80},
        data={"experts": str(EXPERTS), "pairs": str(_few_pairs(tmp_path)), "heldout_num": 1, "workers": 1},
        il=tiny,
        stages={
            "choice_sft": tiny,
            "dpo": tiny,
            "act_answer_only": {**grpo, "pair_eval": False},
            "early_experience": {**tiny, "reflection_sampling": {"max_new_tokens": 8, "batch_size": 32}},
            "world_model": tiny,
        },
        methods=["early_experience", "world_model -> il", "choice_sft", "dpo", "act_answer_only"],
        eval={"next_action": True, "pair_accuracy": False, "agent": False, "batch_size": 16},
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "runs" / recipe["name"] / "seed0"
    results = json.loads((run / "results.json").read_text())
    assert list(results["methods"]) == recipe["methods"]
    for method, entry in results["methods"].items():
        # the tied tiny model answers newlines after these few steps: no action tag, nothing right
        assert entry["metrics"] == {"next_action_accuracy": 0.0, "action_format_failure_rate": 1.0}, method
        assert entry["model"].endswith("final"), method
    stages = sorted(p.name.split("-")[0] for p in (run / "stages").iterdir())
    # every baseline stage once; both Early Experience stages read one shared outcomes file
    assert stages == sorted(["outcomes", "early_experience", "world_model", "il", "choice_sft", "dpo", "act_answer_only"])
    ee = next((run / "stages").glob("early_experience-*"))
    n_pairs = len(read_pairs(tmp_path / "pairs.jsonl"))
    assert len(read_jsonl(ee / "reflections.jsonl")) == len(read_jsonl(next((run / "stages").glob("outcomes-*")))) == n_pairs
    # the report: a metric measured for some methods only shows '-' for the others, never 0
    cut = json.loads((run / "results.json").read_text())
    cut["methods"]["world_model -> il"]["metrics"].pop("next_action_accuracy")
    other = tmp_path / "cut" / "results.json"
    other.parent.mkdir()
    other.write_text(json.dumps(cut))
    assert main(["report", str(other), "--out", str(tmp_path / "report")]) == 0
    lines = (tmp_path / "report" / "report.md").read_text().splitlines()
    column = next(line for line in lines if line.startswith("| method |")).split("|").index(" next-action acc. % ")
    cells = {line.split("|")[1].strip(): line.split("|")[column].strip() for line in lines if line.startswith("| ")}
    assert cells["world_model -> il"] == "-"
    assert cells["dpo"] == f"{100 * results['methods']['dpo']['metrics']['next_action_accuracy']:.1f}"


def test_actrl_train_runs_every_registered_stage_baselines_included(tmp_path, tiny_model_dir, capsys):
    from actrl.cli import main
    from actrl.train.stages import STAGES

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in STAGES) and len(STAGES) == 8
    args = ["train", "dpo", "--pairs", str(_few_pairs(tmp_path)), f"output_dir={tmp_path / 'dpo'}",
            f"model.name={tiny_model_dir}", "max_steps=1", "per_device_batch_size=4", "eval_fraction=0.0"]
    assert main(args) == 0
    assert f"[actrl] dpo: final checkpoint {tmp_path / 'dpo' / 'final'}" in capsys.readouterr().out
    assert (tmp_path / "dpo" / "final" / "model.safetensors").exists()
    with pytest.raises(SystemExit):  # Early Experience reads both kinds: both flags exist
        main(["train", "early_experience", "--help"])
    assert "--pairs" in (out := capsys.readouterr().out) and "--experts" in out
