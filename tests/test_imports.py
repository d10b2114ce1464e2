"""The import graph of padlib has no cycle: imports only go down (config -> builders -> loop -> run dir ->
evaluator). Imports inside functions count too: a cycle hidden behind a lazy import is still a cycle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "padlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The padlib modules ``path`` imports, with the packages whose __init__ an import runs."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & modules
    # a module's own packages are already being imported when it runs: no edge back to them
    own = module_name(path).split(".")
    return found - {".".join(own[:i]) for i in range(1, len(own) + 1)}


def test_no_import_cycles():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: imported(p, set(files)) for m, p in files.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join([*stack[stack.index(n):], n]))
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# docs/ARCHITECTURE.md's floors, bottom first; report/'s own four floors sit inside floor 5
FLOORS = {
    1: ["errors", "fileio", "provenance", "configcheck"],
    2: ["", "padding", "checkpoint", "rundir", "run_naming"],
    3: ["models", "data", "starting_weights"],
    4: ["engine", "audit"],
    5.1: ["report", "report.collect", "report.power", "report.stats", "report.writers", "report.paper",
          "report.eval_cache", "report.activations"],
    5.2: ["report.summary", "report.weights", "report.figures"],
    5.3: ["report.tables", "report.plan", "report.timing", "report.run_timing", "report.cell_check",
          "report.per_image", "report.checkpoint_eval", "report.border_score"],
    5.4: ["report.checkpoint_tables", "report.cross", "report.resolution", "report.figure_report"],
}


FLOOR_OF = {m: floor for floor, names in FLOORS.items() for m in names}


def floor_of(module: str) -> float | None:
    """The floor of a padlib module: its own entry, else its package's (``padlib.padding.mode`` -> 2)."""
    name = module.removeprefix("padlib").removeprefix(".")
    while name not in FLOOR_OF and name:
        name = name.rpartition(".")[0]
    return FLOOR_OF.get(name)


def test_imports_only_go_down_the_floors():
    """Every module has a floor, and imports nothing from a floor above its own (lazy imports included)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    unplaced = sorted(m for m in files if floor_of(m) is None)
    assert not unplaced, f"modules with no floor (add them to FLOORS and docs/ARCHITECTURE.md): {unplaced}"
    upward = [f"{m} (floor {floor_of(m)}) imports {n} (floor {floor_of(n)})"
              for m, p in sorted(files.items()) for n in sorted(imported(p, set(files))) if floor_of(n) > floor_of(m)]
    assert not upward, "imports that go up:\n" + "\n".join(upward)
