"""Environment adapters on the real simulators: protocol contract, expert replay, splits, errors."""

from __future__ import annotations

import pytest
from jvm_support import kill_jvm

from actrl.envs import (
    EnvError,
    EnvUnavailableError,
    Task,
    UnknownEnvError,
    UnknownSplitError,
    UnknownTaskError,
    env_class,
    make,
    names,
)
from actrl.envs.checks import check_env

SW_SHORT = [  # (task, split): gold paths of 5-15 steps, one per family
    ("find-non-living-thing", "train"),
    ("lifespan-longest-lived", "dev"),
    ("power-component", "test"),
    ("chemistry-mix-paint-secondary-color", "train"),
]


def _open(name: str, **kwargs):
    """The adapter, or a skip naming why it cannot run here (package or runtime missing)."""
    try:
        return env_class(name)(**kwargs)
    except ImportError as e:
        pytest.skip(f"{name}: its package is not installed ({e})")
    except EnvUnavailableError as e:
        pytest.skip(f"{name}: cannot start here ({e})")


def _play(env, actions):
    """Step `actions` until the episode ends (gold paths may carry actions past the win)."""
    results = []
    for action in actions:
        results.append(env.step(action))
        if results[-1].done:
            break
    return results


@pytest.fixture(scope="module")
def sw():
    env = _open("scienceworld")
    yield env
    env.close()


@pytest.fixture(scope="module")
def twx():
    env = _open("textworld_express")
    yield env
    env.close()


def _registered():
    """Every registered environment; all but TextWorldExpress take > 20 s here and are marked slow."""
    fast = {"textworld_express"}
    return [pytest.param(n, marks=() if n in fast else pytest.mark.slow) for n in names()]


@pytest.mark.parametrize("name", _registered())
def test_every_registered_env_passes_check_env_and_is_deterministic(name):
    env = _open(name)
    try:
        tasks = env.tasks("train")
        picked = [tasks[0], next((t for t in tasks if t.name != tasks[0].name), tasks[-1])]
        for task in picked:
            results = check_env(env, task)
            assert results[-1].won and results[-1].score == 100.0
    finally:
        env.close()


# ----------------------------------------------------------------------------- ScienceWorld


@pytest.mark.parametrize("task_name,split", SW_SHORT)
def test_scienceworld_expert_replay_reaches_full_score(sw, task_name, split):
    task = sw.tasks(split, [task_name])[0]
    sw.reset(task)
    gold = sw.expert_actions()
    results = _play(sw, gold)
    assert results[-1].won and results[-1].score == 100.0
    assert sum(r.reward for r in results) == pytest.approx(100.0)
    assert all(r.valid for r in results)


def test_scienceworld_fast_step_matches_package_step(sw):
    """The adapter's server-level step gives env.step's observations, scores and valid actions."""
    from scienceworld import ScienceWorldEnv as Package

    from actrl.envs.scienceworld import deterministic_jvm

    task = Task("scienceworld", "find-non-living-thing", 0, "train")
    first = sw.reset(task)
    gold = sw.expert_actions()
    with deterministic_jvm():
        plain = Package("", envStepLimit=100)
    try:
        plain.load(task.name, task.variation, "", generateGoldPath=True)
        obs0, _ = plain.reset()
        assert obs0 == first.text
        for action in gold:
            ours = sw.step(action)
            obs, _, done, info = plain.step(action)
            assert ours.observation == obs
            assert ours.info["raw_score"] == info["score"]
            if not ours.done:
                assert sorted(sw.admissible_actions()) == sorted(info["valid"])
        assert done and ours.won
    finally:
        plain.close()


def test_scienceworld_restarts_a_killed_java_process_and_replays(sw):
    task = Task("scienceworld", "lifespan-longest-lived", 0, "train")
    sw.reset(task)
    gold = sw.expert_actions()
    reference = _play(sw, gold)
    sw.reset(task)
    before = sw.restarts
    got = _play(sw, gold[:2])
    kill_jvm(sw.pid)  # the JVM this test's adapter started
    got += _play(sw, gold[2 : len(reference)])
    assert sw.restarts == before + 1
    assert [r.observation for r in got] == [r.observation for r in reference]
    assert got[-1].won and got[-1].score == 100.0


def test_scienceworld_invalid_and_ambiguous_actions(sw):
    sw.reset(Task("scienceworld", "boil", 0, "train"))
    bad = sw.step("fly to the moon")
    assert bad.valid is False and not bad.done and bad.score == 0.0
    assert bad.observation.startswith("No known action")
    ambiguous = sw.step("open door")  # six doors in the hallway: the simulator asks which one
    assert ambiguous.valid is True and ambiguous.info["ambiguous"]
    assert "0:" in ambiguous.observation
    chosen = sw.step("0")
    assert chosen.valid and chosen.observation == "The door is now open."


def test_scienceworld_failure_scores_zero_and_ends(sw):
    sw.reset(Task("scienceworld", "boil", 0, "train"))
    r = sw.step("focus on air")  # focusing on the wrong substance ruins the task
    assert r.done and not r.won and r.score == 0.0
    assert r.info["failed"] and r.info["raw_score"] < 0
    with pytest.raises(EnvError, match="episode is over"):
        sw.step("look around")


def test_scienceworld_splits_are_the_packages_and_disjoint(sw):
    assert len(sw.task_names()) == 30
    for task_name, sizes in [("boil", (14, 7, 9)), ("find-animal", (150, 75, 75)), ("identify-life-stages-2", (4, 2, 4))]:
        parts = [sw.variations(task_name, s) for s in ("train", "dev", "test")]
        assert tuple(len(p) for p in parts) == sizes
        assert sorted(sum(parts, [])) == list(range(sum(sizes)))  # disjoint and covering
    tasks = sw.tasks("dev", ["boil", "melt"])
    assert [t.id for t in tasks[:2]] == ["scienceworld/boil/dev/14", "scienceworld/boil/dev/15"]
    assert len(tasks) == 14


def test_scienceworld_bad_names_give_typed_errors(sw):
    with pytest.raises(UnknownTaskError, match="did you mean 'boil'"):
        sw.tasks("train", ["boill"])
    with pytest.raises(UnknownSplitError, match="expected one of train, dev, test"):
        sw.tasks("trian")
    with pytest.raises(EnvError, match="no variation 21 in split 'train'.*0-13"):
        sw.reset(Task("scienceworld", "boil", 21, "train"))
    with pytest.raises(EnvError, match="call reset"):
        make("scienceworld").step("look around")


def test_unknown_environment_suggests_nearest():
    with pytest.raises(UnknownEnvError, match="did you mean 'scienceworld'"):
        make("sciencewrld")


@pytest.mark.parametrize("name", ["scienceworld", "textworld_express"])
def test_missing_java_is_a_clear_error(name, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a real PATH without java
    with pytest.raises(EnvUnavailableError, match=r"needs the `java` runtime.*apt-get install openjdk"):
        make(name)


# ----------------------------------------------------------------------------- TextWorldExpress


def test_twx_expert_wins_every_game_on_train_and_test(twx):
    from actrl.envs.textworld_express import GAMES

    for game in GAMES:
        for split in ("train", "test"):
            task = twx.tasks(split, [game])[3]
            first = twx.reset(task)
            assert first.task_description and first.text
            results = _play(twx, twx.expert_actions())
            assert results[-1].won and results[-1].done and results[-1].score == 100.0, (task.id, results[-1])
            assert not any(r.done for r in results[:-1])


def test_twx_objects_to_take_survive_the_recipes_observation_limit(twx):
    """twc lists the object to take last: a 300-character cut hid it (docs/quality/observation-cut)."""
    from actrl.data.prompts import PromptConfig, cut_share, render_state
    from actrl.data.records import State

    states = []
    for task in twx.tasks("train", ["twc"])[:8]:
        obs, history = twx.reset(task).text, []
        for action in twx.expert_actions():
            states.append((State(task.id, list(history), obs), action))
            result = twx.step(action)
            history.append((obs, action))
            obs = result.observation
            if result.done:
                break
    takes = [(s, a.removeprefix("take ")) for s, a in states if a.startswith("take ")]
    assert len(takes) >= 8
    short, recipe = PromptConfig(history_window=1, max_observation_chars=300), PromptConfig(history_window=1, max_observation_chars=800)
    hidden = sum(obj not in render_state(s, short) for s, obj in takes)
    assert hidden >= 2, "the 300-character cut no longer hides objects: revisit the recipes' limit"
    assert all(obj in render_state(s, recipe) for s, obj in takes)
    assert cut_share([s for s, _ in states], recipe) == 0.0 < cut_share([s for s, _ in states], short)


def test_twx_splits_are_the_package_folds(twx):
    for game in ("coin", "twc"):
        train, dev, test = (twx.seeds(game, s) for s in ("train", "dev", "test"))
        assert train == list(range(1000)) and dev == list(range(10000, 11000)) and test == list(range(20000, 21000))
    assert len(twx.tasks("dev")) == 8 * 1000


def test_twx_invalid_action_and_cached_admissible(twx):
    twx.reset(Task("textworld_express", "coin", 0, "train"))
    admissible = twx.admissible_actions()
    assert "take coin" in admissible
    r = twx.step("dance wildly")
    assert r.valid is False and r.observation.startswith("Unknown action") and not r.done
    assert twx.admissible_actions() == admissible  # nothing changed
    r = twx.step("take coin")
    assert r.valid and r.won and r.score == 100.0


def test_twx_bad_names_and_params(twx):
    with pytest.raises(UnknownTaskError, match="did you mean 'cookingworld'"):
        twx.tasks("train", ["cooking"])
    with pytest.raises(EnvError, match="seed 5 is not in the 'test' fold"):
        twx.reset(Task("textworld_express", "coin", 5, "test"))
    bad = make("textworld_express", game_params={"twc": {"bogus": 3}})
    try:
        with pytest.raises(EnvError, match="bogus.*Known properties"):
            bad.reset(Task("textworld_express", "twc", 0, "train"))
    finally:
        bad.close()
    with pytest.raises(UnknownTaskError, match="did you mean 'coin'"):
        make("textworld_express", game_params={"con": {"numLocations": 2}})


def test_twx_game_params_override_defaults():
    env = make("textworld_express", game_params={"coin": {"numLocations": 4, "includeDoors": 1}})
    try:
        gold_lengths = []
        for seed in range(5):
            first = env.reset(Task("textworld_express", "coin", seed, "train"))
            assert "door" in first.text  # the default world is one room without doors
            gold_lengths.append(len(env.expert_actions()))
        assert max(gold_lengths) > 2  # the default coin game is always ['look around', 'take coin']
        assert env.params["game_params"]["coin"]["numLocations"] == 4
        assert env.params["game_params"]["twc"]["numLocations"] == 1
    finally:
        env.close()


def test_step_limit_never_cuts_the_gold_path_and_truncates_after(twx):
    env = make("textworld_express", max_steps=1)
    try:
        first = env.reset(Task("textworld_express", "cookingworld", 0, "train"))
        gold = env.expert_actions()
        assert first.info["max_steps"] == len(gold) + 10
        for _ in range(first.info["max_steps"]):
            r = env.step("inventory")
        assert r.done and r.info["truncated"] and not r.won
    finally:
        env.close()
