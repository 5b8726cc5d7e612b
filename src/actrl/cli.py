"""The `actrl` command: one subcommand per stage.

    actrl check-env fetch              # an environment against the protocol: PASS or what to fix
    actrl collect --env scienceworld --split train --num 20 --out runs/x/experts.jsonl
    actrl import agenttraj alfworld.json --out runs/x/experts.jsonl
    actrl pairs --experts runs/x/experts.jsonl --model default --k 1 --out runs/x/pairs.jsonl
    actrl train act|il|rl --config stage.yaml [key=value ...]
    actrl eval agent|next-action|pairs|reasoning ...
    actrl run configs/demo.yaml        # a recipe: stages in order, resumable
    actrl demo                         # the CPU demo of the whole pipeline
    actrl report runs/*

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their subcommand runs, so `actrl --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from actrl import interrupts

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check-env": ("actrl.envs.checks", "check an environment against the protocol (run first on a new one)"),
    "collect": ("actrl.data.experts", "record replay-checked expert trajectories from an environment"),
    "import": ("actrl.data.importers", "convert expert data (AgentTraj, chat messages) into expert trajectories"),
    "pairs": ("actrl.data.pairs", "build critic pairs: expert action vs an alternative from the initial policy"),
    "train": ("actrl.train.cli", "run one training stage: act, il, rl (and the baselines)"),
    "eval": ("actrl.eval.cli", "evaluate: agent rollouts, next-action accuracy, pair accuracy, reasoning"),
    "run": ("actrl.pipeline", "run a recipe (YAML): stages in order, skipping finished ones"),
    "demo": ("actrl.demo", "the whole pipeline on the default model and ScienceWorld, on a CPU"),
    "report": ("actrl.report", "paper-style tables and plots from run directories"),
}


def _user_errors() -> tuple[type[BaseException], ...]:
    from actrl.config import ConfigError
    from actrl.data.records import RecordError
    from actrl.envs.base import EnvError
    from actrl.models.loading import ModelError

    return (ConfigError, RecordError, EnvError, ModelError)


def _message(e: BaseException) -> str:
    """The error on one line, without a leading 'actrl ...:' its raiser already put there.

    >>> _message(ValueError("actrl collect: num=0: expected >= 1"))
    'num=0: expected >= 1'
    """
    text = " ".join(str(e).split())
    return re.sub(r"^actrl(?: [\w-]+)*: ", "", text) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    interrupts.install()
    parser = argparse.ArgumentParser(prog="actrl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.parse_args(argv)  # argparse prints the usage error with the choices and exits 2
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"actrl {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    kind = getattr(args, "kind", None) or getattr(args, "stage", None)
    prog = f"actrl {name}" + (f" {kind}" if kind else "")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return _interrupted(prog)
    except (*_user_errors(), OSError) as e:  # OSError: a file or directory the checks could not foresee
        if interrupts.interrupted():  # what a worker raised while Ctrl-C stopped its simulator
            return _interrupted(prog)
        print(f"{prog}: error: {_message(e)}", file=sys.stderr)
        return 2


def _interrupted(prog: str) -> int:
    interrupts.mark_interrupted()
    print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
