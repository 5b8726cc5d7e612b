"""Offline ALFWorld-format games for tests and the CPU demo (never reported as ALFWorld numbers).

    python -m actrl.envs.alfworld_gen --out games/ --seed 0 --train 4 --valid-seen 2 --valid-unseen 2
    actrl collect --env alfworld_generated --split train ...   # generates into the cache on first use

ALFWorld's games come from AI2-THOR scenes that cannot be downloaded here. This generator writes
games in the same format (`game.tw-pddl` + the `traj_data.json` the handcoded expert reads, in the
`<split>/<task>-<obj>-<mrecep>-<parent>-<scene>/<trial>/` layout) from what ships inside the
`alfworld` package: the PDDL domain (`alfred.pddl`), the text grammar (`alfred.twl2`), the goal
PDDL and goal templates (`alfworld.gen.goal_library`), the object/receptacle affordances
(`alfworld.gen.constants`) and the AI2-THOR floor-plan inventories (`alfworld/gen/layouts`).
Every game is played by alfworld's handcoded expert before it is kept.

Choices (not ALFWorld's; documented so results are read as what they are):
1. Rooms: a floor plan of a scene type the task allows (`constants.GOALS_VALID`) is drawn; its
   receptacle classes come from the floor plan's inventory, each with 1 to `MAX_PER_CLASS`
   instances (never more than the floor plan has); every receptacle has its own location.
2. Seen/unseen: floor plans numbered 10, 20, 30 (and 210, 220, ...) are kept for valid_unseen
   (OOD rooms, like ALFWorld's unseen scenes); train and valid_seen share the other floor plans.
3. Objects: up to `MAX_OBJECT_CLASSES` pickupable classes of the floor plan, 1-2 instances each,
   each in a random receptacle whose class can contain it (`constants.VAL_RECEPTACLE_OBJECTS`);
   targets never start inside the goal receptacle type. Lamps stand on a desk/side table/dresser.
4. Goal text: one of the package's two templates per task type, drawn with the game's seed.
5. Kept only when the handcoded expert wins within `MAX_EXPERT_STEPS` (= the 50-step episode
   limit), otherwise the next attempt's seed is drawn; the expert's actions are stored as the
   game's walkthrough and `solvable` is set, as alfworld-generate does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from actrl.envs.alfworld import (
    SPLITS,
    TASK_TYPES,
    AlfWorldEnv,
    alfworld_version,
    command_grammar,
    play_expert,
    require_alfworld,
)
from actrl.envs.base import EnvError

MAX_PER_CLASS = 3
MAX_OBJECT_CLASSES = 10
MAX_EXPERT_STEPS = 50
MAX_ATTEMPTS = 40
UNSEEN_FLOOR_PLANS = frozenset(n for base in (0, 200, 300, 400) for n in (base + 10, base + 20, base + 30))
MOVABLE_RECEPTACLES = {"Bowl", "Box", "Cup", "Mug", "Pan", "Plate", "Pot"}
LAMP_STANDS = ("Desk", "SideTable", "Dresser")
APPLIANCE = {  # task type -> (receptacle class the task needs, affordance of the target object)
    "pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
    "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
    "pick_cool_then_place_in_recep": ("Fridge", "Coolable"),
}
DEFAULT_COUNTS = {"train": 2, "valid_seen": 1, "valid_unseen": 1}  # games per task type: 24, ~1.5 min


@dataclass
class GameSpec:
    """One sampled game: scene, receptacles and objects by PDDL id, and the task parameters."""

    task_type: str
    floor_plan: int
    receptacles: dict[str, str] = field(default_factory=dict)  # id -> class
    objects: dict[str, str] = field(default_factory=dict)  # id -> class
    inside: dict[str, str] = field(default_factory=dict)  # object id -> receptacle id
    params: dict[str, str] = field(default_factory=dict)  # object/parent/toggle/mrecep targets

    @property
    def dir_name(self) -> str:
        p = self.params
        parent = p["parent_target"] or p["toggle_target"]
        return (
            f"{self.task_type}-{p['object_target']}-{p['mrecep_target'] or 'None'}-{parent}-{self.floor_plan}"
        )


def _layouts() -> Path:
    import alfworld.gen

    return Path(alfworld.gen.__file__).parent / "layouts"


def floor_plans(task_type: str, unseen: bool) -> list[int]:
    import alfworld.gen.constants as C

    plans = []
    for scene in sorted(C.GOALS_VALID[task_type]):
        plans += [n for n in C.SCENE_TYPE[scene] if (n in UNSEEN_FLOOR_PLANS) == unseen]
    return plans


def _pddl_id(cls: str, k: int) -> str:
    if cls.endswith("Basin"):  # ALFWorld ids "Sink|...|SinkBasin": the demangler names them sinkbasin
        return f"{cls[: -len('Basin')]}_bar_{k:02d}_bar_{cls}"
    return f"{cls}_bar_{k:02d}"


def sample_game(task_type: str, floor_plan: int, rng: random.Random) -> GameSpec | None:
    """A random room of `floor_plan` with a task of `task_type`, or None if the room cannot host it."""
    import alfworld.gen.constants as C

    inventory = set(json.loads((_layouts() / f"FloorPlan{floor_plan}-objects.json").read_text()))
    openable = json.loads((_layouts() / f"FloorPlan{floor_plan}-openable.json").read_text())
    contain = C.VAL_RECEPTACLE_OBJECTS
    recep_classes = sorted((inventory & set(contain)) - MOVABLE_RECEPTACLES)
    pickupable = sorted(
        c for c in inventory if any(c in objs for objs in contain.values()) and "Sliced" not in c
    )
    spec = GameSpec(task_type, floor_plan)
    appliance, affordance = APPLIANCE.get(task_type, (None, None))
    if appliance and appliance not in recep_classes:
        return None
    toggle = None
    if task_type == "look_at_obj_in_light":
        lamps = sorted(inventory & {"DeskLamp", "FloorLamp"})
        if not lamps:
            return None
        toggle = rng.choice(lamps)
        if not set(LAMP_STANDS) & set(recep_classes):
            recep_classes.append("SideTable")
    # receptacles
    for cls in recep_classes:
        in_plan = sum(
            1
            for k in openable
            if k.split("|")[0] + ("Basin" if k.split("|")[0] in ("Sink", "Bathtub") else "") == cls
        )
        n = rng.randint(1, max(1, min(MAX_PER_CLASS, in_plan or (4 if cls == "StoveBurner" else 1))))
        for k in range(1, n + 1):
            spec.receptacles[_pddl_id(cls, k)] = cls
    present = set(spec.receptacles.values())

    def holders(obj_cls: str, exclude: str | None = None) -> list[str]:
        return [r for r, c in spec.receptacles.items() if obj_cls in contain.get(c, ()) and c != exclude]

    # the task's target object and goal receptacle
    candidates = [
        o for o in pickupable if holders(o) and (not affordance or o in C.VAL_ACTION_OBJECTS[affordance])
    ]
    rng.shuffle(candidates)
    params = None
    for obj in candidates:
        if task_type == "look_at_obj_in_light":
            params = {"object_target": obj, "parent_target": "", "toggle_target": toggle}
            break
        parents = sorted(c for c in present if obj in contain.get(c, ()) and c != appliance)
        parents = [p for p in parents if holders(obj, exclude=p)]
        if parents:
            params = {"object_target": obj, "parent_target": rng.choice(parents), "toggle_target": ""}
            break
    if params is None:
        return None
    spec.params = {**params, "mrecep_target": "", "object_sliced": False}
    target, parent = spec.params["object_target"], spec.params["parent_target"] or None
    # objects: the target (two or more for pick_two), distractor classes, the lamp
    distractors = [o for o in pickupable if o != target and holders(o)]
    rng.shuffle(distractors)
    counts = {target: rng.randint(2, 3) if task_type == "pick_two_obj_and_place" else rng.randint(1, 2)}
    counts.update({o: rng.randint(1, 2) for o in distractors[:MAX_OBJECT_CLASSES]})
    for cls, n in counts.items():
        for k in range(1, n + 1):
            oid = _pddl_id(cls, k)
            spec.objects[oid] = cls
            spec.inside[oid] = rng.choice(holders(cls, exclude=parent if cls == target else None))
    if toggle:
        stands = [r for r, c in spec.receptacles.items() if c in LAMP_STANDS]
        lamp = _pddl_id(toggle, 1)
        spec.objects[lamp], spec.inside[lamp] = toggle, rng.choice(stands)
    return spec


def problem_pddl(spec: GameSpec) -> str:
    """The PDDL problem in ALFWorld's initial_state.pddl shape, with the package's goal."""
    import alfworld.gen.constants as C
    import alfworld.gen.goal_library as G

    rtypes = sorted(set(C.VAL_RECEPTACLE_OBJECTS) - MOVABLE_RECEPTACLES)
    otypes = sorted((set(C.OBJECTS) | {"DeskLamp", "FloorLamp"}) - set(rtypes))
    locs = {r: f"loc_bar_{i}" for i, r in enumerate(spec.receptacles, start=1)}
    lines = ["(define (problem plan_generated)", "(:domain alfred)", "(:objects", "agent1 - agent"]
    lines += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    lines += [f"{o} - object" for o in spec.objects] + [f"{r} - receptacle" for r in spec.receptacles]
    lines += [f"{loc} - location" for loc in locs.values()] + ["loc_bar_0 - location", ")", "(:init"]
    lines.append("(atLocation agent1 loc_bar_0)")
    for r, cls in spec.receptacles.items():
        lines += [f"(receptacleType {r} {cls}Type)", f"(receptacleAtLocation {r} {locs[r]})"]
        if cls in C.OPENABLE_CLASS_LIST:
            lines.append(f"(openable {r})")
    for rcls in sorted(set(spec.receptacles.values())):
        for ocls in sorted(set(spec.objects.values()) & set(C.VAL_RECEPTACLE_OBJECTS.get(rcls, ()))):
            lines.append(f"(canContain {rcls}Type {ocls}Type)")
    for o, cls in spec.objects.items():
        r = spec.inside[o]
        lines += [
            f"(objectType {o} {cls}Type)",
            f"(inReceptacle {o} {r})",
            f"(objectAtLocation {o} {locs[r]})",
        ]
        if cls in ("DeskLamp", "FloorLamp"):
            lines.append(f"(toggleable {o})")
            continue
        lines.append(f"(pickupable {o})")
        for affordance, pred in (
            ("Cleanable", "cleanable"),
            ("Heatable", "heatable"),
            ("Coolable", "coolable"),
            ("Sliceable", "sliceable"),
        ):
            if cls in C.VAL_ACTION_OBJECTS[affordance]:
                lines.append(f"({pred} {o})")
        if cls in MOVABLE_RECEPTACLES:
            lines.append(f"(isReceptacleObject {o})")
    lines.append(")")
    p = spec.params
    goal = G.gdict[spec.task_type]["pddl"].replace("#", "-")
    goal = goal.format(
        obj=p["object_target"], recep=p["parent_target"], toggle=p["toggle_target"], mrecep=p["mrecep_target"]
    )
    return "\n".join(lines) + "\n" + goal


def goal_text(spec: GameSpec, rng: random.Random) -> str:
    import alfworld.gen.goal_library as G

    p = spec.params
    template = rng.choice(G.gdict[spec.task_type]["templates"])
    return template.format(
        obj=p["object_target"].lower(),
        recep=p["parent_target"].lower(),
        toggle=p["toggle_target"].lower(),
        mrecep="",
    )


def write_game(spec: GameSpec, trial_dir: Path, rng: random.Random, seed: int) -> tuple[list[str], bool]:
    """Write game.tw-pddl + traj_data.json, play the handcoded expert, record its walkthrough.

    The expert is seeded with the game's name, as `AlfWorldEnv(expert="handcoded")` seeds it, so
    replaying the handcoded expert later gives this walkthrough again.
    """
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    tmp = trial_dir.with_name(trial_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    traj = {
        "task_type": spec.task_type,
        "pddl_params": spec.params,
        "scene": {"floor_plan": f"FloorPlan{spec.floor_plan}", "scene_num": spec.floor_plan},
        "generator": {"name": "actrl.envs.alfworld_gen", "seed": seed, "alfworld": alfworld_version()},
    }
    grammar = Path(ALFRED_TWL2_PATH).read_text().replace("UNKNOWN GOAL", goal_text(spec, rng))
    game = {
        "pddl_domain": Path(ALFRED_PDDL_PATH).read_text(),
        "grammar": grammar,
        "pddl_problem": problem_pddl(spec),
        "solvable": None,
        "walkthrough": None,
    }
    (tmp / "traj_data.json").write_text(json.dumps(traj, indent=1))
    (tmp / "game.tw-pddl").write_text(json.dumps(game))
    key = f"{trial_dir.parent.name}/{trial_dir.name}"
    actions, won = play_expert(tmp / "game.tw-pddl", "handcoded", seed=0, key=key, max_steps=MAX_EXPERT_STEPS)
    if not won:
        shutil.rmtree(tmp)
        return actions, False
    game["solvable"], game["walkthrough"] = True, actions
    (tmp / "game.tw-pddl").write_text(json.dumps(game))
    trial_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, trial_dir)
    return actions, True


def generate_one(root: Path, split: str, task_type: str, index: int, seed: int) -> Path:
    """Game `index` of (split, task type): deterministic in (seed, split, type, index); resumable."""
    trial = f"trial_s{seed}_{index:03d}"
    done = sorted((root / split).glob(f"{task_type}-*/{trial}"))
    if done:
        return done[0]
    plans = floor_plans(task_type, unseen=split == "valid_unseen")
    for attempt in range(MAX_ATTEMPTS):
        key = f"{seed}:{split}:{task_type}:{index}:{attempt}"
        rng = random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16))
        spec = sample_game(task_type, rng.choice(plans), rng)
        if spec is None:
            continue
        trial_dir = root / split / spec.dir_name / trial
        _, won = write_game(spec, trial_dir, rng, seed)
        if won:
            return trial_dir
    raise EnvError(
        f"no solvable {task_type} game after {MAX_ATTEMPTS} attempts ({split}, index {index}, seed {seed})"
    )


def generate(
    root: str | os.PathLike,
    seed: int = 0,
    counts: dict[str, int] | None = None,
    task_types: tuple[str, ...] = TASK_TYPES,
) -> Path:
    """Write `counts[split]` games per task type and split under `root`; returns `root`."""
    require_alfworld()
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = [s for s in counts if s not in SPLITS]
    if unknown:
        raise EnvError(f"unknown split '{unknown[0]}' in game counts; expected {', '.join(SPLITS)}")
    root = Path(root)
    manifest = {
        "generator": "actrl.envs.alfworld_gen",
        "seed": seed,
        "counts": counts,
        "task_types": list(task_types),
        "alfworld": alfworld_version(),
        "command_grammar": command_grammar(),
    }
    if (root / "manifest.json").exists() and json.loads((root / "manifest.json").read_text()) == manifest:
        return root
    for split in SPLITS:
        (root / split).mkdir(parents=True, exist_ok=True)
        for task_type in task_types:
            for i in range(counts.get(split, 0)):
                generate_one(root, split, task_type, i, seed)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


class AlfWorldGeneratedEnv(AlfWorldEnv):
    """ALFWorld's engine on games from this generator (made on first use, cached by their settings).

    Named apart from "alfworld" so its numbers are never presented as ALFWorld results.
    """

    name = "alfworld_generated"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        seed: int = 0,
        counts: dict[str, int] | None = None,
        expert: str = "walkthrough",
        task_types: list[str] | None = None,
    ) -> None:
        require_alfworld()
        counts = dict(DEFAULT_COUNTS if counts is None else counts)
        if root is None:
            from actrl.models.loading import cache_dir

            tag = "-".join(f"{s}{counts.get(s, 0)}" for s in SPLITS)
            root = cache_dir() / "alfworld_generated" / f"alfworld{alfworld_version()}-seed{seed}-{tag}"
        self.seed, self.counts = seed, counts
        generate(root, seed, counts)
        super().__init__(data_dir=root, expert=expert, task_types=task_types)

    def versions(self) -> dict[str, str]:
        return {
            **super().versions(),
            "alfworld_games": f"generated (actrl.envs.alfworld_gen, seed {self.seed})",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actrl.envs.alfworld_gen", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", required=True, help="directory to write <split>/<task>/<trial>/ games into")
    parser.add_argument("--seed", type=int, default=0)
    for split, n in DEFAULT_COUNTS.items():
        parser.add_argument(
            f"--{split.replace('_', '-')}", type=int, default=n, help=f"games per task type (default {n})"
        )
    args = parser.parse_args(argv)
    counts = {s: getattr(args, s) for s in SPLITS}
    root = generate(args.out, args.seed, counts)
    for split in SPLITS:
        print(f"{split}: {len(list((root / split).glob('*/*/game.tw-pddl')))} games")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
