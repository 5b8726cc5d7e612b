"""The quality benchmark: base vs IL vs ACT vs ACT -> IL over seeds, with a CI for ACT -> IL minus IL.

Runs each recipe once per seed (`actrl run RECIPE seed=S`: finished stages and evaluations are
reused, so an interrupted benchmark resumes), then writes one report per recipe with the table
(mean ± std over seeds) and the paired bootstrap 95% interval of ACT -> IL minus IL next-action
accuracy (actrl.report). Run by hand (about 15 minutes per recipe and seed on a 2-core CPU).

    .venv/bin/python bench/quality.py                                  # quality-twx, quality-scienceworld; seeds 0 1 2
    .venv/bin/python bench/quality.py --recipes quality-twx --seeds 0 1 --override act.learning_rate=3e-5
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["quality-twx", "quality-scienceworld"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--override", action="append", default=[], help="recipe key=value for every run")
    args = parser.parse_args()

    from actrl.pipeline import load_recipe, run_recipe
    from actrl.report import write_report

    for name in args.recipes:
        roots = set()
        for seed in args.seeds:
            recipe = load_recipe(name, [*args.override, f"seed={seed}", "report=false"])
            t0 = time.perf_counter()
            run_recipe(recipe)
            print(f"[quality] {name} seed {seed}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
            roots.add(recipe.run_dir.parent)
        for root in sorted(roots):
            path = write_report([root], root, title=f"quality benchmark: {name}")
            print(path.read_text(), flush=True)


if __name__ == "__main__":
    main()
