"""Layering check: imports inside actrl only point down the layer table (DESIGN.md, "Layers").

    python -m actrl.devtools.layers        # prints the import graph; exit 1 listing upward imports

Every `import` / `from ... import` of an actrl module is read with `ast`, including imports inside
functions (the lazy ones that keep `actrl --help` instant). Imports by name string
(`importlib.import_module`, the command and stage tables) are not seen. Layers, bottom to top:

    0 config    actrl (the package), config, outputs, interrupts, actions, methods: small leaves
    1 models    models.*, envs.*: loading and generation; the environment protocol and adapters
    2 data      data.*: records, prompts, the critic question, expert collection, critic pairs
    3 train     train.*, eval.*: the stages and the evaluations of a policy
    4 pipeline  pipeline, report: recipes over stages; reports over run directories
    5 cli       cli, demo, devtools.*, every */cli.py: commands that only dispatch

A module may import its own layer or any below. Modules that carry their command as a section
(`add_arguments` / `run`, e.g. data.pairs, eval.pair_accuracy, pipeline) stay in their layer: a
command that only dispatches is a `cli.py`. ALLOWED lists the upward imports kept, with the reason.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "actrl"
LAYER_NAMES = ("config", "models", "data", "train", "pipeline", "cli")
_LAYER_OF = {  # first name under actrl -> layer; unlisted names are an error (add them here)
    "": 0, "config": 0, "outputs": 0, "interrupts": 0, "actions": 0, "methods": 0,
    "models": 1, "envs": 1,
    "data": 2,
    "train": 3, "eval": 3,
    "pipeline": 4, "report": 4,
    "cli": 5, "demo": 5, "devtools": 5,
}
ALLOWED: dict[tuple[str, str], str] = {}
"""(importer, imported) -> why this upward import stays."""
SIDEWAYS_FORBIDDEN = {("eval", "train"): "an evaluation judges a policy and never needs a training stage"}
"""(importer's subpackage, imported subpackage) in one layer that must not import each other that way."""


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. actrl.eval.pair_accuracy
    imported: str
    line: int


def layer(module: str) -> int:
    """The layer of a dotted actrl module name."""
    parts = module.split(".")[1:]
    if parts and parts[-1] == "cli":
        return len(LAYER_NAMES) - 1
    head = parts[0] if parts else ""
    if head not in _LAYER_OF:
        raise KeyError(f"{module}: not in the layer table of actrl.devtools.layers; add '{head}' to _LAYER_OF")
    return _LAYER_OF[head]


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under `root` (the actrl package directory)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The longest known module a dotted import names (`actrl.data.prompts.same_action` -> the module)."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(root: Path) -> list[Import]:
    """Every import of an actrl module by an actrl module, at any depth of the file's code."""
    known = modules(root)
    found: set[Import] = set()
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    imported = _resolve(target, known)
                    if imported != module:
                        found.add(Import(module, imported, node.lineno))
    return sorted(found, key=lambda i: (i.importer, i.line, i.imported))


def unit(module: str) -> str:
    """The graph node of a module: its subpackage (`data`), a top-level module, or a `*.cli`."""
    parts = module.split(".")[1:]
    if len(parts) > 1 and parts[-1] == "cli":
        return f"{parts[0]}.cli"
    return parts[0] if parts else PACKAGE


def _head(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward(found: list[Import]) -> list[Import]:
    """The imports that point up the layer table (or across a SIDEWAYS_FORBIDDEN edge), not in ALLOWED."""
    return [i for i in found
            if (layer(i.imported) > layer(i.importer) or (_head(i.importer), _head(i.imported)) in SIDEWAYS_FORBIDDEN)
            and (i.importer, i.imported) not in ALLOWED and layer(i.importer) != len(LAYER_NAMES) - 1]


def graph(found: list[Import]) -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for i in found:
        if unit(i.imported) != unit(i.importer):
            edges[unit(i.importer)].add(unit(i.imported))
    return edges


def main(root: Path | None = None) -> int:
    root = root or Path(__file__).resolve().parents[1]
    found = imports(root)
    layer_of = {unit(m): layer(m) for m in modules(root)}
    edges = graph(found)
    for u in sorted(layer_of, key=lambda u: (layer_of[u], u)):
        n = layer_of[u]
        print(f"L{n} {LAYER_NAMES[n]:<8} {u:<12} -> {', '.join(sorted(edges.get(u, ()))) or '-'}")
    for (importer, imported), why in ALLOWED.items():
        print(f"allowed upward: {importer} -> {imported}: {why}")
    bad = upward(found)
    for i in bad:
        path = modules(root)[i.importer].relative_to(root.parent)
        why = SIDEWAYS_FORBIDDEN.get((_head(i.importer), _head(i.imported)))
        print(f"{path}:{i.line}: {i.importer} (L{layer(i.importer)} {LAYER_NAMES[layer(i.importer)]}) imports "
              f"{i.imported} (L{layer(i.imported)} {LAYER_NAMES[layer(i.imported)]}): "
              + (f"forbidden ({why})" if why and layer(i.imported) <= layer(i.importer) else "upward"))
    print(f"{len(found)} imports, {len(bad)} upward" + (f", {len(ALLOWED)} allowed" if ALLOWED else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
