"""A Java simulator killed mid-episode (SIGKILL to its real PID): restarted, episode replayed, run goes on.

In-process on the adapter (same observations as without the kill; a second death in the same call
is one clean error), then through the CLI while `actrl collect` and `actrl eval agent` run on
ScienceWorld with two workers: the run finishes with every trajectory / episode and counts the
restart. No mock stands in for the environment: the JVM the adapter started is the one killed.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from cli_support import ACTRL, ROOT, cli_env, own_lines
from jvm_support import java_children, kill_jvm

from actrl.envs import EnvUnavailableError, Task, make

TWX_TASK = Task("textworld_express", "coin", 3, "train")


def _observations(env, actions):
    return [env.step(a).observation for a in actions]


def test_twx_killed_mid_episode_restarts_and_replays_to_the_same_observations():
    with make("textworld_express") as env:
        env.reset(TWX_TASK)
        gold = env.expert_actions()
        reference = _observations(env, gold)
        env.reset(TWX_TASK)
        got = _observations(env, gold[:1])
        first_pid = env.pid
        kill_jvm(first_pid)
        got += _observations(env, gold[1:])
        assert env.restarts == 1 and env.pid != first_pid
        assert got == reference and len(got) == len(gold) >= 2


def test_a_second_death_in_the_same_call_is_one_clean_error_and_the_next_call_recovers():
    with make("textworld_express") as env:
        env.reset(TWX_TASK)
        gold = env.expert_actions()
        env.step(gold[0])
        restore = env._restore

        def restore_then_die() -> None:  # the fresh JVM dies too, right after the replay
            restore()
            kill_jvm(env.pid)

        env._restore = restore_then_die
        kill_jvm(env.pid)
        with pytest.raises(EnvUnavailableError, match=r"textworld_express: the Java server died again right after "
                                                       r"a restart \(Py4J"):
            env.step(gold[1])
        env._restore = restore
        assert env.reset(TWX_TASK).text  # a fresh server for the next episode
        assert env.restarts == 1 and env.pid is not None  # a fresh start, not a restart


def _run_and_kill_one_jvm(args: list[str], ready) -> subprocess.CompletedProcess:
    """Start the command, wait until two JVMs run and `ready()`, SIGKILL one JVM, let the command finish."""
    proc = subprocess.Popen([*ACTRL, *args], cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (len(java_children(proc.pid)) == 2 and ready()):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the command never ran two environments"
        time.sleep(0.05)
    kill_jvm(java_children(proc.pid)[0])
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_collect_survives_a_scienceworld_jvm_killed_mid_episode(tmp_path):
    out = tmp_path / "experts.jsonl"
    proc = _run_and_kill_one_jvm(
        ["collect", "--env", "scienceworld", "--split", "test", "--num", "6", "--tasks",
         "find-non-living-thing,find-living-thing", "--workers", "2", "--record-admissible", "never", "--quiet",
         "--out", str(out)],
        ready=lambda: _lines(out) >= 1)  # one trajectory written: the other worker is mid-episode
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and not own_lines(proc.stderr), proc.stderr[-3000:]
    assert "6 trajectories (6 collected now, 0 already there; 6 requested)" in proc.stdout
    assert "environment restarts: 1 (a simulator process died; its episode was replayed)" in proc.stdout
    trajectories = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({(t["task"]["name"], t["task"]["variation"]) for t in trajectories}) == 6
    assert all(t["won"] and t["final_score"] == 100.0 for t in trajectories)  # every one passed the replay check


@pytest.mark.slow
def test_eval_agent_survives_a_scienceworld_jvm_killed_mid_episode(tmp_path, varied_model_dir):
    out = tmp_path / "eval"
    # the varied model after a prefilled "<action>" always names some action, so every step calls the
    # simulator and the killed JVM is met (and the episode's actions replayed) on the next step
    args = ["eval", "agent", "--env", "scienceworld", "--split", "test", "--tasks", "find-non-living-thing",
            "--episodes", "4", "--max-steps", "20", "--workers", "2", "--model", varied_model_dir,
            "--backend", "transformers", "--dtype", "float32", "--max-new-tokens", "4", "--out", str(out),
            "prompt.prefill=true"]
    seen: list[float] = []

    def second_pair_under_way() -> bool:  # the first two episodes ended together; the next two started
        if not seen and _lines(out / "test.episodes.jsonl") >= 2:
            seen.append(time.time())
        return bool(seen) and time.time() - seen[0] > 0.5

    proc = _run_and_kill_one_jvm(args, ready=second_pair_under_way)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "environment restarts: 1 (a simulator process died; its episode was replayed)" in proc.stdout, proc.stdout
    episodes = [json.loads(line) for line in (out / "test.episodes.jsonl").read_text().splitlines()]
    assert len({e["task_id"] for e in episodes}) == 4
    assert all(e["steps"] == 20 and None not in e["actions"] for e in episodes)  # never wins: played to the limit
    assert json.loads((out / "test.json").read_text())["aggregates"]["episodes"] == 4
