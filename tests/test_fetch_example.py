"""The worked example (examples/fetch): installed as a plugin, it passes check-env and runs a whole
recipe through the real CLI (collect -> pairs -> ACT -> IL -> eval -> report) with the tiny model."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import yaml

from actrl.cli import main
from actrl.envs import Task, env_class, make, names

INSTALL = "pip install --no-deps -e examples/fetch (the Makefile's install step does it)"


@pytest.fixture(scope="module", autouse=True)
def fetch_installed():
    """CI installs the example; a checkout without it fails here with the command, never skips."""
    if "fetch" not in {ep.name for ep in importlib.metadata.entry_points(group="actrl.envs")}:
        pytest.fail(f"the example environment 'fetch' is not installed: {INSTALL}")


def test_the_entry_point_makes_fetch_a_named_environment():
    assert "fetch" in names()
    assert env_class("fetch").__module__ == "actrl_fetch"
    env = make("fetch")
    assert [len(env.tasks(s)) for s in ("train", "dev", "test")] == [40, 20, 20]  # 4 objects x 10 / 5 / 5 variations
    first = env.reset(Task("fetch", "apple", 3, "train"))
    assert first.task_description == "Bring the apple to the garden."
    assert first.text == "You are in the study. You see the apple. Exits: hall."
    assert env.expert_actions() == ["look", "take apple", "go to hall", "go to garden", "put apple"]
    scores = [env.step(a).score for a in env.expert_actions()]
    assert scores == [0.0, 50.0, 50.0, 50.0, 100.0]


def test_fetch_passes_check_env_through_the_cli(capsys):
    assert main(["check-env", "fetch"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == ("fetch: PASS (actrl_fetch:FetchEnv; tasks train 40, dev 20, test 20; 4 expert episodes replayed, "
                   "deterministic, admissible actions, invalid action, step after done, close twice)")


TINY_FETCH = {
    "name": "tiny-fetch",
    "prompt": {"history_window": 2, "max_observation_chars": 300},
    "env": {"name": "fetch"},
    "data": {"train_num": 4, "heldout_num": 2, "workers": 1},
    "pairs": {"k": 1, "max_new_tokens": 8, "resample_rounds": 0, "fallback": "admissible_random"},
    "act": {"max_steps": 2, "num_generations": 2, "per_device_batch_size": 4, "save_steps": 1, "pair_eval": False, "eval_fraction": 0.0},
    "il": {"max_steps": 2, "per_device_batch_size": 4, "save_steps": 1, "eval_fraction": 0.0},
    "methods": ["prompt", "il", "act -> il"],
    "eval": {"episodes": 2, "max_steps": 4, "workers": 1, "batch_size": 8},
}


@pytest.mark.slow
def test_the_whole_pipeline_runs_on_the_example_environment(tmp_path, tiny_model_dir, capsys):
    recipe = {**TINY_FETCH, "model": {"name": tiny_model_dir}, "output_root": str(tmp_path / "runs")}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "runs" / "tiny-fetch" / "seed0"
    experts = [json.loads(line) for line in (run / "experts.jsonl").read_text().splitlines()]
    # round-robin over the task names: variation 0 of each object, each replay-checked and won
    assert sorted(t["task"]["name"] for t in experts) == ["apple", "book", "key", "lamp"]
    assert all(t["won"] and t["meta"]["replay_checked"] and t["meta"]["env"] == "fetch" for t in experts)
    states = sum(len(t["steps"]) for t in experts)
    pairs = (run / "pairs.jsonl").read_text().splitlines()
    assert len(pairs) == states == 28  # 7 expert steps in each of the 4 tasks; K = 1 at every expert state (admissible fallback fills the rest)
    results = json.loads((run / "results.json").read_text())
    assert results["env_class"] == "actrl_fetch.FetchEnv"
    assert list(results["methods"]) == ["prompt", "il", "act -> il"]
    for entry in results["methods"].values():
        m = entry["metrics"]
        assert 0 <= m["next_action_accuracy"] <= 1 and 0 <= m["success_rate"] <= 1
        assert 0 <= m["pair_both_orders_accuracy"] <= m["pair_accuracy"] <= 1
    assert sorted(p.name.split("-")[0] for p in (run / "stages").iterdir()) == ["act", "il", "il"]
    assert main(["report", str(run)]) == 0
    assert "| act -> il |" in (run / "report.md").read_text()
