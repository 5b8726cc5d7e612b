"""The human view of runs: paper-style tables (mean +- std over seeds) and plots.

    actrl report runs/demo                 # one run directory (all its seeds)
    actrl report runs/* --out report       # several recipes side by side

A reader of run directories, nothing more: it reads `results.json` (written by `actrl run` after
evaluation) and each stage's `metrics.jsonl`, and writes `report.md` plus PNG plots. Methods are
rows, metrics are columns; a missing cell is shown as "-" (never as 0). When the model and the
benchmark match a setting the paper reports, the paper's number is shown beside ours.

Plots: ACT reward / accuracy / pick-first rate over steps, IL loss over steps, and a bar chart
comparing methods on each metric.

With per-state predictions (eval/<method>/next_action.predictions.jsonl), the report also gives
ACT -> IL minus IL next-action accuracy with a 95% paired bootstrap confidence interval: each
replicate resamples every run's held-out states with replacement (the same states for both
methods), takes the accuracy difference per run and averages it over runs.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from actrl.data.records import read_jsonl
from actrl.methods import slug

BOOTSTRAP_REPLICATES = 10_000

# metric key -> (column title, scale to percent)
COLUMNS: dict[str, tuple[str, bool]] = {
    "next_action_accuracy": ("next-action acc. %", True),
    "pair_accuracy": ("held-out pair acc. %", True),
    "pick_first_rate": ("picks Action 1 %", True),
    "pair_both_orders_accuracy": ("pair right in both orders %", True),
    "success_rate": ("episode success %", True),
    "mean_score": ("episode score", False),
    "mean_steps": ("mean steps", False),
    "invalid_rate": ("invalid actions %", True),
    "stuck_rate": ("stuck episodes %", True),
    "action_format_failure_rate": ("action format failures %", True),
    "critic_format_failure_rate": ("critic format failures %", True),
    "alfworld_id": ("ALFWorld ID %", True),
    "alfworld_ood": ("ALFWorld OOD %", True),
    "webshop": ("WebShop %", True),
    "scienceworld": ("ScienceWorld", False),
    "math500": ("MATH-500 %", True),
    "gpqa_diamond": ("GPQA-Diamond %", True),
}

# The paper's published numbers (ACT.md), Qwen3-8B. v1 table: ALFWorld ID/OOD success, WebShop
# success, ScienceWorld next-action accuracy; v2 (mean of 3 runs): ScienceWorld = episode score.
PAPER_MODEL = "Qwen/Qwen3-8B"
PAPER: dict[str, dict[str, float]] = {
    "prompt": {"alfworld_id": 35.71, "alfworld_ood": 27.61, "webshop": 2.80, "scienceworld": 28.01},
    "prompt (thinking)": {"alfworld_id": 56.43, "alfworld_ood": 50.00, "webshop": 3.00, "scienceworld": 25.21},
    "act": {"alfworld_id": 72.86, "alfworld_ood": 72.39, "webshop": 7.40, "scienceworld": 26.71},
    "il": {"alfworld_id": 85.71, "alfworld_ood": 82.84, "webshop": 28.00, "scienceworld": 42.80,
           "math500": 87.00, "gpqa_diamond": 44.61},
    "early_experience": {"alfworld_id": 87.86, "alfworld_ood": 85.82, "webshop": 31.00, "scienceworld": 45.60},
    "act -> il": {"alfworld_id": 91.43, "alfworld_ood": 87.31, "webshop": 31.60, "scienceworld": 48.69,
                  "math500": 87.73, "gpqa_diamond": 53.37},
    "rl": {"alfworld_id": 90.71, "alfworld_ood": 84.33, "webshop": 29.40, "scienceworld": 43.04},
    "act -> rl": {"alfworld_id": 92.86, "alfworld_ood": 88.06, "webshop": 33.80, "scienceworld": 50.34},
    "il -> rl": {"alfworld_id": 94.28, "alfworld_ood": 90.80, "webshop": 39.53, "scienceworld": 30.52},
    "act -> il -> rl": {"alfworld_id": 96.19, "alfworld_ood": 91.54, "webshop": 42.80, "scienceworld": 34.63},
}


def find_results(paths: list[str | Path]) -> list[Path]:
    """results.json files under the given run directories (or the files themselves)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.name == "results.json":
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob("results.json")))
    return found


def collect(results: list[Path]) -> dict[str, dict[str, list[float]]]:
    """method -> metric -> values over runs (seeds)."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in results:
        data = json.loads(path.read_text())
        for method, entry in data.get("methods", {}).items():
            for key, value in entry.get("metrics", {}).items():
                if isinstance(value, (int, float)) and not math.isnan(value):
                    table[method][key].append(float(value))
    return table


def fmt(values: list[float], percent: bool) -> str:
    if not values:
        return "-"
    scale = 100.0 if percent else 1.0
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {statistics.stdev(values) * scale:.1f}"


def markdown_table(table: dict[str, dict[str, list[float]]], paper_model: bool = False) -> str:
    methods = list(table)
    keys = [k for k in COLUMNS if any(table[m].get(k) for m in methods)]
    keys += sorted({k for m in methods for k in table[m]} - set(keys))
    head = ["method", "runs"] + [COLUMNS.get(k, (k, False))[0] for k in keys]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        n = max((len(v) for v in table[m].values()), default=0)
        cells = []
        for k in keys:
            cell = fmt(table[m].get(k, []), COLUMNS.get(k, (k, False))[1])
            if paper_model and k in PAPER.get(m, {}):
                cell += f" (paper {PAPER[m][k]:.2f})"
            cells.append(cell)
        rows.append("| " + " | ".join([m, str(n)] + cells) + " |")
    return "\n".join(rows)


def _used_stages(run: Path) -> set[str] | None:
    """Names of the stage dirs behind the evaluated methods (each method's final model and the stages
    it started from); None when the run has no evaluations yet. A run dir can hold stages of earlier
    settings, which the plots must not mix in."""
    import yaml

    todo = []
    for cached in run.glob("eval/*/metrics.json"):
        todo.append(str(json.loads(cached.read_text()).get("model", "")))
    if not todo:
        return None
    used: set[str] = set()
    while todo:
        stage = Path(todo.pop()).parent.name  # <stage dir>/final
        if not stage or stage in used or not (run / "stages" / stage).is_dir():
            continue
        used.add(stage)
        config = run / "stages" / stage / "config.yaml"
        if config.exists():
            todo.append(str(yaml.safe_load(config.read_text())["config"]["model"]["name"]))
    return used


def _stage_curves(run_dirs: list[Path]) -> dict[str, list[tuple[Path, list[dict[str, Any]]]]]:
    """stage kind (act, il, rl, ...) -> [(stage dir, metrics rows)] of the stages the methods used."""
    curves: dict[str, list[tuple[Path, list[dict[str, Any]]]]] = defaultdict(list)
    for run in run_dirs:
        used = _used_stages(run)
        for metrics in sorted(run.glob("stages/*/metrics.jsonl")):
            if used is not None and metrics.parent.name not in used:
                continue
            kind = metrics.parent.name.split("-")[0]
            rows = read_jsonl(metrics, allow_torn_tail=True) if metrics.stat().st_size else []
            if rows:
                curves[kind].append((metrics.parent, rows))
    return curves


def plot_curves(curves, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wanted = {
        "act": ["act/reward", "act/accuracy", "act/pick_first_rate", "act/frac_zero_std_groups"],
        "il": ["il/loss"],
        "rl": ["rl/reward", "rl/expert_match"],
    }
    written = []
    for kind, keys in wanted.items():
        if kind not in curves:
            continue
        present = [k for k in keys if any(k in r for _, rows in curves[kind] for r in rows)]
        if not present:
            continue
        fig, axes = plt.subplots(1, len(present), figsize=(4 * len(present), 3), squeeze=False)
        for ax, key in zip(axes[0], present, strict=True):
            for stage_dir, rows in curves[kind]:
                pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
                if pts:
                    ax.plot(*zip(*pts, strict=True), label=stage_dir.parent.parent.name, alpha=0.8)
            ax.set_title(key)
            ax.set_xlabel("step")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{kind}_curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_comparison(table, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in COLUMNS if any(table[m].get(k) for m in table)]
    if not keys:
        return None
    methods = list(table)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        scale = 100.0 if COLUMNS[key][1] else 1.0
        means = [statistics.fmean(table[m][key]) * scale if table[m].get(key) else 0.0 for m in methods]
        errs = [statistics.stdev(table[m][key]) * scale if len(table[m].get(key, [])) > 1 else 0.0 for m in methods]
        bars = ax.bar(range(len(methods)), means, yerr=errs, capsize=3)
        for i, m in enumerate(methods):
            if not table[m].get(key):
                bars[i].set_alpha(0.0)  # missing, not zero
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=7)
        ax.set_title(COLUMNS[key][0], fontsize=9)
    fig.tight_layout()
    path = out / "comparison.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def paired_correct(run_dir: Path, method_a: str, method_b: str) -> list[tuple[bool, bool]] | None:
    """(a correct, b correct) per held-out state both methods were scored on; None when either is missing."""
    per = []
    for method in (method_a, method_b):
        path = run_dir / "eval" / slug(method) / "next_action.predictions.jsonl"
        if not path.exists():
            return None
        per.append({r["key"]: bool(r["correct"]) for r in read_jsonl(path)})
    keys = sorted(set(per[0]) & set(per[1]))
    return [(per[0][k], per[1][k]) for k in keys] or None


def bootstrap_difference(
    runs: list[list[tuple[bool, bool]]], replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> dict[str, float]:
    """Mean over runs of accuracy(a) - accuracy(b), with a 95% paired bootstrap interval over states.

    >>> r = bootstrap_difference([[(True, False)] * 3 + [(True, True)] * 7], replicates=200)
    >>> round(r["difference"], 2), r["low"] >= 0 < r["high"]
    (0.3, True)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = [np.array(run, dtype=float) for run in runs]
    point = float(np.mean([a[:, 0].mean() - a[:, 1].mean() for a in arrays]))
    reps = np.zeros(replicates)
    for a in arrays:
        idx = rng.integers(0, len(a), size=(replicates, len(a)))
        diff = a[:, 0] - a[:, 1]
        reps += diff[idx].mean(axis=1)
    reps /= len(arrays)
    low, high = np.percentile(reps, [2.5, 97.5])
    return {"difference": point, "low": float(low), "high": float(high), "runs": len(arrays),
            "states": int(sum(len(a) for a in arrays))}


def difference_line(run_dirs: list[Path], method_a: str = "act -> il", method_b: str = "il") -> str | None:
    """'ACT -> IL minus IL ...: +x points, 95% CI [lo, hi]' over the runs that have both methods."""
    runs = [r for r in (paired_correct(d, method_a, method_b) for d in run_dirs) if r]
    if not runs:
        return None
    r = bootstrap_difference(runs)
    return (
        f"{method_a} minus {method_b}, next-action accuracy: {100 * r['difference']:+.1f} points, 95% CI "
        f"[{100 * r['low']:+.1f}, {100 * r['high']:+.1f}] (paired bootstrap over {r['states']} held-out states "
        f"in {r['runs']} run(s), {BOOTSTRAP_REPLICATES} replicates)"
    )


def write_report(paths: list[str | Path], out: str | Path | None = None, title: str = "actrl report") -> Path:
    results = find_results(paths)
    if not results:
        from actrl.data.records import RecordError

        raise RecordError(f"no results.json under {', '.join(map(str, paths))}; run `actrl run RECIPE` first")
    out = Path(out) if out else (Path(paths[0]) if Path(paths[0]).is_dir() else Path("."))
    out.mkdir(parents=True, exist_ok=True)
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    table = collect(results)
    metas = [json.loads(p.read_text()) for p in results]
    models = {m.get("model") for m in metas}
    envs = sorted({(m.get("env") or "none (imported trajectories)") if "env" in m else "?" for m in metas})
    run_dirs = sorted({p.parent for p in results})
    images = plot_curves(_stage_curves(run_dirs), plots)
    bar = plot_comparison(table, plots)
    lines = [f"# {title}", ""]
    lines.append(f"Runs: {len(results)} ({', '.join(str(p.parent) for p in results)})  ")
    lines.append(f"Model: {', '.join(sorted(map(str, models)))}; environment: {', '.join(envs)}  ")
    lines.append("Cells: mean ± std over runs (seeds); '-' = not measured.")
    lines.append("")
    lines.append(markdown_table(table, paper_model=models == {PAPER_MODEL}))
    lines.append("")
    difference = difference_line(run_dirs)
    if difference:
        lines.append(difference)
        lines.append("")
    verdicts = [(path.parent, m["verdict"]) for path, m in zip(results, metas, strict=True) if m.get("verdict")]
    if verdicts:
        lines.append("## Verdict")
        # with several runs, each one-seed sentence names its run
        lines.extend(f"- {run}: {v}" if len(results) > 1 else f"- {v}" for run, v in verdicts)
        lines.append("")
    if images or bar:
        lines.append("## Plots")
        for img in images + ([bar] if bar else []):
            lines.append(f"![{img.stem}](plots/{img.name})")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", help="run directories (or results.json files)")
    p.add_argument("--out", help="directory for report.md and plots/ (default: the first run directory)")
    p.add_argument("--title", default="actrl report")


def run(args) -> int:
    path = write_report(args.runs, args.out, args.title)
    print(path.read_text())
    print(f"wrote {path}")
    return 0
