"""The rules of docs/ARCHITECTURE.md ("Layers and the service boundary"), read from the
source with `ast` (nothing is imported, so a module that does not even load is still read):

- imports point down: `app` → `experiments` → `bandits`; `bandits` imports nothing of ours,
  `experiments` never imports `app`, and nothing imports `bench` or `tests`;
- no import loop between packages (a sub-package such as `experiments/logio` is one node,
  a module directly in `app/` or `experiments/` is a node of its own);
- `.commit()` only in `experiments/` (the services, which own their unit of work) and the
  CLI (`app/cli*.py`);
- the median public service function takes at most 4 parameters;
- an experiment's stored configuration is read by key only where it is parsed
  (`experiments/config.py`) or validated (`experiments/validation.py`): everything else
  reads the typed `ExperimentConfig`.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = {"bandits": 0, "experiments": 1, "app": 2}  # a module may import its layer or below
NEVER_IMPORTED = {"bench", "tests"}
# (path, why): `.commit()` outside the services and the CLI, each justified. None today.
COMMIT_EXCEPTIONS: dict[str, str] = {}
MAX_MEDIAN_PARAMETERS = 4
# Where the stored configuration (JSON) may be read by key: its parser and its validation.
CONFIG_READERS = {"experiments/config.py", "experiments/validation.py"}
# What holds stored configuration JSON: `<row>.config` (an experiment or a history row),
# `<part>.raw` (a typed part's stored object) and a name bound to either, or named config.
CONFIG_ATTRIBUTES = {"config", "raw"}
KEY_METHODS = {"get", "setdefault", "pop"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. experiments.logio.export
    path: Path
    is_package: bool  # an __init__.py

    @property
    def relative(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Import:
    source: Module
    target: str  # the dotted module of ours it resolves to
    line: int


def _modules() -> dict[str, Module]:
    found = {}
    for top in (*LAYER, *NEVER_IMPORTED):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            found[name] = Module(name, path, is_package)
    return found


MODULES = _modules()
TREES = {name: ast.parse(m.path.read_text(), str(m.path)) for name, m in MODULES.items()}
SOURCE = [m for m in MODULES.values() if m.name.split(".")[0] in LAYER]


def _resolve(name: str) -> str | None:
    """The module of ours that `name` (a module or a name inside one) is, else None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    base = base if module.is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported_names(module: Module) -> Iterator[tuple[str, int]]:
    """Every module named by an import statement (at any depth: lazy imports count) or by
    `importlib.import_module("...")` with a literal."""
    for node in ast.walk(TREES[module.name]):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def imports(module: Module) -> list[Import]:
    found = {}
    for name, line in _imported_names(module):
        target = _resolve(name)
        if target is not None and target != module.name:
            found.setdefault(target, Import(module, target, line))
    return list(found.values())


def layer_breaches(modules: list[Module]) -> list[str]:
    wrong = []
    for module in modules:
        layer = module.name.split(".")[0]
        for imp in imports(module):
            top = imp.target.split(".")[0]
            if top in NEVER_IMPORTED or LAYER[top] > LAYER[layer]:
                wrong.append(f"{module.relative}:{imp.line} imports {imp.target}")
    return wrong


def test_imports_point_down_the_layers():
    wrong = layer_breaches(SOURCE)
    assert wrong == [], "imports against the layers (app → experiments → bandits):\n" + \
        "\n".join(wrong)


def node_of(name: str) -> str:
    """The package a module counts in: its sub-package (`experiments.logio`), or the module
    itself when it sits directly in a top-level package (`experiments.ranking`)."""
    parts = name.split(".")
    return ".".join(parts[:2])


def package_graph() -> dict[str, dict[str, list[str]]]:
    """node -> node it imports -> the `path:line` of those imports."""
    graph: dict[str, dict[str, list[str]]] = {}
    for module in SOURCE:
        source = node_of(module.name)
        for imp in imports(module):
            target = node_of(imp.target)
            if target != source and "." in target:  # `import app` alone names no package
                graph.setdefault(source, {}).setdefault(target, []).append(
                    f"{module.relative}:{imp.line}")
    return graph


def loops(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loop_between_packages():
    graph = package_graph()
    described = []
    for component in loops(graph):
        edges = [f"  {a} -> {b} ({', '.join(graph[a][b][:3])})"
                 for a in component for b in component if b in graph.get(a, {})]
        described.append(" <-> ".join(component) + "\n" + "\n".join(edges))
    assert described == [], "import loops:\n" + "\n".join(described)


def test_the_loop_finder_finds_a_loop():
    graph = {"a.x": {"a.y": ["p:1"]}, "a.y": {"a.z": ["p:2"]}, "a.z": {"a.x": ["p:3"]},
             "a.w": {"a.x": ["p:4"]}}
    assert loops(graph) == [["a.x", "a.y", "a.z"]]


def commit_calls(module: Module) -> list[int]:
    """Lines of `<anything>.commit()` calls."""
    return [node.lineno for node in ast.walk(TREES[module.name])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit" and not node.args]


def may_commit(module: Module) -> bool:
    parts = module.relative.split("/")
    return parts[0] == "experiments" or (parts[0] == "app" and len(parts) == 2
                                         and parts[1].startswith("cli"))


def commit_breaches(modules: list[Module]) -> list[str]:
    return [f"{m.relative}:{line}" for m in modules if not may_commit(m)
            and m.relative not in COMMIT_EXCEPTIONS for line in commit_calls(m)]


def test_only_services_and_the_cli_commit():
    wrong = commit_breaches(SOURCE)
    assert wrong == [], ("commit() outside experiments/ services and app/cli*.py: move it "
                         "into a service that takes a command:\n" + "\n".join(wrong))


def test_every_commit_exception_still_commits():
    for path, why in COMMIT_EXCEPTIONS.items():
        module = next(m for m in SOURCE if m.relative == path)
        assert why and commit_calls(module), path


def service_modules() -> list[Module]:
    """Modules of `experiments/` that own a unit of work (commit) or define the commands
    their services take (`*_commands.py`)."""
    return [m for m in SOURCE if m.name.startswith("experiments.")
            and (commit_calls(m) or m.name.endswith("_commands"))]


def public_parameter_counts(module: Module) -> dict[str, int]:
    counts = {}
    for node in TREES[module.name].body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                and not node.name.startswith("_"):
            args = node.args
            counts[node.name] = (len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
                                 + (args.vararg is not None) + (args.kwarg is not None))
    return counts


def median_service_parameters() -> tuple[float, int]:
    """The median parameter count of public service functions, and how many there are."""
    counts = [n for m in service_modules() for n in public_parameter_counts(m).values()]
    return statistics.median(counts), len(counts)


def test_the_median_service_function_takes_at_most_four_parameters():
    median, functions = median_service_parameters()
    assert functions >= 50  # the services were found
    assert median <= MAX_MEDIAN_PARAMETERS, median


def _holds_config(node: ast.AST, aliases: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in CONFIG_ATTRIBUTES
    return isinstance(node, ast.Name) and (node.id == "config" or node.id in aliases)


def _config_aliases(tree: ast.AST) -> set[str]:
    """Names bound to a configuration anywhere in the module (`cfg = experiment.config`)."""
    return {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and _holds_config(node.value, set()) for target in node.targets
            if isinstance(target, ast.Name)}


def _key_read(node: ast.AST) -> tuple[ast.AST, str] | None:
    """(what is read, the key) of `x["key"]` and `x.get("key", ...)` (also setdefault, pop)."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.value, node.slice.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in KEY_METHODS and node.args
            and isinstance(node.args[0], ast.Constant)):
        return node.func.value, node.args[0].value
    return None


def config_key_reads(modules: list[Module]) -> list[str]:
    """`path:line reads config["key"]` for each read of a stored experiment configuration by
    key outside its parser and validation. Flask's settings (`app.config["MAX_ACTIONS"]`)
    are upper-case keys: not an experiment's, so not counted."""
    wrong = []
    for module in modules:
        if module.relative in CONFIG_READERS:
            continue
        tree = TREES[module.name]
        aliases = _config_aliases(tree)
        found = []
        for node in ast.walk(tree):
            read = _key_read(node)
            if read is not None and isinstance(read[1], str) and not read[1].isupper() \
                    and _holds_config(read[0], aliases):
                found.append((node.lineno, f"reads config[{read[1]!r}]"))
        wrong += [f"{module.relative}:{line} {what}" for line, what in sorted(found)]
    return wrong


def test_the_configuration_is_read_typed():
    wrong = config_key_reads(SOURCE)
    assert wrong == [], ("an experiment's configuration read by key: read the typed "
                         "ExperimentConfig (`experiment.settings`, experiments.config):\n"
                         + "\n".join(wrong))


BREACHES = [  # (module, its source, the rule's complaint)
    ("bandits.breach", "from app import db\n", layer_breaches,
     ["bandits/breach.py:1 imports app", "bandits/breach.py:1 imports app.db"]),
    ("experiments.breach", "def f():\n    from tests import conftest\n", layer_breaches,
     ["experiments/breach.py:2 imports tests", "experiments/breach.py:2 imports tests.conftest"]),
    ("app.api.breach", "def f(session):\n    session.commit()\n", commit_breaches,
     ["app/api/breach.py:2"]),
    ("experiments.breach",
     "def f(experiment, app):\n    window = experiment.config['reward']['window_seconds']\n"
     "    cfg = experiment.config\n    mode = cfg.get('learner', {})\n"
     "    raw = experiment.settings.service.raw.get('log_mirror')\n"
     "    size = app.config['MAX_ACTIONS']\n", config_key_reads,
     ["experiments/breach.py:2 reads config['reward']",
      "experiments/breach.py:4 reads config['learner']",
      "experiments/breach.py:5 reads config['log_mirror']"]),
]


@pytest.mark.parametrize(("name", "source", "rule", "complaint"), BREACHES,
                         ids=[b[0] for b in BREACHES])
def test_the_rules_catch_a_breach(name, source, rule, complaint):
    """A rule that cannot fail proves nothing: feed each one a module that breaks it."""
    fake = Module(name, ROOT.joinpath(*name.split(".")).with_suffix(".py"), False)
    TREES[name] = ast.parse(source)
    try:
        assert rule([fake]) == complaint
    finally:
        del TREES[name]


def test_the_cli_may_commit():
    assert may_commit(Module("app.cli_x", ROOT / "app" / "cli_x.py", False))
    assert not may_commit(Module("app.web.cli", ROOT / "app" / "web" / "cli.py", False))
