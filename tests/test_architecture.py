"""The shape of the code: no import cycles, and imports only go down the floors.

``FLOORS`` is the one statement of the layering; docs/ARCHITECTURE.md carries the same
table (``test_the_architecture_doc_mirrors_the_floors`` fails when they differ, and prints
the table to paste). A package may import packages on the floors below its own, never a
package on its own floor or above.

What counts as an import: every ``import``/``from ... import`` anywhere in a module —
at the top, inside a function (a lazy import is still a dependency: it only moves the
moment the knot is tied), and under ``if TYPE_CHECKING:`` (a type-only import still
says one module needs the other to be understood; if it did not count, it would become
the way to hide a cycle). Imports are read with ``ast``; nothing is imported.

A "package" is ``privet.<name>`` (a subpackage or a top-level module such as
``privet.runtime``), the root module ``privet`` (the version), or ``privet_audit``
(the offline verifier, as one unit).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = (REPO / "platform", REPO / "audit")
DOC = REPO / "docs" / "ARCHITECTURE.md"


@dataclass(frozen=True)
class Floor:
    name: str
    packages: tuple[str, ...]
    owns: str


#: Top to bottom. docs/ARCHITECTURE.md mirrors this table (see ``floors_table``).
FLOORS: tuple[Floor, ...] = (
    Floor(
        "console",
        ("privet.console",),
        "the web console: server-rendered pages over the API's guard and the same domain "
        "services, browser sessions, CSRF and security headers; its gateway mounts the API "
        "at /v1 and the console at / (`privet serve` runs it by name); nothing imports it",
    ),
    Floor(
        "interfaces",
        ("privet.api", "privet.cli"),
        "the HTTP API (app, guard, problems, thin routes) and the `privet` command line "
        "(a client of the API, plus server commands); nothing imports them",
    ),
    Floor(
        "wiring",
        ("privet.devdata", "privet.runtime"),
        "the process-wide objects built once from Settings (engine, keys, blob store, "
        "authorizer), and the plugs between packages that must not import each other "
        "(monitoring as inference's prediction observer); development data (`privet dev "
        "seed`: a year of traffic through the real ledger path)",
    ),
    Floor(
        "reports",
        ("privet.reports",),
        "the reviewer's reports (model lineage, RoPA, privacy budget, access, requests, "
        "monitoring), read across every domain below, rendered to JSON, CSV, HTML, PDF",
    ),
    Floor(
        "oversight",
        ("privet.compliance", "privet.monitoring"),
        "data-subject requests, erasure and deadlines; drift, live quality, decision "
        "rules, alerts, suspension and the review queue of served models",
    ),
    Floor(
        "serving",
        ("privet.inference",),
        "predictions with one ledger event each, reviews, contests and explanations; "
        "declares the observer it calls and never imports monitoring",
    ),
    Floor(
        "training jobs",
        ("privet.jobs",),
        "admission, the privacy-budget reservation and charge, the queue and the worker "
        "that trains on an executor and registers the model",
    ),
    Floor(
        "records",
        (
            "privet.authorization",
            "privet.basemodels",
            "privet.datasets",
            "privet.executors",
            "privet.models",
        ),
        "the policy decision point over the policy engine; dataset versions; where one "
        "training runs (local or Ray); the model registry and model cards; the base-model "
        "registry",
    ),
    Floor(
        "identity and rules",
        ("privet.auth", "privet.policy", "privet.training"),
        "principals, roles, API keys and OIDC; the Cedar engine and its schema; the DP "
        "training core (runs in workers, without the web app)",
    ),
    Floor(
        "ledger and keys",
        ("privet.crypto", "privet.ledger", "privet.migrate", "privet.migrations"),
        "envelope encryption, key providers, blob store; the append-only ledger and its "
        "signed checkpoints; the database schema and its migrations",
    ),
    Floor(
        "foundation",
        ("privet", "privet.config", "privet.db", "privet_audit"),
        "the version, core settings and the one way every package reads its own, engines "
        "and sessions; the offline verifier, which imports nothing of privet",
    ),
    Floor(
        "tools",
        ("privet.kit",),
        "small shared tools (errors, ids, numbers, logs) and the process state: the few "
        "registries that are one per process, not one per runtime",
    ),
)

#: Only these packages may import the web framework.
WEB_FRAMEWORK = ("fastapi", "starlette")
WEB_PACKAGES = ("privet.api", "privet.console")

# --- reading the imports ----------------------------------------------------------------

Edges = dict[str, dict[str, str]]  # module -> {imported module: "path:line" of one import}


@dataclass
class ImportGraph:
    modules: Edges  # first-party modules only
    external: dict[str, dict[str, str]]  # module -> {top-level third-party name: where}


def module_files(roots: Iterable[Path]) -> dict[str, Path]:
    """``privet.x.y`` -> its file, for every module under the roots' top-level packages."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement reaches: for ``from a import b``, the
    submodule ``a.b`` where there is one, else ``a`` (b is an attribute of it)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (None: not first-party)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(roots: Iterable[Path]) -> ImportGraph:
    """Every import of every module under ``roots``, lazy and TYPE_CHECKING ones too."""
    modules = module_files(roots)
    graph = ImportGraph({m: {} for m in modules}, {m: {} for m in modules})
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            where = f"{shown}:{node.lineno}"
            names = _imported(node, module, is_package)
            if isinstance(node, ast.ImportFrom):
                base = names.pop()
                names = [name if name in modules else base for name in names]
            for name in names:
                target = _resolve(name, modules)
                if target is None:
                    graph.external[module].setdefault(name.split(".")[0], where)
                elif target != module:
                    graph.modules[module].setdefault(target, where)
    return graph


def package_of(module: str) -> str:
    if module == "privet_audit" or module.startswith("privet_audit."):
        return "privet_audit"
    return ".".join(module.split(".")[:2])


def package_edges(modules: Edges) -> Edges:
    """Imports between packages (``privet.x`` -> ``privet.y``), each with one example."""
    out: Edges = {}
    for module, targets in modules.items():
        source = package_of(module)
        out.setdefault(source, {})
        for target, where in targets.items():
            if package_of(target) != source:
                out[source].setdefault(package_of(target), f"{module} -> {target} ({where})")
    return out


# --- judging it ---------------------------------------------------------------------------


def cycles(graph: Mapping[str, Mapping[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe_cycles(graph: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Each cycle with the imports that tie it (where each one is)."""
    lines = []
    for component in cycles(graph):
        members = set(component)
        lines.append("cycle: " + ", ".join(component))
        for source in component:
            for target, where in sorted(graph.get(source, {}).items()):
                if target in members:
                    lines.append(f"    {source} -> {target}  ({where})")
    return lines


def floor_of(floors: Sequence[Floor]) -> dict[str, int]:
    return {package: i for i, floor in enumerate(floors) for package in floor.packages}


def layering_violations(
    packages: Mapping[str, Mapping[str, str]], floors: Sequence[Floor]
) -> list[str]:
    """Imports that go sideways or up the floors, or touch a package on no floor."""
    level = floor_of(floors)
    out = []
    for source, targets in sorted(packages.items()):
        for target, example in sorted(targets.items()):
            if source not in level or target not in level:
                out.append(f"{source} -> {target}: not on a floor ({example})")
            elif level[target] <= level[source]:
                how = "sideways" if level[target] == level[source] else "up"
                out.append(
                    f"{source} ({floors[level[source]].name}) -> {target} "
                    f"({floors[level[target]].name}) goes {how}: {example}"
                )
    return out


def floors_table(floors: Sequence[Floor]) -> str:
    """The Markdown table docs/ARCHITECTURE.md carries, top floor first."""
    rows = ["| floor | packages | what they own |", "| --- | --- | --- |"]
    for i, floor in enumerate(floors):
        names = ", ".join(f"`{p}`" for p in floor.packages)
        rows.append(f"| {len(floors) - i}. {floor.name} | {names} | {floor.owns} |")
    return "\n".join(rows)


# --- the tests ------------------------------------------------------------------------------

_GRAPH: ImportGraph | None = None


def graph() -> ImportGraph:
    global _GRAPH
    if _GRAPH is None:
        _GRAPH = import_graph(ROOTS)
    return _GRAPH


def test_no_import_cycle_between_modules() -> None:
    found = describe_cycles(graph().modules)
    assert not found, "import cycles between modules:\n" + "\n".join(found)


def test_no_import_cycle_between_packages() -> None:
    found = describe_cycles(package_edges(graph().modules))
    assert not found, "import cycles between packages:\n" + "\n".join(found)


def test_imports_only_go_down_the_floors() -> None:
    found = layering_violations(package_edges(graph().modules), FLOORS)
    assert not found, "imports against the floors (docs/ARCHITECTURE.md):\n" + "\n".join(found)


def test_every_package_stands_on_exactly_one_floor() -> None:
    placed = [p for floor in FLOORS for p in floor.packages]
    assert len(placed) == len(set(placed)), f"a package on two floors: {sorted(placed)}"
    actual = {package_of(m) for m in graph().modules}
    assert actual == set(placed), (
        f"put new packages on a floor: {sorted(actual - set(placed))}; "
        f"remove gone ones: {sorted(set(placed) - actual)}"
    )


def test_only_the_api_imports_the_web_framework() -> None:
    found = [
        f"{module} imports {name} ({where})"
        for module, names in sorted(graph().external.items())
        for name, where in sorted(names.items())
        if name in WEB_FRAMEWORK and package_of(module) not in WEB_PACKAGES
    ]
    assert not found, "\n".join(found)


def test_privet_audit_imports_nothing_of_privet() -> None:
    found = [
        f"{module} -> {target} ({where})"
        for module, targets in sorted(graph().modules.items())
        if package_of(module) == "privet_audit"
        for target, where in sorted(targets.items())
        if package_of(target) != "privet_audit"
    ]
    assert not found, "an auditor installs privet_audit alone:\n" + "\n".join(found)


def test_the_architecture_doc_mirrors_the_floors() -> None:
    table = floors_table(FLOORS)
    assert table in DOC.read_text(), (
        f"docs/ARCHITECTURE.md must carry the floors of tests/test_architecture.py:\n{table}"
    )


def test_the_checks_catch_a_cycle_a_lazy_import_and_a_layering_violation(tmp_path: Path) -> None:
    """A synthetic tree: privet.kit.a imports privet.kit.b inside a function, b imports a
    under TYPE_CHECKING (a module cycle), and privet.kit imports privet.api (up a floor,
    and a package cycle with the api's import of kit)."""
    files = {
        "privet/__init__.py": "",
        "privet/kit/__init__.py": "",
        "privet/kit/a.py": "def f():\n    from privet.kit import b\n    return b\n",
        "privet/kit/b.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
            "from privet.api.app import make\n"
        ),
        "privet/api/__init__.py": "",
        "privet/api/app.py": "import fastapi\nfrom privet.kit.a import f\nmake = f\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    synthetic = import_graph([tmp_path])
    assert synthetic.modules["privet.kit.a"] == {"privet.kit.b": f"{tmp_path}/privet/kit/a.py:2"}
    assert set(synthetic.modules["privet.kit.b"]) == {"privet.kit.a", "privet.api.app"}
    assert synthetic.external["privet.api.app"] == {"fastapi": f"{tmp_path}/privet/api/app.py:1"}
    assert cycles(synthetic.modules) == [["privet.api.app", "privet.kit.a", "privet.kit.b"]]
    packages = package_edges(synthetic.modules)
    assert cycles(packages) == [["privet.api", "privet.kit"]]
    floors = (Floor("top", ("privet.api",), ""), Floor("bottom", ("privet", "privet.kit"), ""))
    violations = layering_violations(packages, floors)
    assert len(violations) == 1 and violations[0].startswith(
        "privet.kit (bottom) -> privet.api (top) goes up: privet.kit.b -> privet.api.app"
    ), violations
