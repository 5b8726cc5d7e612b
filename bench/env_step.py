"""Environment step speed: the ScienceWorld adapter's fast path vs the package's own `env.step`.

    .venv/bin/python bench/env_step.py                       # boil, variation 0, 3 repeats
    .venv/bin/python bench/env_step.py --task use-thermometer --variation 0 --repeats 5

Both play the same gold path of the same task and variation, in Java servers started the same way
(`deterministic_jvm`), and only the step calls are timed (load/reset excluded). The adapter's
`step` calls the server's step and reads score and completion; `env.step` also builds the ~400
valid actions, look, inventory and the task description on every call. Also prints the
TextWorldExpress adapter's steps/s on its gold paths (the fast environment of the tests).
Prints numbers and ratios only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time


def scienceworld_rates(task_name: str, variation: int, repeats: int) -> tuple[float, float, int]:
    from scienceworld import ScienceWorldEnv as Package

    from actrl.envs import Task, make
    from actrl.envs.scienceworld import deterministic_jvm

    env = make("scienceworld")
    split = next(s for s in ("train", "dev", "test") if variation in env.variations(task_name, s))
    task = Task("scienceworld", task_name, variation, split)
    env.reset(task)
    gold = env.expert_actions()
    with deterministic_jvm():
        plain = Package("", envStepLimit=10**9)
    adapter_s = plain_s = 0.0
    steps = 0
    try:
        for _ in range(repeats):
            env.reset(task)
            start = time.perf_counter()
            played = 0
            for action in gold:
                played += 1
                if env.step(action).done:
                    break
            adapter_s += time.perf_counter() - start
            steps += played

            plain.load(task_name, variation, "", generateGoldPath=True)
            plain.reset()
            start = time.perf_counter()
            for action in gold[:played]:
                plain.step(action)
            plain_s += time.perf_counter() - start
    finally:
        plain.close()
        env.close()
    return steps / adapter_s, steps / plain_s, len(gold)


def twx_rate(episodes: int) -> float:
    from actrl.envs import make

    env = make("textworld_express")
    steps, elapsed = 0, 0.0
    try:
        for game in env.task_names():
            for task in env.tasks("train", [game])[:episodes]:
                env.reset(task)
                start = time.perf_counter()
                for action in env.expert_actions():
                    steps += 1
                    if env.step(action).done:
                        break
                elapsed += time.perf_counter() - start
    finally:
        env.close()
    return steps / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="boil")
    p.add_argument("--variation", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--twx-episodes", type=int, default=5, help="TWX episodes per game")
    args = p.parse_args()
    fast, plain, n = scienceworld_rates(args.task, args.variation, args.repeats)
    print(f"scienceworld {args.task}/{args.variation}, gold path {n} steps, x{args.repeats}")
    print(f"  adapter step (server fast path): {fast:8.1f} steps/s")
    print(f"  package env.step:                {plain:8.1f} steps/s")
    print(f"  ratio:                           {fast / plain:8.1f}x")
    print(f"textworld_express adapter, gold paths of 8 games x {args.twx_episodes}: {twx_rate(args.twx_episodes):.0f} steps/s")


if __name__ == "__main__":
    main()
