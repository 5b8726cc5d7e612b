"""Agent-evaluation throughput: vLLM lockstep vs transformers lockstep vs transformers one episode at a time.

    .venv/bin/python bench/eval_throughput.py                          # SmolLM2 default, TWX, 8 episodes, both engines
    .venv/bin/python bench/eval_throughput.py --env scienceworld --max-steps 5
    .venv/bin/python bench/eval_throughput.py --backend transformers   # transformers modes only
    .venv/bin/python bench/eval_throughput.py --thinking --max-new-tokens 256 --max-steps 3   # prompt-with-thinking

Every mode runs `actrl.eval.rollouts.evaluate_agent` with the same model, tasks and greedy decoding:
(a) transformers one at a time: one worker, batch size 1 (the baseline); (b) transformers lockstep:
`--parallel` episodes live at once, ONE batched generate call per step; (c) vLLM lockstep, the same
with vLLM's engine. All play on one `EnvPool` of environments started once, before the model loads
(the JVMs start while the engine warms up) and warmed by one reset each, so environment start-up
is reported separately and excluded from every mode, as are model load and engine start-up (in a
recipe the pool is reused by every evaluation call of a method, as here). Prints each mode's wall time, the
generate / environment split, the ratios against (a) and (b), and how many episodes took identical
actions (bf16 batching may flip a near-tie argmax). Numbers only; nothing is asserted. Note the
machine load: the ratios depend on it.
"""

from __future__ import annotations

import argparse
import os
import time


def run_mode(gen, env: str, tasks, envs, parallel: int, args) -> tuple[float, object]:
    from actrl.data.prompts import PromptConfig
    from actrl.eval.rollouts import EvalConfig, evaluate_agent

    cfg = EvalConfig(max_steps=args.max_steps, workers=parallel, model="bench", progress=False,
                     prompt=PromptConfig(thinking=args.thinking))
    cfg.sampling.batch_size = parallel
    cfg.sampling.max_new_tokens = args.max_new_tokens
    t0 = time.perf_counter()
    result = evaluate_agent(gen, env, tasks, cfg, envs=envs)
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--backend", choices=["both", "vllm", "transformers"], default="both")
    parser.add_argument("--env", default="textworld_express")
    parser.add_argument("--split", default="test")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=8, help="lockstep episodes at once")
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--thinking", action="store_true",
                        help="reason in <think> before the action (the prompt-with-thinking baseline; decode-heavy)")
    args = parser.parse_args()

    from actrl.envs import make
    from actrl.eval.rollouts import EnvPool, select_tasks
    from actrl.models.generation import HFGenerator
    from actrl.models.loading import ModelConfig
    from actrl.models.vllm_engine import VLLMGenerator

    model = ModelConfig(name=args.model, dtype=args.dtype)
    with make(args.env) as env:
        tasks = select_tasks(env, args.split, args.episodes)
    t0 = time.perf_counter()
    envs = EnvPool(args.env, {}, min(args.parallel, len(tasks)))  # starts now, in the background
    engines = {}
    starts = {}
    if args.backend in ("both", "vllm"):
        t = time.perf_counter()
        engines["vllm"] = VLLMGenerator(model, thinking=args.thinking or None)
        starts["vllm engine start-up"] = time.perf_counter() - t
    if args.backend in ("both", "transformers"):
        t = time.perf_counter()
        engines["transformers"] = HFGenerator.load(model, thinking=args.thinking or None)
        starts["transformers model load"] = time.perf_counter() - t
    ready = envs.envs(envs.size)
    starts[f"{envs.size} environments ready (started in the background at t=0)"] = time.perf_counter() - t0
    t = time.perf_counter()
    for env, task in zip(ready, tasks, strict=False):  # every mode then plays on equally warm simulators
        env.reset(task)
    starts["warm-up: one reset per environment"] = time.perf_counter() - t
    print(f"model {args.model}, {args.env}/{args.split}: {len(tasks)} episodes, max {args.max_steps} steps, "
          f"{args.max_new_tokens} new tokens, thinking {args.thinking}, {os.cpu_count()} cores, "
          f"load average before {os.getloadavg()[0]:.1f}")
    for what, secs in starts.items():
        print(f"  {what}: {secs:.1f} s")

    modes = []
    if "transformers" in engines:
        modes += [("transformers one at a time", "transformers", 1), ("transformers lockstep", "transformers", args.parallel)]
    if "vllm" in engines:
        modes.append(("vllm lockstep", "vllm", args.parallel))
    rows = {}
    try:
        for name, engine, parallel in modes:
            wall, result = run_mode(engines[engine], args.env, tasks, envs, parallel, args)
            rows[name] = (wall, result)
            t = result.timing
            print(f"{name:<27} parallel {parallel}: {wall:7.1f} s  {60 * len(tasks) / wall:6.2f} episodes/min  "
                  f"generate {t['generate_s']:.1f} s, environment {t['env_s']:.1f} s, {t['generate_calls']} generate "
                  f"calls, mean steps {result.aggregates['mean_steps']:.1f}, success {result.aggregates['success_rate']:.2f}, "
                  f"load average {os.getloadavg()[0]:.1f}")
    finally:
        envs.close()
        for gen in engines.values():
            gen.close()

    def ratio(a: str, b: str, key: str | None = None) -> str:
        if a not in rows or b not in rows:
            return "n/a"
        wa = rows[a][1].timing[key] if key else rows[a][0]
        wb = rows[b][1].timing[key] if key else rows[b][0]
        return f"{wb / wa:.2f}x"

    base, lock, vllm = "transformers one at a time", "transformers lockstep", "vllm lockstep"
    print(f"speed-up, whole evaluation: vllm lockstep / one at a time {ratio(vllm, base)}; transformers lockstep / one "
          f"at a time {ratio(lock, base)}; vllm / transformers, both lockstep {ratio(vllm, lock)}")
    print(f"speed-up, generation only: vllm lockstep / one at a time {ratio(vllm, base, 'generate_s')}; "
          f"vllm / transformers, both lockstep {ratio(vllm, lock, 'generate_s')}")
    names = list(rows)
    for other in names[1:]:
        same = sum(a["actions"] == b["actions"] for a, b in zip(rows[names[0]][1].episodes, rows[other][1].episodes, strict=True))
        steps = sum(sum(x == y for x, y in zip(a["actions"], b["actions"], strict=False))
                    for a, b in zip(rows[names[0]][1].episodes, rows[other][1].episodes, strict=True))
        total = sum(len(a["actions"]) for a in rows[names[0]][1].episodes)
        print(f"identical actions, {names[0]} vs {other}: {same}/{len(tasks)} episodes, {steps}/{total} steps in step order")


if __name__ == "__main__":
    main()
