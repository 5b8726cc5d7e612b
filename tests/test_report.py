"""The report's ACT -> IL minus IL difference: point estimate and paired bootstrap interval."""

from __future__ import annotations

import json

import pytest

from actrl.report import bootstrap_difference, difference_line, write_report


def _write_run(root, seed: int, il: list[bool], act_il: list[bool]):
    run = root / f"seed{seed}"
    for slug, correct in (("il", il), ("act_il", act_il)):
        d = run / "eval" / slug
        d.mkdir(parents=True)
        rows = [{"key": f"s{i}", "correct": c} for i, c in enumerate(correct)]
        (d / "next_action.predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    methods = {m: {"model": m, "metrics": {"next_action_accuracy": sum(c) / len(c)}}
               for m, c in (("il", il), ("act -> il", act_il))}
    verdict = f"seed {seed}'s sentence"
    (run / "results.json").write_text(json.dumps({"seed": seed, "model": "tiny", "env": "twx", "methods": methods,
                                                  "verdict": verdict}))
    return run


def test_bootstrap_is_paired_over_states_and_averaged_over_runs():
    # run 1: +20 points, run 2: +40 points -> +30 on average
    runs = [[(True, False)] * 2 + [(True, True)] * 8, [(True, False)] * 4 + [(False, False)] * 6]
    r = bootstrap_difference(runs, replicates=2000)
    assert r["difference"] == pytest.approx(0.3)
    assert 0 < r["low"] < 0.3 < r["high"] <= 0.5
    assert (r["runs"], r["states"]) == (2, 20)


def test_identical_methods_give_a_zero_width_interval_at_zero():
    runs = [[(True, True), (False, False), (True, True)]]
    r = bootstrap_difference(runs, replicates=500)
    assert r["difference"] == r["low"] == r["high"] == 0.0


def test_a_noisy_tie_has_an_interval_around_zero():
    runs = [[(True, False)] * 5 + [(False, True)] * 5 + [(True, True)] * 10]
    r = bootstrap_difference(runs, replicates=2000)
    assert r["difference"] == 0.0 and r["low"] < 0 < r["high"]


def test_report_states_the_difference_with_its_interval(tmp_path):
    _write_run(tmp_path, 0, il=[True, False, False, False], act_il=[True, True, False, False])
    _write_run(tmp_path, 1, il=[True, True, False, False], act_il=[True, True, True, False])
    text = write_report([tmp_path], tmp_path / "out").read_text()
    line = next(x for x in text.splitlines() if x.startswith("act -> il minus il"))
    assert "+25.0 points" in line and "8 held-out states in 2 run(s)" in line
    assert "| act -> il | 2 | 62.5 ± 17.7 |" in text
    # each run's one-seed verdict names its run
    assert f"- {tmp_path / 'seed0'}: seed 0's sentence" in text and f"- {tmp_path / 'seed1'}: seed 1's sentence" in text
    single = write_report([tmp_path / "seed0"], tmp_path / "one").read_text()
    assert "- seed 0's sentence" in single


def test_no_difference_line_without_per_state_predictions(tmp_path):
    run = _write_run(tmp_path, 0, il=[True], act_il=[False])
    (run / "eval" / "il" / "next_action.predictions.jsonl").unlink()
    assert difference_line([run]) is None


def test_curves_come_only_from_the_stages_behind_the_evaluated_methods(tmp_path):
    from actrl.report import _stage_curves

    run = tmp_path / "seed0"
    stages = run / "stages"
    for name, start in (("act-new", "default"), ("il-after", "runs/x/seed0/stages/act-new/final"),
                        ("il-plain", "default"), ("act-old", "default")):  # act-old: an earlier setting
        (stages / name).mkdir(parents=True)
        (stages / name / "metrics.jsonl").write_text(json.dumps({"step": 1, "act/reward": 0.5}) + "\n")
        (stages / name / "config.yaml").write_text(f"stage: x\nconfig:\n  model:\n    name: {start}\n")
    for slug, model in (("prompt", "default"), ("il", "runs/x/seed0/stages/il-plain/final"),
                        ("act_il", "runs/x/seed0/stages/il-after/final")):
        (run / "eval" / slug).mkdir(parents=True)
        (run / "eval" / slug / "metrics.json").write_text(json.dumps({"key": "k", "model": model, "metrics": {}}))
    curves = _stage_curves([run])
    assert sorted(p.name for kind in curves.values() for p, _ in kind) == ["act-new", "il-after", "il-plain"]
