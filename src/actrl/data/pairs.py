"""Critic pairs (ACT's D_critic): the expert action next to an action the initial policy would take.

    actrl pairs --experts runs/x/experts.jsonl --model default --k 1 --out runs/x/pairs.jsonl

At every expert state s_t, K alternatives are sampled from the initial policy pi_theta0 with the
action prompt (one batched generation over many states), parsed, and filtered: unparseable
answers, alternatives equal to the expert action (`same_action`), duplicates and, optionally,
inadmissible actions are dropped. Each kept alternative becomes a `CriticPair` whose display order
(expert as Action 1 or 2) is drawn from a generator seeded by (seed, pair id) and recorded.

Output: pairs.jsonl (pairs), pairs.jsonl.progress (one line per finished state, with its counts),
pairs.meta.json (sampling model, settings, totals). Interrupted runs resume from the progress
file: states already finished are skipped; pairs of an unfinished state are discarded and redone.

Choices the paper left open:
1. Resampling: states with fewer than K valid alternatives are sampled again, up to
   `resample_rounds` more times, each with a fresh seed (the paper uses one sample, K=1).
2. `fallback`: when sampling still finds none, optionally take an admissible non-expert action,
   either the one the policy finds most likely (`admissible_likelihood`) or a seeded random one
   (`admissible_random`). Off by default (the paper's pairs are policy samples only).
3. `require_admissible`: keep only alternatives the environment lists as admissible (where the
   trajectories recorded admissible actions). Off by default.
4. `exclude_expert_elsewhere`: drop alternatives (sampled or fallback) that are the expert's own
   action at another step of the same trajectory ("take X" before "look around"): such a pair asks
   about the order of two good actions and teaches the critic to reject the expert's next one.
   Off by default.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from actrl.config import ConfigError, differences, from_dict, load_config, to_dict
from actrl.data.prompts import PromptConfig, action_messages, parse_action, same_action
from actrl.data.records import CriticPair, JsonlWriter, State, read_jsonl, read_trajectories, write_jsonl
from actrl.outputs import output_file


@dataclass
class PairsConfig:
    """Critic-pair construction (pairs stage)."""

    model: str = "default"
    """the initial policy pi_theta0 that proposes alternatives (hub id, path, or 'default')."""
    k: int = 1
    """K: alternatives per expert state (the paper uses 1)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    samples_per_round: int = 0
    """completions drawn per state per round; 0 means 2*K (a few spare for drops)."""
    resample_rounds: int = 2
    """extra sampling rounds for states still short of K alternatives."""
    require_admissible: bool = False
    exclude_expert_elsewhere: bool = False
    """drop alternatives that are the expert action at another step of the same trajectory."""
    fallback: Literal["none", "admissible_likelihood", "admissible_random"] = "none"
    fallback_candidates: int = 32
    """admissible_likelihood scores at most this many admissible actions per state (a seeded random
    subset; ScienceWorld lists ~400 per state)."""
    seed: int = 0
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    batch_size: int = 16
    """prompts per generation batch (transformers backend)."""
    states_per_chunk: int = 64
    """states generated together and then written (the unit of resume)."""
    prompt: PromptConfig = field(default_factory=PromptConfig)

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError(f"k={self.k}: expected >= 1")
        if self.fallback_candidates < 1:
            raise ValueError(f"fallback_candidates={self.fallback_candidates}: expected >= 1")
        if self.resample_rounds < 0 or self.samples_per_round < 0:
            raise ValueError("resample_rounds and samples_per_round must be >= 0")


def expert_position(seed: int, pair_id: str) -> int:
    """1 or 2, drawn from a generator seeded by (seed, pair id): stable across reruns and resumes."""
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return 1 + random.Random(digest).randrange(2)


@dataclass
class _StateJob:
    key: str  # "<task_id>#<t>"
    task_id: str
    t: int
    state: State
    expert_action: str
    other_expert_actions: tuple[str, ...] = ()  # the trajectory's expert actions at its other steps
    kept: list[tuple[str, str, bool | None]] = field(default_factory=list)  # (action, source, admissible)
    counts: Counter = field(default_factory=Counter)

    def is_admissible(self, action: str) -> bool | None:
        if not self.state.admissible:
            return None
        return any(same_action(action, a) for a in self.state.admissible)

    def is_expert_elsewhere(self, action: str) -> bool:
        return any(same_action(action, a) for a in self.other_expert_actions)

    def offer(self, completion: str, require_admissible: bool, k: int, exclude_expert_elsewhere: bool = False) -> None:
        """Filter one sampled completion into the kept alternatives, counting why drops happen."""
        self.counts["samples"] += 1
        action = parse_action(completion)
        if action is None:
            self.counts["dropped_unparseable"] += 1
            return
        if same_action(action, self.expert_action):
            self.counts["dropped_as_expert"] += 1
            return
        if exclude_expert_elsewhere and self.is_expert_elsewhere(action):
            self.counts["dropped_expert_elsewhere"] += 1
            return
        admissible = self.is_admissible(action)
        if require_admissible and admissible is False:
            self.counts["dropped_invalid"] += 1
            return
        if any(same_action(action, a) for a, _, _ in self.kept):
            self.counts["dropped_duplicate"] += 1
            return
        if len(self.kept) >= k:
            self.counts["dropped_surplus"] += 1
            return
        self.kept.append((action, "sampled", admissible))


def _expert_jobs(experts_path: Path) -> list[_StateJob]:
    jobs = []
    for traj in read_trajectories(experts_path):
        actions = [step.action for step in traj.steps]
        for t, state, action in traj.states():
            others = tuple(a for i, a in enumerate(actions) if i != t and not same_action(a, action))
            jobs.append(_StateJob(f"{traj.task_id}#{t}", traj.task_id, t, state, action, others))
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        dup = next(k for k, c in Counter(keys).items() if c > 1)
        raise ConfigError(f"{experts_path}: task {dup.split('#')[0]} appears twice; each task once per file")
    return jobs


def _fallback(jobs: list[_StateJob], cfg: PairsConfig, generator: Any) -> None:
    """Fill states still short of K from their admissible actions (choice 2 in the docstring)."""
    short = [j for j in jobs if len(j.kept) < cfg.k and j.state.admissible]
    for job in short:
        candidates = [
            a for a in job.state.admissible
            if not same_action(a, job.expert_action)
            and not any(same_action(a, x) for x, _, _ in job.kept)
            and not (cfg.exclude_expert_elsewhere and job.is_expert_elsewhere(a))
        ]
        if not candidates:
            continue
        need = cfg.k - len(job.kept)
        rng = random.Random(f"{cfg.seed}:{job.key}:fallback")
        if cfg.fallback == "admissible_random":
            chosen = rng.sample(candidates, min(need, len(candidates)))
        else:
            if len(candidates) > cfg.fallback_candidates:
                candidates = rng.sample(candidates, cfg.fallback_candidates)
            from actrl.models.scoring import completion_logprobs

            scores = completion_logprobs(
                generator, action_messages(job.state, cfg.prompt), [f"<action>{a}</action>" for a in candidates]
            )
            chosen = [a for _, a in sorted(zip(scores, candidates, strict=True), key=lambda x: -x[0])][:need]
        for a in chosen:
            job.kept.append((a, cfg.fallback, True))
            job.counts["fallback"] += 1


def _sample_chunk(jobs: list[_StateJob], cfg: PairsConfig, generator: Any, chunk_index: int) -> None:
    from actrl.models.generation import SamplingConfig

    n = cfg.samples_per_round or 2 * cfg.k
    for round_ in range(1 + cfg.resample_rounds):
        todo = [j for j in jobs if len(j.kept) < cfg.k]
        if not todo:
            break
        sampling = SamplingConfig(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            n=n,
            seed=cfg.seed + 100_003 * chunk_index + 7919 * round_,
            stop=["</action>"],
            batch_size=cfg.batch_size,
        )
        outs = generator.generate([action_messages(j.state, cfg.prompt) for j in todo], sampling)
        for job, completions in zip(todo, outs, strict=True):
            if round_:
                job.counts["resampled"] += 1
            for c in completions:
                job.offer(c, cfg.require_admissible, cfg.k, cfg.exclude_expert_elsewhere)
    if cfg.fallback != "none":
        _fallback(jobs, cfg, generator)


def _to_pairs(job: _StateJob, seed: int) -> list[CriticPair]:
    pairs = []
    for i, (alt, source, admissible) in enumerate(job.kept):
        pid = f"{job.key}#{i}"
        pairs.append(
            CriticPair(
                pair_id=pid,
                task_id=job.task_id,
                t=job.t,
                state=job.state,
                expert_action=job.expert_action,
                alternative=alt,
                expert_position=expert_position(seed, pid),
                alternative_source=source,
                alternative_admissible=admissible,
            )
        )
    return pairs


def _resume(out: Path, progress: Path) -> set[str]:
    """Finished state keys; pairs of unfinished states are dropped from `out` (they are redone)."""
    done = {r["key"] for r in read_jsonl(progress, allow_torn_tail=True)} if progress.exists() else set()
    if out.exists():
        rows = read_jsonl(out, allow_torn_tail=True)
        keep = [r for r in rows if r["pair_id"].rsplit("#", 1)[0] in done]
        if len(keep) != len(rows):
            write_jsonl(out, keep)
    return done


def summarize(progress: Path) -> dict[str, int]:
    totals: Counter = Counter()
    for r in read_jsonl(progress, allow_torn_tail=True):
        totals["states"] += 1
        totals.update(r["counts"])
        totals["pairs"] += r["pairs"]
        totals["states_without_pair"] += int(r["pairs"] == 0)
    return dict(totals)


def _construction_settings(cfg: PairsConfig) -> dict[str, Any]:
    """The settings a pairs file depends on: the critic's answer format only shapes critic prompts,
    which pair construction never renders (it samples from the action prompt)."""
    settings = to_dict(cfg)
    settings["prompt"].pop("critic_answer", None)
    return settings


def check_outputs(experts: Path, out: Path, progress: Path, meta_path: Path) -> None:
    """Refuse, before any model loads, an output that is the input, cannot be written, or exists
    without the companions that make it resumable (rebuilding it would empty it: nothing is lost)."""
    for path in (out, progress, meta_path):
        if experts.exists() and path.exists() and experts.resolve() == path.resolve():
            raise ConfigError(f"--out {out}: {path.name} is the --experts file itself; write the pairs elsewhere")
    for path in (out, progress, meta_path):
        output_file(path, "--out" if path == out else "--out companion")
    if out.exists() and out.read_text(encoding="utf-8").strip():
        missing = [p.name for p in (progress, meta_path) if not p.exists()]
        if missing:
            raise ConfigError(
                f"--out {out}: exists but is not a pairs file this command can resume ({' and '.join(missing)} "
                "missing beside it); it is left untouched: use another --out, or move it away to rebuild"
            )


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["settings"]  # noqa: B018 - the one key resume needs
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a pairs meta file ({type(e).__name__}: {e}); move it and its pairs away") from None
    return meta


def _check_admissible_recorded(experts: Path, jobs: list[_StateJob], cfg: PairsConfig) -> None:
    """require_admissible / a fallback need admissible lists; without any they would silently do nothing."""
    if jobs and not any(j.state.admissible for j in jobs):
        wanted = [f for f, on in (("require_admissible=true", cfg.require_admissible),
                                  (f"fallback={cfg.fallback}", cfg.fallback != "none")) if on]
        if wanted:
            raise ConfigError(f"{experts}: no expert state records admissible actions, which {' and '.join(wanted)} "
                              "needs; collect with --record-admissible always, or turn them off")


def build_pairs(experts: str | Path, out: str | Path, cfg: PairsConfig, generator: Any = None) -> dict[str, Any]:
    """Build (or resume building) critic pairs from expert trajectories; returns the meta record."""
    experts, out = Path(experts), Path(out)
    progress = out.with_name(out.name + ".progress")
    meta_path = out.with_name(out.stem + ".meta.json")
    check_outputs(experts, out, progress, meta_path)
    settings = _construction_settings(cfg)
    if meta_path.exists():
        saved = _read_meta(meta_path)["settings"]
        try:  # through the config class: fields added since the file was written get their defaults
            old = _construction_settings(from_dict(PairsConfig, saved, str(meta_path)))
        except ConfigError:
            old = saved
        if old != settings:
            changed = "; ".join(differences(old, settings))
            raise ConfigError(
                f"{out}: exists with different settings (file -> this run: {changed}); use another --out or delete it"
            )
    jobs = _expert_jobs(experts)
    _check_admissible_recorded(experts, jobs, cfg)
    done = _resume(out, progress)
    todo = [j for j in jobs if j.key not in done]
    owned = todo and generator is None  # a generator made here is closed here
    if owned:
        from actrl.models.generation import make_generator

        generator = make_generator(cfg.model, backend=cfg.backend)
    meta = {"experts": str(experts), "settings": settings, "sampling_model": cfg.model}
    meta_path.write_text(json.dumps(meta, indent=2))
    chunks = [todo[i : i + cfg.states_per_chunk] for i in range(0, len(todo), cfg.states_per_chunk)]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="critic pairs (states)", unit="state")
    with bar, JsonlWriter(out) as pair_writer, JsonlWriter(progress) as progress_writer:  # bar closed on Ctrl-C too
        for chunk in chunks:
            # chunk index from the first state's position: the same seeds whether or not we resumed
            _sample_chunk(chunk, cfg, generator, jobs.index(chunk[0]) // cfg.states_per_chunk)
            for job in chunk:
                pairs = _to_pairs(job, cfg.seed)
                for p in pairs:
                    pair_writer.write(p.to_dict())
                progress_writer.write({"key": job.key, "pairs": len(pairs), "counts": dict(job.counts)})
            bar.update(len(chunk))
    if owned:
        generator.close()
    meta["counts"] = summarize(progress)
    meta["sources"] = dict(Counter(r["alternative_source"] for r in read_jsonl(out))) if out.exists() else {}
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def add_arguments(p) -> None:
    p.add_argument("--experts", required=True, help="expert trajectories JSONL (actrl collect)")
    p.add_argument("--out", required=True,
                   help="critic pairs JSONL to write; resumes a file this command wrote (with its .progress and "
                        ".meta.json beside it) and refuses any other existing file")
    p.add_argument("--config", help="YAML with PairsConfig fields")
    p.add_argument("--model", help="initial policy that proposes alternatives (default: 'default')")
    p.add_argument("--k", type=int, help="alternatives per expert state (K)")
    p.add_argument("--temperature", type=float)
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fallback=admissible_likelihood")


def run(args) -> int:
    overrides = list(args.overrides)
    for name in ("model", "k", "temperature"):
        if getattr(args, name) is not None:
            overrides.append(f"{name}={getattr(args, name)}")
    cfg = load_config(PairsConfig, args.config, overrides)
    meta = build_pairs(args.experts, args.out, cfg)
    c = meta["counts"]
    print(
        f"states {c.get('states', 0)}  samples {c.get('samples', 0)}  unparseable {c.get('dropped_unparseable', 0)}  "
        f"dropped-as-expert {c.get('dropped_as_expert', 0)}  "
        f"dropped-expert-elsewhere {c.get('dropped_expert_elsewhere', 0)}  dropped-invalid {c.get('dropped_invalid', 0)}  "
        f"duplicates {c.get('dropped_duplicate', 0)}  fallback {c.get('fallback', 0)}  pairs {c.get('pairs', 0)}"
    )
    print(f"wrote {args.out} and {Path(args.out).stem}.meta.json")
    return 0


__all__ = ["PairsConfig", "build_pairs", "expert_position", "summarize"]
