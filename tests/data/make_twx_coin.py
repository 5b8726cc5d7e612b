"""Writes the test fixtures twx_coin_experts.jsonl and twx_coin_pairs.jsonl from real TextWorldExpress.

Real data, not invented: expert trajectories are TextWorldExpress's own gold action sequences for
the 'coin' game (train fold, seeds 0-7), replayed step by step with the admissible actions the
simulator lists; each critic pair sets an expert action against another admissible action drawn
with a seeded generator (the stand-in for a policy sample that `actrl pairs` produces).

    .venv/bin/python tests/data/make_twx_coin.py     # rewrites both files

TextWorldExpress's gold-path generator is not deterministic across runs (the same seed can give a
longer wandering path), so a rerun writes a different, equally real file; tests read the committed one.
"""

from __future__ import annotations

import random
from pathlib import Path

from textworld_express import TextWorldExpressEnv

from actrl.data.prompts import same_action
from actrl.data.records import CriticPair, Step, Trajectory, write_jsonl

HERE = Path(__file__).parent
GAME, PARAMS, SEEDS = "coin", "numLocations=4,numDistractorItems=0,includeDoors=1", range(8)


def trajectories() -> list[Trajectory]:
    env = TextWorldExpressEnv(envStepLimit=100)
    out = []
    try:
        for seed in SEEDS:
            obs, info = env.reset(seed=seed, gameFold="train", gameName=GAME, gameParams=PARAMS, generateGoldPath=True)
            steps = []
            for action in env.getGoldActionSequence():
                admissible = sorted(info["validActions"])
                nxt, reward, done, info = env.step(action)
                steps.append(Step(obs, action, float(reward), 100.0 * float(info["score"]), bool(done), admissible))
                obs = nxt
            task = {"env": "textworld_express", "name": GAME, "variation": seed, "split": "train"}
            meta = {"expert": "gold", "params": PARAMS}
            out.append(Trajectory(task, info["taskDescription"], steps, steps[-1].score, bool(info["tasksuccess"]), meta))
    finally:
        env.close()
    return out


def pairs(trajs: list[Trajectory], seed: int = 0) -> list[CriticPair]:
    rng = random.Random(seed)
    out = []
    for traj in trajs:
        for t, state, expert in traj.states():
            others = [a for a in state.admissible or [] if not same_action(a, expert)]
            if not others:
                continue
            alt = rng.choice(others)
            out.append(
                CriticPair(f"{traj.task_id}#{t}#0", traj.task_id, t, state, expert, alt, rng.choice((1, 2)),
                           alternative_source="admissible_resample", alternative_admissible=True)
            )
    return out


if __name__ == "__main__":
    trajs = trajectories()
    write_jsonl(HERE / "twx_coin_experts.jsonl", [t.to_dict() for t in trajs])
    ps = pairs(trajs)
    write_jsonl(HERE / "twx_coin_pairs.jsonl", [p.to_dict() for p in ps])
    print(f"{len(trajs)} trajectories, {sum(len(t.steps) for t in trajs)} states, {len(ps)} pairs")
