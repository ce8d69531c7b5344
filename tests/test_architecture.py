"""The layout's promises, checked on the source: no import circle inside a package (function-level and
TYPE_CHECKING imports included), no module over 400 lines, Gradio-free workflows and services under the app's tabs,
and ultralytics' private API reached through one adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sam2_model", "annotate", "app")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports anywhere in its file (top level, in functions, under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's `__init__` counts as the module of that name)."""
    found = modules()
    known = set(found)
    return {name: imported_modules(name, path, known) for name, path in found.items()}


def test_no_import_circle_in_the_packages():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_reads_in_one_sitting(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: move a responsibility out (at most {MAX_LINES})"


def test_workflows_and_services_are_gradio_free_and_the_tabs_and_api_share_them():
    graph, found = import_graph(), modules()
    gradio_free = ["app.services", "app.image_workflow", "app.video_workflow", "app.annotate_workflow"]
    for name in gradio_free:
        tree = ast.parse(found[name].read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m == "gradio" or m.startswith("gradio.") for m in imported), name
        assert not any(t.endswith("_tab") or t in ("app.api", "app.studio", "app.demo") for t in graph[name]), name
    assert {"app.image_workflow", "app.video_workflow", "app.annotate_workflow"} <= graph["app.api"]
    for tab in ("image", "video", "annotate"):
        assert f"app.{tab}_workflow" in graph[f"app.{tab}_tab"]
        assert not {t for t in graph[f"app.{tab}_tab"] if t.endswith("_tab")}, f"app.{tab}_tab imports another tab"


def test_the_layout_names_every_module():
    architecture = (ROOT / "docs" / "architecture.md").read_text()  # the README links it
    layout = architecture[architecture.index("## Layout") :].split("\n## ")[0]  # up to the next section
    missing = [
        f"{package}/{path.relative_to(ROOT / package).as_posix()}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__init__.py" and path.name not in layout and path.parent.name != "exporters"
    ]
    assert missing == [], f"the Layout section of docs/architecture.md does not name {missing}"
