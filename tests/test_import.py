"""`actrl import`: AgentTraj and chat-messages files -> expert trajectories that pairs, IL, ACT and
next-action evaluation read without an environment; bad input is one line naming file:line."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from actrl.cli import main
from actrl.data.importers import FORMATS, TurnMapping, import_file
from actrl.data.records import read_trajectories, steps_dataset

INSTRUCTION = "Interact with a household to solve a task. Answer as Thought: ... Action: ..."


def _agenttraj(item_id: str, task: str, steps: list[tuple[str, str]]) -> dict:
    """An AgentTraj record: instruction, 'OK', then observation / 'Thought: .. Action: ..' turns."""
    turns = [{"from": "human", "value": INSTRUCTION}, {"from": "gpt", "value": "OK"}]
    for i, (obs, action) in enumerate(steps):
        turns.append({"from": "human", "value": f"{obs}\nYour task is to: {task}" if i == 0 else obs})
        turns.append({"from": "gpt", "value": f"Thought: step {i}.\nAction: {action}"})
    turns.append({"from": "human", "value": "Task completed."})
    return {"item_id": item_id, "conversations": turns}


TRAIN = [
    _agenttraj("alfworld_12", "put a knife in cabinet.", [("You see a countertop 1.", "go to countertop 1"),
                                                          ("On the countertop 1, you see a knife 1.", "take knife 1 from countertop 1"),
                                                          ("You pick up the knife 1.", "go to cabinet 1"),
                                                          ("The cabinet 1 is open.", "put knife 1 in/on cabinet 1")]),
    _agenttraj("alfworld_40", "look at the book under the lamp.", [("You see a desk 1.", "go to desk 1"),
                                                                  ("On the desk 1, you see a book 2.", "take book 2 from desk 1"),
                                                                  ("You pick up the book 2.", "use desklamp 1")]),
]
HELDOUT = [_agenttraj("alfworld_77", "put a mug in sinkbasin.", [("You see a table 1.", "go to table 1"),
                                                                ("On the table 1, you see a mug 1.", "take mug 1 from table 1")])]


def _write_array(path, records) -> str:
    path.write_text(json.dumps(records, indent=1))  # AgentTraj ships JSON arrays
    return str(path)


def test_agenttraj_turns_become_expert_states(tmp_path, capsys):
    src, out = _write_array(tmp_path / "train.json", TRAIN), tmp_path / "experts.jsonl"
    assert main(["import", "agenttraj", src, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 2 trajectories, 7 expert steps from {src} (agenttraj; env alfworld")
    first, second = read_trajectories(out)
    assert first.task_id == "alfworld/alfworld_12/train/0" and second.task_id == "alfworld/alfworld_40/train/0"
    assert first.task_description == INSTRUCTION  # the first human turn; the "OK" reply is skipped
    assert [s.action for s in first.steps] == ["go to countertop 1", "take knife 1 from countertop 1", "go to cabinet 1",
                                               "put knife 1 in/on cabinet 1"]
    assert first.steps[0].observation == "You see a countertop 1.\nYour task is to: put a knife in cabinet."
    assert [(s.reward, s.score, s.done) for s in second.steps] == [(0.0, 0.0, False), (0.0, 0.0, False), (100.0, 100.0, True)]
    assert first.won and first.final_score == 100.0
    assert first.meta == {"source": "import:agenttraj", "env": "alfworld", "input": src, "line": 2, "replay_checked": False,
                          "expert": "imported", "admissible": False, "params": {}, "versions": {}}
    rows = steps_dataset(out)
    assert len(rows) == 7 and json.loads(rows[1]["state"])["history"] == [["You see a countertop 1.\nYour task is to: put a knife in cabinet.", "go to countertop 1"]]


def test_chat_messages_with_a_mapping_file(tmp_path):
    src, mapping = tmp_path / "chat.jsonl", tmp_path / "mapping.yaml"
    records = [{"id": "ep-1", "messages": [
        {"role": "system", "content": "Light the lamp in the study."},
        {"role": "user", "content": "You are in the hall."},
        {"role": "assistant", "content": "I will walk. <cmd>go to study</cmd>"},
        {"role": "tool", "content": "(debug: moved)"},
        {"role": "user", "content": "You are in the study."},
        {"role": "user", "content": "A lamp is here."},
        {"role": "assistant", "content": "<cmd>turn on lamp</cmd>"}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    mapping.write_text(yaml.safe_dump({"action_regex": "<cmd>(.+?)</cmd>", "task_roles": ["system"], "observation_roles": ["user", "tool"]}))
    out = tmp_path / "experts.jsonl"
    assert main(["import", "chat", str(src), "--out", str(out), "--mapping", str(mapping), "--env", "house", "--split", "test"]) == 0
    (traj,) = read_trajectories(out)
    assert traj.task_id == "house/ep-1/test/0" and traj.task_description == "Light the lamp in the study."
    assert [(s.observation, s.action) for s in traj.steps] == [
        ("You are in the hall.", "go to study"),
        ("(debug: moved)\nYou are in the study.\nA lamp is here.", "turn on lamp"),  # consecutive observation turns join
    ]


def test_a_task_turn_answered_directly_is_also_the_first_observation():
    record = {"item_id": "webshop_7", "conversations": [
        {"from": "human", "value": "WebShop [SEP] i need a red mug"}, {"from": "gpt", "value": "Thought:\nsearch.\n\nAction:\nsearch[red mug]"}]}
    from actrl.data.importers import conversation_to_trajectory

    traj = conversation_to_trajectory(record, TurnMapping(**FORMATS["agenttraj"]), "x:1", {"line": 1})
    assert traj.task["env"] == "webshop" and traj.task_description == "WebShop [SEP] i need a red mug"
    assert [(s.observation, s.action) for s in traj.steps] == [("WebShop [SEP] i need a red mug", "search[red mug]")]


def _cli_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("fmt,content,message", [
    ("agenttraj", '{"id": 1, "messages": []}\n', r"in.jsonl:1: no 'conversations' list of turns \(wrong format\?"),
    ("chat", '{"id": 1, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go"}]}\n\n{"id": 2,\n',
     r"in.jsonl:3: not valid JSON"),
    ("agenttraj", json.dumps(TRAIN[0]) + "\n" + json.dumps(TRAIN[0]) + "\n", r"in.jsonl:2: task 'alfworld_12' was already on line 1"),
    ("agenttraj", json.dumps({"item_id": "alfworld_1", "conversations": [{"from": "human", "value": "task"}, {"from": "gpt", "value": "OK"},
                                                                        {"from": "human", "value": "obs"}, {"from": "gpt", "value": "I give up"}]}) + "\n",
     r"in.jsonl:1: turn 3 \(gpt\): action_regex '.*' extracts no action from 'I give up'"),
    ("chat", '{"messages": [{"role": "user", "content": "hi"}, {"role": "critic", "content": "x"}]}\n', r"in.jsonl:1: turn 1: role 'critic' is not one of"),
])
def test_bad_input_is_one_line_naming_the_first_offending_line(tmp_path, capsys, fmt, content, message):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(content)
    assert re.search(message, _cli_error(["import", fmt, str(src), "--out", str(out)], capsys))
    assert not out.exists()


def test_an_existing_output_is_never_overwritten(tmp_path, capsys):
    src, out = _write_array(tmp_path / "train.json", TRAIN), tmp_path / "experts.jsonl"
    assert main(["import", "agenttraj", src, "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["import", "agenttraj", src, "--out", str(out)]) == 0  # the same import again: a no-op
    assert "unchanged (already imported)" in capsys.readouterr().out
    other = _write_array(tmp_path / "other.json", HELDOUT)
    err = _cli_error(["import", "agenttraj", other, "--out", str(out)], capsys)
    assert err == f"actrl import: error: {out}: exists with other content; use another --out or delete it (it is never overwritten)"
    err = _cli_error(["collect", "--env", "fetch", "--num", "1", "--out", str(out)], capsys)
    assert "a trajectory from import:agenttraj; collected and imported trajectories are never mixed" in err
    assert out.read_bytes() == before


def test_import_file_reads_jsonl_and_arrays_alike(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    _write_array(tmp_path / "b.json", TRAIN)
    mapping = TurnMapping(**FORMATS["agenttraj"])
    a, b = import_file(tmp_path / "a.jsonl", "agenttraj", mapping), import_file(tmp_path / "b.json", "agenttraj", mapping)
    assert [t.steps for t in a] == [t.steps for t in b] and [t.meta["line"] for t in b] == [2, 51]  # where each record opens


def _env_less_recipe(tmp_path, tiny_model_dir, experts, heldout, **changes) -> str:
    recipe = {
        "name": "imported", "output_root": str(tmp_path / "runs"), "model": {"name": tiny_model_dir},
        "prompt": {"history_window": 2, "prefill": True},  # prefilled <action>: every sampled alternative parses
        "env": {"name": None},
        "data": {"experts": experts, "heldout_experts": heldout},
        "pairs": {"k": 1, "max_new_tokens": 6, "resample_rounds": 1},
        "act": {"max_steps": 2, "num_generations": 2, "per_device_batch_size": 4, "save_steps": 1, "pair_eval": False, "eval_fraction": 0.0},
        "il": {"max_steps": 2, "per_device_batch_size": 4, "save_steps": 1, "eval_fraction": 0.0},
        "methods": ["il", "act -> il"], "eval": {"agent": False, "batch_size": 8}, **changes,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_imported_trajectories_run_pairs_act_il_and_next_action_without_an_environment(tmp_path, tiny_model_dir, capsys):
    experts, heldout = tmp_path / "experts.jsonl", tmp_path / "heldout.jsonl"
    assert main(["import", "agenttraj", _write_array(tmp_path / "train.json", TRAIN), "--out", str(experts)]) == 0
    assert main(["import", "agenttraj", _write_array(tmp_path / "test.json", HELDOUT), "--out", str(heldout), "--split", "test"]) == 0
    assert main(["run", _env_less_recipe(tmp_path, tiny_model_dir, str(experts), str(heldout))]) == 0
    run = tmp_path / "runs" / "imported" / "seed0"
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 7 and {p["alternative_admissible"] for p in pairs} == {None}  # one per expert state
    results = json.loads((run / "results.json").read_text())
    assert results["env"] is None and results["env_class"] is None
    for method in ("il", "act -> il"):
        m = results["methods"][method]["metrics"]
        assert json.loads((run / "eval" / method.replace(" -> ", "_") / "next_action.json").read_text())["states"] == 2
        assert 0 <= m["next_action_accuracy"] <= 1 and "success_rate" not in m
    # the same trajectories through `actrl train il`, outside a recipe
    out = tmp_path / "il"
    assert main(["train", "il", "--experts", str(experts), f"model.name={tiny_model_dir}", f"output_dir={out}", "max_steps=1",
                 "per_device_batch_size=4", "eval_fraction=0.0"]) == 0
    assert (out / "final").is_dir()


@pytest.mark.parametrize("changes,message", [
    ({"methods": ["il", "early_experience"]}, r"stage 'early_experience' executes actions in one \(Early Experience\); remove it"),
    ({"eval": {"agent": True}}, r"agent evaluation plays episodes in one; set eval.agent=false"),
    ({"data": {"experts": "x.jsonl"}}, r"data.heldout_experts must name an expert file"),
])
def test_a_recipe_without_an_environment_refuses_what_needs_one(tmp_path, tiny_model_dir, capsys, changes, message):

    path = _env_less_recipe(tmp_path, tiny_model_dir, "x.jsonl", "y.jsonl", **changes)
    assert re.search(message, _cli_error(["run", path], capsys))


def test_imported_data_refuses_admissible_alternatives_and_early_experience(tmp_path, tiny_model_dir, capsys):
    experts = tmp_path / "experts.jsonl"
    assert main(["import", "agenttraj", _write_array(tmp_path / "train.json", TRAIN), "--out", str(experts)]) == 0
    path = _env_less_recipe(tmp_path, tiny_model_dir, str(experts), str(experts), pairs={"k": 1, "fallback": "admissible_random"})
    err = _cli_error(["run", path], capsys)
    assert err.endswith("no admissible actions recorded (imported, or collected with record_admissible=never); "
                        "pairs.fallback=admissible_random needs them: set it off, or collect with data.record_admissible=always")
    path = _env_less_recipe(tmp_path, tiny_model_dir, str(experts), str(experts), env={"name": "fetch"}, methods=["early_experience"])
    err = _cli_error(["run", path], capsys)
    assert err.endswith("trajectories from import:agenttraj were not collected from an environment; stage 'early_experience' "
                        "executes actions from their states (Early Experience), which needs one: collect with `actrl collect --env NAME`, or leave it out")
    assert not (tmp_path / "runs" / "imported" / "seed0" / "pairs.jsonl").exists()


def test_module_doctests_hold():
    import doctest

    import actrl.data.importers

    assert doctest.testmod(actrl.data.importers).failed == 0
