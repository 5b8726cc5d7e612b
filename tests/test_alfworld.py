"""ALFWorld adapter on real alfworld/TextWorld games: generated offline games and a real-data layout.

Needs the optional extra `pip install 'actrl[alfworld]'`; skipped with that reason otherwise.
Games are generated once (about 30 s) into $ACTRL_CACHE and reused by later runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("alfworld", reason="ALFWorld tests need the extra: pip install 'actrl[alfworld]'")
pytest.importorskip("fast_downward", reason="ALFWorld tests need textworld[pddl] (fast-downward)")

from actrl.envs import make  # noqa: E402
from actrl.envs.alfworld import (  # noqa: E402
    TASK_TYPES,
    AlfWorldEnv,
    default_data_dir,
    find_games,
    play_expert,
    resolve_split,
)
from actrl.envs.alfworld_gen import floor_plans, generate_one, problem_pddl, sample_game  # noqa: E402
from actrl.envs.base import EnvUnavailableError, UnknownSplitError, UnknownTaskError  # noqa: E402


@pytest.fixture(scope="session")
def games_root() -> Path:
    """One generated game per task type in train, plus one pick-and-place game in each valid split."""
    cache = Path(os.environ.get("ACTRL_CACHE", Path.home() / ".cache" / "actrl"))
    root = cache / "test-alfworld-games"
    make("alfworld_generated", root=root, counts={"train": 1, "valid_seen": 0, "valid_unseen": 0}).close()
    for split in ("valid_seen", "valid_unseen"):
        generate_one(root, split, "pick_and_place_simple", 0, seed=0)
    return root


@pytest.fixture()
def env(games_root):
    e = AlfWorldEnv(data_dir=games_root, expert="walkthrough")
    yield e
    e.close()


def _play(env, task, actions):
    obs = env.reset(task)
    results = [env.step(a) for a in actions]
    return obs, results


@pytest.mark.slow
def test_expert_wins_generated_game_of_every_task_type(env):
    tasks = env.tasks("train")
    assert sorted(t.name.split("-")[0] for t in tasks) == sorted(TASK_TYPES)
    for task in tasks:
        env.reset(task)
        actions = env.expert_actions()
        assert 0 < len(actions) <= env.default_max_steps
        _, results = _play(env, task, actions)
        assert results[-1].won and results[-1].done and results[-1].score == 100.0, task.name
        assert sum(r.reward for r in results) == 100.0
        assert not any(r.won for r in results[:-1])
        assert all(r.valid for r in results)


def test_handcoded_expert_reproduces_stored_walkthrough_and_planner_wins(games_root):
    task_name = next(n for n in find_games(games_root / "train") if n.startswith("pick_heat"))
    with AlfWorldEnv(data_dir=games_root, expert="handcoded") as handcoded:
        task = handcoded.tasks("train", [task_name])[0]
        handcoded.reset(task)
        stored = json.loads((games_root / "train" / task_name / "game.tw-pddl").read_text())["walkthrough"]
        assert handcoded.expert_actions() == stored
    with AlfWorldEnv(data_dir=games_root, expert="planner") as planner:
        planner.reset(task)
        plan = planner.expert_actions()
        _, results = _play(planner, task, plan)
        assert results[-1].won
        assert len(plan) <= len(stored)  # the planner's plan is optimal, the handcoded expert explores


def test_observation_step_and_admissible_semantics(env):
    task = env.tasks("train", ["pick_and_place_simple"])[0]
    obs = env.reset(task)
    assert obs.task_description.startswith(("put", "Put")) and "Welcome" not in obs.text
    assert obs.text.startswith("You are in the middle of a room")
    admissible = env.admissible_actions()
    assert {"look", "inventory"} <= set(admissible)
    go = next(a for a in admissible if a.startswith("go to "))
    bad = env.step("fly to the moon")
    assert bad.observation == "Nothing happens." and not bad.valid and bad.reward == 0 and not bad.done
    ok = env.step(go.upper() + ".")  # case and a final period are normalised to the admissible command
    assert ok.valid and ok.observation.startswith("You arrive at")


def test_same_actions_give_same_observations(env):
    task = env.tasks("train", ["pick_cool_then_place_in_recep"])[0]
    env.reset(task)
    actions = env.expert_actions()
    first = [r.observation for r in _play(env, task, actions)[1]]
    second = [r.observation for r in _play(env, task, actions)[1]]
    assert first == second


def test_split_aliases_and_unseen_rooms(env):
    assert resolve_split("dev") == "valid_seen" and resolve_split("test") == "valid_unseen"
    assert [t.split for t in env.tasks("dev")] == ["valid_seen"]
    assert env.tasks("test") == env.tasks("valid_unseen")
    for task_type in TASK_TYPES:
        assert not set(floor_plans(task_type, unseen=True)) & set(floor_plans(task_type, unseen=False))
    unseen_plan = int(env.tasks("valid_unseen")[0].name.split("/")[0].rsplit("-", 1)[1])
    assert unseen_plan in floor_plans("pick_and_place_simple", unseen=True)
    with pytest.raises(UnknownSplitError, match="valid_seen"):
        env.tasks("validation")


def test_unknown_task_names_suggest_the_nearest(env):
    with pytest.raises(UnknownTaskError, match="pick_two_obj_and_place"):
        env.tasks("train", ["pick_two_objs_and_place"])
    with pytest.raises(UnknownTaskError, match="task type"):
        AlfWorldEnv(data_dir=env.data_dir, task_types=["pick_and_place"])


def test_room_sampling_is_deterministic_in_its_seed():
    a = sample_game("pick_clean_then_place_in_recep", 11, random.Random(5))
    b = sample_game("pick_clean_then_place_in_recep", 11, random.Random(5))
    assert a is not None and problem_pddl(a) == problem_pddl(b) and a.dir_name == b.dir_name
    assert "(receptacleType Sink_bar_01_bar_SinkBasin SinkBasinType)" in problem_pddl(a)


def test_real_data_layout_is_loaded_like_alfworld(games_root, tmp_path, monkeypatch):
    """A directory laid out like $ALFWORLD_DATA/json_2.1.1 after alfworld-download."""
    data = tmp_path / "alfworld_data"
    for split in ("train", "valid_seen", "valid_unseen"):
        shutil.copytree(games_root / split, data / "json_2.1.1" / split)
    some = next((data / "json_2.1.1" / "train").iterdir())
    # trials ALFWorld's text engine skips: movable receptacles, sliced objects, unsolvable games
    for name in (
        "pick_and_place_with_movable_recep-Apple-Bowl-Fridge-1",
        "pick_heat_then_place_in_recep-AppleSliced-None-Fridge-2",
    ):
        shutil.copytree(some, data / "json_2.1.1" / "train" / name)
    unsolvable = data / "json_2.1.1" / "train" / "pick_and_place_simple-Pen-None-Desk-301"
    shutil.copytree(some, unsolvable)
    trial = next(unsolvable.iterdir()) / "game.tw-pddl"
    trial.write_text(json.dumps({**json.loads(trial.read_text()), "solvable": False}))

    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    assert default_data_dir() == data / "json_2.1.1"
    with pytest.warns(UserWarning, match="published split has 140"):
        env = make("alfworld")
        assert len(env.tasks("valid_seen")) == 1
    assert len(env.tasks("train")) == len(TASK_TYPES)
    assert {t.env for t in env.tasks("train")} == {"alfworld"}
    assert env.versions()["alfworld_command_grammar"] in ("move {o} to {r}", "put {o} in/on {r}")
    env.close()


def test_missing_or_incomplete_data_says_what_to_download(tmp_path, monkeypatch, games_root):
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(EnvUnavailableError, match="alfworld-download"):
        make("alfworld")
    (tmp_path / "partial" / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(EnvUnavailableError, match="incomplete.*valid_seen, valid_unseen"):
        AlfWorldEnv(data_dir=tmp_path / "partial" / "json_2.1.1")
    # trajectories without the TextWorld game files (the tw-pddl archive was not unpacked)
    split = tmp_path / "nogames" / "valid_seen"
    shutil.copytree(games_root / "valid_seen", split)
    for game in split.glob("*/*/game.tw-pddl"):
        game.unlink()
    with pytest.raises(EnvUnavailableError, match="no game.tw-pddl"):
        find_games(split)


def test_planner_and_walkthrough_experts_are_reported_per_game(games_root):
    game = next((games_root / "train").glob("pick_and_place_simple-*/*/game.tw-pddl"))
    actions, won = play_expert(game, "handcoded", key="some/other/name")
    assert won and actions[-1].startswith("move ")


@pytest.mark.slow
def test_tiny_model_plays_generated_games_in_lockstep(games_root, tiny_model_dir, tmp_path):
    rollouts = pytest.importorskip(
        "actrl.eval.rollouts", reason="the evaluation module is not in this checkout"
    )
    from actrl.models.generation import HFGenerator, SamplingConfig

    kwargs = {"root": str(games_root), "counts": {"train": 1, "valid_seen": 0, "valid_unseen": 0}}
    with make("alfworld_generated", **kwargs) as env:
        tasks = rollouts.select_tasks(env, "train", episodes=3)
    assert len({t.name.split("-")[0] for t in tasks}) == 3  # the first tasks mix task types
    sampling = SamplingConfig(
        temperature=0.0, max_new_tokens=16, stop=["</action>"]
    )  # short answers: a fast test
    cfg = rollouts.EvalConfig(
        max_steps=3,
        workers=3,
        out_dir=str(tmp_path),
        model="tiny",
        env_kwargs=kwargs,
        sampling=sampling,
        progress=False,
    )
    result = rollouts.evaluate_agent(HFGenerator.load(tiny_model_dir), "alfworld_generated", tasks, cfg)
    assert result.aggregates["episodes"] == 3 and result.aggregates["success_rate"] == 0.0
    assert all(e["steps"] == 3 and not e["won"] for e in result.episodes)


def test_module_doctests_hold():
    import doctest

    import actrl.envs.alfworld as alfworld

    assert doctest.testmod(alfworld).failed == 0
