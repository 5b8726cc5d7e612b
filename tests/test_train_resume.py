"""A stage killed after a checkpoint resumes from it: no step is trained twice, final/ is written once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_support import EXPERTS, SHORT_PROMPT

from actrl.train.common import last_checkpoint
from actrl.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def il_command(out: Path, model: str) -> list[str]:
    settings = {
        **SHORT_PROMPT,
        "output_dir": out,
        "model.name": model,
        "model.dtype": "float32",
        "per_device_batch_size": 2,
        "max_steps": 8,
        "save_steps": 1,
        "save_total_limit": 2,
        "learning_rate": 1e-3,
        "eval_fraction": 0,
    }
    args = [f"{k}={v}" for k, v in settings.items()]
    return [sys.executable, "-m", "actrl.cli", "train", "il", "--experts", str(EXPERTS), *args]


def test_resume_skips_a_checkpoint_whose_trainer_state_was_torn(tmp_path):
    """SIGKILL while the Trainer writes trainer_state.json (its last file) leaves it empty or cut short."""
    assert last_checkpoint(tmp_path / "missing") is None
    for step, text in ((2, '{"global_step": 2}'), (3, '{"global_step": 3}'), (4, ""), (5, '{"global_st'), (6, None)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        if text is not None:
            (ckpt / "trainer_state.json").write_text(text)
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-3"


@pytest.mark.slow
def test_il_stage_killed_after_a_checkpoint_resumes_without_repeating_steps(tmp_path, tiny_model_dir):
    out = tmp_path / "il"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(il_command(out, tiny_model_dir), cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while last_checkpoint(out) is None:  # a complete one: a kill mid-write is the unit test above
        assert first.poll() is None, "the stage ended before writing a checkpoint"
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    assert not (out / "final").exists()

    second = subprocess.run(il_command(out, tiny_model_dir), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = re.search(r"resuming from .*checkpoint-(\d+) \(step (\d+)\)", second.stdout)
    assert resumed, second.stdout[-3000:]
    step = int(resumed.group(2))
    assert 1 <= step < 8
    # the rerun trains only the steps after the checkpoint: one printed log per step
    assert second.stdout.count("'loss':") == 8 - step
    assert [m["step"] for m in read_metrics(out) if "il/loss" in m] == list(range(1, 9))
    assert json.loads((out / "final" / "actrl_stage.json").read_text())["global_step"] == 8
    assert not list(out.glob("final.tmp*"))

    # a third run finds final/ and does nothing
    third = subprocess.run(il_command(out, tiny_model_dir), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert third.returncode == 0 and "stage already finished" in third.stdout


@pytest.mark.slow
def test_a_stage_killed_before_its_first_checkpoint_logs_each_step_once(tmp_path, tiny_model_dir):
    out = tmp_path / "il"
    out.mkdir()
    stale = [{"step": s, "il/loss": 9.0} for s in (1, 2, 3)]  # what a run killed before checkpoint-1 left
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in stale) + '{"step": 4, "il/lo')
    cmd = [*il_command(out, tiny_model_dir), "max_steps=3", "save_steps=3"]
    run = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    logged = [m for m in read_metrics(out) if "il/loss" in m]
    assert [m["step"] for m in logged] == [1, 2, 3] and all(m["il/loss"] != 9.0 for m in logged)
