"""The layers of the package, as ARCHITECTURE.md draws them, enforced over the import graph.

Every import counts, including the ones deferred into functions for start-up
speed; only imports under `if TYPE_CHECKING:` (type hints, never executed) are
exempt.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dvcckpt"

SERVICES = {"cards", "catalog", "promotion", "storage"}
# Which dvcckpt areas each area may import (its own area is always allowed).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "adapters": {"core", "errors"},
    "project": {"core", "adapters", "errors", "catalog"},  # the project owns one Catalog
    "present": {"core", "errors"},
    "cards": {"core", "adapters", "project", "errors"},
    "catalog": {"core", "adapters", "project", "errors"},
    "promotion": {"core", "adapters", "project", "errors"},
    "storage": {"core", "adapters", "project", "errors"},
    # Outward views of the registry (the static site, the organisation's warehouse) read
    # every service.
    "publish": {"core", "adapters", "project", "errors", *SERVICES},
    "api": {"cards", "catalog", "storage", "project", "core", "errors"},
    # Framework callbacks register through the Python face, like any training loop.
    "integrations": {"api", "cards", "core", "errors", "project"},
    "setup": {"core", "adapters", "project", "errors", *SERVICES},
    "cli": {
        "core",
        "adapters",
        "project",
        "errors",
        "present",
        "setup",
        "publish",
        "api",
        "dvcckpt",
        *SERVICES,
    },
    "dvcckpt": {"api", "cards", "catalog"},  # the package's lazy public attributes
    "__main__": {"cli"},
}
# Services that use one another, and why (ARCHITECTURE.md lists the same).
SERVICE_EDGES = {
    ("cards", "promotion"),  # MODEL@STAGE resolves through the stage holders
    ("cards", "catalog"),  # NAME@REV resolves through the catalog
    ("cards", "storage"),  # doctor reports risky remote settings
    ("promotion", "cards"),  # decisions are appended to resolved cards
    ("promotion", "catalog"),  # stage history is replayed from the catalog
    ("storage", "cards"),  # storage resolves references to cards
    ("storage", "promotion"),  # push/pull --stage and MODEL@STAGE
}
# Single modules that cross a layer line, and why.
MODULE_EDGES = {
    # The model card's YAML front matter is written by the one canonical YAML dumper.
    ("dvcckpt.present.modelcard", "dvcckpt.adapters.yamldoc"),
}
# Third-party or standard-library modules that only one area may import.
CONFINED = {
    "click": {"cli"},
    "dvc": {"adapters"},
    "subprocess": {"adapters", "setup"},  # setup: the demo runs its training script
    "sqlite3": {"catalog", "adapters"},  # adapters: the Iceberg SQL catalog read without pyiceberg
    "jsonschema": {"core"},
    "ruamel": {"adapters"},
    "yaml": {"adapters"},
    "yaml_rs": {"adapters"},
    "transformers": {"integrations"},
    "lightning": {"integrations"},
    "pytorch_lightning": {"integrations"},
    "pyiceberg": {"adapters"},
    "pyarrow": {"adapters"},
    "duckdb": {"adapters"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def runtime_imports(path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import executed at some point (not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "dvcckpt" or (base.startswith("dvcckpt.") and _is_package(base)):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    yield (candidate if _exists(candidate) else base), node.lineno
            else:
                yield base, node.lineno


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def _is_package(module: str) -> bool:
    return (PACKAGE / Path(*module.split(".")[1:])).is_dir()


def graph() -> dict[str, list[tuple[str, int]]]:
    return {
        module_name(path): list(runtime_imports(path)) for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_layers_import_only_what_they_may() -> None:
    wrong = []
    for module, imports in graph().items():
        mine = area(module)
        for target, line in imports:
            if not target.startswith("dvcckpt"):
                continue
            theirs = area(target)
            if (
                theirs == mine
                or theirs in ALLOWED[mine]
                or (mine, theirs) in SERVICE_EDGES
                or (module, target) in MODULE_EDGES
            ):
                continue
            wrong.append(f"{module}:{line} imports {target} ({mine} -> {theirs})")
    assert not wrong, "\n".join(wrong)


def test_heavy_and_io_modules_stay_in_their_layer() -> None:
    wrong = []
    for module, imports in graph().items():
        for target, line in imports:
            top = target.split(".")[0]
            if top in CONFINED and area(module) not in CONFINED[top]:
                wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_core_is_standard_library_and_jsonschema_only() -> None:
    stdlib = sys.stdlib_module_names
    wrong = [
        f"{module}:{line} imports {target}"
        for module, imports in graph().items()
        if area(module) == "core"
        for target, line in imports
        if not target.startswith("dvcckpt") and target.split(".")[0] not in {*stdlib, "jsonschema"}
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    edges = {
        module: {t for t, _ in imports if t.startswith("dvcckpt.") and t != module}
        for module, imports in graph().items()
    }
    # Importing a subpackage runs its __init__: an edge to a package is an edge to __init__.
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_no_module_is_a_monolith(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 420, f"{module_name(path)} has {lines} lines: split it along its seams"
