"""The stages under `accelerate launch` with two CPU processes (the distributed code path, no GPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import EXPERTS, PAIRS, SHORT_PROMPT, primed_model

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"


def launch(stage: str, data: list[str], settings: dict) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate's launcher is not installed beside this Python"
    args = [f"{k}={v}" for k, v in {**SHORT_PROMPT, **settings}.items()]
    cmd = [accelerate, "launch", "--config_file", str(CONFIG), "-m", "actrl.cli", "train", stage, *data, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def check_two_ranks_one_checkpoint(run: subprocess.CompletedProcess, out: Path, steps: int) -> None:
    assert run.returncode == 0, run.stderr[-4000:]
    assert "process 0 of 2 training" in run.stdout and "process 1 of 2 training" in run.stdout
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [f"checkpoint-{steps}"]
    assert not list(out.glob("final.tmp*"))
    stage = json.loads((out / "final" / "actrl_stage.json").read_text())
    assert stage["processes"] == 2 and stage["global_step"] == steps
    assert run.stdout.count("[actrl]   processes") == 1  # the plan is printed by the main process only


@pytest.mark.slow
def test_il_stage_runs_on_two_cpu_processes(tmp_path, tiny_model_dir):
    out = tmp_path / "il"
    settings = {"output_dir": out, "model.name": tiny_model_dir, "model.dtype": "float32",
                "per_device_batch_size": 2, "max_steps": 2, "save_steps": 2, "eval_fraction": 0}
    run = launch("il", ["--experts", str(EXPERTS)], settings)
    check_two_ranks_one_checkpoint(run, out, 2)
    assert "examples per step            4" in run.stdout  # 2 per device x 2 processes


@pytest.mark.slow
def test_act_stage_runs_on_two_cpu_processes(tmp_path, tiny_model_dir):
    out = tmp_path / "act"
    settings = {"output_dir": out, "model.name": primed_model(tiny_model_dir), "model.dtype": "float32",
                "num_generations": 4, "per_device_batch_size": 4, "max_steps": 2, "save_steps": 2,
                "pair_eval": False, "eval_fraction": 0}
    run = launch("act", ["--pairs", str(PAIRS)], settings)
    check_two_ranks_one_checkpoint(run, out, 2)
    assert "prompts per step             2" in run.stdout  # 4 completions x 2 processes / G=4


@pytest.mark.slow
def test_act_checkpoint_selection_on_two_cpu_processes(tmp_path, tiny_model_dir):
    """select_on under DDP: the main process evaluates, both ranks agree on the kept checkpoint."""
    out = tmp_path / "act"
    lines = PAIRS.read_text().splitlines(keepends=True)
    select = tmp_path / "select_pairs.jsonl"
    select.write_text("".join(lines[:4]))
    settings = {"output_dir": out, "model.name": primed_model(tiny_model_dir), "model.dtype": "float32",
                "num_generations": 4, "per_device_batch_size": 4, "max_steps": 4, "save_steps": 2,
                "pair_eval": False, "eval_fraction": 0, "select_on": select}
    run = launch("act", ["--pairs", str(PAIRS)], settings)
    assert run.returncode == 0, run.stderr[-4000:]
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [m for m in logs if "eval_pair_both_orders_accuracy" in m]
    assert [m["step"] for m in logged] == [2, 4]  # one evaluation per save, logged once (main process)
    evals = {m["step"]: m["eval_pair_both_orders_accuracy"] for m in logged}
    best = max(evals, key=lambda s: (evals[s], -s))
    stage = json.loads((out / "final" / "actrl_stage.json").read_text())
    assert stage["processes"] == 2 and stage["best_checkpoint"].endswith(f"checkpoint-{best}")
    assert stage["best_metric"] == evals[best]
