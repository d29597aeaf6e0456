"""The package layout keeps its promises: small modules and functions, no private name used across
modules, no hidden import circles (function-level imports of made's own modules), packages that import
only their own layer or lower ones, with no circle between them, and a command line that only parses,
calls the library and prints."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "made"
MAX_MODULE_LINES = 600  # lines as `ruff format` lays them out (about a third more than the dense style before it)
MAX_FUNCTION_LINES = 80  # formatted lines, as MAX_MODULE_LINES
# Functions allowed over MAX_FUNCTION_LINES, each with why it stays whole.
LONG_FUNCTIONS: dict[str, str] = {
    "plots.py:_draw_network": "one picture, drawn layer by layer; its steps share the figure's coordinates",
}
# Function-level imports of made's own modules, each with why it is not at the top.
LATE_IMPORTS: dict[str, str] = {
    "tune/search.py:open_study": (
        "made.tune.pruning subclasses Optuna's pruner and so imports optuna, an optional dependency"
    ),
}


# made's packages (and top-level modules), lowest layer first: each may import only from its own layer
# or lower ones, and the imports between packages form no circle.
LAYERS: list[set[str]] = [
    {"families", "fast"},
    {"model"},
    {"inference"},
    {"data", "io", "training"},
    {"config", "plots", "sklearn"},
    {"pipeline", "tune"},
    {"cli"},
    {"made", "__main__"},  # the package's own face: `from made import MADE`, `python -m made`
]
# Package imports allowed against the layers, each with why it stays for now.
LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {}
# What the command line may import: it parses (its options come from made.config), calls the pipeline and
# tuning, and prints (pictures included). From made.io.run it may take the names of run-folder files, which
# its help texts name, and nothing else.
CLI_IMPORTS = {"cli", "pipeline", "tune", "config", "plots"}
# Command-line modules allowed more for now, each with why.
CLI_EXCEPTIONS: dict[str, str] = {
    "cli/tune.py": "asks made.io.run about its folder (started_by_train, trial_folder); that moves into made.tune "
    "with the folder-safety work on this file (issue 22)",
    "cli/mix.py": "asks made.io.run about its folder (holds_run, is_mixture); that moves into made.tune.mixing "
    "with the folder-safety work on this file (issue 22)",
}


def modules() -> list[Path]:
    """Every module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    """A module's path relative to the package, as the allow-lists write it."""
    return path.relative_to(PACKAGE).as_posix()


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function and method of a module, nested ones included."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def imports_made(node: ast.Import | ast.ImportFrom) -> bool:
    """Whether an import statement imports one of made's own modules."""
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "made"
    return any(alias.name.split(".")[0] == "made" for alias in node.names)


def is_private(name: str) -> bool:
    """``_name`` but not ``__dunder__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_is_too_long():
    lengths = {name_of(p): len(p.read_text().splitlines()) for p in modules()}
    assert {n: k for n, k in lengths.items() if k > MAX_MODULE_LINES} == {}


def test_no_function_is_too_long_unless_named():
    long = {}
    for path in modules():
        for node in functions(ast.parse(path.read_text())):
            length = node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1
            if length > MAX_FUNCTION_LINES:
                long[f"{name_of(path)}:{node.name}"] = length
    assert set(long) == set(LONG_FUNCTIONS), long


def private_uses(source: str) -> list[str]:
    """Where a module imports a ``_private`` name from made's own modules, or reads one off a name it
    imported from them (``schema._check``, ``MADE._params``)."""
    tree = ast.parse(source)
    imported, used = set(), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and imports_made(node):
            for alias in node.names:
                imported.add((alias.asname or alias.name).split(".")[0])
                if is_private(alias.name.split(".")[-1]):
                    used.append(f"{node.lineno}: imports {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
            and is_private(node.attr)
        ):
            used.append(f"{node.lineno}: reads {node.value.id}.{node.attr}")
    return used


def late_imports(source: str) -> list[str]:
    """The functions of a module that import one of made's own modules, and where."""
    return [
        f"{function.name}:{node.lineno}"
        for function in functions(ast.parse(source))
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and imports_made(node)
    ]


def test_the_checks_find_what_they_look_for():
    source = (
        "from .x import _y, z\nimport made.w as w\nimport torch\n"
        "def f():\n    from ..v import u\n    return z._a, w._b, torch._c, z.__doc__\n"
    )
    assert private_uses(source) == ["1: imports _y", "6: reads z._a", "6: reads w._b"]
    assert late_imports(source) == ["f:5"]


def test_no_private_name_is_used_across_modules():
    used = {name_of(p): private_uses(p.read_text()) for p in modules()}
    assert {n: u for n, u in used.items() if u} == {}


def test_made_modules_are_imported_at_the_top_unless_named():
    late = {f"{name_of(p)}:{place.split(':')[0]}": place for p in modules() for place in late_imports(p.read_text())}
    assert set(late) == set(LATE_IMPORTS), late


def run_folder_names() -> set[str]:
    """Every file and folder name of a run folder, as :mod:`made.io.run` spells them."""
    run = importlib.import_module("made.io.run")
    return {value for name in run.__all__ if isinstance(value := getattr(run, name), str)}


def run_folder_literals(source: str, names: set[str]) -> list[str]:
    """Where a module spells a run-folder name in a string (docstrings aside): a string that is a folder
    or file name, or one that holds a file name (``f"{run}/config.json"``, a help text naming it)."""
    tree = ast.parse(source)
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    files = {n for n in names if "." in n}
    return [
        f"{node.lineno}: {node.value!r:.60}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and (node.value in names or any(f in node.value for f in files))
    ]


def test_the_run_folder_names_check_finds_them():
    names = {"config.json", "members"}
    source = (
        '"""Reads config.json."""\nA = "members"\nB = f"{x}/config.json"\nC = "no members here"\n'
        'def f():\n    "the config.json docstring"\n    return "config.json"\n'
    )
    assert run_folder_literals(source, names) == ["2: 'members'", "3: '/config.json'", "7: 'config.json'"]


def test_only_the_run_module_spells_run_folder_names():
    names = run_folder_names()
    assert {
        "config.json",
        "model.safetensors",
        "metrics.json",
        "log.jsonl",
        "args.json",
        "state.json",
        "study.db",
        "members",
        "checkpoint",
        "trials",
    } <= names
    spelled = {name_of(p): run_folder_literals(p.read_text(), names) for p in modules() if name_of(p) != "io/run.py"}
    assert {n: s for n, s in spelled.items() if s} == {}


def module_name(path: Path) -> str:
    """A module's dotted name (``made.model.made``; a package's ``__init__`` is the package)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(name: str) -> str:
    """The package (or top-level module) a dotted name of made belongs to: ``made.model.made`` is ``model``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "made"


def imported_packages(source: str, name: str, is_package: bool) -> set[str]:
    """Every package of made that the module ``name`` imports anywhere: at the top, in functions, under
    ``if TYPE_CHECKING:``. ``from made import __version__`` (set before the package imports anything) is
    not counted."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {package_of(a.name) for a in node.names if a.name.split(".")[0] == "made"}
        elif isinstance(node, ast.ImportFrom) and imports_made(node):
            if node.level:
                base = name.split(".")[: len(name.split(".")) + is_package - node.level]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target == "made":  # from made import x: x is a package, a module or a name of made/__init__.py
                for alias in node.names:
                    if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file():
                        found.add(alias.name)
                    elif alias.name != "__version__":
                        found.add("made")
            else:
                found.add(package_of(target))
    return found


def package_imports() -> dict[str, set[str]]:
    """The package-level import graph of made: package -> the other packages its modules import."""
    graph: dict[str, set[str]] = {}
    for path in modules():
        name = module_name(path)
        source = package_of(name) if name != "made" else "made"
        imported = imported_packages(path.read_text(), name, path.name == "__init__.py")
        graph.setdefault(source, set()).update(imported - {source})
    return graph


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of ``graph`` found by a depth-first walk (empty when the graph is acyclic)."""
    found, state = [], {}
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return found


def test_the_package_graph_reads_every_kind_of_import():
    source = (
        "from typing import TYPE_CHECKING\nfrom .. import __version__\nfrom ..io.run import x\n"
        "import made.data.splits\nfrom . import eval\nif TYPE_CHECKING:\n    from ..model import MADE\n"
        "def f():\n    from ..families import y\n    from made import tune\n"
    )
    assert imported_packages(source, "made.cli.main", False) == {"io", "data", "cli", "model", "families", "tune"}
    assert imported_packages("from .model import MADE\n", "made", True) == {"model"}
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    names, loader = ast.parse(
        "from ..io.run import ARGS_FILE, CONFIG_FILE\nfrom ..io.run import ARGS_FILE, load_run"
    ).body
    assert names_run_folder_files(names) and not names_run_folder_files(loader)


def test_every_package_has_a_layer():
    assert {p for p in package_imports() if not any(p in layer for layer in LAYERS)} == set()


def test_packages_import_only_their_layer_or_lower_ones():
    upward = {
        (source, target)
        for source, targets in package_imports().items()
        for target in targets
        if layer_of(target) > layer_of(source)
    }
    assert upward == set(LAYER_EXCEPTIONS)


def test_no_import_circle_between_packages():
    graph = package_imports()
    for source, target in LAYER_EXCEPTIONS:
        graph[source].discard(target)
    assert circles(graph) == []


def names_run_folder_files(node: ast.AST) -> bool:
    """Whether an import takes only constants (upper-case names: the run folder's file names) from made.io.run."""
    return (
        isinstance(node, ast.ImportFrom)
        and (node.module or "").endswith("io.run")
        and all(alias.name.isupper() for alias in node.names)
    )


def test_the_command_line_calls_only_the_pipeline_and_tuning():
    beyond = {}
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        tree.body = [n for n in tree.body if not names_run_folder_files(n)]
        imported = imported_packages(ast.unparse(tree), module_name(path), path.name == "__init__.py")
        if imported - CLI_IMPORTS:
            beyond[name_of(path)] = imported - CLI_IMPORTS
    assert set(beyond) == set(CLI_EXCEPTIONS), beyond
