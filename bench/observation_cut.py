"""What `prompt.max_observation_chars` hides: expert actions whose words leave the prompt, per limit.

    .venv/bin/python bench/observation_cut.py runs/quality-twx/seed0/experts.jsonl
    .venv/bin/python bench/observation_cut.py experts.jsonl --limits 300 500 800 --history-window 2

For every expert step, renders the state as the action prompt shows it (the history window, each
observation cut to the limit) and checks whether every word of the expert action, less command
verbs and fillers ("take", "in", "door", ...), appears in it. A cut that makes an action's object
disappear turns that state into a guess for every policy: pick the smallest limit at which the
visible share stops rising (on training data, never on the test split). The words left over at the
largest limit are outside the history window, or not literal (ScienceWorld's "anode" of a battery).
Prints, per limit: the visible share, the share of states with an observation cut, the mean prompt
length in characters. Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import re

COMMAND_WORDS = set(
    "take put in on into open close move to go look around inventory the a an at focus pick up use activate "
    "deactivate wait wait1 connect pour mix read eat drink examine teleport from with and of dunk fill cook "
    "slice chop prepare meal north south east west door".split()
)


def action_words(action: str) -> list[str]:
    """The words of an action a prompt has to show for the action to be more than a guess."""
    return [w for w in re.findall(r"[a-z0-9]+", action.lower()) if w not in COMMAND_WORDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experts", nargs="+", help="expert trajectories JSONL (actrl collect)")
    parser.add_argument("--limits", nargs="+", type=int, default=[300, 400, 500, 600, 800, 1200, 100_000])
    parser.add_argument("--history-window", type=int, default=1)
    args = parser.parse_args()

    from actrl.data.prompts import PromptConfig, cut_share, render_state
    from actrl.data.records import read_trajectories

    for path in args.experts:
        steps = [(s, a) for t in read_trajectories(path) for _, s, a in t.states()]
        print(f"{path}: {len(steps)} expert steps, history window {args.history_window}")
        print(f"  {'limit':>7}  {'action words visible':>20}  {'states with a cut':>17}  {'mean chars':>10}")
        for limit in args.limits:
            cfg = PromptConfig(history_window=args.history_window, max_observation_chars=limit)
            texts = [render_state(s, cfg).lower() for s, _ in steps]
            visible = sum(all(w in text for w in action_words(a)) for text, (_, a) in zip(texts, steps, strict=True))
            print(f"  {limit:>7}  {visible / len(steps):>20.1%}  {cut_share([s for s, _ in steps], cfg):>17.1%}"
                  f"  {sum(map(len, texts)) / len(texts):>10.0f}")


if __name__ == "__main__":
    main()
