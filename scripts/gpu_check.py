"""GPU check: the CUDA paths of actrl on one NVIDIA GPU, in one run of a few minutes.

    bash scripts/gpu_check_prepare.sh       # here, with network: wheels and the tiny model into .gpu_check/
    bash scripts/gpu_check.sh               # on the GPU machine (CUDA torch, transformers, accelerate, peft)

Runs on the tiny model (a 3M-parameter Llama with the SmolLM2 tokenizer, shipped in .gpu_check/):
1. CUDA generation through transformers (`HFGenerator`): tokens/s at batch 1 and batch 8, bf16;
2. one ACT GRPO step in bf16 on CUDA (`train_act`, the test suite's TWX critic pairs);
3. one IL SFT step in bf16 on CUDA (`train_il`, the test suite's TWX expert trajectories);
4. `accelerate launch` with one process running an IL step through the `actrl` command;
5. vLLM generation (`VLLMGenerator`) when vLLM is installed there (skipped, and said, otherwise).
Prints each step's time and a final PASS or FAIL line; exit 0 only on PASS.
`--allow-cpu` runs the same on a CPU to check the script itself (then it says it did not test CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "twx_coin_pairs.jsonl"
EXPERTS = ROOT / "tests" / "data" / "twx_coin_experts.jsonl"
SHORT = ["prompt.history_window=0", "prompt.max_observation_chars=40"]


def check_generation(model: str, device: str) -> str:
    from actrl.models.generation import HFGenerator, SamplingConfig
    from actrl.models.loading import ModelConfig

    gen = HFGenerator.load(ModelConfig(name=model, dtype="bfloat16", device=device))
    prompt = [{"role": "user", "content": "go north, then take the apple"}]
    rates = []
    for batch in (1, 8):
        sampling = SamplingConfig(temperature=1.0, max_new_tokens=64, batch_size=batch, seed=0)
        gen.generate([prompt] * batch, sampling)  # warm-up
        t0 = time.perf_counter()
        outs = gen.generate([prompt] * batch, sampling)
        secs = time.perf_counter() - t0
        tokens = sum(len(gen.tokenizer(o[0], add_special_tokens=False).input_ids) for o in outs)
        rates.append(f"batch {batch}: {tokens / secs:.0f} tok/s")
    assert str(next(gen.model.parameters()).device).startswith(device)
    return ", ".join(rates)


def _stage_time(out: Path) -> str:
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    runtime = next((m.get("train_runtime") for m in metrics if "train_runtime" in m), None)
    return f"train_runtime {runtime:.2f} s" if runtime is not None else "no train_runtime logged"


def check_act(model: str, device: str, tmp: Path) -> str:
    from actrl.config import load_config
    from actrl.train.act import ACTConfig, train_act

    cfg = load_config(ACTConfig, None, [f"output_dir={tmp / 'act'}", f"model.name={model}", "model.dtype=bfloat16",
                                        f"model.device={device}", "num_generations=4", "per_device_batch_size=8",
                                        "max_steps=1", "learning_rate=1e-4", "eval_fraction=0.25", *SHORT])
    t0 = time.perf_counter()
    final = train_act(cfg, str(PAIRS))
    assert (final / "model.safetensors").exists()
    pair_eval = json.loads((tmp / "act" / "pair_eval.json").read_text())
    return f"{time.perf_counter() - t0:.1f} s with pair evaluation, {_stage_time(tmp / 'act')}, held-out pair accuracy after {pair_eval['after']['accuracy']:.2f}"


def check_il(model: str, device: str, tmp: Path) -> str:
    from actrl.config import load_config
    from actrl.train.il import ILConfig, train_il

    cfg = load_config(ILConfig, None, [f"output_dir={tmp / 'il'}", f"model.name={model}", "model.dtype=bfloat16",
                                       f"model.device={device}", "max_steps=1", "eval_fraction=0", *SHORT])
    t0 = time.perf_counter()
    final = train_il(cfg, str(EXPERTS))
    assert (final / "model.safetensors").exists()
    return f"{time.perf_counter() - t0:.1f} s, {_stage_time(tmp / 'il')}"


def check_accelerate(model: str, device: str, tmp: Path) -> str:
    out = tmp / "il_accelerate"
    launch = ["--cpu"] if device == "cpu" else ["--mixed_precision", "bf16"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", *launch, "-m", "actrl.cli", "train", "il", "--experts", str(EXPERTS),
           f"output_dir={out}", f"model.name={model}", "model.dtype=bfloat16", "max_steps=1", "eval_fraction=0", *SHORT]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"accelerate launch exited {proc.returncode}: {proc.stderr.strip().splitlines()[-3:]}")
    assert (out / "final" / "model.safetensors").exists()
    return f"{time.perf_counter() - t0:.1f} s (process start included), {_stage_time(out)}"


def check_vllm(model: str, device: str) -> str:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "SKIPPED: vLLM is not installed on this machine"
    from actrl.models.generation import SamplingConfig
    from actrl.models.vllm_engine import VLLMGenerator

    t0 = time.perf_counter()
    gen = VLLMGenerator(model)
    start = time.perf_counter() - t0
    prompts = [[{"role": "user", "content": f"go north {i}"}] for i in range(64)]
    t0 = time.perf_counter()
    outs = gen.generate(prompts, SamplingConfig(temperature=1.0, max_new_tokens=64, seed=0))
    secs = time.perf_counter() - t0
    tokens = sum(len(gen.tokenizer(o[0], add_special_tokens=False).input_ids) for o in outs)
    gen.close()
    return f"engine start {start:.1f} s, 64 prompts: {tokens / secs:.0f} tok/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / ".gpu_check" / "tiny"), help="tiny model directory")
    parser.add_argument("--allow-cpu", action="store_true", help="run on a CPU (checks the script, not CUDA)")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, CUDA available: {cuda}" + (f", {torch.cuda.get_device_name(0)}" if cuda else ""))
    if not cuda and not args.allow_cpu:
        print("FAIL: no CUDA device (torch.cuda.is_available() is False)")
        return 1
    device = "cuda" if cuda else "cpu"
    if not Path(args.model, "config.json").exists():
        print(f"FAIL: {args.model} has no config.json; run scripts/gpu_check_prepare.sh first")
        return 1
    failed = []
    tmp = Path(tempfile.mkdtemp(prefix="actrl-gpu-check-"))
    checks = [("generation (transformers, bf16)", lambda: check_generation(args.model, device)),
              ("ACT GRPO step (bf16)", lambda: check_act(args.model, device, tmp)),
              ("IL SFT step (bf16)", lambda: check_il(args.model, device, tmp)),
              ("accelerate launch, 1 process", lambda: check_accelerate(args.model, device, tmp)),
              ("vLLM generation", lambda: check_vllm(args.model, device))]
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            print(f"ok   {name}: {check()}", flush=True)
        except Exception as e:  # noqa: BLE001 - every check runs; the summary names the failures
            traceback.print_exc()
            print(f"FAIL {name} after {time.perf_counter() - t0:.1f} s: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
    where = f"on {device}" + ("" if cuda else " (--allow-cpu: CUDA itself was not tested)")
    print(f"{'FAIL' if failed else 'PASS'}: {len(checks) - len(failed)}/{len(checks)} checks passed {where}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
