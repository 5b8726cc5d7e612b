"""Ctrl-C and SIGKILL in the middle of long commands, then the same command again: nothing lost.

Ctrl-C is SIGINT to the whole process group, as a terminal sends it (the JVMs get it too): one
line on stderr, exit 130, no Java process left, and the rerun completes what was started. SIGKILL
covers the long stages the other suites do not: agent evaluation, reasoning evaluation, and a
recipe killed between two training stages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import ACTRL, ROOT, actrl, cli_env, own_lines
from jvm_support import alive, java_children

MATH500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500.jsonl"
INTERRUPTED = "interrupted; rerun the same command to resume"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _stop_when(args: list[str], ready: Callable[[], bool], sig: int) -> tuple[subprocess.CompletedProcess, set[int]]:
    """Run the command in its own process group; once `ready()`, send `sig` to the whole group
    (SIGINT, as a terminal does) or to the process (SIGKILL). Returns the result and its JVMs' PIDs."""
    proc = subprocess.Popen([*ACTRL, *args], cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    jvms: set[int] = set()
    deadline = time.time() + 300
    while not ready():
        jvms |= set(java_children(proc.pid))
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the command never got far enough"
        time.sleep(0.05)
    jvms |= set(java_children(proc.pid))
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), jvms


def _assert_interrupted(proc: subprocess.CompletedProcess, prog: str, jvms: set[int]) -> None:
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert own_lines(proc.stderr)[-1] == f"{prog}: {INTERRUPTED}", proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    deadline = time.time() + 10
    while any(alive(pid) for pid in jvms):  # Java got the SIGINT too, or was closed on the way out
        assert time.time() < deadline, f"Java processes left behind: {[p for p in jvms if alive(p)]}"
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_during_a_twx_collect_is_one_line_and_the_rerun_completes_it(tmp_path):
    out = tmp_path / "experts.jsonl"
    args = ["collect", "--env", "textworld_express", "--num", "60", "--workers", "2", "--quiet", "--out", str(out)]
    proc, jvms = _stop_when(args, lambda: len(_lines(out)) >= 10, signal.SIGINT)
    _assert_interrupted(proc, "actrl collect", jvms)
    assert proc.stderr.strip() == f"actrl collect: {INTERRUPTED}"  # that one line, nothing else
    assert len(jvms) == 2
    kept = _lines(out)
    assert 10 <= len(kept) < 60

    rerun = actrl(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"60 trajectories ({60 - len(kept)} collected now, {len(kept)} already there" in rerun.stdout
    final = _lines(out)
    assert final[: len(kept)] == kept  # what the interrupted run wrote is untouched
    ids = [json.dumps(json.loads(line)["task"], sort_keys=True) for line in final]
    assert len(ids) == len(set(ids)) == 60


@pytest.mark.slow
def test_ctrl_c_then_sigkill_during_eval_agent_lose_no_finished_episode(tmp_path, tiny_model_dir):
    out = tmp_path / "eval"
    episodes = out / "test.episodes.jsonl"
    args = ["eval", "agent", "--env", "textworld_express", "--episodes", "8", "--max-steps", "4", "--workers", "2",
            "--model", tiny_model_dir, "--backend", "transformers", "--dtype", "float32", "--max-new-tokens", "4",
            "--out", str(out)]
    proc, jvms = _stop_when(args, lambda: len(_lines(episodes)) >= 2, signal.SIGINT)
    _assert_interrupted(proc, "actrl eval agent", jvms)
    after_ctrl_c = _lines(episodes)
    assert 2 <= len(after_ctrl_c) < 8

    proc, _ = _stop_when(args, lambda: len(_lines(episodes)) >= len(after_ctrl_c) + 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    after_kill = _lines(episodes)
    assert after_kill[: len(after_ctrl_c)] == after_ctrl_c

    rerun = actrl(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = _lines(episodes)
    assert final[: len(after_kill)] == after_kill
    assert len({json.loads(line)["task_id"] for line in final}) == len(final) == 8
    assert json.loads((out / "test.json").read_text())["aggregates"]["episodes"] == 8


@pytest.mark.slow
def test_reasoning_evaluation_killed_resumes_keeping_every_answered_question(tmp_path, tiny_model_dir):
    out = tmp_path / "math.json"
    args = ["eval", "reasoning", "--bench", "math500", "--data", str(MATH500), "--limit", "6", "--chunk-size", "1",
            "--max-new-tokens", "8", "--batch-size", "1", "--model", tiny_model_dir, "--backend", "transformers",
            "--dtype", "float32", "--out", str(out)]

    def answered() -> int:
        try:
            return len(json.loads(out.read_text())["records"])
        except (OSError, ValueError, KeyError):
            return 0

    proc, _ = _stop_when(args, lambda: answered() >= 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    before = json.loads(out.read_text())
    assert not before["complete"] and 2 <= len(before["records"]) < 6

    rerun = actrl(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = json.loads(out.read_text())
    assert after["complete"] and len({r["id"] for r in after["records"]}) == 6
    kept = {r["id"]: r for r in before["records"]}
    assert [r for r in after["records"] if r["id"] in kept] == list(kept.values())  # not regenerated


@pytest.mark.slow
def test_a_recipe_killed_between_two_stages_resumes_without_retraining_the_first(tmp_path, tiny_model_dir):
    text = (Path(__file__).parent / "recipes_tiny_twx.yaml").read_text().replace("TINY", tiny_model_dir)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    args = ["run", str(recipe), f"output_root={tmp_path / 'runs'}", "methods=[il -> il]", "eval.agent=false",
            "eval.pair_accuracy=false", "il.max_steps=1", "report=false"]
    stages = tmp_path / "runs" / "tiny-twx" / "seed0" / "stages"
    finals = lambda: sorted(stages.glob("il-*/final/actrl_stage.json"))  # noqa: E731

    proc, _ = _stop_when(args, lambda: len(finals()) >= 1, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    (first,) = finals()
    stamp = first.stat().st_mtime_ns

    rerun = actrl(*args, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"[actrl] il -> il: stage il already done ({first.parent})" in rerun.stdout
    assert len(finals()) == 2 and first.stat().st_mtime_ns == stamp  # the first stage was not trained again
    results = json.loads((tmp_path / "runs" / "tiny-twx" / "seed0" / "results.json").read_text())
    assert list(results["methods"]) == ["il -> il"]
    assert 0 <= results["methods"]["il -> il"]["metrics"]["next_action_accuracy"] <= 1


@pytest.mark.slow
def test_ctrl_c_during_pairs_and_during_training_is_one_line_and_the_rerun_finishes(tmp_path, tiny_model_dir):
    from train_support import EXPERTS

    out = tmp_path / "pairs.jsonl"
    progress = tmp_path / "pairs.jsonl.progress"
    pairs = ["pairs", "--experts", str(EXPERTS), "--model", tiny_model_dir, "--k", "1", "max_new_tokens=4",
             "resample_rounds=0", "backend=transformers", "fallback=admissible_random", "states_per_chunk=1",
             "--out", str(out)]
    proc, _ = _stop_when(pairs, lambda: len(_lines(progress)) >= 2, signal.SIGINT)
    _assert_interrupted(proc, "actrl pairs", set())
    done = _lines(progress)
    rerun = actrl(*pairs)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _lines(progress)[: len(done)] == done
    states = sum(len(json.loads(line)["steps"]) for line in EXPERTS.read_text().splitlines())
    ids = [json.loads(line)["pair_id"] for line in _lines(out)]
    assert len(_lines(progress)) == states and len(ids) == len(set(ids)) == states  # K=1, filled when short

    stage = tmp_path / "il"
    train = ["train", "il", "--experts", str(EXPERTS), f"model.name={tiny_model_dir}", "model.dtype=float32",
             f"output_dir={stage}", "max_steps=6", "save_steps=1", "per_device_batch_size=2", "eval_fraction=0",
             "prompt.history_window=1", "prompt.max_observation_chars=200"]
    proc, _ = _stop_when(train, lambda: any(stage.glob("checkpoint-*/trainer_state.json")), signal.SIGINT)
    _assert_interrupted(proc, "actrl train il", set())
    assert not (stage / "final").exists()
    rerun = actrl(*train, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout
    assert json.loads((stage / "final" / "actrl_stage.json").read_text())["global_step"] == 6
