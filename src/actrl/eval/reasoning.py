"""General-reasoning evaluation of a checkpoint: MATH-500 and GPQA-Diamond accuracy, mean +- std over seeds.

The ACT paper's reasoning-transfer check (ACT 87.73 / 53.37 vs IL 87.00 / 44.61 on MATH-500 /
GPQA-Diamond with Qwen3-8B): the checkpoint answers each question with batched generation, the
answer is extracted and graded (reasoning_data.py, math_equiv.py), and accuracy is averaged over
seeds.

    actrl eval reasoning --model default --bench math500 --data ../shared/data/math500.jsonl --limit 50
    actrl eval reasoning --model runs/x/stages/il --bench gpqa-diamond --seeds 0,1,2 --thinking \\
        --max-new-tokens 16384 --out runs/x/eval/gpqa-diamond.json

Choices the paper left open:
1. One seed decodes greedily; several seeds sample at temperature 0.6 (top-p 1.0) unless
   --temperature says otherwise. Greedy with several seeds is refused on MATH-500 (every seed would
   repeat the same answers); on GPQA it is allowed, since the seed also reshuffles the options.
2. Accuracy is a fraction in [0, 1] per seed; the std over seeds is the sample std (n - 1), null
   for a single seed. A completion with no extractable answer is wrong and also counted in
   `format_failure_rate`.
3. Questions are generated in chunks of --chunk-size; the output JSON (records and aggregates) is
   rewritten atomically after each chunk, and a rerun with the same settings skips finished
   (seed, question) records, so a killed run resumes. A chunk's sampling seed is
   seed * 1_000_000 + chunk index * 1_000 (the generator adds its batch index).
4. The prompt is a single user turn (no system prompt); --thinking sets the chat template's
   `enable_thinking` where the template has it (Qwen3) and is off otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from actrl.config import ConfigError, from_dict, to_dict
from actrl.data.records import RecordError
from actrl.eval.reasoning_data import GPQA_PROMPT, MATH_PROMPT, Question, grade, load_questions, messages
from actrl.models.loading import ModelConfig, check_lora_adapter, resolve_model
from actrl.outputs import output_file

SAMPLING_TEMPERATURE = 0.6  # several seeds: the temperature Qwen3's card recommends for reasoning
COMPAT_KEYS = (
    "bench",
    "model",
    "lora",
    "data",
    "thinking",
    "temperature",
    "top_p",
    "max_new_tokens",
    "prompt_sha",
)


@dataclass
class ReasoningEvalConfig:
    """`actrl eval reasoning`: which checkpoint, which benchmark, how to sample, where to write."""

    bench: Literal["math500", "gpqa-diamond"]
    model: str = "default"
    """hub id, local checkpoint (a LoRA directory loads onto its base), or 'default'."""
    lora: str | None = None
    """LoRA adapter directory to load onto `model`."""
    data: str | None = None
    """local JSONL instead of the Hub (MATH-500 columns, or GPQA's 'Question', 'Correct Answer', ...)."""
    limit: int | None = None
    """evaluate the first N questions only."""
    seeds: list[int] | None = None
    """one run per seed; None means [0]."""
    thinking: bool = False
    temperature: float | None = None
    """None: 0 (greedy) for one seed, 0.6 for several."""
    top_p: float = 1.0
    max_new_tokens: int = 2048
    batch_size: int = 8
    chunk_size: int = 64
    """questions per generation call; the output is saved after each (resume granularity)."""
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    dtype: str = "auto"
    device: str = "auto"
    out: str | None = None
    """output JSON; None means reasoning-<bench>.json in the working directory."""

    def validate(self) -> None:
        if self.seeds is None:
            self.seeds = [0]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds}: expected distinct integers, e.g. 0,1,2")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit={self.limit}: expected >= 1")
        if min(self.max_new_tokens, self.batch_size, self.chunk_size) < 1:
            raise ValueError("max_new_tokens, batch_size and chunk_size must be >= 1")
        if self.temperature is None:
            self.temperature = 0.0 if len(self.seeds) == 1 else SAMPLING_TEMPERATURE
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature}: expected >= 0")
        if self.temperature == 0 and len(self.seeds) > 1 and self.bench == "math500":
            raise ValueError(
                f"temperature=0 with seeds {self.seeds}: greedy decoding repeats the same answers on "
                "math500; pass --temperature > 0 (e.g. 0.6) or a single seed"
            )
        if self.out is None:
            self.out = f"reasoning-{self.bench}.json"
        ModelConfig(name=self.model, dtype=self.dtype, device=self.device).validate()


# ----------------------------------------------------------------------------- results file


def settings(cfg: ReasoningEvalConfig) -> dict[str, Any]:
    prompt = MATH_PROMPT if cfg.bench == "math500" else GPQA_PROMPT
    d = to_dict(cfg)
    d["prompt_sha"] = hashlib.sha1(prompt.encode()).hexdigest()[:12]  # a changed prompt is a new run
    if cfg.data is not None:
        d["data"] = str(Path(cfg.data).resolve())
    return d


def load_previous(path: Path, current: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    """Finished records of an earlier run with the same settings, keyed by (seed, question id)."""
    if not path.exists():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old_settings, records = old["settings"], old["records"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RecordError(
            f"{path}: not a reasoning results file ({e}); delete it or pass another --out"
        ) from None
    for key in COMPAT_KEYS:
        if old_settings.get(key) != current.get(key):
            raise ConfigError(
                f"{path} was written with {key}={old_settings.get(key)!r}, this run has {key}={current.get(key)!r}; "
                "pass another --out or delete the file to start over"
            )
    return {(r["seed"], r["id"]): r for r in records}


def aggregate(records: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Accuracy per seed, mean, sample std over seeds, format-failure rate (fractions in [0, 1]).

    >>> r = [{'seed': 0, 'correct': True, 'format_failure': False}, {'seed': 0, 'correct': False, 'format_failure': True},
    ...      {'seed': 1, 'correct': True, 'format_failure': False}, {'seed': 1, 'correct': True, 'format_failure': False}]
    >>> a = aggregate(r, [0, 1]); a['accuracy_per_seed'], a['accuracy_mean'], round(a['accuracy_std'], 4)
    ({'0': 0.5, '1': 1.0}, 0.75, 0.3536)
    """
    per_seed, fails = {}, {}
    for seed in seeds:
        rs = [r for r in records if r["seed"] == seed]
        per_seed[str(seed)] = sum(r["correct"] for r in rs) / len(rs) if rs else None
        fails[str(seed)] = sum(r["format_failure"] for r in rs) / len(rs) if rs else None
    done = [v for v in per_seed.values() if v is not None]
    return {
        "accuracy_per_seed": per_seed,
        "accuracy_mean": statistics.fmean(done) if done else None,
        "accuracy_std": statistics.stdev(done) if len(done) > 1 else None,
        "format_failure_rate": sum(r["format_failure"] for r in records) / len(records) if records else None,
        "format_failure_rate_per_seed": fails,
        "n_records": len(records),
    }


def write_results(path: Path, result: dict[str, Any]) -> None:
    """Atomic rewrite (temp file + rename): a kill leaves the previous complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import actrl

    found = {"actrl": actrl.__version__}
    for package in ("transformers", "datasets", "math-verify"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


# ----------------------------------------------------------------------------- evaluation


def evaluate_reasoning(cfg: ReasoningEvalConfig, generator: Any = None, log: Any = print) -> dict[str, Any]:
    """Run (or resume) the evaluation; return the results dict that is also written to `cfg.out`."""
    from actrl.models.generation import SamplingConfig

    questions: list[Question] = load_questions(cfg.bench, cfg.data, cfg.limit)  # fail before loading a model
    out, current = Path(cfg.out), settings(cfg)
    done = load_previous(out, current)
    seeds = list(cfg.seeds)
    wanted = {(s, q.id) for s in seeds for q in questions}
    log(
        f"{cfg.bench}: {len(questions)} questions x seeds {seeds}; temperature {cfg.temperature}, "
        f"max_new_tokens {cfg.max_new_tokens}, thinking {cfg.thinking}; "
        f"{len(wanted & done.keys())} of {len(wanted)} already in {out}"
    )
    result = {"kind": "reasoning", "bench": cfg.bench, "settings": current, "versions": _versions()}

    def save(complete: bool) -> None:
        mine = [done[k] for k in sorted(wanted & done.keys())]
        result.update(
            complete=complete, seeds=seeds, n_questions=len(questions), aggregate=aggregate(mine, seeds)
        )
        result["records"] = list(done.values())
        write_results(out, result)

    chunks = [questions[i : i + cfg.chunk_size] for i in range(0, len(questions), cfg.chunk_size)]
    owned = generator is None  # a generator loaded here is closed here
    for seed in seeds:
        for c, chunk in enumerate(chunks):
            pending = [q for q in chunk if (seed, q.id) not in done]
            if not pending:
                continue
            generator = generator or _load_generator(cfg)
            sampling = SamplingConfig(
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens,
                seed=seed * 1_000_000 + c * 1_000,
                batch_size=cfg.batch_size,
            )
            outs = generator.generate(
                [messages(cfg.bench, q, seed) for q in pending], sampling, progress=True
            )
            for q, (completion,) in zip(pending, outs, strict=True):
                graded = grade(cfg.bench, q, completion, seed)
                done[(seed, q.id)] = {"id": q.id, "seed": seed, "prediction": completion, **graded, **q.meta}
            save(complete=False)
            mine = [done[(seed, q.id)] for q in questions if (seed, q.id) in done]
            log(
                f"seed {seed}: {len(mine)}/{len(questions)} answered, accuracy so far {aggregate(mine, [seed])['accuracy_mean']:.3f}"
            )
    if owned and generator is not None:
        generator.close()
    save(complete=True)
    agg = result["aggregate"]
    std = f" +- {100 * agg['accuracy_std']:.2f}" if agg["accuracy_std"] is not None else ""
    log(
        f"{cfg.bench}: accuracy {100 * agg['accuracy_mean']:.2f}{std} % over seeds {seeds} "
        f"({len(questions)} questions), format failures {100 * agg['format_failure_rate']:.1f} %; wrote {out}"
    )
    return result


def _load_generator(cfg: ReasoningEvalConfig) -> Any:
    from actrl.models.generation import make_generator

    model = ModelConfig(name=cfg.model, dtype=cfg.dtype, device=cfg.device)
    return make_generator(model, backend=cfg.backend, lora_adapter=cfg.lora, thinking=cfg.thinking)


# ----------------------------------------------------------------------------- CLI


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected comma-separated integers, e.g. 0,1,2") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench", required=True, choices=["math500", "gpqa-diamond"])
    parser.add_argument("--model", default="default", help="hub id, local checkpoint, or 'default'")
    parser.add_argument("--lora", help="LoRA adapter directory to load onto --model")
    parser.add_argument("--data", help="local JSONL instead of the Hugging Face Hub")
    parser.add_argument("--limit", type=int, help="first N questions only")
    parser.add_argument("--seeds", type=_seeds, default=None, help="comma-separated, e.g. 0,1,2 (default 0)")
    parser.add_argument("--thinking", action="store_true", help="enable_thinking in templates that have it")
    parser.add_argument("--temperature", type=float, help="default: 0 for one seed, 0.6 for several")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=64, help="questions per save (resume granularity)")
    parser.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    parser.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--out", help="results JSON (default reasoning-<bench>.json)")


def run(args: argparse.Namespace) -> int:
    keys = [f.replace("-", "_") for f in ReasoningEvalConfig.__dataclass_fields__]
    cfg = from_dict(ReasoningEvalConfig, {k: getattr(args, k) for k in keys}, "options")
    output_file(cfg.out, "--out")  # before questions load or the model does
    if cfg.lora:
        check_lora_adapter(cfg.lora)
    if cfg.model != "default":
        resolve_model(cfg.model)
    evaluate_reasoning(cfg)
    return 0
