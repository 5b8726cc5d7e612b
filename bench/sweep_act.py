"""ACT-stage sweep: held-out pair accuracy and pick-first rate for a grid of ACT settings.

Prepares a recipe's data once (experts, critic pairs, held-out pairs; cached in its run dir), then
trains the ACT stage once per setting from the recipe's model and measures held-out pair accuracy
(both orders of every pair) before and after, the pick-first rate, the last logged training metrics and the wall time. Appends
one JSON line per setting to <run dir>/sweep_act.jsonl (a finished setting is not rerun) and prints
a markdown table. Run by hand (minutes per setting on a CPU), not in CI.

Tuning split: the held-out pairs are built from `--split` (default `dev`), never from the split the
benchmark reports on unless asked (`--split test` prints a warning): a setting picked here is then
judged on test by `bench/quality.py`. Rows record their split; rows written before this option
existed were measured on test pairs.

    .venv/bin/python bench/sweep_act.py quality-twx \
        "choice lr1e-5: reward=choice learning_rate=1e-5" \
        "consistency lr1e-5: reward=consistency learning_rate=1e-5"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from actrl.config import deep_merge, parse_overrides
from actrl.pipeline import collect_split, load_recipe, pairs_config, prepare_data, stage_config
from actrl.train.act import PAIR_EVAL, train_act
from actrl.train.metrics import read_metrics

LAST_KEYS = ("act/reward", "act/accuracy", "act/pick_first_rate", "act/frac_zero_std_groups", "act/both_orders_accuracy")


def tuning_pairs(recipe, split: str) -> Path:
    """Held-out pairs of `split`, built like the recipe's pairs, cached in <run dir>/sweep/."""
    from actrl.data.pairs import build_pairs

    if split == recipe.data.train_split:
        raise SystemExit(f"--split {split}: that is the recipe's training split; pick a held-out one (dev)")
    if split == recipe.data.heldout_split:
        print(f"[sweep] warning: tuning on '{split}', the split the benchmark reports on", flush=True)
        return recipe.run_dir / "heldout_pairs.jsonl"
    sweep = recipe.run_dir / "sweep"
    sweep.mkdir(parents=True, exist_ok=True)
    experts = collect_split(recipe, split, recipe.data.heldout_num, sweep / f"{split}_experts.jsonl")
    build_pairs(experts, sweep / f"{split}_pairs.jsonl", pairs_config(recipe))
    return sweep / f"{split}_pairs.jsonl"


def run_setting(recipe_name: str, label: str, overrides: list[str], recipe_overrides: list[str], split: str) -> dict:
    recipe = load_recipe(recipe_name, recipe_overrides)
    data = prepare_data(recipe)
    heldout = tuning_pairs(recipe, split)
    recipe.act = deep_merge(recipe.act, parse_overrides(overrides))
    recipe.act.update(pair_eval=True, heldout=str(heldout))
    cfg = stage_config(recipe, "act", recipe.model.name, data["pairs"], recipe.run_dir / "sweep")
    t0 = time.perf_counter()
    train_act(cfg, str(data["pairs"]))
    wall = time.perf_counter() - t0
    pair_eval = json.loads((Path(cfg.output_dir) / PAIR_EVAL).read_text())
    logs = [m for m in read_metrics(cfg.output_dir) if "act/reward" in m]
    tail = logs[-5:]
    last = {}
    for k in LAST_KEYS:
        values = [m[k] for m in tail if m.get(k) is not None]
        last[k] = sum(values) / len(values) if values else None
    collapsed = sum(1 for m in logs if m.get("act/position_collapse"))
    return {"label": label, "split": split, "overrides": overrides, "output_dir": cfg.output_dir, "wall_s": round(wall, 1),
            "before": pair_eval["before"], "after": pair_eval["after"], "train_last5": last,
            "logged_steps": len(logs), "collapse_logs": collapsed}


def fill_both_orders(row: dict, recipe_name: str, recipe_overrides: list[str]) -> bool:
    """Re-measure a row evaluated before pair accuracy asked both orders (returns True when it changed)."""
    if "both_orders_accuracy" in row["after"]:
        return False
    from actrl.data.critic import critic_sampling
    from actrl.data.records import read_pairs
    from actrl.eval.pair_accuracy import pair_accuracy
    from actrl.models.generation import make_generator

    recipe = load_recipe(recipe_name, recipe_overrides)
    pairs = read_pairs(recipe.run_dir / "heldout_pairs.jsonl")
    for key, model in (("before", recipe.model.name), ("after", str(Path(row["output_dir"]) / "final"))):
        row[key] = {"model": model, **pair_accuracy(make_generator(model), pairs, recipe.prompt, critic_sampling())}
    return True


def pct(value: float | None) -> str:
    return "-" if not value and value != 0 else f"{100 * value:.0f}%"


def table(rows: list[dict]) -> str:
    head = ("| setting | split | pair acc before | pair acc after | right in both orders after | pick-first after | "
            "recorded-order acc after | train acc (last 5) | train both-orders acc (last 5) | collapse logs | wall |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        b, a, t = r["before"], r["after"], r["train_last5"]
        lines.append(
            f"| {r['label']} | {r.get('split', 'test')} | {100 * b['accuracy']:.1f}% | {100 * a['accuracy']:.1f}% | "
            f"{100 * a['both_orders_accuracy']:.1f}% | {100 * (a['pick_first_rate'] or 0):.0f}% | "
            f"{100 * a['recorded_order_accuracy']:.1f}% | {pct(t['act/accuracy'])} | "
            f"{pct(t['act/both_orders_accuracy'])} | {r['collapse_logs']}/{r['logged_steps']} | "
            f"{r['wall_s'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("settings", nargs="+", help='"label: key=value key=value" (ACT stage overrides)')
    parser.add_argument("--recipe-override", action="append", default=[], help="recipe key=value (e.g. seed=1)")
    parser.add_argument("--split", default="dev", help="split of the held-out pairs the settings are judged on")
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.recipe_override)
    out = recipe.run_dir / "sweep_act.jsonl"
    done = {}  # (label, split) -> row; rows written before --split existed were measured on test pairs
    for line in out.read_text().splitlines() if out.exists() else []:
        row = json.loads(line)
        done[row["label"], row.get("split", "test")] = row
    rows = []
    for setting in args.settings:
        label, _, rest = setting.partition(":")
        label = label.strip()
        key = (label, args.split)
        if key not in done:
            print(f"[sweep] {label} ({args.split} pairs): {rest.strip()}", flush=True)
            done[key] = run_setting(args.recipe, label, rest.split(), args.recipe_override, args.split)
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(done[key]) + "\n")
        rows.append(done[key])
    if any([fill_both_orders(r, args.recipe, args.recipe_override) for r in rows]):
        out.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    print(table(rows), flush=True)


if __name__ == "__main__":
    main()
