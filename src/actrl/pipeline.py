"""Recipes: expert data -> critic pairs -> stage chains (IL, ACT -> IL, ...) -> evaluation -> report.

    actrl run configs/recipes/demo.yaml                 # a file, or the name of a shipped recipe
    actrl run demo seed=1 eval.episodes=20              # overrides (key=value, YAML scalars)

A recipe names *methods*, each a chain of stages written with arrows: `il`, `act -> il`, `rl`,
`act -> rl` (paper v1), `il -> rl`, `act -> il -> rl` (paper v2), and `prompt` (the untrained
model: the prompting baseline). Every stage's output lives in `stages/<stage>-<hash>/`, the hash
covering the stage's config, its starting checkpoint and its data, so chains share prefixes
(`act -> il` and `act -> rl` train one ACT stage), a finished stage is skipped, and an interrupted
one resumes from its last checkpoint. The run directory is `<output_root>/<name>/seed<seed>/`.

Choices the paper left open:
1. Held-out data for evaluation comes from the environment's held-out split (`data.heldout_split`):
   next-action accuracy on its expert states, held-out pair accuracy on pairs built from them with
   the same initial policy and settings as the training pairs, and agent episodes on its tasks.
2. The critic pairs for training are built once from the base model (pi_theta0) and reused by every
   chain, as in the paper; pairs files from elsewhere can be given with `data.pairs`, and
   `pairs_policy: il` samples them from the recipe's IL policy instead (its own mistakes).
3. Without an environment (`env.name: null`, trajectories from `actrl import`): `data.experts` and
   `data.heldout_experts` hold the data, and what executes actions (agent evaluation, Early
   Experience, world modeling) or reads admissible actions the data lacks is refused when the recipe
   loads, with the setting to change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from actrl.config import ConfigError, deep_merge, from_dict, load_yaml, parse_overrides, to_dict
from actrl.data.pairs import PairsConfig
from actrl.data.prompts import PromptConfig
from actrl.methods import parse_method, slug
from actrl.models.loading import ModelConfig
from actrl.models.vllm_engine import VLLMConfig
from actrl.outputs import output_dir
from actrl.train.stages import STAGES
from actrl.train.stages import stage as stage_spec

RECIPES_DIR = Path(__file__).parent / "recipes"

@dataclass
class EnvSettings:
    name: str | None = "scienceworld"
    """an environment: a shipped or plugin name, or package.module:ClassName; null: none (choice 3)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """adapter keyword arguments, e.g. game parameters."""
    tasks: list[str] | None = None
    """task (game) names to use; None: all."""


@dataclass
class DataSettings:
    train_split: str = "train"
    train_num: int = 20
    """expert trajectories collected for training (D_expert)."""
    heldout_split: str = "test"
    heldout_num: int = 10
    """expert trajectories of held-out tasks for next-action and pair accuracy."""
    per_task: int | None = None
    """at most this many variations of each task name; None: all."""
    record_admissible: Literal["auto", "always", "never"] = "auto"
    """record admissible actions per expert step (RL reward, admissible-only pairs); auto: when cheap."""
    workers: int = 2
    experts: str | None = None
    """use this expert file instead of collecting (training), e.g. one from `actrl import`."""
    heldout_experts: str | None = None
    """use this expert file instead of collecting the held-out split."""
    pairs: str | None = None
    """use this critic-pairs file instead of building pairs (e.g. pairs made by a larger model)."""
    select_split: str | None = None
    """a validation split (e.g. dev) for checkpoint selection: its expert states become critic pairs,
    built like the training pairs, on which the ACT stage keeps its best checkpoint (act.select_on).
    None: every stage keeps its last checkpoint, as in the paper."""
    select_num: int = 10
    """expert trajectories of the validation split."""


@dataclass
class BenchmarkColumn:
    """A report column filled from agent episodes on one split (e.g. ALFWorld OOD = valid_unseen)."""

    split: str
    metric: Literal["success_rate", "mean_score"] = "success_rate"


@dataclass
class EvalSettings:
    next_action: bool = True
    pair_accuracy: bool = True
    agent: bool = True
    episodes: int = 10
    max_steps: int | None = None
    workers: int = 8
    split: str | None = None
    """agent-episode split; None: data.heldout_split."""
    batch_size: int = 16
    reasoning: dict[str, dict[str, Any]] = field(default_factory=dict)
    """general-reasoning benches of each method's policy: {math500: {data: ..., limit: 100},
    gpqa-diamond: {seeds: [0, 1, 2]}} (ReasoningEvalConfig fields; model and output are set here)."""
    columns: dict[str, BenchmarkColumn] = field(default_factory=dict)
    """paper columns from extra agent evaluations, e.g. {alfworld_id: {split: valid_seen},
    alfworld_ood: {split: valid_unseen}}; names as in the report (alfworld_id, webshop, scienceworld)."""


@dataclass
class Recipe:
    """A whole experiment: data, pairs, stage settings, the methods to compare, evaluation."""

    name: str = ""
    output_root: str = "runs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    env: EnvSettings = field(default_factory=EnvSettings)
    data: DataSettings = field(default_factory=DataSettings)
    pairs: dict[str, Any] = field(default_factory=dict)
    """PairsConfig fields (model and prompt come from the recipe)."""
    pairs_policy: str | None = None
    """a method (e.g. 'il') whose trained policy proposes the alternatives instead of the base model:
    pairs then hold that policy's own mistakes. None: the base model pi_theta0, as in the paper."""
    act: dict[str, Any] = field(default_factory=dict)
    il: dict[str, Any] = field(default_factory=dict)
    rl: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """settings of further stages (baselines) by stage name."""
    methods: list[str] = field(default_factory=lambda: ["prompt", "il", "act -> il"])
    eval: EvalSettings = field(default_factory=EvalSettings)
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    """generation engine for pairs and evaluation; auto: vLLM where installed (also on an x86 CPU), else
    transformers. Stage settings (pairs.backend, act.pair_eval_backend) still win."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    """how vLLM engines start (KV cache, eager, context); CPU and GPU defaults in actrl.models.vllm_engine."""
    report: bool = True

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name is required (the run directory is <output_root>/<name>/seed<seed>)")
        for method in self.methods:
            for stage in parse_method(method):
                stage_spec(stage, f"methods: '{method}'")
        if self.env.name is None:
            self._validate_without_env()
        for stage in parse_method(self.pairs_policy or ""):
            if stage_spec(stage, "pairs_policy").reads != ("experts",):
                raise ValueError(f"pairs_policy: '{self.pairs_policy}' has stage '{stage}'; expected stages trained on expert data only (e.g. 'il'), since the pairs do not exist yet")

    def _validate_without_env(self) -> None:
        """Choice 3: what a recipe without an environment cannot do, each with the setting to change."""
        for name in ("experts", "heldout_experts"):
            if not getattr(self.data, name):
                raise ValueError(f"env.name is null (no environment): data.{name} must name an expert file (actrl import) to use instead of collecting")
        if self.eval.agent or self.eval.columns:
            raise ValueError("env.name is null (no environment): agent evaluation plays episodes in one; set eval.agent=false and no eval.columns")
        if self.data.select_split:
            raise ValueError("env.name is null (no environment): data.select_split collects from one; leave it null")
        for stage in {s for m in self.methods + [self.pairs_policy or ""] for s in parse_method(m)}:
            if stage in STAGES and executes_actions(stage):
                raise ValueError(f"env.name is null (no environment): stage '{stage}' executes actions in one (Early Experience); "
                                 "remove it from methods or set env.name")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_root) / self.name / f"seed{self.seed}"

    def stage_settings(self, stage: str) -> dict[str, Any]:
        return dict(getattr(self, stage)) if stage in ("act", "il", "rl") else dict(self.stages.get(stage, {}))


# settings added after runs existed: left out of stage and evaluation hashes while at their default,
# so upgrading actrl does not orphan the finished stages of an existing run directory
_ADDED_AT_DEFAULT = {"critic_answer": "number", "share_prompt_prefill": True, "exclude_expert_elsewhere": False}


def _hashable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _hashable(v) for k, v in obj.items() if _ADDED_AT_DEFAULT.get(k, object()) != v}
    return obj


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(_hashable(obj), sort_keys=True, default=str).encode()).hexdigest()[:8]


def load_recipe(path_or_name: str, overrides: list[str] | None = None) -> Recipe:
    path = Path(path_or_name)
    if not path.exists():
        shipped = RECIPES_DIR / f"{path_or_name}.yaml"
        if not shipped.exists():
            names = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
            raise ConfigError(f"{path_or_name}: no such recipe file or shipped recipe (shipped: {', '.join(names)})")
        path = shipped
    data = deep_merge(load_yaml(path), parse_overrides(overrides or []))
    recipe = from_dict(Recipe, data, str(path))
    if recipe.env.name:  # an unknown env.kwargs key fails here too, with the nearest accepted one
        from actrl.envs import env_class
        from actrl.envs.util import check_kwargs

        check_kwargs(recipe.env.name, env_class(recipe.env.name), recipe.env.kwargs)
    # build every stage's config now: a typo in stage settings fails here, not after data collection
    for stage in {s for m in recipe.methods for s in parse_method(m)}:
        stage_config(recipe, stage, recipe.model.name, Path("<data>"), recipe.run_dir)
    return recipe


# ----------------------------------------------------------------------------- data


def collect_split(recipe: Recipe, split: str, num: int, out: Path) -> Path:
    """Expert trajectories of a split; `collect` resumes, so a finished file costs one env start."""
    from actrl.data.experts import collect

    summary = collect(
        recipe.env.name,
        split,
        num,
        out=out,
        tasks=recipe.env.tasks,
        per_task=recipe.data.per_task,
        env_kwargs=recipe.env.kwargs,
        workers=recipe.data.workers,
        record_admissible=recipe.data.record_admissible,
    )
    if summary["total"] == 0:
        raise ConfigError(f"{recipe.name}: no expert trajectory could be collected for split '{split}' ({summary['skipped_by_reason']})")
    return out


def pairs_config(recipe: Recipe) -> PairsConfig:
    """The recipe's pair settings, with its model, seed and prompt."""
    data = {"model": recipe.model.name, "seed": recipe.seed, "backend": recipe.backend, **recipe.pairs,
            "prompt": to_dict(recipe.prompt)}
    return from_dict(PairsConfig, data, f"{recipe.name}: pairs")


def prepare_data(recipe: Recipe) -> dict[str, Path]:
    """Expert trajectories (train, held-out) and critic pairs (train, held-out), cached in the run dir."""
    from actrl.data.pairs import build_pairs

    run = recipe.run_dir
    run.mkdir(parents=True, exist_ok=True)
    d = recipe.data
    experts = Path(d.experts) if d.experts else collect_split(recipe, d.train_split, d.train_num, run / "experts.jsonl")
    heldout = (Path(d.heldout_experts) if d.heldout_experts
               else collect_split(recipe, d.heldout_split, d.heldout_num, run / "heldout_experts.jsonl"))
    paths = {"experts": experts, "heldout_experts": heldout}
    check_imported(recipe, paths)
    stages = {s for m in recipe.methods for s in parse_method(m)}
    selecting = bool(d.select_split) and any(selects_checkpoints(s) for s in stages)
    if d.select_split and not selecting:
        print(f"[actrl] data.select_split '{d.select_split}': no stage of this recipe selects checkpoints; not collected")
    if selecting:
        if d.select_split == d.heldout_split:
            raise ConfigError(f"{recipe.name}: data.select_split '{d.select_split}' is the held-out split; selecting on it would tune on the evaluation data")
        paths["select_experts"] = collect_split(recipe, d.select_split, d.select_num, run / "select_experts.jsonl")
    reads = {kind for s in stages for kind in STAGES[s].reads}
    needs_pairs = "pairs" in reads or recipe.eval.pair_accuracy
    cfg = pairs_config(recipe)
    if (needs_pairs or selecting) and recipe.pairs_policy:
        # departure from the paper: a trained policy proposes the alternatives (its own mistakes)
        cfg.model = train_chain(recipe, recipe.pairs_policy, paths)
        print(f"[actrl] pairs_policy '{recipe.pairs_policy}': alternatives sampled from {cfg.model}")
    if needs_pairs:
        if d.pairs:
            paths["pairs"] = Path(d.pairs)
        else:
            build_pairs(experts, run / "pairs.jsonl", cfg)
            paths["pairs"] = run / "pairs.jsonl"
        if recipe.eval.pair_accuracy:
            build_pairs(heldout, run / "heldout_pairs.jsonl", cfg)
            paths["heldout_pairs"] = run / "heldout_pairs.jsonl"
    if selecting:
        build_pairs(paths["select_experts"], run / "select_pairs.jsonl", cfg)
        paths["select_pairs"] = run / "select_pairs.jsonl"
    return paths


# ----------------------------------------------------------------------------- stages


def stage_config(
    recipe: Recipe, stage: str, start_model: str, data_path: Path, run: Path, inputs: dict[str, Path] | None = None
):
    """The typed config of one stage in a chain: recipe settings + where it starts and writes.

    inputs: further data files of a stage reading several kinds (STAGES), set as config fields.
    """
    cls = STAGES[stage].config_class()
    settings = recipe.stage_settings(stage)
    model = deep_merge(to_dict(recipe.model), {"name": start_model})
    # stage settings override the recipe's (a stage may change one prompt field, e.g. thinking)
    base = deep_merge({"seed": recipe.seed, "prompt": to_dict(recipe.prompt)}, settings)
    base["model"] = model
    base.update({kind: str(path) for kind, path in (inputs or {}).items()})
    if "env" in STAGES[stage].config_fields():
        base["env"] = deep_merge({"name": recipe.env.name, "kwargs": recipe.env.kwargs}, settings.get("env", {}))
    key = _hash({"stage": stage, "settings": base, "data": str(data_path)})
    base["output_dir"] = str(run / "stages" / f"{stage}-{key}")
    return from_dict(cls, base, f"{recipe.name}: {stage}")


def executes_actions(stage: str) -> bool:
    """True when the stage runs actions in the environment (its config has an `env` field)."""
    return "env" in STAGES[stage].config_fields()


def check_imported(recipe: Recipe, paths: dict[str, Path]) -> None:
    """Imported trajectories (no state to replay, no admissible actions) meet no stage that needs them."""
    from actrl.data.importers import require_environment
    from actrl.data.records import read_trajectories

    stages = {s for m in recipe.methods for s in parse_method(m)}
    acting = sorted(s for s in stages if executes_actions(s))
    pairs = pairs_config(recipe)
    needs_pairs = any("pairs" in STAGES[s].reads for s in stages) or recipe.eval.pair_accuracy
    for kind in ("experts", "heldout_experts"):
        trajectories = read_trajectories(paths[kind])
        if acting:
            require_environment(paths[kind], trajectories, f"stage '{acting[0]}' executes actions from their states (Early Experience)")
        if needs_pairs and (pairs.require_admissible or pairs.fallback != "none") and not any(
            step.admissible for t in trajectories for step in t.steps
        ):
            setting = "pairs.require_admissible=true" if pairs.require_admissible else f"pairs.fallback={pairs.fallback}"
            raise ConfigError(f"{paths[kind]}: no admissible actions recorded (imported, or collected with record_admissible=never); "
                              f"{setting} needs them: set it off, or collect with data.record_admissible=always")


def selects_checkpoints(stage: str) -> bool:
    """True when the stage's config can keep its best checkpoint on validation pairs (`select_on`)."""
    return "select_on" in STAGES[stage].config_fields()


def train_chain(recipe: Recipe, method: str, data: dict[str, Path], stages_from: Path | None = None) -> str:
    """Train the stages of `method` in order (skipping finished ones); return the final model path.

    stages_from: another run directory whose finished stages are reused (linked) when a stage has
    the same settings, start model and data there (see `reuse_stages_from`).
    """
    model, source_model = recipe.model.name, recipe.model.name
    for stage in parse_method(method):
        first, *more = STAGES[stage].reads
        inputs = {kind: data[kind] for kind in more}
        if "select_pairs" in data and selects_checkpoints(stage) and "select_on" not in recipe.stage_settings(stage):
            inputs["select_on"] = data["select_pairs"]
        cfg = stage_config(recipe, stage, model, data[first], recipe.run_dir, inputs)
        final = Path(cfg.output_dir) / "final"
        if stages_from is not None:
            source = Path(stage_config(recipe, stage, source_model, data[first], stages_from, inputs).output_dir)
            source_model = str(source / "final")
            if not final.exists() and (source / "final").exists():
                Path(cfg.output_dir).parent.mkdir(parents=True, exist_ok=True)
                Path(cfg.output_dir).symlink_to(source.resolve(), target_is_directory=True)
                print(f"[actrl] {method}: stage {stage} reused from {source}")
        if final.exists():
            print(f"[actrl] {method}: stage {stage} already done ({final})")
        else:
            print(f"[actrl] {method}: training stage {stage} -> {cfg.output_dir}")
            final = STAGES[stage].train_function()(cfg, str(data[first]))
        model = str(final)
    return model


def reuse_stages_from(recipe: Recipe, source: Path) -> Path:
    """Point a recipe at another run directory's training data, so that its stages can be reused.

    For evaluating finished checkpoints on other held-out data (more tasks, another split) in a new
    run directory: the recipe trains on the source run's expert and pair files, and every stage whose
    settings match a finished stage there is linked instead of trained (a stage whose settings
    differ is trained as usual). Returns the source path as the source run named its own files.
    """
    if not (source / "config.yaml").exists():
        raise ConfigError(f"--stages-from {source}: not a run directory (no config.yaml)")
    saved = yaml.safe_load((source / "config.yaml").read_text())["recipe"]
    # stage hashes contain the source's paths as it wrote them (<output_root>/<name>/seed<seed>)
    own = Path(saved["output_root"]) / saved["name"] / f"seed{saved['seed']}"
    if own.resolve() != source.resolve():
        raise ConfigError(f"--stages-from {source}: its config.yaml names {own} as its run directory; run from that directory's parent")
    if own.resolve() == recipe.run_dir.resolve():
        raise ConfigError(f"--stages-from {source}: that is this recipe's own run directory; change name or output_root")
    d = recipe.data
    d.experts = d.experts or saved["data"].get("experts") or str(own / "experts.jsonl")
    if d.pairs is None and (saved["data"].get("pairs") or (own / "pairs.jsonl").exists()):
        d.pairs = saved["data"].get("pairs") or str(own / "pairs.jsonl")
    return own


# ----------------------------------------------------------------------------- evaluation


def evaluate_method(recipe: Recipe, method: str, model: str, data: dict[str, Path]) -> dict[str, Any]:
    """Next-action accuracy, held-out pair accuracy and agent episodes of one trained policy."""
    from actrl.models.generation import make_generator

    out = recipe.run_dir / "eval" / slug(method)
    cached = out / "metrics.json"
    key = _hash({"model": model, "eval": to_dict(recipe.eval), "prompt": to_dict(recipe.prompt)})
    if cached.exists():
        saved = json.loads(cached.read_text())
        if saved.get("key") == key:
            return saved["metrics"]
    out.mkdir(parents=True, exist_ok=True)
    from actrl.eval.rollouts import EnvPool

    size = min(recipe.eval.workers, recipe.eval.episodes)
    envs = EnvPool(recipe.env.name, recipe.env.kwargs, size) if recipe.eval.agent and recipe.env.name else None
    try:  # the environments start while the model loads (a vLLM engine warms up for ~15 s on a CPU)
        gen = make_generator(ModelConfig(**{**to_dict(recipe.model), "name": model}), backend=recipe.backend,
                             thinking=recipe.prompt.thinking, vllm=recipe.vllm)
        try:
            metrics = _metrics_of(recipe, gen, model, data, out, envs)
        finally:
            gen.close()  # a vLLM engine's processes and KV cache go before the next method trains
    finally:
        if envs is not None:
            envs.close()
    cached.write_text(json.dumps({"key": key, "model": model, "metrics": metrics}, indent=1))
    return metrics


def _metrics_of(recipe: Recipe, gen: Any, model: str, data: dict[str, Path], out: Path, envs: Any) -> dict[str, Any]:
    """The evaluations `recipe.eval` asks for, of the policy `gen` (named `model`), written under `out`."""
    metrics: dict[str, Any] = {}
    if recipe.eval.next_action:
        from actrl.data.records import read_trajectories
        from actrl.eval.next_action import NextActionConfig, evaluate_next_action

        na = NextActionConfig.for_prompt(recipe.prompt, recipe.eval.batch_size)  # thinking: 512 tokens, not 48
        r = evaluate_next_action(gen, read_trajectories(data["heldout_experts"]), na, out / "next_action.predictions.jsonl")
        metrics["next_action_accuracy"] = r["accuracy"]
        metrics["action_format_failure_rate"] = r["format_failure_rate"]
        (out / "next_action.json").write_text(json.dumps(r, indent=1))
    if recipe.eval.pair_accuracy and "heldout_pairs" in data:
        from actrl.data.critic import critic_sampling
        from actrl.data.records import read_pairs
        from actrl.eval.pair_accuracy import pair_accuracy

        sampling = critic_sampling(recipe.prompt.thinking)
        sampling.batch_size = recipe.eval.batch_size
        r = pair_accuracy(gen, read_pairs(data["heldout_pairs"]), recipe.prompt, sampling,
                          predictions_path=out / "pairs.predictions.jsonl")
        metrics["pair_accuracy"] = r["accuracy"]
        metrics["pick_first_rate"] = r["pick_first_rate"]
        metrics["pair_both_orders_accuracy"] = r["both_orders_accuracy"]
        metrics["critic_format_failure_rate"] = r["format_failure_rate"]
        (out / "pairs.json").write_text(json.dumps(r, indent=1))
    if recipe.eval.agent:
        from actrl.envs import make
        from actrl.eval.rollouts import EvalConfig, evaluate_agent, select_tasks
        from actrl.eval.rollouts import default_sampling as action_sampling

        split = recipe.eval.split or recipe.data.heldout_split
        env = make(recipe.env.name, **recipe.env.kwargs)
        try:
            tasks = select_tasks(env, split, recipe.eval.episodes, recipe.env.tasks)
        finally:
            env.close()
        sampling = action_sampling(recipe.prompt.thinking)
        sampling.batch_size = recipe.eval.batch_size
        cfg = EvalConfig(
            max_steps=recipe.eval.max_steps,
            workers=recipe.eval.workers,
            out_dir=str(out),
            model=model,
            env_kwargs=recipe.env.kwargs,
            prompt=recipe.prompt,
            sampling=sampling,
        )
        agg = evaluate_agent(gen, recipe.env.name, tasks, cfg, envs=envs).aggregates
        for k in ("success_rate", "mean_score", "mean_steps", "invalid_rate", "stuck_rate"):
            if k in agg:
                metrics[k] = agg[k]
        for column, spec in recipe.eval.columns.items():
            if spec.split == split:
                metrics[column] = agg[spec.metric]
                continue
            env = make(recipe.env.name, **recipe.env.kwargs)
            try:
                tasks = select_tasks(env, spec.split, recipe.eval.episodes, recipe.env.tasks)
            finally:
                env.close()
            metrics[column] = evaluate_agent(gen, recipe.env.name, tasks, cfg, envs=envs).aggregates[spec.metric]
    for bench, settings in recipe.eval.reasoning.items():
        from actrl.eval.reasoning import ReasoningEvalConfig, evaluate_reasoning

        cfg = from_dict(ReasoningEvalConfig, {**settings, "bench": bench, "model": model,
                                              "thinking": recipe.prompt.thinking, "out": str(out / f"{bench}.json")},
                        f"{recipe.name}: eval.reasoning.{bench}")
        agg = evaluate_reasoning(cfg, gen)["aggregate"]
        metrics[bench.replace("-", "_")] = agg["accuracy_mean"]
    return metrics


def verdict(methods: dict[str, dict[str, Any]]) -> str | None:
    """One honest sentence: did ACT -> IL beat IL in this run, on next-action accuracy?"""
    a, b = methods.get("act -> il", {}).get("metrics", {}), methods.get("il", {}).get("metrics", {})
    if "next_action_accuracy" not in a or "next_action_accuracy" not in b:
        return None
    diff = 100 * (a["next_action_accuracy"] - b["next_action_accuracy"])
    word = "beat" if diff > 0 else ("tied" if diff == 0 else "did not beat")
    return (
        f"ACT -> IL {word} IL on held-out next-action accuracy in this run: "
        f"{100 * a['next_action_accuracy']:.1f}% vs {100 * b['next_action_accuracy']:.1f}% ({diff:+.1f} points, one seed)."
    )


def run_recipe(recipe: Recipe, stages_from: Path | None = None) -> Path:
    """Everything a recipe names, resumable; returns the path of results.json.

    stages_from: reuse the finished stages of that run directory (`reuse_stages_from`).
    """
    import actrl

    if stages_from is not None:
        stages_from = reuse_stages_from(recipe, Path(stages_from))
    run = output_dir(recipe.run_dir, "run directory")  # before any environment or model starts
    (run / "config.yaml").write_text(yaml.safe_dump({"recipe": to_dict(recipe), "actrl": actrl.__version__}, sort_keys=False))
    data = prepare_data(recipe)
    methods: dict[str, dict[str, Any]] = {}
    for method in recipe.methods:
        model = train_chain(recipe, method, data, stages_from)
        print(f"[actrl] evaluating {method} ({model})")
        methods[method] = {"model": model, "metrics": evaluate_method(recipe, method, model, data)}
        _write_results(recipe, methods)
    path = _write_results(recipe, methods)
    if recipe.report:
        from actrl.report import write_report

        write_report([run], run, title=f"actrl: {recipe.name} (seed {recipe.seed})")
    return path


def _write_results(recipe: Recipe, methods: dict[str, dict[str, Any]]) -> Path:
    from actrl.envs import env_class

    env = env_class(recipe.env.name) if recipe.env.name else None
    results = {
        "recipe": recipe.name,
        "seed": recipe.seed,
        "model": recipe.model.name,
        "env": recipe.env.name,
        "eval_split": recipe.eval.split or recipe.data.heldout_split,
        "env_class": f"{env.__module__}.{env.__name__}" if env else None,
        "methods": methods,
        "verdict": verdict(methods),
    }
    path = recipe.run_dir / "results.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)
    return path


def add_arguments(p) -> None:
    p.add_argument("recipe", help="recipe YAML, or the name of a shipped recipe (demo, scienceworld-qwen3-8b, ...)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seed=1 act.learning_rate=1e-6")
    p.add_argument("--stages-from", metavar="RUN_DIR", default=None,
                   help="reuse that run's finished stages and training data (e.g. to evaluate on more held-out tasks "
                        "under a new name)")


def run(args) -> int:
    recipe = load_recipe(args.recipe, args.overrides)
    path = run_recipe(recipe, Path(args.stages_from) if args.stages_from else None)
    print(f"[actrl] results: {path}")
    if recipe.report:
        print(f"[actrl] report: {recipe.run_dir / 'report.md'}")
    return 0
