"""Stage metrics: slash-namespaced names, `<output_dir>/metrics.jsonl`, and the position-collapse alarm.

A `TrainerCallback` placed first in the trainer's callback list so the names it adds reach every
`report_to` backend too. Every metric is explained in docs/metrics.md.

    actrl train act --config configs/act.yaml   # writes runs/.../metrics.jsonl as it trains

Choices the paper left open:
1. Position collapse (ACT.md pitfall): when `act/pick_first_rate` over a logging window leaves
   [0.1, 0.9] the log gets a loud warning and `act/position_collapse` is 1 for that window.
2. metrics.jsonl is appended and flushed per log; on resume, lines past the checkpoint's step are
   removed first (all lines when no checkpoint was complete), so a step appears once.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from actrl.train.trl_compat import first_callback

log = logging.getLogger("actrl.train")

METRICS_FILE = "metrics.jsonl"
COLLAPSE_BAND = (0.1, 0.9)
STUCK_NOTE = (
    " Every group got one reward, so this step had no gradient: a collapsed stage can stay here for good"
    " (docs/metrics.md); keep the best checkpoint on dev pairs (data.select_split)."
)
# TRL/transformers names -> the stage's slash-namespaced alias ({stage} is act, il or rl)
ALIASES = {
    "loss": "{stage}/loss",
    "eval_loss": "{stage}/eval_loss",
    "mean_token_accuracy": "{stage}/token_accuracy",
    "eval_mean_token_accuracy": "{stage}/eval_token_accuracy",
    # checkpoint selection on validation pairs (ACT select_on)
    "eval_pair_accuracy": "{stage}/select_pair_accuracy",
    "eval_pair_both_orders_accuracy": "{stage}/select_both_orders_accuracy",
    "eval_pair_pick_first_rate": "{stage}/select_pick_first_rate",
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


class StageMetrics(TrainerCallback):
    """Adds `<stage>/...` aliases, flags position collapse, and appends each log to metrics.jsonl."""

    def __init__(self, output_dir: str | Path, stage: str, collapse_advice: str = "consider balance_orders=true"):
        self.path = Path(output_dir) / METRICS_FILE
        self.stage = stage
        self.collapse_advice = collapse_advice

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        if logs is None:
            return
        for src, dst in ALIASES.items():
            if src in logs:
                logs[dst.format(stage=self.stage)] = logs[src]
        rate = logs.get("act/pick_first_rate")
        if isinstance(rate, float) and not math.isnan(rate):
            collapsed = not COLLAPSE_BAND[0] <= rate <= COLLAPSE_BAND[1]
            logs["act/position_collapse"] = float(collapsed)
            if collapsed and state.is_world_process_zero:
                log.warning(
                    "POSITION COLLAPSE at step %d: act/pick_first_rate=%.2f is outside [%.1f, %.1f]; the critic "
                    "answers by position, not by action. Check held-out pair accuracy; %s.%s",
                    state.global_step, rate, *COLLAPSE_BAND, self.collapse_advice,
                    STUCK_NOTE if logs.get("act/frac_zero_std_groups") == 1.0 else "",
                )
        if state.is_world_process_zero:
            record = {"step": state.global_step, "epoch": _clean(state.epoch)}
            record.update({k: _clean(v) for k, v in logs.items()})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def attach(trainer: Any, output_dir: str | Path, stage: str, **kwargs: Any) -> StageMetrics:
    """Put StageMetrics first among the trainer's callbacks (before report_to integrations see the logs)."""
    cb = StageMetrics(output_dir, stage, **kwargs)
    first_callback(trainer, cb)
    return cb


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prune_metrics(output_dir: str | Path, after_step: int) -> None:
    """Drop metrics.jsonl lines logged after `after_step` (they are redone after a resume)."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= after_step:
                keep.append(line)
        except json.JSONDecodeError:  # a line torn by the kill
            continue
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)
