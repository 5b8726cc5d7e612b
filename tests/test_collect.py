"""`actrl collect`: replay-checked expert trajectories, resume, readable as a datasets.Dataset."""

from __future__ import annotations

import json

import pytest

from actrl.cli import main
from actrl.data.experts import collect, play_expert, replay_divergence
from actrl.data.records import RecordError, read_trajectories, steps_dataset
from actrl.envs import Task, make


def test_cli_collects_twx_trajectories_that_win_and_read_back_as_dataset(tmp_path, capsys):
    out = tmp_path / "experts.jsonl"
    rc = main(["collect", "--env", "textworld_express", "--split", "train", "--num", "4", "--tasks", "coin,twc",
               "--workers", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    assert "4 trajectories (4 collected now, 0 already there" in capsys.readouterr().out
    trajs = read_trajectories(out)
    # round-robin over the task names, first seeds first
    assert sorted(t.task_id for t in trajs) == sorted(
        f"textworld_express/{g}/train/{s}" for g in ("coin", "twc") for s in (0, 1)
    )
    for traj in trajs:
        assert traj.won and traj.final_score == 100.0 and traj.steps[-1].done
        assert not any(s.done for s in traj.steps[:-1])
        assert sum(s.reward for s in traj.steps) == pytest.approx(100.0)
        assert traj.meta["expert"] == "gold" and traj.meta["replay_checked"] and traj.meta["admissible"]
        assert traj.meta["versions"] == {"textworld-express": "1.1.0"}
        assert traj.meta["params"]["game_params"]["twc"]["numItemsToPutAway"] == 1
        for step in traj.steps:  # "auto" records TWX's admissible actions, and the expert's is among them
            assert step.action in step.admissible
    ds = steps_dataset(out)
    assert len(ds) == sum(len(t.steps) for t in trajs)
    row = ds[1]
    state = json.loads(row["state"])
    assert row["t"] == 1 and len(state["history"]) == 1 and row["expert_action"]


def test_resume_appends_without_rewriting_and_a_complete_rerun_does_nothing(tmp_path):
    out = tmp_path / "experts.jsonl"
    first = collect("textworld_express", "train", 2, out, tasks=["coin", "mapreader"], workers=1, progress=False)
    assert first["collected"] == 2
    before = out.read_bytes()
    second = collect("textworld_express", "train", 4, out, tasks=["coin", "mapreader"], workers=2, progress=False)
    assert (second["already_in_file"], second["collected"], second["total"]) == (2, 2, 4)
    assert out.read_bytes().startswith(before)  # the first two records are untouched
    ids = [t.task_id for t in read_trajectories(out)]
    assert len(ids) == len(set(ids)) == 4
    third = collect("textworld_express", "train", 4, out, tasks=["coin", "mapreader"], progress=False)
    assert third["collected"] == 0 and out.read_bytes().count(b"\n") == 4


def test_resume_drops_a_torn_last_line(tmp_path):
    out = tmp_path / "experts.jsonl"
    collect("textworld_express", "train", 1, out, tasks=["coin"], workers=1, progress=False)
    with open(out, "a") as f:
        f.write('{"task": {"env": "textworld_')  # a write cut by a kill
    summary = collect("textworld_express", "train", 2, out, tasks=["coin"], workers=1, progress=False)
    assert summary["already_in_file"] == 1 and summary["collected"] == 1
    assert len(read_trajectories(out)) == 2


def test_malformed_existing_file_is_a_record_error_naming_the_line(tmp_path, capsys):
    out = tmp_path / "experts.jsonl"
    collect("textworld_express", "train", 1, out, tasks=["coin"], workers=1, progress=False)
    good = out.read_text()
    out.write_text(good + "{not json}\n" + good)
    with pytest.raises(RecordError, match=r"experts.jsonl:2: not valid JSON"):
        collect("textworld_express", "train", 2, out, tasks=["coin"], progress=False)
    out.write_text(good + '{"task": {}}\n')
    rc = main(["collect", "--env", "textworld_express", "--num", "2", "--tasks", "coin", "--out", str(out), "--quiet"])
    assert rc == 2
    assert "experts.jsonl:2: not a trajectory record" in capsys.readouterr().err


def test_resuming_with_other_environment_settings_is_refused(tmp_path):
    out = tmp_path / "experts.jsonl"
    collect("textworld_express", "train", 1, out, tasks=["coin"], workers=1, progress=False)
    with pytest.raises(RecordError, match=r"experts.jsonl:1: collected with .*max_steps.*another --out"):
        collect("textworld_express", "train", 2, out, tasks=["coin"], env_kwargs={"max_steps": 7}, progress=False)


def test_resuming_a_file_of_another_split_is_refused_not_mixed(tmp_path, capsys):
    # a recipe whose data.heldout_split changed on an existing run dir must not append dev tasks to test ones
    out = tmp_path / "heldout_experts.jsonl"
    collect("textworld_express", "test", 1, out, tasks=["coin"], workers=1, progress=False)
    before = out.read_bytes()
    with pytest.raises(RecordError, match=r"heldout_experts.jsonl:1: a trajectory of split 'test', this run collects split 'dev'"):
        collect("textworld_express", "dev", 2, out, tasks=["coin"], workers=1, progress=False)
    rc = main(["collect", "--env", "textworld_express", "--split", "dev", "--num", "2", "--tasks", "coin",
               "--out", str(out), "--quiet"])
    assert rc == 2 and "another --out for each split" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_per_task_limits_candidates_and_the_summary_says_so(tmp_path):
    out = tmp_path / "experts.jsonl"
    summary = collect("textworld_express", "dev", 5, out, tasks=["simonsays"], per_task=2,
                      record_admissible="never", workers=1, progress=False)
    assert summary["total"] == 2 and summary["exhausted"] and summary["candidates"] == 2
    assert [t.task["variation"] for t in read_trajectories(out)] == [10000, 10001]
    assert all(s.admissible is None for t in read_trajectories(out) for s in t.steps)


def test_replay_check_catches_a_trajectory_the_environment_does_not_reproduce():
    env = make("textworld_express")
    try:
        traj = play_expert(env, Task("textworld_express", "twc", 3, "train"), False, {})
        assert traj.won and replay_divergence(env, traj) is None
        traj.steps[1].observation = "You are on the moon."
        assert replay_divergence(env, traj) == f"step 0 ('{traj.steps[0].action}') gave a different observation or score"
        traj.steps[0].observation = "elsewhere"
        assert replay_divergence(env, traj) == "the first observation differs"
    finally:
        env.close()


def test_bad_settings_are_config_errors(tmp_path, capsys):
    rc = main(["collect", "--env", "textworld_express", "--num", "0", "--out", str(tmp_path / "x.jsonl")])
    assert rc == 2 and "num=0: expected >= 1" in capsys.readouterr().err
    rc = main(["collect", "--env", "textworld_express", "--tasks", "cooking", "--out", str(tmp_path / "x.jsonl")])
    assert rc == 2 and "did you mean 'cookingworld'" in capsys.readouterr().err
    rc = main(["collect", "--env", "scienceworlds", "--out", str(tmp_path / "x.jsonl")])
    assert rc == 2 and "did you mean 'scienceworld'" in capsys.readouterr().err


def test_cli_collects_a_short_scienceworld_task_with_admissible_actions(tmp_path, capsys):
    out = tmp_path / "sw.jsonl"
    rc = main(["collect", "--env", "scienceworld", "--split", "test", "--num", "1", "--tasks", "find-non-living-thing",
               "--workers", "1", "--record-admissible", "always", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    (traj,) = read_trajectories(out)
    assert traj.task_id == "scienceworld/find-non-living-thing/test/225"
    assert traj.won and traj.final_score == 100.0
    assert traj.task_description.startswith("Your task is to find a(n) non-living thing")
    assert traj.steps[0].observation.startswith("This room is called")
    assert traj.meta["versions"] == {"scienceworld": "1.2.3"} and traj.meta["admissible"] is True
    assert all(len(s.admissible) > 100 for s in traj.steps)
    # ScienceWorld's valid-action list names objects by one referent, gold paths sometimes by another:
    # the only door of the first room is "door" there, "door to hallway" in the gold path
    assert traj.steps[0].action == "open door to hallway" and "open door" in traj.steps[0].admissible
    assert sum(s.action in s.admissible for s in traj.steps) == len(traj.steps) - 1
