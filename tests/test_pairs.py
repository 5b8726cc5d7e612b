"""Critic pairs: filtering, seeded order, real TWX experts with the tiny model, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from actrl.config import ConfigError
from actrl.data.pairs import PairsConfig, _StateJob, build_pairs, expert_position
from actrl.data.records import State, read_jsonl, read_pairs


def _job(admissible=None) -> _StateJob:
    return _StateJob("t#0", "t", 0, State("task", [], "obs", admissible), "open door")


def test_filters_count_each_reason():
    job = _job(admissible=["open door", "go west", "look"])
    for text in ["no tag here", "<action>Open Door.</action>", "<action>fly away</action>",
                 "<action>go west</action>", "<action>GO WEST</action>", "<action>look</action>"]:
        job.offer(text, require_admissible=True, k=1)
    assert [a for a, _, _ in job.kept] == ["go west"]
    assert job.counts == Counter(samples=6, dropped_unparseable=1, dropped_as_expert=1, dropped_invalid=1,
                                 dropped_duplicate=1, dropped_surplus=1)


def test_inadmissible_alternatives_are_kept_unless_required_and_marked():
    job = _job(admissible=["open door", "go west"])
    job.offer("<action>fly away</action>", require_admissible=False, k=2)
    job.offer("<action>go west</action>", require_admissible=False, k=2)
    assert job.kept == [("fly away", "sampled", False), ("go west", "sampled", True)]
    unknown = _job(admissible=None)
    unknown.offer("<action>fly</action>", require_admissible=True, k=1)
    assert unknown.kept == [("fly", "sampled", None)]  # nothing to check against: kept, marked unknown


def test_expert_actions_of_other_steps_are_dropped_only_when_asked():
    job = _StateJob("t#0", "t", 0, State("task", [], "obs", ["look around", "take coin", "go west"]),
                    "look around", ("take coin",))
    job.offer("<action>take coin</action>", require_admissible=True, k=2, exclude_expert_elsewhere=True)
    job.offer("<action>go west</action>", require_admissible=True, k=2, exclude_expert_elsewhere=True)
    assert [a for a, _, _ in job.kept] == ["go west"] and job.counts["dropped_expert_elsewhere"] == 1
    job.offer("<action>Take coin</action>", require_admissible=True, k=2)  # the paper's filter keeps it
    assert [a for a, _, _ in job.kept] == ["go west", "Take coin"]


def test_expert_position_is_seeded_stable_and_balanced():
    ids = [f"task/{i}#0#0" for i in range(4000)]
    first = [expert_position(0, i) for i in ids]
    assert first == [expert_position(0, i) for i in ids]
    assert 0.47 < first.count(1) / len(first) < 0.53
    assert first != [expert_position(1, i) for i in ids]


@pytest.fixture(scope="module")
def twx_experts(tmp_path_factory):
    from actrl.data.experts import collect

    path = tmp_path_factory.mktemp("experts") / "experts.jsonl"
    collect("textworld_express", "train", 4, out=path, tasks=["twc", "coin"], workers=1, progress=False)
    return path


def _cfg(tiny_model_dir, **kw) -> PairsConfig:
    base = dict(model=tiny_model_dir, k=2, max_new_tokens=4, resample_rounds=0, backend="transformers",
                fallback="admissible_random", states_per_chunk=2)
    return PairsConfig(**{**base, **kw})


def test_pairs_from_real_experts_hold_two_different_actions(tmp_path, twx_experts, tiny_model_dir):
    out = tmp_path / "pairs.jsonl"
    meta = build_pairs(twx_experts, out, _cfg(tiny_model_dir))
    pairs = read_pairs(out)
    c = meta["counts"]
    n_states = sum(len(json.loads(line)["steps"]) for line in open(twx_experts))
    assert c["states"] == n_states and c["samples"] == 4 * n_states  # 2K samples per state
    assert c["pairs"] == len(pairs) and len({p.pair_id for p in pairs}) == len(pairs)
    # the untrained tiny model writes no action tag: every pair comes from the admissible fallback
    assert c["dropped_unparseable"] == c["samples"] and meta["sources"] == {"admissible_random": len(pairs)}
    assert all(p.alternative_admissible and p.alternative in p.state.admissible for p in pairs)
    assert meta["settings"]["model"] == tiny_model_dir


@pytest.mark.parametrize("setting", [{"require_admissible": True, "fallback": "none"}, {"fallback": "admissible_random"}])
def test_admissible_settings_on_experts_without_admissible_lists_are_refused(tmp_path, twx_experts, tiny_model_dir, setting):
    experts = tmp_path / "no_admissible.jsonl"
    rows = [json.loads(line) for line in open(twx_experts)]
    for row in rows:
        for step in row["steps"]:
            step["admissible"] = None  # as `actrl collect --record-admissible never` writes them
    experts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    wanted = "require_admissible=true" if setting.get("require_admissible") else "fallback=admissible_random"
    with pytest.raises(ConfigError, match=rf"no_admissible.jsonl: no expert state records admissible actions, which {wanted} needs"):
        build_pairs(experts, tmp_path / "pairs.jsonl", _cfg(tiny_model_dir, **setting))
    assert not (tmp_path / "pairs.jsonl").exists()


def test_likelihood_fallback_picks_the_policys_most_likely_admissible_action(tmp_path, twx_experts, tiny_model_dir):
    from actrl.data.prompts import PromptConfig, action_messages, same_action
    from actrl.models.generation import HFGenerator
    from actrl.models.scoring import completion_logprobs

    gen = HFGenerator.load(tiny_model_dir)
    out = tmp_path / "pairs.jsonl"
    build_pairs(twx_experts, out, _cfg(tiny_model_dir, k=1, fallback="admissible_likelihood"), gen)
    pair = read_pairs(out)[0]
    cands = [a for a in pair.state.admissible if not same_action(a, pair.expert_action)]
    scores = completion_logprobs(gen, action_messages(pair.state, PromptConfig()), [f"<action>{a}</action>" for a in cands])
    assert pair.alternative == cands[max(range(len(cands)), key=scores.__getitem__)]


def test_changed_settings_on_an_existing_file_are_refused(tmp_path, twx_experts, tiny_model_dir):
    from actrl.config import ConfigError

    out = tmp_path / "pairs.jsonl"
    build_pairs(twx_experts, out, _cfg(tiny_model_dir, k=1))
    with pytest.raises(ConfigError, match=r"different settings \(file -> this run: k: 1 -> 2\)"):
        build_pairs(twx_experts, out, _cfg(tiny_model_dir, k=2))


def test_a_file_written_before_a_setting_existed_resumes_with_its_default(tmp_path, twx_experts, tiny_model_dir):
    import json

    out = tmp_path / "pairs.jsonl"
    build_pairs(twx_experts, out, _cfg(tiny_model_dir, k=1))
    meta_path = tmp_path / "pairs.meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["settings"]["prompt"]["history_window"]  # as written by an actrl without that field
    meta_path.write_text(json.dumps(meta))
    before = out.read_bytes()
    build_pairs(twx_experts, out, _cfg(tiny_model_dir, k=1))  # no "different settings" error, nothing redone
    assert out.read_bytes() == before
    # the critic's answer format is not a construction setting: the same pairs serve both formats
    cfg = _cfg(tiny_model_dir, k=1)
    cfg.prompt.critic_answer = "action"
    build_pairs(twx_experts, out, cfg)
    assert out.read_bytes() == before


@pytest.mark.slow
def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path, twx_experts, tiny_model_dir):
    cmd = [sys.executable, "-m", "actrl.cli", "pairs", "--experts", str(twx_experts), "--model", tiny_model_dir,
           "--k", "2", "max_new_tokens=4", "resample_rounds=0", "backend=transformers",
           "fallback=admissible_random", "states_per_chunk=1"]
    killed = tmp_path / "killed.jsonl"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "killed.jsonl.progress"
    deadline = time.time() + 240
    while time.time() < deadline and (not progress.exists() or len(progress.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(progress.read_text().splitlines())
    assert done_before >= 2
    assert subprocess.run(cmd + ["--out", str(killed)], capture_output=True).returncode == 0
    clean = tmp_path / "clean.jsonl"
    assert subprocess.run(cmd + ["--out", str(clean)], capture_output=True).returncode == 0
    resumed = [r["pair_id"] for r in read_jsonl(killed)]
    assert len(resumed) == len(set(resumed))
    assert read_jsonl(killed) == read_jsonl(clean)  # same pairs, same order positions, as if never killed


def test_fill_never_uses_an_expert_action_from_the_same_trajectory(tmp_path, twx_experts, tiny_model_dir):
    from actrl.data.prompts import same_action
    from actrl.data.records import read_trajectories

    build_pairs(twx_experts, tmp_path / "plain.jsonl", _cfg(tiny_model_dir, k=3))
    plain = read_pairs(tmp_path / "plain.jsonl")
    meta = build_pairs(twx_experts, tmp_path / "excl.jsonl", _cfg(tiny_model_dir, k=3, exclude_expert_elsewhere=True))
    excl = read_pairs(tmp_path / "excl.jsonl")
    actions = {t.task_id: [s.action for s in t.steps] for t in read_trajectories(twx_experts)}

    def elsewhere(p):
        return any(same_action(p.alternative, a) for i, a in enumerate(actions[p.task_id]) if i != p.t)

    assert sum(map(elsewhere, plain)) > 0  # the random fill does pick them without the option ...
    assert not any(map(elsewhere, excl)) and len(excl) > 0  # ... and never with it
    assert meta["settings"]["exclude_expert_elsewhere"] is True
