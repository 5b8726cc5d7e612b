"""Recipes end to end through the real CLI on TextWorldExpress with the tiny model."""

import json
from pathlib import Path

import pytest
import yaml

from actrl.cli import main
from actrl.config import ConfigError
from actrl.pipeline import load_recipe, parse_method

HERE = Path(__file__).parent


def _recipe(tmp_path: Path, tiny_model_dir: str, **changes) -> Path:
    data = yaml.safe_load((HERE / "recipes_tiny_twx.yaml").read_text())
    data["model"]["name"] = tiny_model_dir
    math500 = HERE.parents[1] / "shared" / "data" / "math500.jsonl"
    data["eval"]["reasoning"] = {"math500": {"data": str(math500), "limit": 2, "max_new_tokens": 8}}
    data["output_root"] = str(tmp_path / "runs")
    data.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_methods_parse_into_stage_chains():
    assert parse_method("act -> il -> rl") == ["act", "il", "rl"]
    assert parse_method("prompt") == []


def test_unknown_stage_is_named_with_a_suggestion(tmp_path, tiny_model_dir):
    path = _recipe(tmp_path, tiny_model_dir, methods=["act -> ill"])
    with pytest.raises(ConfigError, match=r"unknown stage 'ill'; did you mean 'il'"):
        load_recipe(str(path))
    assert main(["run", str(path)]) == 2


def test_pairs_policy_must_train_on_expert_data_only(tmp_path, tiny_model_dir):
    path = _recipe(tmp_path, tiny_model_dir, pairs_policy="act -> il")
    with pytest.raises(ConfigError, match=r"pairs_policy: 'act -> il' has stage 'act'; expected stages trained on expert data only"):
        load_recipe(str(path))


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="shipped: .*demo"):
        load_recipe("no-such-recipe")


@pytest.mark.slow
def test_recipe_runs_all_methods_shares_stages_and_skips_finished_work(tmp_path, tiny_model_dir):
    path = _recipe(tmp_path, tiny_model_dir)
    assert main(["run", str(path)]) == 0
    run = tmp_path / "runs" / "tiny-twx" / "seed0"
    results = json.loads((run / "results.json").read_text())
    assert list(results["methods"]) == ["prompt", "il", "act -> il", "act -> rl"]
    for method, entry in results["methods"].items():
        # a few steps leave the tied tiny model answering newlines: every reply a format failure,
        # every agent step invalid (3-step episodes), and nothing right anywhere
        assert entry["metrics"] == {
            "next_action_accuracy": 0.0, "action_format_failure_rate": 1.0, "pair_accuracy": 0.0, "pick_first_rate": None,
            "pair_both_orders_accuracy": 0.0, "critic_format_failure_rate": 1.0, "success_rate": 0.0, "mean_score": 0.0,
            "mean_steps": 3.0, "invalid_rate": 1.0, "stuck_rate": 0.0, "math500": 0.0}, method
    # act -> il and act -> rl start from one shared ACT stage: one act dir, two il dirs (il, act->il)
    stages = sorted(p.name.split("-")[0] for p in (run / "stages").iterdir())
    assert stages == ["act", "il", "il", "rl"]
    assert results["methods"]["act -> il"]["model"].endswith("final")
    report = (run / "report.md").read_text()
    assert "| act -> il |" in report and "next-action acc." in report
    assert "act -> il minus il, next-action accuracy:" in report and "95% CI" in report
    # a rerun trains nothing: every stage's final/ is reused and the results are identical
    mtimes = {p: p.stat().st_mtime for p in (run / "stages").glob("*/final/*")}
    assert main(["run", str(path)]) == 0
    assert json.loads((run / "results.json").read_text())["methods"] == results["methods"]
    assert {p: p.stat().st_mtime for p in (run / "stages").glob("*/final/*")} == mtimes


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parents[1] / "src/actrl/recipes").glob("*.yaml")))
def test_every_shipped_recipe_builds_valid_stage_configs(name):
    from actrl.pipeline import STAGES, stage_config

    recipe = load_recipe(name)
    for stage in {s for m in recipe.methods for s in parse_method(m)}:
        assert stage in STAGES
        cfg = stage_config(recipe, stage, recipe.model.name, Path("data.jsonl"), recipe.run_dir)
        assert cfg.output_dir.startswith(str(recipe.run_dir / "stages" / stage))


@pytest.mark.parametrize("stage", ["act", "il", "rl"])
def test_shipped_stage_configs_load(stage):
    import importlib

    from actrl.config import load_config

    module = importlib.import_module(f"actrl.train.{stage}")
    cls = {"act": module.__dict__.get("ACTConfig"), "il": module.__dict__.get("ILConfig"), "rl": module.__dict__.get("RLConfig")}[stage]
    cfg = load_config(cls, Path(__file__).parents[1] / "configs" / "stages" / f"{stage}.yaml", ["output_dir=out"])
    assert cfg.epochs == 3


@pytest.mark.slow
def test_recipe_with_prefilled_answer_tags_runs_every_stage(tmp_path, tiny_model_dir):
    path = _recipe(tmp_path, tiny_model_dir, methods=["il", "act -> rl"])
    data = yaml.safe_load(path.read_text())
    data["prompt"]["prefill"] = True
    data["eval"].pop("reasoning")
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path)]) == 0
    results = json.loads((tmp_path / "runs" / "tiny-twx" / "seed0" / "results.json").read_text())
    for entry in results["methods"].values():
        # the prefilled "<action>" makes every reply parse as an action (right or wrong)
        assert entry["metrics"]["action_format_failure_rate"] == 0.0


def test_a_setting_added_later_leaves_existing_hashes_alone_at_its_default():
    from actrl.pipeline import _hash

    old = {"stage": "act", "settings": {"prompt": {"prefill": True}}}
    new = {"stage": "act", "settings": {"prompt": {"prefill": True, "critic_answer": "number"}}}
    assert _hash(old) == _hash(new)  # finished stages of an older run dir are still found
    new["settings"]["prompt"]["critic_answer"] = "action"
    assert _hash(old) != _hash(new)


@pytest.mark.slow
def test_stages_from_reuses_a_finished_run_to_evaluate_on_more_held_out_tasks(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run dirs named relative to the working directory, as users write them
    path = _recipe(tmp_path, tiny_model_dir, methods=["il", "act -> il"], output_root="runs")
    data = yaml.safe_load(path.read_text())
    data["eval"] = {"agent": False, "batch_size": 8}
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path)]) == 0
    source = Path("runs/tiny-twx/seed0")
    capsys.readouterr()
    assert main(["run", str(path), "name=tiny-more", "data.heldout_num=3", "--stages-from", str(source)]) == 0
    out = capsys.readouterr().out
    assert "training stage" not in out and out.count("reused from") == 3  # il, act, il after act
    run = Path("runs/tiny-more/seed0")
    links = sorted((run / "stages").iterdir())
    assert len(links) == 3 and all(p.is_symlink() and p.resolve().parent == (source / "stages").resolve() for p in links)
    assert len((run / "heldout_experts.jsonl").read_text().splitlines()) == 3  # the source had 2
    # each method was evaluated with the very checkpoint the source run trained for it
    new = json.loads((run / "results.json").read_text())["methods"]
    old = json.loads((source / "results.json").read_text())["methods"]
    assert all(new[m]["model"].startswith(str(run)) for m in new)
    assert {m: Path(e["model"]).resolve() for m, e in new.items()} == {m: Path(e["model"]).resolve() for m, e in old.items()}
    # bad input: a directory that is no run, or the recipe's own run directory
    assert main(["run", str(path), "name=tiny-again", "--stages-from", "runs"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["run", str(path), "--stages-from", str(source)]) == 2
    assert "this recipe's own run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_select_split_gives_the_act_stage_validation_pairs_to_keep_its_best_checkpoint(tmp_path, tiny_model_dir, capsys):
    path = _recipe(tmp_path, tiny_model_dir, methods=["act -> il"])
    data = yaml.safe_load(path.read_text())
    data["data"].update(select_split="dev", select_num=2)
    data["eval"] = {"agent": False, "batch_size": 8}
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "runs" / "tiny-twx" / "seed0"
    select = run / "select_pairs.jsonl"
    tasks = {json.loads(line)["task_id"] for line in select.read_text().splitlines()}
    assert tasks and all("/dev/" in t for t in tasks)  # validation pairs from the dev split only
    (act,) = (run / "stages").glob("act-*")
    (il,) = (run / "stages").glob("il-*")
    assert yaml.safe_load((act / "config.yaml").read_text())["config"]["select_on"] == str(select)
    assert "select_on" not in yaml.safe_load((il / "config.yaml").read_text())["config"]  # IL keeps its last
    stage = json.loads((act / "final" / "actrl_stage.json").read_text())
    evals = [m for m in map(json.loads, (act / "metrics.jsonl").read_text().splitlines()) if "eval_pair_accuracy" in m]
    assert [m["step"] for m in evals] == [1, 2] and stage["best_checkpoint"] is not None
    # bad input: selecting on the held-out (evaluation) split
    capsys.readouterr()
    assert main(["run", str(path), "name=tiny-sel", "data.select_split=test"]) == 2
    assert "is the held-out split" in capsys.readouterr().err


@pytest.mark.slow
def test_pairs_policy_il_samples_the_alternatives_from_the_il_methods_own_stage(tmp_path, tiny_model_dir, capsys):
    path = _recipe(tmp_path, tiny_model_dir, methods=["il", "act -> il"], pairs_policy="il")
    data = yaml.safe_load(path.read_text())
    data["eval"] = {"agent": False, "batch_size": 8}
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "runs" / "tiny-twx" / "seed0"
    starts = {p: yaml.safe_load((p / "config.yaml").read_text())["config"]["model"]["name"] for p in (run / "stages").glob("il-*")}
    (il,) = [p for p, start in starts.items() if start == tiny_model_dir]  # IL from the base model, trained once
    assert len(starts) == 2 and len(list((run / "stages").glob("act-*"))) == 1
    for name in ("pairs", "heldout_pairs"):  # training and held-out pairs come from the same policy
        assert json.loads((run / f"{name}.meta.json").read_text())["sampling_model"] == str(il / "final")
    results = json.loads((run / "results.json").read_text())["methods"]
    assert results["il"]["model"] == str(il / "final")
    assert "alternatives sampled from" in capsys.readouterr().out


def test_method_names_doctests_hold():
    import doctest

    from actrl import methods

    assert doctest.testmod(methods).failed == 0
