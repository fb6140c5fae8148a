"""The layout's rules, checked: no import cycles, a self-contained core, explicit exports, no
import-time side effects, no function too long; and the README's module map (each module's
lines and docstring share) kept true.

The import graph is read from the source with ``ast`` (every ``import`` statement, also those
inside functions and under ``TYPE_CHECKING``), so a cycle that only a late import hides is
still found.
"""

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lstmlab

PACKAGE_ROOT = Path(lstmlab.__file__).resolve().parent
# The bottom layer that every layer may use, core included: the shared validators.
SHARED_BY_ALL = {"lstmlab.checks"}
# Third-party packages the core must not need (tables, plots and terminals are edge concerns).
NOT_IN_CORE = {"rich", "pandas", "matplotlib"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imported_names(name: str) -> set[str]:
    """Every module named by an import statement of module ``name`` (absolute names)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            # ``from lstmlab.report import figures`` imports the module lstmlab.report.figures
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def internal_imports(name: str) -> set[str]:
    """The lstmlab modules that module ``name`` imports (edges of the import graph)."""
    return {other for other in imported_names(name) if other in MODULES and other != name}


GRAPH = {name: internal_imports(name) for name in MODULES}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    # the check below cannot pass vacuously
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_late_and_relative_imports():
    # cli imports its handlers' modules lazily, inside functions: the graph still has them
    assert "lstmlab.keras_io" in GRAPH["lstmlab.cli"]
    assert "lstmlab.report.figures" in GRAPH["lstmlab.report.documents"]


def test_no_import_cycles_between_lstmlab_modules():
    assert find_cycles(GRAPH) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("lstmlab.core.")))
def test_core_imports_nothing_above_it(name):
    outside = {
        other
        for other in GRAPH[name]
        if not other.startswith("lstmlab.core") and other not in SHARED_BY_ALL
    }
    assert outside == set(), f"{name} imports {sorted(outside)} from above the core"
    third_party = {other.split(".")[0] for other in imported_names(name)} & NOT_IN_CORE
    assert third_party == set(), f"{name} imports {sorted(third_party)}"


# A namedtuple's own methods start with an underscore and are public.
NAMEDTUPLE_METHODS = {"_replace", "_asdict", "_fields", "_make"}


def private_reach_ins(source: str) -> list[str]:
    """Private names of other modules that ``source`` uses: ``from lstmlab.x import _name``,
    or ``obj._name`` on anything but ``self``/``cls`` where the module defines no ``_name``
    itself (its own class's private attribute, read on another instance, is its own)."""
    tree = ast.parse(source)
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)  # self._x = ... defines _x
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lstmlab"):
            found += [
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in NAMEDTUPLE_METHODS | own
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_the_reach_in_finder_finds_private_names_of_other_modules():
    source = (
        "from lstmlab.forecaster import _Data, Forecaster\n"
        "import lstmlab.state as store\n"
        "class Own:\n"
        "    def __init__(self): self._mine = 1\n"
        "    def same(self, other): return other._mine + self._mine\n"
        "def f(forecaster, row):\n"
        "    return forecaster._check_kind(), store._encode(), row._replace(a=1)\n"
    )
    assert private_reach_ins(source) == [
        "line 1: from lstmlab.forecaster import _Data",
        "line 7: ._check_kind",
        "line 7: ._encode",
    ]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_reaches_into_another_modules_private_names(name):
    # A private name is free to change: a module that calls one of another module's breaks
    # unseen. What modules share is public (an __all__ name), or it stays inside.
    assert private_reach_ins(MODULES[name].read_text(encoding="utf-8")) == []


# The floors, bottom up: a module imports modules of its own floor or below, never above. A
# new module must be given its floor here (the test below fails until it is).
FLOORS = (
    # the shared ground: validators, defaults, names (no lstmlab import of their own)
    {"lstmlab.checks", "lstmlab.defaults", "lstmlab._version", "lstmlab.core.norms"},
    # the numerical core: layers, models, the training driver, the rollout
    {"lstmlab.core", "lstmlab.core.layers", "lstmlab.core.model", "lstmlab.core.rollout"}
    | {"lstmlab.core.train"},
    # data, time, scores and the runtime (devices, progress)
    {"lstmlab.data", "lstmlab.data.calendar", "lstmlab.data.layouts", "lstmlab.data.loading"}
    | {"lstmlab.data.frames"}
    | {"lstmlab.data.scaling", "lstmlab.data.seasons", "lstmlab.scoring", "lstmlab.runtime"},
    # storage: the state store's interface and codec; the model folder, handed a store; the
    # SQLite and PostgreSQL stores, and the one that opens a folder's store
    {"lstmlab.live", "lstmlab.live.stores"},
    {"lstmlab.model_folder"},
    {"lstmlab.live.state_store", "lstmlab.live.postgres_store", "lstmlab.live.folder_store"},
    # the model specification and training pipeline; a series' state and its codec
    {"lstmlab.pipeline", "lstmlab.states", "lstmlab.stepping", "lstmlab.fitting"}
    | {"lstmlab.series_network"}
    | {"lstmlab.readings", "lstmlab.backtest", "lstmlab.plotting"},
    # the objects users hold
    {"lstmlab.forecaster", "lstmlab.keras_models", "lstmlab.keras_io"},
    # the service, and its HTTP front
    {"lstmlab.live.service"},
    {"lstmlab.live.http"},
    # the experiments
    {"lstmlab.experiments", "lstmlab.experiments.settings", "lstmlab.experiments.baselines"}
    | {"lstmlab.experiments.moving_average", "lstmlab.experiments.convergence"}
    | {"lstmlab.experiments.compare"},
    # the reports
    {"lstmlab.report", "lstmlab.report.documents", "lstmlab.report.figures"},
    # the edge: the command line and the package's lazy exports
    {"lstmlab.cli", "lstmlab.__main__", "lstmlab"},
)
FLOOR_OF = {name: level for level, floor in enumerate(FLOORS) for name in floor}


def test_every_module_has_one_floor():
    placed = [name for floor in FLOORS for name in floor]
    assert len(placed) == len(set(placed)), "a module is on two floors"
    assert set(placed) == set(MODULES), (
        f"modules without a floor: {sorted(set(MODULES) - set(placed))}; "
        f"floors naming no module: {sorted(set(placed) - set(MODULES))}"
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_floor_above_its_own(name):
    # ``from lstmlab import scoring`` names the package too: the lazy facade is no dependency
    above = sorted(
        other
        for other in imported_names(name)
        if other in FLOOR_OF and other != "lstmlab" and FLOOR_OF[other] > FLOOR_OF[name]
    )
    assert above == [], f"{name} (floor {FLOOR_OF[name]}) imports from floors above: {above}"


# A function's code, its docstring aside, fits in this many lines: a longer one does several
# things, each of which can be named. The ones that are one piece say why here.
LONGEST_FUNCTION = 100
LONG_FUNCTIONS = {
    "lstmlab.core.train._fit": "the driver's loop over epochs, one piece: every stage of an "
    "epoch (the compiled pass, early stopping, the plateau, a seed that stops) reads and "
    "writes the same carried state",
}


def function_lengths(source: str) -> dict[str, int]:
    """Every function's (and method's) body in lines, its docstring left out, by dotted name."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    body = child.body
                    first = body[0]
                    documented = isinstance(first, ast.Expr) and isinstance(
                        getattr(first, "value", None), ast.Constant
                    )
                    if documented and isinstance(first.value.value, str) and len(body) > 1:
                        first = body[1]
                    lengths[name] = child.end_lineno - first.lineno + 1
                visit(child, name + ".")

    visit(ast.parse(source), "")
    return lengths


def test_the_length_counter_leaves_docstrings_out_and_sees_methods():
    source = (
        "def short():\n"
        '    """A docstring\n\n    of four lines.\n    """\n'
        "    return 1\n"
        "class A:\n"
        "    def method(self):\n"
        "        x = 1\n"
        "        def inner():\n"
        "            return x\n"
        "        return inner\n"
    )
    assert function_lengths(source) == {"short": 1, "A.method": 4, "A.method.inner": 1}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_is_longer_than_the_limit_unless_it_says_why(name):
    lengths = function_lengths(MODULES[name].read_text(encoding="utf-8"))
    long = {
        f"{name}.{function}": length
        for function, length in lengths.items()
        if length > LONGEST_FUNCTION and f"{name}.{function}" not in LONG_FUNCTIONS
    }
    assert long == {}, (
        f"functions of more than {LONGEST_FUNCTION} lines of code: {long}; split them into "
        "named steps, or name them in LONG_FUNCTIONS with the reason they are one piece"
    )


def test_every_function_said_to_be_long_still_is():
    for dotted in LONG_FUNCTIONS:
        module, _, function = dotted.rpartition(".")
        while module not in MODULES:  # a method: the class is part of the name
            module, _, owner = module.rpartition(".")
            function = f"{owner}.{function}"
        length = function_lengths(MODULES[module].read_text(encoding="utf-8")).get(function, 0)
        assert length > LONGEST_FUNCTION, f"{dotted} has {length} lines: drop it from the list"


# --------------------------------------------------------------------------- the module map
# README's table of every module's size and docstring share: reported there, and checked here
# within a tolerance (so that an ordinary edit does not make it stale, a large one does).
# ``python tests/test_architecture.py`` prints the table as it is now.
SIZE_TOLERANCE = 0.15  # of a module's lines
SHARE_TOLERANCE = 0.05  # of its non-blank lines
MAPPED_MIN_LINES = 20  # package markers and one-liners stay out of the table
MAP_ROW = re.compile(r"^\| `([\w/]+\.py)` \| ([\d,]+) \| (\d+)% \|$", flags=re.M)


def docstring_share(source: str) -> tuple[int, float]:
    """A module's lines, and the share of its non-blank lines that are docstrings.

    Docstrings: the first statement of the module, a class or a function when it is a string.
    """
    doc: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    doc.update(range(first.lineno, first.end_lineno + 1))
    lines = source.splitlines()
    written = [number for number, line in enumerate(lines, 1) if line.strip()]
    return len(lines), sum(number in doc for number in written) / max(1, len(written))


def module_map() -> dict[str, tuple[int, float]]:
    """Every module of ``MAPPED_MIN_LINES`` lines or more: path -> (lines, docstring share)."""
    out = {}
    for path in MODULES.values():
        lines, share = docstring_share(path.read_text(encoding="utf-8"))
        if lines >= MAPPED_MIN_LINES:
            out[path.relative_to(PACKAGE_ROOT).as_posix()] = (lines, share)
    return dict(sorted(out.items()))


def module_table() -> str:
    rows = [f"| `{path}` | {n:,} | {share:.0%} |" for path, (n, share) in module_map().items()]
    return "\n".join(["| module | lines | docstrings |", "|:--|--:|--:|", *rows])


def test_the_docstring_counter_counts_module_class_and_function_docstrings():
    source = (
        '"""Module."""\n'
        "\n"
        "class A:\n"
        '    """Two\n'
        '    lines."""\n'
        "\n"
        "    def f(self):\n"
        '        x = "a string, not a docstring"\n'
        '        """nor this, after a statement"""\n'
        "        return x\n"
    )
    assert docstring_share(source) == (10, 3 / 8)


def test_readmes_module_map_reports_every_modules_size_and_docstring_share():
    readme = (PACKAGE_ROOT.parents[1] / "README.md").read_text(encoding="utf-8")
    written = {
        path: (int(lines.replace(",", "")), int(share) / 100)
        for path, lines, share in MAP_ROW.findall(readme)
    }
    actual = module_map()
    assert sorted(written) == sorted(actual), (
        f"README's module map lists {sorted(set(written) ^ set(actual))} wrongly; paste the "
        f"table `python tests/test_architecture.py` prints:\n{module_table()}"
    )
    stale = {
        path: (written[path], (lines, round(share, 2)))
        for path, (lines, share) in actual.items()
        if abs(written[path][0] - lines) > SIZE_TOLERANCE * lines
        or abs(written[path][1] - share) > SHARE_TOLERANCE
    }
    assert stale == {}, (
        f"README's module map is stale for {stale} (written, actual); paste the table "
        f"`python tests/test_architecture.py` prints:\n{module_table()}"
    )


def test_only_the_entry_point_imports_the_command_line():
    importers = {name for name, imports in GRAPH.items() if "lstmlab.cli" in imports}
    assert importers <= {"lstmlab.__main__"}


def static_all(name: str) -> list[str] | None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign) and node.value is not None
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_exports_its_public_names_with_all(name):
    names = static_all(name)
    assert names is not None, f"{name} defines no __all__ (a literal list of its public names)"
    assert len(names) == len(set(names)), f"{name}.__all__ lists a name twice"
    module = importlib.import_module(name)
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names {missing}, which {name} does not define"


SIDE_EFFECTS = r"""
import importlib, json, os, sys
import matplotlib
matplotlib.use("svg")  # a backend a notebook user might have chosen
before = sorted(os.listdir("."))
names = json.loads(sys.argv[1])
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "backend": matplotlib.get_backend(),
    "pyplot": "matplotlib.pyplot" in sys.modules,
    "files": sorted(os.listdir(".")) == before,
}))
"""


def test_importing_lstmlab_has_no_side_effects(tmp_path):
    names = ["lstmlab", *sorted(n for n in MODULES if n != "lstmlab")]
    done = subprocess.run(
        [sys.executable, "-c", SIDE_EFFECTS, json.dumps(names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.splitlines()
    assert printed == [], f"importing lstmlab printed {printed}"
    assert json.loads(last) == {"backend": "svg", "pyplot": False, "files": True}
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- lazy imports

HEAVY = ("jax", "pandas", "scipy", "statsforecast", "matplotlib", "fastapi")

LOADED_BY = r"""
import json, sys
from lstmlab.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
heavy = json.loads(sys.argv[1])
print(json.dumps({"code": code, "loaded": sorted(
    name for name in sys.modules if name.split(".")[0] in heavy and name.count(".") <= 2
)}))
"""


def loaded_by(argv, tmp_path, heavy=HEAVY):
    """The heavy modules (and their subpackages) ``lstmlab ARGV`` leaves imported."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_BY, json.dumps(heavy), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LSTMLAB_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    return result["code"], result["loaded"]


def test_the_import_check_sees_a_heavy_import(tmp_path):
    # cannot pass vacuously: fit's handler loads the forecaster (JAX) and the loader (pandas)
    # before it finds the CSV missing
    code, loaded = loaded_by(["fit", "missing.csv", "--target", "a", "--out", "m"], tmp_path)
    assert code == 2 and "jax" in loaded and "pandas" in loaded


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *(
            [command, "--help"]
            for command in ("moving-average", "convergence", "fit", "observe", "serve")
        ),
        ["import-keras", "--help"],
        ["export-keras", "--help"],
        ["compare", "--help"],
    ],
)
def test_help_and_version_import_no_numerical_stack(argv, tmp_path):
    code, loaded = loaded_by(argv, tmp_path)
    assert code == 0
    assert [name for name in loaded if name.split(".")[0] in HEAVY] == []


def test_moving_average_imports_no_statistics_nor_the_service(tmp_path):
    argv = ["moving-average", "--quiet", "--epochs", "1", "--input-len", "50", "--out", "run"]
    code, loaded = loaded_by(argv, tmp_path, heavy=(*HEAVY, "lstmlab"))
    assert code == 0 and "jax" in loaded
    # JAX's CPU LAPACK kernels (the QR of the orthogonal initialiser) load scipy.linalg;
    # the statistics (scipy.stats), the baselines and the service are another command's
    unwanted = {"scipy.stats", "scipy.signal", "statsforecast", "fastapi"}
    unwanted |= {"lstmlab.forecaster", "lstmlab.live.service", "lstmlab.live.http"}
    unwanted |= {"lstmlab.experiments.compare"}
    assert unwanted & set(loaded) == set()


def test_importing_the_state_store_or_the_package_imports_no_jax(tmp_path):
    code = (
        "import sys, lstmlab, lstmlab.live.state_store, lstmlab.runtime; "
        "print(sorted(m for m in ('jax', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_package_exports_load_on_first_use():
    lazy = set(lstmlab._SOURCES)
    assert lazy | {"__version__"} == set(lstmlab.__all__)
    for name, source in lstmlab._SOURCES.items():
        assert getattr(lstmlab, name) is getattr(importlib.import_module(source), name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        lstmlab.nothing  # noqa: B018


if __name__ == "__main__":
    print(module_table())
