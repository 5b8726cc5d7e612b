"""Agent evaluation on real environments with the tiny models: numbers, files, resume, lockstep."""

from __future__ import annotations

import json

import pytest

from actrl.cli import main
from actrl.config import ConfigError
from actrl.data.prompts import PromptConfig
from actrl.envs import make
from actrl.eval.rollouts import FORMAT_FAILURE_OBSERVATION, EvalConfig, evaluate_agent, select_tasks
from actrl.models.generation import HFGenerator
from actrl.models.loading import ModelConfig

TWX = "textworld_express"


@pytest.fixture(scope="module")
def twx_tasks() -> list:
    with make(TWX) as env:
        return select_tasks(env, "test", 8)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> HFGenerator:
    return HFGenerator.load(ModelConfig(name=tiny_model_dir, dtype="float32"))


@pytest.fixture(scope="module")
def varied(varied_model_dir) -> HFGenerator:
    return HFGenerator.load(ModelConfig(name=varied_model_dir, dtype="float32"))


def config(tmp_path=None, max_new_tokens: int = 12, **kw) -> EvalConfig:
    cfg = EvalConfig(out_dir=str(tmp_path) if tmp_path else None, model="tiny", progress=False, **kw)
    cfg.sampling.max_new_tokens = max_new_tokens
    return cfg


def test_select_tasks_interleaves_task_names(twx_tasks):
    assert len({t.name for t in twx_tasks}) == 8  # the 8 TWX games, one each
    assert all(t.split == "test" for t in twx_tasks)
    with make(TWX) as env:
        coin = select_tasks(env, "test", 3, ["coin"])
        assert [t.name for t in coin] == ["coin"] * 3 and len({t.variation for t in coin}) == 3
        with pytest.raises(ConfigError, match="episodes=0"):
            select_tasks(env, "test", 0)


def test_untrained_tiny_model_on_twx_gives_sane_numbers(tiny, twx_tasks, tmp_path):
    tasks = twx_tasks[:4]
    result = evaluate_agent(tiny, TWX, tasks, config(tmp_path, max_steps=3, workers=2))
    agg = result.aggregates
    assert agg["episodes"] == 4
    assert agg["success_rate"] == 0.0 and agg["mean_score"] == 0.0
    # the tied tiny model answers "\n\n..." : every step is a format failure
    assert agg["invalid_rate"] == agg["format_failure_rate"] == 1.0
    assert agg["env_rejected_rate"] == 0.0
    assert agg["mean_steps"] == 3.0 and agg["stuck_rate"] == 0.0
    for key in ("success_rate", "invalid_rate", "format_failure_rate", "env_rejected_rate", "stuck_rate"):
        assert 0.0 <= agg[key] <= 1.0
    assert [e["task_id"] for e in result.episodes] == [t.id for t in tasks]
    for e in result.episodes:
        assert e["steps"] == len(e["actions"]) == len(e["observations"]) <= 3
        assert e["actions"] == [None] * 3 and e["observations"] == [FORMAT_FAILURE_OBSERVATION] * 3
        assert not e["won"] and not e["done"] and e["task_description"]
    lines = result.episodes_path.read_text().splitlines()
    assert len(lines) == 4
    summary = json.loads(result.summary_path.read_text())
    assert summary["aggregates"] == json.loads(json.dumps(agg))
    assert summary["max_steps"] == 3 and summary["versions"]  # environment versions recorded


def test_rerun_skips_finished_episodes_and_refuses_other_settings(tiny, twx_tasks, tmp_path):
    first = evaluate_agent(tiny, TWX, twx_tasks[:2], config(tmp_path, max_steps=2, workers=2))
    path = first.episodes_path
    done = path.read_text().splitlines()
    path.write_text("\n".join(done) + "\n" + done[0][:40])  # a line torn by a kill mid-write
    more = evaluate_agent(tiny, TWX, twx_tasks[:3], config(tmp_path, max_steps=2, workers=2))
    lines = path.read_text().splitlines()
    assert lines[:2] == done and len(lines) == 3  # the torn line dropped, one new episode
    assert more.timing["generate_calls"] == 2  # only the new episode was played (2 lockstep steps)
    assert [e["task_id"] for e in more.episodes] == [t.id for t in twx_tasks[:3]]
    again = evaluate_agent(tiny, TWX, twx_tasks[:3], config(tmp_path, max_steps=2, workers=2))
    assert again.timing["generate_calls"] == 0 and again.aggregates == more.aggregates
    with pytest.raises(ConfigError, match="other settings"):
        evaluate_agent(tiny, TWX, twx_tasks[:3], config(tmp_path, max_steps=5, workers=2))


def test_lockstep_batch_matches_one_episode_at_a_time(varied, twx_tasks):
    tasks = twx_tasks[:5]
    batched = evaluate_agent(varied, TWX, tasks, config(max_steps=3, workers=4))
    single = config(max_steps=3, workers=1)
    single.sampling.batch_size = 1
    one_by_one = evaluate_agent(varied, TWX, tasks, single)
    assert batched.timing["generate_calls"] == 6  # 4 episodes in lockstep (3 steps), then the 5th (3 steps)
    assert one_by_one.timing["generate_calls"] == 15
    for a, b in zip(batched.episodes, one_by_one.episodes, strict=True):
        assert a["task_id"] == b["task_id"]
        assert a["completions"] == b["completions"] and a["actions"] == b["actions"]
    # completions really depend on the episode (so a mix-up between episodes would show)
    assert len({e["completions"][0] for e in batched.episodes}) == len(tasks)


def test_admissible_actions_reach_the_prompt_only_when_asked(varied, twx_tasks):
    cfg = config(max_steps=1, workers=1, prompt=PromptConfig(show_admissible=True))
    with_list = evaluate_agent(varied, TWX, twx_tasks[:1], cfg)
    without = evaluate_agent(varied, TWX, twx_tasks[:1], config(max_steps=1, workers=1))
    assert with_list.episodes[0]["completions"] != without.episodes[0]["completions"]


def test_eval_config_rejects_bad_values():
    from actrl.config import from_dict

    for bad, match in [({"workers": 0}, "workers"), ({"max_steps": 0}, "max_steps"),
                       ({"sampling": {"n": 2}}, "sampling.n"), ({"stuck_window": 0}, "stuck_window"),
                       ({"max_step": 3}, "did you mean 'max_steps'"),
                       ({"prompt": {"thinking": True}, "sampling": {"max_new_tokens": 16}}, "room to reason")]:
        with pytest.raises(ConfigError, match=match):
            from_dict(EvalConfig, bad, "eval.yaml")


def test_cli_agent_runs_and_prints_the_table(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "agent", "--model", tiny_model_dir, "--dtype", "float32", "--env", TWX, "--split", "dev",
            "--episodes", "2", "--max-steps", "2", "--workers", "2", "--out", str(out), "--max-new-tokens", "8"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "success" in text and "stuck" in text and "0.0%" in text
    summary = json.loads((out / "dev.json").read_text())
    assert summary["aggregates"]["episodes"] == 2 and summary["settings"]["sampling"]["temperature"] == 0.0
    assert summary["settings"]["sampling"]["stop"] == ["</action>"]
    assert len((out / "dev.episodes.jsonl").read_text().splitlines()) == 2


def test_cli_thinking_baseline_sets_prompt_and_token_budget(tiny_model_dir, tmp_path):
    import argparse

    from actrl.eval import rollouts
    from actrl.eval.policy import build_config

    parser = argparse.ArgumentParser()
    rollouts.add_arguments(parser)
    args = parser.parse_args(["--env", TWX, "--thinking"])
    cfg = build_config(EvalConfig, args, [])
    assert cfg.prompt.thinking and cfg.sampling.max_new_tokens == 512 and cfg.sampling.temperature == 0.0
    explicit = build_config(EvalConfig, parser.parse_args(["--env", TWX, "--thinking", "--max-new-tokens", "200"]), [])
    assert explicit.sampling.max_new_tokens == 200
    plain_args = parser.parse_args(["--env", TWX, "sampling.batch_size=4"])
    plain = build_config(EvalConfig, plain_args, plain_args.overrides)
    assert not plain.prompt.thinking and plain.sampling.max_new_tokens == 48
    assert plain.sampling.stop == ["</action>"] and plain.sampling.batch_size == 4  # kind defaults kept

    out = tmp_path / "think"
    argv = ["eval", "agent", "--model", tiny_model_dir, "--dtype", "float32", "--env", TWX, "--episodes", "1",
            "--max-steps", "1", "--out", str(out), "--thinking", "--max-new-tokens", "128"]
    assert main(argv) == 0
    settings = json.loads((out / "test.json").read_text())["settings"]
    assert settings["prompt"]["thinking"] is True and settings["sampling"]["max_new_tokens"] == 128
    episode = json.loads((out / "test.episodes.jsonl").read_text())
    assert episode["completions"][0] == "\n" * 128  # the tied tiny model used the whole budget


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--env", "textworld_expres"], "did you mean 'textworld_express'"),
        (["--env", TWX, "--episodes", "0"], "episodes=0"),
        (["--env", TWX, "--split", "valid"], "split"),
        (["--env", TWX, "prompt.history_windw=3"], "did you mean 'history_window'"),
        (["--env", TWX, "--workers", "0"], "workers=0"),
    ],
)
def test_cli_bad_input_is_one_line_error(tiny_model_dir, tmp_path, capsys, extra, message):
    assert main(["eval", "agent", "--model", tiny_model_dir, "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actrl eval agent: error:") and message in err and "\n" not in err


def test_cli_lists_eval_kinds(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for kind in ("agent", "next-action", "pairs", "reasoning"):
        assert kind in text


@pytest.mark.slow
def test_scienceworld_short_episodes(tiny, tmp_path):
    with make("scienceworld") as env:
        tasks = select_tasks(env, "dev", 2)
    result = evaluate_agent(tiny, "scienceworld", tasks, config(tmp_path, max_steps=2, workers=2))
    agg = result.aggregates
    assert agg["episodes"] == 2 and agg["success_rate"] == 0.0 and agg["format_failure_rate"] == 1.0
    assert len({e["task"]["name"] for e in result.episodes}) == 2
    assert all(e["steps"] == 2 and e["task_description"] for e in result.episodes)
    assert "scienceworld" in json.dumps(json.loads(result.summary_path.read_text())["versions"])
