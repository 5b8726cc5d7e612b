"""`actrl demo`: the whole ACT pipeline on a 2-core CPU, on ScienceWorld with SmolLM2-135M-Instruct.

    actrl demo                      # runs the shipped recipe `demo` into runs/demo/seed0
    actrl demo seed=1               # any recipe override

It collects expert trajectories, builds critic pairs from the untrained model, trains IL and
ACT -> IL, evaluates them and the prompting baseline on held-out test variations, and writes
report.md (paper-style table, ACT reward/accuracy curves, IL loss, comparison chart). The
numbers of a 135M model after a few minutes of CPU training are a smoke test of the method's
machinery, not a reproduction of the paper: the report says whether ACT -> IL beat IL in this run.
"""

from __future__ import annotations

import time

from actrl.pipeline import load_recipe, run_recipe


def add_arguments(p) -> None:
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. seed=1 eval.episodes=4")
    p.add_argument("--recipe", default="demo", help="shipped recipe name or YAML path (default: demo)")


def run(args) -> int:
    start = time.time()
    recipe = load_recipe(args.recipe, args.overrides)
    results = run_recipe(recipe)
    report = recipe.run_dir / "report.md"
    print(report.read_text())
    print(f"[actrl] demo finished in {(time.time() - start) / 60:.1f} min; results {results}; report {report}")
    return 0
