"""Critic-pair construction throughput: vLLM vs batched transformers vs one state at a time.

    .venv/bin/python bench/pairs_throughput.py                      # default model, 76 TWX expert states, both engines
    .venv/bin/python bench/pairs_throughput.py --states 32 --k 2
    .venv/bin/python bench/pairs_throughput.py --backend transformers

All modes run `actrl.data.pairs.build_pairs` with the same model, expert states, seed and
settings: (v) vLLM: all of a chunk's prompts in one call, n = 2K samples per prompt, prefix caching
on; (a) transformers batched: `--batch-size` prompts per generate call, 64 states per chunk, each
prompt prefilled once for its 2K samples (the default); (b) the same, with `generate` prefilling
every sample's copy of the prompt; (c) one state at a time: batch size 1, one state per chunk,
prefilled 2K times (plain `generate`, the naive baseline). Engine start-up and model load are timed
apart. Prints states and pairs per minute and the ratios against (c) and (a). Numbers only;
nothing is asserted. Note the machine load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--states", type=int, default=76)
    parser.add_argument("--backend", choices=["both", "vllm", "transformers"], default="both")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--plain-prompt", action="store_true",
                        help="the default prompt (no prefilled <action> tag, full history) instead of quality-twx's")
    args = parser.parse_args()

    from actrl.data.experts import collect
    from actrl.data.pairs import PairsConfig, build_pairs
    from actrl.data.prompts import PromptConfig
    from actrl.data.records import Trajectory, read_trajectories, write_jsonl
    from actrl.models.generation import HFGenerator

    tmp = Path(tempfile.mkdtemp(prefix="actrl-bench-pairs-"))
    collect("textworld_express", "train", 30, out=tmp / "all.jsonl", tasks=["twc", "coin", "cookingworld"], progress=False)
    # keep whole trajectories until --states expert states are covered
    kept: list[Trajectory] = []
    for traj in read_trajectories(tmp / "all.jsonl"):
        if sum(len(t.steps) for t in kept) >= args.states:
            break
        kept.append(traj)
    write_jsonl(tmp / "experts.jsonl", [t.to_dict() for t in kept])
    n_states = sum(len(t.steps) for t in kept)
    gens = {}
    if args.backend in ("both", "vllm"):
        from actrl.models.vllm_engine import VLLMGenerator

        t0 = time.perf_counter()
        gens["vllm"] = VLLMGenerator(args.model)
        print(f"vllm engine start-up: {time.perf_counter() - t0:.1f} s")
    if args.backend in ("both", "transformers"):
        t0 = time.perf_counter()
        gens["transformers"] = HFGenerator.load(args.model)
        print(f"transformers model load: {time.perf_counter() - t0:.1f} s")
    # the quality-twx prompt as benchmarked (observations then cut to 300 characters; the recipe now keeps 800):
    # the default model's samples parse (the tag is prefilled)
    prompt = PromptConfig() if args.plain_prompt else PromptConfig(history_window=1, max_observation_chars=300, prefill=True)
    base = dict(model=args.model, k=args.k, max_new_tokens=args.max_new_tokens, resample_rounds=0,
                fallback="admissible_random", prompt=prompt)
    results = {}
    batched = dict(batch_size=args.batch_size, states_per_chunk=64)
    modes = [("vllm", "vllm", batched, True)] if "vllm" in gens else []
    if "transformers" in gens:
        modes += [("batched", "transformers", batched, True), ("batched, 2K prefills", "transformers", batched, False),
                  ("one-at-a-time", "transformers", dict(batch_size=1, states_per_chunk=1), False)]
    for mode, engine, extra, share in modes:
        gen = gens[engine]
        gen.share_prompt_cache = share
        t0 = time.perf_counter()
        cfg = PairsConfig(**base, **extra, backend=engine)
        meta = build_pairs(tmp / "experts.jsonl", tmp / f"{mode}.jsonl".replace(" ", "_").replace(",", ""), cfg, gen)
        results[mode] = (time.perf_counter() - t0, meta["counts"])
    for gen in gens.values():
        gen.close()
    print(f"model {args.model}; {'plain' if args.plain_prompt else 'quality-twx'} prompt; {n_states} expert states; K={args.k}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for mode, (secs, c) in results.items():
        print(f"{mode:>20}: {secs:7.1f} s  {60 * n_states / secs:7.1f} states/min  {60 * c['pairs'] / secs:7.1f} pairs/min  "
              f"(samples {c['samples']}, unparseable {c['dropped_unparseable']}, pairs {c['pairs']})")
    for mode in ("vllm", "batched", "batched, 2K prefills"):
        if mode in results and "one-at-a-time" in results:
            print(f"{mode} / one-at-a-time throughput: {results['one-at-a-time'][0] / results[mode][0]:.2f}x")
    if "vllm" in results and "batched" in results:
        print(f"vllm / transformers batched throughput: {results['batched'][0] / results['vllm'][0]:.2f}x")


if __name__ == "__main__":
    main()
