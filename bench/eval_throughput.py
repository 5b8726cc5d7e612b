"""Agent-evaluation throughput: lockstep batched episodes vs one episode at a time.

    .venv/bin/python bench/eval_throughput.py                          # SmolLM2 default, TWX, 8 episodes
    .venv/bin/python bench/eval_throughput.py --env scienceworld --max-steps 5
    .venv/bin/python bench/eval_throughput.py --model /path/to/tiny --dtype float32
    .venv/bin/python bench/eval_throughput.py --threads 1      # on a CPU shared with other jobs
    .venv/bin/python bench/eval_throughput.py --thinking --max-new-tokens 256 --max-steps 3   # prompt-with-thinking baseline

Both modes run `actrl.eval.rollouts.evaluate_agent` with the same model, tasks and greedy decoding:
(a) lockstep: `--parallel` episodes live at once, ONE batched generate call per step over all of
them, one environment worker each; (b) sequential: one worker, batch size 1, so episodes play one
after another. Timed from the call (environment start-up included; model load excluded). Prints
episodes per minute for both, the ratio, the generation / environment split, and how many
episodes took identical actions in both modes (bf16 batching may flip a near-tie argmax).
Prints numbers only; nothing is asserted. Note the machine load: the ratio depends on it.
"""

from __future__ import annotations

import argparse
import os
import time


def run_mode(gen, env: str, tasks, parallel: int, max_steps: int, max_new_tokens: int, thinking: bool):
    from actrl.data.prompts import PromptConfig
    from actrl.eval.rollouts import EvalConfig, evaluate_agent

    cfg = EvalConfig(max_steps=max_steps, workers=parallel, model="bench", progress=False,
                     prompt=PromptConfig(thinking=thinking))
    cfg.sampling.batch_size = parallel
    cfg.sampling.max_new_tokens = max_new_tokens
    t0 = time.perf_counter()
    result = evaluate_agent(gen, env, tasks, cfg)
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--env", default="textworld_express")
    parser.add_argument("--split", default="test")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=8, help="lockstep episodes at once")
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--thinking", action="store_true",
                        help="reason in <think> before the action (the prompt-with-thinking baseline; decode-heavy)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 avoids thread thrashing on a busy machine)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from actrl.envs import make
    from actrl.eval.rollouts import select_tasks
    from actrl.models.generation import HFGenerator
    from actrl.models.loading import ModelConfig

    gen = HFGenerator.load(ModelConfig(name=args.model, dtype=args.dtype), thinking=args.thinking or None)
    with make(args.env) as env:
        tasks = select_tasks(env, args.split, args.episodes)
    print(f"model {args.model} ({next(gen.model.parameters()).dtype}), {args.env}/{args.split}: {len(tasks)} episodes, "
          f"max {args.max_steps} steps, {args.max_new_tokens} new tokens, thinking {args.thinking}, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.1f}")
    rows = {}
    for name, parallel in (("lockstep", args.parallel), ("sequential", 1)):
        wall, result = run_mode(gen, args.env, tasks, parallel, args.max_steps, args.max_new_tokens, args.thinking)
        rows[name] = (wall, result)
        t = result.timing
        print(f"{name:<10} parallel {parallel}: {wall:7.1f} s  {60 * len(tasks) / wall:6.2f} episodes/min  "
              f"generate {t['generate_s']:.1f} s, environment {t['env_s']:.1f} s, {t['generate_calls']} generate calls, "
              f"mean steps {result.aggregates['mean_steps']:.1f}, load average {os.getloadavg()[0]:.1f}")
    (w_lock, r_lock), (w_seq, r_seq) = rows["lockstep"], rows["sequential"]
    same = sum(a["actions"] == b["actions"] for a, b in zip(r_lock.episodes, r_seq.episodes, strict=True))
    print(f"speed-up lockstep / sequential: {w_seq / w_lock:.2f}x (target >= 4x at 8 parallel episodes)")
    print(f"episodes with identical actions in both modes: {same}/{len(tasks)}")


if __name__ == "__main__":
    main()
