"""Records on disk: JSONL errors name file and line, writers survive kills, datasets read back."""

import json

import pytest

from actrl.data.records import (
    CriticPair,
    JsonlWriter,
    RecordError,
    State,
    Step,
    Trajectory,
    read_jsonl,
    read_pairs,
    read_trajectories,
    steps_dataset,
)


def _traj() -> Trajectory:
    steps = [
        Step("You are in a kitchen.", "open fridge", 0.0, 0.0, False, ["open fridge", "look"]),
        Step("The fridge is open.", "take milk", 100.0, 100.0, True, None),
    ]
    return Trajectory({"env": "e", "name": "n", "variation": 3, "split": "train"}, "Get milk.", steps, 100.0, True)


def test_trajectory_states_carry_history(tmp_path):
    states = list(_traj().states())
    assert [a for _, _, a in states] == ["open fridge", "take milk"]
    _, s1, _ = states[1]
    assert s1.history == [("You are in a kitchen.", "open fridge")] and s1.observation == "The fridge is open."


def test_trajectories_round_trip_and_become_a_dataset(tmp_path):
    path = tmp_path / "experts.jsonl"
    with JsonlWriter(path) as w:
        w.write(_traj().to_dict())
    assert read_trajectories(path)[0].task_id == "e/n/train/3"
    ds = steps_dataset(path)
    assert ds.num_rows == 2 and ds[1]["expert_action"] == "take milk"
    assert json.loads(ds[1]["state"])["history"] == [["You are in a kitchen.", "open fridge"]]


def test_malformed_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(RecordError, match=r"x.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_empty_and_wrong_records_are_errors(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(RecordError, match="empty"):
        read_trajectories(empty)
    wrong = tmp_path / "w.jsonl"
    wrong.write_text('{"task": 1}\n')
    with pytest.raises(RecordError, match="record 1: not a trajectory"):
        read_trajectories(wrong)
    with pytest.raises(RecordError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_writer_drops_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"a": 1}\n{"a": 2')  # killed mid-write
    assert read_jsonl(path, allow_torn_tail=True) == [{"a": 1}]
    with JsonlWriter(path) as w:
        w.write({"a": 3})
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]


def test_pair_rejects_identical_actions_and_bad_positions():
    s = State("t", [], "o")
    with pytest.raises(RecordError, match="is the expert action"):
        CriticPair("p", "t", 0, s, "Open door", "open door.", 1)
    with pytest.raises(RecordError, match="expert_position"):
        CriticPair("p", "t", 0, s, "open door", "go west", 3)
    p = CriticPair("p", "t", 0, s, "open door", "go west", 2)
    assert p.options == ("go west", "open door")
    assert CriticPair.from_dict(p.to_dict()) == p
